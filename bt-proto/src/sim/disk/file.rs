//! One simulated file: its bytes in fixed chunks of shared buffers, so that a thousand hosts
//! holding the same content hold one copy of it, and a block read is a slice, not a copy.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Bytes per chunk: the 16 KiB block of the peer protocol, so that a piece written from a
/// shared buffer covers whole chunks and a block read is one chunk.
pub(super) const CHUNK: usize = 16 * 1024;

/// The bytes of a chunk of a sparse gap: reading a gap gives zeros, and zeros are shared.
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// A file's bytes: chunk `i` holds bytes `i * CHUNK ..` up to the next chunk or the end, so
/// every chunk but the last is exactly [`CHUNK`] long.
#[derive(Debug, Clone, Default)]
pub(super) struct File {
    len: usize,
    chunks: Vec<Bytes>,
}

impl File {
    /// A file holding `bytes`, sharing their buffer.
    pub(super) fn from_bytes(bytes: &Bytes) -> File {
        let chunks = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| bytes.slice(start..bytes.len().min(start + CHUNK)))
            .collect();
        File {
            len: bytes.len(),
            chunks,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Grows the file to `len` bytes of zeros past its old end; never shrinks it.
    fn grow(&mut self, len: usize) {
        if len <= self.len {
            return;
        }
        let last_start = self.chunks.len().saturating_sub(1) * CHUNK;
        if let Some(last) = self.chunks.last_mut()
            && last.len() < CHUNK
        {
            let mut longer = BytesMut::from(&last[..]);
            longer.resize(CHUNK.min(len - last_start), 0);
            *last = longer.freeze();
        }
        while self.chunks.len() * CHUNK < len {
            let size = CHUNK.min(len - self.chunks.len() * CHUNK);
            self.chunks
                .push(Bytes::from_static(ZEROS.get(..size).unwrap_or_default()));
        }
        self.len = len;
    }

    /// Writes `data` at `start`, growing the file. A whole chunk written keeps a slice of
    /// `data` (no copy); a part of one is copied into the chunk.
    pub(super) fn write(&mut self, start: usize, data: &Bytes) {
        let end = start + data.len();
        self.grow(end);
        for (index, range, from) in self.parts(start, end) {
            let Some(chunk) = self.chunks.get_mut(index) else {
                return;
            };
            let part = data.slice(from..from + range.len());
            if part.len() == chunk.len() {
                *chunk = part;
            } else {
                let mut copy = BytesMut::from(&chunk[..]);
                if let Some(dest) = copy.get_mut(range) {
                    dest.copy_from_slice(&part);
                }
                *chunk = copy.freeze();
            }
        }
    }

    /// Bytes `start..end` (clipped to the file): a slice of one chunk where they lie in one,
    /// else a copy.
    pub(super) fn read(&self, start: usize, end: usize) -> Bytes {
        let parts = self.parts(start, end);
        let slice = |(index, range, _): &(usize, Range<usize>, usize)| {
            self.chunks.get(*index)?.get(range.clone())
        };
        if let [one] = parts.as_slice()
            && let Some(chunk) = self.chunks.get(one.0)
        {
            return chunk.slice(one.1.clone());
        }
        let mut out = BytesMut::new();
        for part in &parts {
            out.extend_from_slice(slice(part).unwrap_or_default());
        }
        out.freeze()
    }

    /// The whole file, copied out.
    pub(super) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Changes bytes `start..end` (clipped to the file) in place, in order, with `f`.
    pub(super) fn modify(&mut self, start: usize, end: usize, mut f: impl FnMut(&mut u8)) {
        for (index, range, _) in self.parts(start, end) {
            let Some(chunk) = self.chunks.get_mut(index) else {
                return;
            };
            let mut copy = BytesMut::from(&chunk[..]);
            copy.get_mut(range)
                .unwrap_or_default()
                .iter_mut()
                .for_each(&mut f);
            *chunk = copy.freeze();
        }
    }

    /// Bytes `start..end` (clipped to the file) chunk by chunk: each part's chunk index, its
    /// range within the chunk, and its offset from `start`.
    fn parts(&self, start: usize, end: usize) -> Vec<(usize, Range<usize>, usize)> {
        let end = end.min(self.len);
        (start / CHUNK..end.div_ceil(CHUNK))
            .filter_map(|index| {
                let chunk_start = index * CHUNK;
                let (from, to) = (start.max(chunk_start), end.min(chunk_start + CHUNK));
                (from < to).then(|| (index, from - chunk_start..to - chunk_start, from - start))
            })
            .collect()
    }
}
