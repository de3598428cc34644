//! The network's pending events, earliest first and in the order scheduled among equals.

use std::time::Instant;

use super::{Arrived, Side, SimConnId};
use crate::sim::time_queue::TimeQueue;

/// An event waiting for its time.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) conn: SimConnId,
    pub(super) side: Side,
    pub(super) kind: Arrived,
}

/// Pending events, popped by time and then by `seq`.
#[derive(Debug, Default)]
pub(super) struct EventQueue(TimeQueue<Pending>);

impl EventQueue {
    pub(super) fn push(&mut self, p: Pending) {
        self.0.push(p.at, p.seq, p);
    }

    /// The earliest event.
    pub(super) fn peek(&self) -> Option<&Pending> {
        self.0.peek()
    }

    /// Takes the earliest event.
    pub(super) fn pop(&mut self) -> Option<Pending> {
        self.0.pop()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}
