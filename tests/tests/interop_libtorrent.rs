//! Interop with libtorrent-rasterbar 2.0 (Debian's python3-libtorrent, driven by
//! `tests/src/interop/lt_client.py`) through opentracker, on loopback: each direction with HTTP
//! and UDP announces and single- and multi-file payloads, the fast extension seen on the wire,
//! a mixed swarm, bt-smol, a corrupted seed, and magnet links both ways (each side fetching
//! the metadata from the other). Each test prints an `INTEROP` throughput line.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use bt_smol::Smol;
use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tests::swarm::{TestRuntime, run_on};
use bt_tokio::Tokio;

/// 64 MiB: big enough that a transfer runs for a while over many pieces, small enough for
/// the whole file to stay within its time budget on two cores.
const SIZE: u64 = 64 * 1024 * 1024;

/// 256 KiB pieces: 256 of them, and a multi-file payload's files cross piece boundaries.
const PIECE: u32 = 256 * 1024;

/// The loopback address of libtorrent and of our peers unless a test needs another one.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The fast-extension messages that open a connection (BEP 6), seen from libtorrent's side:
/// the seed's HAVE_ALL and the empty leecher's HAVE_NONE replace the bitfield when both
/// ends set the fast bit, so seeing them proves the extension was negotiated both ways.
fn assert_fast_extension(lt: &Lt, lt_is_seed: bool, others: &[&Proc]) {
    let log = lt.lines("PEERLOG");
    let (sent, received) = if lt_is_seed {
        ("out HAVE_ALL", "in HAVE_NONE")
    } else {
        ("out HAVE_NONE", "in HAVE_ALL")
    };
    for want in [sent, received] {
        if !log.iter().any(|l| l.starts_with(want)) {
            let mut procs = others.to_vec();
            procs.push(&lt.proc);
            fail(&format!("libtorrent's peer log lacks {want}"), &procs);
        }
    }
}

/// libtorrent seeds; we (on `R`) download through the tracker, byte-exact, with the fast
/// extension in use.
fn lt_seeds<R: TestRuntime>(announce: Announce, layout: Layout)
where
    R::Task: Sync,
{
    run_on::<R, _>("libtorrent seeds", async move {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let seed_dir = tmp.path().join("lt");
        let p = make_payload(
            &seed_dir,
            "payload",
            layout,
            SIZE,
            PIECE,
            &tracker.url(announce),
        );
        tracker.allow(p.info_hash());
        let args = LtArgs::seed().peer_log();
        let Some(mut lt) = Lt::start("libtorrent-seed", &p, &seed_dir, args, &logs) else {
            return;
        };
        lt.wait_announced::<R>().await;
        let procs = [&lt.proc, tracker.proc()];
        let r = our_download::<R>(&p, &tmp.path().join("ours"), &[], &procs).await;
        report(
            "libtorrent",
            &format!("lt->{}", R::NAME),
            announce,
            layout,
            &r,
        );
        if !r.hash_failures.is_empty() {
            fail(&format!("hash failures: {:?}", r.hash_failures), &procs);
        }
        assert_fast_extension(&lt, true, &[tracker.proc()]);
        lt.stop();
    });
}

/// We seed; libtorrent downloads through the tracker, byte-exact, with the fast extension in
/// use and no hash failure on its side.
fn we_seed(announce: Announce, layout: Layout) {
    run_on::<Tokio, _>("we seed to libtorrent", async move {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let seed_dir = tmp.path().join("ours");
        let p = make_payload(
            &seed_dir,
            "payload",
            layout,
            SIZE,
            PIECE,
            &tracker.url(announce),
        );
        tracker.allow(p.info_hash());
        let ours = our_seed::<Tokio>(&p, &seed_dir, &[tracker.proc()]).await;
        let lt_dir = tmp.path().join("lt");
        let args = LtArgs::leech().peer_log();
        let Some(mut lt) = Lt::start("libtorrent-leech", &p, &lt_dir, args, &logs) else {
            return;
        };
        let r = lt.wait_done::<Tokio>(&p, &[tracker.proc()]).await;
        let procs = [&lt.proc, tracker.proc()];
        if let Err(e) = verify(&p, &lt_dir) {
            fail(&format!("libtorrent's copy differs: {e}"), &procs);
        }
        report("libtorrent", "bt->lt", announce, layout, &r);
        let hashfails = lt.lines("HASHFAIL");
        if !hashfails.is_empty() {
            fail(&format!("libtorrent hash failures: {hashfails:?}"), &procs);
        }
        assert!(ours.torrent.uploaded().await.unwrap() >= p.size());
        assert_fast_extension(&lt, false, &[tracker.proc()]);
        lt.stop();
        ours.shutdown().await;
    });
}

#[test]
fn lt_seeds_bt_downloads_http_single() {
    lt_seeds::<Tokio>(Announce::Http, Layout::Single);
}

#[test]
fn lt_seeds_bt_downloads_http_multi() {
    lt_seeds::<Tokio>(Announce::Http, Layout::Multi);
}

#[test]
fn lt_seeds_bt_downloads_udp_single() {
    lt_seeds::<Tokio>(Announce::Udp, Layout::Single);
}

#[test]
fn lt_seeds_bt_downloads_udp_multi() {
    lt_seeds::<Tokio>(Announce::Udp, Layout::Multi);
}

#[test]
fn lt_seeds_smol_downloads_udp_multi() {
    lt_seeds::<Smol>(Announce::Udp, Layout::Multi);
}

#[test]
fn bt_seeds_lt_downloads_http_single() {
    we_seed(Announce::Http, Layout::Single);
}

#[test]
fn bt_seeds_lt_downloads_http_multi() {
    we_seed(Announce::Http, Layout::Multi);
}

#[test]
fn bt_seeds_lt_downloads_udp_single() {
    we_seed(Announce::Udp, Layout::Single);
}

#[test]
fn bt_seeds_lt_downloads_udp_multi() {
    we_seed(Announce::Udp, Layout::Multi);
}

/// A libtorrent leecher finds two seeds through the tracker, us and another libtorrent, and
/// downloads from both.
#[test]
fn mixed_swarm_bt_and_lt_seed_lt() {
    run_on::<Tokio, _>("mixed swarm", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let (layout, announce) = (Layout::Multi, Announce::Http);
        let url = tracker.url(announce);
        let ours_dir = tmp.path().join("ours");
        let p = make_payload(&ours_dir, "payload", layout, SIZE, PIECE, &url);
        let seed_dir = tmp.path().join("lt-seed");
        let p2 = make_payload(&seed_dir, "payload", layout, SIZE, PIECE, &url);
        assert_eq!(p.torrent, p2.torrent, "the payload is deterministic");
        tracker.allow(p.info_hash());
        let ours = our_seed::<Tokio>(&p, &ours_dir, &[tracker.proc()]).await;
        let Some(mut seed) = Lt::start("libtorrent-seed", &p2, &seed_dir, LtArgs::seed(), &logs)
        else {
            return;
        };
        seed.wait_announced::<Tokio>().await;
        if !tracker.wait_seeders::<Tokio>(p.info_hash(), 2).await {
            fail(
                "the tracker does not count two seeds",
                &[&seed.proc, tracker.proc()],
            );
        }
        let leech_dir = tmp.path().join("lt-leech");
        let Some(mut leech) = Lt::start("libtorrent-leech", &p, &leech_dir, LtArgs::leech(), &logs)
        else {
            return;
        };
        let r = leech
            .wait_done::<Tokio>(&p, &[&seed.proc, tracker.proc()])
            .await;
        let procs = [&leech.proc, &seed.proc, tracker.proc()];
        if let Err(e) = verify(&p, &leech_dir) {
            fail(&format!("libtorrent's copy differs: {e}"), &procs);
        }
        report("libtorrent", "bt+lt->lt", announce, layout, &r);
        let our_up = ours.torrent.uploaded().await.unwrap();
        leech.stop();
        // Stopped, the seed prints its final counters (earlier lines may lag behind).
        seed.stop();
        let lt_up = seed.status().map_or(0, |s| s.up);
        eprintln!("mixed swarm: our seed sent {our_up} bytes, the libtorrent seed {lt_up}");
        if our_up == 0 || lt_up == 0 {
            fail(
                &format!("a seed sent nothing: ours {our_up}, libtorrent's {lt_up}"),
                &[&leech.proc, &seed.proc, tracker.proc()],
            );
        }
        ours.shutdown().await;
    });
}

/// A seed of ours whose data went bad after it was verified (one flipped byte) serves a
/// corrupted piece; a libtorrent seed has good data. Our downloader reports the hash failure
/// of exactly that piece, bans the corrupted seed and nobody else, gets the piece from
/// libtorrent and finishes byte-exact.
///
/// The corrupted seed is ours because libtorrent cannot be one: in `seed_mode` it hashes each
/// piece before first serving it and drops back to a full recheck on a mismatch. It listens on
/// 127.0.0.2 because peers are banned by IP: on 127.0.0.1 the ban would also cut off the good
/// seed, which no real swarm's good seed shares an address with. It is trackerless (the same
/// info dict without `announce`, so the same info-hash) and reached by `add_peer`, so the
/// downloader meets it first, alone, and must see the bad piece.
#[test]
fn corrupted_seed_hash_failure_good_lt_seed_finishes() {
    run_on::<Tokio, _>("corrupted seed", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let (layout, announce) = (Layout::Multi, Announce::Http);
        let good_dir = tmp.path().join("lt-seed");
        let p = make_payload(
            &good_dir,
            "payload",
            layout,
            SIZE,
            PIECE,
            &tracker.url(announce),
        );
        tracker.allow(p.info_hash());
        let bad_dir = tmp.path().join("bad");
        let pb = make_payload(&bad_dir, "payload", layout, SIZE, PIECE, "");
        assert_eq!(pb.info_hash(), p.info_hash());
        let bad_ip = Ipv4Addr::new(127, 0, 0, 2);
        let bad = Ours::<Tokio>::start_at(bad_ip, &pb, &bad_dir, &[]).await;
        assert!(
            bad.wait_complete().await.is_some(),
            "the bad seed verified its data"
        );
        let piece = pb.corrupt(&bad_dir);

        let leech_dir = tmp.path().join("ours");
        let ours = Ours::<Tokio>::start(&p, &leech_dir, &[bad.addr()]).await;
        let failed =
            poll_until::<Tokio>(TRANSFER_TIMEOUT, || ours.hash_failures().contains(&piece)).await;
        if !failed {
            let state = ours.describe().await;
            fail(
                &format!("no hash failure for {piece} from the corrupted seed: {state}"),
                &[tracker.proc()],
            );
        }
        let args = LtArgs::seed().connect(ours.addr());
        let Some(mut lt) = Lt::start("libtorrent-seed", &p, &good_dir, args, &logs) else {
            return;
        };
        let procs = [&lt.proc, tracker.proc()];
        let Some(r) = ours.wait_complete().await else {
            let state = ours.describe().await;
            fail(&format!("our download did not complete: {state}"), &procs)
        };
        if let Err(e) = verify(&p, &leech_dir) {
            fail(&format!("our copy differs: {e}"), &procs);
        }
        report("libtorrent", "lt+corrupt->bt", announce, layout, &r);
        if r.hash_failures.iter().any(|f| *f != piece) {
            fail(
                &format!("hash failures beyond {piece}: {:?}", r.hash_failures),
                &procs,
            );
        }
        // Once libtorrent's copy of the piece passed, the smart ban compared it with the
        // failed attempt, whose every differing block came from the corrupted seed.
        if !r.banned.iter().any(|a| a.ip() == IpAddr::V4(bad_ip)) {
            fail(
                &format!("the corrupted seed was not banned: {:?}", r.banned),
                &procs,
            );
        }
        if let Some(b) = r.banned.iter().find(|a| a.ip() != IpAddr::V4(bad_ip)) {
            fail(
                &format!("{b} banned, yet only the corrupted seed sent bad data"),
                &procs,
            );
        }
        assert!(r.banned.iter().all(|a| a.ip() != LOOPBACK));
        // Stopped, libtorrent prints its final counters (earlier lines may lag behind).
        lt.stop();
        let lt_up = lt.status().map_or(0, |s| s.up);
        eprintln!(
            "corrupted seed: hash failures {:?}, banned {:?}, the good seed sent {lt_up} bytes",
            r.hash_failures, r.banned
        );
        if lt_up < u64::from(PIECE) {
            fail(
                &format!("the good seed sent {lt_up} bytes, less than the bad piece"),
                &[&lt.proc, tracker.proc()],
            );
        }
        ours.shutdown().await;
        bad.shutdown().await;
    });
}

/// libtorrent seeds, serving the metadata; we download from a magnet link holding only the
/// info-hash and the tracker: the tracker gives us libtorrent, libtorrent the metadata, then
/// the files.
#[test]
fn lt_seeds_bt_fetches_a_magnet_link() {
    run_on::<Tokio, _>("libtorrent seeds, we fetch a magnet link", async move {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let url = tracker.url(Announce::Http);
        let seed_dir = tmp.path().join("lt");
        let p = make_payload(&seed_dir, "payload", Layout::Multi, SIZE, PIECE, &url);
        tracker.allow(p.info_hash());
        let args = LtArgs::seed().serve_metadata();
        let Some(mut lt) = Lt::start("libtorrent-seed", &p, &seed_dir, args, &logs) else {
            return;
        };
        lt.wait_announced::<Tokio>().await;
        let procs = [&lt.proc, tracker.proc()];
        let link = magnet::bare_magnet(&p, &url);
        let ours = tmp.path().join("ours");
        let r = magnet::our_magnet_download::<Tokio>(&p, link, &ours, &procs).await;
        report(
            "libtorrent",
            "lt->bt magnet",
            Announce::Http,
            Layout::Multi,
            &r,
        );
        lt.stop();
    });
}

/// We seed; libtorrent downloads from a magnet link holding only the info-hash and the
/// tracker, fetching the metadata from us, the only peer that has it.
#[test]
fn bt_seeds_lt_fetches_a_magnet_link() {
    run_on::<Tokio, _>("we seed, libtorrent fetches a magnet link", async move {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(tracker) = Tracker::start(&logs) else {
            return;
        };
        let url = tracker.url(Announce::Http);
        let seed_dir = tmp.path().join("ours");
        let p = make_payload(&seed_dir, "payload", Layout::Multi, SIZE, PIECE, &url);
        tracker.allow(p.info_hash());
        let ours = our_seed::<Tokio>(&p, &seed_dir, &[tracker.proc()]).await;
        let lt_dir = tmp.path().join("lt");
        let link = magnet::bare_magnet(&p, &url).to_uri();
        let args = LtArgs::leech_magnet(link);
        let Some(mut lt) = Lt::start("libtorrent-magnet", &p, &lt_dir, args, &logs) else {
            return;
        };
        let r = lt.wait_done::<Tokio>(&p, &[tracker.proc()]).await;
        let procs = [&lt.proc, tracker.proc()];
        if lt.lines("METADATA") != [p.name.clone()] {
            fail(
                "libtorrent did not say once that the metadata arrived",
                &procs,
            );
        }
        if let Err(e) = verify(&p, &lt_dir) {
            fail(&format!("libtorrent's copy differs: {e}"), &procs);
        }
        report(
            "libtorrent",
            "bt->lt magnet",
            Announce::Http,
            Layout::Multi,
            &r,
        );
        lt.stop();
        ours.shutdown().await;
    });
}
