//! Criterion benches for `metainfo`: parsing a real torrent (sintel, 1310 pieces, 26 KB) and
//! piece-map lookups on a large synthetic layout (10k files, ~100k pieces).
use std::hint::black_box;

use bt_proto::PieceIndex;
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::{Metainfo, PieceMap};
use criterion::{Criterion, criterion_group, criterion_main};

const SINTEL: &[u8] = include_bytes!("../../tests/fixtures/webtorrent/sintel.torrent");

fn parse(c: &mut Criterion) {
    c.bench_function("parse sintel.torrent", |b| {
        b.iter(|| Metainfo::from_bytes(black_box(SINTEL)).map(|m| m.piece_count()))
    });
    let magnet = Metainfo::from_bytes(SINTEL)
        .map(|m| m.magnet().to_uri())
        .unwrap_or_default();
    c.bench_function("parse magnet", |b| {
        b.iter(|| Magnet::parse(black_box(&magnet)).map(|m| m.info_hash))
    });
}

fn piece_map(c: &mut Criterion) {
    // 10k files of irregular sizes (some empty) in 16 KiB pieces: about 100k pieces.
    let files = (0..10_000u64).map(|i| (i * 331 % 340_000, false));
    let Ok(map) = PieceMap::new(16384, files) else {
        return;
    };
    let count = map.piece_count();
    let mut p = 0u32;
    c.bench_function("piece_segments (10k files, 100k pieces)", |b| {
        b.iter(|| {
            p = (p + 7919) % count;
            map.piece_segments(black_box(PieceIndex(p)))
                .map(|s| s.map(|s| s.len).sum::<u32>())
        })
    });
    let mut f = 0usize;
    c.bench_function("file_pieces (10k files)", |b| {
        b.iter(|| {
            f = (f + 613) % 10_000;
            map.file_pieces(black_box(f))
        })
    });
}

criterion_group!(benches, parse, piece_map);
criterion_main!(benches);
