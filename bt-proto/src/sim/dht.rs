//! DHT nodes ([`crate::dht::node::Node`]) on a simulated datagram network with virtual
//! time: latency with jitter, loss, nodes that leave. Every random choice comes from the
//! seed, so the same seed gives the same run.
//!
//! ```
//! use bt_proto::dht::NodeId;
//! use bt_proto::sim::dht::DhtNetwork;
//! let mut net = DhtNetwork::new(50, 1);
//! net.bootstrap_all();
//! let found = net.lookup(7, NodeId([9; 20]));
//! assert_eq!(found.closest.len(), 8);
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dht::NodeId;
use crate::dht::krpc::{Body, Message, NodeInfo};
use crate::dht::node::{DhtEvent, LookupId, Node, NodeConfig};
use crate::dht::routing::K;
use crate::rng::Rng;

/// One-way latency of a datagram before jitter.
pub const LATENCY: Duration = Duration::from_millis(30);

/// Jitter added to each datagram, up to this much: enough to reorder answers.
pub const MAX_JITTER: Duration = Duration::from_millis(20);

/// How often every node's time-outs are looked at.
const TICK: Duration = Duration::from_secs(1);

/// How long [`DhtNetwork::lookup`] waits for a lookup to end before giving up.
const LOOKUP_LIMIT: Duration = Duration::from_secs(60);

/// A datagram on its way: when it arrives, a sequence number to keep order among equal
/// times, the receiving node, the sender's address and the bytes.
type Delivery = (Instant, u64, usize, SocketAddr, Vec<u8>);

/// What one lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupResult {
    /// The closest nodes that answered, closest first.
    pub closest: Vec<NodeInfo>,
    /// Queries the lookup sent.
    pub queries: u32,
    /// Steps from the starting nodes to the closest (see
    /// [`crate::dht::lookup::Lookup::hops`]).
    pub hops: u32,
}

/// How a lying node ([`DhtNetwork::make_liar`]) bends its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// It answers under a random id, not its own.
    WrongId,
    /// The nodes it lists point at port 0.
    PortZero,
    /// It answers with bytes that are not KRPC.
    Garbage,
}

/// Nodes at `10.x.y.z:6881`, node `i` at the address of `i`.
pub struct DhtNetwork {
    nodes: Vec<Node>,
    addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    alive: Vec<bool>,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    now: Instant,
    next_tick: Instant,
    rng: Rng,
    loss_percent: u64,
    events: Vec<(usize, DhtEvent)>,
    sent: u64,
    liars: HashMap<usize, Lie>,
    /// Nodes to leave at a time: (when, node), earliest first.
    leaving: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl DhtNetwork {
    /// `n` nodes with random ids, none bootstrapped.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        // A base instant for virtual time: taken once, never read again.
        let now = Instant::now();
        let mut net = DhtNetwork {
            nodes: Vec::new(),
            addrs: Vec::new(),
            by_addr: HashMap::new(),
            alive: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now,
            next_tick: now + TICK,
            rng: Rng::seed_from_u64(rng.next_u64()),
            loss_percent: 0,
            events: Vec::new(),
            sent: 0,
            liars: HashMap::new(),
            leaving: BinaryHeap::new(),
        };
        for i in 0..n {
            let b = (i as u32).to_be_bytes();
            let addr = SocketAddr::from(([10, b[1], b[2], b[3]], 6881));
            let id = NodeId::random(&mut rng);
            let node = Node::new(id, NodeConfig::default(), rng.next_u64(), now);
            net.nodes.push(node);
            net.by_addr.insert(addr, i);
            net.addrs.push(addr);
            net.alive.push(true);
        }
        net
    }

    /// Datagrams lost from now on, in percent.
    pub fn set_loss_percent(&mut self, percent: u64) {
        self.loss_percent = percent;
    }

    /// Node `i` leaves: what is sent to it is lost, and it does nothing more.
    pub fn kill(&mut self, i: usize) {
        if let Some(a) = self.alive.get_mut(i) {
            *a = false;
        }
    }

    /// Node `i` leaves at `at` (virtual time), while the network runs.
    pub fn kill_at(&mut self, i: usize, at: Instant) {
        self.leaving.push(Reverse((at, i)));
    }

    /// Node `i` lies in every answer it sends from now on, as `lie` says.
    pub fn make_liar(&mut self, i: usize, lie: Lie) {
        self.liars.insert(i, lie);
    }

    /// Whether node `i` is still there.
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive.get(i).copied().unwrap_or(false)
    }

    /// Nodes in the network.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the network has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i)
    }

    /// Node `i`, to drive it; call [`DhtNetwork::flush`] after.
    pub fn node_mut(&mut self, i: usize) -> Option<&mut Node> {
        self.nodes.get_mut(i)
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.addrs.get(i).copied()
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Datagrams sent so far, lost ones included.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Every event so far, with the node that emitted it.
    pub fn events(&self) -> &[(usize, DhtEvent)] {
        &self.events
    }

    fn info(&self, i: usize) -> Option<NodeInfo> {
        Some(NodeInfo {
            id: self.nodes.get(i)?.id(),
            addr: self.addr(i)?,
        })
    }

    /// Puts what node `i` sent on the network and records its events.
    pub fn flush(&mut self, i: usize) {
        let (Some(from), Some(node)) = (self.addrs.get(i).copied(), self.nodes.get_mut(i)) else {
            return;
        };
        let lie = self.liars.get(&i).copied();
        while let Some((to, data)) = node.poll_transmit() {
            let data = match lie {
                Some(lie) => bend(lie, data, &mut self.rng),
                None => data,
            };
            self.sent += 1;
            if self.rng.below(100) < self.loss_percent {
                continue;
            }
            if let Some(&j) = self.by_addr.get(&to) {
                let jitter = self.rng.below(MAX_JITTER.as_millis() as u64);
                self.seq += 1;
                let at = self.now + LATENCY + Duration::from_millis(jitter);
                self.queue.push(Reverse((at, self.seq, j, from, data)));
            }
        }
        while let Some(e) = node.poll_event() {
            self.events.push((i, e));
        }
    }

    /// Runs the network for `span` of virtual time.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            let next_msg = self.queue.peek().map(|Reverse((at, ..))| *at);
            let next = next_msg.map_or(self.next_tick, |m| m.min(self.next_tick));
            if next > end {
                self.now = end;
                return;
            }
            self.now = next;
            while let Some(Reverse((at, i))) = self.leaving.peek().copied()
                && at <= next
            {
                self.leaving.pop();
                self.kill(i);
            }
            if next_msg == Some(next) {
                let Some(Reverse((_, _, j, from, data))) = self.queue.pop() else {
                    return;
                };
                if self.is_alive(j)
                    && let Some(node) = self.nodes.get_mut(j)
                {
                    node.handle(next, from, &data);
                    self.flush(j);
                }
            } else {
                self.next_tick = next + TICK;
                for i in 0..self.nodes.len() {
                    let due = self.nodes.get(i).is_some_and(|n| n.poll_timeout() <= next);
                    if self.is_alive(i) && due {
                        if let Some(n) = self.nodes.get_mut(i) {
                            n.handle_timeout(next);
                        }
                        self.flush(i);
                    }
                }
            }
        }
    }

    /// Every node but the first bootstraps from the first, twenty at a time, then the
    /// network settles for 30 s.
    pub fn bootstrap_all(&mut self) {
        let Some(router) = self.addr(0) else {
            return;
        };
        for i in 1..self.nodes.len() {
            let now = self.now;
            if let Some(n) = self.nodes.get_mut(i) {
                n.bootstrap(now, &[router], &[]);
            }
            self.flush(i);
            if i % 20 == 0 {
                self.run_for(Duration::from_millis(500));
            }
        }
        self.run_for(Duration::from_secs(30));
    }

    /// The [`K`] closest live nodes to `target`, `asker` left out: what a lookup should find.
    pub fn truth(&self, target: &NodeId, asker: usize) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = (0..self.nodes.len())
            .filter(|i| self.is_alive(*i) && *i != asker)
            .filter_map(|i| self.info(i))
            .collect();
        all.sort_by_key(|n| n.id.distance(target));
        all.truncate(K);
        all
    }

    fn done(&self, node: usize, lookup: LookupId) -> Option<LookupResult> {
        self.events.iter().find_map(|(i, e)| match e {
            DhtEvent::LookupDone {
                lookup: l,
                queries,
                hops,
                closest,
                ..
            } if *i == node && *l == lookup => Some(LookupResult {
                closest: closest.clone(),
                queries: *queries,
                hops: *hops,
            }),
            _ => None,
        })
    }

    /// Node `asker` looks up `target`; what it found once done. Empty if it could not start
    /// one, or it did not end within a minute of virtual time.
    pub fn lookup(&mut self, asker: usize, target: NodeId) -> LookupResult {
        let empty = LookupResult {
            closest: Vec::new(),
            queries: 0,
            hops: 0,
        };
        let now = self.now;
        let Some(l) = self
            .nodes
            .get_mut(asker)
            .and_then(|n| n.find_node(now, target))
        else {
            return empty;
        };
        self.flush(asker);
        let end = self.now + LOOKUP_LIMIT;
        while self.now < end {
            if let Some(r) = self.done(asker, l) {
                return r;
            }
            self.run_for(Duration::from_millis(100));
        }
        empty
    }
}

/// An answer as a liar sends it; queries and what does not decode go out as they are.
fn bend(lie: Lie, data: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    let Ok(mut m) = Message::decode(&data) else {
        return data;
    };
    let Body::Response(r) = &mut m.body else {
        return data;
    };
    match lie {
        Lie::WrongId => r.id = NodeId::random(rng),
        Lie::PortZero => {
            for n in r.nodes.iter_mut().chain(&mut r.nodes6) {
                n.addr.set_port(0);
            }
        }
        Lie::Garbage => return b"d1:y1:r1:rxe".to_vec(),
    }
    m.encode()
}
