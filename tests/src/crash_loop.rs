//! Crash consistency, over and over: a leecher killed with SIGKILL at [`CRASHES`] random
//! moments in a row (alternately on tokio and on smol) never downloads a piece that it had
//! verified and saved before, never saves a piece as verified whose bytes on disk are wrong,
//! never forgets one it had saved, and finishes byte-exact.
//!
//! The kill times come from a seed, printed at the start (`BT_CRASH_SEED=<seed>` replays
//! them); where exactly each kill lands still depends on the machine's timing.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bt_adapter::TorrentOptions;
use bt_proto::metainfo::Metainfo;
use bt_proto::rng::Rng;
use bt_proto::storage::{fill_from_plan, read_plan};
use bt_proto::{Bitfield, PieceIndex, sha1};

use crate::child::ChildGuard;
use crate::conformance::{
    CRASH_PIECE_PAUSE, CRASH_SAVE_INTERVAL, PASSED, RESUME_PIECE, passed_pieces, running_seed,
    saved_resume,
};
use crate::swarm::*;

/// Kills in a row.
pub const CRASHES: usize = 20;

/// Each run is killed this long after it is started, at most: from before its session is up
/// to well into its download (it verifies a piece every [`CRASH_PIECE_PAUSE`] or so).
const MAX_RUN: Duration = Duration::from_millis(500);

/// The environment variable that fixes the seed of the kill times.
pub const SEED_VAR: &str = "BT_CRASH_SEED";

/// Whether the bytes of `piece` under `base` are the torrent's.
fn piece_on_disk(base: &Path, meta: &Metainfo, piece: PieceIndex) -> bool {
    let len = meta.piece_len(piece).unwrap();
    let plan = read_plan(meta.piece_map(), piece, 0, len).unwrap();
    let mut bytes = Vec::new();
    let read = fill_from_plan(&plan, len as usize, &mut bytes, |seg, out| {
        let path = base.join(meta.files()[seg.file].path.to_path_buf());
        let mut buf = vec![0; seg.len as usize];
        std::fs::File::open(path)?.read_exact_at(&mut buf, seg.offset)?;
        out.extend_from_slice(&buf);
        Ok::<(), std::io::Error>(())
    });
    read.unwrap_or(false) && meta.piece_hash(piece).is_some_and(|h| sha1(&bytes) == h.0)
}

/// The pieces a run printed as downloaded and verified.
fn passed_lines(stdout: &str) -> Vec<PieceIndex> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(PASSED)?.trim().parse().ok())
        .map(PieceIndex)
        .collect()
}

/// The scenario; `leecher_exe` is the `crash_leecher` binary.
pub async fn crash_loop<R: TestRuntime>(leecher_exe: &str) {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("crash loop: seed {seed} ({SEED_VAR}={seed} replays the kill times)");
    let mut rng = Rng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    // About 240 pieces: more than the runs verify between them at CRASH_PIECE_PAUSE each.
    let (torrent, seeder, st) = running_seed::<R>(&seed_dir, 70_000, RESUME_PIECE).await;
    let meta = st.metainfo().clone();
    let torrent_file = dir.path().join("t.torrent");
    std::fs::write(&torrent_file, &torrent).unwrap();
    let base = dir.path().join("leecher");
    let mut saved = Bitfield::new(meta.piece_count());

    for run in 0..CRASHES {
        let runtime = if run % 2 == 0 { "tokio" } else { "smol" };
        let after = Duration::from_millis(rng.below(MAX_RUN.as_millis() as u64) + 1);
        let what = format!("run {run} on {runtime}, killed after {after:?} (seed {seed})");
        let mut child = ChildGuard::spawn(
            Command::new(leecher_exe)
                .arg(runtime)
                .arg(&torrent_file)
                .arg(&base)
                .arg(addr_of(&seeder).to_string())
                .arg(CRASH_SAVE_INTERVAL.as_millis().to_string())
                .arg(CRASH_PIECE_PAUSE.as_millis().to_string()),
        );
        sleep::<R>(after).await;
        if let Some(status) = child.try_wait() {
            panic!(
                "{what}: it exited by itself ({status}): {:?}",
                child.output()
            );
        }
        child.kill();
        let (stdout, _) = child.output();
        let again: Vec<_> = passed_lines(&stdout)
            .into_iter()
            .filter(|p| saved.get(*p))
            .collect();
        assert!(
            again.is_empty(),
            "{what}: downloaded saved pieces {again:?}"
        );
        let Some(now) = saved_resume(&base, &meta) else {
            assert_eq!(saved.count(), 0, "{what}: the resume file is gone");
            continue;
        };
        let lost: Vec<_> = saved.iter_ones().filter(|p| !now.pieces.get(*p)).collect();
        assert!(lost.is_empty(), "{what}: saved pieces forgotten: {lost:?}");
        let wrong: Vec<_> = now
            .pieces
            .iter_ones()
            .filter(|p| !piece_on_disk(&base, &meta, *p))
            .collect();
        assert!(
            wrong.is_empty(),
            "{what}: saved as verified, wrong on disk: {wrong:?}"
        );
        saved = now.pieces;
        eprintln!("{what}: {} of {} pieces saved", saved.count(), saved.len());
    }

    // The last run, not killed: it downloads exactly what no save vouched for.
    let session = loopback_session::<R>().await;
    let passed = passed_pieces::<R>(&session);
    let t = session
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    t.add_peer(addr_of(&seeder)).await.unwrap();
    t.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    let missing: BTreeSet<PieceIndex> = (0..meta.piece_count())
        .map(PieceIndex)
        .filter(|p| !saved.get(*p))
        .collect();
    until::<R, _, _, _>(|| async { (passed.lock().unwrap().len() >= missing.len()).then_some(()) })
        .await;
    assert_eq!(*passed.lock().unwrap(), missing, "seed {seed}");
    session.shutdown().await;
    seeder.shutdown().await;
}
