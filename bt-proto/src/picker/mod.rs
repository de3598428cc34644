//! Which blocks to request next: rarest first, a few random pieces first, partial pieces
//! finished before new ones are started, file priorities, and an endgame.
//!
//! Pieces we want and have not started live in one ordered list per priority, grouped by
//! availability (how many connected peers have the piece), rarest group first. A change of
//! availability moves a piece to the edge of its neighbouring group with one swap, so HAVE
//! messages cost O(1) however large the torrent; the order inside a group is a random
//! shuffle, which is the random tie-break. Started pieces are kept apart with the state of
//! each block, so finishing them comes first and costs nothing to find.
//!
//! ```
//! use bt_proto::picker::{Picker, PickLimits};
//! use bt_proto::{Bitfield, rng::Rng};
//! let mut rng = Rng::seed_from_u64(1);
//! // 3 pieces of 32 KiB (2 blocks each), nothing downloaded yet, every piece wanted.
//! let mut picker = Picker::new(3 * 32768, 32768, &Bitfield::new(3), &[1, 1, 1], &mut rng);
//! let seed = Bitfield::full(3);
//! picker.peer_added(&seed);
//! let blocks = picker.pick(&seed, 4, PickLimits::default(), &mut rng, |_| false);
//! assert_eq!(blocks.len(), 4);
//! // Two pieces started, both finished first: blocks come from at most two pieces.
//! let mut pieces: Vec<_> = blocks.iter().map(|b| b.piece).collect();
//! pieces.dedup();
//! assert_eq!(pieces.len(), 2);
//! ```

use std::collections::BTreeMap;

use crate::rng::Rng;
use crate::{Bitfield, PieceIndex};

mod queue;
mod urgent;

use queue::Queue;
pub use urgent::{DEADLINE_ENDGAME_PIECES, URGENT_BLOCKS_PER_PICK};

/// Size of a requested block: 16 KiB, what every client requests and many refuse to exceed.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Highest file priority. 0 means skip; higher is fetched first.
pub const MAX_PRIORITY: u8 = 7;

/// While we have fewer verified pieces than this, new pieces are picked at random rather than
/// rarest first: a newcomer needs a complete piece quickly to have something to trade, and
/// random pieces are found faster (less contention) than the single rarest one.
pub const RANDOM_FIRST_PIECES: u32 = 4;

/// In endgame, a block is requested from at most this many peers at once: enough to route
/// around one slow peer, few enough not to waste the swarm's bandwidth.
pub const ENDGAME_MAX_REQUESTS_PER_BLOCK: u8 = 3;

/// One block of one piece, as requested on the wire: the picker speaks the wire's type.
pub use crate::wire::BlockRequest as Block;

/// Limits the engine sets on a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickLimits {
    /// Most pieces started but not yet verified and stored at once (being downloaded or being
    /// verified); each one holds its received blocks in memory until stored, so this is the
    /// engine's in-flight memory cap divided by the piece length.
    pub max_partial_pieces: usize,
    /// Whether this peer is fast enough to be asked again for the blocks of the most
    /// urgent pieces with deadlines that others were asked for (see
    /// [`Picker::set_deadlines`]).
    pub deadline_endgame: bool,
}

impl Default for PickLimits {
    fn default() -> Self {
        PickLimits {
            max_partial_pieces: 64,
            deadline_endgame: false,
        }
    }
}

/// What a received block meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReceived {
    /// New data; the piece still misses blocks.
    Accepted,
    /// New data, and the last missing block of its piece: verify it now.
    PieceComplete,
    /// We did not ask for it, already have it, or it does not fit the piece: drop the data.
    NotWanted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockState {
    Free,
    /// Asked of this many peers (more than one only in endgame).
    Requested(u8),
    Received,
}

#[derive(Debug, Clone)]
struct Partial {
    blocks: Vec<BlockState>,
    received: u32,
    /// Blocks in state `Free`, so "anything left to ask for?" costs nothing.
    free: u32,
    /// No block before this index is `Free`: where the next scan starts.
    scan_from: usize,
}

impl Partial {
    fn new(blocks: usize) -> Self {
        Partial {
            blocks: vec![BlockState::Free; blocks],
            received: 0,
            free: blocks as u32,
            scan_from: 0,
        }
    }

    fn has_free(&self) -> bool {
        self.free > 0
    }
}

/// Where a piece stands for the picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceState {
    /// Wanted, not started: in the order list of its priority.
    Queued,
    /// Started: in `partial`.
    Partial,
    /// Every block received, being verified.
    Verifying,
    /// Verified.
    Have,
    /// Not wanted (priority 0) and not had.
    Skipped,
}

/// The block picker of one torrent.
#[derive(Debug, Clone)]
pub struct Picker {
    piece_count: u32,
    piece_length: u32,
    total: u64,
    state: Vec<PieceState>,
    priority: Vec<u8>,
    availability: Vec<u32>,
    /// Wanted pieces not started, rarest first per priority.
    queue: Queue,
    partial: BTreeMap<PieceIndex, Partial>,
    /// Pieces in [`PieceState::Verifying`]: their blocks are still held (being hashed and
    /// written), so they count against [`PickLimits::max_partial_pieces`] with `partial`.
    verifying: usize,
    /// Started pieces given up to make room (see [`Picker::take_abandoned`]), not yet
    /// collected by the owner of their received blocks.
    abandoned: Vec<PieceIndex>,
    have: Bitfield,
    /// Wanted and not verified: what makes a peer interesting.
    needed: Bitfield,
    /// Pieces with deadlines, most urgent first (see `urgent`).
    deadlines: Vec<PieceIndex>,
    /// New pieces in index order rather than rarest first.
    sequential: bool,
    /// No piece before this index is queued: where the sequential scan starts.
    sequential_from: usize,
}

impl Picker {
    /// A picker for a torrent of `total` bytes in pieces of `piece_length`, with the pieces
    /// in `have` already verified and a priority per piece (0 = skip; missing entries = 1).
    pub fn new(
        total: u64,
        piece_length: u32,
        have: &Bitfield,
        priorities: &[u8],
        rng: &mut Rng,
    ) -> Self {
        let piece_count = have.len();
        let mut picker = Picker {
            piece_count,
            piece_length: piece_length.max(1),
            total,
            state: vec![PieceState::Skipped; piece_count as usize],
            priority: (0..piece_count as usize)
                .map(|i| priorities.get(i).copied().unwrap_or(1).min(MAX_PRIORITY))
                .collect(),
            availability: vec![0; piece_count as usize],
            queue: Queue::new(piece_count),
            partial: BTreeMap::new(),
            verifying: 0,
            abandoned: Vec::new(),
            have: have.clone(),
            needed: Bitfield::new(piece_count),
            deadlines: Vec::new(),
            sequential: false,
            sequential_from: 0,
        };
        picker.rebuild(rng);
        picker
    }

    /// Recomputes piece states and the order lists from `have`, priorities and availability.
    fn rebuild(&mut self, rng: &mut Rng) {
        let mut per_priority: Vec<Vec<PieceIndex>> = vec![Vec::new(); MAX_PRIORITY as usize];
        for i in 0..self.piece_count {
            let p = PieceIndex(i);
            let idx = i as usize;
            let prio = self.priority.get(idx).copied().unwrap_or(0);
            let current = self.state.get(idx).copied();
            let next = if self.have.get(p) {
                PieceState::Have
            } else if matches!(current, Some(PieceState::Partial | PieceState::Verifying)) {
                // Started pieces finish even if their file was deprioritised meanwhile.
                current.unwrap_or(PieceState::Skipped)
            } else if prio == 0 {
                PieceState::Skipped
            } else {
                if let Some(list) = per_priority.get_mut(prio as usize - 1) {
                    list.push(p);
                }
                PieceState::Queued
            };
            if let Some(s) = self.state.get_mut(idx) {
                *s = next;
            }
            self.needed.set(p, prio > 0 && next != PieceState::Have);
        }
        self.queue.rebuild(per_priority, &self.availability, rng);
        self.sequential_from = 0;
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Length of piece `p` (the last one may be short; 0 out of range).
    pub fn piece_len(&self, p: PieceIndex) -> u32 {
        if p.0 >= self.piece_count {
            return 0;
        }
        let start = u64::from(p.0) * u64::from(self.piece_length);
        (self.total.saturating_sub(start)).min(u64::from(self.piece_length)) as u32
    }

    fn block_count(&self, p: PieceIndex) -> u32 {
        self.piece_len(p).div_ceil(BLOCK_LEN)
    }

    fn block(&self, p: PieceIndex, index: u32) -> Block {
        let offset = index.saturating_mul(BLOCK_LEN);
        Block {
            piece: p,
            offset,
            length: self.piece_len(p).saturating_sub(offset).min(BLOCK_LEN),
        }
    }

    /// The verified pieces.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Pieces wanted and not yet verified.
    pub fn needed(&self) -> &Bitfield {
        &self.needed
    }

    /// True when every wanted piece is verified.
    pub fn is_done(&self) -> bool {
        self.needed.count() == 0
    }

    /// Whether a peer with `has` holds any piece we still need.
    pub fn is_interesting(&self, has: &Bitfield) -> bool {
        has.len() == self.piece_count
            && has
                .as_bytes()
                .iter()
                .zip(self.needed.as_bytes())
                .any(|(a, b)| a & b != 0)
    }

    /// How many connected peers have piece `p`.
    pub fn availability(&self, p: PieceIndex) -> u32 {
        self.availability.get(p.as_usize()).copied().unwrap_or(0)
    }

    /// Priority of piece `p` (0 = skipped).
    pub fn priority(&self, p: PieceIndex) -> u8 {
        self.priority.get(p.as_usize()).copied().unwrap_or(0)
    }

    /// Number of started, unverified pieces.
    pub fn partial_count(&self) -> usize {
        self.partial.len()
    }

    /// Started pieces with their blocks counted by state (free, requested, received), and
    /// the number of pieces being verified: what a stall dump shows of the picker.
    pub fn partial_progress(&self) -> (Vec<(PieceIndex, u32, u32, u32)>, usize) {
        let pieces = self
            .partial
            .iter()
            .map(|(p, part)| {
                let requested = part
                    .blocks
                    .iter()
                    .filter(|b| matches!(b, BlockState::Requested(_)))
                    .count() as u32;
                (*p, part.free, requested, part.received)
            })
            .collect();
        (pieces, self.verifying)
    }

    /// A peer joined with the pieces in `has`.
    pub fn peer_added(&mut self, has: &Bitfield) {
        for p in has.iter_ones() {
            self.inc_availability(p);
        }
    }

    /// A peer that had the pieces in `has` left.
    pub fn peer_removed(&mut self, has: &Bitfield) {
        for p in has.iter_ones() {
            self.dec_availability(p);
        }
    }

    /// A peer announced piece `p` (HAVE).
    pub fn peer_has(&mut self, p: PieceIndex) {
        self.inc_availability(p);
    }

    fn queued_list(&self, p: PieceIndex) -> Option<usize> {
        let idx = p.as_usize();
        if self.state.get(idx) != Some(&PieceState::Queued) {
            return None;
        }
        let prio = *self.priority.get(idx)?;
        (prio > 0).then(|| prio as usize - 1)
    }

    fn inc_availability(&mut self, p: PieceIndex) {
        let idx = p.as_usize();
        let Some(avail) = self.availability.get(idx).copied() else {
            return;
        };
        if let Some(list) = self.queued_list(p) {
            self.queue.raise(list, p, avail);
        }
        if let Some(a) = self.availability.get_mut(idx) {
            *a += 1;
        }
    }

    fn dec_availability(&mut self, p: PieceIndex) {
        let idx = p.as_usize();
        let Some(avail) = self.availability.get(idx).copied() else {
            return;
        };
        if avail == 0 {
            return;
        }
        if let Some(list) = self.queued_list(p) {
            self.queue.lower(list, p, avail);
        }
        if let Some(a) = self.availability.get_mut(idx) {
            *a -= 1;
        }
    }

    /// Takes a queued piece out of its order list.
    fn unqueue(&mut self, p: PieceIndex) {
        let Some(list) = self.queued_list(p) else {
            return;
        };
        self.queue.remove(list, p, self.availability(p));
    }

    /// Puts a piece back into the order list of its priority (rarest group placement).
    fn enqueue(&mut self, p: PieceIndex) {
        let idx = p.as_usize();
        let prio = self.priority.get(idx).copied().unwrap_or(0);
        if prio == 0 {
            if let Some(s) = self.state.get_mut(idx) {
                *s = PieceState::Skipped;
            }
            return;
        }
        if let Some(s) = self.state.get_mut(idx) {
            *s = PieceState::Queued;
        }
        self.sequential_from = self.sequential_from.min(idx);
        self.queue
            .insert(prio as usize - 1, p, self.availability(p));
    }

    /// Sets the priority of every piece (0 = skip). Started pieces are finished regardless.
    pub fn set_priorities(&mut self, priorities: &[u8], rng: &mut Rng) {
        for (slot, i) in self.priority.iter_mut().zip(0..) {
            *slot = priorities.get(i).copied().unwrap_or(1).min(MAX_PRIORITY);
        }
        self.rebuild(rng);
    }

    /// Up to `max` blocks to request from a peer holding `has`. `already_requested` tells
    /// which blocks this peer has been asked for already (used in endgame, where blocks are
    /// asked of several peers). Returned blocks are marked requested.
    pub fn pick(
        &mut self,
        has: &Bitfield,
        max: usize,
        limits: PickLimits,
        rng: &mut Rng,
        already_requested: impl Fn(Block) -> bool,
    ) -> Vec<Block> {
        let mut out = Vec::new();
        if max == 0 || has.len() != self.piece_count {
            return out;
        }
        // 0. Pieces with deadlines.
        if !self.deadlines.is_empty() {
            self.pick_deadlines(
                has,
                max,
                limits.deadline_endgame,
                &already_requested,
                &mut out,
            );
            if out.len() >= max {
                return out;
            }
        }
        // 1. Finish what was started.
        let partial_pieces: Vec<PieceIndex> = self
            .partial
            .iter()
            .filter(|(p, part)| has.get(**p) && part.has_free())
            .map(|(p, _)| *p)
            .collect();
        for p in partial_pieces {
            self.take_free_blocks(p, max, &mut out);
            if out.len() >= max {
                return out;
            }
        }
        // 2. Start new pieces: random while we have almost nothing, else rarest first.
        while out.len() < max {
            // At the limit, only a started piece that no connected peer has can make room.
            let make_room = if self.partial.len() + self.verifying >= limits.max_partial_pieces {
                let Some(stranded) = self.stranded_piece() else {
                    break;
                };
                Some(stranded)
            } else {
                None
            };
            let Some(p) = self.next_new_piece(has, rng) else {
                break;
            };
            if let Some(stranded) = make_room {
                self.abandon(stranded);
            }
            self.start_piece(p);
            self.take_free_blocks(p, max, &mut out);
        }
        if out.len() >= max || !self.in_endgame() {
            return out;
        }
        // 3. Endgame: nothing is left unrequested, so ask this peer too for blocks in flight.
        let mut candidates: Vec<Block> = Vec::new();
        for (&p, part) in &self.partial {
            if !has.get(p) {
                continue;
            }
            for (i, st) in part.blocks.iter().enumerate() {
                if let BlockState::Requested(n) = st
                    && *n < ENDGAME_MAX_REQUESTS_PER_BLOCK
                {
                    let b = self.block(p, i as u32);
                    if !already_requested(b) && !out.contains(&b) {
                        candidates.push(b);
                    }
                }
            }
        }
        rng.shuffle(&mut candidates);
        for b in candidates.into_iter().take(max - out.len()) {
            if let Some(BlockState::Requested(n)) = self
                .partial
                .get_mut(&b.piece)
                .and_then(|part| part.blocks.get_mut((b.offset / BLOCK_LEN) as usize))
            {
                *n += 1;
            }
            out.push(b);
        }
        out
    }

    /// The started piece to give up first when the partial-piece limit blocks progress: one
    /// that no connected peer has (its senders left) and with no request in flight, so it
    /// cannot be finished now; of those, the one with the fewest blocks received.
    fn stranded_piece(&self) -> Option<PieceIndex> {
        self.partial
            .iter()
            .filter(|(p, part)| {
                self.availability(**p) == 0
                    && part
                        .blocks
                        .iter()
                        .all(|b| !matches!(b, BlockState::Requested(_)))
            })
            .min_by_key(|(_, part)| part.received)
            .map(|(p, _)| *p)
    }

    /// Gives up the started piece `p` (a [`Picker::stranded_piece`]): it is queued again
    /// (rarest, so it is taken up first when a peer with it comes) and reported by
    /// [`Picker::take_abandoned`].
    fn abandon(&mut self, p: PieceIndex) {
        self.partial.remove(&p);
        self.enqueue(p);
        self.abandoned.push(p);
    }

    /// Started pieces the picker gave up since the last call, their blocks to be requested
    /// again: whoever holds their received blocks drops them. Without this, pieces begun
    /// with peers that then left would fill [`PickLimits::max_partial_pieces`] for good,
    /// and the peers still there could not be asked for anything else; giving them up keeps
    /// memory within the limit and loses only unverified blocks.
    pub fn take_abandoned(&mut self) -> Vec<PieceIndex> {
        std::mem::take(&mut self.abandoned)
    }

    /// True when no wanted block is left unrequested: the last blocks are in flight.
    pub fn in_endgame(&self) -> bool {
        self.queue.is_empty() && self.partial.values().all(|part| !part.has_free())
    }

    fn take_free_blocks(&mut self, p: PieceIndex, max: usize, out: &mut Vec<Block>) {
        let Some(part) = self.partial.get_mut(&p) else {
            return;
        };
        let mut taken = Vec::new();
        let start = part.scan_from;
        for (i, st) in part.blocks.iter_mut().enumerate().skip(start) {
            if out.len() + taken.len() >= max || part.free == 0 {
                break;
            }
            if *st == BlockState::Free {
                *st = BlockState::Requested(1);
                part.free -= 1;
                taken.push(i as u32);
            }
            part.scan_from = i + 1;
        }
        out.extend(taken.into_iter().map(|i| self.block(p, i)));
    }

    fn next_new_piece(&mut self, has: &Bitfield, rng: &mut Rng) -> Option<PieceIndex> {
        if self.sequential {
            self.advance_sequential();
            return self.next_in_order(has);
        }
        let random = self.have.count() < RANDOM_FIRST_PIECES;
        self.queue.first_held(has, random, rng)
    }

    /// Starts downloading a queued (or skipped, for a deadline) piece.
    fn start_piece(&mut self, p: PieceIndex) {
        self.unqueue(p);
        if let Some(s) = self.state.get_mut(p.as_usize()) {
            *s = PieceState::Partial;
        }
        let blocks = self.block_count(p) as usize;
        self.partial.insert(p, Partial::new(blocks));
    }

    /// Records a received block. Blocks we never asked for are [`BlockReceived::NotWanted`].
    pub fn block_received(&mut self, b: Block) -> BlockReceived {
        if !b.offset.is_multiple_of(BLOCK_LEN) || self.block(b.piece, b.offset / BLOCK_LEN) != b {
            return BlockReceived::NotWanted;
        }
        let Some(part) = self.partial.get_mut(&b.piece) else {
            return BlockReceived::NotWanted;
        };
        let Some(st) = part.blocks.get_mut((b.offset / BLOCK_LEN) as usize) else {
            return BlockReceived::NotWanted;
        };
        // A block that was freed again (timeout, choke) is still welcome if it arrives.
        match *st {
            BlockState::Received => return BlockReceived::NotWanted,
            BlockState::Free => part.free -= 1,
            BlockState::Requested(_) => {}
        }
        *st = BlockState::Received;
        part.received += 1;
        if part.received as usize == part.blocks.len() {
            self.partial.remove(&b.piece);
            if let Some(s) = self.state.get_mut(b.piece.as_usize()) {
                *s = PieceState::Verifying;
                self.verifying += 1;
            }
            BlockReceived::PieceComplete
        } else {
            BlockReceived::Accepted
        }
    }

    /// A request for `b` ended without data (cancelled, rejected, timed out, peer gone):
    /// one fewer peer has it in flight; with none left it can be picked again.
    pub fn release(&mut self, b: Block) {
        let index = (b.offset / BLOCK_LEN) as usize;
        let Some(part) = self.partial.get_mut(&b.piece) else {
            return;
        };
        if let Some(st) = part.blocks.get_mut(index)
            && let BlockState::Requested(n) = st
        {
            if *n > 1 {
                *n -= 1;
            } else {
                *st = BlockState::Free;
                part.free += 1;
                part.scan_from = part.scan_from.min(index);
            }
        }
    }

    /// How many peers block `b` is requested from right now (more than one only in endgame).
    pub fn requested_from(&self, b: Block) -> u8 {
        match self
            .partial
            .get(&b.piece)
            .and_then(|part| part.blocks.get((b.offset / BLOCK_LEN) as usize))
        {
            Some(BlockState::Requested(n)) => *n,
            _ => 0,
        }
    }

    /// Piece `p` passed its hash check and is stored.
    pub fn piece_passed(&mut self, p: PieceIndex) {
        self.leave_verifying(p);
        self.unqueue(p);
        self.partial.remove(&p);
        if let Some(s) = self.state.get_mut(p.as_usize()) {
            *s = PieceState::Have;
        }
        self.have.set(p, true);
        self.needed.set(p, false);
    }

    /// Piece `p` failed its hash check (or could not be stored): fetch it again.
    pub fn piece_failed(&mut self, p: PieceIndex) {
        if self.have.get(p) || p.0 >= self.piece_count {
            return;
        }
        self.leave_verifying(p);
        self.unqueue(p);
        self.partial.remove(&p);
        self.enqueue(p);
    }

    /// Counts `p` out of the verifying pieces if it was one (its state changes next).
    fn leave_verifying(&mut self, p: PieceIndex) {
        if self.state.get(p.as_usize()) == Some(&PieceState::Verifying) {
            self.verifying = self.verifying.saturating_sub(1);
        }
    }

    /// We lost piece `p` (a hashcheck found it bad on disk): it is needed again if wanted.
    pub fn piece_lost(&mut self, p: PieceIndex) {
        if !self.have.get(p) {
            return;
        }
        self.have.set(p, false);
        self.needed.set(p, self.priority(p) > 0);
        self.enqueue(p);
    }

    /// Checks the internal invariants; for tests and fuzzing.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let verifying = self
            .state
            .iter()
            .filter(|s| **s == PieceState::Verifying)
            .count();
        if verifying != self.verifying {
            return Err(format!(
                "{verifying} pieces verifying, counted {}",
                self.verifying
            ));
        }
        self.queue
            .check(|p| self.queued_list(p), |p| self.availability(p))?;
        for (p, part) in &self.partial {
            let free = part
                .blocks
                .iter()
                .filter(|b| **b == BlockState::Free)
                .count();
            if free != part.free as usize {
                return Err(format!("{p:?}: {free} free blocks, counted {}", part.free));
            }
            if part
                .blocks
                .iter()
                .take(part.scan_from)
                .any(|b| *b == BlockState::Free)
            {
                return Err(format!("{p:?}: a free block before scan_from"));
            }
        }
        let queued = self
            .state
            .iter()
            .filter(|s| **s == PieceState::Queued)
            .count();
        let listed = self.queue.len();
        if queued != listed {
            return Err(format!("{queued} queued but {listed} listed"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
