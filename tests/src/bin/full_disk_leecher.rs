//! The leecher process of the full-disk scenario (`bt_tests::hostile_disk::full_disk`): it
//! downloads a torrent from one peer onto a disk too small for it, checks how the failure is
//! reported, makes room and finishes. Arguments: `tokio|smol TORRENT BASE_DIR PEER`.
// A test process: a failing step should stop it loudly on its line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;

use bt_smol::Smol;
use bt_tests::hostile_disk::full_disk_leecher;
use bt_tests::swarm::TestRuntime;
use bt_tokio::Tokio;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runtime, torrent, base, peer] = args.as_slice() else {
        panic!("usage: full_disk_leecher tokio|smol TORRENT BASE_DIR PEER");
    };
    let torrent = PathBuf::from(torrent);
    let base = PathBuf::from(base);
    let peer: SocketAddr = peer.parse().unwrap();
    match runtime.as_str() {
        "tokio" => Tokio::block_on(full_disk_leecher::<Tokio>(torrent, base, peer)),
        "smol" => Smol::block_on(full_disk_leecher::<Smol>(torrent, base, peer)),
        other => panic!("unknown runtime {other}"),
    }
}
