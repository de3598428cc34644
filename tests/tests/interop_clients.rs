//! Interop with transmission, aria2, rtorrent and qBittorrent through opentracker: each
//! client seeds while our `bt` (tokio) downloads, and downloads while we seed.
//!
//! The matrix is the smallest that covers, for every client and direction, both announce
//! kinds and both layouts, and for every client all four announce × layout pairs: when the
//! client seeds, HTTP + single file and UDP + multi-file; when it downloads, HTTP +
//! multi-file and UDP + single file. 16 tests of 64 MiB each, and one more where aria2
//! downloads from a magnet link, fetching the metadata from us.
//!
//! Multi-file payloads have nested folders, a file spanning pieces and an empty file
//! ([`Layout::Multi`]). Every file is compared by length and SHA-1 with the source.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use bt_tests::interop::clients::{Client, Role, Setup, verify_written};
use bt_tests::interop::*;
use bt_tokio::Tokio;

const MIB: u64 = 1024 * 1024;
/// The payload size: big enough for many pieces in flight and a throughput figure.
const SIZE: u64 = 64 * MIB;
/// A common piece length for this size (256 pieces).
const PIECE: u32 = 256 * 1024;

/// The client seeds `layout` announced over `announce`; our session downloads it.
fn client_seeds(client: Client, announce: Announce, layout: Layout) {
    run_tokio(async move {
        let Some(s) = Setup::new("theirs", announce, layout, SIZE, PIECE) else {
            return;
        };
        let Some(mut c) = client.start(Role::Seed, &s.p, &s.seed_dir, s.tmp.path(), &s.logs) else {
            return;
        };
        // Clients announce once at start (opentracker's interval is ~30 minutes), after
        // checking their data; our download must find the client already registered.
        s.wait_registered::<Tokio>(&mut c, Role::Seed).await;
        let ours = s.tmp.path().join("ours");
        let procs = [&c.proc, s.tracker.proc()];
        let r = our_download::<Tokio>(&s.p, &ours, &[], &procs).await;
        let direction = format!("{}->bt", client.name());
        report(client.name(), &direction, announce, layout, &r);
    });
}

/// Our session seeds `layout` announced over `announce`; the client downloads it.
fn client_downloads(client: Client, announce: Announce, layout: Layout) {
    run_tokio(async move {
        let Some(s) = Setup::new("ours", announce, layout, SIZE, PIECE) else {
            return;
        };
        let theirs = s.tmp.path().join("theirs");
        let start = || client.start(Role::Download, &s.p, &theirs, s.tmp.path(), &s.logs);
        let started = Instant::now();
        let (ours, mut c) = if client.dials_loopback_peers() {
            // We seed first; the client finds us through the tracker and connects.
            let ours = our_seed::<Tokio>(&s.p, &s.seed_dir, &[s.tracker.proc()]).await;
            let Some(c) = start() else {
                return;
            };
            (ours, c)
        } else {
            // The client registers as a leecher first; our seed's announce returns it, and
            // we connect to it.
            let Some(mut c) = start() else {
                return;
            };
            s.wait_registered::<Tokio>(&mut c, Role::Download).await;
            let procs = [&c.proc, s.tracker.proc()];
            let ours = our_seed::<Tokio>(&s.p, &s.seed_dir, &procs).await;
            (ours, c)
        };
        c.wait_finished::<Tokio>(TRANSFER_TIMEOUT, &[s.tracker.proc()])
            .await;
        let secs = started.elapsed().as_secs_f64();
        check_written(client, &s.p, &theirs, &c);
        let r = served_all(&ours, &s, &c, secs).await;
        let direction = format!("bt->{}", client.name());
        report(client.name(), &direction, announce, layout, &r);
        c.stop();
        ours.shutdown().await;
    });
}

/// The figures of a download by `c` that took `secs`, once our seed's counter shows it
/// served all of it (the data can only have come from us); fails the test otherwise.
async fn served_all(
    ours: &Ours<Tokio>,
    s: &Setup,
    c: &clients::Running,
    secs: f64,
) -> TransferReport {
    let uploaded = ours.torrent.uploaded().await.unwrap();
    if uploaded < s.p.size() {
        c.fail(
            &format!("we uploaded {uploaded} bytes of {}", s.p.size()),
            &[s.tracker.proc()],
        );
    }
    TransferReport {
        bytes: s.p.size(),
        secs,
        ..Default::default()
    }
}

/// Fails the test unless what `c` wrote under `dir` is `p`, byte for byte.
fn check_written(client: Client, p: &Payload, dir: &Path, c: &clients::Running) {
    if let Err(e) = verify_written(client, p, dir) {
        c.fail(&format!("the client's download differs: {e}"), &[]);
    }
}

#[test]
fn transmission_seeds_http_single() {
    client_seeds(Client::Transmission, Announce::Http, Layout::Single);
}

#[test]
fn transmission_seeds_udp_multi() {
    client_seeds(Client::Transmission, Announce::Udp, Layout::Multi);
}

#[test]
fn transmission_downloads_http_multi() {
    client_downloads(Client::Transmission, Announce::Http, Layout::Multi);
}

#[test]
fn transmission_downloads_udp_single() {
    client_downloads(Client::Transmission, Announce::Udp, Layout::Single);
}

#[test]
fn aria2_seeds_http_single() {
    client_seeds(Client::Aria2, Announce::Http, Layout::Single);
}

#[test]
fn aria2_seeds_udp_multi() {
    client_seeds(Client::Aria2, Announce::Udp, Layout::Multi);
}

#[test]
fn aria2_downloads_http_multi() {
    client_downloads(Client::Aria2, Announce::Http, Layout::Multi);
}

#[test]
fn aria2_downloads_udp_single() {
    client_downloads(Client::Aria2, Announce::Udp, Layout::Single);
}

#[test]
fn rtorrent_seeds_http_single() {
    client_seeds(Client::Rtorrent, Announce::Http, Layout::Single);
}

#[test]
fn rtorrent_seeds_udp_multi() {
    client_seeds(Client::Rtorrent, Announce::Udp, Layout::Multi);
}

#[test]
fn rtorrent_downloads_http_multi() {
    client_downloads(Client::Rtorrent, Announce::Http, Layout::Multi);
}

#[test]
fn rtorrent_downloads_udp_single() {
    client_downloads(Client::Rtorrent, Announce::Udp, Layout::Single);
}

#[test]
fn qbittorrent_seeds_http_single() {
    client_seeds(Client::Qbittorrent, Announce::Http, Layout::Single);
}

#[test]
fn qbittorrent_seeds_udp_multi() {
    client_seeds(Client::Qbittorrent, Announce::Udp, Layout::Multi);
}

#[test]
fn qbittorrent_downloads_http_multi() {
    client_downloads(Client::Qbittorrent, Announce::Http, Layout::Multi);
}

#[test]
fn qbittorrent_downloads_udp_single() {
    client_downloads(Client::Qbittorrent, Announce::Udp, Layout::Single);
}

/// We seed, the only peer with the torrent; aria2 downloads from a magnet link holding only
/// the info-hash and the tracker, fetching the metadata from us.
#[test]
fn aria2_downloads_a_magnet_link() {
    run_tokio(async move {
        let Some(s) = Setup::new("ours", Announce::Http, Layout::Multi, SIZE, PIECE) else {
            return;
        };
        let started = Instant::now();
        let ours = our_seed::<Tokio>(&s.p, &s.seed_dir, &[s.tracker.proc()]).await;
        let theirs = s.tmp.path().join("theirs");
        let link = magnet::bare_magnet(&s.p, &s.tracker.url(Announce::Http)).to_uri();
        let client = Client::Aria2;
        let started_client = client.start_magnet(&s.p, &link, &theirs, s.tmp.path(), &s.logs);
        let Some(mut c) = started_client else {
            return;
        };
        c.wait_finished::<Tokio>(TRANSFER_TIMEOUT, &[s.tracker.proc()])
            .await;
        check_written(client, &s.p, &theirs, &c);
        let r = served_all(&ours, &s, &c, started.elapsed().as_secs_f64()).await;
        report(
            "aria2",
            "bt->aria2 magnet",
            Announce::Http,
            Layout::Multi,
            &r,
        );
        c.stop();
        ours.shutdown().await;
    });
}
