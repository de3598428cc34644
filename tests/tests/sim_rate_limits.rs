//! Rate limits in the engine, on the simulator: what the session and each torrent may upload
//! and download, held within 5 % over a minute of virtual time, changed while the bytes
//! flow, and shared between torrents. The links are far faster than the limits, so the
//! limits are all that holds the rates.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, Config, RateLimits, TorrentId};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn node(swarm: &mut Swarm, tweak: Option<fn(&mut Config)>) -> NodeId {
    swarm.add_node(NodeOptions {
        tweak,
        ..Default::default()
    })
}

fn swarm(seed: u64) -> Swarm {
    let mut s = Swarm::new(seed);
    // 50 MB/s links: an order of magnitude above every limit here.
    s.set_default_link(LinkConfig::new(Duration::from_millis(20)).with_bandwidth(50_000_000));
    s
}

/// Bytes node `n`'s torrent `t` moved (uploaded, downloaded) during `span` from now.
fn moved(s: &mut Swarm, n: NodeId, t: TorrentId, span: Duration) -> (u64, u64) {
    let count = |s: &Swarm| {
        let st = s.session(n).unwrap().stats(t, s.now()).unwrap();
        (st.session_uploaded, st.session_downloaded)
    };
    let before = count(s);
    s.run_for(span);
    let after = count(s);
    (after.0 - before.0, after.1 - before.1)
}

fn assert_rate(what: &str, bytes: u64, span: Duration, limit: u64) {
    let rate = bytes as f64 / span.as_secs_f64();
    let error = (rate - limit as f64).abs() / limit as f64;
    eprintln!(
        "{what}: {rate:.0} B/s, limit {limit} B/s, {:+.2} %",
        (rate / limit as f64 - 1.0) * 100.0
    );
    assert!(
        error <= 0.05,
        "{what}: {rate:.0} B/s against a limit of {limit} B/s ({:.1} % off)",
        error * 100.0
    );
}

fn big_torrent(name: &str, len: u64, seed: u64) -> (Metainfo, Vec<u8>) {
    make_torrent(&[(name, len)], 16 * 1024, seed).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

/// The session's upload limit on a seed with three leechers, and the session's download
/// limit on a leecher with two seeds: each within 5 % over a minute.
#[test]
fn session_limits_hold_up_and_down() {
    let (meta, content) = big_torrent("a.bin", 32 * MIB, 1);
    let mut s = swarm(61);
    let seed = node(&mut s, Some(|c| c.rate_limits.upload = 300 * KIB));
    let t_seed = s.add_seed(seed, &meta, &content);
    for _ in 0..3 {
        let l = node(&mut s, None);
        s.add_torrent(l, &meta, AddTorrent::default());
    }
    s.run_for(Duration::from_secs(5));
    let (up, _) = moved(&mut s, seed, t_seed, MINUTE);
    assert_rate("seed's upload", up, MINUTE, 300 * KIB);

    let (meta, content) = big_torrent("b.bin", 32 * MIB, 2);
    let mut s = swarm(62);
    for _ in 0..2 {
        let seed = node(&mut s, None);
        s.add_seed(seed, &meta, &content);
    }
    let leecher = node(&mut s, Some(|c| c.rate_limits.download = 250 * KIB));
    let t = s.add_torrent(leecher, &meta, AddTorrent::default());
    s.run_for(Duration::from_secs(5));
    let (_, down) = moved(&mut s, leecher, t, MINUTE);
    assert_rate("leecher's download", down, MINUTE, 250 * KIB);
    // A torrent's own download limit, under no session limit.
    let (meta, content) = big_torrent("c.bin", 32 * MIB, 8);
    let mut s = swarm(66);
    let seed = node(&mut s, None);
    s.add_seed(seed, &meta, &content);
    let leecher = node(&mut s, None);
    let opts = AddTorrent {
        rate_limits: RateLimits {
            upload: 0,
            download: 120 * KIB,
        },
        ..Default::default()
    };
    let t = s.add_torrent(leecher, &meta, opts);
    s.run_for(Duration::from_secs(5));
    let (_, down) = moved(&mut s, leecher, t, MINUTE);
    assert_rate("torrent's download", down, MINUTE, 120 * KIB);
}

/// With local peers exempt, a seed's limit does not hold its leechers on private addresses
/// (the simulator's are in 10.0.0.0/8); without, it does (the tests above).
#[test]
fn local_peers_may_be_exempt() {
    let (meta, content) = big_torrent("l.bin", 8 * MIB, 9);
    let mut s = swarm(67);
    let seed = node(
        &mut s,
        Some(|c| {
            c.rate_limits.upload = 100 * KIB;
            c.rate_limit_exempt_local = true;
        }),
    );
    s.add_seed(seed, &meta, &content);
    let l = node(&mut s, None);
    let t = s.add_torrent(l, &meta, AddTorrent::default());
    s.run_until(|s| s.is_complete(l, t), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("held to the limit: {e:?}"));
}

/// A torrent's own limit holds it, and the session's other torrent, unlimited, is not held
/// back by it: it moves many times as much.
#[test]
fn a_torrent_limit_holds_that_torrent_only() {
    let (slow, slow_content) = big_torrent("slow.bin", 16 * MIB, 3);
    let (fast, fast_content) = big_torrent("fast.bin", 16 * MIB, 4);
    let mut s = swarm(63);
    let seed = node(&mut s, None);
    s.put_content(seed, &slow, &slow_content);
    let t_slow = s.add_torrent(
        seed,
        &slow,
        AddTorrent {
            have: Some(bt_proto::Bitfield::full(slow.piece_count())),
            rate_limits: RateLimits {
                upload: 100 * KIB,
                download: 0,
            },
            ..Default::default()
        },
    );
    s.add_seed(seed, &fast, &fast_content);
    let slow_leecher = node(&mut s, None);
    s.add_torrent(slow_leecher, &slow, AddTorrent::default());
    let fast_leecher = node(&mut s, None);
    let t_fast = s.add_torrent(fast_leecher, &fast, AddTorrent::default());
    s.run_for(Duration::from_secs(2));
    let (up, _) = moved(&mut s, seed, t_slow, MINUTE);
    assert_rate("limited torrent's upload", up, MINUTE, 100 * KIB);
    // 16 MiB over 50 MB/s links: done within seconds, as if the other had no limit.
    let done = s
        .events(fast_leecher)
        .iter()
        .find(|(_, e)| matches!(e, bt_proto::engine::Event::Complete { torrent } if *torrent == t_fast))
        .map(|(at, _)| *at);
    assert!(
        done.is_some_and(|at| at < Duration::from_secs(8)),
        "the unlimited torrent's leecher completed at {done:?}"
    );
}

/// A limit lowered and then lifted while blocks flow: within two seconds the rate is the
/// new one.
#[test]
fn a_limit_changed_mid_transfer_takes_effect_within_two_seconds() {
    let (meta, content) = big_torrent("c.bin", 32 * MIB, 5);
    let mut s = swarm(64);
    let seed = node(&mut s, Some(|c| c.rate_limits.upload = 400 * KIB));
    let t = s.add_seed(seed, &meta, &content);
    let l = node(&mut s, None);
    s.add_torrent(l, &meta, AddTorrent::default());
    s.run_for(Duration::from_secs(10));
    s.with_session(seed, |session, now| {
        session.set_rate_limits(
            now,
            RateLimits {
                upload: 100 * KIB,
                download: 0,
            },
        )
    });
    s.run_for(Duration::from_secs(2));
    let span = Duration::from_secs(20);
    let (up, _) = moved(&mut s, seed, t, span);
    assert_rate("upload after lowering the limit", up, span, 100 * KIB);
    s.with_session(seed, |session, now| {
        session.set_rate_limits(
            now,
            RateLimits {
                upload: 600 * KIB,
                download: 0,
            },
        )
    });
    s.run_for(Duration::from_secs(2));
    let (up, _) = moved(&mut s, seed, t, span);
    assert_rate("upload after raising the limit", up, span, 600 * KIB);
}

/// Two torrents of one seed under one session limit, each with one leecher: each gets half.
#[test]
fn two_torrents_share_a_session_limit_fairly() {
    let (a, a_content) = big_torrent("a.bin", 16 * MIB, 6);
    let (b, b_content) = big_torrent("b.bin", 16 * MIB, 7);
    let mut s = swarm(65);
    let seed = node(&mut s, Some(|c| c.rate_limits.upload = 200 * KIB));
    let t_a = s.add_seed(seed, &a, &a_content);
    let t_b = s.add_seed(seed, &b, &b_content);
    for meta in [&a, &b] {
        let l = node(&mut s, None);
        s.add_torrent(l, meta, AddTorrent::default());
    }
    s.run_for(Duration::from_secs(5));
    let count = |s: &Swarm, t| {
        s.session(seed)
            .unwrap()
            .stats(t, s.now())
            .unwrap()
            .session_uploaded
    };
    let (a0, b0) = (count(&s, t_a), count(&s, t_b));
    s.run_for(MINUTE);
    let (a1, b1) = (count(&s, t_a) - a0, count(&s, t_b) - b0);
    assert_rate("both torrents together", a1 + b1, MINUTE, 200 * KIB);
    let share = a1 as f64 / (a1 + b1) as f64;
    assert!((0.45..=0.55).contains(&share), "a's share {share:.3}");
}
