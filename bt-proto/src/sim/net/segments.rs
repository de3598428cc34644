//! A connection's write cut into segments, as TCP cuts a send into packets.

use bytes::{Bytes, BytesMut};

/// A byte stream given as buffers, cut into segments of at most the MSS: a segment within
/// one buffer is a slice of it; one spanning buffers is copied together.
pub(super) struct Segments {
    rest: std::vec::IntoIter<Bytes>,
    front: Bytes,
    mss: usize,
}

impl Segments {
    /// `bufs` in order, cut into segments of at most `mss` bytes (at least 1).
    pub(super) fn new(bufs: Vec<Bytes>, mss: usize) -> Self {
        Segments {
            rest: bufs.into_iter(),
            front: Bytes::new(),
            mss: mss.max(1),
        }
    }
}

impl Iterator for Segments {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        while self.front.is_empty() {
            self.front = self.rest.next()?;
        }
        if self.front.len() >= self.mss || self.rest.len() == 0 {
            let n = self.front.len().min(self.mss);
            return Some(self.front.split_to(n));
        }
        let mut segment = BytesMut::with_capacity(self.mss);
        loop {
            let n = self.front.len().min(self.mss - segment.len());
            segment.extend_from_slice(&self.front.split_to(n));
            if segment.len() == self.mss {
                break;
            }
            match self.rest.next() {
                Some(next) => self.front = next,
                None => break,
            }
        }
        Some(segment.freeze())
    }
}
