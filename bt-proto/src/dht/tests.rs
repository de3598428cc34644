//! DHT nodes on the simulator's datagram network ([`crate::sim::dht`]): bootstrap, lookups
//! that reach the closest nodes, announces that `get_peers` finds, convergence despite loss
//! and nodes leaving, restarts from a saved table. Deterministic: the same seed gives the
//! same run.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use super::NodeId;
use super::krpc::{Body, Message, NodeInfo, Query};
use super::node::{DhtEvent, Node, NodeConfig};
use super::routing::{K, MAX_FAILURES};
use crate::InfoHash;
use crate::rng::Rng;
use crate::sim::dht::{DhtNetwork, Lie};

fn overlap(found: &[NodeInfo], truth: &[NodeInfo]) -> usize {
    let t: BTreeSet<_> = truth.iter().map(|n| n.id).collect();
    found.iter().filter(|n| t.contains(&n.id)).count()
}

#[test]
fn lookups_in_a_network_of_200_reach_the_closest_nodes() {
    let mut net = DhtNetwork::new(200, 1);
    net.bootstrap_all();
    let mut rng = Rng::seed_from_u64(9);
    let mut queries = Vec::new();
    for k in 0..10 {
        let asker = 1 + rng.index(199);
        let target = NodeId::random(&mut rng);
        let r = net.lookup(asker, target);
        let truth = net.truth(&target, asker);
        assert_eq!(
            overlap(&r.closest, &truth),
            K,
            "lookup {k}: {r:?} vs {truth:?}"
        );
        queries.push(r.queries);
    }
    queries.sort();
    assert!(queries.iter().all(|q| *q < 200), "{queries:?}");
}

#[test]
fn get_peers_finds_every_announcer() {
    let mut net = DhtNetwork::new(200, 2);
    net.bootstrap_all();
    let h = InfoHash([0x42; 20]);
    let announcers = [5usize, 77, 150];
    for (n, a) in announcers.iter().enumerate() {
        let now = net.now();
        net.node_mut(*a)
            .unwrap()
            .get_peers(now, h, Some(Some(7000 + n as u16)));
        net.flush(*a);
    }
    net.run_for(Duration::from_secs(20));
    let now = net.now();
    let l = net.node_mut(33).unwrap().get_peers(now, h, None).unwrap();
    net.flush(33);
    net.run_for(Duration::from_secs(20));
    let found: BTreeSet<SocketAddr> = net
        .events()
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
        let want = SocketAddr::new(net.addr(*a).unwrap().ip(), 7000 + n as u16);
        assert!(found.contains(&want), "{want} not in {found:?}");
    }
}

/// Two nodes alone: what one announced to the other is found by the other's own lookup,
/// from its own store (no third node holds it).
#[test]
fn a_lookup_finds_the_peers_announced_to_its_own_node() {
    let mut net = DhtNetwork::new(2, 5);
    net.bootstrap_all();
    let h = InfoHash([0x24; 20]);
    let now = net.now();
    net.node_mut(1).unwrap().get_peers(now, h, Some(Some(7001)));
    net.flush(1);
    net.run_for(Duration::from_secs(10));
    let now = net.now();
    let l = net.node_mut(0).unwrap().get_peers(now, h, None).unwrap();
    net.flush(0);
    let want = SocketAddr::new(net.addr(1).unwrap().ip(), 7001);
    let found = net.events().iter().any(|(i, e)| {
        matches!(e, DhtEvent::Peers { lookup, peers, .. }
            if *i == 0 && *lookup == l && peers.contains(&want))
    });
    assert!(found, "{:?}", net.events());
}

/// 10 % of datagrams lost and a fifth of the nodes leaving at random moments while the
/// lookups run, some of them in the middle of a lookup that already heard of them.
#[test]
fn lookups_converge_with_loss_and_nodes_leaving() {
    let mut net = DhtNetwork::new(200, 3);
    net.bootstrap_all();
    net.set_loss_percent(10);
    let mut rng = Rng::seed_from_u64(4);
    let span = Duration::from_secs(40);
    let start = net.now();
    let mut leaving = BTreeSet::new();
    for i in 1..net.len() {
        if rng.below(5) == 0 {
            let at = start + Duration::from_millis(rng.below(span.as_millis() as u64));
            net.kill_at(i, at);
            leaving.insert(i);
        }
    }
    let (mut total, mut lookups) = (0, 0);
    while net.now() < start + span || lookups < 8 {
        let asker = loop {
            let a = 1 + rng.index(199);
            if !leaving.contains(&a) {
                break a;
            }
        };
        let target = NodeId::random(&mut rng);
        let r = net.lookup(asker, target);
        total += overlap(&r.closest, &net.truth(&target, asker));
        lookups += 1;
    }
    let gone = (0..net.len()).filter(|i| !net.is_alive(*i)).count();
    assert!(gone >= 30, "only {gone} nodes left");
    // Dead nodes are skipped after their time-out; with loss an honest node may be missed
    // now and then, but the lookups still end among the true closest.
    assert!(
        total * 4 >= lookups * K * 3,
        "{total} of {} in {lookups} lookups",
        lookups * K
    );
}

/// A node whose answers lie (another id than its own, nodes at port 0) leaves the table of
/// the node it answered at once; one answering garbage is bad after [`MAX_FAILURES`]
/// unanswered queries. Neither is ever among what a lookup found.
#[test]
fn nodes_that_lie_or_answer_garbage_are_dropped() {
    let mut net = DhtNetwork::new(150, 10);
    net.bootstrap_all();
    for (liar, lie) in [(20, Lie::WrongId), (21, Lie::PortZero), (22, Lie::Garbage)] {
        net.make_liar(liar, lie);
        let id = net.node(liar).unwrap().id();
        // An honest node that has the liar in its table: a lookup of the liar's own id
        // asks it first.
        let asker = (1..net.len())
            .find(|j| ![20, 21, 22].contains(j) && net.node(*j).unwrap().table().knows(&id))
            .unwrap();
        let lies_before = net.node(asker).unwrap().stats().lies;
        let rounds = if lie == Lie::Garbage { MAX_FAILURES } else { 1 };
        for _ in 0..rounds {
            let r = net.lookup(asker, id);
            assert!(r.closest.iter().all(|n| n.id != id), "{lie:?}: {r:?}");
            assert!(!r.closest.is_empty());
        }
        let node = net.node(asker).unwrap();
        let now = net.now();
        let kept = node.table().closest(now, &id, K).iter().any(|n| n.id == id);
        assert!(!kept, "{lie:?}: still in the table");
        if lie != Lie::Garbage {
            assert!(!node.table().knows(&id), "{lie:?}: still in the table");
            assert!(node.stats().lies > lies_before, "{lie:?}: not counted");
        }
    }
}

/// A node restarted from its saved table (same id, its nodes known) finds the closest
/// nodes again without any router.
#[test]
fn a_saved_table_bootstraps_a_restart_without_routers() {
    let mut net = DhtNetwork::new(120, 7);
    net.bootstrap_all();
    let i = 17;
    let encoded = net.node(i).unwrap().saved().encode();
    let saved = super::saved::SavedTable::decode(&encoded).unwrap();
    assert!(saved.nodes.len() >= K);
    let now = net.now();
    let node = net.node_mut(i).unwrap();
    *node = Node::new(saved.id, NodeConfig::default(), 99, now);
    assert!(node.table().is_empty());
    node.bootstrap(now, &[], &saved.nodes);
    net.flush(i);
    net.run_for(Duration::from_secs(20));
    assert!(net.node(i).unwrap().table().len() >= K);
    let target = NodeId([0x33; 20]);
    let r = net.lookup(i, target);
    assert_eq!(overlap(&r.closest, &net.truth(&target, i)), K);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let trace = |seed| {
        let mut net = DhtNetwork::new(60, seed);
        net.bootstrap_all();
        let r = net.lookup(9, NodeId([7; 20]));
        (r, net.sent(), net.node(9).unwrap().table().len())
    };
    assert_eq!(trace(5), trace(5));
}

#[test]
fn garbage_and_unsolicited_answers_are_dropped_and_a_flood_gets_a_bounded_answer() {
    let mut net = DhtNetwork::new(40, 6);
    net.bootstrap_all();
    let victim = 3;
    let liar = net.addr(7).unwrap();
    let now = net.now();
    let node = net.node_mut(victim).unwrap();
    let before = node.stats();
    node.handle(now, liar, b"not bencode");
    node.handle(
        now,
        liar,
        b"d1:rd2:id20:abcdefghij0123456789e1:t2:zz1:y1:re",
    );
    let after = node.stats();
    assert_eq!(after.malformed, before.malformed + 1);
    assert_eq!(after.unexpected, before.unexpected + 1);
    let ping = Message::query(
        b"pp".to_vec(),
        Query::Ping {
            id: NodeId([9; 20]),
        },
    )
    .encode();
    let flooder: SocketAddr = "203.0.113.9:1".parse().unwrap();
    for _ in 0..1000 {
        node.handle(now, flooder, &ping);
    }
    let (mut answers, mut queries) = (0, 0);
    while let Some((to, data)) = node.poll_transmit() {
        if to != flooder {
            continue;
        }
        match Message::decode(&data).unwrap().body {
            Body::Query(_) => queries += 1,
            _ => answers += 1,
        }
    }
    assert_eq!(answers, super::rate_limit::BURST as usize);
    assert_eq!(queries, 1, "one ping to see whether it is a node");
}

/// A node that queried us enters our table once it answered our ping: the router of a
/// bootstrap learns the nodes that bootstrap from it.
#[test]
fn a_querying_node_enters_the_table_after_our_ping() {
    let mut net = DhtNetwork::new(2, 8);
    let router = net.addr(0).unwrap();
    let now = net.now();
    net.node_mut(1).unwrap().bootstrap(now, &[router], &[]);
    net.flush(1);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.node(1).unwrap().table().len(), 1, "the router answered");
    assert_eq!(
        net.node(0).unwrap().table().len(),
        1,
        "the router pinged it back"
    );
}

/// A router that started after our bootstrap query to it went out (and was lost) queries
/// us: we ping it at once, not only once the lost query timed out, so it enters our table
/// while it is there.
#[test]
fn a_router_that_queries_us_before_our_bootstrap_query_times_out_is_pinged() {
    let now = std::time::Instant::now();
    let router: SocketAddr = "10.0.0.1:6881".parse().unwrap();
    let mut node = Node::new(NodeId([1; 20]), NodeConfig::default(), 1, now);
    node.bootstrap(now, &[router], &[]);
    let lost = node.poll_transmit().unwrap();
    assert_eq!(lost.0, router);
    let query = Message::query(
        b"q1".to_vec(),
        Query::FindNode {
            id: NodeId([2; 20]),
            target: NodeId([3; 20]),
            want: Default::default(),
        },
    );
    node.handle(now, router, &query.encode());
    let sent: Vec<Body> = std::iter::from_fn(|| node.poll_transmit())
        .filter(|(to, _)| *to == router)
        .map(|(_, data)| Message::decode(&data).unwrap().body)
        .collect();
    assert!(
        sent.iter()
            .any(|b| matches!(b, Body::Query(Query::Ping { .. }))),
        "{sent:?}"
    );
}

/// BEP 32: one table holds both families, and a `find_node` from an IPv4 node gets the
/// closest IPv4 nodes, k of them, even when IPv6 nodes are closer to the target.
#[test]
fn an_ipv4_asker_gets_k_ipv4_nodes_when_ipv6_ones_are_closer() {
    let now = std::time::Instant::now();
    let target = NodeId([0x80; 20]);
    let mut rng = Rng::seed_from_u64(3);
    // Our id near the target, so both groups fit the table (in two buckets).
    let mut own = target;
    own.0[19] ^= 1;
    let mut node = Node::new(own, NodeConfig::default(), 1, now);
    // Close IPv6 nodes (sharing 16 bits with the target), farther IPv4 ones.
    let mut others = HashMap::new();
    for i in 0..K as u16 {
        let v6 = SocketAddr::new(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i + 1).into(),
            6881,
        );
        let v4 = SocketAddr::from(([10, 0, 1, i as u8 + 1], 6881));
        others.insert(v6, target.random_with_prefix(16, &mut rng));
        others.insert(v4, target.random_with_prefix(4, &mut rng));
    }
    for (addr, id) in &others {
        node.ping_addr(now, *addr);
        answer_queries(&mut node, now, *id, *addr);
    }
    assert_eq!(node.table().len(), 2 * K);
    let asker: SocketAddr = "10.9.9.9:6881".parse().unwrap();
    let q = Message::query(
        b"fn".to_vec(),
        Query::FindNode {
            id: NodeId([9; 20]),
            target,
            want: Default::default(),
        },
    );
    node.handle(now, asker, &q.encode());
    let reply = std::iter::from_fn(|| node.poll_transmit())
        .filter(|(to, _)| *to == asker)
        .find_map(|(_, d)| match Message::decode(&d).unwrap().body {
            Body::Response(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(reply.nodes.len(), K, "{reply:?}");
    assert!(reply.nodes.iter().all(|n| n.addr.is_ipv4()));
    assert!(reply.nodes6.is_empty());
}

/// Answers every query `node` sent to `addr` as the node `id` there would (an empty
/// answer), dropping what it sent elsewhere.
fn answer_queries(node: &mut Node, now: std::time::Instant, id: NodeId, addr: SocketAddr) {
    let sent: Vec<(SocketAddr, Vec<u8>)> = std::iter::from_fn(|| node.poll_transmit()).collect();
    for (to, data) in sent {
        let m = Message::decode(&data).unwrap();
        if to != addr || !matches!(m.body, Body::Query(_)) {
            continue;
        }
        let reply = Message {
            transaction: m.transaction,
            body: Body::Response(super::krpc::Response {
                id,
                ..Default::default()
            }),
            read_only: false,
            your_ip: None,
            version: None,
        };
        node.handle(now, addr, &reply.encode());
    }
}

/// Twenty nodes at public addresses answer our bootstrap saying they see us at a public
/// address our random id does not suit: the node takes a BEP 42 id for it, says so, and
/// asks the nodes it knew again to fill a table around the new id. Votes for a private
/// address change nothing.
#[test]
fn a_vote_on_our_external_address_gives_us_a_bep42_id() {
    use super::external_ip::ROUND_VOTES;
    let run = |seen: SocketAddr| {
        let now = std::time::Instant::now();
        let mut node = Node::new(NodeId([0x11; 20]), NodeConfig::default(), 1, now);
        let routers: Vec<SocketAddr> = (0..ROUND_VOTES)
            .map(|i| SocketAddr::from(([198, 51, 100, i as u8 + 1], 6881)))
            .collect();
        node.bootstrap(now, &routers, &[]);
        let sent: Vec<_> = std::iter::from_fn(|| node.poll_transmit()).collect();
        let mut rng = Rng::seed_from_u64(2);
        for (to, data) in sent {
            let m = Message::decode(&data).unwrap();
            let reply = Message {
                transaction: m.transaction,
                body: Body::Response(super::krpc::Response {
                    id: NodeId::random(&mut rng),
                    ..Default::default()
                }),
                read_only: false,
                your_ip: Some(seen),
                version: None,
            };
            node.handle(now, to, &reply.encode());
        }
        let asked_again = std::iter::from_fn(|| node.poll_transmit())
            .filter(|(to, _)| routers.contains(to))
            .count();
        let changed = std::iter::from_fn(|| node.poll_event())
            .find(|e| matches!(e, DhtEvent::IdChanged { .. }));
        (node.id(), changed, asked_again)
    };
    let public: SocketAddr = "203.0.113.7:6881".parse().unwrap();
    let (id, changed, asked_again) = run(public);
    assert!(id.is_secure_for(public.ip()));
    assert!(!NodeId([0x11; 20]).is_secure_for(public.ip()));
    assert_eq!(
        changed,
        Some(DhtEvent::IdChanged {
            id,
            external: public.ip()
        })
    );
    assert!(asked_again >= super::lookup::ALPHA, "{asked_again}");
    let (id, changed, _) = run("192.168.1.5:6881".parse().unwrap());
    assert_eq!((id, changed), (NodeId([0x11; 20]), None));
}

/// A query of a method we do not know is answered with error 204 and its transaction id
/// (BEP 5), so the asker does not wait for a time-out; like every message of ours it
/// carries our `v`.
#[test]
fn an_unknown_method_gets_error_204() {
    let now = std::time::Instant::now();
    let mut node = Node::new(NodeId([1; 20]), NodeConfig::default(), 1, now);
    let from: SocketAddr = "10.0.0.9:6881".parse().unwrap();
    node.handle(
        now,
        from,
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:frob1:t2:aa1:y1:qe",
    );
    let (to, data) = node.poll_transmit().unwrap();
    assert_eq!(to, from);
    let m = Message::decode(&data).unwrap();
    assert_eq!(m.transaction, b"aa");
    assert!(matches!(m.body, Body::Error { code: 204, .. }), "{m:?}");
    // Our messages say which client sent them (`v`: client code and version).
    assert_eq!(
        m.version.as_deref().and_then(|v| v.get(..2)),
        Some(&b"Sx"[..])
    );
}
