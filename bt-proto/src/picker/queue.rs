//! The pieces wanted and not started: one list per priority, each ordered by availability
//! in contiguous groups, rarest group first, shuffled inside a group.
//!
//! A change of availability moves a piece to the edge of its neighbouring group with one
//! swap, then to a random place in that group with another, so a HAVE costs O(1) however
//! large the torrent and every group stays shuffled. The picker decides which list a piece
//! belongs to and what its availability is; this keeps the order.
//!
//! The second swap matters. Left at the group's edge, pieces would line up in the order
//! their availability changed, and that order is the same on every peer of a swarm: a
//! seed's bitfield raises every piece in index order, and a HAVE reaches everyone at about
//! the same time. Every leecher would then ask the seed for the same "rarest" piece at
//! once, and the seed would upload copies of a few pieces where it should upload pieces
//! nobody has (the efficiency bench's 10-leecher swarm used 60 % of its upload capacity
//! that way, with every leecher downloading the same handful of pieces).

use super::MAX_PRIORITY;
use crate::rng::Rng;
use crate::{Bitfield, PieceIndex};

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

/// The order lists of every priority, and where each queued piece stands in its list.
#[derive(Debug, Clone)]
pub(super) struct Queue {
    /// Index = priority - 1. Empty while no piece is queued: a seed's picker, thousands of
    /// them in a session, keeps no lists.
    lists: Vec<OrderList>,
    /// Position of each queued piece in its order list; empty with the lists.
    pos: Vec<u32>,
    piece_count: u32,
    /// State of the SplitMix64 sequence that places a piece whose availability changed:
    /// seeded from the picker's RNG at each rebuild, 8 bytes where an [`Rng`] is 32 (a
    /// session holds thousands of pickers), and good enough for a tie-break.
    mix: u64,
}

impl Queue {
    /// An empty queue for a torrent of `piece_count` pieces.
    pub(super) fn new(piece_count: u32) -> Self {
        Queue {
            lists: Vec::new(),
            pos: Vec::new(),
            piece_count,
            mix: 0,
        }
    }

    /// A number in `start..end` (`start` when the range is empty), from [`Queue::mix`].
    fn draw(&mut self, start: usize, end: usize) -> usize {
        self.mix = self.mix.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.mix;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let span = end.saturating_sub(start) as u64;
        start + ((u128::from(z) * u128::from(span)) >> 64) as usize
    }

    /// Swaps the piece at `at`, which just joined group `avail` of `list`, with a random
    /// piece of that group (itself included): the group stays a uniform shuffle, as
    /// inserting at a random place into a shuffled list keeps it one.
    fn scatter(&mut self, list: usize, at: usize, avail: usize) {
        let Some(l) = self.lists.get(list) else {
            return;
        };
        let start = l.group_start.get(avail).copied().unwrap_or(0) as usize;
        let end = l.group_end(avail);
        let to = self.draw(start, end);
        self.swap(list, at, to);
    }

    /// Makes the lists of every priority, if there are none yet.
    fn make_lists(&mut self) {
        if self.lists.is_empty() {
            self.lists = vec![OrderList::default(); MAX_PRIORITY as usize];
            self.pos = vec![0; self.piece_count as usize];
        }
    }

    /// Refills every list: `per_priority[k]` holds the queued pieces of priority `k + 1`,
    /// shuffled, then grouped by their `availability`.
    pub(super) fn rebuild(
        &mut self,
        per_priority: Vec<Vec<PieceIndex>>,
        availability: &[u32],
        rng: &mut Rng,
    ) {
        if per_priority.iter().all(Vec::is_empty) {
            self.lists = Vec::new();
            self.pos = Vec::new();
            return;
        }
        self.make_lists();
        self.mix = rng.next_u64();
        for (list, mut pieces) in self.lists.iter_mut().zip(per_priority) {
            rng.shuffle(&mut pieces);
            let avail = availability;
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

    fn swap(&mut self, list: usize, a: usize, b: usize) {
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

    /// Piece `p`, queued in `list` with availability `avail`, gained a peer.
    pub(super) fn raise(&mut self, list: usize, p: PieceIndex, avail: u32) {
        let a = avail as usize;
        let at = self.pos.get(p.as_usize()).copied().unwrap_or(0) as usize;
        let Some(l) = self.lists.get_mut(list) else {
            return;
        };
        l.ensure_groups(a + 1);
        // Swap to the last slot of group a, then move the boundary of group a+1 down.
        let last = l.group_end(a).saturating_sub(1);
        self.swap(list, at, last);
        if let Some(l) = self.lists.get_mut(list)
            && let Some(start) = l.group_start.get_mut(a + 1)
        {
            *start = start.saturating_sub(1);
        }
        self.scatter(list, last, a + 1);
    }

    /// Piece `p`, queued in `list` with availability `avail` (not 0), lost a peer.
    pub(super) fn lower(&mut self, list: usize, p: PieceIndex, avail: u32) {
        let a = avail as usize;
        let at = self.pos.get(p.as_usize()).copied().unwrap_or(0) as usize;
        let first = self
            .lists
            .get(list)
            .and_then(|l| l.group_start.get(a))
            .copied()
            .unwrap_or(0) as usize;
        // Swap to the first slot of group a, then move the boundary of group a up.
        self.swap(list, at, first);
        if let Some(l) = self.lists.get_mut(list)
            && let Some(start) = l.group_start.get_mut(a)
        {
            *start += 1;
        }
        self.scatter(list, first, a.saturating_sub(1));
    }

    /// Takes piece `p`, queued in `list` with availability `avail`, out of the list,
    /// keeping the groups contiguous.
    pub(super) fn remove(&mut self, list: usize, p: PieceIndex, avail: u32) {
        let idx = p.as_usize();
        let mut a = avail as usize;
        // Walk the piece to the end of the list one group at a time, then pop it.
        loop {
            let at = self.pos.get(idx).copied().unwrap_or(0) as usize;
            let Some(l) = self.lists.get(list) else {
                return;
            };
            let end = l.group_end(a);
            self.swap(list, at, end.saturating_sub(1));
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

    /// Puts piece `p`, with availability `avail`, into `list`, in its group.
    pub(super) fn insert(&mut self, list: usize, p: PieceIndex, avail: u32) {
        let idx = p.as_usize();
        let avail = avail as usize;
        self.make_lists();
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
            self.swap(list, at, start);
            at = start;
            if let Some(s) = self
                .lists
                .get_mut(list)
                .and_then(|l| l.group_start.get_mut(g))
            {
                *s += 1;
            }
        }
        self.scatter(list, at, avail);
    }

    /// The first queued piece that `has` holds, highest priority first, rarest first within
    /// a priority; with `random`, each list is searched from a random place instead.
    pub(super) fn first_held(
        &self,
        has: &Bitfield,
        random: bool,
        rng: &mut Rng,
    ) -> Option<PieceIndex> {
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

    /// True when no piece is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.lists.iter().all(|l| l.order.is_empty())
    }

    /// Number of queued pieces.
    pub(super) fn len(&self) -> usize {
        self.lists.iter().map(|l| l.order.len()).sum()
    }

    /// Checks that every listed piece is where `pos` says, in the list `queued_list` names
    /// and in the group of its `availability`.
    pub(super) fn check(
        &self,
        queued_list: impl Fn(PieceIndex) -> Option<usize>,
        availability: impl Fn(PieceIndex) -> u32,
    ) -> Result<(), String> {
        for (li, l) in self.lists.iter().enumerate() {
            for (i, p) in l.order.iter().enumerate() {
                if self.pos.get(p.as_usize()).copied() != Some(i as u32) {
                    return Err(format!("pos of {p:?} wrong in list {li}"));
                }
                if queued_list(*p) != Some(li) {
                    return Err(format!("{p:?} in list {li} but not queued there"));
                }
                let a = availability(*p) as usize;
                let start = l.group_start.get(a).copied().unwrap_or(u32::MAX) as usize;
                if i < start || i >= l.group_end(a) {
                    return Err(format!("{p:?} (avail {a}) at {i} outside its group"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue with nothing queued keeps no lists; a piece queued later is found as in any
    /// other queue.
    #[test]
    fn an_empty_queue_keeps_no_lists_and_still_takes_pieces() {
        let mut rng = Rng::seed_from_u64(1);
        let mut q = Queue::new(4);
        q.rebuild(vec![Vec::new(); MAX_PRIORITY as usize], &[0; 4], &mut rng);
        assert!(q.lists.is_empty());
        assert!(q.pos.is_empty(), "nor positions");
        assert!(q.is_empty());
        q.insert(0, PieceIndex(2), 1);
        assert_eq!(q.len(), 1);
        let has = Bitfield::full(4);
        assert_eq!(q.first_held(&has, false, &mut rng), Some(PieceIndex(2)));
        assert_eq!(q.check(|_| Some(0), |_| 1), Ok(()));
        q.remove(0, PieceIndex(2), 1);
        assert!(q.is_empty());
    }
}
