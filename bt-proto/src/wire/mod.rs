//! The peer wire protocol: the handshake (BEP 3, reserved bits of BEP 5, 6 and 10), every
//! peer message of BEP 3, BEP 5 (PORT), BEP 6 (fast extension) and BEP 10 (extended), and an
//! incremental, zero-copy [`Decoder`] for the byte stream a peer sends.
//!
//! Nothing here trusts the peer: every message length is checked from its 4-byte prefix and id
//! alone, before a byte of its body is buffered, so a peer can make the decoder hold at most
//! [`Decoder::max_frame_len`] bytes of an unfinished message. Any violation is a typed
//! [`DecodeError`] saying which message, how long, what was allowed and where in the stream; the
//! engine answers it by dropping that peer.
//!
//! ```
//! use bt_proto::wire::{BlockRequest, Decoder, Message};
//! use bt_proto::PieceIndex;
//!
//! let mut stream = Vec::new();
//! Message::Interested.encode(&mut stream).unwrap();
//! let request = BlockRequest::new(PieceIndex(3), 0, 16384);
//! Message::Request(request).encode(&mut stream).unwrap();
//!
//! let mut decoder = Decoder::new(Some(10));
//! decoder.feed(&stream[..7]); // any chunking of the stream gives the same messages
//! assert_eq!(decoder.next_message().unwrap(), Some(Message::Interested));
//! assert_eq!(decoder.next_message().unwrap(), None); // the REQUEST is not complete yet
//! decoder.feed(&stream[7..]);
//! assert_eq!(decoder.next_message().unwrap(), Some(Message::Request(request)));
//! ```

mod decoder;
mod handshake;
mod message;

pub use decoder::{DecodeError, DecodeErrorKind, Decoder, READ_CHUNK};
pub use handshake::{
    Extension, HANDSHAKE_LEN, HANDSHAKE_PREFIX_LEN, Handshake, HandshakeError, HandshakePrefix,
    PROTOCOL, Progress, Reserved,
};
pub use message::{
    BlockRequest, EncodeError, Message, PIECE_HEADER_LEN, encode_piece_header, id, message_name,
};

/// Largest block a PIECE may carry and a REQUEST, CANCEL or REJECT may name: 16 KiB.
///
/// BEP 3: "All current implementations use 2^14 (16 kiB), and close connections which request
/// an amount greater than that." We request 16 KiB blocks ourselves, so a larger PIECE was never
/// asked for, and serving larger requests would only let one peer pin more of our memory.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024;

/// Largest length prefix of an extended message (BEP 10): 1 MiB, id byte included.
///
/// The largest extended messages in use, BEP 9 metadata pieces, are 16 KiB plus a small
/// dictionary; PEX and extension handshakes are far smaller. 64 KiB leaves room for
/// extensions we do not know yet, while a connection's unfinished message (the most the
/// decoder holds of it) stays small even over hundreds of connections.
pub const MAX_EXTENDED_LEN: u32 = 64 * 1024;

/// Largest length prefix of a message with an id we do not know, id byte included: 16 KiB.
///
/// Unknown messages are kept (a newer peer may send them harmlessly) but nothing we would act on
/// is larger than a block. The one family of big messages we leave out, BEP 52 `hashes`, is only
/// ever sent in answer to a `hash request`, which we never send.
pub const MAX_UNKNOWN_LEN: u32 = 16 * 1024;

/// Largest bitfield payload accepted before the torrent's piece count is known (a magnet link
/// whose metadata has not arrived): 256 KiB, room for 2,097,152 pieces.
///
/// Such a torrent's `pieces` string would be 40 MiB, more than libtorrent's default metadata
/// limit (`max_metadata_size`, 30 MiB), so no torrent a client can actually fetch has a larger
/// bitfield. Once the piece count is known ([`Decoder::set_piece_count`]) the bitfield must be
/// exactly its size.
pub const MAX_BITFIELD_LEN_UNKNOWN: u32 = 256 * 1024;

#[cfg(test)]
mod tests;
