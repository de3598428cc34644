//! A fixed-length set of pieces in wire bit order (BEP 3: the high bit of the first byte is
//! piece 0), so a [`Bitfield`] is sent and received without conversion.

use crate::PieceIndex;

/// The wire form of a bitfield did not fit the torrent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    /// The byte length must be exactly `ceil(pieces / 8)`.
    #[error("bitfield is {found} bytes, expected {expected} for {pieces} pieces")]
    WrongLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        found: usize,
        /// Pieces in the torrent.
        pieces: u32,
    },
    /// Bits past the last piece must be zero.
    #[error("bitfield has spare bits set past piece {pieces}")]
    SpareBitsSet {
        /// Pieces in the torrent.
        pieces: u32,
    },
}

/// Which pieces of a torrent are present.
///
/// ```
/// use bt_proto::{Bitfield, PieceIndex};
/// let mut b = Bitfield::new(10);
/// b.set(PieceIndex(0), true);
/// b.set(PieceIndex(9), true);
/// assert_eq!(b.as_bytes(), &[0b1000_0000, 0b0100_0000]);
/// assert_eq!(b.count(), 2);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    /// All pieces absent.
    pub fn new(pieces: u32) -> Self {
        Bitfield {
            bytes: vec![0; Self::byte_len(pieces)],
            len: pieces,
            ones: 0,
        }
    }

    /// All pieces present.
    pub fn full(pieces: u32) -> Self {
        let mut b = Bitfield::new(pieces);
        for i in 0..pieces {
            b.set(PieceIndex(i), true);
        }
        b
    }

    /// Bytes needed on the wire for `pieces` pieces.
    pub fn byte_len(pieces: u32) -> usize {
        (pieces as usize).div_ceil(8)
    }

    /// Parses the wire form, which must be exactly the right length with zero spare bits.
    pub fn from_bytes(bytes: &[u8], pieces: u32) -> Result<Self, BitfieldError> {
        let expected = Self::byte_len(pieces);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                expected,
                found: bytes.len(),
                pieces,
            });
        }
        let spare = (expected * 8) as u64 - u64::from(pieces);
        if spare > 0 {
            let mask = (1u8 << spare) - 1;
            if bytes.last().is_some_and(|b| b & mask != 0) {
                return Err(BitfieldError::SpareBitsSet { pieces });
            }
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len: pieces,
            ones,
        })
    }

    /// The wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces this bitfield covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when it covers no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `i` is present; out-of-range indexes are absent.
    pub fn get(&self, i: PieceIndex) -> bool {
        if i.0 >= self.len {
            return false;
        }
        let byte = self.bytes.get((i.0 / 8) as usize).copied().unwrap_or(0);
        byte & (0x80 >> (i.0 % 8)) != 0
    }

    /// Sets piece `i`; returns whether it changed. Out-of-range indexes are ignored.
    pub fn set(&mut self, i: PieceIndex, value: bool) -> bool {
        if i.0 >= self.len {
            return false;
        }
        let mask = 0x80u8 >> (i.0 % 8);
        let Some(byte) = self.bytes.get_mut((i.0 / 8) as usize) else {
            return false;
        };
        let was = *byte & mask != 0;
        if was == value {
            return false;
        }
        if value {
            *byte |= mask;
            self.ones += 1;
        } else {
            *byte &= !mask;
            self.ones -= 1;
        }
        true
    }

    /// Number of pieces present.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// True when every piece is present.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Indexes of the pieces present, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        (0..self.len).map(PieceIndex).filter(|&i| self.get(i))
    }
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{} ", self.ones, self.len)?;
        for i in 0..self.len.min(64) {
            f.write_str(if self.get(PieceIndex(i)) { "1" } else { "0" })?;
        }
        if self.len > 64 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_wrong_length_and_spare_bits() {
        assert!(matches!(
            Bitfield::from_bytes(&[0, 0], 7),
            Err(BitfieldError::WrongLength { expected: 1, .. })
        ));
        assert!(matches!(
            Bitfield::from_bytes(&[0b0000_0001], 7),
            Err(BitfieldError::SpareBitsSet { pieces: 7 })
        ));
        assert!(Bitfield::from_bytes(&[0b1111_1110], 7).unwrap().is_full());
        assert!(Bitfield::from_bytes(&[], 0).unwrap().is_full());
    }

    proptest! {
        #[test]
        fn set_get_count_agree(len in 0u32..300, ops in proptest::collection::vec((0u32..320, any::<bool>()), 0..200)) {
            let mut b = Bitfield::new(len);
            let mut model = vec![false; len as usize];
            for (i, v) in ops {
                b.set(PieceIndex(i), v);
                if let Some(m) = model.get_mut(i as usize) { *m = v; }
            }
            for i in 0..len { prop_assert_eq!(b.get(PieceIndex(i)), model[i as usize]); }
            prop_assert_eq!(b.count() as usize, model.iter().filter(|v| **v).count());
            let back = Bitfield::from_bytes(b.as_bytes(), len).unwrap();
            prop_assert_eq!(back, b);
        }
    }
}
