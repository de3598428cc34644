//! Criterion benches of the engine's hot paths, fed as a driver would feed it (no I/O):
//!
//! - `engine/leech_64MiB`: download a 64 MiB torrent (4 MiB pieces) from one peer that
//!   answers every request at once, its PIECE messages arriving 16 blocks (256 KiB) per
//!   input, the way a socket read hands them over; every stored piece reported as written.
//! - `engine/seed_64MiB`: serve the same torrent to one peer that asks for every block, 16
//!   requests per input, each block read answered at once.
//!
//! Throughput is in engine inputs per second (each `handle` call); bytes per second follow
//! from the 64 MiB per iteration.
// A bench harness: a setup it cannot make should stop it at once.
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::engine::{AddTorrent, Config, Input, Output, Session};
use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::create::TorrentBuilder;
use bt_proto::sim::remote::RemotePeer;
use bt_proto::wire::{BlockRequest, Message};
use bt_proto::{Bitfield, ConnId, PeerId, PieceIndex};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SIZE: u64 = 64 * 1024 * 1024;
const PIECE_LENGTH: u32 = 4 * 1024 * 1024;
const BLOCK: u32 = 16 * 1024;
/// Messages per input: a 256 KiB socket read holds 16 blocks.
const PER_INPUT: usize = 16;

fn fail(e: impl std::fmt::Display) -> ! {
    panic!("bench setup: {e}")
}

fn meta() -> Metainfo {
    let plan = TorrentBuilder::single_file("f", SIZE)
        .piece_length(PIECE_LENGTH)
        .plan()
        .unwrap_or_else(|e| fail(e));
    let mut h = plan.hasher();
    h.update_zeros(SIZE);
    let hashes = h.finish().unwrap_or_else(|e| fail(e));
    Metainfo::from_bytes(&plan.build(&hashes).unwrap_or_else(|e| fail(e)))
        .unwrap_or_else(|e| fail(e))
}

/// The peer at the far end of `conn`: no extensions, as the bench measures the base protocol.
fn remote(conn: ConnId, meta: &Metainfo) -> RemotePeer {
    RemotePeer::new(conn, meta.info_hash(), PeerId([9; 20])).with_piece_count(meta.piece_count())
}

/// What the engine sent to `peer` since the last call; a malformed message stops the bench.
fn sent(peer: &mut RemotePeer) -> Vec<Message> {
    peer.messages().unwrap_or_else(|e| fail(e))
}

/// Downloads the whole torrent; returns the number of inputs handled.
fn leech(meta: &Metainfo) -> u64 {
    let pieces = meta.piece_count();
    let mut s = Session::new(Config::new(PeerId([1; 20]), 6881, 1));
    let mut now = Instant::now();
    let id = s.add_torrent(now, meta.clone(), AddTorrent::default());
    let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap_or_else(|e| fail(e));
    s.add_peer(now, id, addr);
    let mut conn: Option<ConnId> = None;
    while let Some(o) = s.poll_output() {
        if let Output::Connect { conn: c, .. } = o {
            conn = Some(c);
        }
    }
    let conn = conn.unwrap_or_else(|| fail("no connect"));
    s.handle(now, Input::Connected { conn });
    let mut peer = remote(conn, meta);
    let have = Message::Bitfield(Bytes::copy_from_slice(Bitfield::full(pieces).as_bytes()));
    peer.hello(&mut s, now, &[have, Message::Unchoke])
        .unwrap_or_else(|e| fail(e));
    // Inputs handled: the connect and the hello so far.
    let mut inputs = 2u64;
    let payload = Bytes::from(vec![0u8; BLOCK as usize]);
    let mut stored = 0;
    let mut requests: Vec<BlockRequest> = Vec::new();
    while stored < pieces {
        let mut to_store = Vec::new();
        while let Some(o) = s.poll_output() {
            match peer.absorb(o) {
                // Decoded as each send comes, as a socket reader would.
                None => {
                    for m in sent(&mut peer) {
                        if let Message::Request(r) = m {
                            requests.push(r);
                        }
                    }
                }
                Some(Output::VerifyAndStore { torrent, piece, .. }) => {
                    to_store.push((torrent, piece));
                }
                Some(_) => {}
            }
        }
        for (torrent, piece) in to_store {
            stored += 1;
            inputs += 1;
            s.handle(
                now,
                Input::PieceStored {
                    torrent,
                    piece,
                    result: Ok(true),
                },
            );
        }
        if requests.is_empty() {
            continue;
        }
        for chunk in requests.chunks(PER_INPUT) {
            let msgs: Vec<Message> = chunk
                .iter()
                .map(|r| Message::Piece {
                    piece: r.piece,
                    offset: r.offset,
                    data: payload.slice(..r.length as usize),
                })
                .collect();
            // 1 ms per 256 KiB: the peer's rate is 256 MB/s.
            now += Duration::from_millis(1);
            inputs += 1;
            peer.send(&mut s, now, &msgs).unwrap_or_else(|e| fail(e));
        }
        requests.clear();
    }
    inputs
}

/// Serves the whole torrent to one peer; returns the number of inputs handled.
fn seed(meta: &Metainfo) -> u64 {
    let pieces = meta.piece_count();
    let mut s = Session::new(Config::new(PeerId([1; 20]), 6881, 1));
    let now = Instant::now();
    let opts = AddTorrent {
        have: Some(Bitfield::full(pieces)),
        ..Default::default()
    };
    s.add_torrent(now, meta.clone(), opts);
    let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap_or_else(|e| fail(e));
    let conn = s.accept(now, addr);
    let mut peer = remote(conn, meta);
    peer.hello(&mut s, now, &[Message::Interested])
        .unwrap_or_else(|e| fail(e));
    // Inputs handled: the hello so far.
    let mut inputs = 1u64;
    let blocks: Vec<BlockRequest> = (0..pieces)
        .flat_map(|p| {
            (0..PIECE_LENGTH / BLOCK)
                .map(move |i| BlockRequest::new(PieceIndex(p), i * BLOCK, BLOCK))
        })
        .collect();
    let payload = Bytes::from(vec![0u8; BLOCK as usize]);
    let mut unchoked = false;
    let mut next = 0;
    let mut served = 0;
    let mut in_flight = 0;
    while served < blocks.len() {
        let mut reads = Vec::new();
        while let Some(o) = s.poll_output() {
            match peer.absorb(o) {
                // Decoded as each send comes, as a socket reader would.
                None => {
                    for m in sent(&mut peer) {
                        match m {
                            Message::Unchoke => unchoked = true,
                            Message::Piece { .. } => {
                                served += 1;
                                in_flight -= 1;
                            }
                            _ => {}
                        }
                    }
                }
                Some(Output::ReadBlock {
                    torrent,
                    conn,
                    block,
                }) => reads.push((torrent, conn, block)),
                Some(_) => {}
            }
        }
        for (torrent, conn, block) in reads {
            let data = Ok(payload.slice(..block.length as usize));
            inputs += 1;
            s.handle(
                now,
                Input::BlockRead {
                    torrent,
                    conn,
                    block,
                    data,
                },
            );
        }
        if !unchoked {
            // The choker runs on the tick.
            s.handle_timeout(now + Duration::from_secs(1));
            continue;
        }
        // Keep a deep queue of requests at the seeder, as a fast leecher does.
        while in_flight < 256 && next < blocks.len() {
            let end = (next + PER_INPUT).min(blocks.len());
            let msgs: Vec<Message> = blocks[next..end]
                .iter()
                .map(|r| Message::Request(*r))
                .collect();
            in_flight += end - next;
            next = end;
            inputs += 1;
            peer.send(&mut s, now, &msgs).unwrap_or_else(|e| fail(e));
        }
    }
    inputs
}

fn bench(c: &mut Criterion) {
    let meta = meta();
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(leech(&meta)));
    g.bench_function("leech_64MiB", |b| b.iter(|| leech(&meta)));
    g.throughput(Throughput::Elements(seed(&meta)));
    g.bench_function("seed_64MiB", |b| b.iter(|| seed(&meta)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
