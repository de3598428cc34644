//! libtorrent-rasterbar 2.0 through Debian's `python3-libtorrent`, driven by
//! `lt_client.py` (beside this file) run with [`SYSTEM_PYTHON`]. The script prints one line
//! per fact (see its docstring); this module starts it and reads those lines.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bt_adapter::Runtime;
use bt_proto::InfoHash;

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
    dht: bool,
    dht_bootstrap: Vec<SocketAddr>,
    dht_log: bool,
    require_encryption: bool,
    utp_only: bool,
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
            dht: false,
            dht_bootstrap: Vec::new(),
            dht_log: false,
            require_encryption: false,
            utp_only: false,
        }
    }

    /// A DHT node and nothing else (no torrent), for [`Lt::node`]: the bootstrap node of
    /// the DHT tests. It bootstraps from nobody unless given [`LtArgs::dht`] nodes.
    pub fn node() -> LtArgs {
        LtArgs {
            dht: true,
            ..LtArgs::seed()
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

    /// Runs the DHT (BEP 5), bootstrapping from the node at `bootstrap` only (never the
    /// public routers), with libtorrent's guards against many nodes on one IP off (see the
    /// script's `dht_settings`), and searches it for the torrent's peers, announcing again
    /// every 2 s while it has none.
    pub fn dht(mut self, bootstrap: SocketAddr) -> LtArgs {
        self.dht = true;
        self.dht_bootstrap.push(bootstrap);
        self
    }

    /// Message stream encryption required, RC4 only, both ways (libtorrent's
    /// `out_enc_policy`/`in_enc_policy` pe_forced, `allowed_enc_level` pe_rc4), and a
    /// `PEER_ENC` line per connected peer ([`Lt::peers_encryption`]). Without it libtorrent
    /// speaks plaintext only (pe_disabled both ways).
    pub fn require_encryption(mut self) -> LtArgs {
        self.require_encryption = true;
        self
    }

    /// Peer connections over uTP only (libtorrent's `enable_outgoing_tcp` and
    /// `enable_incoming_tcp` off, `enable_outgoing_utp` and `enable_incoming_utp` on), with
    /// a `PEER_TRANSPORT` line per peer ([`Lt::peers_utp`]) and its uTP counters
    /// ([`Lt::utp_stats`]). Without it libtorrent speaks TCP only.
    pub fn utp_only(mut self) -> LtArgs {
        self.utp_only = true;
        self
    }

    /// Prints libtorrent's DHT log (`DHTLOG` lines): what it did with every message, for
    /// finding out why it ignored one of ours.
    pub fn dht_log(mut self) -> LtArgs {
        self.dht_log = true;
        self
    }
}

/// libtorrent's DHT counters, as last printed (`DHT_STATS`): a field is 0 until printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LtDhtStats {
    /// Nodes in its routing table.
    pub nodes: u64,
    /// Torrents it stores peers for (announced to it).
    pub torrents: u64,
    /// Peers it stores, for every torrent.
    pub peers: u64,
    /// `announce_peer` queries it received.
    pub announce_in: u64,
    /// `get_peers` queries it received.
    pub get_peers_in: u64,
    /// `find_node` queries it received.
    pub find_node_in: u64,
    /// Queries it refused, by kind: a bad token, a missing argument, an id it would not
    /// take.
    pub invalid_announce: u64,
    /// See `invalid_announce`.
    pub invalid_get_peers: u64,
    /// See `invalid_announce`.
    pub invalid_find_node: u64,
    /// Datagrams it dropped unread (not bencode, not a dictionary, from a blocked IP).
    pub dropped_in: u64,
}

impl LtDhtStats {
    /// Queries libtorrent refused or dropped: none when it takes every message of ours.
    pub fn refused(&self) -> u64 {
        self.invalid_announce + self.invalid_get_peers + self.invalid_find_node + self.dropped_in
    }
}

/// libtorrent's uTP counters, as last printed (`UTP_STATS`): a field is 0 until printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LtUtpStats {
    /// uTP sockets connected now (`utp.num_utp_connected`).
    pub connected: u64,
    /// uTP packets with payload received so far (`utp.utp_payload_pkts_in`).
    pub payload_in: u64,
    /// uTP packets with payload sent so far (`utp.utp_payload_pkts_out`).
    pub payload_out: u64,
    /// Peer connections over TCP now (`peer.num_tcp_peers`).
    pub tcp_peers: u64,
}

/// How one of libtorrent's connections is encrypted, as its `peer_info` flags say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LtPeerEncryption {
    /// The peer, as libtorrent sees it (an incoming peer's port is its outgoing port).
    pub addr: SocketAddr,
    /// `rc4_encrypted`: MSE with RC4 on the payload.
    pub rc4: bool,
    /// `plaintext_encrypted`: an MSE handshake, then plaintext.
    pub plaintext: bool,
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
        Lt::spawn(name, Some((payload, save_dir)), args, log_dir)
    }

    /// Starts libtorrent as `name` with no torrent, a DHT node only (see [`LtArgs::node`]),
    /// log in `log_dir`; it prints its DHT counters as they change ([`Lt::dht_stats`]) and
    /// every announce it stores ([`Lt::dht_announces`]). `None` means skipped.
    pub fn node(name: &str, args: LtArgs, log_dir: &Path) -> Option<Lt> {
        Lt::spawn(name, None, args, log_dir)
    }

    fn spawn(
        name: &str,
        torrent: Option<(&Payload, &Path)>,
        args: LtArgs,
        log_dir: &Path,
    ) -> Option<Lt> {
        require_python_module("libtorrent")?;
        let mut cmd = Command::new(SYSTEM_PYTHON);
        // -u: unbuffered, so every line is in the log as soon as it is printed.
        cmd.arg("-u").arg(SCRIPT);
        let role = match torrent {
            Some((payload, save_dir)) => {
                match &args.magnet {
                    Some(uri) => cmd.arg("--magnet").arg(uri),
                    None => cmd.arg("--torrent").arg(&payload.torrent_path),
                };
                cmd.arg("--save").arg(save_dir);
                if args.seed { "seed" } else { "leech" }
            }
            None => "node",
        };
        if args.pex {
            cmd.arg("--pex");
        }
        cmd.args(["--role", role])
            .args(["--timeout", &TRANSFER_TIMEOUT.as_secs().to_string()]);
        if args.dht {
            cmd.arg("--dht");
        }
        for b in &args.dht_bootstrap {
            cmd.arg("--dht-bootstrap").arg(b.to_string());
        }
        if args.dht_log {
            cmd.arg("--dht-log");
        }
        if args.peer_log {
            cmd.arg("--peer-log");
        }
        if args.metadata {
            cmd.arg("--metadata");
        }
        if args.require_encryption {
            cmd.args(["--encryption", "required"]);
        }
        if args.utp_only {
            cmd.args(["--transport", "utp"]);
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

    /// Its DHT counters as last printed.
    pub fn dht_stats(&self) -> LtDhtStats {
        let mut s = LtDhtStats::default();
        for (k, v) in self.counters("DHT_STATS") {
            let field = match k.as_str() {
                "nodes" => &mut s.nodes,
                "torrents" => &mut s.torrents,
                "peers" => &mut s.peers,
                "announce_in" => &mut s.announce_in,
                "get_peers_in" => &mut s.get_peers_in,
                "find_node_in" => &mut s.find_node_in,
                "invalid_announce" => &mut s.invalid_announce,
                "invalid_get_peers" => &mut s.invalid_get_peers,
                "invalid_find_node" => &mut s.invalid_find_node,
                "dropped_in" => &mut s.dropped_in,
                _ => continue,
            };
            *field = v;
        }
        s
    }

    /// Every announce its DHT node stored: who announced (the peer's address: the IP the
    /// query came from, the port it named) and the info-hash (hex), in order.
    pub fn dht_announces(&self) -> Vec<(SocketAddr, String)> {
        self.lines("DHT_ANNOUNCE")
            .iter()
            .filter_map(|l| {
                let (addr, hash) = l.trim().split_once(' ')?;
                Some((addr.parse().ok()?, hash.to_string()))
            })
            .collect()
    }

    /// Waits (up to `within`) until its DHT node has stored `peer` as a peer of
    /// `info_hash` (an `announce_peer` from it). Fails the test with its log and `others`'
    /// otherwise.
    pub async fn wait_dht_announce<R: Runtime>(
        &mut self,
        info_hash: InfoHash,
        peer: SocketAddr,
        within: Duration,
        others: &[&Proc],
    ) {
        let hash = info_hash.to_string();
        let ok = poll_until::<R>(within, || {
            self.dht_announces().contains(&(peer, hash.clone())) || self.proc.exited().is_some()
        })
        .await;
        if !ok || self.proc.exited().is_some() {
            let mut procs = others.to_vec();
            procs.push(&self.proc);
            fail(
                &format!(
                    "libtorrent's DHT node did not store {peer} as a peer of {hash} within \
                     {within:?} (it stored {:?}; counters {:?})",
                    self.dht_announces(),
                    self.dht_stats()
                ),
                &procs,
            );
        }
    }

    /// Every peer it had (with [`LtArgs::dht`]; `PEER_SEEN` lines), in order, with where
    /// libtorrent learnt of it: `dht`, `tracker`, ... (comma-separated), or `none` for a peer
    /// that connected to it.
    pub fn peers_seen(&self) -> Vec<(SocketAddr, String)> {
        self.lines("PEER_SEEN")
            .iter()
            .filter_map(|l| {
                let (addr, source) = l.trim().split_once(" source=")?;
                Some((addr.parse().ok()?, source.to_string()))
            })
            .collect()
    }

    /// How its connections were encrypted (with [`LtArgs::require_encryption`]; `PEER_ENC`
    /// lines), in order: a peer when first listed and again whenever its flags change, with
    /// the address as libtorrent sees it. A peer listed before its MSE handshake finished,
    /// or libtorrent's connection to itself (the tracker lists it too), has neither flag.
    pub fn peers_encryption(&self) -> Vec<LtPeerEncryption> {
        self.lines("PEER_ENC")
            .iter()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let addr = words.next()?.parse().ok()?;
                let mut flag = |name: &str| {
                    let v = words.next()?.strip_prefix(name)?.strip_prefix('=')?;
                    Some(v == "1")
                };
                let rc4 = flag("rc4")?;
                let plaintext = flag("plaintext")?;
                Some(LtPeerEncryption {
                    addr,
                    rc4,
                    plaintext,
                })
            })
            .collect()
    }

    /// Its peers and whether each connection was uTP (with [`LtArgs::utp_only`];
    /// `PEER_TRANSPORT` lines), in order: a peer when first listed and again when that
    /// changes, with the address as libtorrent sees it.
    pub fn peers_utp(&self) -> Vec<(SocketAddr, bool)> {
        self.lines("PEER_TRANSPORT")
            .iter()
            .filter_map(|l| {
                let (addr, utp) = l.trim().split_once(" utp=")?;
                Some((addr.parse().ok()?, utp == "1"))
            })
            .collect()
    }

    /// The `key=value` counters of the last line tagged `tag`, those that parse.
    fn counters(&self, tag: &str) -> Vec<(String, u64)> {
        let Some(last) = self.lines(tag).pop() else {
            return Vec::new();
        };
        last.split(' ')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// Its uTP counters as last printed (with [`LtArgs::utp_only`]; `UTP_STATS`).
    pub fn utp_stats(&self) -> LtUtpStats {
        let mut s = LtUtpStats::default();
        for (k, v) in self.counters("UTP_STATS") {
            let field = match k.as_str() {
                "connected" => &mut s.connected,
                "payload_in" => &mut s.payload_in,
                "payload_out" => &mut s.payload_out,
                "tcp_peers" => &mut s.tcp_peers,
                _ => continue,
            };
            *field = v;
        }
        s
    }

    /// Every connection libtorrent closed, with an error it blames on the peer
    /// (`PEER_ERROR` lines) or otherwise (`PEER_DISCONNECT`), and with
    /// [`LtArgs::peer_log`] every close its peer log shows (`PEER_CLOSED`, which alone has
    /// the incoming connections refused before they named a torrent): the peer's address
    /// as libtorrent sees it, and libtorrent's message.
    pub fn peer_closes(&self) -> Vec<(SocketAddr, String)> {
        let mut all = self.lines("PEER_ERROR");
        all.extend(self.lines("PEER_DISCONNECT"));
        all.extend(self.lines("PEER_CLOSED"));
        all.iter()
            .filter_map(|l| {
                let (addr, message) = l.split_once(' ')?;
                Some((addr.parse().ok()?, message.to_string()))
            })
            .collect()
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
        self.wait_done_within::<R>(TRANSFER_TIMEOUT, payload, others)
            .await
    }

    /// [`Lt::wait_done`], failing after `within`.
    pub async fn wait_done_within<R: Runtime>(
        &mut self,
        within: Duration,
        payload: &Payload,
        others: &[&Proc],
    ) -> TransferReport {
        let ok = poll_until::<R>(within, || {
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
