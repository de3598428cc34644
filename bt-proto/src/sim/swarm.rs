//! The swarm runner: engine sessions wired to the simulated network, disk and a tracker, all
//! on one thread and virtual time.
//!
//! The runner is an adapter like bt-tokio, only with simulated I/O: it carries out each
//! session's outputs (connects, sends, disk reads and writes, announces), turns network and
//! disk completions into inputs, and advances the clock straight to the next thing due.
//! Whole swarms finish in milliseconds of real time, and the same seed replays exactly.
//!
//! ```
//! use std::time::Duration;
//! use bt_proto::engine::AddTorrent;
//! use bt_proto::sim::swarm::{Swarm, make_torrent};
//!
//! let (meta, content) = make_torrent(&[("a.bin", 100_000)], 32 * 1024, 7).unwrap();
//! let mut swarm = Swarm::new(1);
//! let seed = swarm.add_node(Default::default());
//! let leech = swarm.add_node(Default::default());
//! swarm.put_content(seed, &meta, &content);
//! swarm.add_torrent(seed, &meta, AddTorrent { have: Some(bt_proto::Bitfield::full(meta.piece_count())), ..Default::default() });
//! let t = swarm.add_torrent(leech, &meta, AddTorrent::default());
//! let seed_addr = swarm.addr(seed);
//! swarm.add_peer(leech, t, seed_addr);
//! let took = swarm.run_until(|s| s.is_complete(leech, t), Duration::from_secs(60)).unwrap();
//! assert!(took < Duration::from_secs(5));
//! assert_eq!(swarm.content(leech, &meta), content);
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::clock::VirtualClock;
use super::disk::MemDisk;
use super::net::{HostConfig, LinkConfig, Listen, NetEventKind, Network, Side, SimConnId};
use super::remote::RemotePeer;
use super::tracker::TrackerRegistry;
use crate::engine::{AddTorrent, Config, Event, Input, Output, Session, StorageError, TorrentId};
use crate::metainfo::Metainfo;
use crate::metainfo::create::{InputFile, TorrentBuilder};
use crate::peer_id::ClientVersion;
use crate::rng::Rng;
use crate::storage::{fill_from_plan, read_plan, verify_blocks, write_plan};
use crate::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse, Peer};
use crate::{ConnId, PeerId, PieceIndex};

/// The URL of the simulated tracker.
pub const TRACKER_URL: &str = "http://tracker.sim/announce";

/// Port every simulated host listens on.
pub const SIM_PORT: u16 = 6881;

/// The client version simulated nodes put in their peer ids.
const SIM_VERSION: ClientVersion = ClientVersion::CURRENT;

/// Where each node keeps a torrent's files on its simulated disk.
pub const DATA_DIR: &str = "data";

/// A node in the swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// How a node behaves besides running a normal session.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Upload cap in bytes per second (shared by all its connections).
    pub upload: Option<u64>,
    /// Refuse incoming connections.
    pub refuse: bool,
    /// Flip a byte of every block this node serves (a hostile or broken seed).
    pub corrupt_uploads: bool,
    /// Override parts of the engine config.
    pub tweak: Option<fn(&mut Config)>,
}

/// Work the runner finishes later: disk and tracker latency.
#[derive(Debug)]
enum Delayed {
    Input(NodeId, Input),
}

struct Node {
    addr: SocketAddr,
    session: Session,
    options: NodeOptions,
    /// Engine connection → network connection and our end of it.
    conns: BTreeMap<ConnId, (SimConnId, Side)>,
    by_sim: BTreeMap<(SimConnId, Side), ConnId>,
    metas: BTreeMap<TorrentId, Metainfo>,
    events: Vec<(Duration, Event)>,
    alive: bool,
    /// A raw node runs no session: the test drives its connections byte by byte.
    raw: bool,
    raw_inbox: BTreeMap<SimConnId, RawConn>,
}

/// What a raw node's connection has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawConn {
    /// The connection is established.
    pub connected: bool,
    /// Bytes received so far.
    pub received: Vec<u8>,
    /// The other side closed or the connection failed.
    pub closed: bool,
}

/// Many sessions, one network, one disk, one tracker, virtual time.
pub struct Swarm {
    clock: VirtualClock,
    net: Network,
    disk: MemDisk,
    rng: Rng,
    nodes: Vec<Node>,
    delayed: BinaryHeap<Reverse<(Instant, u64)>>,
    delayed_items: BTreeMap<u64, Delayed>,
    seq: u64,
    /// The tracker at [`TRACKER_URL`].
    tracker: TrackerRegistry,
    /// Latency of a disk operation.
    pub disk_latency: Duration,
    /// Latency of a tracker answer.
    pub tracker_latency: Duration,
    /// Announces the tracker has seen: (node address, event).
    pub announces: Vec<(SocketAddr, Option<AnnounceEvent>)>,
    steps: u64,
}

impl Swarm {
    /// An empty swarm whose every random choice derives from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let net = Network::new(rng.next_u64());
        // A base instant for virtual time: taken once, never read again.
        let base = Instant::now();
        let mut swarm = Swarm {
            clock: VirtualClock::new(base),
            net,
            disk: MemDisk::new(),
            rng,
            nodes: Vec::new(),
            delayed: BinaryHeap::new(),
            delayed_items: BTreeMap::new(),
            seq: 0,
            tracker: TrackerRegistry::default(),
            disk_latency: Duration::from_micros(200),
            tracker_latency: Duration::from_millis(20),
            announces: Vec::new(),
            steps: 0,
        };
        swarm
            .net
            .set_default_link(LinkConfig::new(Duration::from_millis(10)));
        swarm
    }

    /// Sets the link used between hosts without their own.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.net.set_default_link(link);
    }

    /// Sets the link between two nodes, both directions.
    pub fn set_path(&mut self, a: NodeId, b: NodeId, link: LinkConfig) {
        let (a, b) = (self.addr(a), self.addr(b));
        self.net.set_path(a, b, link);
    }

    /// The network, for finer control (drops, per-direction links).
    pub fn net_mut(&mut self) -> &mut Network {
        &mut self.net
    }

    /// The simulated disk (to corrupt or inspect files).
    pub fn disk_mut(&mut self) -> &mut MemDisk {
        &mut self.disk
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Adds a node with a fresh session.
    pub fn add_node(&mut self, options: NodeOptions) -> NodeId {
        let id = NodeId(self.nodes.len());
        let ip = [10, (id.0 >> 8) as u8, id.0 as u8, 1];
        let addr = SocketAddr::from((ip, SIM_PORT));
        let mut random = [0u8; 12];
        self.rng.fill(&mut random);
        let peer_id = PeerId::generate(random, SIM_VERSION);
        let mut config = Config::new(peer_id, SIM_PORT, self.rng.next_u64());
        if let Some(tweak) = options.tweak {
            tweak(&mut config);
        }
        self.net.add_host(
            addr,
            HostConfig {
                upload: options.upload,
                listen: if options.refuse {
                    Listen::Refuse
                } else {
                    Listen::Accept
                },
            },
        );
        self.nodes.push(Node {
            addr,
            session: Session::new(config),
            options,
            conns: BTreeMap::new(),
            by_sim: BTreeMap::new(),
            metas: BTreeMap::new(),
            events: Vec::new(),
            alive: true,
            raw: false,
            raw_inbox: BTreeMap::new(),
        });
        id
    }

    /// Adds a raw node: no session; the test connects and sends bytes itself, to play a
    /// hostile or broken peer.
    pub fn add_raw_node(&mut self) -> NodeId {
        let id = self.add_node(NodeOptions::default());
        if let Some(n) = self.nodes.get_mut(id.0) {
            n.raw = true;
        }
        id
    }

    /// Opens a connection from a raw node.
    pub fn raw_connect(&mut self, node: NodeId, to: SocketAddr) -> SimConnId {
        let from = self.addr(node);
        let now = self.clock.now();
        let sim = self.net.connect(from, to, now);
        if let Some(n) = self.nodes.get_mut(node.0) {
            n.raw_inbox.insert(sim, RawConn::default());
        }
        sim
    }

    /// Sends bytes on a raw node's connection; false if the connection cannot carry them.
    pub fn raw_send(&mut self, conn: SimConnId, data: impl Into<Bytes>) -> bool {
        let now = self.clock.now();
        self.net.send(conn, Side::Initiator, data, now).is_ok()
    }

    /// What a raw node's connection has seen.
    pub fn raw_conn(&self, node: NodeId, conn: SimConnId) -> Option<&RawConn> {
        self.nodes.get(node.0).and_then(|n| n.raw_inbox.get(&conn))
    }

    /// Hands `peer`, playing raw node `node`'s end of its connection, the bytes that
    /// connection received since it last looked.
    pub fn raw_receive(&self, node: NodeId, peer: &mut RemotePeer<SimConnId>) {
        if let Some(seen) = self.raw_conn(node, peer.conn()) {
            let new = seen
                .received
                .get(peer.bytes_received()..)
                .unwrap_or_default();
            peer.receive(new);
        }
    }

    /// A node's address.
    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.nodes
            .get(node.0)
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |n| n.addr)
    }

    /// A node's session, to read its state.
    pub fn session(&self, node: NodeId) -> Option<&Session> {
        self.nodes.get(node.0).map(|n| &n.session)
    }

    /// Runs a command on a node's session at the current virtual time, then carries out
    /// what it produced.
    pub fn with_session<R>(
        &mut self,
        node: NodeId,
        f: impl FnOnce(&mut Session, Instant) -> R,
    ) -> Option<R> {
        let now = self.clock.now();
        let r = f(&mut self.nodes.get_mut(node.0)?.session, now);
        self.drain(node);
        Some(r)
    }

    /// Events a node's session emitted so far, with their virtual times.
    pub fn events(&self, node: NodeId) -> &[(Duration, Event)] {
        self.nodes.get(node.0).map_or(&[], |n| &n.events)
    }

    /// Writes a torrent's content onto a node's disk, as a seed would have it.
    pub fn put_content(&mut self, node: NodeId, meta: &Metainfo, content: &[u8]) {
        let addr = self.addr(node);
        for f in meta.files() {
            if f.is_padding() {
                continue;
            }
            let start = usize::try_from(f.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(f.length).unwrap_or(usize::MAX));
            let bytes = content.get(start..end).unwrap_or_default().to_vec();
            let _ = self.disk.insert(addr, &node_path(f), bytes);
        }
    }

    /// A node's copy of a torrent's content (missing bytes as zeros, padding as zeros).
    pub fn content(&mut self, node: NodeId, meta: &Metainfo) -> Vec<u8> {
        let addr = self.addr(node);
        let mut out = Vec::new();
        for f in meta.files() {
            let len = usize::try_from(f.length).unwrap_or(0);
            let mut bytes = if f.is_padding() {
                Vec::new()
            } else {
                self.disk
                    .read(addr, &node_path(f), 0, len)
                    .unwrap_or_default()
            };
            bytes.resize(len, 0);
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Adds a torrent to a node.
    pub fn add_torrent(&mut self, node: NodeId, meta: &Metainfo, opts: AddTorrent) -> TorrentId {
        let now = self.clock.now();
        let Some(n) = self.nodes.get_mut(node.0) else {
            return TorrentId(u32::MAX);
        };
        let id = n.session.add_torrent(now, meta.clone(), opts);
        n.metas.insert(id, meta.clone());
        self.drain(node);
        id
    }

    /// Tells a node about a peer address.
    pub fn add_peer(&mut self, node: NodeId, torrent: TorrentId, addr: SocketAddr) {
        self.with_session(node, |s, now| s.add_peer(now, torrent, addr));
    }

    /// Whether a node's torrent has every wanted piece.
    pub fn is_complete(&self, node: NodeId, torrent: TorrentId) -> bool {
        self.session(node)
            .and_then(|s| s.stats(torrent))
            .is_some_and(|st| st.complete)
    }

    /// Takes a node off the network: its connections reset and it does nothing more.
    pub fn kill(&mut self, node: NodeId) {
        let now = self.clock.now();
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        n.alive = false;
        let sims: Vec<SimConnId> = n.conns.values().map(|(s, _)| *s).collect();
        n.conns.clear();
        n.by_sim.clear();
        for s in sims {
            let _ = self.net.drop_at(s, now);
        }
        if let Some(h) = self.net.host_mut(self.addr(node)) {
            h.listen = Listen::Silent;
        }
    }

    /// Restarts a node as a process restart would: its connections reset, its session is
    /// replaced by a fresh one (new peer id, no torrents), its disk stays.
    pub fn restart(&mut self, node: NodeId) {
        let now = self.clock.now();
        let mut random = [0u8; 12];
        self.rng.fill(&mut random);
        let seed = self.rng.next_u64();
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        let mut config = Config::new(PeerId::generate(random, SIM_VERSION), SIM_PORT, seed);
        if let Some(tweak) = n.options.tweak {
            tweak(&mut config);
        }
        n.session = Session::new(config);
        n.metas.clear();
        n.alive = true;
        let sims: Vec<SimConnId> = n.conns.values().map(|(s, _)| *s).collect();
        n.conns.clear();
        n.by_sim.clear();
        for s in sims {
            let _ = self.net.drop_at(s, now);
        }
    }

    fn schedule(&mut self, at: Instant, item: Delayed) {
        self.seq += 1;
        self.delayed.push(Reverse((at, self.seq)));
        self.delayed_items.insert(self.seq, item);
    }

    /// Runs until `done` holds (checked after every step) or `limit` of virtual time passes.
    /// Returns the virtual time taken, or an error naming the limit.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&Swarm) -> bool,
        limit: Duration,
    ) -> Result<Duration, Stalled> {
        let start = self.clock.now();
        let deadline = start + limit;
        loop {
            if done(self) {
                return Ok(self.clock.now().saturating_duration_since(start));
            }
            let next = self.next_time();
            match next {
                Some(t) if t <= deadline => {
                    self.clock.advance_to(t);
                    self.step();
                }
                _ => {
                    return Err(Stalled {
                        at: self.clock.elapsed(),
                    });
                }
            }
        }
    }

    /// Runs for `span` of virtual time.
    pub fn run_for(&mut self, span: Duration) {
        let deadline = self.clock.now() + span;
        while let Some(t) = self.next_time().filter(|t| *t <= deadline) {
            self.clock.advance_to(t);
            self.step();
        }
        self.clock.advance_to(deadline);
    }

    fn next_time(&mut self) -> Option<Instant> {
        let net = self.net.next_event_time();
        let delayed = self.delayed.peek().map(|Reverse((t, _))| *t);
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.alive && !n.raw)
            .filter_map(|n| n.session.poll_timeout());
        net.into_iter().chain(delayed).chain(timers).min()
    }

    /// Processes everything due at the current instant.
    fn step(&mut self) {
        self.steps += 1;
        let now = self.clock.now();
        while let Some(ev) = self.net.poll(now) {
            let Some(idx) = self.nodes.iter().position(|n| n.addr == ev.host) else {
                continue;
            };
            let node = NodeId(idx);
            let Some(n) = self.nodes.get_mut(idx) else {
                continue;
            };
            if !n.alive {
                continue;
            }
            if n.raw {
                let entry = n.raw_inbox.entry(ev.conn).or_default();
                match ev.kind {
                    NetEventKind::Connected => entry.connected = true,
                    NetEventKind::Data(d) => entry.received.extend_from_slice(&d),
                    NetEventKind::Refused | NetEventKind::Closed(_) => entry.closed = true,
                }
                continue;
            }
            match ev.kind {
                NetEventKind::Connected => match ev.side {
                    Side::Initiator => {
                        if let Some(c) = n.by_sim.get(&(ev.conn, ev.side)).copied() {
                            n.session.handle(now, Input::Connected { conn: c });
                        }
                    }
                    Side::Acceptor => {
                        let c = n.session.accept(now, ev.peer);
                        n.conns.insert(c, (ev.conn, ev.side));
                        n.by_sim.insert((ev.conn, ev.side), c);
                    }
                },
                NetEventKind::Refused | NetEventKind::Closed(_) => {
                    if let Some(c) = n.by_sim.remove(&(ev.conn, ev.side)) {
                        n.conns.remove(&c);
                        n.session.handle(now, Input::Closed { conn: c });
                    }
                }
                NetEventKind::Data(data) => {
                    if let Some(c) = n.by_sim.get(&(ev.conn, ev.side)).copied() {
                        n.session.handle(now, Input::Received { conn: c, data });
                    }
                }
            }
            self.drain(node);
        }
        while let Some(Reverse((t, seq))) = self.delayed.peek().copied() {
            if t > now {
                break;
            }
            self.delayed.pop();
            if let Some(Delayed::Input(node, input)) = self.delayed_items.remove(&seq)
                && let Some(n) = self.nodes.get_mut(node.0)
                && n.alive
            {
                n.session.handle(now, input);
                self.drain(node);
            }
        }
        for idx in 0..self.nodes.len() {
            let due = self
                .nodes
                .get(idx)
                .and_then(|n| {
                    (n.alive && !n.raw)
                        .then(|| n.session.poll_timeout())
                        .flatten()
                })
                .is_some_and(|t| t <= now);
            if due {
                if let Some(n) = self.nodes.get_mut(idx) {
                    n.session.handle_timeout(now);
                }
                self.drain(NodeId(idx));
            }
        }
    }

    /// Carries out a node's outputs and records its events.
    fn drain(&mut self, node: NodeId) {
        let now = self.clock.now();
        let elapsed = self.clock.elapsed();
        loop {
            let Some(n) = self.nodes.get_mut(node.0) else {
                return;
            };
            while let Some(e) = n.session.poll_event() {
                n.events.push((elapsed, e));
            }
            let Some(out) = n.session.poll_output() else {
                return;
            };
            let addr = n.addr;
            match out {
                Output::Connect { conn, addr: to } => {
                    let sim = self.net.connect(addr, to, now);
                    n.conns.insert(conn, (sim, Side::Initiator));
                    n.by_sim.insert((sim, Side::Initiator), conn);
                }
                Output::Send { conn, bufs } => {
                    if let Some((sim, side)) = n.conns.get(&conn).copied() {
                        let data: Vec<u8> = bufs.concat();
                        if self.net.send(sim, side, data, now).is_err() {
                            // The other end is gone; its close event is on the way.
                        }
                    }
                }
                Output::Close { conn, .. } => {
                    if let Some((sim, side)) = n.conns.remove(&conn) {
                        n.by_sim.remove(&(sim, side));
                        let _ = self.net.close(sim, side, now);
                    }
                }
                Output::ReadBlock {
                    torrent,
                    conn,
                    block,
                } => {
                    let corrupt = n.options.corrupt_uploads;
                    let data = n.metas.get(&torrent).map(|meta| {
                        read_bytes(
                            &mut self.disk,
                            addr,
                            meta,
                            block.piece,
                            block.offset,
                            block.length,
                        )
                    });
                    let data = match data {
                        Some(Ok(mut bytes)) => {
                            if corrupt && let Some(b) = bytes.first_mut() {
                                *b ^= 0xff;
                            }
                            Ok(Bytes::from(bytes))
                        }
                        Some(Err(e)) => Err(e),
                        None => Err(StorageError("unknown torrent".into())),
                    };
                    let at = now + self.disk_latency;
                    self.schedule(
                        at,
                        Delayed::Input(
                            node,
                            Input::BlockRead {
                                torrent,
                                conn,
                                block,
                                data,
                            },
                        ),
                    );
                }
                Output::VerifyAndStore {
                    torrent,
                    piece,
                    hash,
                    blocks,
                } => {
                    let result = if !verify_blocks(&blocks, &hash) {
                        Ok(false)
                    } else if let Some(meta) = n.metas.get(&torrent) {
                        write_piece(&mut self.disk, addr, meta, piece, &blocks).map(|()| true)
                    } else {
                        Err(StorageError("unknown torrent".into()))
                    };
                    let at = now + self.disk_latency;
                    self.schedule(
                        at,
                        Delayed::Input(
                            node,
                            Input::PieceStored {
                                torrent,
                                piece,
                                result,
                            },
                        ),
                    );
                }
                Output::CheckPiece {
                    torrent,
                    piece,
                    hash,
                } => {
                    let ok = n.metas.get(&torrent).is_some_and(|meta| {
                        let len = meta.piece_len(piece).unwrap_or(0);
                        read_bytes(&mut self.disk, addr, meta, piece, 0, len)
                            .is_ok_and(|b| crate::sha1(&b) == hash.0)
                    });
                    let at = now + self.disk_latency;
                    self.schedule(
                        at,
                        Delayed::Input(node, Input::PieceChecked { torrent, piece, ok }),
                    );
                }
                Output::Announce {
                    torrent,
                    url,
                    request,
                } => {
                    let result = if url == TRACKER_URL {
                        Ok(self.tracker_reply(addr, &request))
                    } else {
                        Err(format!("no tracker at {url}"))
                    };
                    if request.event != Some(AnnounceEvent::Stopped) {
                        let at = now + self.tracker_latency;
                        self.schedule(
                            at,
                            Delayed::Input(
                                node,
                                Input::Announced {
                                    torrent,
                                    url,
                                    result,
                                },
                            ),
                        );
                    }
                }
                Output::CloseFiles { .. } => {}
            }
        }
    }

    fn tracker_reply(&mut self, from: SocketAddr, req: &AnnounceRequest) -> AnnounceResponse {
        self.announces.push((from, req.event));
        let view = self.tracker.announce(from, req);
        AnnounceResponse {
            interval: Duration::from_secs(1800),
            min_interval: None,
            warning: None,
            tracker_id: None,
            complete: Some(view.complete),
            incomplete: Some(view.incomplete),
            peers: view.peers.into_iter().map(Peer::from_addr).collect(),
        }
    }

    /// Number of scheduling steps taken (for figures).
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

/// The swarm ran out of things to do, or out of time, before the goal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulation stalled or ran out of time at {at:?} of virtual time")]
pub struct Stalled {
    /// Virtual time when it gave up.
    pub at: Duration,
}

fn node_path(f: &crate::metainfo::FileEntry) -> PathBuf {
    crate::storage::file_path(Path::new(DATA_DIR), f)
}

fn read_bytes(
    disk: &mut MemDisk,
    host: SocketAddr,
    meta: &Metainfo,
    piece: PieceIndex,
    offset: u32,
    length: u32,
) -> Result<Vec<u8>, StorageError> {
    let segs = read_plan(meta.piece_map(), piece, offset, length)
        .map_err(|e| StorageError(e.to_string()))?;
    let mut out = Vec::with_capacity(length as usize);
    let complete = fill_from_plan(&segs, length as usize, &mut out, |seg, buf| {
        let f = meta
            .files()
            .get(seg.file)
            .ok_or_else(|| StorageError("no such file".into()))?;
        let bytes = disk
            .read(host, &node_path(f), seg.offset, seg.len as usize)
            .map_err(|e| StorageError(e.to_string()))?;
        buf.extend_from_slice(&bytes);
        Ok(())
    })?;
    if !complete {
        return Err(StorageError(
            "short read, or the read plan does not cover the block".into(),
        ));
    }
    Ok(out)
}

fn write_piece(
    disk: &mut MemDisk,
    host: SocketAddr,
    meta: &Metainfo,
    piece: PieceIndex,
    blocks: &[Bytes],
) -> Result<(), StorageError> {
    let plan =
        write_plan(meta.piece_map(), piece, blocks).map_err(|e| StorageError(e.to_string()))?;
    for w in plan {
        let f = meta
            .files()
            .get(w.file)
            .ok_or_else(|| StorageError("no such file".into()))?;
        let data: Vec<u8> = w.bufs.concat();
        disk.write(host, &node_path(f), w.offset, &data)
            .map_err(|e| StorageError(e.to_string()))?;
    }
    Ok(())
}

/// Why [`make_torrent`] could not build a torrent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MakeTorrentError {
    /// The layout was refused.
    #[error(transparent)]
    Create(#[from] crate::metainfo::create::CreateError),
    /// The built torrent did not parse back.
    #[error(transparent)]
    Parse(#[from] crate::metainfo::MetainfoError),
}

/// Builds a torrent (announcing to [`TRACKER_URL`]) of files with deterministic content from
/// `seed`: `(path, length)` pairs, `/` separating directories. Returns it with the content.
pub fn make_torrent(
    files: &[(&str, u64)],
    piece_length: u32,
    seed: u64,
) -> Result<(Metainfo, Vec<u8>), MakeTorrentError> {
    let mut rng = Rng::seed_from_u64(seed);
    let single = files.len() == 1 && !files.iter().any(|(p, _)| p.contains('/'));
    let builder = match files.first() {
        Some((name, len)) if single => TorrentBuilder::single_file(*name, *len),
        _ => TorrentBuilder::multi_file(
            "swarm",
            files.iter().map(|(p, l)| InputFile::new(p.split('/'), *l)),
        ),
    };
    let plan = builder
        .tracker_tier([TRACKER_URL])
        .piece_length(piece_length)
        .plan()?;
    // Content in the plan's file order (sorted by path), zeros for padding.
    let mut content = Vec::new();
    for f in plan.files() {
        let mut bytes = vec![0u8; usize::try_from(f.length).unwrap_or(0)];
        if !f.padding {
            rng.fill(&mut bytes);
        }
        content.extend_from_slice(&bytes);
    }
    let mut hasher = plan.hasher();
    hasher.update(&content);
    let bytes = plan.build(&hasher.finish()?)?;
    let meta = Metainfo::from_bytes(&bytes)?;
    Ok((meta, content))
}
