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
use super::clients::{ClientEncryption, Done, Relaunch, Role, Running, Start};

/// `tr_encryption_mode` (transmission.h): its default, MSE first, RC4 preferred, plaintext
/// accepted.
const TR_ENCRYPTION_PREFERRED: u8 = 1;

/// `tr_encryption_mode`: MSE with RC4 only.
const TR_ENCRYPTION_REQUIRED: u8 = 2;

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
    "encryption": {encryption},
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
        // "encryption" is tr_encryption_mode (transmission.h): 0 prefers plaintext, 1
        // prefers encryption (its default), 2 requires it: only MSE handshakes, and RC4
        // only (handshake.c, getCryptoProvide and getCryptoSelect). "bind-address-ipv6" keeps it off the host's IPv6 addresses. "message-level": 2
        // logs tracker replies and state changes to stderr, which is what a failure needs.
        encryption = match s.encryption {
            ClientEncryption::Default => TR_ENCRYPTION_PREFERRED,
            ClientEncryption::Required => TR_ENCRYPTION_REQUIRED,
        },
        ip = s.listen.ip(),
        port = s.listen.port(),
    );
    fs::write(config.join("settings.json"), settings).unwrap();

    let mut cmd = Command::new(&s.bin);
    if s.encryption == ClientEncryption::Required {
        // Its handshake's steps ("selecting crypto mode '2'" when it selects RC4) are in
        // its deep log only, which TR_DEBUG_FD sends to a descriptor: 2 is stderr, the log
        // of the process (log.c, tr_logGetFile).
        cmd.env("TR_DEBUG_FD", "2");
    }
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
    let relaunch = Relaunch::of(&cmd, &s.name, s.log_dir);
    let proc = Proc::spawn(&s.name, cmd, s.log_dir);
    // Quirk: transmission-cli exits as soon as its torrent is stopped (cli.c:371, polled
    // every 200 ms), and a torrent is "stopped" (torrent.c:1271, tr_torrentGetActivity:
    // neither verifying nor running) for a moment between the end of its first
    // verification and its start (onVerifyDoneThreadFunc, on another thread): a poll that
    // lands there ends the process, with success, a second after it started. Rare, more
    // so on an idle machine; it is started again.
    Running::new(proc, done, Vec::new()).relaunch_early_exit(relaunch)
}
