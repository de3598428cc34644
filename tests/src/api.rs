//! What an integrator meets first, generic over the runtime (run on tokio and smol by
//! `tests/tests/conformance.rs`): event streams that end with their source, a subscription
//! made before a torrent starts that sees its first events or is told what it missed, and
//! peers given with the options.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bt_adapter::{EVENT_QUEUE, Event, Events, Lagged, Runtime, TorrentOptions, TorrentState};
use bt_proto::PieceIndex;
use bt_proto::bencode::Bencode;

use crate::swarm::{
    addr_of, assert_same_tree, loopback_session, torrent_of, torrent_of_paths, until, write_payload,
};

/// Reads `events` to its end.
async fn drain(mut events: Events) -> Vec<Result<Event, Lagged>> {
    let mut all = Vec::new();
    while let Some(e) = events.next().await {
        all.push(e);
    }
    all
}

/// A torrent's stream ends when the torrent is removed, and when the session shuts down
/// while a handle to it is still held; so does the session's. A stream asked for after
/// that ends at once.
pub async fn event_streams_end<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let session = loopback_session::<R>().await;
    let session_events = session.events();
    let add = |name: &str| {
        TorrentOptions::from_bytes(torrent_of_paths(name, &[&["a"]]))
            .base_dir(dir.path())
            .state(TorrentState::Stopped)
    };
    let removed = session.add_torrent(add("removed")).await.unwrap();
    let kept = removed.clone();
    let events = removed.events();
    removed.remove().await.unwrap();
    drain(events).await;
    assert!(kept.events().next().await.is_none());

    let held = session.add_torrent(add("held")).await.unwrap();
    let events = held.events();
    session.shutdown().await;
    drain(events).await;
    drain(session_events).await;
    assert!(held.events().next().await.is_none());
}

/// A torrent of `pieces` pieces of 16 KiB whose files are all on disk: its check, when
/// added, passes every piece.
async fn checked_torrent<R: Runtime>(base: &std::path::Path, pieces: usize) -> Vec<u8> {
    let content = base.join("content");
    write_payload(&content, &[("data.bin", pieces * 16 * 1024)]);
    torrent_of::<R>(&content, 16 * 1024, Vec::new()).await
}

/// Subscribed through the options, a reader sees every event of the check that adding
/// starts, though it reads only once the torrent is complete: with `Torrent::events` those
/// would be gone before it could be called.
pub async fn subscribe_before_start<R: Runtime>() {
    const PIECES: u32 = 64;
    let dir = tempfile::tempdir().unwrap();
    let torrent = checked_torrent::<R>(dir.path(), PIECES as usize).await;
    let session = loopback_session::<R>().await;
    let mut opts = TorrentOptions::from_bytes(torrent).base_dir(dir.path());
    let mut events = opts.subscribe();
    let t = session.add_torrent(opts).await.unwrap();
    t.wait_complete().await.unwrap();
    let mut checked = BTreeSet::new();
    loop {
        match events.next().await.unwrap().unwrap() {
            Event::PieceChecked { piece, ok, .. } => {
                assert!(ok, "piece {piece} failed");
                assert!(checked.insert(piece), "piece {piece} twice");
            }
            Event::HashcheckDone {
                verified, total, ..
            } => {
                assert_eq!((verified, total), (PIECES, PIECES));
                break;
            }
            // The last piece to pass completes the torrent.
            Event::Complete { .. } => assert_eq!(checked.len(), PIECES as usize),
            e => panic!("before the check ended: {e:?}"),
        }
    }
    assert_eq!(checked, (0..PIECES).map(PieceIndex).collect());
    session.shutdown().await;
}

/// A torrent of `pieces` pieces of 16 KiB, all but the first in a file that is not on disk
/// (so its check ends quickly, every piece failing), with no trackers. Its hashes are of no
/// content.
fn mostly_missing(pieces: u32) -> Vec<u8> {
    let piece = 16 * 1024;
    let file = |name: &str, length: i64| {
        Bencode::dict()
            .with("length", length)
            .with("path", vec![Bencode::from(name)])
    };
    let info = Bencode::dict()
        .with(
            "files",
            vec![
                file("present", piece),
                file("absent", piece * (i64::from(pieces) - 1)),
            ],
        )
        .with("name", "lagging")
        .with("piece length", piece)
        .with("pieces", vec![7u8; 20 * pieces as usize]);
    Bencode::dict().with("info", info).encode()
}

/// A subscriber that does not read while a check sends more events than its queue holds
/// is told how many it missed: what it reads and what it was told it missed add up to every
/// piece checked, each piece read at most once.
pub async fn a_lagging_subscriber_is_told_what_it_missed<R: Runtime>() {
    let pieces = EVENT_QUEUE as u32 + 1000;
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("lagging");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("present"), vec![0; 16 * 1024]).unwrap();
    let session = loopback_session::<R>().await;
    let failed = Arc::new(AtomicU32::new(0));
    let counter = failed.clone();
    let mut opts = TorrentOptions::from_bytes(mostly_missing(pieces))
        .base_dir(dir.path())
        .on_hash_fail(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
    let mut events = opts.subscribe();
    let _t = session.add_torrent(opts).await.unwrap();
    // Every piece's check was delivered (the last one just after its callback) before
    // anything is read.
    until::<R, _, _, _>(|| async { (failed.load(Ordering::Relaxed) == pieces).then_some(()) })
        .await;
    let (mut missed, mut checked) = (0, BTreeSet::new());
    loop {
        match events.next().await.unwrap() {
            Err(Lagged(n)) => missed += n,
            Ok(Event::PieceChecked { piece, ok, .. }) => {
                assert!(!ok, "piece {piece} passed");
                assert!(checked.insert(piece), "piece {piece} twice");
            }
            Ok(Event::HashcheckDone { .. }) => break,
            Ok(e) => panic!("before the check ended: {e:?}"),
        }
    }
    assert!(missed > 0, "the queue never overflowed");
    assert_eq!(missed + checked.len() as u64, u64::from(pieces));
    session.shutdown().await;
}

/// Peers given with the options are dialled: the download completes with no `add_peer`.
pub async fn initial_peers<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) =
        crate::conformance::running_seed::<R>(&seed_dir, 20_000, 32 * 1024).await;
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leech");
    let t = leecher
        .add_torrent(
            TorrentOptions::from_bytes(torrent)
                .base_dir(&base)
                .peers([addr_of(&seed)]),
        )
        .await
        .unwrap();
    t.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    leecher.shutdown().await;
    seed.shutdown().await;
}
