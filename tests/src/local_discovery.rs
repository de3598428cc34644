//! Local service discovery (BEP 14) over real multicast sockets: two sessions of one host,
//! with no tracker and no peer given, find each other by their announces within seconds and
//! complete a download; a session with LSD off is found by nobody. The announces go through
//! the IPv4 group on the loopback interface (`127.0.0.1`), which carries multicast between
//! the processes of one host whether or not the machine has a network with a multicast
//! route (containers in CI may have none).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bt_adapter::{LsdInterface, Runtime, Session, SessionBuilder, TorrentOptions};
use bt_proto::lsd::LsdGroup;

use crate::swarm::*;

/// How soon the two sessions must have found each other and completed. The first
/// announces go out as the torrents start, so on loopback this takes well under a second;
/// the bound leaves room for slow machines, and is far below the five minutes of the next
/// announce, so a lost first announce fails the test instead of passing late.
pub const FOUND_WITHIN: Duration = Duration::from_secs(30);

/// A loopback session with LSD on the loopback interface.
fn lsd_builder<R: Runtime>() -> SessionBuilder<R> {
    loopback_builder::<R>()
        .lsd(true)
        .lsd_interface(LsdInterface::V4(Ipv4Addr::LOCALHOST))
}

/// A torrent (no tracker) of a file of content unique to this run under `dir`, so that
/// other tests running beside this one on the host never share its swarm.
pub(crate) async fn unique_torrent<R: Runtime>(dir: &Path) -> Vec<u8> {
    let unique = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id());
    let content = dir.join(format!("lsd-{unique:x}"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("data.bin"), pseudo_random(300_000, unique)).unwrap();
    torrent_of::<R>(&content, 32 * 1024, Vec::new()).await
}

/// A seed on `S` and a leecher on `L`, each told nothing of the other, complete by LSD; a
/// leecher on `L` with LSD off gets nothing.
pub async fn two_sessions_find_each_other<S: Runtime, L: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let torrent = unique_torrent::<S>(&seed_dir).await;

    let seed = lsd_builder::<S>().start().await.unwrap();
    assert_eq!(
        seed.local_discovery(),
        [LsdGroup::V4],
        "the LSD socket on 127.0.0.1 did not open (see the warning logged)"
    );
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();

    // LSD off: not found, though the seed is there and announcing.
    let off = loopback_session::<L>().await;
    assert!(off.local_discovery().is_empty());
    let off_dir = dir.path().join("off");
    let ot = off
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&off_dir))
        .await
        .unwrap();

    let leecher = lsd_builder::<L>().start().await.unwrap();
    let base = dir.path().join("leecher");
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&base))
        .await
        .unwrap();
    let found = bt_adapter::runtime::timeout_at::<L, _>(L::now() + FOUND_WITHIN, async {
        lt.wait_complete().await.unwrap()
    })
    .await;
    assert!(
        found.is_some(),
        "LSD did not bring the sessions together within {FOUND_WITHIN:?}"
    );
    assert_same_tree(&seed_dir, &base);
    assert!(st.uploaded().await.unwrap() > 0);

    assert!(ot.peers().await.unwrap().is_empty());
    assert_eq!(ot.downloaded().await.unwrap(), 0);
    seed.shutdown().await;
    leecher.shutdown().await;
    off.shutdown().await;
}

/// LSD asked for on an interface the host does not have: its socket cannot join the group,
/// and the session runs without it (a warning logged), downloading from the peer it is given.
pub async fn unavailable_lsd_is_not_fatal<R: Runtime>() {
    // TEST-NET-3 (RFC 5737): no host has it.
    let nowhere = Ipv4Addr::new(203, 0, 113, 77);
    let leecher = loopback_builder::<R>()
        .lsd(true)
        .lsd_interface(LsdInterface::V4(nowhere));
    download_from_the_seed_given(leecher, |l| assert!(l.local_discovery().is_empty())).await;
}

/// A seed of a torrent of its own, and a leecher started from `leecher` (looked at first by
/// `check`) that downloads it from the seed, given as its peer: a session that lost one way
/// to find peers still uses the others.
pub(crate) async fn download_from_the_seed_given<R: Runtime>(
    leecher: SessionBuilder<R>,
    check: impl FnOnce(&Session<R>),
) {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let torrent = unique_torrent::<R>(&seed_dir).await;
    let seed = loopback_session::<R>().await;
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(&seed_dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();

    let leecher = leecher.start().await.unwrap();
    check(&leecher);
    let base = dir.path().join("leecher");
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    lt.add_peer(addr_of(&seed)).await.unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    seed.shutdown().await;
    leecher.shutdown().await;
}
