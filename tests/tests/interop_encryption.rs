//! Interop with message stream encryption (MSE) required on both sides: libtorrent, aria2
//! and transmission each seed while our `bt` (tokio, [`Encryption::Required`]) downloads,
//! and download while we seed, through opentracker on loopback, byte-exact.
//!
//! Each transfer checks that the connection between us and the client was RC4 on our side
//! ([`ConnEncryption::Rc4`] in our peer list, polled while the transfer runs: a seed and a
//! leecher part once both are seeds) and never anything else, and, where the client can
//! tell, on its side too: libtorrent's `rc4_encrypted` peer flag, aria2's and transmission's
//! debug logs of the method their MSE handshake selected.
//!
//! Who dials whom: we dial every seed (the client announced first, so the tracker gives it
//! to us), libtorrent and aria2 dial our seed, and we dial a downloading transmission (3.00
//! never dials a loopback peer, see [`Client::dials_loopback_peers`]). So our initiator
//! meets all three clients and our responder meets libtorrent and aria2.
//!
//! The six transfers run at once, each on its own threads and runtime, in one test, so the
//! suite takes about as long as its slowest transfer; a failure names every scenario that
//! failed, with the logs of its processes.
//!
//! A second test has libtorrent speak plaintext only (pe_disabled), dialled by us and
//! dialling us: our side, requiring encryption, must neither fall back to plaintext nor
//! accept it.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bt_adapter::{ConnEncryption, Encryption};
use bt_tests::interop::clients::{Client, ClientEncryption, Role, Running, Setup, verify_written};
use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tests::swarm::sleep;
use bt_tokio::Tokio;

const MIB: u64 = 1024 * 1024;
/// 16 MiB: 64 pieces of [`PIECE`], so thousands of RC4-encrypted messages each way, and
/// six transfers at once stay short on two cores.
const SIZE: u64 = 16 * MIB;
/// A common piece length (as in the other interop suites).
const PIECE: u32 = 256 * 1024;

/// Our side's encryption policy in every transfer. (Set it to `Encryption::Disabled` and
/// every test must fail within [`CONNECT_TIMEOUT`]: the mutation check of this suite.)
const OURS: Encryption = Encryption::Required;

/// How long our side may go without any connection to the client before the test fails:
/// an MSE handshake takes milliseconds, and a client announces within seconds of starting,
/// so this only turns a refused handshake (which would otherwise wait for
/// [`TRANSFER_TIMEOUT`]) into a quick failure with logs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);

/// How often our peer list is looked at while a transfer runs: often enough to see a
/// connection that lives for the fraction of a second a 16 MiB transfer may take.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// How our side's connections looked while a transfer ran.
#[derive(Debug, Default)]
struct Watched {
    /// Every (peer, encryption) seen in our peer list, once each.
    seen: Vec<(SocketAddr, ConnEncryption)>,
}

impl Watched {
    fn record(&mut self, peers: &[bt_proto::engine::PeerInfo]) {
        for p in peers {
            if !self.seen.contains(&(p.addr, p.encryption)) {
                self.seen.push((p.addr, p.encryption));
            }
        }
    }

    /// A failure message unless at least one connection was seen and every one was RC4.
    fn check_rc4(&self) -> Result<(), String> {
        if self.seen.is_empty() {
            return Err("our side never had a connection to the client".into());
        }
        let other: Vec<_> = self
            .seen
            .iter()
            .filter(|(_, e)| *e != ConnEncryption::Rc4)
            .collect();
        if !other.is_empty() {
            return Err(format!(
                "connections that were not RC4 with encryption required: {other:?} (all: {:?})",
                self.seen
            ));
        }
        Ok(())
    }
}

/// When [`watch`] stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    /// Our session has verified every piece (we download).
    OursComplete,
    /// The client's probe says it finished (it downloads).
    ClientDone,
}

/// Polls our peer list every [`WATCH_EVERY`] until the transfer is over (`until`; `probe`
/// says whether the client finished, and fails if it exited), recording how each
/// connection is encrypted. An error, for the caller to fail the test with every log, when
/// the probe fails, when no connection came within [`CONNECT_TIMEOUT`], or at
/// [`TRANSFER_TIMEOUT`].
async fn watch(
    ours: &Ours<Tokio>,
    until: Until,
    mut probe: impl FnMut() -> Result<bool, String>,
) -> Result<Watched, String> {
    let started = Instant::now();
    let mut w = Watched::default();
    loop {
        w.record(&ours.torrent.peers().await.unwrap_or_default());
        let client_done = match probe() {
            Ok(done) => done,
            Err(e) => return Err(format!("{e}\nours: {}", ours.describe().await)),
        };
        let over = match until {
            Until::ClientDone => client_done,
            Until::OursComplete => ours.torrent.complete().await.unwrap_or(false),
        };
        if over {
            return Ok(w);
        }
        let waited = started.elapsed();
        if w.seen.is_empty() && waited > CONNECT_TIMEOUT {
            return Err(format!(
                "no connection between us ({OURS:?}) and the client within \
                 {CONNECT_TIMEOUT:?}\nours: {}",
                ours.describe().await
            ));
        }
        if waited > TRANSFER_TIMEOUT {
            return Err(format!(
                "the transfer did not finish within {TRANSFER_TIMEOUT:?} (connections {:?})\n\
                 ours: {}",
                w.seen,
                ours.describe().await
            ));
        }
        sleep::<Tokio>(WATCH_EVERY).await;
    }
}

/// The [`Watched`] of a [`watch`] that succeeded; fails the test with `procs`' logs
/// otherwise.
fn watched(r: Result<Watched, String>, procs: &[&Proc]) -> Watched {
    r.unwrap_or_else(|e| fail(&e, procs))
}

/// Fails the test unless our side's connections were all RC4.
fn assert_rc4(w: &Watched, procs: &[&Proc]) {
    if let Err(e) = w.check_rc4() {
        fail(&e, procs);
    }
}

/// Fails the test unless libtorrent's side of a connection was RC4, and none was plaintext
/// after an MSE handshake. (Connections it lists with neither flag are its connection to
/// itself, which the tracker gives it, and any listed before their MSE handshake ended;
/// a plaintext BitTorrent handshake it refuses under its pe_forced policy.)
fn assert_lt_rc4(lt: &Lt, procs: &[&Proc]) {
    let peers = lt.peers_encryption();
    let rc4 = peers.iter().any(|p| p.rc4 && p.addr != lt.addr());
    if !rc4 || peers.iter().any(|p| p.plaintext) {
        fail(
            &format!("libtorrent's connections were not all RC4: {peers:?}"),
            procs,
        );
    }
}

/// What a client's log says when its MSE handshake settled on RC4 (see the drivers), for
/// the clients whose logs say it; libtorrent is asked through its peer flags instead.
fn rc4_log_lines(client: Client) -> &'static [&'static str] {
    match client {
        // MSEHandshake.cc: receiveReceiverHashAndPadCLength as the receiving side,
        // receiveInitiatorCryptoSelectAndPadDLength as the initiator.
        Client::Aria2 => &["peer provides ARC4.", "peer prefers ARC4"],
        // handshake.c, readIA: it selects for an incoming MSE handshake (and is never the
        // initiator here); CRYPTO_PROVIDE_CRYPTO is 2.
        Client::Transmission => &["selecting crypto mode '2'"],
        Client::Rtorrent | Client::Qbittorrent => &[],
    }
}

/// Fails the test unless the client's log shows an RC4 handshake.
fn assert_client_rc4(client: Client, c: &Running, procs: &[&Proc]) {
    let lines = rc4_log_lines(client);
    if !lines.iter().any(|l| c.log_has(l)) {
        c.fail(
            &format!(
                "{}'s log does not show an RC4 handshake (none of {lines:?})",
                client.name()
            ),
            procs,
        );
    }
}

/// libtorrent seeds with encryption required; we download it.
async fn lt_seeds() {
    let Some(s) = Setup::new("lt", Announce::Http, Layout::Single, SIZE, PIECE) else {
        return;
    };
    let args = LtArgs::seed().require_encryption();
    let Some(mut lt) = Lt::start("libtorrent-seed", &s.p, &s.seed_dir, args, &s.logs) else {
        return;
    };
    lt.wait_announced::<Tokio>().await;
    let dir = s.tmp.path().join("ours");
    let ours = Ours::<Tokio>::start_with(Ipv4Addr::LOCALHOST, OURS, &s.p, &dir, &[]).await;
    // A seed never finishes, nor exits on its own: the probe only fails on an exit.
    let w = watch(&ours, Until::OursComplete, || match lt.proc.exited() {
        Some(status) => Err(format!("libtorrent exited ({status})")),
        None => Ok(false),
    })
    .await;
    let procs = [&lt.proc, s.tracker.proc()];
    let w = watched(w, &procs);
    let r = finish_download(&ours, &s.p, &dir, &procs).await;
    report(
        "libtorrent",
        "lt->bt rc4",
        Announce::Http,
        Layout::Single,
        &r,
    );
    assert_rc4(&w, &procs);
    assert_lt_rc4(&lt, &procs);
    lt.stop();
}

/// We seed with encryption required; libtorrent (required too) downloads.
async fn lt_downloads() {
    let Some(s) = Setup::new("ours", Announce::Http, Layout::Multi, SIZE, PIECE) else {
        return;
    };
    let ours = our_seed_with::<Tokio>(OURS, &s.p, &s.seed_dir, &[s.tracker.proc()]).await;
    let lt_dir = s.tmp.path().join("lt");
    let args = LtArgs::leech().require_encryption();
    let Some(mut lt) = Lt::start("libtorrent-leech", &s.p, &lt_dir, args, &s.logs) else {
        return;
    };
    let w = watch(&ours, Until::ClientDone, || {
        // It keeps running once done: an exit before is a failure, not a wait.
        if let Some(status) = lt.proc.exited() {
            return Err(format!("libtorrent exited ({status}) before it was done"));
        }
        Ok(!lt.lines("DONE").is_empty())
    })
    .await;
    let w = watched(w, &[&lt.proc, s.tracker.proc()]);
    let r = lt.wait_done::<Tokio>(&s.p, &[s.tracker.proc()]).await;
    let procs = [&lt.proc, s.tracker.proc()];
    if let Err(e) = verify(&s.p, &lt_dir) {
        fail(&format!("libtorrent's copy differs: {e}"), &procs);
    }
    report(
        "libtorrent",
        "bt->lt rc4",
        Announce::Http,
        Layout::Multi,
        &r,
    );
    assert_rc4(&w, &procs);
    assert_lt_rc4(&lt, &procs);
    served_all(&ours, &s.p, &procs).await;
    lt.stop();
    ours.shutdown().await;
}

/// `client` seeds with encryption required; we download it (we dial it: it announced
/// first).
async fn client_seeds(client: Client) {
    let Some(s) = Setup::new("theirs", Announce::Http, Layout::Single, SIZE, PIECE) else {
        return;
    };
    let enc = ClientEncryption::Required;
    let tmp = s.tmp.path();
    let Some(mut c) = client.start_with(Role::Seed, &s.p, enc, &s.seed_dir, tmp, &s.logs) else {
        return;
    };
    s.wait_registered::<Tokio>(&mut c, Role::Seed).await;
    let dir = s.tmp.path().join("ours");
    let ours = Ours::<Tokio>::start_with(Ipv4Addr::LOCALHOST, OURS, &s.p, &dir, &[]).await;
    // A seed never finishes, nor exits on its own: the probe only fails on an exit.
    let w = watch(&ours, Until::OursComplete, || c.finished()).await;
    let procs = [&c.proc, s.tracker.proc()];
    let w = watched(w, &procs);
    let r = finish_download(&ours, &s.p, &dir, &procs).await;
    let direction = format!("{}->bt rc4", client.name());
    report(
        client.name(),
        &direction,
        Announce::Http,
        Layout::Single,
        &r,
    );
    assert_rc4(&w, &procs);
    assert_client_rc4(client, &c, &[s.tracker.proc()]);
    c.stop();
    ours.shutdown().await;
}

/// We seed with encryption required; `client` (required too) downloads.
async fn client_downloads(client: Client) {
    let Some(s) = Setup::new("ours", Announce::Http, Layout::Multi, SIZE, PIECE) else {
        return;
    };
    let theirs = s.tmp.path().join("theirs");
    let enc = ClientEncryption::Required;
    let tmp = s.tmp.path();
    let start = || client.start_with(Role::Download, &s.p, enc, &theirs, tmp, &s.logs);
    let started = Instant::now();
    let (ours, mut c) = if client.dials_loopback_peers() {
        // We seed first; the client finds us through the tracker and dials us.
        let ours = our_seed_with::<Tokio>(OURS, &s.p, &s.seed_dir, &[s.tracker.proc()]).await;
        let Some(c) = start() else {
            return;
        };
        (ours, c)
    } else {
        // The client registers as a leecher first; our seed's announce returns it, and we
        // dial it.
        let Some(mut c) = start() else {
            return;
        };
        s.wait_registered::<Tokio>(&mut c, Role::Download).await;
        let procs = [&c.proc, s.tracker.proc()];
        let ours = our_seed_with::<Tokio>(OURS, &s.p, &s.seed_dir, &procs).await;
        (ours, c)
    };
    let w = watch(&ours, Until::ClientDone, || c.finished()).await;
    let secs = started.elapsed().as_secs_f64();
    let procs = [&c.proc, s.tracker.proc()];
    let w = watched(w, &procs);
    if let Err(e) = verify_written(client, &s.p, &theirs) {
        fail(&format!("the client's download differs: {e}"), &procs);
    }
    served_all(&ours, &s.p, &procs).await;
    let r = TransferReport {
        bytes: s.p.size(),
        secs,
        ..Default::default()
    };
    let direction = format!("bt->{} rc4", client.name());
    report(client.name(), &direction, Announce::Http, Layout::Multi, &r);
    assert_rc4(&w, &procs);
    assert_client_rc4(client, &c, &[s.tracker.proc()]);
    c.stop();
    ours.shutdown().await;
}

/// Our download of `p` into `dir`: waits until our session has verified every piece,
/// checks the files byte for byte, and returns the figures. Fails the test otherwise.
async fn finish_download(
    ours: &Ours<Tokio>,
    p: &Payload,
    dir: &Path,
    procs: &[&Proc],
) -> TransferReport {
    let Some(r) = ours.wait_complete().await else {
        fail(
            &format!("our download did not complete: {}", ours.describe().await),
            procs,
        )
    };
    if let Err(e) = verify(p, dir) {
        fail(&format!("our download differs: {e}"), procs);
    }
    if !r.hash_failures.is_empty() {
        fail(&format!("hash failures: {:?}", r.hash_failures), procs);
    }
    r
}

/// Fails the test unless our seed's upload counter shows it served all of `p` (the
/// client's data can only have come from us).
async fn served_all(ours: &Ours<Tokio>, p: &Payload, procs: &[&Proc]) {
    let uploaded = ours.torrent.uploaded().await.unwrap();
    if uploaded < p.size() {
        fail(
            &format!("we uploaded {uploaded} bytes of {}", p.size()),
            procs,
        );
    }
}

/// One transfer of the suite.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    LtSeeds,
    LtDownloads,
    Seeds(Client),
    Downloads(Client),
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::LtSeeds,
        Scenario::LtDownloads,
        Scenario::Seeds(Client::Aria2),
        Scenario::Downloads(Client::Aria2),
        Scenario::Seeds(Client::Transmission),
        Scenario::Downloads(Client::Transmission),
    ];

    fn name(self) -> String {
        match self {
            Scenario::LtSeeds => "libtorrent seeds, we download".into(),
            Scenario::LtDownloads => "we seed, libtorrent downloads".into(),
            Scenario::Seeds(c) => format!("{} seeds, we download", c.name()),
            Scenario::Downloads(c) => format!("we seed, {} downloads", c.name()),
        }
    }

    fn run(self) {
        run_tokio(async move {
            match self {
                Scenario::LtSeeds => lt_seeds().await,
                Scenario::LtDownloads => lt_downloads().await,
                Scenario::Seeds(c) => client_seeds(c).await,
                Scenario::Downloads(c) => client_downloads(c).await,
            }
        });
    }
}

/// The message of a panic of a scenario's thread (what `fail` and `assert!` give).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Every scenario of [`Scenario::ALL`] at once, each on a thread of its own; fails naming
/// every scenario that failed, with its message and logs.
#[test]
fn encryption_required_both_ways_with_libtorrent_aria2_and_transmission() {
    let started = Instant::now();
    let threads: Vec<_> = Scenario::ALL
        .into_iter()
        .map(|sc| {
            let t = std::thread::Builder::new()
                .name(sc.name())
                .spawn(move || sc.run())
                .unwrap();
            (sc, t)
        })
        .collect();
    let mut failed = Vec::new();
    for (sc, t) in threads {
        if let Err(panic) = t.join() {
            let msg = panic_message(&*panic);
            failed.push(format!("===== {} =====\n{msg}", sc.name()));
        }
    }
    eprintln!(
        "INTEROP encryption suite: {} scenarios in {:.1} s",
        Scenario::ALL.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failed.len(),
        Scenario::ALL.len(),
        failed.join("\n")
    );
}

/// How long our side is watched once libtorrent has turned away its first connection: our
/// side falling back to plaintext would redial at once, and a plaintext transfer of
/// [`SIZE`] takes under a second here.
const SETTLE: Duration = Duration::from_secs(5);

/// Where a plaintext-only libtorrent meets our side requiring encryption.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// libtorrent seeds; we dial it with MSE, which it refuses ("incoming encrypted
    /// connections disabled"); we must not dial again in plaintext.
    WeDial,
    /// We seed; libtorrent dials us in plaintext, which we must refuse.
    TheyDial,
}

/// Our side requires encryption and libtorrent speaks plaintext only: once libtorrent
/// shows it met our side and the connection closed, nothing may be transferred for
/// [`SETTLE`] and our peer list must stay empty (a peer is listed once its handshake is
/// done). With our side at [`Encryption::Enabled`] the download goes through in plaintext.
async fn refused(way: Refusal) {
    let seed = match way {
        Refusal::WeDial => "lt",
        Refusal::TheyDial => "ours",
    };
    let Some(s) = Setup::new(seed, Announce::Http, Layout::Single, SIZE, PIECE) else {
        return;
    };
    let dir = s.tmp.path().join("other");
    let (ours, lt) = match way {
        Refusal::WeDial => {
            // Its refusal of our MSE handshake is in its peer log only (see
            // `Lt::peer_closes`).
            let args = LtArgs::seed().peer_log();
            let Some(mut lt) = Lt::start("libtorrent-seed", &s.p, &s.seed_dir, args, &s.logs)
            else {
                return;
            };
            lt.wait_announced::<Tokio>().await;
            let ours = Ours::<Tokio>::start_with(Ipv4Addr::LOCALHOST, OURS, &s.p, &dir, &[]).await;
            (ours, lt)
        }
        Refusal::TheyDial => {
            let ours = our_seed_with::<Tokio>(OURS, &s.p, &s.seed_dir, &[s.tracker.proc()]).await;
            let args = LtArgs::leech();
            let Some(lt) = Lt::start("libtorrent-leech", &s.p, &dir, args, &s.logs) else {
                return;
            };
            (ours, lt)
        }
    };
    let procs = [&lt.proc, s.tracker.proc()];
    // libtorrent's close of the connection from or to us, not of its own connection to
    // itself (the tracker lists it; it drops that one as a self connection).
    let ours_addr = ours.addr();
    let met_us = |lt: &Lt| {
        lt.peer_closes().iter().any(|(addr, message)| match way {
            Refusal::WeDial => message.contains("incoming encrypted connections disabled"),
            Refusal::TheyDial => *addr == ours_addr,
        })
    };
    let mut w = Watched::default();
    let started = Instant::now();
    let mut refused_at = None;
    // Until SETTLE has passed since the refusal, or at once when our side has a connection.
    while refused_at.is_none_or(|t: Instant| t.elapsed() < SETTLE) && w.seen.is_empty() {
        w.record(&ours.torrent.peers().await.unwrap_or_default());
        if refused_at.is_none() && met_us(&lt) {
            refused_at = Some(Instant::now());
        }
        if refused_at.is_none() && started.elapsed() > CONNECT_TIMEOUT {
            fail(
                &format!(
                    "libtorrent never closed a connection with us within {CONNECT_TIMEOUT:?} \
                     (its closes: {:?})\nours: {}",
                    lt.peer_closes(),
                    ours.describe().await
                ),
                &procs,
            );
        }
        sleep::<Tokio>(WATCH_EVERY).await;
    }
    let moved = ours.torrent.downloaded().await.unwrap() + ours.torrent.uploaded().await.unwrap();
    if !w.seen.is_empty() || moved > 0 {
        fail(
            &format!(
                "our side ({OURS:?}) connected to a plaintext-only libtorrent: connections {:?}, \
                 {moved} payload bytes moved\nours: {}",
                w.seen,
                ours.describe().await
            ),
            &procs,
        );
    }
    ours.shutdown().await;
}

/// Both ways of [`refused`] at once, each on a thread of its own. (Checked: with our side
/// at `Encryption::Enabled` both ways fail, our side connected in plaintext.)
#[test]
fn encryption_required_refuses_a_plaintext_only_libtorrent() {
    let threads: Vec<_> = [Refusal::WeDial, Refusal::TheyDial]
        .into_iter()
        .map(|way| (way, std::thread::spawn(move || run_tokio(refused(way)))))
        .collect();
    let failed: Vec<String> = threads
        .into_iter()
        .filter_map(|(way, t)| {
            let panic = t.join().err()?;
            Some(format!("===== {way:?} =====\n{}", panic_message(&*panic)))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
