//! transmission 3.00 through `transmission-cli`.
//!
//! Debian's `transmission-cli` package has no `transmission-daemon` (that is another
//! package), and the deprecated `transmission-cli` does all a test needs in one process:
//! one torrent from the command line, settings from `settings.json` in its `-g` directory,
//! and a `-f` script run when the download completes. Its flags have no switch for DHT,
//! LPD, PEX or uTP (`-D` means "no download limit", not "no DHT"), so those are in the
//! settings file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::Proc;
use super::clients::{Done, Role, Running, Start};

/// Starts `transmission-cli` as `s` describes.
pub(crate) fn start(s: Start<'_>) -> Running {
    let config = s.work.join("config");
    fs::create_dir_all(&config).unwrap();
    let settings = format!(
        r#"{{
    "dht-enabled": false,
    "lpd-enabled": false,
    "pex-enabled": false,
    "utp-enabled": false,
    "port-forwarding-enabled": false,
    "bind-address-ipv4": "{ip}",
    "bind-address-ipv6": "::1",
    "peer-port": {port},
    "peer-port-random-on-start": false,
    "encryption": 0,
    "speed-limit-up-enabled": false,
    "speed-limit-down-enabled": false,
    "alt-speed-enabled": false,
    "ratio-limit-enabled": false,
    "idle-seeding-limit-enabled": false,
    "blocklist-enabled": false,
    "rpc-enabled": false,
    "peer-limit-global": 200,
    "peer-limit-per-torrent": 50,
    "message-level": 2
}}
"#,
        // "encryption": 0 prefers plaintext: we do not speak MSE, and with 1 (its default)
        // transmission would open each outgoing connection with an MSE handshake first.
        // "bind-address-ipv6" keeps it off the host's IPv6 addresses. "message-level": 2
        // logs tracker replies and state changes to stderr, which is what a failure needs.
        ip = s.listen.ip(),
        port = s.listen.port(),
    );
    fs::write(config.join("settings.json"), settings).unwrap();

    let mut cmd = Command::new(&s.bin);
    cmd.arg("-g")
        .arg(&config)
        .args(["-p", &s.listen.port().to_string()])
        .arg("-w")
        .arg(s.data_dir);
    let done = match s.role {
        // A seed verifies the data under -w before it announces (as complete).
        Role::Seed => Done::Never,
        Role::Download => {
            // transmission runs the -f script itself (not through a shell), so it must be an
            // executable file with a #! line.
            let marker = s.marker();
            let script = s.work.join("finished.sh");
            fs::write(
                &script,
                format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
            cmd.arg("-f").arg(&script);
            Done::Marker(marker)
        }
    };
    cmd.arg(&s.payload.torrent_path);
    let proc = Proc::spawn(&s.name, cmd, s.log_dir);
    Running::new(proc, done, Vec::new())
}
