//! Metadata exchange (BEP 9): the torrent's info dictionary sent in 16 KiB pieces.
//!
//! A message is a bencoded dictionary with `msg_type` (0 request, 1 data, 2 reject) and
//! `piece`; a data message adds `total_size` and is followed, outside the dictionary, by the
//! piece's bytes. Decoding is strict about what the engine acts on: `piece` and `total_size`
//! must be integers in range, a data piece holds 1 to [`METADATA_PIECE_LEN`] bytes, and nothing
//! may follow a request or a reject. A `msg_type` we do not know is
//! [`MetadataError::UnknownType`], which BEP 9 asks receivers to ignore.
//!
//! ```
//! use bt_proto::extensions::ut_metadata::MetadataMessage;
//!
//! let request = MetadataMessage::Request { piece: 0 };
//! assert_eq!(request.encode(), b"d8:msg_typei0e5:piecei0ee");
//! assert_eq!(MetadataMessage::decode(b"d8:msg_typei0e5:piecei0ee").unwrap(), request);
//! ```

use bytes::Bytes;

use crate::bencode::{self, Bencode, Value};

/// Bytes per metadata piece; only the last piece of the metadata is shorter (BEP 9).
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// One `ut_metadata` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// Asks for a piece of the metadata.
    Request {
        /// The piece's index.
        piece: u32,
    },
    /// A piece of the metadata.
    Data {
        /// The piece's index.
        piece: u32,
        /// Length of the whole metadata.
        total_size: u64,
        /// The piece's bytes.
        data: Bytes,
    },
    /// The sender will not send that piece (it lacks the metadata, or does not want to).
    Reject {
        /// The piece's index.
        piece: u32,
    },
}

/// Why a `ut_metadata` message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The dictionary is not bencode.
    #[error("ut_metadata: {0}")]
    Bencode(#[from] bencode::DecodeError),
    /// Bencode, but not a dictionary.
    #[error("ut_metadata message is not a dictionary")]
    NotADict,
    /// A key it must have is missing or not an integer.
    #[error("ut_metadata message lacks an integer `{0}`")]
    Missing(&'static str),
    /// A `msg_type` BEP 9 does not define (to be ignored, for extensions yet to come).
    #[error("ut_metadata message of unknown type {0}")]
    UnknownType(i64),
    /// A `piece` that is no piece index.
    #[error("ut_metadata piece {0} out of range")]
    BadPiece(i64),
    /// A `total_size` that is no length.
    #[error("ut_metadata total_size {0} out of range")]
    BadTotalSize(i64),
    /// A data piece that is empty or longer than [`METADATA_PIECE_LEN`].
    #[error("ut_metadata data piece of {0} bytes")]
    BadDataLen(usize),
    /// Bytes after the dictionary of a request or reject.
    #[error("{0} bytes after a ut_metadata request or reject")]
    TrailingBytes(usize),
}

impl MetadataMessage {
    /// Reads one message's payload (what follows the extended message id).
    pub fn decode(payload: &[u8]) -> Result<Self, MetadataError> {
        let (dict, used) = bencode::decode_prefix(payload)?;
        if dict.as_dict().is_none() {
            return Err(MetadataError::NotADict);
        }
        let int = |key: &'static str| {
            dict.get(key.as_bytes())
                .and_then(Value::as_int)
                .ok_or(MetadataError::Missing(key))
        };
        let msg_type = int("msg_type")?;
        if !(0..=2).contains(&msg_type) {
            return Err(MetadataError::UnknownType(msg_type));
        }
        let piece = int("piece")?;
        let piece = u32::try_from(piece).map_err(|_| MetadataError::BadPiece(piece))?;
        let rest = payload.get(used..).unwrap_or_default();
        if msg_type == 1 {
            let total = int("total_size")?;
            let total_size = u64::try_from(total)
                .ok()
                .filter(|n| *n > 0)
                .ok_or(MetadataError::BadTotalSize(total))?;
            if rest.is_empty() || rest.len() > METADATA_PIECE_LEN {
                return Err(MetadataError::BadDataLen(rest.len()));
            }
            return Ok(MetadataMessage::Data {
                piece,
                total_size,
                data: Bytes::copy_from_slice(rest),
            });
        }
        if !rest.is_empty() {
            return Err(MetadataError::TrailingBytes(rest.len()));
        }
        Ok(if msg_type == 0 {
            MetadataMessage::Request { piece }
        } else {
            MetadataMessage::Reject { piece }
        })
    }

    /// The message's payload: its dictionary, and for data the piece's bytes after it.
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, piece),
            MetadataMessage::Data { piece, .. } => (1, piece),
            MetadataMessage::Reject { piece } => (2, piece),
        };
        let mut d = Bencode::dict()
            .with("msg_type", msg_type)
            .with("piece", *piece);
        if let MetadataMessage::Data { total_size, .. } = self {
            d.insert("total_size", i64::try_from(*total_size).unwrap_or(i64::MAX));
        }
        let mut out = d.encode();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }
}

/// How many pieces metadata of `size` bytes is sent in.
pub fn piece_count(size: usize) -> usize {
    size.div_ceil(METADATA_PIECE_LEN)
}

/// Piece `piece` of `metadata`: [`METADATA_PIECE_LEN`] bytes, the last one shorter; `None`
/// past the end.
pub fn piece_of(metadata: &[u8], piece: u32) -> Option<&[u8]> {
    let start = usize::try_from(piece)
        .ok()?
        .checked_mul(METADATA_PIECE_LEN)?;
    if start >= metadata.len() {
        return None;
    }
    let end = start.saturating_add(METADATA_PIECE_LEN).min(metadata.len());
    metadata.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for m in [
            MetadataMessage::Request { piece: 7 },
            MetadataMessage::Reject { piece: u32::MAX },
            MetadataMessage::Data {
                piece: 1,
                total_size: 20_000,
                data: Bytes::from(vec![b'e'; 20_000 - METADATA_PIECE_LEN]),
            },
        ] {
            assert_eq!(MetadataMessage::decode(&m.encode()).unwrap(), m);
        }
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 3,
            data: Bytes::from_static(b"abc"),
        };
        assert_eq!(
            data.encode(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"
        );
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        use MetadataError as E;
        let decode = |b: &[u8]| MetadataMessage::decode(b);
        assert!(matches!(decode(b"d8:msg_type"), Err(E::Bencode(_))));
        assert_eq!(decode(b"i0e"), Err(E::NotADict));
        assert_eq!(decode(b"d5:piecei0ee"), Err(E::Missing("msg_type")));
        assert_eq!(decode(b"d8:msg_typei0ee"), Err(E::Missing("piece")));
        assert_eq!(
            decode(b"d8:msg_typei0e5:piece1:xe"),
            Err(E::Missing("piece"))
        );
        assert_eq!(decode(b"d8:msg_typei3e5:piecei0ee"), Err(E::UnknownType(3)));
        assert_eq!(decode(b"d8:msg_typei0e5:piecei-1ee"), Err(E::BadPiece(-1)));
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei4294967296ee"),
            Err(E::BadPiece(1 << 32))
        );
        assert_eq!(
            decode(b"d8:msg_typei2e5:piecei0eexy"),
            Err(E::TrailingBytes(2))
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0ee"),
            Err(E::Missing("total_size"))
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0e10:total_sizei0eex"),
            Err(E::BadTotalSize(0))
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0e10:total_sizei5ee"),
            Err(E::BadDataLen(0))
        );
        let mut long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        long.extend(vec![0; METADATA_PIECE_LEN + 1]);
        assert_eq!(decode(&long), Err(E::BadDataLen(METADATA_PIECE_LEN + 1)));
    }

    #[test]
    fn pieces_tile_the_metadata() {
        let metadata: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        assert_eq!(piece_count(metadata.len()), 3);
        assert_eq!(piece_count(METADATA_PIECE_LEN), 1);
        let pieces: Vec<&[u8]> = (0..3).map(|i| piece_of(&metadata, i).unwrap()).collect();
        assert_eq!(pieces[2].len(), 40_000 - 2 * METADATA_PIECE_LEN);
        assert_eq!(pieces.concat(), metadata);
        assert_eq!(piece_of(&metadata, 3), None);
        assert_eq!(piece_of(&metadata, u32::MAX), None);
    }
}
