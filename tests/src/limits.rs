//! What users control, over real loopback sockets and files: rate limits (the session's, set
//! at run time; a torrent's own, given when it is added and changed after) and the queue
//! (`max_active_downloads`).
//!
//! A limit is checked by a lower bound on the time a transfer takes: N bytes at L bytes a
//! second cannot arrive sooner than (N - what the buckets let through at once) / L. That is
//! a behaviour of the limiter, not a speed; nothing here asserts how fast anything is.

use std::path::Path;
use std::time::{Duration, Instant};

use bt_adapter::{RateLimits, Runtime, Session, Torrent, TorrentOptions, TorrentState};
use bt_proto::token_bucket::{BURST, MIN_BURST};

use crate::swarm::*;

/// Piece length of the limited transfers: many pieces, so the transfer is many requests.
const PIECE: u32 = 64 * 1024;

/// The limit of the transfers: slow enough that the payload takes seconds at it.
const LIMIT: u64 = 512 * 1024;

/// Bytes of the limited transfers: about three seconds at [`LIMIT`].
const PAYLOAD: usize = 3 * 512 * 1024;

/// A block: what may start on the last token and leave a bucket in debt.
const BLOCK: u64 = 16 * 1024;

/// The least time `bytes` take at `limit`: what the bucket holds at the start (its burst,
/// at least [`MIN_BURST`]) and the block started in debt at the end come at once; the rest
/// at the limit.
fn least_time(bytes: u64, limit: u64) -> Duration {
    let burst = (u128::from(limit) * BURST.as_nanos() / 1_000_000_000) as u64;
    let free = burst.max(MIN_BURST) + BLOCK;
    Duration::from_secs_f64(bytes.saturating_sub(free) as f64 / limit as f64)
}

/// One file of [`PAYLOAD`] bytes in `dir/payload`, its torrent, and a seed of it in the
/// session `seed`.
async fn seed_of<R: Runtime>(dir: &Path, seed: Session<R>) -> (Vec<u8>, Session<R>, Torrent<R>) {
    seed_files(dir, seed, &[("data.bin", PAYLOAD)]).await
}

/// `files` in `dir/payload`, their torrent, and a seed of it in the session `seed`.
async fn seed_files<R: Runtime>(
    dir: &Path,
    seed: Session<R>,
    files: &[(&str, usize)],
) -> (Vec<u8>, Session<R>, Torrent<R>) {
    let content = dir.join("payload");
    write_payload(&content, files);
    let torrent = torrent_of::<R>(&content, PIECE, Vec::new()).await;
    let st = seed
        .add_torrent(TorrentOptions::from_bytes(torrent.clone()).base_dir(dir))
        .await
        .unwrap();
    st.wait_complete().await.unwrap();
    (torrent, seed, st)
}

/// Downloads `leecher`'s torrent ([`PAYLOAD`] bytes) from `seed`, limited to [`LIMIT`]
/// bytes a second: fails unless the first dial to the last verified piece took at least what
/// the limit allows.
async fn download_within_the_limit<R: Runtime>(leecher: &Torrent<R>, seed: &Session<R>) {
    let t0 = Instant::now();
    leecher.add_peer(addr_of(seed)).await.unwrap();
    leecher.wait_complete().await.unwrap();
    let took = t0.elapsed();
    let least = least_time(PAYLOAD as u64, LIMIT);
    assert!(
        took >= least,
        "{PAYLOAD} bytes at {LIMIT} B/s took {took:?}, under {least:?}"
    );
}

/// The seed's session gets an upload limit once running; the leecher's download then
/// takes at least the time the limit allows, and arrives whole.
pub async fn session_limit_set_at_run_time<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, _st) = seed_of::<R>(&seed_dir, loopback_session::<R>().await).await;
    assert_eq!(seed.rate_limits().await.unwrap(), RateLimits::NONE);
    let limits = RateLimits {
        upload: LIMIT,
        download: 0,
    };
    seed.set_rate_limits(limits).await.unwrap();
    assert_eq!(seed.rate_limits().await.unwrap(), limits);

    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let t = leecher
        .add_torrent(TorrentOptions::from_bytes(torrent).base_dir(&base))
        .await
        .unwrap();
    download_within_the_limit(&t, &seed).await;
    assert_same_tree(&seed_dir, &base);

    seed.set_rate_limits(RateLimits::NONE).await.unwrap();
    assert_eq!(seed.rate_limits().await.unwrap(), RateLimits::NONE);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// A torrent's own download limit: given when it is added, read back, changed before the
/// transfer; the download takes at least the time the changed limit allows, while its
/// session has none.
pub async fn torrent_limit<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let (torrent, seed, st) = seed_of::<R>(&seed_dir, loopback_session::<R>().await).await;
    assert_eq!(st.rate_limits().await.unwrap(), RateLimits::NONE);

    let leecher = loopback_session::<R>().await;
    let base = dir.path().join("leecher");
    let first = RateLimits {
        upload: 7 * 1024,
        download: 1024,
    };
    let t = leecher
        .add_torrent(
            TorrentOptions::from_bytes(torrent)
                .base_dir(&base)
                .rate_limits(first),
        )
        .await
        .unwrap();
    assert_eq!(t.rate_limits().await.unwrap(), first);
    let limits = RateLimits {
        upload: 0,
        download: LIMIT,
    };
    t.set_rate_limits(limits).await.unwrap();
    assert_eq!(t.rate_limits().await.unwrap(), limits);
    assert_eq!(leecher.rate_limits().await.unwrap(), RateLimits::NONE);

    download_within_the_limit(&t, &seed).await;
    assert_same_tree(&seed_dir, &base);
    leecher.shutdown().await;
    seed.shutdown().await;
}

/// Waits until the torrent is in `state`.
async fn until_state<R: Runtime>(t: &Torrent<R>, state: TorrentState) {
    until::<R, _, _, _>(|| async { (t.state().await.unwrap() == state).then_some(()) }).await
}

/// `max_active_downloads(1)` with two torrents: the first added runs and the second waits
/// (`Queued`); moving the second to the front swaps them, and back; once the first
/// completes, the second starts and completes too, each byte-exact.
pub async fn queue_of_two<R: Runtime>() {
    let dir = tempfile::tempdir().unwrap();
    let seed = loopback_session::<R>().await;
    let (first, seed, _) = seed_of::<R>(&dir.path().join("seed-a"), seed).await;
    let other = [("other.bin", 200_000), ("more.bin", 5_000)];
    let (second, seed, _) = seed_files::<R>(&dir.path().join("seed-b"), seed, &other).await;

    let leecher = loopback_builder::<R>()
        .max_active_downloads(1)
        .start()
        .await
        .unwrap();
    let (base_a, base_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = leecher
        .add_torrent(TorrentOptions::from_bytes(first).base_dir(&base_a))
        .await
        .unwrap();
    let b = leecher
        .add_torrent(TorrentOptions::from_bytes(second).base_dir(&base_b))
        .await
        .unwrap();
    // No peer yet: `a` runs without getting anywhere, and `b` waits behind it.
    until_state(&a, TorrentState::Started).await;
    until_state(&b, TorrentState::Queued).await;
    assert_eq!(a.queue_position().await.unwrap(), 0);
    assert_eq!(b.queue_position().await.unwrap(), 1);

    b.set_queue_position(0).await.unwrap();
    assert_eq!(b.queue_position().await.unwrap(), 0);
    assert_eq!(a.queue_position().await.unwrap(), 1);
    until_state(&b, TorrentState::Started).await;
    until_state(&a, TorrentState::Queued).await;
    a.set_queue_position(0).await.unwrap();
    until_state(&a, TorrentState::Started).await;
    until_state(&b, TorrentState::Queued).await;

    // `b` learns its peer while it waits, and dials it when its turn comes.
    b.add_peer(addr_of(&seed)).await.unwrap();
    sleep::<R>(Duration::from_millis(300)).await;
    assert_eq!(b.state().await.unwrap(), TorrentState::Queued);
    assert!(
        b.peers().await.unwrap().is_empty(),
        "a queued torrent connects"
    );
    a.add_peer(addr_of(&seed)).await.unwrap();
    a.wait_complete().await.unwrap();
    b.wait_complete().await.unwrap();
    assert_eq!(b.state().await.unwrap(), TorrentState::Started);
    assert_same_tree(&dir.path().join("seed-a"), &base_a);
    assert_same_tree(&dir.path().join("seed-b"), &base_b);
    leecher.shutdown().await;
    seed.shutdown().await;
}
