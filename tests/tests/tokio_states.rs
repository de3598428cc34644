//! Run states over real sockets: paused keeps connections but moves no data, stopped closes
//! connections and refuses new ones, started resumes.

use std::time::Duration;

use bt_tests::tokio_swarm::*;
use bt_tokio::{TorrentOptions, TorrentState};

/// How long "nothing happens" is watched for. Not a speed assertion: on a loopback link the
/// whole payload would move in a fraction of this if anything were requested.
const QUIET: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stop_start() {
    bounded("states", async {
        let dir = tempfile::tempdir().unwrap();
        let seed_dir = dir.path().join("seed");
        let content = seed_dir.join("payload");
        write_payload(&content, &standard_files(5_000));
        let torrent = torrent_of(&content, 32 * 1024, Vec::new()).await;

        let seed = loopback_session().await;
        let st = seed
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
            .await
            .unwrap();
        st.wait_complete().await.unwrap();

        // A paused leecher connects but requests nothing.
        let leecher = loopback_session().await;
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
        until_connected(&lt).await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(lt.downloaded().await.unwrap(), 0);
        assert_eq!(st.uploaded().await.unwrap(), 0);
        assert!(!lt.peers().await.unwrap().is_empty(), "connection kept");

        // Started: it downloads over the same connection.
        lt.start().await.unwrap();
        lt.wait_complete().await.unwrap();
        assert_same_tree(&seed_dir, &base);

        // A paused seed keeps a new leecher's connection but serves nothing.
        st.pause().await.unwrap();
        let second = loopback_session().await;
        let base2 = dir.path().join("second");
        let t2 = second
            .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base2))
            .await
            .unwrap();
        t2.add_peer(addr_of(&seed)).await.unwrap();
        until_connected(&t2).await;
        let served = st.uploaded().await.unwrap();
        tokio::time::sleep(QUIET).await;
        assert_eq!(t2.downloaded().await.unwrap(), 0);
        assert_eq!(st.uploaded().await.unwrap(), served);
        assert!(!st.peers().await.unwrap().is_empty(), "connection kept");

        // Stopped: every connection closes and new ones are refused.
        st.stop().await.unwrap();
        assert_eq!(st.state().await.unwrap(), TorrentState::Stopped);
        until(|| async { st.peers().await.unwrap().is_empty().then_some(()) }).await;
        until(|| async { t2.peers().await.unwrap().is_empty().then_some(()) }).await;
        t2.add_peer(addr_of(&seed)).await.unwrap();
        tokio::time::sleep(QUIET).await;
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
    })
    .await;
}
