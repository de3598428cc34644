//! A host's download queue: a line that carries one segment at a time at its rate, booked
//! segment by segment at the time each one reaches it.
//!
//! Unlike the upload queue, whose segments come from the host itself in the order it sends
//! them, a download queue takes segments from many senders, each booked when its sender
//! sends, for the time it will leave the sender's own queues, which may be well in the
//! future. A plain FIFO would make a segment due now wait behind one booked for later; so
//! the calendar books each segment into the first free span long enough for it at or after
//! its ready time, as a line idle until the later segment arrives would carry it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Busy spans of one line, merged where they touch.
#[derive(Debug, Default)]
pub(super) struct Calendar {
    /// Start → end of each busy span; spans never overlap.
    busy: BTreeMap<Instant, Instant>,
}

impl Calendar {
    /// Books `took` at or after `ready` (nothing sent at `now` or later is ready earlier,
    /// so spans ended by `now` are forgotten); returns when the booking ends. Nothing
    /// (an empty segment: a FIN) takes no time and books nothing.
    pub(super) fn book(&mut self, now: Instant, ready: Instant, took: Duration) -> Instant {
        if took.is_zero() {
            return ready;
        }
        while let Some((&start, &end)) = self.busy.first_key_value() {
            if end > now {
                break;
            }
            self.busy.remove(&start);
        }
        let mut start = ready;
        // A span starting before `ready` may still cover it.
        if let Some((_, &end)) = self.busy.range(..=ready).next_back() {
            start = start.max(end);
        }
        let end = loop {
            let end = start.checked_add(took).unwrap_or(start);
            match self.busy.range(start..).next() {
                Some((&next, &next_end)) if next < end => start = next_end,
                _ => break end,
            }
        };
        let (mut from, mut to) = (start, end);
        // Merge with the span ending where this one starts and the one starting where it ends.
        if let Some((&s, &e)) = self.busy.range(..=from).next_back()
            && e >= from
        {
            self.busy.remove(&s);
            from = s;
        }
        if let Some(e) = self.busy.remove(&to) {
            to = e;
        }
        self.busy.insert(from, to);
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_later_booking_leaves_the_line_free_before_it() {
        let t0 = Instant::now();
        let mut c = Calendar::default();
        // Booked for later first: [100, 110).
        assert_eq!(c.book(t0, t0 + ms(100), ms(10)), t0 + ms(110));
        // Ready now: carried at once, not after the later booking.
        assert_eq!(c.book(t0, t0, ms(10)), t0 + ms(10));
        // Back to back with the first: [10, 20).
        assert_eq!(c.book(t0, t0, ms(10)), t0 + ms(20));
        // A gap too short for it ([20, 100) fits 80 ms, not 85): after the last booking.
        assert_eq!(c.book(t0, t0 + ms(15), ms(85)), t0 + ms(195));
        // One that fits the gap exactly.
        assert_eq!(c.book(t0, t0 + ms(15), ms(80)), t0 + ms(100));
        // The line is now busy from 0 to 195 without a break.
        assert_eq!(c.busy.len(), 1);
        assert_eq!(c.book(t0, t0 + ms(50), ms(5)), t0 + ms(200));
    }

    #[test]
    fn nothing_books_nothing() {
        let t0 = Instant::now();
        let mut c = Calendar::default();
        assert_eq!(c.book(t0, t0 + ms(5), Duration::ZERO), t0 + ms(5));
        assert!(c.busy.is_empty());
        assert_eq!(c.book(t0, t0 + ms(5), ms(1)), t0 + ms(6));
    }

    #[test]
    fn spans_past_now_are_forgotten() {
        let t0 = Instant::now();
        let mut c = Calendar::default();
        c.book(t0, t0, ms(10));
        c.book(t0, t0 + ms(50), ms(10));
        c.book(t0 + ms(20), t0 + ms(20), ms(1));
        assert_eq!(c.busy.len(), 2);
    }
}
