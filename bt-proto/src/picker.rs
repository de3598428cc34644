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
}

impl Default for PickLimits {
    fn default() -> Self {
        PickLimits {
            max_partial_pieces: 64,
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

/// Pieces of one priority ordered by availability, rarest first, in contiguous groups.
#[derive(Debug, Clone, Default)]
struct OrderList {
    order: Vec<PieceIndex>,
    /// `group_start[a]` is the index in `order` of the first piece with availability `a`;
    /// one extra entry marks the end.
    group_start: Vec<u32>,
}

impl OrderList {
    fn group_end(&self, avail: usize) -> usize {
        self.group_start
            .get(avail + 1)
            .map_or(self.order.len(), |&s| s as usize)
    }

    /// Makes sure groups exist up to availability `avail`.
    fn ensure_groups(&mut self, avail: usize) {
        while self.group_start.len() < avail + 2 {
            self.group_start.push(self.order.len() as u32);
        }
    }
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
    /// Position of each queued piece in its order list.
    pos: Vec<u32>,
    /// Index = priority - 1.
    lists: Vec<OrderList>,
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
            pos: vec![0; piece_count as usize],
            lists: vec![OrderList::default(); MAX_PRIORITY as usize],
            partial: BTreeMap::new(),
            verifying: 0,
            abandoned: Vec::new(),
            have: have.clone(),
            needed: Bitfield::new(piece_count),
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
        for (list, mut pieces) in self.lists.iter_mut().zip(per_priority) {
            rng.shuffle(&mut pieces);
            let avail = &self.availability;
            pieces.sort_by_key(|p| avail.get(p.as_usize()).copied().unwrap_or(0));
            let max_avail = pieces
                .last()
                .and_then(|p| avail.get(p.as_usize()))
                .copied()
                .unwrap_or(0) as usize;
            // group_start[a] = number of pieces with availability < a.
            let mut counts = vec![0u32; max_avail + 2];
            for p in &pieces {
                let a = avail.get(p.as_usize()).copied().unwrap_or(0) as usize;
                if let Some(c) = counts.get_mut(a) {
                    *c += 1;
                }
            }
            let mut below = 0;
            list.group_start = counts
                .iter()
                .map(|c| {
                    let start = below;
                    below += c;
                    start
                })
                .collect();
            for (i, p) in pieces.iter().enumerate() {
                if let Some(slot) = self.pos.get_mut(p.as_usize()) {
                    *slot = i as u32;
                }
            }
            list.order = pieces;
        }
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

    fn swap_in_list(&mut self, list: usize, a: usize, b: usize) {
        let Some(l) = self.lists.get_mut(list) else {
            return;
        };
        if a == b || a >= l.order.len() || b >= l.order.len() {
            return;
        }
        l.order.swap(a, b);
        for i in [a, b] {
            if let Some(&p) = l.order.get(i)
                && let Some(slot) = self.pos.get_mut(p.as_usize())
            {
                *slot = i as u32;
            }
        }
    }

    fn inc_availability(&mut self, p: PieceIndex) {
        let idx = p.as_usize();
        let Some(avail) = self.availability.get(idx).copied() else {
            return;
        };
        if let Some(list) = self.queued_list(p) {
            let a = avail as usize;
            let at = self.pos.get(idx).copied().unwrap_or(0) as usize;
            let Some(l) = self.lists.get_mut(list) else {
                return;
            };
            l.ensure_groups(a + 1);
            // Swap to the last slot of group a, then move the boundary of group a+1 down.
            let last = l.group_end(a).saturating_sub(1);
            self.swap_in_list(list, at, last);
            if let Some(l) = self.lists.get_mut(list)
                && let Some(start) = l.group_start.get_mut(a + 1)
            {
                *start = start.saturating_sub(1);
            }
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
            let a = avail as usize;
            let at = self.pos.get(idx).copied().unwrap_or(0) as usize;
            let first = self
                .lists
                .get(list)
                .and_then(|l| l.group_start.get(a))
                .copied()
                .unwrap_or(0) as usize;
            self.swap_in_list(list, at, first);
            if let Some(l) = self.lists.get_mut(list)
                && let Some(start) = l.group_start.get_mut(a)
            {
                *start += 1;
            }
        }
        if let Some(a) = self.availability.get_mut(idx) {
            *a -= 1;
        }
    }

    /// Takes a queued piece out of its order list, keeping the groups contiguous.
    fn unqueue(&mut self, p: PieceIndex) {
        let Some(list) = self.queued_list(p) else {
            return;
        };
        let idx = p.as_usize();
        let mut a = self.availability.get(idx).copied().unwrap_or(0) as usize;
        // Walk the piece to the end of the list one group at a time, then pop it.
        loop {
            let at = self.pos.get(idx).copied().unwrap_or(0) as usize;
            let Some(l) = self.lists.get(list) else {
                return;
            };
            let end = l.group_end(a);
            self.swap_in_list(list, at, end.saturating_sub(1));
            let Some(l) = self.lists.get_mut(list) else {
                return;
            };
            if a + 1 >= l.group_start.len() {
                break;
            }
            // The piece is now the last of group a; hand that slot to group a+1.
            if let Some(start) = l.group_start.get_mut(a + 1) {
                *start = start.saturating_sub(1);
            }
            a += 1;
        }
        if let Some(l) = self.lists.get_mut(list) {
            l.order.pop();
            let len = l.order.len() as u32;
            for start in &mut l.group_start {
                *start = (*start).min(len);
            }
        }
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
        let list = prio as usize - 1;
        let avail = self.availability.get(idx).copied().unwrap_or(0) as usize;
        let Some(l) = self.lists.get_mut(list) else {
            return;
        };
        l.ensure_groups(avail);
        l.order.push(p);
        let mut at = l.order.len() - 1;
        if let Some(slot) = self.pos.get_mut(idx) {
            *slot = at as u32;
        }
        // Move it down from the last group to its own, one boundary swap per group.
        let groups = self.lists.get(list).map_or(0, |l| l.group_start.len());
        for g in (avail + 1..groups).rev() {
            let Some(start) = self.lists.get(list).and_then(|l| l.group_start.get(g)) else {
                continue;
            };
            let start = *start as usize;
            self.swap_in_list(list, at, start);
            at = start;
            if let Some(s) = self
                .lists
                .get_mut(list)
                .and_then(|l| l.group_start.get_mut(g))
            {
                *s += 1;
            }
        }
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
            self.unqueue(p);
            if let Some(s) = self.state.get_mut(p.as_usize()) {
                *s = PieceState::Partial;
            }
            let blocks = self.block_count(p) as usize;
            self.partial.insert(p, Partial::new(blocks));
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
        self.lists.iter().all(|l| l.order.is_empty())
            && self.partial.values().all(|part| !part.has_free())
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

    fn next_new_piece(&self, has: &Bitfield, rng: &mut Rng) -> Option<PieceIndex> {
        let random = self.have.count() < RANDOM_FIRST_PIECES;
        for list in self.lists.iter().rev() {
            let n = list.order.len();
            if n == 0 {
                continue;
            }
            let start = if random { rng.index(n) } else { 0 };
            let found = (0..n)
                .filter_map(|k| list.order.get((start + k) % n))
                .find(|p| has.get(**p));
            if found.is_some() {
                return found.copied();
            }
        }
        None
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
        for (li, l) in self.lists.iter().enumerate() {
            for (i, p) in l.order.iter().enumerate() {
                if self.pos.get(p.as_usize()).copied() != Some(i as u32) {
                    return Err(format!("pos of {p:?} wrong in list {li}"));
                }
                if self.queued_list(*p) != Some(li) {
                    return Err(format!("{p:?} in list {li} but not queued there"));
                }
                let a = self.availability(*p) as usize;
                let start = l.group_start.get(a).copied().unwrap_or(u32::MAX) as usize;
                if i < start || i >= l.group_end(a) {
                    return Err(format!("{p:?} (avail {a}) at {i} outside its group"));
                }
            }
        }
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
        let listed: usize = self.lists.iter().map(|l| l.order.len()).sum();
        if queued != listed {
            return Err(format!("{queued} queued but {listed} listed"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
        for (piece, offset, length) in [(0, u32::MAX, 1), (0, 3 * BLOCK_LEN, BLOCK_LEN), (9, 0, 1)]
        {
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
                let mut p =
                    Picker::new(100 * u64::from(PL), PL, &Bitfield::new(100), &[], &mut rng);
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
                        let got = p.pick(&has, (r % 6) as usize, PickLimits { max_partial_pieces: 3 }, &mut rng, |_| false);
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
}
