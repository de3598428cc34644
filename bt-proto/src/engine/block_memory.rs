//! Keeping received blocks without pinning the receive buffers they arrived in.
//!
//! A block is kept as a zero-copy slice of the bytes one read brought, and such a slice keeps
//! that read's whole buffer alive. That is free when the read was large and mostly blocks (a
//! fast peer: every byte of the buffer is a block we keep). It is not when a read was small
//! (a slow link: one block per buffer) or mostly something else (a peer padding each block
//! with keep-alives): then each kept block could hold many times its size. Such blocks are
//! copied out, so memory held stays within a small factor of the blocks kept, whatever the
//! peer sends; the copy costs nothing that matters at the rates where it happens.
//!
//! A block cut by the ends of reads is put together by the decoder in a buffer of its own
//! size ([`crate::wire::Decoder::last_payload_owned`]); it pins nothing else and is kept as
//! it is. Over uTP, or any link whose reads are a packet each, that is nearly every block.

use bytes::Bytes;

use super::{Session, TorrentId};
use crate::PieceIndex;

/// Reads shorter than this (about two blocks with their headers) have their blocks copied.
/// Reads that short come from a slow link or a trickling peer, whose receive buffer (256 KiB
/// in bt-adapter, shared by consecutive reads) fills slowly with blocks of many pieces, so a
/// block kept long could pin many times its size. Larger reads fill a buffer quickly with
/// blocks stored at about the same time. At 128 KiB this copied many of loopback's 64 KiB
/// reads and cost 4 MiB of peak RSS (PERF.md, "Copied blocks").
pub const MIN_ZERO_COPY_READ: usize = 32 * 1024;

/// What the read being handled brought, and where its kept blocks went.
#[derive(Debug, Default)]
pub(crate) struct ReadUse {
    /// Bytes of the read.
    len: usize,
    /// Bytes of blocks kept from it.
    kept_bytes: usize,
    /// Where each kept block is: its piece's partial buffer, by block index.
    kept: Vec<(TorrentId, PieceIndex, usize)>,
    /// The read's buffers are the ones the sender wrote (the simulator's hand-over): a block
    /// that is a slice of one is a slice of the sender's block buffer, itself a slice of the
    /// one copy of the content the simulated swarm holds, so it pins nothing not held
    /// anyway and is kept as it came.
    as_written: bool,
}

impl ReadUse {
    /// A new read of `len` bytes starts; `as_written` if its buffers are the sender's own.
    pub fn start(&mut self, len: usize, as_written: bool) {
        self.len = len;
        self.as_written = as_written;
        self.kept_bytes = 0;
        self.kept.clear();
    }

    /// A block of this read is to be kept at `slot`: returns the bytes to keep (a copy if the
    /// read is small). A block the decoder put together from several reads in a buffer of
    /// its own (`owned`) pins nothing else and is kept as it is.
    pub fn keep(
        &mut self,
        data: Bytes,
        owned: bool,
        slot: (TorrentId, PieceIndex, usize),
    ) -> Bytes {
        if owned || self.as_written {
            return data;
        }
        if self.len < MIN_ZERO_COPY_READ {
            return Bytes::copy_from_slice(&data);
        }
        self.kept_bytes += data.len();
        self.kept.push(slot);
        data
    }

    /// Once the read is handled: the kept blocks to copy out, because most of the read was
    /// not blocks.
    fn sparse_slots(&mut self) -> Vec<(TorrentId, PieceIndex, usize)> {
        if self.kept_bytes.saturating_mul(2) >= self.len {
            self.kept.clear();
            return Vec::new();
        }
        std::mem::take(&mut self.kept)
    }
}

impl Session {
    /// After a read's messages: copies out the blocks it left that pin a mostly dead buffer.
    pub(super) fn release_sparse_read(&mut self) {
        for (id, piece, index) in self.read_use.sparse_slots() {
            let slot = self
                .torrents
                .get_mut(&id)
                .and_then(|t| t.in_flight.as_deref_mut()?.partial_pieces.get_mut(&piece))
                .and_then(|p| p.blocks.get_mut(index))
                .and_then(Option::as_mut);
            if let Some((data, _)) = slot {
                *data = Bytes::copy_from_slice(data);
            }
        }
    }
}
