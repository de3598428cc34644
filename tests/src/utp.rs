//! uTP (BEP 29) over real sockets on loopback, generic over the runtime like the conformance
//! suite (`tests/tests/conformance.rs` runs it on tokio, on smol and mixed): sessions that
//! allow only uTP open no TCP listener and move every byte over their UDP port; a session
//! with both transports serves a uTP-only leecher on the same port number.

use std::net::{TcpStream, UdpSocket};

use bt_adapter::{Runtime, Session, Torrent, TorrentOptions, Transport, Transports};

use crate::conformance::running_seed_on;
use crate::swarm::*;

async fn session<R: Runtime>(transports: Transports) -> Session<R> {
    loopback_builder::<R>()
        .transports(transports)
        .start()
        .await
        .unwrap()
}

/// Whether something listens for TCP on `port` of 127.0.0.1.
fn tcp_listens(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Whether `port` of 127.0.0.1 is taken for UDP.
fn udp_taken(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// A seed on `S` with `seed` transports, a leecher on `L` with uTP only dialling it; and a
/// second leecher that skips the first file, so that it stays connected to the seed once
/// done (two seeds would part) and its peer can be looked at.
async fn download_over_utp<S: Runtime, L: Runtime>(seed: Transports) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (torrent, seed, _st) = running_seed_on(
        session::<S>(seed).await,
        &dir.join("seed"),
        300_000,
        16 * 1024,
    )
    .await;
    let leecher = session::<L>(Transports::Utp).await;
    assert!(
        !tcp_listens(leecher.port()),
        "a uTP-only session listens for TCP"
    );
    assert!(udp_taken(leecher.port()), "its port is its UDP port");
    let t = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(dir.join("leech")))
        .await
        .unwrap();
    t.add_peer(addr_of(&seed)).await.unwrap();
    t.wait_complete().await.unwrap();
    assert_same_tree(&dir.join("seed"), &dir.join("leech"));

    let partial = session::<L>(Transports::Utp).await;
    let pt = partial
        .add_torrent(
            TorrentOptions::from_bytes(torrent)
                .base_dir(dir.join("partial"))
                .file_priorities(vec![0]),
        )
        .await
        .unwrap();
    pt.add_peer(addr_of(&seed)).await.unwrap();
    pt.wait_complete().await.unwrap();
    assert_utp_peer(&pt).await;
    for s in [partial, leecher] {
        s.shutdown().await;
    }
    seed.shutdown().await;
}

/// The torrent has one peer, over uTP.
async fn assert_utp_peer<R: Runtime>(t: &Torrent<R>) {
    let peers = t.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(
        peers.iter().all(|p| p.transport == Transport::Utp),
        "{peers:?}"
    );
}

/// Seed and leecher both uTP only: the download completes byte for byte over uTP.
pub async fn utp_only_on_both_sides<S: Runtime, L: Runtime>() {
    let seed = session::<S>(Transports::Utp).await;
    assert!(
        !tcp_listens(seed.port()),
        "a uTP-only session listens for TCP"
    );
    seed.shutdown().await;
    download_over_utp::<S, L>(Transports::Utp).await;
}

/// A seed with both transports (the default) serves a uTP-only leecher: its UDP port has
/// its TCP listener's number, which is the one the leecher dials.
pub async fn both_serves_a_utp_only_leecher<S: Runtime, L: Runtime>() {
    let seed = session::<S>(Transports::Both).await;
    assert!(tcp_listens(seed.port()));
    assert!(
        udp_taken(seed.port()),
        "the UDP port shares the TCP port's number"
    );
    seed.shutdown().await;
    download_over_utp::<S, L>(Transports::Both).await;
}

/// With TCP only and no DHT the session opens no UDP port; with the DHT on, the DHT's port
/// is the TCP listener's number whatever the transports.
pub async fn the_udp_port_opens_when_needed<R: Runtime>() {
    let tcp = session::<R>(Transports::Tcp).await;
    assert!(tcp_listens(tcp.port()));
    assert_eq!(tcp.dht_port(), None);
    tcp.shutdown().await;
    let with_dht = loopback_builder::<R>()
        .transports(Transports::Tcp)
        .dht(bt_adapter::DhtOptions::default().bootstrap(Vec::<String>::new()))
        .config(|c| c.dht = true)
        .start()
        .await
        .unwrap();
    assert_eq!(with_dht.dht_port(), Some(with_dht.port()));
    assert!(udp_taken(with_dht.port()));
    with_dht.shutdown().await;
    let utp = session::<R>(Transports::Utp).await;
    assert!(udp_taken(utp.port()));
    assert!(!tcp_listens(utp.port()));
    utp.shutdown().await;
}

/// A uTP-only session whose UDP port is taken cannot reach anybody: `start` fails.
pub async fn a_taken_udp_port_fails_a_utp_only_session<R: Runtime>() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let result = loopback_builder::<R>()
        .transports(Transports::Utp)
        .port(port)
        .start()
        .await;
    assert!(
        matches!(result, Err(bt_adapter::Error::Listen { port: p, .. }) if p == port),
        "{result:?}"
    );
}
