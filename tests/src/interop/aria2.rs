//! aria2 1.36 through `aria2c`.
//!
//! A downloader runs with `--seed-time=0`, so it exits (status 0) once the download is
//! complete and checked: the exit is its completion signal. A seed runs with
//! `--seed-ratio=0.0` (seed whatever the ratio) and `--check-integrity`, so it hashes the
//! data it is given before it serves it.
//!
//! Mid-connection, aria2 sends a BITFIELD in place of a run of HAVEs whenever that is the
//! shorter message (after 5 new pieces on a 256-piece torrent); our engine used to drop it as
//! a protocol error, which stalled every download by aria2.

use std::process::Command;

use super::clients::{ClientEncryption, Done, Role, Running, Start, free_port};
use super::{Announce, Proc};

/// Starts `aria2c` as `s` describes.
pub(crate) fn start(s: Start<'_>) -> Running {
    let ip = s.ip;
    let mut cmd = Command::new(&s.bin);
    cmd.arg("--no-conf=true")
        .arg(format!("--dir={}", s.data_dir.display()))
        // Binds its listener and its outgoing sockets, tracker requests too, so the tracker
        // records the client at this address.
        .arg(format!("--interface={ip}"))
        .arg(format!("--listen-port={}", s.listen.port()))
        .args(["--bt-enable-lpd=false", "--enable-peer-exchange=false"])
        .args(["--enable-dht6=false", "--disable-ipv6=true"])
        // Preallocating 64 MiB would only cost time; the .aria2 control file need not be
        // saved mid-download.
        .args(["--file-allocation=none", "--auto-save-interval=0"])
        .args(["--console-log-level=notice", "--summary-interval=5"])
        .arg("--show-console-readout=false")
        .arg("--check-integrity=true");
    // aria2 sends UDP tracker requests from its DHT socket ("udp is not supported yet" in its
    // log when DHT is off), so a udp:// announce needs DHT on. It is given no entry point and
    // no saved routing table, and no other peer here speaks DHT, so its table stays empty and
    // DHT finds nobody: peers still come from the tracker only. (It also sets the DHT bit in
    // its handshake and sends PORT messages, which our side must ignore.)
    if announce_of(&s) == Announce::Udp {
        cmd.arg("--enable-dht=true")
            .arg(format!("--dht-listen-port={}", free_port(s.ip)))
            .arg(format!(
                "--dht-file-path={}",
                s.work.join("dht.dat").display()
            ));
    } else {
        cmd.arg("--enable-dht=false");
    }
    let mut own_logs = Vec::new();
    if s.encryption == ClientEncryption::Required {
        // Refuses a legacy (plaintext) handshake either way and never retries an outgoing
        // connection without MSE (InitiatorMSEHandshakeCommand.cc, prepareForNextPeer);
        // arc4 as the minimum level makes it offer and select RC4 only (MSEHandshake.cc:
        // plaintext only when the level is "plain" and --bt-force-encryption is off).
        cmd.args(["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]);
        // Which method each MSE handshake settled on is logged at debug level only
        // ("peer provides ARC4." as the receiving side, "peer prefers ARC4" as the
        // initiator), in a log file of its own: the console stays at notice.
        let log = s.work.join("aria2.log");
        cmd.arg(format!("--log={}", log.display()))
            .arg("--log-level=debug");
        own_logs.push(log);
    }
    let done = match s.role {
        Role::Seed => {
            cmd.arg("--seed-ratio=0.0");
            Done::Never
        }
        Role::Download => {
            cmd.arg("--seed-time=0");
            Done::Exit
        }
    };
    match &s.magnet {
        // aria2 fetches the metadata first (BEP 9), keeps it in memory only, then downloads
        // the torrent into --dir as it would from the .torrent.
        Some(uri) => cmd.arg("--bt-save-metadata=false").arg(uri),
        None => cmd.arg(&s.payload.torrent_path),
    };
    let proc = Proc::spawn(&s.name, cmd, s.log_dir);
    Running::new(proc, done, own_logs)
}

/// The announce flavour of the payload's torrent.
fn announce_of(s: &Start<'_>) -> Announce {
    let udp = s
        .payload
        .meta
        .trackers()
        .iter()
        .flatten()
        .any(|url| url.starts_with("udp://"));
    if udp { Announce::Udp } else { Announce::Http }
}
