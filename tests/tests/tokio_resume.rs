//! Restarts: a session shut down mid-download resumes from its saved resume data without
//! downloading any verified piece again, and a file changed between runs is checked again
//! rather than trusted.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bt_proto::PieceIndex;
use bt_proto::engine::Event;
use bt_proto::storage::piece_files;
use bt_tests::tokio_swarm::*;
use bt_tokio::{Session, Torrent, TorrentOptions};
use tokio_stream::StreamExt;

const PIECE: u32 = 16 * 1024;

/// Collects the pieces of every `HashPassed` event of a session.
fn passed_pieces(session: &Session) -> Arc<Mutex<BTreeSet<PieceIndex>>> {
    let out = Arc::new(Mutex::new(BTreeSet::new()));
    let o = out.clone();
    let mut events = session.events();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if let Event::HashPassed { piece, .. } = e {
                o.lock().unwrap().insert(piece);
            }
        }
    });
    out
}

async fn piece_bytes(t: &Torrent, pieces: impl Iterator<Item = PieceIndex>) -> u64 {
    pieces
        .map(|p| u64::from(t.metainfo().piece_len(p).unwrap()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_downloading_verified_pieces_and_rechecks_changed_files() {
    bounded("resume", async {
        let dir = tempfile::tempdir().unwrap();
        let seed_dir = dir.path().join("seed");
        let content = seed_dir.join("payload");
        write_payload(&content, &standard_files(5_000));
        let torrent = torrent_of(&content, PIECE, Vec::new()).await;
        let seed = loopback_session().await;
        let st = seed
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
            .await
            .unwrap();
        st.wait_complete().await.unwrap();
        let base = dir.path().join("leecher");
        let files = st.metainfo().files().len();

        // Run 1: only the first file is wanted, so the session stops part-way through the
        // torrent, with some pieces verified.
        let s1 = loopback_session().await;
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
        let s2 = loopback_session().await;
        let passed = passed_pieces(&s2);
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
        until(|| async { (passed.lock().unwrap().len() >= wanted).then_some(()) }).await;
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
        s2.shutdown().await;

        // Between runs, one byte of one file changes (with its modification time).
        let (index, file) = meta
            .files()
            .iter()
            .enumerate()
            .find(|(_, f)| f.path.to_string().ends_with("big.bin"))
            .unwrap();
        let path = base.join(file.path.to_path_buf());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        drop(f);
        let bad = PieceIndex(((file.offset + at as u64) / u64::from(PIECE)) as u32);

        // Run 3: the changed file's pieces are checked again; the bad one is downloaded.
        let checked = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let s3 = loopback_session().await;
        let passed = passed_pieces(&s3);
        let (c, fl) = (checked.clone(), failed.clone());
        let t3 = s3
            .add_torrent(
                TorrentOptions::from_bytes(torrent.clone())
                    .base_dir(&base)
                    .on_hash_pass(move |p| c.lock().unwrap().push(p))
                    .on_hash_fail(move |p| fl.lock().unwrap().push(p)),
            )
            .await
            .unwrap();
        t3.add_peer(addr_of(&seed)).await.unwrap();
        t3.wait_complete().await.unwrap();
        assert_same_tree(&seed_dir, &base);
        assert_eq!(*failed.lock().unwrap(), vec![bad]);
        until(|| async { (!passed.lock().unwrap().is_empty()).then_some(()) }).await;
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
    })
    .await;
}
