//! The network's pending events, earliest first and in the order scheduled among equals.
//!
//! A swarm keeps hundreds of thousands of segments in flight, and a heap of whole events
//! moves each event's every byte of bookkeeping at every swap. So the heap holds small keys
//! (time, order, slot) and the events wait in slots beside it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::{NetEventKind, Side, SimConnId};

/// An event waiting for its time.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) conn: SimConnId,
    pub(super) side: Side,
    pub(super) kind: NetEventKind,
}

/// Pending events, popped by time and then by `seq`.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    slots: Vec<Option<Pending>>,
    /// Slots emptied by pops, reused before the slots grow.
    free: Vec<usize>,
}

impl EventQueue {
    pub(super) fn push(&mut self, p: Pending) {
        let key = (p.at, p.seq);
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Some(p);
                }
                i
            }
            None => {
                self.slots.push(Some(p));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((key.0, key.1, slot)));
    }

    /// The earliest event.
    pub(super) fn peek(&self) -> Option<&Pending> {
        let Reverse((_, _, slot)) = self.heap.peek()?;
        self.slots.get(*slot)?.as_ref()
    }

    /// Takes the earliest event.
    pub(super) fn pop(&mut self) -> Option<Pending> {
        let Reverse((_, _, slot)) = self.heap.pop()?;
        let p = self.slots.get_mut(slot)?.take();
        self.free.push(slot);
        p
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}
