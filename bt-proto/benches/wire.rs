//! Criterion benches for the peer wire decoder.
//!
//! - `decode/pieces`: a buffered stream of 16 KiB PIECE messages. Blocks are split off the
//!   receive buffer, not copied, so throughput is far above memory bandwidth (target ≥ 10 GB/s).
//! - `decode/small`: a mix of small messages (HAVE, REQUEST, INTERESTED, keep-alive, ...);
//!   reported per message (target ≥ 50 M messages/s).
//! - `decode/pieces_read_buf`: the realistic path, 16 KiB PIECE messages arriving in 64 KiB
//!   reads copied into [`Decoder::read_buf`] (the one copy a socket read makes anyway).
// A bench harness: input it cannot build should stop it at once.
#![allow(clippy::panic)]

use std::hint::black_box;

use bt_proto::PieceIndex;
use bt_proto::wire::{BlockRequest, Decoder, MAX_BLOCK_LEN, Message};
use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const PIECES: u32 = 1024;
const SMALL: usize = 10_000;

fn piece_stream() -> BytesMut {
    let block = Bytes::from(vec![0x5a; MAX_BLOCK_LEN as usize]);
    let mut out = BytesMut::new();
    for i in 0..PIECES {
        Message::Piece {
            piece: PieceIndex(i / 16),
            offset: (i % 16) * MAX_BLOCK_LEN,
            data: block.clone(),
        }
        .encode(&mut out)
        .unwrap_or_else(|e| panic!("bench input: {e}"));
    }
    out
}

fn small_stream() -> BytesMut {
    let mix = [
        Message::Have(PieceIndex(7)),
        Message::Request(BlockRequest::new(PieceIndex(3), 16384, 16384)),
        Message::Interested,
        Message::KeepAlive,
        Message::Unchoke,
        Message::Cancel(BlockRequest::new(PieceIndex(3), 0, 16384)),
        Message::Have(PieceIndex(1_000_000)),
        Message::Choke,
        Message::NotInterested,
        Message::AllowedFast(PieceIndex(9)),
        Message::Port(6881),
        Message::RejectRequest(BlockRequest::new(PieceIndex(1), 0, 16384)),
    ];
    let mut out = BytesMut::new();
    for m in mix.iter().cycle().take(SMALL) {
        m.encode(&mut out)
            .unwrap_or_else(|e| panic!("bench input: {e}"));
    }
    out
}

/// Decodes everything in `decoder`, returning the message count.
fn drain(decoder: &mut Decoder) -> usize {
    let mut n = 0;
    while let Ok(Some(m)) = decoder.next_message() {
        black_box(m);
        n += 1;
    }
    n
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");

    let pieces = piece_stream();
    group.throughput(Throughput::Bytes(pieces.len() as u64));
    group.bench_function("pieces", |b| {
        b.iter_batched(
            || Decoder::with_prefix(pieces.clone(), Some(PIECES)),
            |mut d| {
                assert_eq!(drain(&mut d), PIECES as usize);
                d
            },
            BatchSize::LargeInput,
        )
    });

    let small = small_stream();
    group.throughput(Throughput::Elements(SMALL as u64));
    group.bench_function("small", |b| {
        b.iter_batched(
            || Decoder::with_prefix(small.clone(), Some(PIECES)),
            |mut d| {
                assert_eq!(drain(&mut d), SMALL);
                d
            },
            BatchSize::SmallInput,
        )
    });

    group.throughput(Throughput::Bytes(pieces.len() as u64));
    group.bench_function("pieces_read_buf", |b| {
        b.iter(|| {
            let mut d = Decoder::new(Some(PIECES));
            let mut n = 0;
            for read in pieces.chunks(64 * 1024) {
                d.read_buf().extend_from_slice(read);
                n += drain(&mut d);
            }
            assert_eq!(n, PIECES as usize);
        })
    });

    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
