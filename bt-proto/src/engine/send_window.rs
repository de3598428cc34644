//! How much of what a peer asked for is handed to its connection's transport at once: the
//! send watermark.
//!
//! A block handed to the adapter as [`Output::Send`](super::Output::Send) cannot be called
//! back: a CANCEL that arrives later finds it queued in the adapter's writer (or the
//! simulator's send queue), and the peer waits for it. A streaming reader that seeks cancels
//! what it asked for before, so every byte queued ahead of its new requests delays its first
//! byte. So the engine starts reads of a peer's requests only while the bytes it committed to
//! that connection (blocks being read, bytes queued in the engine, bytes handed to the
//! adapter that the transport has not taken yet) stay under a watermark; the other requests
//! wait in the peer's queue, where a CANCEL removes them.
//!
//! The transport says what it took with [`Input::Written`](super::Input::Written): the
//! bundled adapters when the kernel socket accepts bytes, the simulator when the network
//! takes them, and the engine itself for uTP when its socket's send buffer takes them. The
//! kernel's (or the uTP socket's) send buffer keeps the link busy; the watermark need only
//! cover the time the engine takes to refill it (a disk read and a turn of the driver), which
//! is why it follows the rate the transport takes bytes at ([`SEND_AHEAD`] of it) with a
//! floor of [`MIN_SEND_WATERMARK`].
//!
//! An adapter that never reports [`Input::Written`](super::Input::Written) for a connection
//! sees the engine as it was before the watermark: nothing is held back, as the engine cannot
//! know when bytes leave. The first report turns the watermark on for that connection.

use std::time::{Duration, Instant};

use crate::picker::BLOCK_LEN;

/// How much of a connection's recent rate may wait to be taken by its transport: what it took
/// in the last 10 ms. Refilling the transport takes a disk read and a turn of the adapter's
/// loop (well under a millisecond on a quiet machine, a few on a loaded one), so 10 ms keeps
/// the kernel's buffer fed at any rate: a 1 GB/s loopback connection may have 10 MB waiting
/// (more than the 8 MiB a peer may ask for at once, so nothing is held back there), a
/// 2.5 MB/s one 25 KB. It is also the longest a seek waits behind what was queued before it
/// at a steady rate.
pub const SEND_AHEAD: Duration = Duration::from_millis(10);

/// The watermark whatever the rate: two blocks, one being written while the next is read, so
/// a fresh or slow connection does not wait for the disk between blocks (a 10 ms read from a
/// cold disk is a block and a half at 2.5 MB/s). A block starts while less than the
/// watermark is committed: two blocks, not three. A connection's watermark grows from there
/// as fast as its transport takes bytes (each byte taken lets one more be queued within
/// [`SEND_AHEAD`]), as a TCP slow start does.
pub const MIN_SEND_WATERMARK: u64 = 2 * BLOCK_LEN as u64;

/// One connection's bytes handed to its transport and not taken yet, and the rate they are
/// taken at.
#[derive(Debug, Clone)]
pub(crate) struct SendWindow {
    /// The transport reported a write: the watermark applies.
    reported: bool,
    /// Bytes handed to the adapter (or the uTP socket) and not taken by the transport yet.
    unwritten: u64,
    /// Start of the current [`SEND_AHEAD`] span of the taken-bytes count.
    span_start: Instant,
    /// Bytes taken in the current span.
    current: u64,
    /// Bytes taken in the span before it (zero if that span is over too).
    previous: u64,
}

impl SendWindow {
    pub fn new(now: Instant) -> Self {
        SendWindow {
            reported: false,
            unwritten: 0,
            span_start: now,
            current: 0,
            previous: 0,
        }
    }

    /// `bytes` were handed to the transport.
    pub fn handed(&mut self, bytes: u64) {
        self.unwritten = self.unwritten.saturating_add(bytes);
    }

    /// The transport took `bytes` at `now`.
    pub fn written(&mut self, now: Instant, bytes: u64) {
        self.reported = true;
        self.unwritten = self.unwritten.saturating_sub(bytes);
        self.roll(now);
        self.current = self.current.saturating_add(bytes);
    }

    /// Starts a new span if the current one is over.
    fn roll(&mut self, now: Instant) {
        let age = now.saturating_duration_since(self.span_start);
        if age < SEND_AHEAD {
            return;
        }
        self.previous = if age < 2 * SEND_AHEAD {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.span_start = now;
    }

    /// Bytes handed to the transport and not taken yet.
    #[cfg(test)]
    pub fn unwritten(&self) -> u64 {
        self.unwritten
    }

    /// The watermark at `now`: what the transport took in the last [`SEND_AHEAD`] (the
    /// fuller of the current and the previous span), at least [`MIN_SEND_WATERMARK`].
    pub fn watermark(&self, now: Instant) -> u64 {
        let age = now.saturating_duration_since(self.span_start);
        let (current, previous) = match age {
            a if a < SEND_AHEAD => (self.current, self.previous),
            a if a < 2 * SEND_AHEAD => (self.current, 0),
            _ => (0, 0),
        };
        current.max(previous).max(MIN_SEND_WATERMARK)
    }

    /// Whether one more block may be committed to the connection, which has `committed`
    /// bytes being read or queued in the engine besides those handed over: while all of them
    /// are under the watermark (so it is passed by a block at most, and a watermark smaller
    /// than a block never stops a connection). Always true until the transport reports a
    /// write.
    pub fn has_room(&self, now: Instant, committed: u64) -> bool {
        !self.reported || committed.saturating_add(self.unwritten) < self.watermark(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u32 = BLOCK_LEN;

    #[test]
    fn nothing_is_held_before_the_first_report() {
        let t = Instant::now();
        let mut w = SendWindow::new(t);
        w.handed(100 * u64::from(BLOCK));
        assert!(w.has_room(t, 0));
        w.written(t, u64::from(BLOCK));
        assert!(!w.has_room(t, 0), "99 blocks are waiting");
    }

    #[test]
    fn the_floor_holds_two_blocks() {
        let t = Instant::now();
        let mut w = SendWindow::new(t);
        w.written(t, 0);
        assert!(w.has_room(t, 0));
        assert!(
            w.has_room(t, u64::from(BLOCK) + 17),
            "a block and a small message"
        );
        assert!(!w.has_room(t, 2 * u64::from(BLOCK)));
        w.handed(5 * u64::from(BLOCK));
        assert!(!w.has_room(t, 0));
        // 4 blocks taken: 64 KiB in this span raise the watermark to 64 KiB.
        w.written(t, 4 * u64::from(BLOCK));
        assert_eq!(w.unwritten(), u64::from(BLOCK));
        assert!(
            w.has_room(t, 2 * u64::from(BLOCK)),
            "what was taken lets more in"
        );
        assert!(!w.has_room(t, 3 * u64::from(BLOCK)));
    }

    #[test]
    fn the_watermark_follows_the_rate_and_falls_back_when_idle() {
        let t = Instant::now();
        let mut w = SendWindow::new(t);
        // 1 MB taken every millisecond: 1 GB/s.
        for ms in 0..25 {
            w.written(t + Duration::from_millis(ms), 1_000_000);
        }
        let at = t + Duration::from_millis(25);
        assert!(w.watermark(at) >= 5_000_000, "{}", w.watermark(at));
        assert!(w.watermark(at) <= 10_000_000, "{}", w.watermark(at));
        let idle = at + 3 * SEND_AHEAD;
        assert_eq!(w.watermark(idle), MIN_SEND_WATERMARK);
    }
}
