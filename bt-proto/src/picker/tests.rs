//! Unit and property tests of the picker.

use super::*;
use crate::rng::Rng;
use proptest::prelude::*;

const PL: u32 = 2 * BLOCK_LEN;

fn picker(pieces: u32) -> (Picker, Rng) {
    let mut rng = Rng::seed_from_u64(3);
    let p = Picker::new(
        u64::from(pieces) * u64::from(PL),
        PL,
        &Bitfield::new(pieces),
        &[],
        &mut rng,
    );
    (p, rng)
}

fn bits(pieces: u32, ones: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(pieces);
    for &i in ones {
        b.set(PieceIndex(i), true);
    }
    b
}

fn complete_piece(p: &mut Picker, piece: u32) {
    for off in [0, BLOCK_LEN] {
        p.block_received(Block {
            piece: PieceIndex(piece),
            offset: off,
            length: BLOCK_LEN,
        });
    }
    p.piece_passed(PieceIndex(piece));
}

#[test]
fn rarest_first_after_random_start() {
    let (mut p, mut rng) = picker(10);
    // Have RANDOM_FIRST_PIECES already so rarest-first applies.
    for i in 0..RANDOM_FIRST_PIECES {
        p.piece_passed(PieceIndex(i));
    }
    let everyone = Bitfield::full(10);
    p.peer_added(&everyone);
    p.peer_added(&everyone);
    p.peer_added(&bits(10, &[7, 8]));
    p.peer_added(&bits(10, &[7]));
    // Availability: 7 -> 4, 8 -> 3, others -> 2. The rarest are the 2-groups.
    let picked = p.pick(&everyone, 2, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(picked.len(), 2);
    assert!(picked[0].piece.0 != 7 && picked[0].piece.0 != 8);
    p.check_invariants().unwrap();
    // Take every remaining new piece: 7 (the most common) must come last.
    // (The same peer asked for everything already, so no endgame duplicates follow.)
    let rest = p.pick(&everyone, 100, PickLimits::default(), &mut rng, |_| true);
    let mut order: Vec<u32> = rest.iter().map(|b| b.piece.0).collect();
    order.dedup();
    assert_eq!(order.last(), Some(&7));
    assert_eq!(order[order.len() - 2], 8);
}

#[test]
fn partial_pieces_finish_first() {
    let (mut p, mut rng) = picker(10);
    let seed = Bitfield::full(10);
    p.peer_added(&seed);
    let first = p.pick(&seed, 1, PickLimits::default(), &mut rng, |_| false);
    let second = p.pick(&seed, 1, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(first[0].piece, second[0].piece);
    assert_eq!(second[0].offset, BLOCK_LEN);
}

#[test]
fn skipped_pieces_are_never_picked_and_not_interesting() {
    let mut rng = Rng::seed_from_u64(1);
    let mut p = Picker::new(
        4 * u64::from(PL),
        PL,
        &Bitfield::new(4),
        &[0, 1, 0, 1],
        &mut rng,
    );
    assert!(!p.is_interesting(&bits(4, &[0, 2])));
    assert!(p.is_interesting(&bits(4, &[3])));
    let blocks = p.pick(
        &Bitfield::full(4),
        100,
        PickLimits::default(),
        &mut rng,
        |_| false,
    );
    assert!(blocks.iter().all(|b| b.piece.0 == 1 || b.piece.0 == 3));
    assert_eq!(blocks.len(), 4);
}

#[test]
fn higher_priority_first() {
    let mut rng = Rng::seed_from_u64(1);
    let mut p = Picker::new(
        4 * u64::from(PL),
        PL,
        &Bitfield::new(4),
        &[1, 1, 7, 1],
        &mut rng,
    );
    let blocks = p.pick(
        &Bitfield::full(4),
        1,
        PickLimits::default(),
        &mut rng,
        |_| false,
    );
    assert_eq!(blocks[0].piece, PieceIndex(2));
}

#[test]
fn short_last_piece_and_block() {
    let mut rng = Rng::seed_from_u64(1);
    // 2 pieces: 32 KiB and 100 bytes.
    let mut p = Picker::new(u64::from(PL) + 100, PL, &Bitfield::new(2), &[], &mut rng);
    assert_eq!(p.piece_len(PieceIndex(1)), 100);
    let blocks = p.pick(
        &Bitfield::full(2),
        10,
        PickLimits::default(),
        &mut rng,
        |_| false,
    );
    assert_eq!(blocks.len(), 3);
    let last = blocks.iter().find(|b| b.piece.0 == 1).unwrap();
    assert_eq!((last.offset, last.length), (0, 100));
    // A block of the wrong length is not wanted.
    assert_eq!(
        p.block_received(Block {
            length: 99,
            ..*last
        }),
        BlockReceived::NotWanted
    );
    assert_eq!(p.block_received(*last), BlockReceived::PieceComplete);
    assert_eq!(p.block_received(*last), BlockReceived::NotWanted);
    // Hostile offsets and pieces are refused, never a panic.
    for (piece, offset, length) in [(0, u32::MAX, 1), (0, 3 * BLOCK_LEN, BLOCK_LEN), (9, 0, 1)] {
        let b = Block {
            piece: PieceIndex(piece),
            offset,
            length,
        };
        assert_eq!(p.block_received(b), BlockReceived::NotWanted);
        p.release(b);
    }
}

#[test]
fn released_blocks_are_picked_again_and_failed_pieces_requeued() {
    let (mut p, mut rng) = picker(1);
    let seed = Bitfield::full(1);
    let blocks = p.pick(&seed, 10, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(blocks.len(), 2);
    p.release(blocks[1]);
    let again = p.pick(&seed, 10, PickLimits::default(), &mut rng, |b| {
        b == blocks[0]
    });
    assert_eq!(again, vec![blocks[1]]);
    for b in &blocks {
        p.block_received(*b);
    }
    p.piece_failed(PieceIndex(0));
    p.check_invariants().unwrap();
    let retry = p.pick(&seed, 10, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(retry.len(), 2);
    assert!(!p.is_done());
    for b in &retry {
        p.block_received(*b);
    }
    p.piece_passed(PieceIndex(0));
    assert!(p.is_done());
}

#[test]
fn endgame_requests_in_flight_blocks_from_another_peer() {
    let (mut p, mut rng) = picker(1);
    let seed = Bitfield::full(1);
    let a = p.pick(&seed, 10, PickLimits::default(), &mut rng, |_| false);
    assert!(p.in_endgame());
    let b = p.pick(&seed, 10, PickLimits::default(), &mut rng, |blk| {
        a.contains(&blk)
    });
    assert!(b.is_empty(), "the same peer is not asked twice");
    let c = p.pick(&seed, 10, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(c.len(), 2);
    // Released by one peer, still in flight at the other: not free.
    p.release(a[0]);
    assert!(p.in_endgame());
}

#[test]
fn partial_piece_limit() {
    let (mut p, mut rng) = picker(10);
    let seed = Bitfield::full(10);
    let limits = PickLimits {
        max_partial_pieces: 2,
        ..Default::default()
    };
    let blocks = p.pick(&seed, 100, limits, &mut rng, |_| false);
    assert_eq!(blocks.len(), 4);
    assert_eq!(p.partial_count(), 2);
}

#[test]
fn pieces_no_peer_has_make_room_at_the_partial_limit() {
    let (mut p, mut rng) = picker(4);
    let limits = PickLimits {
        max_partial_pieces: 2,
        ..Default::default()
    };
    // A peer with pieces 0 and 1 gets one block of each, then leaves with the others
    // still requested: those come back free.
    let a = bits(4, &[0, 1]);
    p.peer_added(&a);
    let asked = p.pick(&a, 100, limits, &mut rng, |_| false);
    assert_eq!(asked.len(), 4);
    for b in asked.iter().filter(|b| b.offset == 0) {
        assert_eq!(p.block_received(*b), BlockReceived::Accepted);
    }
    // While it is connected, its pieces are not given up: a peer with 2 and 3 waits.
    let b = bits(4, &[2, 3]);
    p.peer_added(&b);
    assert!(p.pick(&b, 100, limits, &mut rng, |_| false).is_empty());
    assert!(p.take_abandoned().is_empty());
    for blk in asked.iter().filter(|b| b.offset != 0) {
        p.release(*blk);
    }
    p.peer_removed(&a);
    let got = p.pick(&b, 100, limits, &mut rng, |_| false);
    let mut pieces: Vec<u32> = got.iter().map(|b| b.piece.0).collect();
    pieces.sort();
    pieces.dedup();
    assert_eq!(pieces, vec![2, 3], "{got:?}");
    let mut gone = p.take_abandoned();
    gone.sort();
    assert_eq!(gone, vec![PieceIndex(0), PieceIndex(1)]);
    assert!(p.take_abandoned().is_empty());
    assert_eq!(p.partial_count(), 2, "the limit still holds");
    p.check_invariants().unwrap();
    // The pieces given up are fetched whole from a peer that has them.
    for blk in got {
        p.block_received(blk);
    }
    p.piece_passed(PieceIndex(2));
    p.piece_passed(PieceIndex(3));
    p.peer_added(&a);
    let again = p.pick(&a, 100, limits, &mut rng, |_| false);
    assert_eq!(again.len(), 4, "{again:?}");
    p.check_invariants().unwrap();
}

#[test]
fn random_first_pieces_spread() {
    // Different seeds start on different pieces while we have nothing.
    let firsts: std::collections::HashSet<u32> = (0..20)
        .map(|s| {
            let mut rng = Rng::seed_from_u64(s);
            let mut p = Picker::new(100 * u64::from(PL), PL, &Bitfield::new(100), &[], &mut rng);
            p.pick(
                &Bitfield::full(100),
                1,
                PickLimits::default(),
                &mut rng,
                |_| false,
            )[0]
            .piece
            .0
        })
        .collect();
    assert!(firsts.len() > 10);
    let (mut p, _) = picker(10);
    complete_piece(&mut p, 0);
    assert!(p.have().get(PieceIndex(0)));
}

#[test]
fn a_seeds_bitfield_leaves_the_rarest_pieces_in_random_order() {
    // Leechers that have their first pieces (so rarest first applies) meet one seed: its
    // bitfield raises every piece in index order. Each leecher must still start on a piece
    // of its own, or they all ask the seed for the same pieces at once.
    let firsts: std::collections::HashSet<Vec<u32>> = (0..20)
        .map(|s| {
            let mut rng = Rng::seed_from_u64(s);
            let have = bits(100, &[0, 1, 2, 3]);
            let mut p = Picker::new(100 * u64::from(PL), PL, &have, &[], &mut rng);
            p.peer_added(&Bitfield::full(100));
            // A second peer with the upper half makes two groups; both must stay shuffled.
            p.peer_added(&bits(100, &(50..100).collect::<Vec<_>>()));
            p.check_invariants().unwrap();
            let picked = p.pick(
                &Bitfield::full(100),
                6,
                PickLimits::default(),
                &mut rng,
                |_| false,
            );
            let pieces = pieces_of(&picked);
            // Rarest first: the pieces only the seed has (4..50) come first.
            assert!(pieces.iter().all(|&q| (4..50).contains(&q)), "{pieces:?}");
            pieces
        })
        .collect();
    assert!(firsts.len() > 15, "{firsts:?}");
}

proptest! {
    #[test]
    fn invariants_hold_under_random_operations(
        ops in proptest::collection::vec((0u8..8, 0u32..24, any::<u64>()), 0..300)
    ) {
        let n = 24;
        let mut rng = Rng::seed_from_u64(5);
        let mut p = Picker::new(u64::from(n) * u64::from(PL) - 7, PL, &Bitfield::new(n), &[], &mut rng);
        let mut peers: Vec<Bitfield> = Vec::new();
        let mut in_flight: Vec<Block> = Vec::new();
        for (op, x, r) in ops {
            match op {
                0 => {
                    let mut b = Bitfield::new(n);
                    for i in 0..n { if (r >> i) & 1 == 1 { b.set(PieceIndex(i), true); } }
                    p.peer_added(&b);
                    peers.push(b);
                }
                1 => if !peers.is_empty() {
                    let b = peers.remove(x as usize % peers.len());
                    p.peer_removed(&b);
                },
                2 => if !peers.is_empty() {
                    let k = x as usize % peers.len();
                    if peers[k].set(PieceIndex(x), true) { p.peer_has(PieceIndex(x)); }
                },
                3 => if !peers.is_empty() {
                    let k = x as usize % peers.len();
                    let has = peers[k].clone();
                    let got = p.pick(&has, (r % 6) as usize, PickLimits { max_partial_pieces: 3, ..Default::default() }, &mut rng, |_| false);
                    for b in &got { prop_assert!(has.get(b.piece)); prop_assert!(!p.have().get(b.piece)); }
                    // Memory stays bounded, and only pieces no peer has are given up.
                    prop_assert!(p.partial_count() <= 3);
                    for gone in p.take_abandoned() {
                        prop_assert_eq!(p.availability(gone), 0);
                    }
                    in_flight.extend(got);
                },
                4 => if !in_flight.is_empty() {
                    let b = in_flight.swap_remove(x as usize % in_flight.len());
                    if p.block_received(b) == BlockReceived::PieceComplete {
                        if r % 3 == 0 { p.piece_failed(b.piece) } else { p.piece_passed(b.piece) }
                    }
                },
                5 => if !in_flight.is_empty() {
                    let b = in_flight.swap_remove(x as usize % in_flight.len());
                    p.release(b);
                },
                6 => {
                    let prios: Vec<u8> = (0..n).map(|i| ((r >> (i * 2)) & 3) as u8).collect();
                    p.set_priorities(&prios, &mut rng);
                }
                _ => p.piece_lost(PieceIndex(x)),
            }
            if let Err(e) = p.check_invariants() { prop_assert!(false, "{}", e); }
            // Availability always equals what the peers hold.
            for i in 0..n {
                let held = peers.iter().filter(|b| b.get(PieceIndex(i))).count() as u32;
                prop_assert_eq!(p.availability(PieceIndex(i)), held);
            }
        }
    }

    #[test]
    fn a_single_seed_always_finishes(pieces in 1u32..40, tail in 1u32..PL, seed in any::<u64>()) {
        let mut rng = Rng::seed_from_u64(seed);
        let total = u64::from(pieces - 1) * u64::from(PL) + u64::from(tail);
        let mut p = Picker::new(total, PL, &Bitfield::new(pieces), &[], &mut rng);
        let s = Bitfield::full(pieces);
        p.peer_added(&s);
        let mut rounds = 0;
        let mut bytes = 0u64;
        while !p.is_done() {
            rounds += 1;
            prop_assert!(rounds < 1000, "stalled");
            for b in p.pick(&s, 5, PickLimits::default(), &mut rng, |_| false) {
                if p.block_received(b) == BlockReceived::PieceComplete { p.piece_passed(b.piece); }
                bytes += u64::from(b.length);
            }
        }
        prop_assert_eq!(bytes, total);
    }
}

fn pieces_of(blocks: &[Block]) -> Vec<u32> {
    let mut v: Vec<u32> = blocks.iter().map(|b| b.piece.0).collect();
    v.dedup();
    v
}

#[test]
fn deadlines_come_first_most_urgent_first() {
    let (mut p, mut rng) = picker(10);
    let seed = Bitfield::full(10);
    p.peer_added(&seed);
    p.set_deadlines(vec![PieceIndex(7), PieceIndex(3)]);
    let got = p.pick(&seed, 4, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(pieces_of(&got), [7, 3]);
    // A peer without 7 starts with 3's (none left free) then goes on as usual.
    let without_7 = bits(10, &[0, 1, 2, 3, 4, 5, 6, 8, 9]);
    let got = p.pick(&without_7, 2, PickLimits::default(), &mut rng, |_| false);
    assert!(!pieces_of(&got).contains(&7), "{got:?}");
    p.check_invariants().unwrap();
}

#[test]
fn deadlines_pass_the_partial_limit() {
    let (mut p, mut rng) = picker(10);
    let seed = Bitfield::full(10);
    p.peer_added(&seed);
    let limits = PickLimits {
        max_partial_pieces: 1,
        ..Default::default()
    };
    // Piece 0 started: the limit is reached.
    p.pick(&bits(10, &[0]), 2, limits, &mut rng, |_| false);
    assert_eq!(p.partial_count(), 1);
    p.set_deadlines(vec![PieceIndex(9), PieceIndex(8)]);
    let got = p.pick(&seed, 4, limits, &mut rng, |_| false);
    assert_eq!(pieces_of(&got), [9, 8]);
}

#[test]
fn only_a_fast_peer_is_asked_again_for_urgent_blocks() {
    let (mut p, mut rng) = picker(10);
    let seed = Bitfield::full(10);
    p.peer_added(&seed);
    p.set_deadlines(vec![PieceIndex(5)]);
    let slow = p.pick(&seed, 2, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(pieces_of(&slow), [5]);
    // Another slow peer gets other pieces; a fast one the urgent blocks again.
    let other = p.pick(&seed, 2, PickLimits::default(), &mut rng, |_| false);
    assert!(!pieces_of(&other).contains(&5), "{other:?}");
    let fast = PickLimits {
        deadline_endgame: true,
        ..Default::default()
    };
    let again = p.pick(&seed, 2, fast, &mut rng, |_| false);
    assert_eq!(again, slow);
    assert_eq!(p.requested_from(slow[0]), 2);
    p.check_invariants().unwrap();
}

#[test]
fn sequential_picks_in_index_order() {
    let (mut p, mut rng) = picker(6);
    let seed = Bitfield::full(6);
    p.peer_added(&seed);
    p.set_sequential(true);
    let got = p.pick(&seed, 6, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(pieces_of(&got), [0, 1, 2]);
    // A failed piece goes back ahead of the rest.
    for b in &got {
        p.block_received(*b);
    }
    p.piece_failed(PieceIndex(1));
    let got = p.pick(&seed, 2, PickLimits::default(), &mut rng, |_| false);
    assert_eq!(pieces_of(&got), [1]);
    p.check_invariants().unwrap();
}
