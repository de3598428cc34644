//! One simulated file: its bytes in fixed chunks of shared buffers, so that a thousand hosts
//! holding the same content hold one copy of it, and a block read is a slice, not a copy.

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
        let mut at = start;
        while at < end {
            let index = at / CHUNK;
            let chunk_start = index * CHUNK;
            let Some(chunk) = self.chunks.get_mut(index) else {
                return;
            };
            let upto = end.min(chunk_start + chunk.len());
            let part = data.slice(at - start..upto - start);
            if part.len() == chunk.len() {
                *chunk = part;
            } else {
                let mut copy = BytesMut::from(&chunk[..]);
                if let Some(dest) = copy.get_mut(at - chunk_start..upto - chunk_start) {
                    dest.copy_from_slice(&part);
                }
                *chunk = copy.freeze();
            }
            at = upto;
        }
    }

    /// Bytes `start..end` (clipped to the file): a slice of one chunk where they lie in one,
    /// else a copy.
    pub(super) fn read(&self, start: usize, end: usize) -> Bytes {
        let end = end.min(self.len);
        let start = start.min(end);
        let index = start / CHUNK;
        if let Some(chunk) = self.chunks.get(index)
            && end <= index * CHUNK + chunk.len()
        {
            return chunk.slice(start - index * CHUNK..end - index * CHUNK);
        }
        let mut out = BytesMut::with_capacity(end - start);
        self.for_each_part(start, end, |part| out.extend_from_slice(part));
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
        let end = end.min(self.len);
        let mut at = start.min(end);
        while at < end {
            let index = at / CHUNK;
            let chunk_start = index * CHUNK;
            let Some(chunk) = self.chunks.get_mut(index) else {
                return;
            };
            let upto = end.min(chunk_start + chunk.len());
            let mut copy = BytesMut::from(&chunk[..]);
            for byte in copy
                .get_mut(at - chunk_start..upto - chunk_start)
                .unwrap_or_default()
            {
                f(byte);
            }
            *chunk = copy.freeze();
            at = upto;
        }
    }

    /// Calls `f` with the part of bytes `start..end` in each chunk, in order.
    fn for_each_part(&self, start: usize, end: usize, mut f: impl FnMut(&[u8])) {
        let mut at = start;
        while at < end {
            let index = at / CHUNK;
            let chunk_start = index * CHUNK;
            let Some(chunk) = self.chunks.get(index) else {
                return;
            };
            let upto = end.min(chunk_start + chunk.len());
            f(chunk
                .get(at - chunk_start..upto - chunk_start)
                .unwrap_or_default());
            at = upto;
        }
    }
}
