//! What several engine targets share. Each includes it with `mod common;`.

use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::create::TorrentBuilder;

/// A single-file torrent named `name` of 40,000 bytes of 7s in 16 KiB pieces (three pieces,
/// the last short).
pub fn small_torrent(name: &str) -> Metainfo {
    let content = vec![7u8; 40_000];
    let plan = TorrentBuilder::single_file(name, content.len() as u64)
        .piece_length(16 * 1024)
        .plan()
        .expect("valid layout");
    let mut h = plan.hasher();
    h.update(&content);
    let bytes = plan.build(&h.finish().expect("all bytes")).expect("builds");
    Metainfo::from_bytes(&bytes).expect("parses")
}
