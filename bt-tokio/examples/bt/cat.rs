//! `bt cat TORRENT FILE [-o DIR] [--peer HOST:PORT]...`: one file of a torrent written to
//! stdout in order as its pieces arrive and pass their hash checks, through
//! `Torrent::file_reader`. The torrent downloads into DIR as `bt download` would (only that
//! file wanted), so a rerun resumes and what is already there is written at once.

use std::path::PathBuf;
use std::process::ExitCode;

use bt_tokio::TorrentOptions;
use bt_tokio::proto::encoding::printable::escape;
use bt_tokio::proto::metainfo::Metainfo;

use crate::{Interrupt, Net, Result, add_peers, as_magnet, load};

/// The exit status of a bad argument, as clap gives for the ones it parses.
const BAD_ARGUMENT: u8 = 2;

/// What `bt cat` was asked.
pub(crate) struct Cat {
    pub(crate) torrent: PathBuf,
    pub(crate) file: String,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) net: Net,
    pub(crate) peers: Vec<String>,
    pub(crate) quiet: bool,
}

/// The metainfo index of the file `arg` names: an index into the files as `bt info` lists
/// them (padding files left out), or a path as it prints them. One sentence if neither.
fn pick(meta: &Metainfo, arg: &str) -> std::result::Result<usize, String> {
    let listed: Vec<(usize, String)> = meta
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_padding())
        .map(|(i, f)| (i, f.path.to_string()))
        .collect();
    if let Ok(n) = arg.parse::<usize>() {
        return listed.get(n).map(|(i, _)| *i).ok_or_else(|| {
            format!(
                "the torrent has no file {n}: its {} files are numbered from 0 (see `bt info`)",
                listed.len()
            )
        });
    }
    listed
        .iter()
        .find(|(_, p)| p == arg)
        .map(|(i, _)| *i)
        .ok_or_else(|| {
            format!(
                "the torrent has no file `{}` (see `bt info` for its paths)",
                escape(arg)
            )
        })
}

/// Runs `bt cat`.
pub(crate) async fn cat(how: Cat) -> Result<ExitCode> {
    if as_magnet(&how.torrent).is_some() {
        eprintln!(
            "error: cat takes a .torrent file, not a magnet link: `bt download` fetches a \
             link's metadata and keeps it as DIR/.bt/<info-hash>.torrent"
        );
        return Ok(ExitCode::from(BAD_ARGUMENT));
    }
    let meta = load(&how.torrent)?;
    let file = match pick(&meta, &how.file) {
        Ok(i) => i,
        Err(sentence) => {
            eprintln!("error: {sentence}");
            return Ok(ExitCode::from(BAD_ARGUMENT));
        }
    };
    let base = how.dir.unwrap_or_else(|| ".".into());
    let mut interrupt = Interrupt::new()?;
    let session = how.net.start(&base).await?;
    let priorities = (0..meta.files().len())
        .map(|i| u8::from(i == file))
        .collect();
    let t = session
        .add_torrent(
            TorrentOptions::from_path(&how.torrent)
                .base_dir(&base)
                .file_priorities(priorities),
        )
        .await?;
    add_peers(&t, &how.peers).await?;
    if !how.quiet {
        eprintln!(
            "{}: {} bytes, listening on port {}",
            escape(&path_of(&meta, file)),
            meta.files().get(file).map_or(0, |f| f.length),
            session.port()
        );
    }
    let mut reader = t.file_reader(file).await?;
    let mut stdout = tokio::io::stdout();
    let copied = async {
        tokio::io::copy_buf(&mut reader, &mut stdout).await?;
        tokio::io::AsyncWriteExt::flush(&mut stdout).await
    };
    let code = tokio::select! {
        r = copied => match r {
            Ok(()) => ExitCode::SUCCESS,
            // The reader of the pipe has had enough (a player quit, `head`): not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                session.shutdown().await;
                return Err(e.into());
            }
        },
        () = interrupt.wait() => ExitCode::from(130),
    };
    drop(reader);
    session.shutdown().await;
    Ok(code)
}

/// File `i`'s path as `bt info` prints it.
fn path_of(meta: &Metainfo, i: usize) -> String {
    meta.files()
        .get(i)
        .map_or_else(String::new, |f| f.path.to_string())
}
