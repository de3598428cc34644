//! `Session::read_status` on the simulator: what a streaming reader may do at an offset
//! before, while and after its torrent downloads, and when the torrent is stopped.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, ReadStatus, TorrentState};
use bt_proto::sim::swarm::{NodeOptions, Swarm, make_torrent};

const PIECE: u32 = 64 * 1024;

#[test]
fn read_status_follows_the_download_and_the_state() {
    let len = 40 * u64::from(PIECE) + 1_000;
    let (meta, content) = make_torrent(&[("a.bin", len)], PIECE, 31).unwrap();
    let mut s = Swarm::new(91);
    let seed = s.add_node(NodeOptions {
        upload: Some(1_000_000),
        ..Default::default()
    });
    s.add_seed(seed, &meta, &content);
    let leecher = s.add_node(NodeOptions::default());
    let t = s.add_torrent(leecher, &meta, AddTorrent::default());
    let status = |s: &Swarm, at: u64| s.session(leecher).unwrap().read_status(t, 0, at);
    assert_eq!(status(&s, 0), Some(ReadStatus::Wait));
    assert_eq!(status(&s, len), Some(ReadStatus::End));
    assert_eq!(status(&s, len + 5), Some(ReadStatus::End));
    assert_eq!(s.session(leecher).unwrap().read_status(t, 1, 0), None);

    // Stopped with nothing verified: nothing will come.
    s.with_session(leecher, |session, now| {
        session.set_state(now, t, TorrentState::Stopped)
    });
    assert_eq!(status(&s, 0), Some(ReadStatus::Stopped));
    s.with_session(leecher, |session, now| {
        session.set_state(now, t, TorrentState::Started)
    });
    assert_eq!(status(&s, 0), Some(ReadStatus::Wait));

    s.run_until(|s| s.is_complete(leecher, t), Duration::from_secs(60))
        .unwrap();
    // Everything verified: the rest of the file in one run, whatever the state.
    assert_eq!(status(&s, 0), Some(ReadStatus::Ready(len)));
    assert_eq!(status(&s, len - 1), Some(ReadStatus::Ready(1)));
    s.with_session(leecher, |session, now| {
        session.set_state(now, t, TorrentState::Stopped)
    });
    assert_eq!(status(&s, 12_345), Some(ReadStatus::Ready(len - 12_345)));
}
