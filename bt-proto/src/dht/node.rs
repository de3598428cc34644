//! A DHT node (BEP 5) as a sans-IO machine: datagrams and time in, datagrams and events
//! out, like the engine. It answers queries (unless read-only, BEP 43), keeps its routing
//! table, runs lookups for nodes and peers, and announces.
//!
//! ```
//! use std::time::Instant;
//! use bt_proto::dht::node::{Node, NodeConfig};
//! use bt_proto::dht::NodeId;
//! use bt_proto::InfoHash;
//!
//! let now = Instant::now();
//! let mut node = Node::new(NodeId([1; 20]), NodeConfig::default(), 7, now);
//! node.bootstrap(now, &["192.0.2.1:6881".parse().unwrap()], &[]);
//! node.get_peers(now, InfoHash([2; 20]), None);
//! let (to, datagram) = node.poll_transmit().unwrap();
//! assert_eq!(to, "192.0.2.1:6881".parse().unwrap());
//! assert_eq!(datagram.first(), Some(&b'd'));
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::NodeId;
use super::external_ip::ExternalIp;
use super::krpc::{Body, KrpcError, Message, NodeInfo, Query, Response, Want};
use super::lookup::{Lookup, SLOW_AFTER};
use super::peer_store::PeerStore;
use super::rate_limit::RateLimit;
use super::routing::{Heard, Inserted, K, RoutingTable};
use super::tokens::Tokens;
use crate::InfoHash;
use crate::rng::Rng;

/// How long a query may go unanswered. Answers come within a round trip, a second at
/// most on a bad path; four leaves room without stalling lookups on dead nodes.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(4);

/// Queries in flight at once, all lookups together: bounds the transactions kept and what
/// the node sends before answers come back.
pub const MAX_PENDING: usize = 256;

/// Lookups running at once; more wait their turn by being refused (`None`).
pub const MAX_LOOKUPS: usize = 32;

/// Peers in one `get_peers` answer: about 50 fit a datagram with room to spare.
pub const MAX_VALUES_SENT: usize = 50;

/// The KRPC error code for a method the node does not know (BEP 5).
const METHOD_UNKNOWN: i64 = 204;

/// How often the node looks at its buckets and stored peers.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);

/// A lookup's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u32);

/// What the node tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtEvent {
    /// A `get_peers` answer listed peers of `info_hash`.
    Peers {
        /// The lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: InfoHash,
        /// The peers (each lookup may report the same peer more than once).
        peers: Vec<SocketAddr>,
    },
    /// A node announced itself to us as a peer of `info_hash` (with a valid token, so
    /// from an address that answered us before).
    PeerAnnounced {
        /// The torrent.
        info_hash: InfoHash,
        /// The peer: the announcer's address and the port it gave.
        peer: SocketAddr,
    },
    /// Other nodes agree that we are at `external`, an address our id did not suit: the
    /// node took a new id, `id`, as BEP 42 says (and rebuilds its table around it).
    IdChanged {
        /// The new id.
        id: NodeId,
        /// Our external address, as the vote settled it.
        external: IpAddr,
    },
    /// A lookup ended (and its announces, if any, were sent).
    LookupDone {
        /// The lookup.
        lookup: LookupId,
        /// Its target.
        target: NodeId,
        /// Queries it sent.
        queries: u32,
        /// Steps it took towards the target (see [`Lookup::hops`]).
        hops: u32,
        /// The closest nodes that answered, closest first (at most [`K`]).
        closest: Vec<NodeInfo>,
    },
}

/// Options of a node.
#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    /// BEP 43: ask, never answer, and say so (`ro`), so that others keep us out of their
    /// tables. For integrators who only look up.
    pub read_only: bool,
}

/// Counters of what the node dropped, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Datagrams that were not KRPC we act on.
    pub malformed: u64,
    /// Queries over a host's budget.
    pub rate_limited: u64,
    /// Answers with no query of ours waiting for them (late, or forged).
    pub unexpected: u64,
    /// Queries that timed out.
    pub timeouts: u64,
    /// Answers that lied: another id than the one we asked, or nodes that cannot be
    /// queried (port 0, a broadcast address). The node is dropped from the table at once.
    pub lies: u64,
}

/// Why we sent a query.
#[derive(Clone, Debug)]
enum Purpose {
    Lookup(LookupId),
    Announce,
    Ping,
}

#[derive(Clone, Debug)]
struct Pending {
    /// The node asked; its id is unknown for bootstrap routers.
    to: SocketAddr,
    id: Option<NodeId>,
    sent: Instant,
    purpose: Purpose,
    /// Its lookup was driven again once it went unanswered for [`SLOW_AFTER`].
    slow: bool,
}

#[derive(Clone, Debug)]
struct Running {
    lookup: Lookup,
    info_hash: Option<InfoHash>,
    /// Announce to the closest when done, with this port (`None`: the implied port).
    announce: Option<Option<u16>>,
}

/// One DHT node.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    config: NodeConfig,
    table: RoutingTable,
    tokens: Tokens,
    store: PeerStore,
    limit: RateLimit,
    rng: Rng,
    lookups: BTreeMap<LookupId, Running>,
    next_lookup: u32,
    pending: HashMap<Vec<u8>, Pending>,
    next_transaction: u16,
    transmit: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<DhtEvent>,
    next_maintenance: Instant,
    stats: DhtStats,
    external: ExternalIp,
}

impl Node {
    /// A node with id `id`; `seed` makes every random choice.
    pub fn new(id: NodeId, config: NodeConfig, seed: u64, now: Instant) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        Node {
            id,
            config,
            table: RoutingTable::new(id, now),
            tokens: Tokens::new(now, &mut rng),
            store: PeerStore::default(),
            limit: RateLimit::default(),
            rng,
            lookups: BTreeMap::new(),
            next_lookup: 0,
            pending: HashMap::new(),
            next_transaction: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_maintenance: now + MAINTENANCE_EVERY,
            stats: DhtStats::default(),
            external: ExternalIp::default(),
        }
    }

    /// Our id. It changes once, as BEP 42 wants, when other nodes agree on an external
    /// address it does not suit ([`DhtEvent::IdChanged`]).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The table to save, for [`Node::bootstrap`] after a restart (with its id to
    /// [`Node::new`]).
    pub fn saved(&self) -> super::saved::SavedTable {
        super::saved::SavedTable {
            id: self.id,
            nodes: self.table.nodes().map(|e| e.node).collect(),
        }
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// What was dropped so far.
    pub fn stats(&self) -> DhtStats {
        self.stats
    }

    /// Peers stored for others.
    pub fn stored_peers(&self) -> usize {
        self.store.len()
    }

    /// Queries in flight.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Finds the nodes closest to our id, starting from `routers` (nodes whose ids we do not
    /// know, such as the public routers), `known` nodes (a saved table: they enter the table
    /// again as they answer) and the table.
    pub fn bootstrap(
        &mut self,
        now: Instant,
        routers: &[SocketAddr],
        known: &[NodeInfo],
    ) -> Option<LookupId> {
        let own = self.id;
        let id = self.start(now, own, None, None)?;
        if let Some(r) = self.lookups.get_mut(&id) {
            for n in known.iter().filter(|n| super::usable(n) && n.id != own) {
                r.lookup.add(*n);
            }
        }
        for r in routers {
            let q = Query::FindNode {
                id: self.id,
                target: own,
                want: Want::default(),
            };
            self.send_query(now, *r, None, q, Purpose::Lookup(id));
        }
        self.drive(now, id);
        Some(id)
    }

    /// Looks up peers of `info_hash`; with `announce`, announces us as one to the closest
    /// nodes when done (`Some(None)`: the port the queries come from, BEP 5's implied port).
    pub fn get_peers(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        announce: Option<Option<u16>>,
    ) -> Option<LookupId> {
        let id = self.start(now, NodeId::from(info_hash), Some(info_hash), announce)?;
        // Peers announced to us count too: we may be one of the nodes closest to the
        // info-hash (in a small DHT, always), and no other node holds what was stored here.
        let peers = self
            .store
            .get(now, &info_hash, MAX_VALUES_SENT, |_| true, &mut self.rng);
        if !peers.is_empty() {
            self.events.push_back(DhtEvent::Peers {
                lookup: id,
                info_hash,
                peers,
            });
        }
        self.drive(now, id);
        Some(id)
    }

    /// Looks up the nodes closest to `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> Option<LookupId> {
        let id = self.start(now, target, None, None)?;
        self.drive(now, id);
        Some(id)
    }

    fn start(
        &mut self,
        now: Instant,
        target: NodeId,
        info_hash: Option<InfoHash>,
        announce: Option<Option<u16>>,
    ) -> Option<LookupId> {
        // The same lookup running already (a repeated bootstrap, a torrent asked again)
        // would only ask the same nodes twice: it takes the new request's announce.
        let same = self
            .lookups
            .iter_mut()
            .find(|(_, r)| r.lookup.target() == target && r.info_hash == info_hash);
        if let Some((id, r)) = same {
            if announce.is_some() {
                r.announce = announce;
            }
            return Some(*id);
        }
        if self.lookups.len() >= MAX_LOOKUPS {
            return None;
        }
        let id = LookupId(self.next_lookup);
        self.next_lookup = self.next_lookup.wrapping_add(1);
        let seeds = self.table.closest(now, &target, K);
        let lookup = Lookup::new(target, seeds);
        self.lookups.insert(
            id,
            Running {
                lookup,
                info_hash,
                announce,
            },
        );
        Some(id)
    }

    /// Sends what lookup `id` may ask now, or ends it.
    fn drive(&mut self, now: Instant, id: LookupId) {
        let Some(r) = self.lookups.get_mut(&id) else {
            return;
        };
        let room = MAX_PENDING.saturating_sub(self.pending.len());
        let mut asked = r.lookup.next(now);
        asked.truncate(room);
        let info_hash = r.info_hash;
        let target = r.lookup.target();
        for n in asked {
            let q = match info_hash {
                Some(info_hash) => Query::GetPeers {
                    id: self.id,
                    info_hash,
                    want: Want::default(),
                },
                None => Query::FindNode {
                    id: self.id,
                    target,
                    want: Want::default(),
                },
            };
            self.send_query(now, n.addr, Some(n.id), q, Purpose::Lookup(id));
        }
        let waiting = self
            .pending
            .values()
            .any(|p| matches!(p.purpose, Purpose::Lookup(l) if l == id));
        let done = self.lookups.get(&id).is_some_and(|r| r.lookup.is_done());
        if done && !waiting {
            self.finish(now, id);
        }
    }

    fn finish(&mut self, now: Instant, id: LookupId) {
        let Some(r) = self.lookups.remove(&id) else {
            return;
        };
        let closest = r.lookup.closest_answered();
        if let (Some(info_hash), Some(port)) = (r.info_hash, r.announce) {
            for (node, token) in &closest {
                let Some(token) = token.clone() else {
                    continue;
                };
                let q = Query::AnnouncePeer {
                    id: self.id,
                    info_hash,
                    port: port.unwrap_or(0),
                    implied_port: port.is_none(),
                    token,
                };
                self.send_query(now, node.addr, Some(node.id), q, Purpose::Announce);
            }
        }
        // Our own id looked up (a bootstrap): the far buckets are still thin, as every answer
        // came from near us. A lookup in each fills them, or lookups from the far side of the
        // id space end among the few nodes we know there.
        if r.info_hash.is_none() && r.lookup.target() == self.id {
            for target in self.table.join_targets(now, &mut self.rng) {
                self.find_node(now, target);
            }
        }
        self.events.push_back(DhtEvent::LookupDone {
            lookup: id,
            target: r.lookup.target(),
            queries: r.lookup.queries(),
            hops: r.lookup.hops(),
            closest: closest.into_iter().map(|(n, _)| n).collect(),
        });
    }

    fn send_query(
        &mut self,
        now: Instant,
        to: SocketAddr,
        id: Option<NodeId>,
        query: Query,
        purpose: Purpose,
    ) {
        if self.pending.len() >= MAX_PENDING {
            return;
        }
        let t = self.next_transaction.to_be_bytes().to_vec();
        self.next_transaction = self.next_transaction.wrapping_add(1);
        let mut m = Message::query(t.clone(), query);
        m.read_only = self.config.read_only;
        m.version = Some(version());
        self.transmit.push_back((to, m.encode()));
        let sent = now;
        self.pending.insert(
            t,
            Pending {
                to,
                id,
                sent,
                purpose,
                slow: false,
            },
        );
    }

    /// A datagram arrived from `from`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let m = match Message::decode(datagram) {
            Ok(m) => m,
            Err(KrpcError::UnknownMethod { transaction }) => {
                self.stats.malformed += 1;
                self.unknown_method(now, from, transaction);
                return;
            }
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match m.body {
            Body::Query(q) => self.on_query(now, from, m.transaction, m.read_only, q),
            Body::Response(r) => {
                self.on_response(now, from, &m.transaction, Some(r), m.your_ip);
            }
            Body::Error { .. } => self.on_response(now, from, &m.transaction, None, None),
        }
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transaction: &[u8],
        r: Option<Response>,
        your_ip: Option<SocketAddr>,
    ) {
        // An answer must come from where the query went: anyone can forge a datagram.
        let Some(p) = self.pending.get(transaction).filter(|p| p.to == from) else {
            self.stats.unexpected += 1;
            return;
        };
        let p = p.clone();
        self.pending.remove(transaction);
        let Some(r) = r else {
            // An error answer: the query failed.
            match p.id {
                Some(id) => self.failed(now, &p, NodeInfo { id, addr: from }),
                None => self.drive_purpose(now, &p.purpose),
            }
            return;
        };
        if lies(&p, &r, self.id) {
            // The answer matched our transaction and address, so it is the node's own: a
            // node that lies once is not worth a place, and its nodes are not worth asking.
            self.stats.lies += 1;
            let asked = NodeInfo {
                id: p.id.unwrap_or(r.id),
                addr: from,
            };
            self.table.remove(&asked);
            if let Purpose::Lookup(lookup) = p.purpose
                && let Some(run) = self.lookups.get_mut(&lookup)
            {
                run.lookup.failed(&asked);
            }
            self.drive_purpose(now, &p.purpose);
            return;
        }
        if let Some(seen) = your_ip
            && let Some(external) = self.external.vote(from, seen)
        {
            self.external_address_is(now, external);
        }
        let node = NodeInfo {
            id: r.id,
            addr: from,
        };
        if let Inserted::Cached { ping } = self.table.heard(now, node, Heard::Response) {
            self.ping_some(now, &ping);
        }
        let Purpose::Lookup(lookup) = p.purpose else {
            return;
        };
        let Some(run) = self.lookups.get_mut(&lookup) else {
            return;
        };
        let nodes: Vec<NodeInfo> = r
            .nodes
            .iter()
            .chain(&r.nodes6)
            .filter(|n| n.id != self.id)
            .copied()
            .collect();
        run.lookup.answered(&node, &nodes, r.token.clone());
        if let Some(info_hash) = run.info_hash
            && !r.values.is_empty()
        {
            let peers = r.values.into_iter().filter(|a| a.port() != 0).collect();
            self.events.push_back(DhtEvent::Peers {
                lookup,
                info_hash,
                peers,
            });
        }
        self.drive(now, lookup);
    }

    /// The vote settled our external address: an id that does not suit it (BEP 42) is
    /// replaced, and the table is rebuilt around the new one from the nodes it held (the
    /// buckets split around our id). Private and loopback addresses suit any id.
    fn external_address_is(&mut self, now: Instant, external: std::net::Ipv4Addr) {
        let ip = IpAddr::V4(external);
        if self.id.is_secure_for(ip) {
            return;
        }
        let id = NodeId::secure_for(ip, &mut self.rng);
        let known: Vec<NodeInfo> = self.table.nodes().map(|e| e.node).collect();
        self.id = id;
        self.table = RoutingTable::new(id, now);
        self.events
            .push_back(DhtEvent::IdChanged { id, external: ip });
        self.bootstrap(now, &[], &known);
    }

    /// A query for `purpose` ended without an answer to use: its lookup goes on.
    fn drive_purpose(&mut self, now: Instant, purpose: &Purpose) {
        if let Purpose::Lookup(lookup) = purpose {
            self.drive(now, *lookup);
        }
    }

    fn failed(&mut self, now: Instant, p: &Pending, node: NodeInfo) {
        self.table.failed(now, &node);
        if let Purpose::Lookup(lookup) = p.purpose
            && let Some(run) = self.lookups.get_mut(&lookup)
        {
            run.lookup.failed(&node);
            self.drive(now, lookup);
        }
    }

    /// Pings a node known only by its address (a peer's PORT message): it enters the table
    /// if it answers.
    pub fn ping_addr(&mut self, now: Instant, addr: SocketAddr) {
        if !self.busy(addr) {
            let q = Query::Ping { id: self.id };
            self.send_query(now, addr, None, q, Purpose::Ping);
        }
    }

    /// Whether a query to `addr` is in flight that will let it into the table when it
    /// answers: a ping, or a query to a known id. A bootstrap query to an address whose id
    /// we do not know does not count: it may have gone out before that node listened (a
    /// router started after us) and be lost, and the node would wait out its time-out
    /// before we could ping it.
    fn busy(&self, addr: SocketAddr) -> bool {
        self.pending
            .values()
            .any(|p| p.to == addr && (p.id.is_some() || matches!(p.purpose, Purpose::Ping)))
    }

    /// Pings one or two questionable nodes of a full bucket, so a dead one makes room.
    fn ping_some(&mut self, now: Instant, nodes: &[NodeInfo]) {
        let todo: Vec<NodeInfo> = nodes
            .iter()
            .filter(|n| !self.busy(n.addr))
            .take(2)
            .copied()
            .collect();
        for n in todo {
            let q = Query::Ping { id: self.id };
            self.send_query(now, n.addr, Some(n.id), q, Purpose::Ping);
        }
    }

    fn on_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transaction: Vec<u8>,
        read_only: bool,
        q: Query,
    ) {
        if self.config.read_only {
            return;
        }
        if !self.limit.allow(now, from.ip()) {
            self.stats.rate_limited += 1;
            return;
        }
        let asker = match &q {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. } => *id,
        };
        // BEP 43: a read-only node is never put in the table. Another enters once it
        // answers a ping: the query's source address alone may be forged.
        if !read_only && asker != self.id {
            let node = NodeInfo {
                id: asker,
                addr: from,
            };
            let known = self.table.heard(now, node, Heard::Query) == Inserted::Updated;
            if !known && self.table.has_room_for(now, &asker) {
                self.ping_some(now, &[node]);
            }
        }
        let body = super::serve::answer(self, now, from, q);
        let reply = Message {
            transaction,
            body,
            read_only: false,
            your_ip: Some(from),
            version: Some(version()),
        };
        self.transmit.push_back((from, reply.encode()));
    }

    /// A query of a method we do not serve: error 204 (BEP 5), within the asker's budget.
    fn unknown_method(&mut self, now: Instant, from: SocketAddr, transaction: Vec<u8>) {
        if self.config.read_only || !self.limit.allow(now, from.ip()) {
            return;
        }
        let reply = Message {
            transaction,
            body: Body::Error {
                code: METHOD_UNKNOWN,
                message: "Method Unknown".to_string(),
            },
            read_only: false,
            your_ip: None,
            version: Some(version()),
        };
        self.transmit.push_back((from, reply.encode()));
    }

    /// Runs what is due: time-outs, token rotation, bucket refreshes, peer expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent) >= QUERY_TIMEOUT)
            .map(|(t, _)| t.clone())
            .collect();
        for t in expired {
            if let Some(p) = self.pending.remove(&t) {
                self.stats.timeouts += 1;
                match p.id {
                    Some(id) => self.failed(now, &p, NodeInfo { id, addr: p.to }),
                    None => self.drive_purpose(now, &p.purpose),
                }
            }
        }
        // Lookup queries silent for SLOW_AFTER give up their slot: the lookup asks others.
        let mut slow = Vec::new();
        for p in self.pending.values_mut() {
            if !p.slow && now.saturating_duration_since(p.sent) >= SLOW_AFTER {
                p.slow = true;
                if let Purpose::Lookup(l) = p.purpose {
                    slow.push(l);
                }
            }
        }
        slow.sort_unstable();
        slow.dedup();
        for l in slow {
            self.drive(now, l);
        }
        self.tokens.rotate(now, &mut self.rng);
        if now >= self.next_maintenance {
            self.next_maintenance = now + MAINTENANCE_EVERY;
            self.store.expire(now);
            for target in self.table.refresh_targets(now, &mut self.rng) {
                self.find_node(now, target);
            }
        }
    }

    /// When [`Node::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Instant {
        let oldest = self
            .pending
            .values()
            .map(|p| p.sent + if p.slow { QUERY_TIMEOUT } else { SLOW_AFTER })
            .min();
        oldest.map_or(self.next_maintenance, |t| t.min(self.next_maintenance))
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// The [`K`] closest nodes to `target` of one family (BEP 32: IPv6 ones for `nodes6`).
    pub(super) fn closest_of(&self, now: Instant, target: &NodeId, v6: bool) -> Vec<NodeInfo> {
        self.table
            .closest_where(now, target, K, |n| n.addr.is_ipv6() == v6)
    }

    /// Tells the user about an announce we stored.
    pub(super) fn announced(&mut self, info_hash: InfoHash, peer: SocketAddr) {
        self.events
            .push_back(DhtEvent::PeerAnnounced { info_hash, peer });
    }

    pub(super) fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub(super) fn store_mut(&mut self) -> (&mut PeerStore, &mut Rng) {
        (&mut self.store, &mut self.rng)
    }
}

/// Our `v` (BEP 5): the client code of our peer ids and the version's two numbers, so
/// that other nodes can tell which implementation they talk to.
fn version() -> Vec<u8> {
    let v = crate::peer_id::ClientVersion::CURRENT;
    let [a, b] = crate::peer_id::CLIENT_CODE;
    vec![a, b, v.major(), v.minor()]
}

/// Whether answer `r` to query `p` lies: it comes under another id than the one we asked
/// (or ours), or names a node nobody can query (port 0, an unspecified, multicast or
/// broadcast address). An honest node only passes on nodes that answered it.
fn lies(p: &Pending, r: &Response, own: NodeId) -> bool {
    let wrong_id = p.id.is_some_and(|id| id != r.id) || r.id == own;
    wrong_id || !r.nodes.iter().chain(&r.nodes6).all(super::usable)
}
