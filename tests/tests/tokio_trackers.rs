//! Trackers bring peers together: an HTTP and a UDP test tracker (built on bt-proto's
//! codecs) and no `add_peer` at all.

use bt_proto::engine::Event;
use bt_tests::tokio_swarm::*;
use bt_tests::tracker::{TestTracker, http_tracker, udp_tracker};
use bt_tokio::TorrentOptions;
use tokio_stream::StreamExt;

async fn swarm_through(tracker: TestTracker) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("payload");
    write_payload(&content, &standard_files(3_000));
    let torrent = torrent_of(&content, 16 * 1024, vec![tracker.url.clone()]).await;

    let seed = loopback_session().await;
    let mut events = seed.events();
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    // The seed is known to the tracker before the leecher asks.
    loop {
        match events.next().await.unwrap() {
            Event::TrackerReply { url, .. } if url == tracker.url => break,
            Event::TrackerError { message, .. } => panic!("tracker error: {message}"),
            _ => {}
        }
    }

    let leecher = loopback_session().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_tracker_brings_the_peers_together() {
    bounded("http tracker", swarm_through(http_tracker().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_tracker_brings_the_peers_together() {
    bounded("udp tracker", swarm_through(udp_tracker().await)).await;
}
