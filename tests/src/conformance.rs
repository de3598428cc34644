//! The adapter conformance suite, written once: each scenario is generic over the runtime
//! (and the swarm over two, the seed's and the leechers'), and `tests/tests/conformance.rs`
//! runs it on tokio, on smol, and on the two mixed. Real loopback sockets and temporary
//! directories; every scenario is bounded by [`crate::swarm::TEST_TIMEOUT`] and asserts
//! nothing about speed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bt_adapter::{Error, ResumeData, Runtime, Session, Torrent, TorrentOptions, TorrentState};
use bt_proto::PieceIndex;
use bt_proto::engine::Event;
use bt_proto::metainfo::MetainfoError;
use bt_proto::storage::{piece_files, resume_path};
use bt_proto::tracker::AnnounceError;

use crate::child::ChildGuard;
use crate::swarm::*;
use crate::tracker::TestTracker;

/// Piece length of the swarm and hashcheck scenarios: several pieces per file.
const PIECE: u32 = 32 * 1024;

/// Piece length of the resume scenario: more, smaller pieces, so a changed file leaves
/// pieces of other files untouched.
pub(crate) const RESUME_PIECE: u32 = 16 * 1024;

/// How long "nothing happens" is watched for. Not a speed assertion: on a loopback link the
/// whole payload would move in a fraction of this if anything were requested.
const QUIET: Duration = Duration::from_millis(1500);

/// A seed on `S`, three leechers on `L` that also find each other, then a late leecher (on
/// `L`) served by a former leecher once the seed has left. Every copy is byte-exact.
pub async fn transfer<S: Runtime, L: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, st) = running_seed::<S>(&seed_dir, 20_000, PIECE).await;
    assert!(st.seed().await.unwrap());

    let mut leechers = Vec::new();
    for i in 0..3 {
        let s = loopback_session::<L>().await;
        let base = dir.path().join(format!("leecher{i}"));
        let t = s
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base))
            .await
            .unwrap();
        assert_eq!(t.left().await.unwrap(), t.size());
        t.add_peer(addr_of(&seed)).await.unwrap();
        leechers.push((s, t, base));
    }
    // The leechers also find each other.
    for (_, t, _) in &leechers {
        for (other, _, _) in &leechers {
            if other.port() != t.port() {
                t.add_peer(addr_of(other)).await.unwrap();
            }
        }
    }
    for (_, t, base) in &leechers {
        t.wait_complete().await.unwrap();
        assert_eq!(t.left().await.unwrap(), 0);
        assert!(t.bitfield().await.unwrap().is_full());
        assert_same_tree(&seed_dir, base);
    }
    assert!(st.uploaded().await.unwrap() > 0);

    // The seed leaves; a later leecher gets everything from a former leecher.
    seed.shutdown().await;
    let (first_session, first, _) = &leechers[0];
    let up_before = first.uploaded().await.unwrap();
    let late = loopback_session::<L>().await;
    let late_base = dir.path().join("late");
    let lt = late
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&late_base))
        .await
        .unwrap();
    lt.add_peer(addr_of(first_session)).await.unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &late_base);
    assert!(first.uploaded().await.unwrap() > up_before);
    for (s, _, _) in leechers {
        s.shutdown().await;
    }
    late.shutdown().await;
}

/// Paused keeps connections but moves no data, stopped closes connections and refuses new
/// ones, started resumes.
pub async fn states<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("payload");
    write_payload(&content, &standard_files(5_000));
    let torrent = torrent_of::<R>(&content, 32 * 1024, Vec::new()).await;

    let seed = loopback_session::<R>().await;
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();

    // A paused leecher connects but requests nothing.
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let lt = leecher
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&base)
                .state(TorrentState::Paused),
        )
        .await
        .unwrap();
    assert_eq!(lt.state().await.unwrap(), TorrentState::Paused);
    lt.add_peer(addr_of(&seed)).await.unwrap();
    until_connected::<R>(&lt).await;
    sleep::<R>(QUIET).await;
    assert_eq!(lt.downloaded().await.unwrap(), 0);
    assert_eq!(st.uploaded().await.unwrap(), 0);
    assert!(!lt.peers().await.unwrap().is_empty(), "connection kept");

    // Started: it downloads over the same connection.
    lt.start().await.unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);

    // A paused seed keeps a new leecher's connection but serves nothing.
    st.pause().await.unwrap();
    let second = loopback_session::<R>().await;
    let base2 = dir.path().join("second");
    let t2 = second
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base2))
        .await
        .unwrap();
    t2.add_peer(addr_of(&seed)).await.unwrap();
    until_connected::<R>(&t2).await;
    let served = st.uploaded().await.unwrap();
    sleep::<R>(QUIET).await;
    assert_eq!(t2.downloaded().await.unwrap(), 0);
    assert_eq!(st.uploaded().await.unwrap(), served);
    assert!(!st.peers().await.unwrap().is_empty(), "connection kept");

    // Stopped: every connection closes and new ones are refused.
    st.stop().await.unwrap();
    assert_eq!(st.state().await.unwrap(), TorrentState::Stopped);
    until::<R, _, _, _>(|| async { st.peers().await.unwrap().is_empty().then_some(()) }).await;
    until::<R, _, _, _>(|| async { t2.peers().await.unwrap().is_empty().then_some(()) }).await;
    t2.add_peer(addr_of(&seed)).await.unwrap();
    sleep::<R>(QUIET).await;
    assert!(st.peers().await.unwrap().is_empty());
    assert_eq!(t2.downloaded().await.unwrap(), 0);

    // Started again: it serves.
    st.start().await.unwrap();
    t2.add_peer(addr_of(&seed)).await.unwrap();
    t2.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base2);
    for s in [seed, leecher, second] {
        s.shutdown().await;
    }
}

/// Hashcheck finds a corrupted byte; only that piece is downloaded again.
pub async fn hashcheck<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) = running_seed::<R>(&seed_dir, 5_000, PIECE).await;

    let (failed, on_fail) = piece_log();
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let (passed, on_pass) = piece_log();
    let lt = leecher
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&base)
                .on_hash_fail(on_fail)
                .on_hash_pass(on_pass),
        )
        .await
        .unwrap();
    lt.add_peer(addr_of(&seed)).await.unwrap();
    lt.wait_complete().await.unwrap();
    assert!(failed.lock().unwrap().is_empty());
    let report = lt.hashcheck().await.unwrap();
    assert_eq!(report.verified, report.total);

    // Flip one byte of a file in the middle of the torrent.
    let meta = lt.metainfo().clone();
    let (index, file) = meta
        .files()
        .iter()
        .enumerate()
        .find(|(_, f)| f.path.to_string().ends_with("data.bin"))
        .unwrap();
    let path = base.join(file.path.to_path_buf());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let piece = PieceIndex(((meta.files()[index].offset + at as u64) / u64::from(PIECE)) as u32);

    // Paused, so the connection still open does not fetch the piece while it is looked at.
    lt.pause().await.unwrap();
    let down_before = lt.downloaded().await.unwrap();
    let report = lt.hashcheck().await.unwrap();
    assert_eq!(report.verified, report.total - 1);
    assert_eq!(*failed.lock().unwrap(), vec![piece]);
    passed.lock().unwrap().clear();
    assert!(!lt.bitfield().await.unwrap().get(piece));
    assert!(!lt.complete().await.unwrap());
    assert_eq!(
        lt.left().await.unwrap(),
        u64::from(meta.piece_len(piece).unwrap())
    );

    // Only that piece comes again (over the connection still open, or a new one).
    lt.start().await.unwrap();
    lt.add_peer(addr_of(&seed)).await.unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    assert_eq!(
        *passed.lock().unwrap(),
        vec![piece],
        "only that piece again"
    );
    // At least its bytes; a block re-requested from a slow peer on a busy machine may come
    // twice, which costs bytes but is not a second download of the piece.
    assert!(
        lt.downloaded().await.unwrap() - down_before >= u64::from(meta.piece_len(piece).unwrap())
    );
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A path-traversal torrent is refused before anything touches the disk.
pub async fn traversal<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let session = loopback_session::<R>().await;
    for (name, path) in [
        ("ok", &["..", "evil"][..]),
        ("ok", &["a", "..", "..", "evil"][..]),
        ("..", &["evil"][..]),
        ("ok", &["/etc", "passwd"][..]),
    ] {
        let base = dir.path().join("downloads");
        let err = session
            .add_torrent(
                TorrentOptions::from_bytes(torrent_of_paths(name, &[path])).base_dir(&base),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Metainfo(MetainfoError::UnsafePath { .. })),
            "{name} {path:?}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing created"
        );
    }
    session.shutdown().await;
}

/// The pieces a hash callback reports, in order: the list, and the callback that fills it.
pub(crate) fn piece_log() -> (
    Arc<Mutex<Vec<PieceIndex>>>,
    impl Fn(PieceIndex) + Send + Sync + 'static,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = log.clone();
    (log, move |p| writer.lock().unwrap().push(p))
}

/// Collects the pieces of every `HashPassed` event of a session.
pub(crate) fn passed_pieces<R: Runtime>(session: &Session<R>) -> Arc<Mutex<BTreeSet<PieceIndex>>> {
    let out = Arc::new(Mutex::new(BTreeSet::new()));
    let o = out.clone();
    let mut events = session.events();
    R::detach(R::spawn(async move {
        while let Some(e) = events.next().await {
            let e = e.expect("the test reads every event");
            if let Event::HashPassed { piece, .. } = e {
                o.lock().unwrap().insert(piece);
            }
        }
    }));
    out
}

async fn piece_bytes<R: Runtime>(t: &Torrent<R>, pieces: impl Iterator<Item = PieceIndex>) -> u64 {
    pieces
        .map(|p| u64::from(t.metainfo().piece_len(p).unwrap()))
        .sum()
}

/// Flips the byte at `at` of the file at `path` and dates the file an hour back, so its
/// stamp differs from any saved one whatever the file system's time resolution.
fn change_byte(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 1;
    std::fs::write(path, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// A session shut down part-way resumes from its saved resume data without downloading any
/// verified piece again; a file changed between runs is checked again rather than trusted.
pub async fn resume<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, st) = running_seed::<R>(&seed_dir, 5_000, RESUME_PIECE).await;
    let base = dir.path().join("leecher");
    let files = st.metainfo().files().len();

    // Run 1: only the first file is wanted, so the session stops part-way through the
    // torrent, with some pieces verified.
    let s1 = loopback_session::<R>().await;
    let mut prio = vec![0u8; files];
    prio[0] = 1;
    let t1 = s1
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&base)
                .file_priorities(prio),
        )
        .await
        .unwrap();
    t1.add_peer(addr_of(&seed)).await.unwrap();
    t1.wait_complete().await.unwrap();
    let have1 = t1.bitfield().await.unwrap();
    assert!(have1.count() > 0 && !have1.is_full());
    let resume_file = t1.resume_file().unwrap().to_path_buf();
    s1.shutdown().await;
    assert!(resume_file.exists());

    // Run 2: a new session trusts those pieces and downloads only the others.
    let s2 = loopback_session::<R>().await;
    let passed = passed_pieces::<R>(&s2);
    let t2 = s2
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base))
        .await
        .unwrap();
    assert_eq!(t2.bitfield().await.unwrap(), have1);
    let down_before = t2.downloaded().await.unwrap();
    t2.add_peer(addr_of(&seed)).await.unwrap();
    t2.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    // Events reach the collector task a little after completion is reported.
    let wanted = (have1.len() - have1.count()) as usize;
    until::<R, _, _, _>(|| async { (passed.lock().unwrap().len() >= wanted).then_some(()) }).await;
    let again: Vec<_> = passed
        .lock()
        .unwrap()
        .iter()
        .filter(|p| have1.get(**p))
        .copied()
        .collect();
    assert!(
        again.is_empty(),
        "verified pieces downloaded again: {again:?}"
    );
    let missing = piece_bytes(
        &t2,
        (0..have1.len()).map(PieceIndex).filter(|p| !have1.get(*p)),
    )
    .await;
    assert_eq!(t2.downloaded().await.unwrap() - down_before, missing);
    let meta = t2.metainfo().clone();
    // Completion saves the resume data at once, long before the periodic save is due.
    until::<R, _, _, _>(|| async {
        saved_resume(&base, &meta)
            .is_some_and(|d| d.pieces.is_full())
            .then_some(())
    })
    .await;
    s2.shutdown().await;

    // Between runs, one byte of one file changes (with its modification time).
    let (index, file) = meta
        .files()
        .iter()
        .enumerate()
        .find(|(_, f)| f.path.to_string().ends_with("big.bin"))
        .unwrap();
    let at = file.length / 3;
    change_byte(&base.join(file.path.to_path_buf()), at);
    let bad = PieceIndex(((file.offset + at) / u64::from(RESUME_PIECE)) as u32);

    // Run 3: the changed file's pieces are checked again; the bad one is downloaded.
    let (checked, on_pass) = piece_log();
    let (failed, on_fail) = piece_log();
    let s3 = loopback_session::<R>().await;
    let passed = passed_pieces::<R>(&s3);
    let t3 = s3
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&base)
                .on_hash_pass(on_pass)
                .on_hash_fail(on_fail),
        )
        .await
        .unwrap();
    t3.add_peer(addr_of(&seed)).await.unwrap();
    t3.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    assert_eq!(*failed.lock().unwrap(), vec![bad]);
    until::<R, _, _, _>(|| async { (!passed.lock().unwrap().is_empty()).then_some(()) }).await;
    assert_eq!(
        *passed.lock().unwrap(),
        BTreeSet::from([bad]),
        "only the bad piece downloaded"
    );
    // Every piece checked or downloaded touches the changed file.
    for p in checked.lock().unwrap().iter() {
        assert!(
            piece_files(meta.piece_map(), *p).contains(&index),
            "{p} rechecked"
        );
    }
    s3.shutdown().await;
    seed.shutdown().await;
}

/// A loopback session that trusts `tracker`'s certificate, if it has one (only https
/// trackers do, and they exist only with the `https` feature).
#[cfg_attr(not(feature = "https"), allow(unused_variables))]
async fn session_for<R: Runtime>(tracker: &TestTracker) -> Session<R> {
    #[allow(unused_mut)]
    let mut builder = loopback_builder::<R>();
    #[cfg(feature = "https")]
    if let Some(der) = &tracker.root_certificate {
        builder = builder.tracker_root_certificate(der.clone());
    }
    builder.start().await.unwrap()
}

/// A tracker (HTTP, HTTPS or UDP, on tokio) brings a seed and a leecher together without
/// `add_peer`.
pub async fn swarm_through<R: Runtime>(tracker: TestTracker) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("payload");
    write_payload(&content, &standard_files(3_000));
    let torrent = torrent_of::<R>(&content, 16 * 1024, vec![tracker.url.clone()]).await;

    let seed = session_for::<R>(&tracker).await;
    let mut events = seed.events();
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    // The seed is known to the tracker before the leecher asks.
    loop {
        match events.next().await.unwrap().unwrap() {
            Event::TrackerReply { url, .. } if url == tracker.url => break,
            Event::TrackerError { error, .. } => panic!("tracker error: {error}"),
            _ => {}
        }
    }

    let leecher = session_for::<R>(&tracker).await;
    let base = dir.path().join("leecher");
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    let trackers = lt.trackers().await.unwrap();
    assert_eq!(trackers.len(), 1);
    assert_eq!(trackers[0].last_error, None);
    assert!(*tracker.announces.lock().unwrap() >= 2);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A session seeding a fresh payload (`standard_files(size)` under `seed_dir/payload`) in
/// pieces of `piece` bytes: the torrent's bytes, the session and the torrent, complete.
pub(crate) async fn running_seed<R: Runtime>(
    seed_dir: &std::path::Path,
    size: usize,
    piece: u32,
) -> (Vec<u8>, Session<R>, Torrent<R>) {
    running_seed_on(loopback_session::<R>().await, seed_dir, size, piece).await
}

/// [`running_seed`] in the session `seed`.
pub(crate) async fn running_seed_on<R: Runtime>(
    seed: Session<R>,
    seed_dir: &std::path::Path,
    size: usize,
    piece: u32,
) -> (Vec<u8>, Session<R>, Torrent<R>) {
    let content = seed_dir.join("payload");
    write_payload(&content, &standard_files(size));
    let torrent = torrent_of::<R>(&content, piece, Vec::new()).await;
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    (torrent, seed, st)
}

/// Time between resume saves in the crash scenario's leecher: many saves within its run.
pub(crate) const CRASH_SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// How long the crash scenario's leecher sleeps on each verified piece. It makes the download
/// last seconds instead of a blink on loopback, so the kill lands while pieces are still
/// coming in (some of them verified after the last save).
pub(crate) const CRASH_PIECE_PAUSE: Duration = Duration::from_millis(20);

/// The line the crash scenario's leecher prints for each piece it downloads and verifies.
pub(crate) const PASSED: &str = "passed";

/// The leecher of [`crash_restart`], run in its own process (the `crash_leecher` binary):
/// downloads from `peer`, saving resume data every `save`, pausing `pause` on each
/// verified piece, prints `passed <piece>` for each piece it downloads and verifies, and
/// waits to be killed.
pub async fn crash_leecher<R: Runtime>(
    torrent: std::path::PathBuf,
    base: std::path::PathBuf,
    peer: std::net::SocketAddr,
    save: Duration,
    pause: Duration,
) {
    let session = Session::<R>::builder()
        .listen_ip([127, 0, 0, 1].into())
        .resume_save_interval(Some(save))
        // One piece in flight: the pause on each verified piece (which runs in the driver)
        // then paces the download itself. With more, the disk stores pieces far ahead of the
        // events that pause, the saves record them, and the kill meant to land mid-download
        // may find everything saved.
        .config(crate::loopback_limits)
        .config(|c| c.max_inflight_bytes = u64::from(RESUME_PIECE))
        .start()
        .await
        .unwrap();
    let mut events = session.events();
    R::detach(R::spawn(async move {
        while let Some(e) = events.next().await {
            let e = e.expect("the test reads every event");
            if let Event::HashPassed { piece, .. } = e {
                println!("{PASSED} {piece}");
            }
        }
    }));
    let t = session
        .add_torrent(
            TorrentOptions::from_path(torrent)
                .base_dir(base)
                .on_hash_pass(move |_| std::thread::sleep(pause)),
        )
        .await
        .unwrap();
    t.add_peer(peer).await.unwrap();
    t.wait_complete().await.unwrap();
    // Only the test ends this process, and never gracefully.
    std::future::pending::<()>().await;
}

/// The resume data the leecher last saved under `base`, if it saved any yet.
pub(crate) fn saved_resume(
    base: &std::path::Path,
    meta: &bt_proto::metainfo::Metainfo,
) -> Option<ResumeData> {
    let bytes = std::fs::read(resume_path(base, &meta.info_hash())).ok()?;
    let data = ResumeData::decode(
        &bytes,
        meta.info_hash(),
        meta.piece_count(),
        meta.files().len(),
    )
    .unwrap();
    Some(data)
}

/// A leecher killed mid-download (SIGKILL: no shutdown, no final save) restarts from its
/// last periodic save: no piece that save knew is downloaded again, the pieces verified after
/// it are (the only loss a crash may cost), a file changed on disk after it is checked again
/// rather than trusted, and the result is byte-exact. `leecher_exe` is the `crash_leecher`
/// binary.
pub async fn crash_restart<R: TestRuntime>(leecher_exe: &str) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    // About 160 pieces: with CRASH_PIECE_PAUSE the leecher needs over 3 s for them all.
    let (torrent, seed, st) = running_seed::<R>(&seed_dir, 47_000, RESUME_PIECE).await;
    let meta = st.metainfo().clone();
    let total = meta.piece_count();
    let torrent_file = dir.path().join("t.torrent");
    std::fs::write(&torrent_file, &torrent).unwrap();
    let base = dir.path().join("leecher");

    // Run 1, in another process, killed once its saves show a quarter of the pieces.
    let mut child = ChildGuard::spawn(
        std::process::Command::new(leecher_exe)
            .arg(R::NAME)
            .arg(&torrent_file)
            .arg(&base)
            .arg(addr_of(&seed).to_string())
            .arg(CRASH_SAVE_INTERVAL.as_millis().to_string())
            .arg(CRASH_PIECE_PAUSE.as_millis().to_string()),
    );
    loop {
        if let Some(status) = child.try_wait() {
            panic!(
                "the leecher exited by itself ({status}): {:?}",
                child.output()
            );
        }
        if saved_resume(&base, &meta).is_some_and(|d| d.pieces.count() >= total / 4) {
            break;
        }
        sleep::<R>(Duration::from_millis(10)).await;
    }
    child.kill();
    let saved = saved_resume(&base, &meta).unwrap();
    assert!(
        saved.pieces.count() < total,
        "the kill must come mid-download"
    );

    // After the crash, one byte of a piece the save vouched for changes on disk.
    let bad = (0..total)
        .map(PieceIndex)
        .find(|p| saved.pieces.get(*p) && piece_files(meta.piece_map(), *p) == [0])
        .unwrap();
    change_byte(
        &base.join(meta.files()[0].path.to_path_buf()),
        u64::from(bad.0) * u64::from(RESUME_PIECE) + 5,
    );

    // Run 2: a new session from the saved resume data.
    let (failed, on_fail) = piece_log();
    let s2 = loopback_session::<R>().await;
    let passed = passed_pieces::<R>(&s2);
    let t2 = s2
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&base)
                .on_hash_fail(on_fail),
        )
        .await
        .unwrap();
    let down_before = t2.downloaded().await.unwrap();
    t2.add_peer(addr_of(&seed)).await.unwrap();
    t2.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    assert_eq!(
        *failed.lock().unwrap(),
        vec![bad],
        "the changed piece is caught"
    );

    // Downloaded again: exactly what the save did not vouch for, plus the changed piece.
    let expected: BTreeSet<PieceIndex> = (0..total)
        .map(PieceIndex)
        .filter(|p| !saved.pieces.get(*p) || *p == bad)
        .collect();
    until::<R, _, _, _>(|| async {
        (passed.lock().unwrap().len() >= expected.len()).then_some(())
    })
    .await;
    assert_eq!(*passed.lock().unwrap(), expected);
    let bound = piece_bytes(&t2, expected.iter().copied()).await;
    assert_eq!(t2.downloaded().await.unwrap() - down_before, bound);
    s2.shutdown().await;
    seed.shutdown().await;
}

/// The first tracker error `session` reports for a small torrent announcing to `url`.
pub async fn first_tracker_error<R: Runtime>(session: Session<R>, url: &str) -> AnnounceError {
    match crate::edges::first_announce_on(session, url).await {
        Err(error) => error,
        Ok(()) => panic!("{url} answered"),
    }
}

/// A peer given by name: `add_peer("localhost:PORT")` resolves through the runtime and the
/// download completes; text that is not `HOST:PORT`, and a name that does not resolve, are
/// typed errors.
pub async fn peer_by_host_name<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) = running_seed::<R>(&seed_dir, 20_000, PIECE).await;
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leech");
    let t = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    assert!(matches!(
        t.add_peer("no port here").await,
        Err(Error::Magnet(_))
    ));
    assert!(matches!(
        t.add_peer("nowhere.invalid:6881").await,
        Err(Error::Resolve { .. })
    ));
    t.add_peer(format!("localhost:{}", seed.port()))
        .await
        .unwrap();
    t.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    leecher.shutdown().await;
    seed.shutdown().await;
}
