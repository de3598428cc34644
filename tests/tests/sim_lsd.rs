//! Local service discovery (BEP 14) on the simulator, the nodes sharing one LAN: with no
//! tracker and no peer given, a seed and two leechers find each other by their announces
//! alone; a private torrent, or LSD switched off, finds nobody; a magnet torrent is
//! announced from its start.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, Config};
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::swarm::{NodeOptions, Swarm, TRACKER_URL, make_private_torrent, make_torrent};

/// A seed and two leechers of `meta`, a tracker that lists nobody, no peer added, each
/// node's configuration tuned by `tweak`. Whether the leechers complete within 30 s.
fn leechers_complete(meta: &Metainfo, content: &[u8], tweak: Option<fn(&mut Config)>) -> bool {
    let mut swarm = Swarm::new(14);
    swarm.lsd_latency = Some(Duration::from_millis(1));
    swarm.tracker_mut().set_max_peers_per_reply(Some(0));
    let options = NodeOptions {
        tweak,
        ..Default::default()
    };
    let seed = swarm.add_node(options.clone());
    swarm.add_seed(seed, meta, content);
    let leechers: Vec<_> = (0..2)
        .map(|_| {
            let n = swarm.add_node(options.clone());
            (n, swarm.add_torrent(n, meta, AddTorrent::default()))
        })
        .collect();
    let done = swarm.run_until(
        |s| leechers.iter().all(|(n, t)| s.is_complete(*n, *t)),
        Duration::from_secs(30),
    );
    if done.is_ok() {
        for (n, _) in &leechers {
            assert_eq!(swarm.content(*n, meta), content);
        }
    }
    done.is_ok()
}

fn no_lsd(c: &mut Config) {
    c.lsd = false;
}

#[test]
fn peers_on_one_lan_find_each_other_without_a_tracker() {
    let (meta, content) = make_torrent(&[("a.bin", 300_000)], 32 * 1024, 3).unwrap();
    assert!(leechers_complete(&meta, &content, None));
}

#[test]
fn a_private_torrent_or_lsd_off_finds_nobody() {
    let (meta, content) = make_private_torrent(&[("a.bin", 300_000)], 32 * 1024, 3).unwrap();
    assert!(!leechers_complete(&meta, &content, None));
    let (meta, content) = make_torrent(&[("a.bin", 300_000)], 32 * 1024, 3).unwrap();
    assert!(!leechers_complete(&meta, &content, Some(no_lsd)));
}

/// How many announces a magnet leecher of `meta` (told of the seed by the tracker) sends in
/// eleven minutes, and whether it got the metadata.
fn magnet_leecher_announces(meta: &Metainfo, content: &[u8]) -> (usize, bool) {
    let mut swarm = Swarm::new(21);
    swarm.lsd_latency = Some(Duration::from_millis(1));
    let seed = swarm.add_node(NodeOptions::default());
    swarm.add_seed(seed, meta, content);
    let leecher = swarm.add_node(NodeOptions::default());
    let mut magnet = Magnet::new(meta.info_hash());
    magnet.trackers = vec![TRACKER_URL.to_string()];
    let t = swarm.add_magnet(leecher, &magnet, AddTorrent::default());
    let _ = swarm.run_until(|_| false, Duration::from_secs(11 * 60));
    let addr = swarm.addr(leecher);
    let sent = swarm.multicasts.iter().filter(|(a, _)| *a == addr).count();
    (sent, swarm.is_complete(leecher, t))
}

/// A magnet torrent is announced from its start, while its metadata is fetched, and on
/// every 5 minutes once it is a whole torrent. (That one found private stops is not tested
/// here: our seeds do not serve a private torrent's metadata, as libtorrent's do not.)
#[test]
fn a_magnet_torrent_is_announced_from_its_start_and_every_five_minutes() {
    let (meta, content) = make_torrent(&[("a.bin", 100_000)], 32 * 1024, 5).unwrap();
    let (sent, done) = magnet_leecher_announces(&meta, &content);
    assert!(done);
    assert_eq!(
        sent, 6,
        "at the start, after 5 and after 10 minutes, to each group"
    );
}
