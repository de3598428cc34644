//! Pieces ahead of their turn: deadlines (the windows of streaming readers, most urgent
//! first) and sequential order.
//!
//! Pieces with deadlines are picked before anything else, from every peer that has them, and
//! may be started beyond [`super::PickLimits::max_partial_pieces`] (a window is a handful of
//! pieces, and a reader waiting on one must not wait for the limit). The most urgent ones
//! get an endgame of their own: a fast peer ([`super::PickLimits::deadline_endgame`]) is
//! asked for their blocks already in flight to slower peers, so a reader does not wait on
//! the slowest peer of the swarm.

use super::{
    Bitfield, Block, BlockState, ENDGAME_MAX_REQUESTS_PER_BLOCK, Picker, PieceIndex, PieceState,
};

/// The most urgent pieces whose blocks in flight a fast peer is asked for again: two, the
/// piece a reader waits on and the next, which it reaches within a piece's time. Further
/// pieces have time to arrive from whoever has them.
pub const DEADLINE_ENDGAME_PIECES: usize = 2;

/// Blocks of each of the most urgent pieces one pick takes from a peer: 4, a quarter of a
/// 256 KiB piece. The first piece of a window is what a reader waits on; shared among the
/// peers it arrives in a fraction of one peer's time for it.
pub const URGENT_BLOCKS_PER_PICK: usize = 4;

impl Picker {
    /// Sets the pieces with deadlines, most urgent first, replacing the previous ones.
    /// Pieces out of range are ignored; pieces already had cost nothing.
    pub fn set_deadlines(&mut self, pieces: Vec<PieceIndex>) {
        let count = self.piece_count;
        self.deadlines = pieces.into_iter().filter(|p| p.0 < count).collect();
    }

    /// The pieces with deadlines, most urgent first.
    pub fn deadlines(&self) -> &[PieceIndex] {
        &self.deadlines
    }

    /// Picks new pieces in index order instead of rarest first (priorities still decide
    /// which pieces are wanted at all). Deadlines still come first.
    pub fn set_sequential(&mut self, on: bool) {
        self.sequential = on;
    }

    /// Whether new pieces are picked in index order.
    pub fn is_sequential(&self) -> bool {
        self.sequential
    }

    /// Blocks of pieces with deadlines that `has` holds, most urgent first, until `out` has
    /// `max`; then, if `endgame`, blocks of the most urgent ones already asked of others.
    pub(super) fn pick_deadlines(
        &mut self,
        has: &Bitfield,
        max: usize,
        endgame: bool,
        already_requested: &impl Fn(Block) -> bool,
        out: &mut Vec<Block>,
    ) {
        let urgent: Vec<PieceIndex> = self
            .deadlines
            .iter()
            .copied()
            .filter(|p| has.get(*p))
            .collect();
        for (rank, &p) in urgent.iter().enumerate() {
            if out.len() >= max {
                return;
            }
            match self.state.get(p.as_usize()) {
                Some(PieceState::Queued | PieceState::Skipped) => self.start_piece(p),
                Some(PieceState::Partial) => {}
                _ => continue,
            }
            let most = match rank < DEADLINE_ENDGAME_PIECES {
                true => max.min(out.len() + URGENT_BLOCKS_PER_PICK),
                false => max,
            };
            self.take_free_blocks(p, most, out);
        }
        if !endgame {
            return;
        }
        for p in urgent.into_iter().take(DEADLINE_ENDGAME_PIECES) {
            let Some(part) = self.partial.get(&p) else {
                continue;
            };
            let again: Vec<u32> = part
                .blocks
                .iter()
                .zip(0u32..)
                .filter(|(st, _)| {
                    matches!(st, BlockState::Requested(n) if *n < ENDGAME_MAX_REQUESTS_PER_BLOCK)
                })
                .map(|(_, i)| i)
                .collect();
            for i in again {
                if out.len() >= max {
                    return;
                }
                let b = self.block(p, i);
                if already_requested(b) || out.contains(&b) {
                    continue;
                }
                if let Some(BlockState::Requested(n)) = self
                    .partial
                    .get_mut(&p)
                    .and_then(|part| part.blocks.get_mut(i as usize))
                {
                    *n += 1;
                }
                out.push(b);
            }
        }
    }

    /// The first queued piece in index order that `has` holds.
    pub(super) fn next_in_order(&self, has: &Bitfield) -> Option<PieceIndex> {
        self.state
            .iter()
            .zip(0u32..)
            .skip(self.sequential_from)
            .find(|(st, i)| **st == PieceState::Queued && has.get(PieceIndex(*i)))
            .map(|(_, i)| PieceIndex(i))
    }

    /// Keeps the sequential scan's start at the first piece that may still be queued.
    pub(super) fn advance_sequential(&mut self) {
        while self
            .state
            .get(self.sequential_from)
            .is_some_and(|st| *st != PieceState::Queued)
        {
            self.sequential_from += 1;
        }
    }
}
