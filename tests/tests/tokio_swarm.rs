//! The tokio adapter over real loopback sockets and temporary directories: a swarm of one
//! seed and three leechers, a leecher seeding to a later one, hashcheck finding corruption,
//! and a path-traversal torrent refused before anything touches the disk.

use std::sync::{Arc, Mutex};

use bt_proto::PieceIndex;
use bt_proto::bencode::Bencode;
use bt_proto::metainfo::MetainfoError;
use bt_tests::tokio_swarm::*;
use bt_tokio::{Error, TorrentOptions};

const PIECE: u32 = 32 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seed_three_leechers_then_a_leecher_seeds_a_later_one() {
    bounded("swarm", async {
        let dir = tempfile::tempdir().unwrap();
        let seed_dir = dir.path().join("seed");
        let content = seed_dir.join("payload");
        write_payload(&content, &standard_files(20_000));
        let torrent = torrent_of(&content, PIECE, Vec::new()).await;

        let seed = loopback_session().await;
        let st = seed
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
            .await
            .unwrap();
        st.wait_complete().await.unwrap();
        assert!(st.seed().await.unwrap());

        let mut leechers = Vec::new();
        for i in 0..3 {
            let s = loopback_session().await;
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
        let late = loopback_session().await;
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
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashcheck_finds_a_corrupted_byte_and_the_piece_is_downloaded_again() {
    bounded("hashcheck", async {
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

        let failed = Arc::new(Mutex::new(Vec::new()));
        let leecher = loopback_session().await;
        let base = dir.path().join("leecher");
        let f = failed.clone();
        let lt = leecher
            .add_torrent(
                TorrentOptions::from_bytes(torrent.clone())
                    .base_dir(&base)
                    .on_hash_fail(move |p| f.lock().unwrap().push(p)),
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
        let piece =
            PieceIndex(((meta.files()[index].offset + at as u64) / u64::from(PIECE)) as u32);

        let report = lt.hashcheck().await.unwrap();
        assert_eq!(report.verified, report.total - 1);
        assert_eq!(*failed.lock().unwrap(), vec![piece]);
        assert!(!lt.bitfield().await.unwrap().get(piece));
        assert!(!lt.complete().await.unwrap());
        assert_eq!(
            lt.left().await.unwrap(),
            u64::from(meta.piece_len(piece).unwrap())
        );

        // Only that piece comes again.
        let down_before = lt.downloaded().await.unwrap();
        lt.add_peer(addr_of(&seed)).await.unwrap();
        lt.wait_complete().await.unwrap();
        assert_same_tree(&seed_dir, &base);
        assert_eq!(
            lt.downloaded().await.unwrap() - down_before,
            u64::from(meta.piece_len(piece).unwrap())
        );
        leecher.shutdown().await;
        seed.shutdown().await;
    })
    .await;
}

fn traversal_torrent(name: &str, path: &[&str]) -> Vec<u8> {
    let file = Bencode::dict().with("length", 5).with(
        "path",
        path.iter().map(|c| Bencode::from(*c)).collect::<Vec<_>>(),
    );
    let info = Bencode::dict()
        .with("files", vec![file])
        .with("name", name)
        .with("piece length", 16384)
        .with("pieces", vec![7u8; 20]);
    Bencode::dict()
        .with("announce", "http://127.0.0.1:1/announce")
        .with("info", info)
        .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_traversal_torrent_is_refused_before_touching_the_disk() {
    bounded("traversal", async {
        let dir = tempfile::tempdir().unwrap();
        let session = loopback_session().await;
        for (name, path) in [
            ("ok", &["..", "evil"][..]),
            ("ok", &["a", "..", "..", "evil"][..]),
            ("..", &["evil"][..]),
            ("ok", &["/etc", "passwd"][..]),
        ] {
            let base = dir.path().join("downloads");
            let err = session
                .add_torrent(
                    TorrentOptions::from_bytes(traversal_torrent(name, path)).base_dir(&base),
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
    })
    .await;
}
