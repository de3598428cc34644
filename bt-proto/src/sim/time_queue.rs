//! Things due on virtual time, earliest first and, among equals, in the order of their
//! sequence numbers.
//!
//! A swarm keeps tens of thousands of segments in flight. The heap holds small keys (time
//! as nanoseconds since the first time pushed, sequence number, slot: 24 bytes, compared as
//! integers) and the items wait in slots beside it, so that a pop, which walks a dozen
//! levels of the heap, moves and compares no more than it must.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Items ordered by `(time, seq)`, taken earliest first. Sequence numbers must be unique.
#[derive(Debug)]
pub(crate) struct TimeQueue<T> {
    /// Instant of key time 0: the first time pushed, moved earlier if an earlier one comes.
    base: Option<Instant>,
    /// (nanoseconds since `base`, sequence number, slot).
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// The items, where their keys point; `None` once taken.
    slots: Vec<Option<T>>,
    /// Slots emptied by pops, reused before `slots` grows.
    free: Vec<usize>,
}

impl<T> Default for TimeQueue<T> {
    fn default() -> Self {
        TimeQueue {
            base: None,
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> TimeQueue<T> {
    /// Adds `item`, due at `at`, after every item with the same time and a smaller `seq`.
    pub(crate) fn push(&mut self, at: Instant, seq: u64, item: T) {
        let base = *self.base.get_or_insert(at);
        if at < base {
            self.rebase(at);
        }
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Some(item);
                }
                i
            }
            None => {
                self.slots.push(Some(item));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((self.nanos(at), seq, slot)));
    }

    /// When the earliest item is due.
    pub(crate) fn peek_at(&self) -> Option<Instant> {
        let Reverse((nanos, _, _)) = self.heap.peek()?;
        Some(self.base? + Duration::from_nanos(*nanos))
    }

    /// The earliest item.
    pub(crate) fn peek(&self) -> Option<&T> {
        let Reverse((_, _, slot)) = self.heap.peek()?;
        self.slots.get(*slot)?.as_ref()
    }

    /// Takes the earliest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let Reverse((_, _, slot)) = self.heap.pop()?;
        let item = self.slots.get_mut(slot)?.take();
        self.free.push(slot);
        item
    }

    /// Items held.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// `at` as nanoseconds since the base (capped at 584 years of virtual time).
    fn nanos(&self, at: Instant) -> u64 {
        let since = self
            .base
            .map_or(0, |b| at.saturating_duration_since(b).as_nanos());
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    /// Moves time 0 to `at`, earlier than the current base: every key grows by the
    /// difference (their order holds).
    fn rebase(&mut self, at: Instant) {
        let Some(old) = self.base else {
            return;
        };
        let shift = u64::try_from(old.saturating_duration_since(at).as_nanos()).unwrap_or(u64::MAX);
        self.base = Some(at);
        let keys = std::mem::take(&mut self.heap).into_vec();
        self.heap = keys
            .into_iter()
            .map(|Reverse((n, seq, slot))| Reverse((n.saturating_add(shift), seq, slot)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use super::*;
    use crate::rng::Rng;

    /// Pushes and pops at random, times moving forward with some pushed before the last one
    /// taken, against a binary heap of the same keys.
    #[test]
    fn pops_in_the_order_of_a_heap() {
        for seed in 0..40 {
            let mut rng = Rng::seed_from_u64(seed);
            let base = Instant::now();
            let mut q = TimeQueue::default();
            let mut heap = BinaryHeap::new();
            let mut now = 0u64;
            for seq in 0..3000u64 {
                if rng.below(3) > 0 {
                    let at = match rng.below(20) {
                        // Into the past (also before the first time pushed).
                        0 => now.saturating_sub(rng.below(5_000)),
                        // The same instant as another item.
                        1..=5 => now,
                        _ => {
                            let bits = 10 + rng.below(30);
                            now + rng.below(1 << bits)
                        }
                    };
                    let t = base + Duration::from_secs(3600) + Duration::from_nanos(at);
                    q.push(t, seq, seq);
                    heap.push(Reverse((t, seq)));
                } else {
                    let want = heap.pop().map(|Reverse(k)| k);
                    assert_eq!(q.peek_at(), want.map(|(t, _)| t), "seed {seed}");
                    assert_eq!(q.peek().copied(), want.map(|(_, s)| s), "seed {seed}");
                    assert_eq!(q.pop(), want.map(|(_, s)| s), "seed {seed}");
                    if let Some((t, _)) = want {
                        now = t
                            .duration_since(base + Duration::from_secs(3600))
                            .as_nanos() as u64;
                    }
                }
                assert_eq!(q.len(), heap.len());
            }
            while let Some(Reverse((t, s))) = heap.pop() {
                assert_eq!(q.peek_at(), Some(t));
                assert_eq!(q.pop(), Some(s));
            }
            assert_eq!(q.pop(), None);
            assert_eq!(q.peek_at(), None);
        }
    }
}
