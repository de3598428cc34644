//! The queue, on the simulator: a session that may run two downloads at once runs the first
//! two of its started torrents and holds the others (announcing nothing for them) until a
//! slot frees, in order; a moved torrent takes its new place; a stalled download lets the
//! next one start beside it; seeds have a cap of their own.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, Config, Event, TorrentId, TorrentState};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};

const KIB: u64 = 1024;

fn torrents(n: u64) -> Vec<(Metainfo, Vec<u8>)> {
    (0..n)
        .map(|i| make_torrent(&[(&format!("q{i}.bin"), 512 * KIB)], 16 * 1024, 100 + i).unwrap())
        .collect()
}

/// A seed of all of `ts` uploading at 256 KiB/s, and a leecher whose session runs two
/// downloads at once, with the torrents added in order.
fn setup(ts: &[(Metainfo, Vec<u8>)], seed_them: bool) -> (Swarm, NodeId, Vec<TorrentId>) {
    let mut s = Swarm::new(71);
    s.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = s.add_node(NodeOptions {
        upload: Some(256 * KIB),
        ..Default::default()
    });
    if seed_them {
        for (meta, content) in ts {
            s.add_seed(seed, meta, content);
        }
    }
    s.run_for(Duration::from_secs(1));
    let leecher = s.add_node(NodeOptions::with_config(|c: &mut Config| {
        c.max_active_downloads = Some(2)
    }));
    let ids = ts
        .iter()
        .map(|(meta, _)| s.add_torrent(leecher, meta, AddTorrent::default()))
        .collect();
    (s, leecher, ids)
}

fn state(s: &Swarm, n: NodeId, t: TorrentId) -> TorrentState {
    s.session(n).unwrap().stats(t, s.now()).unwrap().state
}

fn started_at(s: &Swarm, n: NodeId, t: TorrentId) -> Option<Duration> {
    s.events(n)
        .iter()
        .find(|(_, e)| {
            matches!(e, Event::StateChanged { torrent, state: TorrentState::Started } if *torrent == t)
        })
        .map(|(at, _)| *at)
}

/// Two run, the others wait and announce nothing; each completion starts the next in
/// order; never more than two downloads run; all complete.
#[test]
fn the_queue_runs_exactly_the_cap_in_order() {
    let ts = torrents(5);
    let (mut s, leecher, ids) = setup(&ts, true);
    let mut most = 0;
    s.run_until(
        |s| {
            let running = ids
                .iter()
                .filter(|t| {
                    state(s, leecher, **t) == TorrentState::Started && !s.is_complete(leecher, **t)
                })
                .count();
            most = most.max(running);
            ids.iter().all(|t| s.is_complete(leecher, *t))
        },
        Duration::from_secs(300),
    )
    .unwrap_or_else(|e| panic!("not complete: {e:?}"));
    assert_eq!(most, 2, "downloads running at once");
    for (meta, content) in &ts {
        assert!(s.content(leecher, meta) == *content);
    }
    // Started in the order added: the first two at once, then one per completion.
    let starts: Vec<Duration> = ids
        .iter()
        .map(|t| started_at(&s, leecher, *t).unwrap())
        .collect();
    assert_eq!(starts[0], starts[1]);
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    assert!(starts[2] > starts[1], "{starts:?}");
    // A queued torrent announced nothing before it started.
    for t in &ids[2..] {
        let first_reply = s
            .events(leecher)
            .iter()
            .find(|(_, e)| matches!(e, Event::TrackerReply { torrent, .. } if torrent == t))
            .map(|(at, _)| *at)
            .unwrap();
        assert!(first_reply >= started_at(&s, leecher, *t).unwrap());
    }
}

/// Moving the last torrent to the front runs it at once and holds the second.
#[test]
fn a_moved_torrent_takes_its_new_place() {
    let ts = torrents(4);
    let (mut s, leecher, ids) = setup(&ts, true);
    s.run_for(Duration::from_millis(500));
    assert_eq!(state(&s, leecher, ids[3]), TorrentState::Queued);
    let last = ids[3];
    s.with_session(leecher, |session, now| {
        assert!(session.set_queue_position(now, last, 0));
        assert_eq!(session.queue_position(last), Some(0));
    });
    s.run_for(Duration::from_millis(100));
    assert_eq!(state(&s, leecher, ids[3]), TorrentState::Started);
    assert_eq!(state(&s, leecher, ids[0]), TorrentState::Started);
    assert_eq!(state(&s, leecher, ids[1]), TorrentState::Queued);
}

/// With no seed anywhere, the first two downloads get no payload: once they are stalled,
/// the next two start beside them (and stall in turn).
#[test]
fn stalled_downloads_hold_no_slot() {
    let ts = torrents(3);
    let (mut s, leecher, ids) = setup(&ts, false);
    s.run_for(Duration::from_secs(60));
    assert_eq!(state(&s, leecher, ids[2]), TorrentState::Queued);
    s.run_for(Duration::from_secs(70));
    for t in &ids {
        assert_eq!(state(&s, leecher, *t), TorrentState::Started, "{t:?}");
    }
}

/// Seeds have their own cap: of three complete torrents with one seed slot, the first
/// seeds and the others wait; removing it starts the next.
#[test]
fn seeds_have_a_cap_of_their_own() {
    let ts = torrents(3);
    let mut s = Swarm::new(72);
    let n = s.add_node(NodeOptions::with_config(|c: &mut Config| {
        c.max_active_seeds = Some(1)
    }));
    let ids: Vec<TorrentId> = ts.iter().map(|(m, c)| s.add_seed(n, m, c)).collect();
    s.run_for(Duration::from_secs(1));
    let states: Vec<TorrentState> = ids.iter().map(|t| state(&s, n, *t)).collect();
    assert_eq!(
        states,
        [
            TorrentState::Started,
            TorrentState::Queued,
            TorrentState::Queued
        ]
    );
    let first = ids[0];
    s.with_session(n, |session, now| session.remove_torrent(now, first));
    s.run_for(Duration::from_millis(10));
    assert_eq!(state(&s, n, ids[1]), TorrentState::Started);
    assert_eq!(state(&s, n, ids[2]), TorrentState::Queued);
}
