//! The swarm runner: engine sessions wired to the simulated network, disk and a tracker, all
//! on one thread and virtual time.
//!
//! The runner is an adapter like bt-tokio, only with simulated I/O: it carries out each
//! session's outputs (connects, sends, disk reads and writes, announces), turns network and
//! disk completions into inputs, and advances the clock straight to the next thing due.
//! Whole swarms finish in milliseconds of real time, and the same seed replays exactly.
//! This module holds the swarm and its nodes; the run loop, the carrying out of outputs, the
//! nodes' files, raw nodes and test torrents are its parts.
//!
//! Peers meet through the simulated tracker: a torrent from [`make_torrent`] announces to
//! [`TRACKER_URL`], which the runner answers from [`Swarm::tracker_mut`]'s registry with the
//! other nodes that announced it, so nodes that add the same torrent find each other with no
//! [`Swarm::add_peer`] (needed only for torrents announcing elsewhere, or none).
//! [`Swarm::add_seed`] makes a node a seed in one call.
//!
//! One seed and five leechers over links that lose 1 % of transmissions; the same seed gives
//! the same completion times, to the nanosecond of virtual time:
//!
//! ```
//! use std::time::Duration;
//! use bt_proto::engine::AddTorrent;
//! use bt_proto::sim::net::LinkConfig;
//! use bt_proto::sim::swarm::{Swarm, make_torrent};
//!
//! /// When each leecher completed, for the simulation seeded with `seed`.
//! fn completions(seed: u64) -> Vec<Duration> {
//!     let (meta, content) = make_torrent(&[("a.bin", 300_000)], 32 * 1024, 7).unwrap();
//!     let mut swarm = Swarm::new(seed);
//!     let mut link = LinkConfig::new(Duration::from_millis(20));
//!     link.loss = 0.01;
//!     swarm.set_default_link(link);
//!     let seeder = swarm.add_node(Default::default());
//!     swarm.add_seed(seeder, &meta, &content);
//!     let leechers: Vec<_> = (0..5)
//!         .map(|_| {
//!             let node = swarm.add_node(Default::default());
//!             (node, swarm.add_torrent(node, &meta, AddTorrent::default()))
//!         })
//!         .collect();
//!     let mut done = vec![None; leechers.len()];
//!     let limit = Duration::from_secs(600);
//!     swarm
//!         .run_until(
//!             |s| {
//!                 for (when, &(node, t)) in done.iter_mut().zip(&leechers) {
//!                     if when.is_none() && s.is_complete(node, t) {
//!                         *when = Some(s.elapsed());
//!                     }
//!                 }
//!                 done.iter().all(Option::is_some)
//!             },
//!             limit,
//!         )
//!         .unwrap();
//!     for &(node, _) in &leechers {
//!         assert_eq!(swarm.content(node, &meta), content);
//!     }
//!     done.into_iter().flatten().collect()
//! }
//!
//! let first = completions(1);
//! assert_eq!(first.len(), 5);
//! assert_eq!(first, completions(1));
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::clock::VirtualClock;
use super::disk::MemDisk;
use super::net::{HostConfig, LinkConfig, Listen, Network, Side, SimConnId};
use super::time_queue::TimeQueue;
use super::tracker::TrackerRegistry;
use crate::engine::{AddTorrent, Config, Event, Session, TorrentId};
use crate::magnet::Magnet;
use crate::metainfo::Metainfo;
use crate::peer_id::ClientVersion;
use crate::rng::Rng;
use crate::tracker::AnnounceEvent;
use crate::{ConnId, PeerId};

mod files;
mod held;
mod outputs;
mod raw;
mod run;
mod send_queue;
mod torrent;

pub use raw::RawConn;
pub use run::Stalled;
pub use send_queue::SEND_BUFFER;
pub use torrent::{MakeTorrentError, make_private_torrent, make_torrent};

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
    /// Download cap in bytes per second (shared by all its connections); see
    /// [`HostConfig::download`].
    pub download: Option<u64>,
    /// Refuse incoming connections.
    pub refuse: bool,
    /// Flip a byte of every block this node serves (a hostile or broken seed).
    pub corrupt_uploads: bool,
    /// Override parts of the engine config.
    pub tweak: Option<fn(&mut Config)>,
}

impl NodeOptions {
    /// A normal node whose engine config `tweak` changes (encryption policy, transports,
    /// queue caps...), the commonest kind of node a test wants.
    pub fn with_config(tweak: fn(&mut Config)) -> Self {
        NodeOptions {
            tweak: Some(tweak),
            ..Default::default()
        }
    }
}

/// A session connection's end of its network connection.
#[derive(Debug)]
struct ConnEnd {
    sim: SimConnId,
    side: Side,
    /// Bytes the socket has not taken yet.
    queue: send_queue::SendQueue,
}

impl ConnEnd {
    fn new(sim: SimConnId, side: Side) -> Self {
        ConnEnd {
            sim,
            side,
            queue: Default::default(),
        }
    }
}

struct Node {
    addr: SocketAddr,
    session: Session,
    options: NodeOptions,
    /// Engine connection → our end of its network connection.
    conns: BTreeMap<ConnId, ConnEnd>,
    metas: BTreeMap<TorrentId, Metainfo>,
    events: Vec<(Duration, Event)>,
    alive: bool,
    /// A raw node runs no session: the test drives its connections byte by byte.
    raw: bool,
    raw_inbox: BTreeMap<SimConnId, RawConn>,
    /// Ends of this node's connections holding bytes back from its session ([`held`]) that
    /// an event told of; those that arrived without one the network lists.
    holding: Vec<(SimConnId, Side)>,
    /// The session's next deadline when it was last drained: the live entry of
    /// [`Swarm::timers`] for this node.
    timer: Option<Instant>,
}

/// Many sessions, one network, one disk, one tracker, virtual time.
pub struct Swarm {
    clock: VirtualClock,
    net: Network,
    disk: MemDisk,
    /// Content put on seeds, shared by the nodes' files that hold the same bytes.
    library: files::Library,
    rng: Rng,
    nodes: Vec<Node>,
    /// Disk and tracker answers and socket pumps, earliest first.
    delayed: TimeQueue<run::Delayed>,
    /// Sessions' deadlines, earliest first: an entry whose node's [`Node::timer`] moved since
    /// is stale and skipped, so that finding the next timer never scans every node.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Node index by address, so that a new connection finds its node without a scan.
    by_addr: HashMap<SocketAddr, usize>,
    /// The node and session connection at each end of each network connection.
    ends: held::Ends,
    seq: u64,
    /// The tracker at [`TRACKER_URL`].
    tracker: TrackerRegistry,
    /// Latency of a disk operation.
    pub disk_latency: Duration,
    /// Latency of a tracker answer.
    pub tracker_latency: Duration,
    /// Announces the tracker has seen: (node address, event).
    pub announces: Vec<(SocketAddr, Option<AnnounceEvent>)>,
    /// Local service discovery announces sent (one per group): (node address, when).
    pub multicasts: Vec<(SocketAddr, Duration)>,
    /// How long a local service discovery announce takes to reach the other nodes, as if
    /// they all shared one LAN; `None` (the default) drops announces, so that nodes find
    /// each other only as a test arranges.
    pub lsd_latency: Option<Duration>,
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
            library: files::Library::default(),
            rng,
            nodes: Vec::new(),
            delayed: TimeQueue::default(),
            timers: BinaryHeap::new(),
            by_addr: HashMap::new(),
            ends: held::Ends::default(),
            seq: 0,
            tracker: TrackerRegistry::default(),
            disk_latency: Duration::from_micros(200),
            tracker_latency: Duration::from_millis(20),
            announces: Vec::new(),
            multicasts: Vec::new(),
            lsd_latency: None,
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

    /// The tracker at [`TRACKER_URL`], to change how it answers.
    pub fn tracker_mut(&mut self) -> &mut TrackerRegistry {
        &mut self.tracker
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
        let session = self.new_session(options.tweak);
        self.net.add_host(
            addr,
            HostConfig {
                upload: options.upload,
                download: options.download,
                listen: if options.refuse {
                    Listen::Refuse
                } else {
                    Listen::Accept
                },
            },
        );
        self.nodes.push(Node {
            addr,
            session,
            options,
            conns: BTreeMap::new(),
            metas: BTreeMap::new(),
            events: Vec::new(),
            alive: true,
            raw: false,
            raw_inbox: BTreeMap::new(),
            holding: Vec::new(),
            timer: None,
        });
        // The first node of an address is the one deliveries reach, as a scan would find.
        self.by_addr.entry(addr).or_insert(id.0);
        self.note_timer(id);
        id
    }

    /// A node's address.
    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.nodes
            .get(node.0)
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |n| n.addr)
    }

    /// A node's session, to read its state. A run returns with every byte that arrived
    /// handed to the sessions; read from a [`Swarm::run_until`] condition, between steps, a
    /// peer's last-received time and undecoded bytes may lag by bytes that complete no
    /// message yet, which the runner holds back until something could tell.
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
        self.release_node(node);
        let r = f(&mut self.nodes.get_mut(node.0)?.session, now);
        self.drain(node);
        Some(r)
    }

    /// Events a node's session emitted so far, with their virtual times.
    pub fn events(&self, node: NodeId) -> &[(Duration, Event)] {
        self.nodes.get(node.0).map_or(&[], |n| &n.events)
    }

    /// Why a node closed its connections, in order: the reasons of its
    /// [`Event::PeerDisconnected`] events that have one.
    pub fn close_reasons(&self, node: NodeId) -> Vec<crate::engine::CloseReason> {
        self.events(node)
            .iter()
            .filter_map(|(_, e)| match e {
                Event::PeerDisconnected {
                    reason: Some(r), ..
                } => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Adds a torrent to a node.
    pub fn add_torrent(&mut self, node: NodeId, meta: &Metainfo, opts: AddTorrent) -> TorrentId {
        let now = self.clock.now();
        self.release_node(node);
        let Some(n) = self.nodes.get_mut(node.0) else {
            return TorrentId(u32::MAX);
        };
        let id = n.session.add_torrent(now, meta.clone(), opts);
        n.metas.insert(id, meta.clone());
        self.drain(node);
        id
    }

    /// Makes a node a seed of `meta`: its files hold `content` and the torrent is added with
    /// every piece verified (as from resume data), so nothing is checked first.
    pub fn add_seed(&mut self, node: NodeId, meta: &Metainfo, content: &[u8]) -> TorrentId {
        self.put_content(node, meta, content);
        let opts = AddTorrent {
            have: Some(crate::Bitfield::full(meta.piece_count())),
            ..Default::default()
        };
        self.add_torrent(node, meta, opts)
    }

    /// Adds a torrent to a node by magnet link: it fetches the metadata from its peers.
    pub fn add_magnet(&mut self, node: NodeId, magnet: &Magnet, opts: AddTorrent) -> TorrentId {
        let now = self.clock.now();
        self.release_node(node);
        let Some(n) = self.nodes.get_mut(node.0) else {
            return TorrentId(u32::MAX);
        };
        let id = n.session.add_magnet(now, magnet, opts);
        self.drain(node);
        id
    }

    /// Tells a node about a peer address.
    pub fn add_peer(&mut self, node: NodeId, torrent: TorrentId, addr: SocketAddr) {
        self.with_session(node, |s, now| s.add_peer(now, torrent, addr));
    }

    /// Whether a node's torrent has every wanted piece.
    pub fn is_complete(&self, node: NodeId, torrent: TorrentId) -> bool {
        self.session(node).is_some_and(|s| s.is_complete(torrent))
    }

    /// Takes a node off the network: its connections reset and it does nothing more.
    pub fn kill(&mut self, node: NodeId) {
        let now = self.clock.now();
        self.release_node(node);
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        n.alive = false;
        self.reset_connections(node, now);
        if let Some(h) = self.net.host_mut(self.addr(node)) {
            h.listen = Listen::Silent;
        }
    }

    /// Restarts a node as a process restart would: its connections reset, its session is
    /// replaced by a fresh one (new peer id, no torrents), its disk stays.
    pub fn restart(&mut self, node: NodeId) {
        let now = self.clock.now();
        self.release_node(node);
        let tweak = self.nodes.get(node.0).and_then(|n| n.options.tweak);
        let session = self.new_session(tweak);
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        n.session = session;
        n.metas.clear();
        n.alive = true;
        // The new session's deadline is noted afresh, even if it equals the old one's.
        n.timer = None;
        self.reset_connections(node, now);
        self.note_timer(node);
    }

    /// A fresh session for a node: a new peer id and RNG seed from the swarm's generator,
    /// then the node's `tweak` of the configuration.
    fn new_session(&mut self, tweak: Option<fn(&mut Config)>) -> Session {
        let mut random = [0u8; 12];
        self.rng.fill(&mut random);
        let peer_id = PeerId::generate(random, SIM_VERSION);
        let mut config = Config::new(peer_id, SIM_PORT, self.rng.next_u64());
        if let Some(tweak) = tweak {
            tweak(&mut config);
        }
        Session::new(config)
    }

    /// Resets every connection of `node`'s session on the network.
    fn reset_connections(&mut self, node: NodeId, now: Instant) {
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        let ends: Vec<(SimConnId, Side)> = n.conns.values().map(|e| (e.sim, e.side)).collect();
        n.conns.clear();
        for (sim, side) in ends {
            self.ends.set(sim, side, None);
            let _ = self.net.drop_at(sim, now);
        }
    }

    /// Number of scheduling steps taken (for figures).
    pub fn steps(&self) -> u64 {
        self.steps
    }
}
