//! How a peer broke the protocol: the reason its connection is closed.

use crate::PieceIndex;
use crate::bitfield::BitfieldError;
use crate::extensions::ExtensionHandshakeError;
use crate::extensions::ut_metadata::MetadataError;
use crate::extensions::ut_pex::PexError;
use crate::picker::Block;
use crate::wire::{DecodeError, HandshakeError};

/// A peer's breach of the protocol. The engine closes the connection with
/// [`super::CloseReason::Protocol`] carrying it; no other connection is affected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// Its handshake is not BitTorrent's.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A message was malformed or had a length it may not have.
    #[error(transparent)]
    Message(#[from] DecodeError),
    /// Its bitfield did not fit the torrent.
    #[error(transparent)]
    Bitfield(#[from] BitfieldError),
    /// A HAVE named a piece the torrent does not have.
    #[error("have for piece {piece} of a torrent of {pieces} pieces")]
    HaveOutOfRange {
        /// The piece named.
        piece: PieceIndex,
        /// Pieces in the torrent.
        pieces: u32,
    },
    /// HAVE ALL or HAVE NONE without the fast extension, or after other messages (BEP 6 allows
    /// them only as the first message).
    #[error("unexpected have-all/have-none")]
    UnexpectedPieceSummary,
    /// REJECT REQUEST without the fast extension.
    #[error("reject without the fast extension")]
    RejectWithoutFast,
    /// A REQUEST outside the torrent or its piece, or of a size no block has.
    #[error("request out of bounds: piece {}, offset {}, length {}", .0.piece, .0.offset, .0.length)]
    RequestOutOfBounds(Block),
    /// Too many blocks we never asked this peer for.
    #[error("too many unrequested blocks")]
    TooManyUnrequestedBlocks,
    /// An extension handshake larger than [`super::MAX_EXTENSION_HANDSHAKE_LEN`].
    #[error("extension handshake of {len} bytes")]
    ExtensionHandshakeTooLarge {
        /// Its length.
        len: usize,
    },
    /// More than [`super::MAX_EXTENSION_HANDSHAKES`] extension handshakes.
    #[error("too many extension handshakes")]
    TooManyExtensionHandshakes,
    /// An extension handshake we cannot read, or one naming our extensions wrongly.
    #[error(transparent)]
    ExtensionHandshake(#[from] ExtensionHandshakeError),
    /// A malformed metadata exchange message (BEP 9).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A metadata piece (BEP 9) whose length or total size does not fit the metadata
    /// being fetched.
    #[error("metadata piece {piece} does not fit the metadata")]
    BadMetadataPiece {
        /// The piece's index.
        piece: u32,
    },
    /// More metadata requests than [`super::MAX_METADATA_REJECTS`] refused.
    #[error("too many metadata requests")]
    MetadataRequestFlood,
    /// A malformed peer exchange message (BEP 11).
    #[error(transparent)]
    Pex(#[from] PexError),
    /// Too many requests for pieces we do not have (we never said we had them).
    #[error("too many requests for pieces we lack")]
    TooManyRequestsForMissingPieces,
}
