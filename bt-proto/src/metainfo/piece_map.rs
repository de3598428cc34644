//! The piece-to-file map: where each piece's bytes live in the torrent's files.
//!
//! A torrent's files laid end to end in metainfo order form one byte space; pieces cut that
//! space into `piece length` slices, the last one short. This map answers both directions
//! without per-piece tables: it keeps each file's start offset and finds a byte's file by
//! binary search, so a torrent with 100k pieces and 10k files costs a few hundred kilobytes
//! and each lookup O(log files).
//!
//! Padding files (BEP 47) take part in the layout like any file, so offsets stay right, and
//! their segments are flagged: storage never writes them, and a reader verifying a piece
//! supplies zeros for them. Empty files hold no bytes, so they appear in no segment and touch
//! no piece.
//!
//! ```
//! use bt_proto::PieceIndex;
//! use bt_proto::metainfo::piece_map::{PieceMap, Segment};
//! // Files of 5, 0 and 7 bytes in pieces of 4 bytes.
//! let map = PieceMap::new(4, [(5, false), (0, false), (7, false)]).unwrap();
//! assert_eq!(map.piece_count(), 3);
//! let seg: Vec<Segment> = map.piece_segments(PieceIndex(1)).unwrap().collect();
//! assert_eq!(seg, [
//!     Segment { file: 0, offset: 4, len: 1, padding: false },
//!     Segment { file: 2, offset: 0, len: 3, padding: false },
//! ]);
//! assert_eq!(map.piece_len(PieceIndex(2)), Some(4));
//! assert_eq!(map.file_pieces(1), None);
//! ```

use crate::PieceIndex;

/// Largest total size of a torrent, in bytes (1 PiB): beyond any real torrent, and far enough
/// from `u64::MAX` that no sum of an offset and a piece length can overflow.
pub const MAX_TOTAL_LENGTH: u64 = 1 << 50;

/// Largest piece length accepted (256 MiB). Real torrents use 16 KiB to 16 MiB (a few use
/// 32 or 64 MiB); a piece is held in memory while it is checked, so the cap bounds that.
pub const MAX_PIECE_LENGTH: u32 = 256 * 1024 * 1024;

/// A layout that cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The piece length is 0 or above [`MAX_PIECE_LENGTH`].
    #[error("piece length {0} is not within 1..={MAX_PIECE_LENGTH}")]
    InvalidPieceLength(u64),
    /// The total size overflowed or exceeds [`MAX_TOTAL_LENGTH`].
    #[error("total size exceeds {MAX_TOTAL_LENGTH} bytes")]
    TooLarge,
    /// The files hold no bytes at all, so there is no piece to share.
    #[error("the torrent holds no bytes")]
    Empty,
    /// More pieces than a [`PieceIndex`] can count.
    #[error("{0} pieces is more than a piece index can count")]
    TooManyPieces(u64),
}

/// A range of a piece or block requested outside the torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// No such piece.
    #[error("piece {piece} does not exist (the torrent has {count})")]
    NoSuchPiece {
        /// The piece asked for.
        piece: PieceIndex,
        /// Pieces in the torrent.
        count: u32,
    },
    /// The block runs past the end of its piece.
    #[error("block at {offset}+{len} runs past the end of piece {piece} ({piece_len} bytes)")]
    PastPieceEnd {
        /// The piece.
        piece: PieceIndex,
        /// Offset of the block in the piece.
        offset: u32,
        /// Length of the block.
        len: u32,
        /// Length of the piece.
        piece_len: u32,
    },
}

/// One file's place in the byte space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u64,
    len: u64,
    padding: bool,
}

impl Span {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// A contiguous run of bytes of one file, part of a piece or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Index of the file, in metainfo order.
    pub file: usize,
    /// Offset of the run within the file.
    pub offset: u64,
    /// Length of the run (never 0).
    pub len: u32,
    /// The file is padding: never write it; read it as zeros.
    pub padding: bool,
}

/// The pieces touching one file, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceRange {
    /// The first piece holding bytes of the file.
    pub first: PieceIndex,
    /// The last piece holding bytes of the file.
    pub last: PieceIndex,
}

impl PieceRange {
    /// Whether `piece` is in the range.
    pub fn contains(&self, piece: PieceIndex) -> bool {
        self.first <= piece && piece <= self.last
    }

    /// The pieces in order.
    pub fn iter(&self) -> impl Iterator<Item = PieceIndex> + use<> {
        (self.first.0..=self.last.0).map(PieceIndex)
    }

    /// Number of pieces.
    pub fn len(&self) -> u32 {
        self.last.0 - self.first.0 + 1
    }

    /// Always false: a range holds at least its first piece.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Maps pieces and blocks to file segments and files to pieces. Built from the file lengths
/// in metainfo order; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceMap {
    piece_length: u32,
    total: u64,
    piece_count: u32,
    files: Vec<Span>,
}

impl PieceMap {
    /// Lays out files given as `(length, is_padding)` in order.
    ///
    /// Fails for a piece length of 0 or above [`MAX_PIECE_LENGTH`], a total of 0 or above
    /// [`MAX_TOTAL_LENGTH`], or more pieces than `u32` counts.
    pub fn new(
        piece_length: u32,
        files: impl IntoIterator<Item = (u64, bool)>,
    ) -> Result<Self, LayoutError> {
        if piece_length == 0 || piece_length > MAX_PIECE_LENGTH {
            return Err(LayoutError::InvalidPieceLength(u64::from(piece_length)));
        }
        let mut total: u64 = 0;
        let mut spans = Vec::new();
        for (len, padding) in files {
            let end = total.checked_add(len).ok_or(LayoutError::TooLarge)?;
            if end > MAX_TOTAL_LENGTH {
                return Err(LayoutError::TooLarge);
            }
            spans.push(Span {
                start: total,
                len,
                padding,
            });
            total = end;
        }
        if total == 0 {
            return Err(LayoutError::Empty);
        }
        // Kept for the torrent's life, in each of thousands of torrents: no room for growth.
        spans.shrink_to_fit();
        let count = total.div_ceil(u64::from(piece_length));
        let piece_count = u32::try_from(count).map_err(|_| LayoutError::TooManyPieces(count))?;
        Ok(PieceMap {
            piece_length,
            total,
            piece_count,
            files: spans,
        })
    }

    /// The nominal piece length (every piece but maybe the last).
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Total bytes of all files, padding included: the bytes the pieces cover.
    pub fn total_length(&self) -> u64 {
        self.total
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Number of files, padding included.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Length of the last piece (equal to the piece length when it divides the total).
    pub fn last_piece_length(&self) -> u32 {
        let rem = self.total % u64::from(self.piece_length);
        if rem == 0 {
            self.piece_length
        } else {
            // rem < piece_length, a u32.
            rem as u32
        }
    }

    /// Length of `piece`, or `None` if it does not exist.
    pub fn piece_len(&self, piece: PieceIndex) -> Option<u32> {
        if piece.0 >= self.piece_count {
            None
        } else if piece.0 + 1 == self.piece_count {
            Some(self.last_piece_length())
        } else {
            Some(self.piece_length)
        }
    }

    /// Offset of the first byte of `piece` in the torrent's byte space.
    pub fn piece_offset(&self, piece: PieceIndex) -> Option<u64> {
        (piece.0 < self.piece_count).then(|| u64::from(piece.0) * u64::from(self.piece_length))
    }

    /// Where each byte of `piece` lives, in order.
    pub fn piece_segments(&self, piece: PieceIndex) -> Result<Segments<'_>, RangeError> {
        let len = self.piece_len(piece).ok_or(RangeError::NoSuchPiece {
            piece,
            count: self.piece_count,
        })?;
        self.block_segments(piece, 0, len)
    }

    /// Where each byte of the block `offset..offset + len` of `piece` lives, in order.
    pub fn block_segments(
        &self,
        piece: PieceIndex,
        offset: u32,
        len: u32,
    ) -> Result<Segments<'_>, RangeError> {
        let (Some(piece_len), Some(piece_start)) =
            (self.piece_len(piece), self.piece_offset(piece))
        else {
            return Err(RangeError::NoSuchPiece {
                piece,
                count: self.piece_count,
            });
        };
        if u64::from(offset) + u64::from(len) > u64::from(piece_len) {
            return Err(RangeError::PastPieceEnd {
                piece,
                offset,
                len,
                piece_len,
            });
        }
        let pos = piece_start + u64::from(offset);
        // The first file ending after `pos` holds it; empty files before it are skipped.
        let file = self.files.partition_point(|s| s.end() <= pos);
        Ok(Segments {
            files: &self.files,
            file,
            pos,
            remaining: len,
        })
    }

    /// The pieces holding bytes of file `file`; `None` for an empty file or no such file.
    pub fn file_pieces(&self, file: usize) -> Option<PieceRange> {
        let span = self.files.get(file)?;
        if span.len == 0 {
            return None;
        }
        let pl = u64::from(self.piece_length);
        // Both indexes are below piece_count, a u32.
        let first = (span.start / pl) as u32;
        let last = ((span.end() - 1) / pl) as u32;
        Some(PieceRange {
            first: PieceIndex(first),
            last: PieceIndex(last),
        })
    }

    /// Offset of file `file`'s first byte in the torrent's byte space.
    pub fn file_offset(&self, file: usize) -> Option<u64> {
        self.files.get(file).map(|s| s.start)
    }

    /// Length of file `file`.
    pub fn file_len(&self, file: usize) -> Option<u64> {
        self.files.get(file).map(|s| s.len)
    }

    /// Whether file `file` is padding.
    pub fn is_padding(&self, file: usize) -> Option<bool> {
        self.files.get(file).map(|s| s.padding)
    }
}

/// The segments of a piece or block, in order; see [`PieceMap::block_segments`].
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    files: &'a [Span],
    file: usize,
    pos: u64,
    remaining: u32,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        while self.remaining > 0 {
            let span = *self.files.get(self.file)?;
            let index = self.file;
            self.file += 1;
            if span.end() <= self.pos {
                continue;
            }
            let offset = self.pos - span.start;
            let len = (span.end() - self.pos).min(u64::from(self.remaining)) as u32;
            self.pos += u64::from(len);
            self.remaining -= len;
            return Some(Segment {
                file: index,
                offset,
                len,
                padding: span.padding,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segs(map: &PieceMap, p: u32) -> Vec<(usize, u64, u32)> {
        map.piece_segments(PieceIndex(p))
            .unwrap()
            .map(|s| (s.file, s.offset, s.len))
            .collect()
    }

    #[test]
    fn single_file() {
        let map = PieceMap::new(16384, [(163_783, false)]).unwrap();
        assert_eq!(map.piece_count(), 10);
        assert_eq!(map.last_piece_length(), 163_783 - 9 * 16384);
        assert_eq!(segs(&map, 9), [(0, 9 * 16384, 163_783 - 9 * 16384)]);
        assert_eq!(
            map.file_pieces(0),
            Some(PieceRange {
                first: PieceIndex(0),
                last: PieceIndex(9)
            })
        );
        assert_eq!(map.piece_len(PieceIndex(10)), None);
        assert!(matches!(
            map.piece_segments(PieceIndex(10)),
            Err(RangeError::NoSuchPiece { count: 10, .. })
        ));
    }

    #[test]
    fn exact_multiple_has_full_last_piece() {
        let map = PieceMap::new(4, [(8, false)]).unwrap();
        assert_eq!(map.piece_count(), 2);
        assert_eq!(map.last_piece_length(), 4);
    }

    #[test]
    fn files_spanning_pieces_and_empty_files() {
        // 3 | 0 | 6 | 0 | 2 with pieces of 4: bytes 0..3 f0, 3..9 f2, 9..11 f4.
        let map = PieceMap::new(
            4,
            [(3, false), (0, false), (6, false), (0, false), (2, false)],
        )
        .unwrap();
        assert_eq!(map.total_length(), 11);
        assert_eq!(segs(&map, 0), [(0, 0, 3), (2, 0, 1)]);
        assert_eq!(segs(&map, 1), [(2, 1, 4)]);
        assert_eq!(segs(&map, 2), [(2, 5, 1), (4, 0, 2)]);
        assert_eq!(map.file_pieces(1), None);
        assert_eq!(map.file_pieces(3), None);
        assert_eq!(
            map.file_pieces(2),
            Some(PieceRange {
                first: PieceIndex(0),
                last: PieceIndex(2)
            })
        );
        assert_eq!(map.file_pieces(5), None);
    }

    #[test]
    fn blocks_and_padding() {
        let map = PieceMap::new(8, [(5, false), (3, true), (8, false)]).unwrap();
        let b: Vec<Segment> = map.block_segments(PieceIndex(0), 4, 4).unwrap().collect();
        assert_eq!(
            b,
            [
                Segment {
                    file: 0,
                    offset: 4,
                    len: 1,
                    padding: false
                },
                Segment {
                    file: 1,
                    offset: 0,
                    len: 3,
                    padding: true
                },
            ]
        );
        assert_eq!(
            map.block_segments(PieceIndex(1), 4, 5).unwrap_err(),
            RangeError::PastPieceEnd {
                piece: PieceIndex(1),
                offset: 4,
                len: 5,
                piece_len: 8
            }
        );
        assert_eq!(map.block_segments(PieceIndex(1), 8, 0).unwrap().count(), 0);
        assert_eq!(
            map.block_segments(PieceIndex(1), u32::MAX, u32::MAX)
                .unwrap_err(),
            RangeError::PastPieceEnd {
                piece: PieceIndex(1),
                offset: u32::MAX,
                len: u32::MAX,
                piece_len: 8
            }
        );
    }

    #[test]
    fn layout_errors() {
        assert_eq!(
            PieceMap::new(0, [(1, false)]),
            Err(LayoutError::InvalidPieceLength(0))
        );
        assert_eq!(
            PieceMap::new(MAX_PIECE_LENGTH + 1, [(1, false)]),
            Err(LayoutError::InvalidPieceLength(
                u64::from(MAX_PIECE_LENGTH) + 1
            ))
        );
        assert_eq!(PieceMap::new(4, [(0, false)]), Err(LayoutError::Empty));
        assert_eq!(PieceMap::new(4, []), Err(LayoutError::Empty));
        assert_eq!(
            PieceMap::new(4, [(u64::MAX, false), (2, false)]),
            Err(LayoutError::TooLarge)
        );
        assert_eq!(
            PieceMap::new(4, [(MAX_TOTAL_LENGTH, false), (1, false)]),
            Err(LayoutError::TooLarge)
        );
        assert_eq!(
            PieceMap::new(1, [(1 << 33, false)]),
            Err(LayoutError::TooManyPieces(1 << 33))
        );
    }

    #[test]
    fn many_pieces_and_files_are_fast() {
        // 10k files of varying size, ~100k pieces: every lookup is a binary search.
        let files: Vec<(u64, bool)> = (0..10_000u64).map(|i| (i * 331 % 700_000, false)).collect();
        let map = PieceMap::new(16384, files).unwrap();
        assert!(map.piece_count() > 100_000, "{}", map.piece_count());
        let mut covered = 0u64;
        for p in 0..map.piece_count() {
            covered += map
                .piece_segments(PieceIndex(p))
                .unwrap()
                .map(|s| u64::from(s.len))
                .sum::<u64>();
        }
        assert_eq!(covered, map.total_length());
    }

    fn arb_layout() -> impl Strategy<Value = (u32, Vec<(u64, bool)>)> {
        (
            1u32..40,
            proptest::collection::vec((0u64..100, any::<bool>()), 1..12),
        )
            .prop_filter("empty", |(_, f)| f.iter().any(|(l, _)| *l > 0))
    }

    proptest! {
        /// Segments agree with a byte-by-byte model of the layout.
        #[test]
        fn segments_match_model((pl, files) in arb_layout()) {
            let map = PieceMap::new(pl, files.clone()).unwrap();
            // Model: for each torrent byte, (file, offset in file).
            let mut model = Vec::new();
            for (i, (len, _)) in files.iter().enumerate() {
                for off in 0..*len { model.push((i, off)); }
            }
            prop_assert_eq!(map.total_length(), model.len() as u64);
            prop_assert_eq!(u64::from(map.piece_count()), (model.len() as u64).div_ceil(u64::from(pl)));
            let mut pos = 0usize;
            for p in 0..map.piece_count() {
                let mut bytes = Vec::new();
                for s in map.piece_segments(PieceIndex(p)).unwrap() {
                    prop_assert!(s.len > 0);
                    prop_assert_eq!(s.padding, files[s.file].1);
                    for k in 0..u64::from(s.len) { bytes.push((s.file, s.offset + k)); }
                }
                prop_assert_eq!(bytes.len() as u32, map.piece_len(PieceIndex(p)).unwrap());
                prop_assert_eq!(&bytes[..], &model[pos..pos + bytes.len()]);
                pos += bytes.len();
            }
            prop_assert_eq!(pos, model.len());
            // Each file's piece range is exactly the pieces whose segments name it.
            for f in 0..files.len() {
                let touching: Vec<u32> = (0..map.piece_count())
                    .filter(|&p| map.piece_segments(PieceIndex(p)).unwrap().any(|s| s.file == f))
                    .collect();
                match map.file_pieces(f) {
                    None => prop_assert!(touching.is_empty()),
                    Some(r) => {
                        let range: Vec<u32> = r.iter().map(|p| p.0).collect();
                        prop_assert_eq!(range, touching);
                    }
                }
            }
        }

        #[test]
        fn blocks_are_slices_of_pieces((pl, files) in arb_layout(), p in 0u32..400, a in 0u32..40, b in 0u32..40) {
            let map = PieceMap::new(pl, files).unwrap();
            let piece = PieceIndex(p % map.piece_count());
            let plen = map.piece_len(piece).unwrap();
            let (lo, hi) = (a.min(b) % (plen + 1), a.max(b) % (plen + 1));
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let expand = |it: Segments<'_>| -> Vec<(usize, u64)> {
                it.flat_map(|s| (0..u64::from(s.len)).map(move |k| (s.file, s.offset + k))).collect()
            };
            let whole = expand(map.piece_segments(piece).unwrap());
            let block = expand(map.block_segments(piece, lo, hi - lo).unwrap());
            prop_assert_eq!(&block[..], &whole[lo as usize..hi as usize]);
        }
    }
}
