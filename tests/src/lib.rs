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

pub mod bench;
pub mod conformance;
pub mod interop;
pub mod swarm;
pub mod tracker;
