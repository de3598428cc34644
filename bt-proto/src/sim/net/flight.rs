//! The segments on their way to one connection end, and which of them needs an event.
//!
//! A receiver may say how many bytes it lets arrive quietly ([`Flight::set_quiet`]): the
//! swarm runner, whose session would only buffer them. Only the first segment past that
//! budget (the wake) waits in the event heap, at its own time and sequence number; the ones
//! before it arrive without an event, and are counted when the wake comes or when the
//! receiver asks what arrived by a given time ([`Flight::settle`]). Between the two a large
//! block costs one event instead of a dozen, and what the receiver learns is the same.

use std::collections::VecDeque;
use std::time::Instant;

/// One segment on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) len: usize,
}

/// Segments that arrived without an event and are not yet taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quiet {
    /// Their bytes.
    pub bytes: usize,
    /// Time and sequence number of the first of them.
    pub first: (Instant, u64),
    /// Arrival time of the last of them.
    pub last: Instant,
}

/// The segments on their way to one end, in order of arrival.
#[derive(Debug, Default)]
pub(super) struct Flight {
    segments: VecDeque<Segment>,
    /// Bytes, counted from the first segment, that may arrive without an event.
    quiet: usize,
    /// Bytes of the segments before the wake (all of them if none is).
    used: usize,
    /// Sequence number of the segment whose event is in the heap.
    wake: Option<u64>,
    settled: Option<Quiet>,
    /// On its host's list of streams with quiet segments.
    pub(super) listed: bool,
}

impl Flight {
    /// Adds a segment; returns the one whose event the heap must now hold, if it changed.
    pub(super) fn push(&mut self, s: Segment) -> Option<Segment> {
        self.segments.push_back(s);
        if self.wake.is_some() {
            return None;
        }
        if self.used + s.len <= self.quiet {
            self.used += s.len;
            return None;
        }
        self.wake = Some(s.seq);
        Some(s)
    }

    /// Whether the next segment to arrive comes without an event.
    pub(super) fn has_quiet(&self) -> bool {
        self.segments
            .front()
            .is_some_and(|s| Some(s.seq) != self.wake)
    }

    /// Lets `quiet` bytes from the first segment on arrive without an event; returns the
    /// segment whose event the heap must now hold, if it changed.
    pub(super) fn set_quiet(&mut self, quiet: usize) -> Option<Segment> {
        self.quiet = quiet;
        self.rewake()
    }

    /// The first segment past the quiet bytes becomes the wake; `Some` if it is a new one
    /// (an event for the old one is then stale).
    fn rewake(&mut self) -> Option<Segment> {
        let mut used = 0;
        let quiet = self.quiet;
        let next = self.segments.iter().find(|s| {
            let fits = used + s.len <= quiet;
            if fits {
                used += s.len;
            }
            !fits
        });
        let next = next.copied();
        self.used = used;
        let changed = next.map(|s| s.seq) != self.wake;
        self.wake = next.map(|s| s.seq);
        next.filter(|_| changed)
    }

    /// The event for segment `seq` came: if it is the wake, takes it and the quiet ones
    /// before it and returns their bytes, scheduling the next wake (the returned segment);
    /// `None` for a stale event.
    pub(super) fn arrive(&mut self, seq: u64) -> Option<(usize, Option<Segment>)> {
        if self.wake != Some(seq) {
            return None;
        }
        self.wake = None;
        let mut bytes = 0;
        while let Some(s) = self.segments.pop_front() {
            bytes += s.len;
            self.quiet = self.quiet.saturating_sub(s.len);
            if s.seq == seq {
                break;
            }
        }
        Some((bytes, self.rewake()))
    }

    /// Counts the quiet segments that arrived by `now`, and before `cut` (a reset, after
    /// which nothing arrives), as settled. Returns their bytes.
    pub(super) fn settle(&mut self, now: Instant, cut: Option<Instant>) -> usize {
        let mut bytes = 0;
        while let Some(s) = self.segments.front().copied() {
            if !self.arrived_quietly(&s, now, cut) {
                break;
            }
            self.segments.pop_front();
            self.quiet = self.quiet.saturating_sub(s.len);
            self.used = self.used.saturating_sub(s.len);
            bytes += s.len;
            let settled = self.settled.get_or_insert(Quiet {
                bytes: 0,
                first: (s.at, s.seq),
                last: s.at,
            });
            settled.bytes += s.len;
            settled.last = s.at;
        }
        bytes
    }

    /// What arrived quietly and was settled, leaving none.
    pub(super) fn take_settled(&mut self) -> Option<Quiet> {
        self.settled.take()
    }

    /// When the first quiet segment arrived, if one has by `now` (and before `cut`).
    pub(super) fn first_quiet(&self, now: Instant, cut: Option<Instant>) -> Option<(Instant, u64)> {
        if let Some(s) = self.settled {
            return Some(s.first);
        }
        let s = self.segments.front()?;
        self.arrived_quietly(s, now, cut).then_some((s.at, s.seq))
    }

    /// Whether `s`, not the wake, arrived by `now` and before `cut` (a reset, after which
    /// nothing arrives). Only segments before the wake are asked about.
    fn arrived_quietly(&self, s: &Segment, now: Instant, cut: Option<Instant>) -> bool {
        s.at <= now && cut.is_none_or(|c| s.at < c) && self.wake != Some(s.seq)
    }

    /// When the last quiet segment not yet settled arrived, if one has by `now` (and
    /// before `cut`).
    pub(super) fn last_quiet(&self, now: Instant, cut: Option<Instant>) -> Option<Instant> {
        self.segments
            .iter()
            .take_while(|s| self.arrived_quietly(s, now, cut))
            .last()
            .map(|s| s.at)
    }

    /// Forgets every segment: none will arrive.
    pub(super) fn clear(&mut self) {
        *self = Flight::default();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn seg(t0: Instant, ms: u64, seq: u64, len: usize) -> Segment {
        Segment {
            at: t0 + Duration::from_millis(ms),
            seq,
            len,
        }
    }

    #[test]
    fn only_the_segment_past_the_quiet_bytes_wakes() {
        let t0 = Instant::now();
        let mut f = Flight::default();
        // With nothing quiet, the first segment is the wake, and the next waits behind it.
        assert_eq!(f.push(seg(t0, 1, 1, 100)), Some(seg(t0, 1, 1, 100)));
        assert_eq!(f.push(seg(t0, 2, 2, 100)), None);
        // 150 quiet bytes: the first is quiet, the second is the wake.
        assert_eq!(f.set_quiet(150), Some(seg(t0, 2, 2, 100)));
        assert_eq!(f.push(seg(t0, 3, 3, 100)), None);
        assert_eq!(f.arrive(1), None, "a stale event");
        assert_eq!(f.arrive(2), Some((200, Some(seg(t0, 3, 3, 100)))));
        // The same wake again is no new event.
        assert_eq!(f.set_quiet(0), None);
    }

    #[test]
    fn quiet_segments_settle_by_time_and_before_a_reset() {
        let t0 = Instant::now();
        let mut f = Flight::default();
        f.set_quiet(1000);
        for (ms, seq) in [(1, 1), (2, 2), (3, 3)] {
            assert_eq!(f.push(seg(t0, ms, seq, 100)), None);
        }
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(f.first_quiet(at(0), None), None);
        assert_eq!(f.first_quiet(at(1), None), Some((at(1), 1)));
        assert_eq!(f.settle(at(2), Some(at(2))), 100);
        assert_eq!(f.settle(at(3), None), 200);
        let q = Quiet {
            bytes: 300,
            first: (at(1), 1),
            last: at(3),
        };
        assert_eq!(f.take_settled(), Some(q));
        assert_eq!(f.take_settled(), None);
    }
}
