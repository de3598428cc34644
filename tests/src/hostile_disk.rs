//! Adapter scenarios where the disk works against the download, generic over the runtime
//! like the conformance suite (`tests/tests/conformance.rs` runs them on tokio and smol): a
//! disk too small for the torrent, symbolic links planted in the download tree, and torrents
//! laid out to write where they must not.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bt_adapter::{
    Error, LayoutError, Runtime, StorageError, Torrent, TorrentOptions, TorrentState,
};
use bt_proto::engine::Event;

use crate::child::{ChildGuard, on_full_disk};
use crate::conformance::running_seed;
use crate::swarm::*;

/// Piece length of these scenarios: a few dozen pieces.
const PIECE: u32 = 16 * 1024;

/// Bytes per file the full disk of [`full_disk`] holds: more than every file of
/// `standard_files(5_000)` but `big.bin` (200,123 bytes) needs.
pub const FULL_DISK_LIMIT: u64 = 128 * 1024;

/// A leecher on a disk too small for one file of the torrent (another process, whose file
/// size limit the disk is): its download fails with a typed error naming that file and the
/// system's `EFBIG`, the torrent is `Failed` rather than waiting for ever, nothing verified
/// is lost, and once room is made, starting it again finishes the download byte-exact.
/// `leecher_exe` is the `full_disk_leecher` binary, which checks the library's side.
pub async fn full_disk<R: TestRuntime>(leecher_exe: &str) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) = running_seed::<R>(&seed_dir, 5_000, PIECE).await;
    let torrent_file = dir.path().join("t.torrent");
    std::fs::write(&torrent_file, &torrent).unwrap();
    let base = dir.path().join("leecher");
    let mut child = ChildGuard::spawn(
        on_full_disk(leecher_exe, FULL_DISK_LIMIT)
            .arg(R::NAME)
            .arg(&torrent_file)
            .arg(&base)
            .arg(addr_of(&seed).to_string()),
    );
    let status = loop {
        if let Some(status) = child.try_wait() {
            break status;
        }
        sleep::<R>(std::time::Duration::from_millis(20)).await;
    };
    let (_, stderr) = child.output();
    assert!(status.success(), "the leecher failed ({status}):\n{stderr}");
    assert_same_tree(&seed_dir, &base);
    seed.shutdown().await;
}

/// The leecher of [`full_disk`], in its own process on a disk that holds
/// [`FULL_DISK_LIMIT`] bytes per file: downloads from `peer` into `base`, checks what the
/// failure looks like through the API, then makes room and finishes.
pub async fn full_disk_leecher<R: Runtime>(torrent: PathBuf, base: PathBuf, peer: SocketAddr) {
    let session = loopback_session::<R>().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let mut stream = session.events();
    R::detach(R::spawn(async move {
        while let Some(e) = stream.next().await {
            let e = e.expect("the test reads every event");
            seen.lock().unwrap().push(e);
        }
    }));
    let t = session
        .add_torrent(TorrentOptions::from_path(torrent).base_dir(&base))
        .await
        .unwrap();
    t.add_peer(peer).await.unwrap();

    let err = t.wait_complete().await.expect_err("a full disk fails it");
    let Error::Storage(error) = err else {
        panic!("not a storage error: {err}");
    };
    assert!(
        matches!(&error, StorageError::Io { path, error, .. }
            if path.ends_with("big.bin") && error.kind == ErrorKind::FileTooLarge),
        "{error:?}"
    );
    let stats = t.stats().await.unwrap();
    assert_eq!(stats.state, TorrentState::Failed);
    assert_eq!(stats.error.as_ref(), Some(&error));
    match t.wait_complete().await {
        Err(Error::Storage(again)) => assert_eq!(again, error, "a later wait ends at once"),
        other => panic!("a later wait: {other:?}"),
    }

    crate::child::make_room();
    t.start().await.unwrap();
    t.wait_complete().await.unwrap();
    assert_eq!(t.stats().await.unwrap().error, None);

    // Every piece passed exactly once: none verified before the failure was lost.
    let total = t.metainfo().piece_count() as usize;
    let passed = || {
        let mut p: Vec<_> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::HashPassed { piece, .. } => Some(*piece),
                _ => None,
            })
            .collect();
        p.sort();
        p
    };
    until::<R, _, _, _>(|| async { (passed().len() >= total).then_some(()) }).await;
    let passed = passed();
    let mut distinct = passed.clone();
    distinct.dedup();
    assert_eq!(passed, distinct, "a verified piece was downloaded again");
    // The error was reported, then the state it put the torrent in.
    let events = events.lock().unwrap().clone();
    let position = |f: &dyn Fn(&Event) -> bool| events.iter().position(f);
    let failed = position(&|e| matches!(e, Event::StorageFailed { .. }));
    let state = position(&|e| {
        matches!(
            e,
            Event::StateChanged {
                state: TorrentState::Failed,
                ..
            }
        )
    });
    assert!(failed.is_some() && failed < state, "{events:?}");
    session.shutdown().await;
}

/// Waits until `t` is `Failed`, and returns its error.
async fn failure<R: Runtime>(t: &Torrent<R>) -> StorageError {
    until::<R, _, _, _>(|| async { t.stats().await.unwrap().error }).await
}

/// Symbolic links planted in the download tree that lead outside it: a leecher whose
/// directory `docs` is one writes nothing through it, and a seed whose file is swapped for one
/// while it runs reads nothing through it; each torrent fails with the typed error naming the
/// file, and what is outside is untouched.
pub async fn planted_symlinks<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("readme.txt");
    std::fs::write(&secret, b"not the torrent's").unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _) = running_seed::<R>(&seed_dir, 3_000, PIECE).await;

    // The leecher's `payload/docs` leads to `outside`.
    let base = dir.path().join("leecher");
    std::fs::create_dir_all(base.join("payload")).unwrap();
    std::os::unix::fs::symlink(&outside, base.join("payload/docs")).unwrap();
    let leecher = loopback_session::<R>().await;
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base))
        .await
        .unwrap();
    lt.add_peer(addr_of(&seed)).await.unwrap();
    match lt.wait_complete().await {
        Err(Error::Storage(StorageError::OutsideBase { path, .. })) => {
            assert!(path.starts_with(base.join("payload/docs")), "{path:?}")
        }
        other => panic!("the leecher: {other:?}"),
    }
    assert_eq!(lt.stats().await.unwrap().state, TorrentState::Failed);
    assert_eq!(std::fs::read(&secret).unwrap(), b"not the torrent's");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    leecher.shutdown().await;

    // The seed, restarted from its resume data (so it has read nothing yet), finds
    // `media/a.bin` swapped for a link to `outside` once it runs.
    seed.shutdown().await;
    let seed = loopback_session::<R>().await;
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    assert!(st.seed().await.unwrap(), "the seed trusts its resume data");
    let victim = seed_dir.join("payload/media/a.bin");
    std::fs::remove_file(&victim).unwrap();
    std::os::unix::fs::symlink(&secret, &victim).unwrap();
    let leecher = loopback_session::<R>().await;
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(dir.path().join("second")))
        .await
        .unwrap();
    lt.add_peer(addr_of(&seed)).await.unwrap();
    let error = failure(&st).await;
    assert!(
        matches!(&error, StorageError::OutsideBase { path, .. } if *path == victim),
        "{error:?}"
    );
    assert!(!lt.complete().await.unwrap());
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A torrent named `.bt`, whose files would land in the resume directory (one named after
/// another torrent's resume file), is refused when added, and that resume file is untouched.
/// Files that differ only in case are accepted where case counts (Linux here; where it is
/// ignored, `bt_proto::storage::check_layout` refuses them, tested there).
pub async fn hostile_layouts<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("downloads");
    let session = loopback_session::<R>().await;
    let victim = session
        .add_torrent(
            TorrentOptions::from_bytes(torrent_of_paths("victim", &[&["a"]]))
                .base_dir(&base)
                .state(TorrentState::Stopped),
        )
        .await
        .unwrap();
    let resume = victim.save_resume().await.unwrap().unwrap();
    let saved = std::fs::read(&resume).unwrap();
    let name = resume.file_name().unwrap().to_str().unwrap();

    let hostile = torrent_of_paths(".bt", &[&[name]]);
    match session
        .add_torrent(TorrentOptions::from_bytes(hostile).base_dir(&base))
        .await
    {
        Err(Error::Layout {
            source: LayoutError::ResumeDir(path),
            ..
        }) => assert_eq!(path.to_string(), format!(".bt/{name}")),
        other => panic!("a torrent named .bt: {other:?}"),
    }
    assert_eq!(std::fs::read(&resume).unwrap(), saved);

    let twins = torrent_of_paths("twins", &[&["A.txt"], &["a.txt"]]);
    session
        .add_torrent(
            TorrentOptions::from_bytes(twins)
                .base_dir(&base)
                .state(TorrentState::Stopped),
        )
        .await
        .unwrap();
    session.shutdown().await;
}
