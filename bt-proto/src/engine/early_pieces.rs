//! What a peer says it has before we know how many pieces there are: while a torrent added
//! by magnet link fetches its metadata, its peers' piece summaries and HAVEs are kept here,
//! and checked against the torrent when it arrives.

use bytes::Bytes;

use super::ProtocolViolation;
use super::metadata_fetch::MAX_METADATA_SIZE;
use crate::bitfield::BitfieldError;
use crate::{Bitfield, PieceIndex};

/// Most pieces a torrent fetched by magnet link can have: each takes a 20-byte hash in
/// metadata of at most [`MAX_METADATA_SIZE`]. A HAVE beyond it cannot be true, and it bounds
/// what one peer's HAVEs cost before the count is known.
pub const MAX_PIECES_BEFORE_METADATA: u32 = (MAX_METADATA_SIZE / 20) as u32;

/// A peer's pieces as it told them before the piece count was known.
#[derive(Debug, Clone, Default)]
pub(crate) struct EarlyPieces {
    /// HAVE ALL came.
    all: bool,
    /// The BITFIELD that came first, as sent: its length is checked when the count is known.
    summary: Option<Bytes>,
    /// Pieces from HAVEs and later BITFIELDs, a bit each, grown as needed.
    more: Vec<u8>,
}

impl EarlyPieces {
    /// HAVE ALL.
    pub fn have_all(&mut self) {
        self.all = true;
    }

    /// The first BITFIELD.
    pub fn set_summary(&mut self, bytes: Bytes) -> Result<(), ProtocolViolation> {
        check_len(bytes.len())?;
        self.summary = Some(bytes);
        Ok(())
    }

    /// A BITFIELD after other messages: its pieces are added, as HAVEs would be.
    pub fn add_bitfield(&mut self, bytes: &[u8]) -> Result<(), ProtocolViolation> {
        check_len(bytes.len())?;
        if self.more.len() < bytes.len() {
            self.more.resize(bytes.len(), 0);
        }
        for (m, b) in self.more.iter_mut().zip(bytes) {
            *m |= b;
        }
        Ok(())
    }

    /// A HAVE.
    pub fn add(&mut self, piece: PieceIndex) -> Result<(), ProtocolViolation> {
        if piece.0 >= MAX_PIECES_BEFORE_METADATA {
            return Err(ProtocolViolation::HaveOutOfRange {
                piece,
                pieces: MAX_PIECES_BEFORE_METADATA,
            });
        }
        let byte = piece.as_usize() / 8;
        if self.more.len() <= byte {
            self.more.resize(byte + 1, 0);
        }
        if let Some(b) = self.more.get_mut(byte) {
            *b |= 0x80 >> (piece.0 % 8);
        }
        Ok(())
    }

    /// The peer's pieces of a torrent of `pieces` pieces, held to the rules its messages
    /// would have met had the count been known.
    pub fn into_bitfield(self, pieces: u32) -> Result<Bitfield, ProtocolViolation> {
        let mut b = if self.all {
            Bitfield::full(pieces)
        } else if let Some(summary) = &self.summary {
            Bitfield::from_bytes(summary, pieces)?
        } else {
            Bitfield::new(pieces)
        };
        for (i, byte) in self.more.iter().enumerate() {
            for bit in 0..8u32 {
                if byte & (0x80 >> bit) == 0 {
                    continue;
                }
                let piece =
                    PieceIndex(u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(8) + bit);
                if piece.0 >= pieces {
                    return Err(ProtocolViolation::HaveOutOfRange { piece, pieces });
                }
                b.set(piece, true);
            }
        }
        Ok(b)
    }
}

fn check_len(len: usize) -> Result<(), ProtocolViolation> {
    let max = Bitfield::byte_len(MAX_PIECES_BEFORE_METADATA);
    if len > max {
        return Err(BitfieldError::WrongLength {
            expected: max,
            found: len,
            pieces: MAX_PIECES_BEFORE_METADATA,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haves_and_summaries_become_the_torrents_bitfield() {
        let mut e = EarlyPieces::default();
        e.set_summary(Bytes::from_static(&[0b1010_0000])).unwrap();
        e.add(PieceIndex(1)).unwrap();
        e.add_bitfield(&[0b0000_1000]).unwrap();
        let b = e.into_bitfield(5).unwrap();
        let ones: Vec<u32> = b.iter_ones().map(|p| p.0).collect();
        assert_eq!(ones, [0, 1, 2, 4]);
    }

    #[test]
    fn what_does_not_fit_the_torrent_is_a_violation() {
        let mut e = EarlyPieces::default();
        e.add(PieceIndex(9)).unwrap();
        assert_eq!(
            e.into_bitfield(8),
            Err(ProtocolViolation::HaveOutOfRange {
                piece: PieceIndex(9),
                pieces: 8
            })
        );
        let mut e = EarlyPieces::default();
        e.set_summary(Bytes::from_static(&[0xff, 0xff])).unwrap();
        assert!(matches!(
            e.into_bitfield(8),
            Err(ProtocolViolation::Bitfield(_))
        ));
        let mut e = EarlyPieces::default();
        assert!(e.add(PieceIndex(MAX_PIECES_BEFORE_METADATA)).is_err());
        let too_long = vec![0u8; Bitfield::byte_len(MAX_PIECES_BEFORE_METADATA) + 1];
        assert!(e.add_bitfield(&too_long).is_err());
        assert!(e.set_summary(Bytes::from(too_long)).is_err());
        e.have_all();
        assert!(e.into_bitfield(3).unwrap().is_full());
    }
}
