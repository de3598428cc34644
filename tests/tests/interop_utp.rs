//! Interop with libtorrent-rasterbar 2.0 over uTP only (BEP 29): libtorrent seeds while our
//! `bt` (tokio) downloads, and downloads while we seed, through opentracker on loopback,
//! byte-exact. Both sides have TCP off: ours [`Transports::Utp`] (no TCP listener, no TCP
//! connection), libtorrent's `enable_outgoing_tcp` / `enable_incoming_tcp` off (see the
//! driver's `transport_settings`).
//!
//! Each transfer checks the transport from both sides: every connection in our peer list is
//! [`Transport::Utp`] (polled while the transfer runs: a seed and a leecher part once both
//! are seeds), and libtorrent lists our connection with its `utp_socket` flag, counts uTP
//! data packets sent (it seeds) or received (it downloads), and has no TCP peer.
//!
//! Who dials whom: the side that announces second gets the other from the tracker and dials
//! it (we dial libtorrent's seed; libtorrent dials ours), so our uTP initiator and responder
//! both meet libtorrent's.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bt_adapter::{SessionBuilder, Transport, Transports};
use bt_tests::interop::clients::Setup;
use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tests::swarm::sleep;
use bt_tokio::Tokio;

const MIB: u64 = 1024 * 1024;
/// 16 MiB: 64 pieces of [`PIECE`], over ten thousand uTP packets each way, and short even
/// at the few MB/s libtorrent's uTP reaches on loopback.
const SIZE: u64 = 16 * MIB;
/// A common piece length (as in the other interop suites).
const PIECE: u32 = 256 * 1024;

/// How often our peer list is looked at while a transfer runs: often enough to see a
/// connection that lives for the fraction of a second it may take.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// Our session: uTP only. (Set it to `Transports::Tcp` and every test must fail: libtorrent
/// accepts no TCP. The mutation check of this suite.)
fn utp_only(b: SessionBuilder<Tokio>) -> SessionBuilder<Tokio> {
    b.transports(Transports::Utp)
}

/// Every peer seen in our peer list while `done` is false, polled every [`WATCH_EVERY`]
/// up to [`TRANSFER_TIMEOUT`]; an error for the caller to fail the test with every log.
async fn watch(
    ours: &Ours<Tokio>,
    mut done: impl AsyncFnMut() -> Result<bool, String>,
) -> Result<Vec<bt_proto::engine::PeerInfo>, String> {
    let started = Instant::now();
    let mut seen: Vec<bt_proto::engine::PeerInfo> = Vec::new();
    loop {
        for p in ours.torrent.peers().await.unwrap_or_default() {
            if !seen.iter().any(|s| s.addr == p.addr) {
                seen.push(p);
            }
        }
        if done().await? {
            return Ok(seen);
        }
        if started.elapsed() > TRANSFER_TIMEOUT {
            return Err(format!(
                "the transfer did not finish within {TRANSFER_TIMEOUT:?}\nours: {}",
                ours.describe().await
            ));
        }
        sleep::<Tokio>(WATCH_EVERY).await;
    }
}

/// Fails the test unless our side had a connection and every one was uTP.
fn assert_ours_utp(seen: &[bt_proto::engine::PeerInfo], procs: &[&Proc]) {
    if seen.is_empty() {
        fail("our side never had a connection to libtorrent", procs);
    }
    let other: Vec<_> = seen
        .iter()
        .filter(|p| p.transport != Transport::Utp)
        .collect();
    if !other.is_empty() {
        fail(&format!("connections that were not uTP: {other:?}"), procs);
    }
}

/// Fails the test unless libtorrent's side shows uTP: a connection other than to itself
/// (the tracker gives it its own address too) with the `utp_socket` flag, none without,
/// uTP data packets the way it sent (`sent`) or received them, and no TCP peer.
fn assert_lt_utp(lt: &Lt, sent: bool, procs: &[&Proc]) {
    let peers: Vec<(SocketAddr, bool)> = lt
        .peers_utp()
        .into_iter()
        .filter(|(a, _)| *a != lt.addr())
        .collect();
    let stats = lt.utp_stats();
    let packets = if sent {
        stats.payload_out
    } else {
        stats.payload_in
    };
    // A uTP packet carries at most an Ethernet MTU's worth (libtorrent's cap, even on
    // loopback): at least half the payload in packets that full is thousands of them.
    let enough = SIZE / 2 / 1500;
    if peers.is_empty() || peers.iter().any(|(_, utp)| !utp) || packets < enough {
        fail(
            &format!(
                "libtorrent's side does not show uTP: peers {peers:?}, counters {stats:?} \
                 (want at least {enough} data packets {})",
                if sent { "sent" } else { "received" }
            ),
            procs,
        );
    }
    if stats.tcp_peers != 0 {
        fail(&format!("libtorrent had TCP peers: {stats:?}"), procs);
    }
}

/// libtorrent seeds over uTP only; we (uTP only) dial it and download, byte-exact.
async fn lt_seeds() {
    let Some(s) = Setup::new("lt", Announce::Http, Layout::Single, SIZE, PIECE) else {
        return;
    };
    let args = LtArgs::seed().utp_only();
    let Some(mut lt) = Lt::start("libtorrent-seed", &s.p, &s.seed_dir, args, &s.logs) else {
        return;
    };
    lt.wait_announced::<Tokio>().await;
    let dir = s.tmp.path().join("ours");
    let ours =
        Ours::<Tokio>::start_configured(Ipv4Addr::LOCALHOST, &s.p, &dir, &[], utp_only).await;
    let seen = watch(&ours, async || {
        if let Some(status) = lt.proc.exited() {
            return Err(format!("libtorrent exited ({status})"));
        }
        Ok(ours.torrent.complete().await.unwrap_or(false))
    })
    .await;
    let procs = [&lt.proc, s.tracker.proc()];
    let seen = seen.unwrap_or_else(|e| fail(&e, &procs));
    let Some(r) = ours.wait_complete().await else {
        fail(
            &format!("our download did not complete: {}", ours.describe().await),
            &procs,
        )
    };
    if let Err(e) = verify(&s.p, &dir) {
        fail(&format!("our download differs: {e}"), &procs);
    }
    if !r.hash_failures.is_empty() {
        fail(&format!("hash failures: {:?}", r.hash_failures), &procs);
    }
    report(
        "libtorrent",
        "lt->bt utp",
        Announce::Http,
        Layout::Single,
        &r,
    );
    // Its counters are printed every half second: the last packets' may be pending.
    sleep::<Tokio>(Duration::from_secs(1)).await;
    assert_ours_utp(&seen, &procs);
    assert_lt_utp(&lt, true, &procs);
    lt.stop();
    ours.shutdown().await;
}

/// We seed over uTP only; libtorrent (uTP only) dials us and downloads, byte-exact.
async fn lt_downloads() {
    let Some(s) = Setup::new("ours", Announce::Http, Layout::Multi, SIZE, PIECE) else {
        return;
    };
    let ours = our_seed_configured::<Tokio>(&s.p, &s.seed_dir, &[s.tracker.proc()], utp_only).await;
    let lt_dir = s.tmp.path().join("lt");
    let args = LtArgs::leech().utp_only();
    let Some(mut lt) = Lt::start("libtorrent-leech", &s.p, &lt_dir, args, &s.logs) else {
        return;
    };
    let seen = watch(&ours, async || {
        // It keeps running once done: an exit before is a failure, not a wait.
        if let Some(status) = lt.proc.exited() {
            return Err(format!("libtorrent exited ({status}) before it was done"));
        }
        Ok(!lt.lines("DONE").is_empty())
    })
    .await;
    let seen = seen.unwrap_or_else(|e| fail(&e, &[&lt.proc, s.tracker.proc()]));
    let r = lt.wait_done::<Tokio>(&s.p, &[s.tracker.proc()]).await;
    let procs = [&lt.proc, s.tracker.proc()];
    if let Err(e) = verify(&s.p, &lt_dir) {
        fail(&format!("libtorrent's copy differs: {e}"), &procs);
    }
    report(
        "libtorrent",
        "bt->lt utp",
        Announce::Http,
        Layout::Multi,
        &r,
    );
    let uploaded = ours.torrent.uploaded().await.unwrap();
    if uploaded < s.p.size() {
        fail(
            &format!("we uploaded {uploaded} bytes of {}", s.p.size()),
            &procs,
        );
    }
    sleep::<Tokio>(Duration::from_secs(1)).await;
    assert_ours_utp(&seen, &procs);
    assert_lt_utp(&lt, false, &procs);
    lt.stop();
    ours.shutdown().await;
}

#[test]
fn libtorrent_seeds_to_us_over_utp_only() {
    run_tokio(lt_seeds());
}

#[test]
fn we_seed_to_libtorrent_over_utp_only() {
    run_tokio(lt_downloads());
}
