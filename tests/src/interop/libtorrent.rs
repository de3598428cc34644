//! libtorrent-rasterbar 2.0 through Debian's `python3-libtorrent`, driven by
//! `lt_client.py` (beside this file) run with [`SYSTEM_PYTHON`]. The script prints one line
//! per fact (see its docstring); this module starts it and reads those lines.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bt_adapter::Runtime;

use super::{Payload, Proc, SYSTEM_PYTHON, TRANSFER_TIMEOUT, fail, poll_until, wait_until};
use super::{TransferReport, require_python_module};

/// The driver script.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/interop/lt_client.py");

/// How long libtorrent gets to start listening (importing the module and starting a session
/// takes a fraction of a second; a loaded machine may take a few).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What a libtorrent client does.
#[derive(Clone, Debug)]
pub struct LtArgs {
    seed: bool,
    peer_log: bool,
    connect: Vec<SocketAddr>,
    magnet: Option<String>,
    pex: bool,
    metadata: bool,
}

impl LtArgs {
    /// A seed: the data is already in the save directory (libtorrent's `seed_mode`).
    pub fn seed() -> LtArgs {
        LtArgs {
            seed: true,
            peer_log: false,
            connect: Vec::new(),
            magnet: None,
            pex: false,
            metadata: false,
        }
    }

    /// A leecher: downloads into the save directory and keeps running (seeding) after.
    pub fn leech() -> LtArgs {
        LtArgs {
            seed: false,
            ..LtArgs::seed()
        }
    }

    /// A leecher of the magnet link `uri` instead of the payload's .torrent: it fetches the
    /// metadata from its peers first (BEP 9), and prints `METADATA <name>` when it has it.
    pub fn leech_magnet(uri: String) -> LtArgs {
        LtArgs {
            magnet: Some(uri),
            ..LtArgs::leech()
        }
    }

    /// Serves the torrent's metadata to peers that fetch it (libtorrent's `ut_metadata`
    /// plugin, which the script loads only when asked).
    pub fn serve_metadata(mut self) -> LtArgs {
        self.metadata = true;
        self
    }

    /// Prints the fast-extension messages of the peer log (`PEERLOG` lines).
    pub fn peer_log(mut self) -> LtArgs {
        self.peer_log = true;
        self
    }

    /// Exchanges peers (libtorrent's `ut_pex` plugin is loaded).
    pub fn pex(mut self) -> LtArgs {
        self.pex = true;
        self
    }

    /// Connects to `addr` directly, besides the tracker's peers.
    pub fn connect(mut self, addr: SocketAddr) -> LtArgs {
        self.connect.push(addr);
        self
    }
}

/// Progress as last printed by the script.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LtStatus {
    /// 0.0 ..= 1.0.
    pub progress: f64,
    /// Payload bytes downloaded.
    pub down: u64,
    /// Payload bytes uploaded.
    pub up: u64,
    /// Connected peers.
    pub peers: u64,
}

/// A running libtorrent client with one torrent.
pub struct Lt {
    /// The process (for [`fail`]).
    pub proc: Proc,
    port: u16,
    started: Instant,
}

impl Lt {
    /// Starts libtorrent as `name` for `payload`, data in `save_dir`, log in `log_dir`.
    /// `None` means skipped (see [`require_python_module`]).
    pub fn start(
        name: &str,
        payload: &Payload,
        save_dir: &Path,
        args: LtArgs,
        log_dir: &Path,
    ) -> Option<Lt> {
        require_python_module("libtorrent")?;
        let mut cmd = Command::new(SYSTEM_PYTHON);
        // -u: unbuffered, so every line is in the log as soon as it is printed.
        cmd.arg("-u").arg(SCRIPT);
        match &args.magnet {
            Some(uri) => cmd.arg("--magnet").arg(uri),
            None => cmd.arg("--torrent").arg(&payload.torrent_path),
        };
        if args.pex {
            cmd.arg("--pex");
        }
        cmd.arg("--save")
            .arg(save_dir)
            .args(["--role", if args.seed { "seed" } else { "leech" }])
            .args(["--timeout", &TRANSFER_TIMEOUT.as_secs().to_string()]);
        if args.peer_log {
            cmd.arg("--peer-log");
        }
        if args.metadata {
            cmd.arg("--metadata");
        }
        for c in &args.connect {
            cmd.arg("--connect").arg(c.to_string());
        }
        let started = Instant::now();
        let mut proc = Proc::spawn(name, cmd, log_dir);
        let mut port = None;
        let up = wait_until(START_TIMEOUT, || {
            port = proc
                .log()
                .lines()
                .find_map(|l| l.strip_prefix("LISTEN ")?.trim().parse::<u16>().ok());
            port.is_some() || proc.exited().is_some()
        });
        match port {
            Some(port) if up => Some(Lt {
                proc,
                port,
                started,
            }),
            _ => fail(&format!("{name} did not start listening"), &[&proc]),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Every line of its output that starts with `prefix` followed by a space, without it.
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        let p = format!("{prefix} ");
        self.proc
            .log()
            .lines()
            .filter_map(|l| l.strip_prefix(&p).map(str::to_string))
            .collect()
    }

    /// The last progress line.
    pub fn status(&self) -> Option<LtStatus> {
        let last = self.lines("STATUS").pop()?;
        let mut s = LtStatus::default();
        for kv in last.split(' ') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "progress" => s.progress = v.parse().ok()?,
                "down" => s.down = v.parse().ok()?,
                "up" => s.up = v.parse().ok()?,
                "peers" => s.peers = v.parse().ok()?,
                _ => {}
            }
        }
        Some(s)
    }

    /// Waits until its tracker answered an announce (so the tracker knows it).
    pub async fn wait_announced<R: Runtime>(&mut self) {
        let ok = poll_until::<R>(START_TIMEOUT, || {
            !self.lines("TRACKER_REPLY").is_empty() || self.proc.exited().is_some()
        })
        .await;
        if !ok || self.proc.exited().is_some() {
            fail("libtorrent's announce was not answered", &[&self.proc]);
        }
    }

    /// Waits (up to [`TRANSFER_TIMEOUT`]) until it has every piece of `payload`; the figures
    /// of the transfer as libtorrent timed it. Fails the test with `others`' logs and its own if it
    /// exits or times out first.
    pub async fn wait_done<R: Runtime>(
        &mut self,
        payload: &Payload,
        others: &[&Proc],
    ) -> TransferReport {
        let ok = poll_until::<R>(TRANSFER_TIMEOUT, || {
            !self.lines("DONE").is_empty() || self.proc.exited().is_some()
        })
        .await;
        let secs = self
            .lines("DONE")
            .first()
            .and_then(|s| s.trim().parse::<f64>().ok());
        match secs {
            Some(secs) if ok => TransferReport {
                bytes: payload.size(),
                secs,
                ..TransferReport::default()
            },
            _ => {
                let mut procs = others.to_vec();
                procs.push(&self.proc);
                fail(
                    &format!(
                        "libtorrent did not complete in {:?} (status {:?})",
                        self.started.elapsed(),
                        self.status()
                    ),
                    &procs,
                )
            }
        }
    }

    /// Stops it (SIGTERM: the script prints its final status and peers, then exits 0).
    pub fn stop(&mut self) {
        let status = self.proc.stop();
        if !status.is_some_and(|s| s.success()) {
            fail(&format!("libtorrent exited with {status:?}"), &[&self.proc]);
        }
    }
}
