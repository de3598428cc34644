//! qBittorrent 4.5 (on libtorrent-rasterbar 2.0) through `qbittorrent-nox`.
//!
//! No Web API is needed: a torrent file on the command line is added at start (with
//! `--save-path`), the settings go in `qBittorrent.conf` under the `--profile` directory, and
//! its "run external program on torrent finished" hook (`[AutoRun]`) creates the completion
//! marker. Its log is a file of its own under the profile.

use std::fs;
use std::process::Command;

use super::Proc;
use super::clients::{Done, Role, Running, Start, free_port};

/// Starts `qbittorrent-nox` as `s` describes.
pub(crate) fn start(s: Start<'_>) -> Running {
    let profile = s.work.join("profile");
    let config = profile.join("qBittorrent").join("config");
    fs::create_dir_all(&config).unwrap();
    let marker = s.marker();
    // - [LegalNotice]: without it the first start asks on stdin to accept the legal notice.
    // - The Web UI cannot be switched off in -nox (`WebUI\Enabled` is ignored: it is the only
    //   UI), and it listens on *:8080 by default, which parallel tests would fight over; it
    //   gets a free port on the client's own address instead.
    // - `Session\Interface`/`InterfaceAddress` bind the listener to the client's address (it
    //   logs "Failed to find the configured network address" for an address that is not on
    //   the interface by name, and then binds it all the same).
    // - `BTProtocol=TCP`: no uTP, which we do not speak.
    // - `Connection\ResolvePeerCountries=false`: it would download a GeoIP database.
    // - `GlobalMaxRatio=-1`: seed with no ratio limit.
    let conf = format!(
        "[LegalNotice]\n\
         Accepted=true\n\
         \n\
         [AutoRun]\n\
         enabled={autorun}\n\
         program=touch \"{marker}\"\n\
         \n\
         [BitTorrent]\n\
         Session\\DHTEnabled=false\n\
         Session\\LSDEnabled=false\n\
         Session\\PeXEnabled=false\n\
         Session\\Port={port}\n\
         Session\\Interface=lo\n\
         Session\\InterfaceName=lo\n\
         Session\\InterfaceAddress={ip}\n\
         Session\\BTProtocol=TCP\n\
         Session\\MultiConnectionsPerIp=true\n\
         Session\\QueueingSystemEnabled=false\n\
         Session\\TempPathEnabled=false\n\
         Session\\AddTrackersEnabled=false\n\
         Session\\GlobalMaxRatio=-1\n\
         \n\
         [Network]\n\
         PortForwardingEnabled=false\n\
         \n\
         [Preferences]\n\
         WebUI\\Address={ip}\n\
         WebUI\\Port={webui}\n\
         Connection\\ResolvePeerCountries=false\n\
         General\\Locale=en\n",
        autorun = s.role == Role::Download,
        marker = marker.display(),
        port = s.listen.port(),
        ip = s.ip,
        webui = free_port(s.ip),
    );
    fs::write(config.join("qBittorrent.conf"), conf).unwrap();
    let log = profile
        .join("qBittorrent")
        .join("data")
        .join("logs")
        .join("qbittorrent.log");
    let mut cmd = Command::new(&s.bin);
    cmd.arg(format!("--profile={}", profile.display()))
        .arg(format!("--save-path={}", s.data_dir.display()))
        .arg("--skip-dialog=true")
        .arg(&s.payload.torrent_path);
    let done = match s.role {
        // A seed checks the files it finds under the save path before it serves them.
        Role::Seed => Done::Never,
        Role::Download => Done::Marker(marker),
    };
    let proc = Proc::spawn(&s.name, cmd, s.log_dir);
    Running::new(proc, done, vec![log])
}
