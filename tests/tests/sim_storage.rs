//! Storage failures on the deterministic simulator: a write or a read that fails puts the
//! torrent in `TorrentState::Failed` with the error, nothing verified is lost, and starting it
//! again tries the disk again.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, Event, StorageError, TorrentId, TorrentState, TorrentStats};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::disk::FaultScope;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};
use bt_proto::{Bitfield, PieceIndex};

/// Virtual time any step of these scenarios may take: a small torrent on a fast link moves in
/// well under a second, so this only bounds a stall.
const LIMIT: Duration = Duration::from_secs(120);

fn stats(swarm: &Swarm, n: NodeId, t: TorrentId) -> TorrentStats {
    swarm
        .session(n)
        .and_then(|s| s.stats(t, swarm.now()))
        .unwrap()
}

fn have(swarm: &Swarm, n: NodeId, t: TorrentId) -> Bitfield {
    swarm
        .session(n)
        .and_then(|s| s.bitfield(t))
        .cloned()
        .unwrap()
}

/// A seed (with `options`) and a leecher of a two-file torrent of 40 pieces, connected.
fn pair(seed: u64, options: NodeOptions) -> (Swarm, Metainfo, Vec<u8>, [(NodeId, TorrentId); 2]) {
    let (meta, content) =
        make_torrent(&[("a.bin", 300_000), ("b/c.bin", 355_000)], 16 * 1024, seed).unwrap();
    let mut swarm = Swarm::new(seed);
    let s = swarm.add_node(options);
    swarm.put_content(s, &meta, &content);
    let st = swarm.add_torrent(
        s,
        &meta,
        AddTorrent {
            have: Some(Bitfield::full(meta.piece_count())),
            ..Default::default()
        },
    );
    let l = swarm.add_node(Default::default());
    let lt = swarm.add_torrent(l, &meta, AddTorrent::default());
    let seed_addr = swarm.addr(s);
    swarm.add_peer(l, lt, seed_addr);
    (swarm, meta, content, [(s, st), (l, lt)])
}

/// The storage errors a node reported, and the states it entered, in order.
fn failures_and_states(swarm: &Swarm, n: NodeId) -> (Vec<StorageError>, Vec<TorrentState>) {
    let mut errors = Vec::new();
    let mut states = Vec::new();
    for (_, e) in swarm.events(n) {
        match e {
            Event::StorageFailed { error, .. } => errors.push(error.clone()),
            Event::StateChanged { state, .. } => states.push(*state),
            _ => {}
        }
    }
    (errors, states)
}

/// Makes every write of node `n` fail, and runs until its torrent `t` is `Failed`.
fn fail_writes_until_failed(swarm: &mut Swarm, n: NodeId, t: TorrentId) {
    let host = swarm.addr(n);
    swarm.disk_mut().fail_writes(FaultScope::Host(host), None);
    swarm
        .run_until(|s| stats(s, n, t).state == TorrentState::Failed, LIMIT)
        .expect("a failed write fails the torrent");
}

fn passed_pieces(swarm: &Swarm, n: NodeId) -> Vec<PieceIndex> {
    swarm
        .events(n)
        .iter()
        .filter_map(|(_, e)| match e {
            Event::HashPassed { piece, .. } => Some(*piece),
            _ => None,
        })
        .collect()
}

#[test]
fn a_failed_write_fails_the_torrent_until_it_is_started_again() {
    let (mut swarm, meta, content, [_, (l, lt)]) = pair(11, NodeOptions::default());
    swarm
        .run_until(|s| have(s, l, lt).count() >= 5, LIMIT)
        .unwrap();
    fail_writes_until_failed(&mut swarm, l, lt);

    let st = stats(&swarm, l, lt);
    let (errors, states) = failures_and_states(&swarm, l);
    assert!(!errors.is_empty());
    assert_eq!(st.error.as_ref(), errors.first(), "the first error is kept");
    assert!(matches!(st.error, Some(StorageError::Backend(ref m)) if m.contains("write")));
    assert_eq!(states.last(), Some(&TorrentState::Failed));
    assert!(!st.complete);

    // Failed requests nothing more: once what was in flight settles, nothing moves.
    swarm.run_for(Duration::from_secs(5));
    let verified = have(&swarm, l, lt);
    let downloaded = stats(&swarm, l, lt).downloaded;
    swarm.run_for(Duration::from_secs(30));
    assert_eq!(stats(&swarm, l, lt).downloaded, downloaded);
    assert_eq!(stats(&swarm, l, lt).state, TorrentState::Failed);
    assert!(verified.count() >= 5, "verified pieces stay verified");
    assert_eq!(have(&swarm, l, lt), verified);

    // Started again, with a disk that works: the error is gone and the download completes
    // without fetching a verified piece again.
    swarm.disk_mut().clear_faults();
    let passed_before = passed_pieces(&swarm, l).len();
    swarm.with_session(l, |s, now| s.set_state(now, lt, TorrentState::Started));
    assert_eq!(stats(&swarm, l, lt).error, None);
    swarm
        .run_until(|s| s.is_complete(l, lt), LIMIT)
        .expect("started again, the download completes");
    assert_eq!(swarm.content(l, &meta), content);
    let again: Vec<PieceIndex> = passed_pieces(&swarm, l)[passed_before..]
        .iter()
        .copied()
        .filter(|p| verified.get(*p))
        .collect();
    assert!(again.is_empty(), "verified pieces fetched again: {again:?}");
    assert_eq!(stats(&swarm, l, lt).state, TorrentState::Started);
}

#[test]
fn a_failed_read_fails_the_seeding_torrent() {
    let (mut swarm, meta, content, [(s, st), (l, lt)]) = pair(12, NodeOptions::default());
    let seed = swarm.addr(s);
    swarm.disk_mut().fail_reads(FaultScope::Host(seed), None);
    swarm
        .run_until(|sw| stats(sw, s, st).state == TorrentState::Failed, LIMIT)
        .expect("a failed read fails the torrent");
    assert!(matches!(
        stats(&swarm, s, st).error,
        Some(StorageError::Backend(ref m)) if m.contains("read")
    ));
    // The seed's pieces are still its own; it serves nothing while failed.
    assert!(stats(&swarm, s, st).seed);
    swarm.run_for(Duration::from_secs(10));
    let stuck = stats(&swarm, l, lt).pieces_have;
    swarm.run_for(Duration::from_secs(30));
    assert_eq!(stats(&swarm, l, lt).pieces_have, stuck);
    assert_eq!(stats(&swarm, s, st).state, TorrentState::Failed);

    swarm.disk_mut().clear_faults();
    swarm.with_session(s, |sess, now| {
        sess.set_state(now, st, TorrentState::Started)
    });
    swarm
        .run_until(|sw| sw.is_complete(l, lt), LIMIT)
        .expect("the seed serves again once started");
    assert_eq!(swarm.content(l, &meta), content);
}

#[test]
fn failed_is_the_engines_to_enter() {
    let (mut swarm, _, _, [_, (l, lt)]) = pair(13, NodeOptions::default());
    swarm.with_session(l, |s, now| s.set_state(now, lt, TorrentState::Failed));
    let st = stats(&swarm, l, lt);
    assert_eq!((st.state, st.error), (TorrentState::Paused, None));
}

#[test]
fn a_retry_is_not_failed_by_stores_made_before_it() {
    // A slow disk behind a slow link: pieces complete one by one, and several stores are in
    // flight whenever one of them fails.
    let slow = NodeOptions {
        upload: Some(200_000),
        ..Default::default()
    };
    let (mut swarm, meta, content, [_, (l, lt)]) = pair(14, slow);
    swarm.disk_latency = Duration::from_millis(300);
    fail_writes_until_failed(&mut swarm, l, lt);
    // Retried at once, on a disk that works now: the failures of the stores made before
    // (still on their way back) do not fail it again.
    swarm.disk_mut().clear_faults();
    swarm.with_session(l, |s, now| s.set_state(now, lt, TorrentState::Started));
    swarm
        .run_until(|s| s.is_complete(l, lt), LIMIT)
        .expect("the retry completes");
    assert_eq!(swarm.content(l, &meta), content);
    let (_, states) = failures_and_states(&swarm, l);
    let failed = states.iter().filter(|s| **s == TorrentState::Failed);
    assert_eq!(failed.count(), 1, "{states:?}");
}

/// A leecher's verified pieces equal to the seed's content are stored as slices of the one
/// copy the simulator keeps, so that a thousand-node swarm does not hold a thousand copies.
#[test]
fn downloaded_files_share_the_seeds_memory() {
    let (mut swarm, meta, content, [(s, _), (l, lt)]) = pair(31, NodeOptions::default());
    swarm.run_until(|sw| sw.is_complete(l, lt), LIMIT).unwrap();
    assert_eq!(swarm.content(l, &meta), content);
    let path = std::path::Path::new(bt_proto::sim::swarm::DATA_DIR).join("swarm/a.bin");
    let (seed, leech) = (swarm.addr(s), swarm.addr(l));
    for offset in [0, 16 * 1024, 200_000] {
        let disk = swarm.disk_mut();
        let a = disk.read_bytes(seed, &path, offset, 100).unwrap();
        let b = disk.read_bytes(leech, &path, offset, 100).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr(), "offset {offset}");
    }
}
