//! Helpers shared by the cross-crate tests in `tests/tests/`.

use std::path::PathBuf;

/// The directory holding the third-party fixtures (WebTorrent's test files, MIT licence).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("webtorrent")
}

pub mod bench;
pub mod conformance;
pub mod edges;
pub mod interop;
pub mod swarm;
pub mod tracker;
