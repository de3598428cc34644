//! Magnet links and peer exchange with real clients, on loopback: libtorrent and aria2
//! download from a magnet link holding only the info-hash and the tracker, fetching the
//! metadata (BEP 9) from our seed, the only peer that has it; and a swarm where peer
//! exchange (BEP 11) is the only way our peers and libtorrent's can meet, both ways.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use bt_proto::magnet::Magnet;
use bt_tests::interop::clients::{Client, verify_written};
use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tests::swarm::run_on;
use bt_tokio::Tokio;

/// 16 MiB in 256 KiB pieces: the metadata is a single 16 KiB piece of it, and the transfer
/// after it is long enough to show the torrent working, short enough for three suites.
const SIZE: u64 = 16 * 1024 * 1024;
const PIECE: u32 = 256 * 1024;

/// A magnet link with the info-hash and the tracker only: no name, no peer.
fn bare_magnet(p: &Payload, tracker: &str) -> String {
    let mut m = Magnet::new(p.info_hash());
    m.trackers = vec![tracker.to_string()];
    m.to_uri()
}

/// We seed; libtorrent is given a magnet link and finds us through the tracker, fetches the
/// metadata from us and downloads, byte-exact.
#[test]
fn bt_seeds_lt_downloads_from_a_magnet_link() {
    run_on::<Tokio, _>("libtorrent magnet", async {
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
        let args = LtArgs::leech().magnet(bare_magnet(&p, &url));
        let Some(mut lt) = Lt::start("libtorrent-magnet", &p, &lt_dir, args, &logs) else {
            return;
        };
        let r = lt.wait_done::<Tokio>(&p, &[tracker.proc()]).await;
        let procs = [&lt.proc, tracker.proc()];
        if lt.lines("METADATA").is_empty() {
            fail("libtorrent never reported the metadata", &procs);
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

/// We seed; aria2 is given a magnet link with the tracker, fetches the metadata from us (it
/// has no other peer: DHT, PEX and local discovery are off) and downloads, byte-exact.
#[test]
fn bt_seeds_aria2_downloads_from_a_magnet_link() {
    run_on::<Tokio, _>("aria2 magnet", async {
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
        let theirs = tmp.path().join("theirs");
        let magnet = bare_magnet(&p, &url);
        let client = Client::Aria2;
        let Some(mut c) = client.start_magnet_download(&magnet, &p, &theirs, tmp.path(), &logs)
        else {
            return;
        };
        c.wait_finished::<Tokio>(TRANSFER_TIMEOUT, &[tracker.proc()])
            .await;
        if let Err(e) = verify_written(client, &p, &theirs) {
            c.fail(&format!("aria2's copy differs: {e}"), &[tracker.proc()]);
        }
        let uploaded = ours.torrent.uploaded().await.unwrap();
        if uploaded < p.size() {
            c.fail(
                &format!("we uploaded {uploaded} bytes of {}", p.size()),
                &[tracker.proc()],
            );
        }
        c.stop();
        ours.shutdown().await;
    });
}

/// How long libtorrent's peer exchange may take to name a peer: it sends a message a minute.
const PEX_WAIT: Duration = Duration::from_secs(90);

/// No tracker answers (the torrent's is a closed port), and nobody completes: our peer S has
/// the first half of the data, the rest of the swarm none, so every connection stays up.
/// libtorrent L, with its `ut_pex` plugin, is connected to S. Our leecher B (127.0.0.2) is
/// given only L's address, and our leecher C (127.0.0.3) only S's. B can meet S only through
/// L's peer exchange, and C can meet L only through S's: both must happen.
#[test]
fn peer_exchange_with_libtorrent_both_ways() {
    run_on::<Tokio, _>("pex with libtorrent", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        // Port 9 (discard) on loopback: nothing listens, every announce fails at once.
        let dead = "http://127.0.0.1:9/announce";
        let seed_dir = tmp.path().join("s");
        let p = make_payload(&seed_dir, "payload", Layout::Single, SIZE, PIECE, dead);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(seed_dir.join(&p.name))
            .unwrap();
        file.set_len(SIZE / 2).unwrap();
        let s = Ours::<Tokio>::start(&p, &seed_dir, &[]).await;
        let lt_dir = tmp.path().join("lt");
        let args = LtArgs::leech().pex().connect(s.addr());
        let Some(lt) = Lt::start("libtorrent-pex", &p, &lt_dir, args, &logs) else {
            return;
        };
        let b = Ours::<Tokio>::start_at(
            Ipv4Addr::new(127, 0, 0, 2),
            &p,
            &tmp.path().join("b"),
            &[lt.addr()],
        )
        .await;
        let c = Ours::<Tokio>::start_at(
            Ipv4Addr::new(127, 0, 0, 3),
            &p,
            &tmp.path().join("c"),
            &[s.addr()],
        )
        .await;
        let met = poll_until::<Tokio>(PEX_WAIT, || {
            b.peers_met().contains(&s.addr()) && c.peers_met().contains(&lt.addr())
        })
        .await;
        if !met {
            fail(
                &format!(
                    "B met {:?} (S is {}), C met {:?} (libtorrent is {})",
                    b.peers_met(),
                    s.addr(),
                    c.peers_met(),
                    lt.addr()
                ),
                &[&lt.proc],
            );
        }
        b.shutdown().await;
        c.shutdown().await;
        s.shutdown().await;
    });
}
