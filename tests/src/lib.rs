//! Helpers shared by the cross-crate tests in `tests/tests/`.
// Test support, not library code: a setup step that fails (a file, a socket, a client) should
// stop the test on that line, so unwrap, expect, indexing and panics are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;

/// The directory holding the third-party fixtures (WebTorrent's test files, MIT licence).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("webtorrent")
}

/// Lifts the engine's per-host connection limits for a session whose peers all share one
/// loopback address (every test process here is 127.0.0.1): with the defaults, one host gets
/// one connection per torrent and four pending handshakes. Tests of those limits put their
/// adversary on another loopback address instead.
///
/// Local service discovery is switched off too: tests running side by side on one host share
/// torrents (the same fixtures and payloads), and must meet only the peers they give each
/// other. The LSD tests switch it on again. So is the DHT, for the same reason and so that no
/// test sends datagrams to the public routers; the DHT tests switch it on again with their
/// own bootstrap node.
pub fn loopback_limits(c: &mut bt_proto::engine::Config) {
    c.max_connections_per_host = LOOPBACK_PEERS_PER_HOST;
    c.max_incoming_handshakes_per_host = LOOPBACK_PEERS_PER_HOST;
    c.lsd = false;
    c.dht = false;
}

/// Connections per torrent and pending handshakes allowed from one loopback address:
/// more than any test opens (the idle-connections bench sets its own).
pub const LOOPBACK_PEERS_PER_HOST: usize = 256;

pub mod adversary;
pub mod api;
pub mod bench;
pub mod child;
pub mod conformance;
#[cfg(unix)]
pub mod crash_loop;
pub mod dht;
pub mod edges;
pub mod encryption;
pub mod hostile_disk;
pub mod interop;
pub mod limits;
pub mod local_discovery;
pub mod magnet;
pub mod sim;
pub mod streaming;
pub mod swarm;
pub mod tracker;
pub mod utp;
