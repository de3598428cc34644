//! Message stream encryption over real sockets on loopback, generic over the runtime like
//! the conformance suite (`tests/tests/conformance.rs` runs it on tokio, on smol and mixed):
//! sessions that require encryption move every byte under RC4 and say so in `peers()`; a
//! session that requires it and one that disables it never exchange a block; the default
//! (enabled) against a plaintext-only session falls back to plaintext.

use std::time::Duration;

use bt_adapter::{ConnEncryption, Encryption, Runtime, Session, Torrent, TorrentOptions};

use crate::conformance::running_seed_on;
use crate::swarm::*;

/// How long "nothing moves" is watched for between a session requiring encryption and one
/// refusing it. Not a speed assertion: on loopback the payload would move in a fraction of
/// this if they could talk.
const QUIET: Duration = Duration::from_secs(3);

async fn session<R: Runtime>(policy: Encryption) -> Session<R> {
    loopback_builder::<R>()
        .encryption(policy)
        .start()
        .await
        .unwrap()
}

/// A leecher on `L` with policy `leech` dials a seed on `S` with policy `seed`.
async fn pair<S: Runtime, L: Runtime>(
    seed: Encryption,
    leech: Encryption,
    dir: &std::path::Path,
) -> (Session<S>, Session<L>, Torrent<L>, Vec<u8>) {
    let seed_dir = dir.join("seed");
    let (torrent, seed, _st) =
        running_seed_on(session::<S>(seed).await, &seed_dir, 300_000, 16 * 1024).await;
    let leecher = session::<L>(leech).await;
    let t = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(dir.join("leech")))
        .await
        .unwrap();
    t.add_peer(addr_of(&seed)).await.unwrap();
    (seed, leecher, t, torrent)
}

/// Both sides require encryption: the download completes byte for byte, and a second
/// leecher that skips the first file (so it stays connected to the seed once done, two
/// seeds would part) sees its connection as RC4.
pub async fn required_on_both_sides<S: Runtime, L: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, leecher, t, torrent) =
        pair::<S, L>(Encryption::Required, Encryption::Required, dir.path()).await;
    t.wait_complete().await.unwrap();
    assert_same_tree(&dir.path().join("seed"), &dir.path().join("leech"));

    let partial = session::<L>(Encryption::Required).await;
    let pt = partial
        .add_torrent(
            TorrentOptions::from_bytes(torrent)
                .base_dir(dir.path().join("partial"))
                .file_priorities(vec![0]),
        )
        .await
        .unwrap();
    pt.add_peer(addr_of(&seed)).await.unwrap();
    pt.wait_complete().await.unwrap();
    let peers = pt.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(
        peers.iter().all(|p| p.encryption == ConnEncryption::Rc4),
        "{peers:?}"
    );
    for s in [partial, leecher] {
        s.shutdown().await;
    }
    seed.shutdown().await;
}

/// The default (enabled) leecher against a plaintext-only seed: its MSE handshake goes
/// unanswered, it dials again in plaintext and completes.
pub async fn enabled_falls_back_to_plaintext<S: Runtime, L: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, leecher, t, _) =
        pair::<S, L>(Encryption::Disabled, Encryption::Enabled, dir.path()).await;
    t.wait_complete().await.unwrap();
    assert_same_tree(&dir.path().join("seed"), &dir.path().join("leech"));
    seed.shutdown().await;
    leecher.shutdown().await;
}

/// A seed that requires encryption and a leecher that refuses it: nothing moves.
pub async fn required_against_disabled_moves_nothing<S: Runtime, L: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, leecher, t, _) =
        pair::<S, L>(Encryption::Required, Encryption::Disabled, dir.path()).await;
    L::sleep_until(L::now() + QUIET).await;
    assert_eq!(t.downloaded().await.unwrap(), 0);
    assert!(t.peers().await.unwrap().is_empty());
    seed.shutdown().await;
    leecher.shutdown().await;
}
