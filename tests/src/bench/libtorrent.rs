//! libtorrent to libtorrent over loopback, beside our own transfer of the same payload in
//! the same run (the `rc4` part): a figure measured on another day or machine says little
//! next to ours, since this virtual machine's speed drifts from hour to hour.
//!
//! It runs the interop tests' driver (`lt_client.py`, Debian's `python3-libtorrent`): a seed
//! that checks its data before it seeds (as our seeder does), and a leecher dialling it,
//! both with the same encryption flags. The leecher's time is from adding the torrent to its
//! last piece verified; CPU and peak RSS are read from `/proc` before the processes are
//! stopped.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::loopback::{Transfer, same_content};
use super::{Payload, Usage, err, expect_line, read_lines};
use crate::interop::SYSTEM_PYTHON;
use crate::interop::libtorrent::SCRIPT;

/// Whether libtorrent's Python binding can be imported by [`SYSTEM_PYTHON`].
pub(super) fn available() -> bool {
    crate::interop::python_module_present("libtorrent")
}

/// A running `lt_client.py`; killed when dropped.
struct Lt {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Lt {
    fn spawn(role: &str, torrent: &Path, dir: &Path, extra: &[&str]) -> Result<Lt, String> {
        let mut child = Command::new(SYSTEM_PYTHON)
            .arg("-u")
            .arg(SCRIPT)
            .args(["--role", role, "--torrent"])
            .arg(torrent)
            .arg("--save")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {SYSTEM_PYTHON} {SCRIPT}: {e}"))?;
        let lines = read_lines(child.stdout.take().ok_or("no stdout")?);
        Ok(Lt { child, lines })
    }

    fn expect(&self, word: &str) -> Result<String, String> {
        expect_line(&self.lines, self.child.id(), word)
    }

    fn usage(&self) -> Result<Usage, String> {
        Usage::of_pid(self.child.id())
    }
}

impl Drop for Lt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One transfer of `p` from a libtorrent seed to a libtorrent leecher, both given `flags`
/// (the script's, e.g. `--encryption required`); the copy is compared with the original.
pub(super) fn once(p: &Payload, work: &Path, flags: &[&str]) -> Result<Transfer, String> {
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let mut seed_flags = vec!["--checked"];
    seed_flags.extend_from_slice(flags);
    let seed = Lt::spawn("seed", &p.torrent, seed_dir, &seed_flags)?;
    let port: u16 = seed.expect("LISTEN")?.parse().map_err(err)?;
    // Seeding: its check of the whole payload is done.
    seed.expect("DONE")?;
    let leech_dir = work.join("leech-libtorrent");
    let _ = fs::remove_dir_all(&leech_dir);
    fs::create_dir_all(&leech_dir).map_err(err)?;
    let connect = format!("127.0.0.1:{port}");
    let mut leech_flags = vec!["--connect", connect.as_str()];
    leech_flags.extend_from_slice(flags);
    let leech = Lt::spawn("leech", &p.torrent, &leech_dir, &leech_flags)?;
    let secs: f64 = leech.expect("DONE")?.parse().map_err(err)?;
    let (leecher, seeder) = (leech.usage()?, seed.usage()?);
    drop((leech, seed));
    let name = p.file.file_name().ok_or("payload has no name")?;
    if !same_content(&p.file, &leech_dir.join(name))? {
        return Err("libtorrent's copy differs from the seeder's".into());
    }
    fs::remove_dir_all(&leech_dir).map_err(err)?;
    Ok(Transfer {
        secs,
        seeder,
        leecher,
    })
}
