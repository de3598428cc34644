//! rtorrent 0.9.8 (on rakshasa's libtorrent 0.13.8), headless.
//!
//! rtorrent is a curses program; `system.daemon.set = true` runs it without a terminal.
//! `-n` skips `~/.rtorrent.rc` and `-o import=` loads a configuration written per test; the
//! torrent on the command line is loaded and started. It has no LPD and no UPnP/NAT-PMP;
//! DHT and PEX are switched off in the configuration.

use std::fs;
use std::process::Command;

use super::Proc;
use super::clients::{Done, Role, Running, Start};

/// Starts `rtorrent` as `s` describes.
pub(crate) fn start(s: Start<'_>) -> Running {
    let session = s.work.join("session");
    fs::create_dir_all(&session).unwrap();
    // rtorrent writes its log to a file of its own, quoted in failure messages.
    let log = s.log_dir.join(format!("{}-rtorrent.log", s.name));
    let port = s.listen.port();
    let mut rc = format!(
        "directory.default.set = {data}\n\
         session.path.set = {session}\n\
         network.bind_address.set = {ip}\n\
         network.port_range.set = {port}-{port}\n\
         network.port_random.set = no\n\
         dht.mode.set = disable\n\
         protocol.pex.set = no\n\
         trackers.use_udp.set = yes\n\
         system.daemon.set = true\n\
         log.open_file = \"main\", {log}\n\
         log.add_output = \"info\", \"main\"\n",
        data = s.data_dir.display(),
        session = session.display(),
        ip = s.ip,
        log = log.display(),
    );
    let done = match s.role {
        Role::Seed => Done::Never,
        Role::Download => {
            // The event fires once the finished download has been hashed again
            // ("Confirming finished" in its log), so the data is complete on disk.
            let marker = s.marker();
            rc.push_str(&format!(
                "method.set_key = event.download.finished, interop_done, \
                 \"execute.nothrow = touch, {}\"\n",
                marker.display()
            ));
            Done::Marker(marker)
        }
    };
    let rc_path = s.work.join("rtorrent.rc");
    fs::write(&rc_path, rc).unwrap();
    let mut cmd = Command::new(&s.bin);
    cmd.arg("-n")
        .arg("-o")
        .arg(format!("import={}", rc_path.display()))
        .arg(&s.payload.torrent_path);
    let proc = Proc::spawn(&s.name, cmd, s.log_dir);
    Running::new(proc, done, vec![log])
}
