//! The receiving half of a connection: in-order bytes not yet read, packets that arrived
//! early (a bounded reorder buffer), the peer's FIN, and the selective ack that describes
//! what arrived early.

use std::collections::VecDeque;

use super::{MAX_PACKETS_IN_FLIGHT, RECV_BUFFER, seq};

/// What became of a packet offered to the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Received {
    /// Taken: it was the next one (perhaps releasing early ones) or fills a gap ahead.
    New,
    /// Seen before (or older than the last in-order packet).
    Duplicate,
    /// Refused: too far ahead, past the FIN, or no room. The sender will try again.
    Refused,
}

/// In-order bytes, early packets and the FIN.
#[derive(Clone, Debug)]
pub(super) struct RecvBuffer {
    /// The last sequence number received in order.
    ack_nr: u16,
    /// Early packets: index `i` holds packet `ack_nr + 2 + i` if it arrived.
    early: VecDeque<Option<Vec<u8>>>,
    early_bytes: usize,
    readable: VecDeque<u8>,
    /// The sequence number of the peer's FIN, once it arrived.
    fin: Option<u16>,
}

impl RecvBuffer {
    /// A buffer whose next in-order packet is `ack_nr + 1`.
    pub fn new(ack_nr: u16) -> Self {
        RecvBuffer {
            ack_nr,
            early: VecDeque::new(),
            early_bytes: 0,
            readable: VecDeque::new(),
            fin: None,
        }
    }

    /// The last sequence number received in order: our `ack_nr`.
    pub fn ack_nr(&self) -> u16 {
        self.ack_nr
    }

    /// Bytes the peer may still send: what we advertise as `wnd_size`.
    pub fn window(&self) -> usize {
        RECV_BUFFER.saturating_sub(self.readable.len() + self.early_bytes)
    }

    /// In-order bytes waiting for [`RecvBuffer::read`].
    pub fn readable(&self) -> usize {
        self.readable.len()
    }

    /// Whether the peer's FIN arrived and every packet before it.
    pub fn fin_received(&self) -> bool {
        self.fin == Some(self.ack_nr)
    }

    /// Copies in-order bytes into `buf`; returns how many.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.readable.len());
        // The deque's two halves as slices: a byte-by-byte copy cost a fifth of a
        // downloader's CPU.
        let (front, back) = self.readable.as_slices();
        let mut done = 0;
        for part in [front, back] {
            let k = (n - done).min(part.len());
            if let (Some(d), Some(s)) = (buf.get_mut(done..done + k), part.get(..k)) {
                d.copy_from_slice(s);
            }
            done += k;
        }
        self.readable.drain(..n);
        n
    }

    /// Offers packet `seq_nr` (DATA with `payload`, or the FIN when `fin`).
    pub fn insert(&mut self, seq_nr: u16, payload: &[u8], fin: bool) -> Received {
        let ahead = seq::distance(self.ack_nr, seq_nr);
        if !seq::before(self.ack_nr, seq_nr) {
            return Received::Duplicate;
        }
        let slot_taken = usize::from(ahead)
            .checked_sub(2)
            .and_then(|i| self.early.get(i))
            .is_some_and(Option::is_some);
        if slot_taken {
            return Received::Duplicate;
        }
        if ahead > MAX_PACKETS_IN_FLIGHT
            || self.fin.is_some_and(|f| seq::before(f, seq_nr))
            || (fin && self.fin.is_some_and(|f| f != seq_nr))
            || payload.len() > self.window()
        {
            return Received::Refused;
        }
        if fin {
            self.fin = Some(seq_nr);
            // Nothing comes after the FIN: forget what arrived early past it.
            while self.early.len() > usize::from(ahead) - 1 {
                if let Some(Some(past)) = self.early.pop_back() {
                    self.early_bytes -= past.len();
                }
            }
        }
        if ahead == 1 {
            self.readable.extend(payload);
            self.ack_nr = seq_nr;
            self.release();
            return Received::New;
        }
        let slot = usize::from(ahead) - 2;
        if self.early.len() <= slot {
            self.early.resize(slot + 1, None);
        }
        match self.early.get_mut(slot) {
            Some(Some(_)) => Received::Duplicate,
            Some(entry) => {
                self.early_bytes += payload.len();
                *entry = Some(payload.to_vec());
                Received::New
            }
            None => Received::Refused,
        }
    }

    /// After `ack_nr` moved on by one, every early index moved down by one: the front slot
    /// is now the next in-order packet. Delivers it while it is there.
    fn release(&mut self) {
        while let Some(Some(payload)) = self.early.pop_front() {
            self.early_bytes -= payload.len();
            self.readable.extend(payload);
            self.ack_nr = seq::add(self.ack_nr, 1);
        }
        while let Some(None) = self.early.back() {
            self.early.pop_back();
        }
    }

    /// The selective-ack bitmask for the packets that arrived early, at most `max_bytes`
    /// long (rounded down to a multiple of 4, at least 4); `None` when nothing did.
    pub fn sack(&self, max_bytes: usize) -> Option<Vec<u8>> {
        if self.early.is_empty() {
            return None;
        }
        let max_bits = (max_bytes / 4).max(1) * 32;
        let bits = self.early.len().min(max_bits);
        let mut mask = vec![0u8; bits.div_ceil(32) * 4];
        for (i, e) in self.early.iter().take(bits).enumerate() {
            if let (true, Some(byte)) = (e.is_some(), mask.get_mut(i / 8)) {
                *byte |= 1 << (i % 8);
            }
        }
        Some(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_SACK_BYTES, MAX_STATE_SACK_BYTES};
    use super::*;

    #[test]
    fn reads_span_the_readable_deques_wrap() {
        let mut r = RecvBuffer::new(0);
        let mut buf = [0u8; 8];
        for (seq, chunk) in [(1, &b"abcdef"[..]), (2, b"gh"), (3, b"ijkl")] {
            assert_eq!(r.insert(seq, chunk, false), Received::New);
            // Reading part of each chunk moves the deque's front along its buffer.
            let n = r.read(&mut buf[..3]);
            assert!(n > 0);
        }
        let mut rest = [0u8; 16];
        let n = r.read(&mut rest);
        assert_eq!(&rest[..n], b"jkl");
        assert_eq!(r.readable(), 0);
    }

    #[test]
    fn reorders_and_acks_selectively() {
        let mut r = RecvBuffer::new(65534);
        assert_eq!(r.insert(1, b"cc", false), Received::New);
        assert_eq!(r.insert(1, b"cc", false), Received::Duplicate);
        assert_eq!(r.insert(0, b"bb", false), Received::New);
        assert_eq!(r.ack_nr(), 65534);
        // Early: 0 and 1 are ack + 2 and ack + 3.
        assert_eq!(r.sack(MAX_SACK_BYTES), Some(vec![0b11, 0, 0, 0]));
        assert_eq!(r.insert(65535, b"aa", false), Received::New);
        assert_eq!(r.ack_nr(), 1);
        assert_eq!(r.sack(MAX_SACK_BYTES), None);
        let mut buf = [0; 10];
        assert_eq!(r.read(&mut buf), 6);
        assert_eq!(&buf[..6], b"aabbcc");
        assert_eq!(r.insert(65000, b"old", false), Received::Duplicate);
        assert_eq!(
            r.insert(1 + MAX_PACKETS_IN_FLIGHT + 1, b"far", false),
            Received::Refused
        );
        assert_eq!(r.insert(3, b"", true), Received::New);
        assert!(!r.fin_received());
        assert_eq!(r.insert(4, b"after fin", false), Received::Refused);
        assert_eq!(r.insert(2, b"dd", false), Received::New);
        assert!(r.fin_received());
        assert_eq!(r.readable(), 2);
    }

    #[test]
    fn nothing_past_the_fin_is_delivered() {
        let mut r = RecvBuffer::new(0);
        assert_eq!(r.insert(3, b"3", false), Received::New);
        assert_eq!(r.insert(5, b"5", false), Received::New);
        assert_eq!(r.insert(4, b"", true), Received::New);
        assert_eq!(
            r.sack(MAX_SACK_BYTES),
            Some(vec![0b110, 0, 0, 0]),
            "3 and the FIN (bit 0 is 2)"
        );
        assert_eq!(r.window(), RECV_BUFFER - 1);
        assert_eq!(r.insert(2, b"2", false), Received::New);
        assert_eq!(r.insert(1, b"1", false), Received::New);
        assert!(r.fin_received());
        assert_eq!(r.ack_nr(), 4);
        let mut buf = [0; 8];
        assert_eq!(r.read(&mut buf), 3);
        assert_eq!(&buf[..3], b"123");
    }

    #[test]
    fn window_bounds_what_is_held() {
        let mut r = RecvBuffer::new(0);
        // Packets larger than ours, so that the window binds before the packet limit.
        let len = RECV_BUFFER / usize::from(MAX_PACKETS_IN_FLIGHT) + 100;
        let big = vec![0u8; len];
        let mut n = 0u16;
        while r.insert(n + 2, &big, false) == Received::New {
            n += 1;
        }
        assert!(r.window() < len);
        assert_eq!(r.early_bytes, usize::from(n) * len);
        assert_eq!(r.insert(2, &big[..1300], false), Received::Duplicate);
        assert!(r.early_bytes <= RECV_BUFFER);
        let mask = r.sack(MAX_SACK_BYTES).unwrap();
        assert_eq!(mask.len(), MAX_SACK_BYTES);
        // The longest bitmask names every packet the buffer holds.
        let mask = r.sack(MAX_STATE_SACK_BYTES).unwrap();
        assert_eq!(mask.len(), usize::from(n).div_ceil(32) * 4);
        assert!(mask.len() <= MAX_STATE_SACK_BYTES);
    }
}
