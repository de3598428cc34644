//! Hostile peers over real sockets, from 127.0.0.2 so that the per-host rules tell them from
//! the honest peers on 127.0.0.1, and the adapter scenarios they attack, generic over the
//! runtime like the conformance suite (`tests/tests/conformance.rs` runs them on tokio and
//! smol). The adversaries run as tokio tasks, on the tokio runtime every test enters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bt_adapter::{Runtime, Session, TorrentOptions};
use bt_proto::metainfo::Metainfo;
use bt_proto::sim::remote::{self, RemotePeer};
use bt_proto::wire::{Extension, Message, Reserved};
use bt_proto::{PeerId, PieceIndex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::conformance::{piece_log, running_seed, running_seed_on};
use crate::swarm::*;

/// The address the adversaries connect from.
pub const ADVERSARY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Silent connections a flood keeps open: more than a session's whole inbound budget.
pub const FLOOD_CONNECTIONS: usize = 450;

/// How often a flood reopens the connections the target closed, and a forger sends a block.
const ADVERSARY_PACE: Duration = Duration::from_millis(5);

/// A TCP connection to `to` from [`ADVERSARY_IP`].
async fn connect_from_adversary(to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(ADVERSARY_IP), 0))?;
    socket.connect(to).await
}

/// Stops its adversary when dropped.
pub struct Running {
    stop: Arc<AtomicBool>,
    /// Connections the target closed.
    pub closed: Arc<AtomicUsize>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A peer with no pieces that unchokes `target` and pushes garbage blocks for pieces of
/// `meta` nobody asked it for, until the target closes the connection.
pub fn forger(target: SocketAddr, meta: &Metainfo) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let (info_hash, pieces) = (meta.info_hash(), meta.piece_count());
    let block = meta.piece_length().min(16 * 1024) as usize;
    let (s, c) = (stop.clone(), closed.clone());
    tokio::spawn(async move {
        let Ok(mut stream) = connect_from_adversary(target).await else {
            return;
        };
        let peer = RemotePeer::new(0u8, info_hash, PeerId(*b"-XX0000-forger-peer!"))
            .with_reserved(Reserved::NONE.with(Extension::Fast))
            .with_piece_count(pieces);
        let hello = peer
            .hello_bytes(&[Message::HaveNone, Message::Unchoke])
            .unwrap();
        if stream.write_all(&hello).await.is_err() {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut sink = vec![0u8; 64 * 1024];
        for i in 0u32.. {
            if s.load(Ordering::Relaxed) {
                return;
            }
            let forged = Message::Piece {
                piece: PieceIndex(i % pieces),
                offset: 0,
                data: vec![0xee; block].into(),
            };
            if stream
                .write_all(&remote::encode(&[forged]).unwrap())
                .await
                .is_err()
            {
                break;
            }
            // What the target says is drained; its end of the stream means it closed us.
            let read = tokio::time::timeout(ADVERSARY_PACE, stream.read(&mut sink)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                break;
            }
        }
        c.fetch_add(1, Ordering::Relaxed);
    });
    Running { stop, closed }
}

/// [`FLOOD_CONNECTIONS`] connections to `target` that never say a word, each reopened as soon
/// as the target closes it: the attacker that kept real peers out for good.
pub fn flood(target: SocketAddr) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    for _ in 0..FLOOD_CONNECTIONS {
        let (s, c) = (stop.clone(), closed.clone());
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            while !s.load(Ordering::Relaxed) {
                let Ok(mut stream) = connect_from_adversary(target).await else {
                    tokio::time::sleep(ADVERSARY_PACE).await;
                    continue;
                };
                // Held until the target closes it, or the test ends.
                loop {
                    match tokio::time::timeout(ADVERSARY_PACE * 20, stream.read(&mut byte)).await {
                        Ok(Ok(0) | Err(_)) => break,
                        _ if s.load(Ordering::Relaxed) => return,
                        _ => {}
                    }
                }
                c.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(ADVERSARY_PACE).await;
            }
        });
    }
    Running { stop, closed }
}

/// A leecher meets a forger (no pieces, unchokes, pushes garbage) before its honest seed: it
/// takes none of the forged blocks, fails no piece, closes the forger, and finishes
/// byte-exact from the seed.
pub async fn forged_blocks<R: TestRuntime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) = running_seed::<R>(&seed_dir, 20_000, 16 * 1024).await;
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let (failed, on_fail) = piece_log();
    let lt = leecher
        .add_torrent(
            TorrentOptions::from_bytes(torrent.clone())
                .base_dir(&base)
                .on_hash_fail(on_fail),
        )
        .await
        .unwrap();
    let forger = forger(addr_of(&leecher), &meta);
    poll_until::<R>(|| forger.closed.load(Ordering::Relaxed) > 0).await;
    lt.add_peer(addr_of(&seed)).await.unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    assert!(
        failed.lock().unwrap().is_empty(),
        "a forged block was taken"
    );
    assert_eq!(
        lt.stats().await.unwrap().downloaded,
        lt.size(),
        "only the seed's blocks"
    );
    drop(forger);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A seed flooded by silent connections from one host, reopened as soon as they close,
/// still lets a real leecher in: pending handshakes are capped per host and session-wide,
/// apart from the established peers' slots. (It kept the leecher out for good.)
pub async fn connection_flood<R: TestRuntime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    // The default limits: the leecher is the one peer on 127.0.0.1.
    let session = Session::<R>::builder()
        .listen_ip([127, 0, 0, 1].into())
        .dht(bt_adapter::DhtOptions::off())
        .start()
        .await
        .unwrap();
    let (torrent, seed, _st) = running_seed_on(session, &seed_dir, 20_000, 16 * 1024).await;
    let flood = flood(addr_of(&seed));
    // The flood is on: the seed has refused (and the flood reopened) some connections.
    poll_until::<R>(|| flood.closed.load(Ordering::Relaxed) > FLOOD_CONNECTIONS).await;
    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let lt = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    lt.add_peer(addr_of(&seed)).await.unwrap();
    lt.wait_complete().await.unwrap();
    assert_same_tree(&seed_dir, &base);
    drop(flood);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// Waits until `done`, looking every few milliseconds (the test's own bound ends a stall).
async fn poll_until<R: Runtime>(done: impl Fn() -> bool) {
    while !done() {
        R::sleep_until(R::now() + ADVERSARY_PACE).await;
    }
}
