//! Peer exchange (BEP 11) on the simulator: a tracker that hands each peer a single other
//! address, the seed's, and peer exchange introducing the leechers to one another; on a
//! private torrent, or with PEX switched off, nobody is introduced.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bt_proto::Bitfield;
use bt_proto::engine::{AddTorrent, Config, Event, TorrentId};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_private_torrent, make_torrent};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const LEECHERS: usize = 6;

/// The hosts `n` had a connection with, at any time.
fn met(swarm: &Swarm, n: NodeId) -> BTreeSet<IpAddr> {
    swarm
        .events(n)
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PeerConnected { addr, .. } => Some(addr.ip()),
            _ => None,
        })
        .collect()
}

/// A seed and [`LEECHERS`] leechers of `meta` behind a tracker that gives each announce one
/// address (the seed's: it announced first and has the lowest address); each node's
/// configuration tuned by `tweak`. Runs until every leecher completes, checks their bytes,
/// and returns for each leecher the other leechers it had a connection with.
fn run(
    name: &str,
    meta: &Metainfo,
    content: &[u8],
    tweak: Option<fn(&mut Config)>,
) -> Vec<BTreeSet<IpAddr>> {
    let real = Instant::now();
    let mut swarm = Swarm::new(15);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(20)));
    swarm.tracker_mut().set_max_peers_per_reply(Some(1));
    let options = |upload| NodeOptions {
        upload: Some(upload),
        tweak,
        ..Default::default()
    };
    let seed = swarm.add_node(options(256 * KIB));
    swarm.put_content(seed, meta, content);
    let have = Some(Bitfield::full(meta.piece_count()));
    let opts = AddTorrent {
        have,
        ..Default::default()
    };
    swarm.add_torrent(seed, meta, opts);
    let leechers: Vec<(NodeId, TorrentId)> = (0..LEECHERS)
        .map(|_| {
            let n = swarm.add_node(options(MIB));
            (n, swarm.add_torrent(n, meta, AddTorrent::default()))
        })
        .collect();
    let took = swarm
        .run_until(
            |s| leechers.iter().all(|(n, t)| s.is_complete(*n, *t)),
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let seed_ip = swarm.addr(seed).ip();
    let leecher_ips: BTreeSet<IpAddr> = leechers.iter().map(|(n, _)| swarm.addr(*n).ip()).collect();
    let introduced = leechers
        .iter()
        .map(|(n, _)| {
            assert_eq!(swarm.content(*n, meta), content, "{name}: content differs");
            let met = met(&swarm, *n);
            assert!(met.contains(&seed_ip), "{name}: never met the seed");
            let others: BTreeSet<IpAddr> = met.intersection(&leecher_ips).copied().collect();
            assert!(
                met.iter().all(|ip| *ip == seed_ip || others.contains(ip)),
                "{name}: met a stranger"
            );
            others
        })
        .collect();
    eprintln!(
        "scenario {name}: virtual {:.3} s, real {:.3} s",
        took.as_secs_f64(),
        real.elapsed().as_secs_f64()
    );
    introduced
}

#[test]
fn pex_introduces_peers_the_tracker_never_gave() {
    let (meta, content) = make_torrent(&[("payload.bin", 2 * MIB)], 32 * 1024, 15).unwrap();
    let introduced = run("pex", &meta, &content, None);
    for (i, others) in introduced.iter().enumerate() {
        // Each leecher was given only the seed; it met every other leecher through the seed's
        // messages (it dialled them, or they dialled it).
        assert_eq!(others.len(), LEECHERS - 1, "leecher {i} met {others:?}");
    }
}

fn no_pex(c: &mut Config) {
    c.pex = false;
}

#[test]
fn without_pex_the_leechers_never_meet() {
    let (meta, content) = make_private_torrent(&[("payload.bin", 2 * MIB)], 32 * 1024, 15).unwrap();
    assert!(meta.is_private());
    let private = run("private", &meta, &content, None);
    let (meta, content) = make_torrent(&[("payload.bin", 2 * MIB)], 32 * 1024, 15).unwrap();
    let off = run("pex-off", &meta, &content, Some(no_pex as fn(&mut Config)));
    for introduced in [private, off] {
        assert!(introduced.iter().all(BTreeSet::is_empty), "{introduced:?}");
    }
}
