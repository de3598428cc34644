//! DHT nodes on an in-memory network with virtual time: bootstrap, lookups that reach the
//! closest nodes, announces that `get_peers` finds, and convergence despite loss and nodes
//! leaving. Deterministic: the same seed gives the same run.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::NodeId;
use super::krpc::NodeInfo;
use super::node::{DhtEvent, LookupId, Node, NodeConfig};
use crate::InfoHash;
use crate::rng::Rng;

const LATENCY: Duration = Duration::from_millis(30);
const TICK: Duration = Duration::from_secs(1);

/// A datagram on its way: when it arrives, a sequence number to keep order among equal
/// times, the receiving node, the sender's address and the bytes.
type Delivery = (Instant, u64, usize, SocketAddr, Vec<u8>);

struct Net {
    nodes: Vec<Node>,
    addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    alive: Vec<bool>,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    now: Instant,
    next_tick: Instant,
    rng: Rng,
    /// Datagrams lost, in percent.
    loss: u64,
    events: Vec<(usize, DhtEvent)>,
    sent: u64,
}

impl Net {
    fn new(n: usize, seed: u64) -> Net {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(seed);
        let mut net = Net {
            nodes: Vec::new(),
            addrs: Vec::new(),
            by_addr: HashMap::new(),
            alive: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now,
            next_tick: now + TICK,
            rng: Rng::seed_from_u64(seed ^ 0x5eed),
            loss: 0,
            events: Vec::new(),
            sent: 0,
        };
        for i in 0..n {
            let addr = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881));
            let id = NodeId::random(&mut rng);
            net.nodes
                .push(Node::new(id, NodeConfig::default(), rng.next_u64(), now));
            net.by_addr.insert(addr, i);
            net.addrs.push(addr);
            net.alive.push(true);
        }
        net
    }

    fn flush(&mut self, i: usize) {
        let from = self.addrs[i];
        while let Some((to, data)) = self.nodes[i].poll_transmit() {
            self.sent += 1;
            if self.rng.below(100) < self.loss {
                continue;
            }
            if let Some(&j) = self.by_addr.get(&to) {
                let jitter = Duration::from_millis(self.rng.below(20));
                self.seq += 1;
                let at = self.now + LATENCY + jitter;
                self.queue.push(Reverse((at, self.seq, j, from, data)));
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events.push((i, e));
        }
    }

    fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            let next_msg = self.queue.peek().map(|Reverse((at, ..))| *at);
            let next = next_msg.map_or(self.next_tick, |m| m.min(self.next_tick));
            if next > end {
                self.now = end;
                return;
            }
            self.now = next;
            if next_msg == Some(next) {
                let Some(Reverse((_, _, j, from, data))) = self.queue.pop() else {
                    return;
                };
                if self.alive[j] {
                    self.nodes[j].handle(self.now, from, &data);
                    self.flush(j);
                }
            } else {
                self.next_tick = self.now + TICK;
                for i in 0..self.nodes.len() {
                    if self.alive[i] && self.nodes[i].poll_timeout() <= self.now {
                        self.nodes[i].handle_timeout(self.now);
                        self.flush(i);
                    }
                }
            }
        }
    }

    /// Every node bootstraps from node 0, a few at a time.
    fn bootstrap(&mut self) {
        let router = self.addrs[0];
        for i in 1..self.nodes.len() {
            self.nodes[i].bootstrap(self.now, &[router], &[]);
            self.flush(i);
            if i % 20 == 0 {
                self.run_for(Duration::from_millis(500));
            }
        }
        self.run_for(Duration::from_secs(30));
    }

    fn info(&self, i: usize) -> NodeInfo {
        NodeInfo {
            id: self.nodes[i].id(),
            addr: self.addrs[i],
        }
    }

    /// The K closest live nodes to `target` that are not `asker`.
    fn truth(&self, target: &NodeId, asker: usize) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = (0..self.nodes.len())
            .filter(|i| self.alive[*i] && *i != asker)
            .map(|i| self.info(i))
            .collect();
        all.sort_by_key(|n| n.id.distance(target));
        all.truncate(super::routing::K);
        all
    }

    fn done(&self, node: usize, lookup: LookupId) -> Option<(u32, Vec<NodeInfo>)> {
        self.events.iter().find_map(|(i, e)| match e {
            DhtEvent::LookupDone {
                lookup: l,
                queries,
                closest,
                ..
            } if *i == node && *l == lookup => Some((*queries, closest.clone())),
            _ => None,
        })
    }

    /// Node `asker` looks up `target`; returns the closest it found and the queries it took.
    fn lookup(&mut self, asker: usize, target: NodeId) -> (Vec<NodeInfo>, u32) {
        let l = self.nodes[asker].find_node(self.now, target).unwrap();
        self.flush(asker);
        for _ in 0..120 {
            if let Some((queries, closest)) = self.done(asker, l) {
                return (closest, queries);
            }
            self.run_for(Duration::from_millis(500));
        }
        panic!("lookup never ended");
    }
}

fn overlap(found: &[NodeInfo], truth: &[NodeInfo]) -> usize {
    let t: BTreeSet<_> = truth.iter().map(|n| n.id).collect();
    found.iter().filter(|n| t.contains(&n.id)).count()
}

#[test]
fn lookups_in_a_network_of_500_reach_the_closest_nodes() {
    let mut net = Net::new(500, 1);
    net.bootstrap();
    let mut rng = Rng::seed_from_u64(9);
    let mut queries = Vec::new();
    for k in 0..10 {
        let asker = 1 + rng.index(499);
        let target = NodeId::random(&mut rng);
        let (found, q) = net.lookup(asker, target);
        let truth = net.truth(&target, asker);
        assert_eq!(
            overlap(&found, &truth),
            truth.len(),
            "lookup {k}: {found:?} vs {truth:?}"
        );
        queries.push(q);
    }
    queries.sort();
    assert!(queries[queries.len() - 1] < 200, "{queries:?}");
}

#[test]
fn get_peers_finds_every_announcer() {
    let mut net = Net::new(200, 2);
    net.bootstrap();
    let h = InfoHash([0x42; 20]);
    let announcers = [5usize, 77, 150];
    for (n, a) in announcers.iter().enumerate() {
        net.nodes[*a].get_peers(net.now, h, Some(Some(7000 + n as u16)));
        net.flush(*a);
    }
    net.run_for(Duration::from_secs(20));
    let l = net.nodes[33].get_peers(net.now, h, None).unwrap();
    net.flush(33);
    net.run_for(Duration::from_secs(20));
    let found: BTreeSet<SocketAddr> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            DhtEvent::Peers { lookup, peers, .. } if *i == 33 && *lookup == l => {
                Some(peers.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    for (n, a) in announcers.iter().enumerate() {
        let want = SocketAddr::new(net.addrs[*a].ip(), 7000 + n as u16);
        assert!(found.contains(&want), "{want} not in {found:?}");
    }
}

/// Two nodes alone: what one announced to the other is found by the other's own lookup,
/// from its own store (no third node holds it).
#[test]
fn a_lookup_finds_the_peers_announced_to_its_own_node() {
    let mut net = Net::new(2, 5);
    net.bootstrap();
    let h = InfoHash([0x24; 20]);
    net.nodes[1].get_peers(net.now, h, Some(Some(7001)));
    net.flush(1);
    net.run_for(Duration::from_secs(10));
    let l = net.nodes[0].get_peers(net.now, h, None).unwrap();
    net.flush(0);
    let want = SocketAddr::new(net.addrs[1].ip(), 7001);
    let found = net.events.iter().any(|(i, e)| {
        matches!(e, DhtEvent::Peers { lookup, peers, .. }
            if *i == 0 && *lookup == l && peers.contains(&want))
    });
    assert!(found, "{:?}", net.events);
}

#[test]
fn lookups_converge_with_loss_and_nodes_leaving() {
    let mut net = Net::new(300, 3);
    net.bootstrap();
    net.loss = 10;
    let mut rng = Rng::seed_from_u64(4);
    for i in 1..net.nodes.len() {
        if rng.below(5) == 0 {
            net.alive[i] = false;
        }
    }
    let mut total = 0;
    for _ in 0..8 {
        let asker = loop {
            let a = 1 + rng.index(299);
            if net.alive[a] {
                break a;
            }
        };
        let target = NodeId::random(&mut rng);
        let (found, _) = net.lookup(asker, target);
        let truth = net.truth(&target, asker);
        total += overlap(&found, &truth);
    }
    // Dead nodes are skipped after their time-out; with loss, an honest node may be missed
    // now and then, but the lookups still end among the true closest.
    assert!(total >= 8 * 6, "{total} of {}", 8 * 8);
}

/// A node restarted from its saved table (same id, its nodes known) finds the closest
/// nodes again without any router.
#[test]
fn a_saved_table_bootstraps_a_restart_without_routers() {
    let mut net = Net::new(120, 7);
    net.bootstrap();
    let i = 17;
    let saved = super::saved::SavedTable::decode(&net.nodes[i].saved().encode()).unwrap();
    assert!(saved.nodes.len() >= super::routing::K);
    net.nodes[i] = Node::new(saved.id, NodeConfig::default(), 99, net.now);
    assert!(net.nodes[i].table().is_empty());
    net.nodes[i].bootstrap(net.now, &[], &saved.nodes);
    net.flush(i);
    net.run_for(Duration::from_secs(20));
    assert!(net.nodes[i].table().len() >= super::routing::K);
    let target = NodeId([0x33; 20]);
    let (found, _) = net.lookup(i, target);
    assert_eq!(overlap(&found, &net.truth(&target, i)), super::routing::K);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let trace = |seed| {
        let mut net = Net::new(60, seed);
        net.bootstrap();
        let target = NodeId([7; 20]);
        let r = net.lookup(9, target);
        (r, net.sent, net.nodes[9].table().len())
    };
    assert_eq!(trace(5), trace(5));
}

#[test]
fn liars_and_garbage_are_dropped_and_answers_stay_bounded() {
    let mut net = Net::new(40, 6);
    net.bootstrap();
    let victim = 3;
    let before = net.nodes[victim].stats();
    let liar = net.addrs[7];
    // Garbage, and an answer to a query never sent.
    let now = net.now;
    net.nodes[victim].handle(now, liar, b"not bencode");
    net.nodes[victim].handle(
        now,
        liar,
        b"d1:rd2:id20:abcdefghij0123456789e1:t2:zz1:y1:re",
    );
    let after = net.nodes[victim].stats();
    assert_eq!(after.malformed, before.malformed + 1);
    assert_eq!(after.unexpected, before.unexpected + 1);
    // A flood of queries from one host gets a bounded number of answers.
    let ping = super::krpc::Message::query(
        b"pp".to_vec(),
        super::krpc::Query::Ping {
            id: NodeId([9; 20]),
        },
    )
    .encode();
    let flooder: SocketAddr = "203.0.113.9:1".parse().unwrap();
    for _ in 0..1000 {
        net.nodes[victim].handle(now, flooder, &ping);
    }
    let (mut answers, mut queries) = (0, 0);
    while let Some((to, data)) = net.nodes[victim].poll_transmit() {
        if to != flooder {
            continue;
        }
        match super::krpc::Message::decode(&data).unwrap().body {
            super::krpc::Body::Query(_) => queries += 1,
            _ => answers += 1,
        }
    }
    assert_eq!(answers, super::rate_limit::BURST as usize);
    assert_eq!(queries, 1, "one ping to see whether it is a node");
}
