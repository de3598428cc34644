//! The DHT (BEP 5) in the engine, on the simulator: a leecher that knows only an info-hash
//! finds the seed through a DHT of other sessions, with the tracker listing nobody; and a
//! private torrent never touches the DHT.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bt_proto::engine::{
    AddTorrent, Config, DHT_SEARCH_INTERVAL, DHT_SEARCH_RETRY, DHT_STARVED_SEARCH, TorrentId,
};
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_private_torrent, make_torrent};

const KIB: u64 = 1024;

fn dht_on(c: &mut Config) {
    c.dht = true;
}

fn node(swarm: &mut Swarm) -> NodeId {
    swarm.add_node(NodeOptions {
        upload: Some(512 * KIB),
        tweak: Some(dht_on),
        ..Default::default()
    })
}

/// A DHT of `n` sessions with no torrent, each bootstrapped from the first.
fn dht_nodes(swarm: &mut Swarm, n: usize) -> Vec<NodeId> {
    let nodes: Vec<NodeId> = (0..n).map(|_| node(swarm)).collect();
    let (first, rest) = nodes.split_first().unwrap();
    let router = swarm.addr(*first);
    for x in rest {
        swarm.with_session(*x, |s, now| s.dht_bootstrap(now, &[router], &[]));
        swarm.run_for(Duration::from_millis(200));
    }
    swarm.run_for(Duration::from_secs(10));
    nodes
}

/// A session with DHT bootstrapped from `router`, seeding `meta`.
fn dht_seed(swarm: &mut Swarm, router: SocketAddr, meta: &Metainfo, content: &[u8]) -> NodeId {
    let seed = node(swarm);
    swarm.with_session(seed, |s, now| s.dht_bootstrap(now, &[router], &[]));
    swarm.add_seed(seed, meta, content);
    seed
}

/// A DHT session bootstrapped from `router` that adds a magnet link with only `meta`'s
/// info-hash.
fn join_by_magnet(swarm: &mut Swarm, router: SocketAddr, meta: &Metainfo) -> (NodeId, TorrentId) {
    let leecher = node(swarm);
    swarm.with_session(leecher, |s, now| s.dht_bootstrap(now, &[router], &[]));
    let magnet = Magnet::new(meta.info_hash());
    let t = swarm.add_magnet(leecher, &magnet, AddTorrent::default());
    (leecher, t)
}

#[test]
fn a_magnet_with_only_the_info_hash_completes_through_the_dht() {
    let (meta, content) = make_torrent(&[("d.bin", 200 * KIB)], 16 * 1024, 4).unwrap();
    let mut swarm = Swarm::new(31);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(20)));
    // The tracker answers but lists nobody: peers can come from the DHT only.
    swarm.tracker_mut().set_max_peers_per_reply(Some(0));
    let others = dht_nodes(&mut swarm, 12);
    let router = swarm.addr(*others.first().unwrap());
    dht_seed(&mut swarm, router, &meta, &content);
    swarm.run_for(Duration::from_secs(20));
    let (leecher, t) = join_by_magnet(&mut swarm, router, &meta);
    // Its first search ran on an empty table; the end of its bootstrap starts the next at
    // once, rather than after DHT_SEARCH_RETRY.
    let took = swarm
        .run_until(|s| s.is_complete(leecher, t), Duration::from_secs(300))
        .unwrap();
    assert!(
        took < DHT_SEARCH_RETRY,
        "complete after {took:?} of virtual time"
    );
    assert_eq!(swarm.content(leecher, &meta), content);
    let table = swarm
        .session(leecher)
        .and_then(|s| s.dht_node().map(|n| n.table().len()))
        .unwrap();
    assert!(table >= 8, "the leecher's table holds {table} nodes");
}

/// The same over links that lose 5 % of datagrams and segments and reorder datagrams
/// (30 ms of jitter): the DHT's time-outs and retries still bring the leecher to the seed.
#[test]
fn a_magnet_completes_through_the_dht_over_lossy_reordering_links() {
    let (meta, content) = make_torrent(&[("l.bin", 200 * KIB)], 16 * 1024, 8).unwrap();
    let mut swarm = Swarm::new(35);
    let lossy = LinkConfig::new(Duration::from_millis(20))
        .with_jitter(Duration::from_millis(30))
        .with_loss(0.05);
    swarm.set_default_link(lossy);
    swarm.tracker_mut().set_max_peers_per_reply(Some(0));
    let others = dht_nodes(&mut swarm, 12);
    let router = swarm.addr(*others.first().unwrap());
    dht_seed(&mut swarm, router, &meta, &content);
    swarm.run_for(Duration::from_secs(20));
    let (leecher, t) = join_by_magnet(&mut swarm, router, &meta);
    swarm
        .run_until(|s| s.is_complete(leecher, t), Duration::from_secs(300))
        .unwrap();
    assert_eq!(swarm.content(leecher, &meta), content);
}

/// A seed that cannot be dialled (behind a NAT) dials a leecher as soon as it announces
/// itself to the seed's node, rather than at the seed's next search.
#[test]
fn a_seed_dials_a_peer_that_announced_to_its_node() {
    let (meta, content) = make_torrent(&[("n.bin", 64 * KIB)], 16 * 1024, 6).unwrap();
    let mut swarm = Swarm::new(33);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(20)));
    swarm.tracker_mut().set_max_peers_per_reply(Some(0));
    // Fewer than k nodes in all: every node is among the closest to the info-hash, so the
    // leecher announces to the seed's node too.
    let others = dht_nodes(&mut swarm, 4);
    let router = swarm.addr(*others.first().unwrap());
    let seed = swarm.add_node(NodeOptions {
        upload: Some(512 * KIB),
        refuse: true,
        tweak: Some(dht_on),
        ..Default::default()
    });
    swarm.with_session(seed, |s, now| s.dht_bootstrap(now, &[router], &[]));
    swarm.add_seed(seed, &meta, &content);
    swarm.run_for(Duration::from_secs(5));
    let (leecher, t) = join_by_magnet(&mut swarm, router, &meta);
    let took = swarm
        .run_until(|s| s.is_complete(leecher, t), Duration::from_secs(300))
        .unwrap();
    // The seed's own next search, with its table thin, would come DHT_SEARCH_RETRY after
    // its last one, about 25 s after the leecher joined.
    assert!(
        took < DHT_SEARCH_RETRY / 3,
        "complete after {took:?} of virtual time"
    );
    assert_eq!(swarm.content(leecher, &meta), content);
}

/// A leecher that found nobody searches again [`DHT_STARVED_SEARCH`] after its last
/// search, not [`DHT_SEARCH_INTERVAL`] later: it finds a seed that announced after it
/// looked (and that cannot dial it, being unable to reach it). The leecher's node is
/// read-only, so nobody announces to it: it learns of the seed by searching.
#[test]
fn a_starved_leecher_searches_again_soon() {
    let (meta, content) = make_torrent(&[("s.bin", 64 * KIB)], 16 * 1024, 7).unwrap();
    let mut swarm = Swarm::new(34);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(20)));
    swarm.tracker_mut().set_max_peers_per_reply(Some(0));
    // Enough nodes that searches do not end thin (no DHT_SEARCH_RETRY).
    let others = dht_nodes(&mut swarm, 12);
    let router = swarm.addr(*others.first().unwrap());
    let leecher = swarm.add_node(NodeOptions {
        refuse: true,
        tweak: Some(|c| {
            c.dht = true;
            c.dht_read_only = true;
        }),
        ..Default::default()
    });
    swarm.with_session(leecher, |s, now| s.dht_bootstrap(now, &[router], &[]));
    swarm.run_for(Duration::from_secs(5));
    let t = swarm.add_magnet(
        leecher,
        &Magnet::new(meta.info_hash()),
        AddTorrent::default(),
    );
    swarm.run_for(Duration::from_secs(30));
    assert!(!swarm.is_complete(leecher, t));
    dht_seed(&mut swarm, router, &meta, &content);
    let took = swarm
        .run_until(|s| s.is_complete(leecher, t), DHT_SEARCH_INTERVAL)
        .unwrap();
    assert!(
        took < DHT_STARVED_SEARCH,
        "complete {took:?} after the seed came"
    );
    assert_eq!(swarm.content(leecher, &meta), content);
}

#[test]
fn a_private_torrent_never_touches_the_dht() {
    let (meta, content) = make_private_torrent(&[("p.bin", 64 * KIB)], 16 * 1024, 5).unwrap();
    let mut swarm = Swarm::new(32);
    swarm.tracker_mut().set_max_peers_per_reply(Some(0));
    let others = dht_nodes(&mut swarm, 6);
    let router = swarm.addr(*others.first().unwrap());
    let seed = dht_seed(&mut swarm, router, &meta, &content);
    let leecher = node(&mut swarm);
    swarm.with_session(leecher, |s, now| s.dht_bootstrap(now, &[router], &[]));
    let t = swarm.add_torrent(leecher, &meta, AddTorrent::default());
    swarm.run_for(Duration::from_secs(120));
    assert!(!swarm.is_complete(leecher, t), "found through the DHT");
    for n in others.iter().chain([&seed, &leecher]) {
        let stored = swarm
            .session(*n)
            .and_then(|s| s.dht_node().map(|d| d.stored_peers()))
            .unwrap();
        assert_eq!(stored, 0, "nobody announced a private torrent");
    }
}
