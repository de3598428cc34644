//! Criterion benches of the piece picker on a 100,000-piece torrent (16 KiB blocks, 256 KiB
//! pieces: a 25 GB torrent, larger than most).
//!
//! - `picker/new`: building the picker (shuffle and availability order of every piece).
//! - `picker/pick_16`: one request round of 16 blocks from a peer with every piece, on a
//!   picker with availability spread by 20 peers (new pieces are started).
//! - `picker/have`: one HAVE from a peer (the piece moves within the availability order).
//! - `picker/receive_piece`: picking and receiving every block of one piece.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bt_proto::picker::{Block, PickLimits, Picker};
use bt_proto::rng::Rng;
use bt_proto::{Bitfield, PieceIndex};
use criterion::{Criterion, criterion_group, criterion_main};

const PIECES: u32 = 100_000;
const PIECE_LENGTH: u32 = 256 * 1024;

/// A picker whose pieces are held by 20 peers each missing a random tenth of the pieces.
fn picker(rng: &mut Rng) -> Picker {
    let total = u64::from(PIECES) * u64::from(PIECE_LENGTH);
    let mut p = Picker::new(total, PIECE_LENGTH, &Bitfield::new(PIECES), &[], rng);
    for _ in 0..20 {
        let mut has = Bitfield::full(PIECES);
        for _ in 0..PIECES / 10 {
            has.set(PieceIndex(rng.index(PIECES as usize) as u32), false);
        }
        p.peer_added(&has);
    }
    p
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(7);
    let total = u64::from(PIECES) * u64::from(PIECE_LENGTH);
    let all = Bitfield::full(PIECES);
    let mut g = c.benchmark_group("picker");
    g.bench_function("new", |b| {
        b.iter(|| Picker::new(total, PIECE_LENGTH, &Bitfield::new(PIECES), &[], &mut rng))
    });
    let base = picker(&mut rng);
    g.bench_function("pick_16", |b| {
        b.iter_custom(|iters| {
            timed_on_fresh(&base, iters, |p| {
                // Completes the piece, so that the next round starts a new one.
                let blocks = p.pick(&all, 16, PickLimits::default(), &mut rng, |_| false);
                let piece = black_box(&blocks).first().map(|b| b.piece);
                (blocks, piece)
            })
        })
    });
    let mut live = base.clone();
    let mut i = 0u32;
    g.bench_function("have", |b| {
        b.iter(|| {
            i = (i + 7919) % PIECES;
            live.peer_has(PieceIndex(i));
        })
    });
    g.bench_function("receive_piece", |b| {
        b.iter_custom(|iters| {
            timed_on_fresh(&base, iters, |p| {
                let blocks = p.pick(&all, 16, PickLimits::default(), &mut rng, |_| false);
                for blk in &blocks {
                    black_box(p.block_received(*blk));
                }
                let piece = blocks.first().map(|b| b.piece);
                (Vec::new(), piece)
            })
        })
    });
    g.finish();
}

/// Times `iters` runs of `f`, each on a picker that has room to start a piece: a copy of
/// `base`, renewed (untimed) before its pieces run out. `f` returns blocks to receive
/// untimed and the piece to mark passed untimed.
fn timed_on_fresh(
    base: &Picker,
    iters: u64,
    mut f: impl FnMut(&mut Picker) -> (Vec<Block>, Option<PieceIndex>),
) -> Duration {
    // Well under the 100,000 pieces, so every round finds a piece to start.
    const ROUNDS_PER_COPY: u64 = 50_000;
    let mut total = Duration::ZERO;
    let mut p = base.clone();
    for n in 0..iters {
        if n > 0 && n % ROUNDS_PER_COPY == 0 {
            p = base.clone();
        }
        let t = Instant::now();
        let (blocks, piece) = f(&mut p);
        total += t.elapsed();
        for blk in blocks {
            p.block_received(blk);
        }
        if let Some(piece) = piece {
            p.piece_passed(piece);
        }
    }
    total
}

criterion_group!(benches, bench);
criterion_main!(benches);
