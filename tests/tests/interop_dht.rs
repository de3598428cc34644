//! The DHT (BEP 5) with libtorrent, on loopback: a libtorrent DHT node (no torrent) is the
//! only bootstrap node of every client, and the only way they can meet. libtorrent seeds and
//! we fetch a magnet link; we seed and libtorrent fetches one; two of our sessions (tokio
//! and smol) find each other. Each test starts its own node, so they run in parallel.
//!
//! Nothing else could bring the peers together: the torrent names no tracker, the magnet
//! links only the info-hash, nobody is given a peer (no `add_peer`, no `--connect`), local
//! discovery is off on both sides (our loopback sessions' config, the script's
//! `enable_lsd`), and libtorrent's peer exchange is not loaded (our sessions' needs a first
//! peer to start from).
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bt_adapter::TorrentOptions;
use bt_adapter::runtime::timeout_at;
use bt_proto::engine::DHT_SEARCH_RETRY;
use bt_proto::magnet::Magnet;
use bt_smol::Smol;
use bt_tests::dht::dht_builder;
use bt_tests::interop::libtorrent::{Lt, LtArgs};
use bt_tests::interop::*;
use bt_tests::swarm::{addr_of, run_on, sleep};
use bt_tokio::Tokio;

/// 4 MiB in 256 KiB pieces, multi-file: what is under test is finding the peer, and a
/// transfer of a few pieces across files shows the peer found is the right one. Small, so
/// the three tests together stay within a few seconds of discovery and transfer.
const SIZE: u64 = 4 * 1024 * 1024;
const PIECE: u32 = 256 * 1024;

/// How long a DHT exchange may take: a client bootstrapping from the node and announcing
/// to it, a node entering another's table. On loopback this is well under a second; the
/// bound leaves room for two busy cores.
const DHT_WITHIN: Duration = Duration::from_secs(20);

/// How long a download may take from its magnet link, the DHT search and the metadata
/// included (under a second on loopback). Shorter than our engine's retry of a search that
/// found a thin table ([`DHT_SEARCH_RETRY`]), so a download that only works through that
/// retry fails: once the node has the seed, the first search that reaches it must find it.
/// (Our magnet's first search runs before the node has answered our bootstrap, with an
/// empty table, and finds nothing; the search the engine runs again as soon as its table
/// grows is the one that finds the seed. Without that re-run the downloads wait 30 s.)
const FOUND_WITHIN: Duration = DHT_SEARCH_RETRY.saturating_sub(Duration::from_secs(10));

/// A payload under `dir` whose torrent names no tracker.
fn trackerless_payload(dir: &Path) -> Payload {
    let p = make_payload(dir, "payload", Layout::Multi, SIZE, PIECE, "");
    assert!(p.meta.trackers().is_empty(), "{:?}", p.meta.trackers());
    p
}

/// The magnet link of `p` with the info-hash and nothing else.
fn bare_magnet(p: &Payload) -> Magnet {
    let link = Magnet::new(p.info_hash());
    assert!(link.trackers.is_empty() && link.peers.is_empty());
    link
}

/// Prints the `INTEROP <client> <direction> dht multi: N MB/s` line (the time includes the
/// search and the metadata).
fn report_dht(client: &str, direction: &str, r: &TransferReport) {
    eprintln!(
        "INTEROP {client} {direction} dht {}: {:.1} MB/s ({} bytes in {:.2} s)",
        Layout::Multi,
        r.mbps(),
        r.bytes,
        r.secs
    );
}

/// libtorrent's DHT node, with no torrent: everybody's bootstrap node.
fn start_node(logs: &Path) -> Option<Lt> {
    Lt::node("libtorrent-dht-node", LtArgs::node(), logs)
}

/// Fails unless libtorrent's node took every message of ours: it counts the queries it
/// refuses (a bad token, an id it would not take) and the datagrams it drops.
fn assert_nothing_refused(node: &Lt, others: &[&Proc]) {
    let stats = node.dht_stats();
    if stats.refused() != 0 {
        let mut procs = others.to_vec();
        procs.push(&node.proc);
        fail(
            &format!("libtorrent's DHT node refused messages: {stats:?}"),
            &procs,
        );
    }
}

/// libtorrent seeds a torrent it announces only in the DHT, bootstrapping from the node; we
/// download it from a magnet link holding only the info-hash, our session's DHT
/// bootstrapping from that node only. Our search must find libtorrent's announce there and
/// our announce must be stored by libtorrent.
#[test]
fn libtorrent_seeds_in_the_dht_we_fetch_a_magnet_link() {
    run_on::<Tokio, _>("libtorrent seeds in the DHT, we fetch", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(mut node) = start_node(&logs) else {
            return;
        };
        let seed_dir = tmp.path().join("lt");
        let p = trackerless_payload(&seed_dir);
        let args = LtArgs::seed().serve_metadata().dht(node.addr());
        let Some(mut lt) = Lt::start("libtorrent-seed", &p, &seed_dir, args, &logs) else {
            return;
        };
        node.wait_dht_announce::<Tokio>(p.info_hash(), lt.addr(), DHT_WITHIN, &[&lt.proc])
            .await;

        let builder = dht_builder::<Tokio>(vec![node.addr().to_string()]);
        let ours = tmp.path().join("ours");
        let procs = [&lt.proc, &node.proc];
        let r = magnet::our_magnet_download_on(
            builder,
            &p,
            bare_magnet(&p),
            &ours,
            FOUND_WITHIN,
            &procs,
        )
        .await;
        report_dht("libtorrent", "lt->bt dht magnet", &r);
        // Its progress lines come every 250 ms; the transfer may have taken less.
        let uploaded =
            poll_until::<Tokio>(DHT_WITHIN, || lt.status().is_some_and(|s| s.up > 0)).await;
        if !uploaded {
            fail("libtorrent's seed uploaded nothing", &procs);
        }
        // Our search announced us (with the token libtorrent's node gave us) at its end.
        let hash = p.info_hash().to_string();
        let ours_stored = poll_until::<Tokio>(DHT_WITHIN, || {
            node.dht_announces()
                .iter()
                .any(|(a, h)| *h == hash && *a != lt.addr())
        })
        .await;
        if !ours_stored {
            fail(
                &format!(
                    "libtorrent's node did not store our announce: {:?}",
                    node.dht_announces()
                ),
                &procs,
            );
        }
        assert_nothing_refused(&node, &[&lt.proc]);
        lt.stop();
        node.stop();
    });
}

/// We seed, our DHT bootstrapping from the node; libtorrent, bootstrapping from it too,
/// fetches a magnet link holding only the info-hash: it must meet us through the DHT (its
/// lookup finds our announce, or its announce to our node makes us dial it) and complete,
/// byte for byte.
#[test]
fn we_seed_in_the_dht_libtorrent_fetches_a_magnet_link() {
    run_on::<Tokio, _>("we seed in the DHT, libtorrent fetches", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(mut node) = start_node(&logs) else {
            return;
        };
        let seed_dir = tmp.path().join("ours");
        let p = trackerless_payload(&seed_dir);
        let session = dht_builder::<Tokio>(vec![node.addr().to_string()])
            .start()
            .await
            .unwrap();
        let seed = session
            .add_torrent(TorrentOptions::from_bytes(p.torrent.clone()).base_dir(&seed_dir))
            .await
            .unwrap();
        let checked = timeout_at::<Tokio, _>(
            std::time::Instant::now() + TRANSFER_TIMEOUT,
            seed.wait_complete(),
        )
        .await;
        if !matches!(checked, Some(Ok(()))) {
            fail(&format!("our seed did not verify: {checked:?}"), &[]);
        }
        let us = addr_of(&session);
        node.wait_dht_announce::<Tokio>(p.info_hash(), us, DHT_WITHIN, &[])
            .await;

        let lt_dir = tmp.path().join("lt");
        let args = LtArgs::leech_magnet(bare_magnet(&p).to_uri()).dht(node.addr());
        let Some(mut lt) = Lt::start("libtorrent-leecher", &p, &lt_dir, args, &logs) else {
            return;
        };
        let r = lt
            .wait_done_within::<Tokio>(FOUND_WITHIN, &p, &[&node.proc])
            .await;
        let procs = [&lt.proc, &node.proc];
        if lt.lines("METADATA") != [p.name.clone()] {
            fail(
                "libtorrent did not say once that the metadata arrived",
                &procs,
            );
        }
        if let Err(e) = verify(&p, &lt_dir) {
            fail(&format!("libtorrent's copy differs: {e}"), &procs);
        }
        report_dht("libtorrent", "bt->lt dht magnet", &r);
        assert!(seed.uploaded().await.unwrap() >= p.size());
        // Either libtorrent's lookup found our announce, or libtorrent's announce to our
        // node made our seed dial it first: a connection to libtorrent, with no source bit,
        // from our seed's ephemeral port (our only session, so any such peer is it). Both
        // are the DHT alone: nobody has a tracker, LSD is off, nobody was given a peer.
        // That our node stored libtorrent's announce is checked below.
        let peers = lt.peers_seen();
        let from_dht = peers.iter().any(|(a, source)| {
            (*a == us && source.split(',').any(|s| s == "dht"))
                || (a.ip() == us.ip() && source == "none")
        });
        if !from_dht {
            fail(
                &format!("libtorrent did not meet us ({us}) through the DHT: {peers:?}"),
                &[&lt.proc, &node.proc],
            );
        }
        // libtorrent announced itself to our node too (it is among the closest nodes it
        // found): our node took the token it had given back and stored the peer.
        let end = std::time::Instant::now() + DHT_WITHIN;
        let mut status = None;
        let mut stored = false;
        while !stored && std::time::Instant::now() < end {
            sleep::<Tokio>(Duration::from_millis(50)).await;
            status = session.dht_status().await.unwrap();
            stored = status.is_some_and(|s| s.stored_peers >= 1);
        }
        if !stored {
            fail(
                &format!("our node stored no announce from libtorrent: {status:?}"),
                &[&lt.proc, &node.proc],
            );
        }
        assert_nothing_refused(&node, &[&lt.proc]);
        lt.stop();
        node.stop();
        session.shutdown().await;
    });
}

/// Two of our sessions, a tokio seed and a smol leecher, each bootstrapping from
/// libtorrent's node only: the seed's announce stored there is how the leecher's magnet
/// link finds it.
#[test]
fn our_sessions_find_each_other_through_a_libtorrent_node() {
    run_on::<Smol, _>("two of ours meet through libtorrent's DHT node", async {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let Some(mut node) = start_node(&logs) else {
            return;
        };
        let seed_dir = tmp.path().join("seed");
        let p = trackerless_payload(&seed_dir);
        let session = dht_builder::<Tokio>(vec![node.addr().to_string()])
            .start()
            .await
            .unwrap();
        let seed = session
            .add_torrent(TorrentOptions::from_bytes(p.torrent.clone()).base_dir(&seed_dir))
            .await
            .unwrap();
        let checked = timeout_at::<Smol, _>(
            std::time::Instant::now() + TRANSFER_TIMEOUT,
            seed.wait_complete(),
        )
        .await;
        if !matches!(checked, Some(Ok(()))) {
            fail(&format!("our seed did not verify: {checked:?}"), &[]);
        }
        node.wait_dht_announce::<Smol>(p.info_hash(), addr_of(&session), DHT_WITHIN, &[])
            .await;

        let builder = dht_builder::<Smol>(vec![node.addr().to_string()]);
        let dir = tmp.path().join("leecher");
        let r = magnet::our_magnet_download_on(
            builder,
            &p,
            bare_magnet(&p),
            &dir,
            FOUND_WITHIN,
            &[&node.proc],
        )
        .await;
        report_dht("bt", "tokio->smol dht magnet", &r);
        assert!(seed.uploaded().await.unwrap() >= p.size());
        // libtorrent keeps both of our nodes in its routing table: they answered its
        // queries as it wants, from one IP (its guards against that are off, see the
        // script's `dht_settings`).
        let kept = poll_until::<Smol>(DHT_WITHIN, || node.dht_stats().nodes >= 2).await;
        if !kept {
            fail(
                &format!(
                    "libtorrent's node did not keep our two nodes: {:?}",
                    node.dht_stats()
                ),
                &[&node.proc],
            );
        }
        assert_nothing_refused(&node, &[]);
        node.stop();
        session.shutdown().await;
    });
}
