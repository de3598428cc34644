//! Peer messages (BEP 3, BEP 5 PORT, BEP 6 fast extension, BEP 10 extended) and their encoding.
//!
//! Every message but keep-alive is `<length: u32 BE><id: u8><body>`, the length counting the
//! id and body; keep-alive is a bare zero length. Integers are big-endian.

use bytes::{BufMut, Bytes};

use super::{MAX_BLOCK_LEN, MAX_EXTENDED_LEN, MAX_UNKNOWN_LEN};
use crate::PieceIndex;

/// Message ids, as found in the byte after the length prefix.
pub mod id {
    /// BEP 3: the sender will not serve requests.
    pub const CHOKE: u8 = 0;
    /// BEP 3: the sender will serve requests.
    pub const UNCHOKE: u8 = 1;
    /// BEP 3: the sender wants pieces of ours.
    pub const INTERESTED: u8 = 2;
    /// BEP 3: the sender wants nothing of ours.
    pub const NOT_INTERESTED: u8 = 3;
    /// BEP 3: the sender has a new piece.
    pub const HAVE: u8 = 4;
    /// BEP 3: the sender's pieces, right after the handshake.
    pub const BITFIELD: u8 = 5;
    /// BEP 3: a block asked for.
    pub const REQUEST: u8 = 6;
    /// BEP 3: a block sent.
    pub const PIECE: u8 = 7;
    /// BEP 3: a request withdrawn.
    pub const CANCEL: u8 = 8;
    /// BEP 5: the sender's DHT port.
    pub const PORT: u8 = 9;
    /// BEP 6: a piece the sender suggests we download.
    pub const SUGGEST: u8 = 13;
    /// BEP 6: the sender has every piece.
    pub const HAVE_ALL: u8 = 14;
    /// BEP 6: the sender has no piece.
    pub const HAVE_NONE: u8 = 15;
    /// BEP 6: a request the sender will not serve.
    pub const REJECT_REQUEST: u8 = 16;
    /// BEP 6: a piece the sender serves even while choking us.
    pub const ALLOWED_FAST: u8 = 17;
    /// BEP 10: an extension-protocol message; its first body byte is the extended id.
    pub const EXTENDED: u8 = 20;
}

/// A readable name for a message id, for errors and logs.
pub fn message_name(message_id: u8) -> &'static str {
    match message_id {
        id::CHOKE => "choke",
        id::UNCHOKE => "unchoke",
        id::INTERESTED => "interested",
        id::NOT_INTERESTED => "not interested",
        id::HAVE => "have",
        id::BITFIELD => "bitfield",
        id::REQUEST => "request",
        id::PIECE => "piece",
        id::CANCEL => "cancel",
        id::PORT => "port",
        id::SUGGEST => "suggest",
        id::HAVE_ALL => "have all",
        id::HAVE_NONE => "have none",
        id::REJECT_REQUEST => "reject request",
        id::ALLOWED_FAST => "allowed fast",
        id::EXTENDED => "extended",
        _ => "unknown",
    }
}

/// Whether `message_id` belongs to a message this module decodes (and so must not be sent or
/// received as [`Message::Unknown`]).
pub(super) fn is_known(message_id: u8) -> bool {
    matches!(message_id, 0..=9 | 13..=17 | 20)
}

/// Bytes before a PIECE's block: length prefix, id, piece index, offset.
pub const PIECE_HEADER_LEN: usize = 13;

/// A block of a piece, as named by REQUEST, CANCEL and REJECT REQUEST (and by the picker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRequest {
    /// The piece.
    pub piece: PieceIndex,
    /// Byte offset of the block within the piece.
    pub offset: u32,
    /// Bytes in the block.
    pub length: u32,
}

impl BlockRequest {
    /// A request for `length` bytes at `offset` of `piece`.
    pub fn new(piece: PieceIndex, offset: u32, length: u32) -> Self {
        BlockRequest {
            piece,
            offset,
            length,
        }
    }

    /// Whether the length is one a peer may ask for: 1 to [`MAX_BLOCK_LEN`] bytes. The decoder
    /// rejects any other; whether the block lies inside the piece is the engine's check, which
    /// knows the piece's length.
    pub fn has_valid_length(&self) -> bool {
        (1..=MAX_BLOCK_LEN).contains(&self.length)
    }
}

/// One peer message.
///
/// Payloads are [`Bytes`]: the decoder hands out slices of its receive buffer, so a 16 KiB
/// block travels from the socket to the disk writer without being copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// No body: keeps an idle connection open.
    KeepAlive,
    /// We are choked: our requests will not be served.
    Choke,
    /// We are unchoked.
    Unchoke,
    /// The peer wants pieces of ours.
    Interested,
    /// The peer wants nothing of ours.
    NotInterested,
    /// The peer has completed this piece.
    Have(PieceIndex),
    /// The peer's pieces in wire bit order; convert with [`crate::Bitfield::from_bytes`],
    /// which also rejects spare bits set past the last piece. The decoder has checked the
    /// length once the piece count is known.
    Bitfield(Bytes),
    /// A block asked for.
    Request(BlockRequest),
    /// A block's data.
    Piece {
        /// The piece.
        piece: PieceIndex,
        /// Byte offset of the block within the piece.
        offset: u32,
        /// The block, 1 to [`MAX_BLOCK_LEN`] bytes.
        data: Bytes,
    },
    /// A request withdrawn.
    Cancel(BlockRequest),
    /// The UDP port of the peer's DHT node (BEP 5).
    Port(u16),
    /// A piece the peer suggests we download (BEP 6).
    Suggest(PieceIndex),
    /// The peer has every piece (BEP 6), in place of a bitfield.
    HaveAll,
    /// The peer has no piece (BEP 6), in place of a bitfield.
    HaveNone,
    /// A request the peer will not serve (BEP 6).
    RejectRequest(BlockRequest),
    /// A piece the peer will serve even while choking us (BEP 6).
    AllowedFast(PieceIndex),
    /// An extension-protocol message (BEP 10): the extended id (0 is the extension handshake)
    /// and the rest of the body, usually bencoded.
    Extended {
        /// The extended message id.
        id: u8,
        /// The body after the extended id.
        payload: Bytes,
    },
    /// A message whose id we do not know, kept (not fatal) so the engine can ignore or log it.
    Unknown {
        /// The message id.
        id: u8,
        /// The body after the id.
        payload: Bytes,
    },
}

/// A message this crate refuses to send because its peer would have to drop us for it (or,
/// for sizes over 4 GiB, because the length prefix cannot express it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A payload over the limit for its message.
    #[error("{} message payload of {len} bytes is over the limit of {max}", message_name(*.id))]
    TooLong {
        /// The message id.
        id: u8,
        /// Payload bytes given.
        len: usize,
        /// Largest payload allowed.
        max: usize,
    },
    /// A REQUEST, CANCEL, REJECT REQUEST or PIECE for a block of 0 or more than
    /// [`MAX_BLOCK_LEN`] bytes.
    #[error(
        "{} message names a block of {length} bytes, allowed 1..={MAX_BLOCK_LEN}",
        message_name(*.id)
    )]
    InvalidBlockLength {
        /// The message id.
        id: u8,
        /// The block length given.
        length: usize,
    },
    /// [`Message::Unknown`] with the id of a message this crate knows; it would decode as
    /// that message instead.
    #[error(
        "id {id} is the {} message and cannot be sent as an unknown message",
        message_name(*.id)
    )]
    KnownId {
        /// The id given.
        id: u8,
    },
}

/// The 13 bytes that precede a PIECE's block on the wire, so an adapter can send them and the
/// block it already holds as one vectored write, without copying the block.
///
/// ```
/// use bt_proto::wire::{Message, encode_piece_header};
/// use bt_proto::PieceIndex;
/// let data = bytes::Bytes::from_static(b"hello");
/// let header = encode_piece_header(PieceIndex(1), 16384, data.len()).unwrap();
/// let mut whole = header.to_vec();
/// whole.extend_from_slice(&data);
/// let message = Message::Piece { piece: PieceIndex(1), offset: 16384, data };
/// assert_eq!(message.to_vec().unwrap(), whole);
/// ```
pub fn encode_piece_header(
    piece: PieceIndex,
    offset: u32,
    data_len: usize,
) -> Result<[u8; PIECE_HEADER_LEN], EncodeError> {
    let block = u32::try_from(data_len)
        .ok()
        .filter(|len| (1..=MAX_BLOCK_LEN).contains(len))
        .ok_or(EncodeError::InvalidBlockLength {
            id: id::PIECE,
            length: data_len,
        })?;
    let mut out = [0u8; PIECE_HEADER_LEN];
    let mut cursor = &mut out[..];
    cursor.put_u32(9 + block);
    cursor.put_u8(id::PIECE);
    cursor.put_u32(piece.0);
    cursor.put_u32(offset);
    Ok(out)
}

fn check_block(message_id: u8, request: &BlockRequest) -> Result<(), EncodeError> {
    if request.has_valid_length() {
        Ok(())
    } else {
        Err(EncodeError::InvalidBlockLength {
            id: message_id,
            length: request.length as usize,
        })
    }
}

fn check_len(message_id: u8, len: usize, max: usize) -> Result<(), EncodeError> {
    if len <= max {
        Ok(())
    } else {
        Err(EncodeError::TooLong {
            id: message_id,
            len,
            max,
        })
    }
}

impl Message {
    /// The message id, or `None` for keep-alive, which has none.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have(_) => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest(_) => id::SUGGEST,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::RejectRequest(_) => id::REJECT_REQUEST,
            Message::AllowedFast(_) => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// Bytes of the body after the id.
    fn body_len(&self) -> usize {
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 4,
            Message::Port(_) => 2,
            Message::Request(_) | Message::Cancel(_) | Message::RejectRequest(_) => 12,
            Message::Bitfield(b) => b.len(),
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Extended { payload, .. } => 1 + payload.len(),
            Message::Unknown { payload, .. } => payload.len(),
        }
    }

    /// Bytes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::KeepAlive => 4,
            _ => 5 + self.body_len(),
        }
    }

    /// Checks what [`Message::encode`] checks: block lengths, payload caps, unknown ids.
    pub fn validate(&self) -> Result<(), EncodeError> {
        // Every cap below is far under u32::MAX, so a valid message's length prefix fits.
        match self {
            Message::Request(r) => check_block(id::REQUEST, r),
            Message::Cancel(r) => check_block(id::CANCEL, r),
            Message::RejectRequest(r) => check_block(id::REJECT_REQUEST, r),
            Message::Piece { data, .. } => {
                if (1..=MAX_BLOCK_LEN as usize).contains(&data.len()) {
                    Ok(())
                } else {
                    Err(EncodeError::InvalidBlockLength {
                        id: id::PIECE,
                        length: data.len(),
                    })
                }
            }
            Message::Bitfield(b) => check_len(id::BITFIELD, b.len(), u32::MAX as usize - 1),
            Message::Extended { payload, .. } => {
                check_len(id::EXTENDED, payload.len(), MAX_EXTENDED_LEN as usize - 2)
            }
            Message::Unknown { id, payload } => {
                if is_known(*id) {
                    Err(EncodeError::KnownId { id: *id })
                } else {
                    check_len(*id, payload.len(), MAX_UNKNOWN_LEN as usize - 1)
                }
            }
            _ => Ok(()),
        }
    }

    /// Appends the wire form to `out` (a `Vec<u8>`, a `BytesMut`, ...). Nothing is written
    /// if the message is invalid (see [`Message::validate`]).
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), EncodeError> {
        self.validate()?;
        let Some(message_id) = self.id() else {
            out.put_u32(0);
            return Ok(());
        };
        // validate() bounded every body far below u32::MAX.
        let length = u32::try_from(1 + self.body_len()).unwrap_or(u32::MAX);
        out.put_u32(length);
        out.put_u8(message_id);
        match self {
            Message::Have(p) | Message::Suggest(p) | Message::AllowedFast(p) => out.put_u32(p.0),
            Message::Request(r) | Message::Cancel(r) | Message::RejectRequest(r) => {
                out.put_u32(r.piece.0);
                out.put_u32(r.offset);
                out.put_u32(r.length);
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                out.put_u32(piece.0);
                out.put_u32(*offset);
                out.put_slice(data);
            }
            Message::Port(port) => out.put_u16(*port),
            Message::Bitfield(payload) | Message::Unknown { payload, .. } => out.put_slice(payload),
            Message::Extended { id, payload } => {
                out.put_u8(*id);
                out.put_slice(payload);
            }
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
        }
        Ok(())
    }

    /// The wire form in a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    #[test]
    fn exact_bytes_of_every_message() {
        let req = BlockRequest::new(PieceIndex(0x0102_0304), 0x4000, 0x4000);
        let cases: Vec<(Message, Vec<u8>)> = vec![
            (Message::KeepAlive, vec![0, 0, 0, 0]),
            (Message::Choke, vec![0, 0, 0, 1, 0]),
            (Message::Unchoke, vec![0, 0, 0, 1, 1]),
            (Message::Interested, vec![0, 0, 0, 1, 2]),
            (Message::NotInterested, vec![0, 0, 0, 1, 3]),
            (
                Message::Have(PieceIndex(0xdead_beef)),
                vec![0, 0, 0, 5, 4, 0xde, 0xad, 0xbe, 0xef],
            ),
            (
                Message::Bitfield(b(&[0b1010_0000, 0x01])),
                vec![0, 0, 0, 3, 5, 0b1010_0000, 0x01],
            ),
            (
                Message::Request(req),
                vec![0, 0, 0, 13, 6, 1, 2, 3, 4, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::Piece {
                    piece: PieceIndex(2),
                    offset: 0x8000,
                    data: b(b"abc"),
                },
                vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0x80, 0, b'a', b'b', b'c'],
            ),
            (
                Message::Cancel(req),
                vec![0, 0, 0, 13, 8, 1, 2, 3, 4, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
            (
                Message::Suggest(PieceIndex(7)),
                vec![0, 0, 0, 5, 13, 0, 0, 0, 7],
            ),
            (Message::HaveAll, vec![0, 0, 0, 1, 14]),
            (Message::HaveNone, vec![0, 0, 0, 1, 15]),
            (
                Message::RejectRequest(req),
                vec![0, 0, 0, 13, 16, 1, 2, 3, 4, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::AllowedFast(PieceIndex(9)),
                vec![0, 0, 0, 5, 17, 0, 0, 0, 9],
            ),
            (
                Message::Extended {
                    id: 0,
                    payload: b(b"de"),
                },
                vec![0, 0, 0, 4, 20, 0, b'd', b'e'],
            ),
            (
                Message::Unknown {
                    id: 21,
                    payload: b(&[1, 2]),
                },
                vec![0, 0, 0, 3, 21, 1, 2],
            ),
            (
                Message::Unknown {
                    id: 200,
                    payload: Bytes::new(),
                },
                vec![0, 0, 0, 1, 200],
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(message.to_vec().unwrap(), expected, "{message:?}");
            assert_eq!(message.encoded_len(), expected.len(), "{message:?}");
            let mut buf = bytes::BytesMut::new();
            message.encode(&mut buf).unwrap();
            assert_eq!(&buf[..], &expected[..]);
        }
    }

    #[test]
    fn piece_header_matches_the_full_encoding() {
        let data = Bytes::from(vec![7u8; MAX_BLOCK_LEN as usize]);
        let header = encode_piece_header(PieceIndex(5), 32768, data.len()).unwrap();
        assert_eq!(header, [0, 0, 0x40, 0x09, 7, 0, 0, 0, 5, 0, 0, 0x80, 0]);
        let full = Message::Piece {
            piece: PieceIndex(5),
            offset: 32768,
            data,
        }
        .to_vec()
        .unwrap();
        assert_eq!(&full[..PIECE_HEADER_LEN], &header);
    }

    #[test]
    fn refuses_blocks_peers_would_drop_us_for() {
        for len in [0usize, MAX_BLOCK_LEN as usize + 1, usize::MAX] {
            assert_eq!(
                encode_piece_header(PieceIndex(0), 0, len),
                Err(EncodeError::InvalidBlockLength {
                    id: id::PIECE,
                    length: len
                })
            );
        }
        let too_big = Message::Piece {
            piece: PieceIndex(0),
            offset: 0,
            data: Bytes::from(vec![0; MAX_BLOCK_LEN as usize + 1]),
        };
        assert!(matches!(
            too_big.validate(),
            Err(EncodeError::InvalidBlockLength {
                id: 7,
                length: 16385
            })
        ));
        for length in [0, MAX_BLOCK_LEN + 1] {
            let r = BlockRequest::new(PieceIndex(0), 0, length);
            assert!(!r.has_valid_length());
            let mut out = Vec::new();
            assert!(Message::Request(r).encode(&mut out).is_err());
            assert!(Message::Cancel(r).encode(&mut out).is_err());
            assert!(Message::RejectRequest(r).encode(&mut out).is_err());
            assert!(out.is_empty(), "nothing written on error");
        }
        let err = Message::Request(BlockRequest::new(PieceIndex(0), 0, 0))
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "request message names a block of 0 bytes, allowed 1..=16384"
        );
    }

    #[test]
    fn refuses_oversized_extended_and_unknown_payloads() {
        let ok = Message::Extended {
            id: 3,
            payload: Bytes::from(vec![0; MAX_EXTENDED_LEN as usize - 2]),
        };
        assert_eq!(ok.encoded_len(), 4 + MAX_EXTENDED_LEN as usize);
        assert!(ok.validate().is_ok());
        let over = Message::Extended {
            id: 3,
            payload: Bytes::from(vec![0; MAX_EXTENDED_LEN as usize - 1]),
        };
        assert!(matches!(
            over.validate(),
            Err(EncodeError::TooLong { id: 20, .. })
        ));
        let over = Message::Unknown {
            id: 30,
            payload: Bytes::from(vec![0; MAX_UNKNOWN_LEN as usize]),
        };
        assert_eq!(
            over.validate().unwrap_err().to_string(),
            "unknown message payload of 16384 bytes is over the limit of 16383"
        );
    }

    #[test]
    fn refuses_unknown_with_a_known_id() {
        for known in [0u8, 5, 7, 9, 13, 17, 20] {
            let m = Message::Unknown {
                id: known,
                payload: Bytes::new(),
            };
            assert_eq!(m.validate(), Err(EncodeError::KnownId { id: known }));
        }
        for unknown in [10u8, 11, 12, 18, 19, 21, 255] {
            let m = Message::Unknown {
                id: unknown,
                payload: Bytes::new(),
            };
            assert!(m.validate().is_ok());
        }
    }

    #[test]
    fn names_and_ids_agree() {
        assert_eq!(Message::KeepAlive.id(), None);
        assert_eq!(Message::HaveNone.id(), Some(id::HAVE_NONE));
        assert_eq!(message_name(id::REJECT_REQUEST), "reject request");
        assert_eq!(message_name(99), "unknown");
        for i in 0..=255u8 {
            assert_eq!(is_known(i), message_name(i) != "unknown", "id {i}");
        }
    }
}
