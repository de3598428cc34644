//! The leecher process of the crash scenario (`bt_tests::conformance::crash_restart`): it
//! downloads a torrent from one peer, saving resume data often and verifying slowly, until
//! the test kills it. Arguments: `tokio|smol TORRENT BASE_DIR PEER SAVE_MS PAUSE_MS`.
// A test process: a failing step should stop it loudly on its line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bt_smol::Smol;
use bt_tests::conformance::crash_leecher;
use bt_tests::swarm::TestRuntime;
use bt_tokio::Tokio;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runtime, torrent, base, peer, save_ms, pause_ms] = args.as_slice() else {
        panic!("usage: crash_leecher tokio|smol TORRENT BASE_DIR PEER SAVE_MS PAUSE_MS");
    };
    let torrent = PathBuf::from(torrent);
    let base = PathBuf::from(base);
    let peer: SocketAddr = peer.parse().unwrap();
    let save = Duration::from_millis(save_ms.parse().unwrap());
    let pause = Duration::from_millis(pause_ms.parse().unwrap());
    match runtime.as_str() {
        "tokio" => Tokio::block_on(crash_leecher::<Tokio>(torrent, base, peer, save, pause)),
        "smol" => Smol::block_on(crash_leecher::<Smol>(torrent, base, peer, save, pause)),
        other => panic!("unknown runtime {other}"),
    }
}
