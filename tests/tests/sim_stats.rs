//! A torrent's stats as a progress display reads them, on the simulator: rates while blocks
//! flow, progress of the wanted bytes, the time left, and this session's byte counts apart
//! from the lifetime ones that resume data carries.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bt_proto::Bitfield;
use bt_proto::engine::{AddTorrent, TorrentId, TorrentStats};
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};

const KIB: u64 = 1024;

fn stats(swarm: &Swarm, n: NodeId, t: TorrentId) -> TorrentStats {
    swarm.session(n).unwrap().stats(t, swarm.now()).unwrap()
}

#[test]
fn rates_progress_eta_and_this_sessions_bytes() {
    // 2 MiB at 256 KiB/s: eight seconds of steady flow.
    let (meta, content) = make_torrent(&[("s.bin", 2048 * KIB)], 16 * 1024, 12).unwrap();
    let mut swarm = Swarm::new(44);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = swarm.add_node(NodeOptions {
        upload: Some(256 * KIB),
        ..Default::default()
    });
    swarm.put_content(seed, &meta, &content);
    let st = swarm.add_torrent(
        seed,
        &meta,
        AddTorrent {
            have: Some(Bitfield::full(meta.piece_count())),
            // What earlier runs uploaded, as resume data says.
            uploaded: 5_000_000,
            ..Default::default()
        },
    );
    let leecher = swarm.add_node(NodeOptions::default());
    let lt = swarm.add_torrent(
        leecher,
        &meta,
        AddTorrent {
            downloaded: 7_000_000,
            ..Default::default()
        },
    );
    let before = stats(&swarm, leecher, lt);
    assert_eq!(
        (before.progress, before.eta, before.download_rate),
        (0.0, None, 0)
    );
    assert_eq!(before.session_downloaded, 0);
    swarm.run_for(Duration::from_secs(4));
    let mid = stats(&swarm, leecher, lt);
    // About 256 KiB/s, give or take the meter's window.
    assert!(
        (150 * KIB..=300 * KIB).contains(&mid.download_rate),
        "{} B/s",
        mid.download_rate
    );
    assert!(mid.progress > 0.2 && mid.progress < 0.8, "{}", mid.progress);
    let eta = mid.eta.unwrap();
    assert!(
        eta > Duration::from_secs(1) && eta < Duration::from_secs(12),
        "{eta:?}"
    );
    let up = stats(&swarm, seed, st);
    assert!(up.upload_rate > 150 * KIB, "{} B/s", up.upload_rate);
    assert_eq!(up.uploaded, 5_000_000 + up.session_uploaded);
    swarm
        .run_until(|s| s.is_complete(leecher, lt), Duration::from_secs(60))
        .unwrap();
    let done = stats(&swarm, leecher, lt);
    assert_eq!((done.progress, done.eta), (1.0, Some(Duration::ZERO)));
    assert_eq!(done.session_downloaded, meta.size());
    assert_eq!(done.downloaded, 7_000_000 + meta.size());
}
