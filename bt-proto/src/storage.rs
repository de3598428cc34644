//! What every adapter does with pieces and files that is not I/O: verifying a piece's blocks,
//! cutting a piece or block into per-file writes and reads, and naming files under a base
//! directory. The adapters (tokio, smol, the simulator) only perform the reads and writes.
//!
//! ```
//! use bt_proto::storage::{verify_blocks, write_plan};
//! use bt_proto::metainfo::piece_map::PieceMap;
//! use bt_proto::{PieceHash, PieceIndex, sha1};
//! use bytes::Bytes;
//!
//! // Two files of 3 and 5 bytes in pieces of 4: piece 0 is "abc" of file 0 and "d" of file 1.
//! let map = PieceMap::new(4, [(3, false), (5, false)]).unwrap();
//! let blocks = [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
//! assert!(verify_blocks(&blocks, &PieceHash(sha1(b"abcd"))));
//! let plan = write_plan(&map, PieceIndex(0), &blocks).unwrap();
//! assert_eq!(plan.len(), 2);
//! assert_eq!((plan[0].file, plan[0].offset), (0, 0));
//! assert_eq!(plan[0].bufs, [Bytes::from_static(b"ab"), Bytes::from_static(b"c")]);
//! assert_eq!((plan[1].file, plan[1].offset), (1, 0));
//! assert_eq!(plan[1].bufs, [Bytes::from_static(b"d")]);
//! ```

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::metainfo::FileEntry;
use crate::metainfo::piece_map::{PieceMap, RangeError, Segment};
use crate::{PieceHash, PieceIndex};

/// Whether the concatenated blocks hash to `expected`.
pub fn verify_blocks(blocks: &[Bytes], expected: &PieceHash) -> bool {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for b in blocks {
        h.update(b);
    }
    let digest: [u8; 20] = h.finalize().into();
    digest == expected.0
}

/// One positional write: these buffers, in order, at `offset` of file `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    /// Index of the file in metainfo order.
    pub file: usize,
    /// Byte offset in the file.
    pub offset: u64,
    /// The bytes, as slices of the piece's blocks (no copy).
    pub bufs: Vec<Bytes>,
}

/// A piece's blocks were not the piece's length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The piece is not in the torrent.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The blocks add up to another length than the piece's.
    #[error("piece {piece} has {found} bytes of blocks, expected {expected}")]
    Length {
        /// The piece.
        piece: PieceIndex,
        /// Its length.
        expected: u64,
        /// The blocks' total.
        found: u64,
    },
}

/// The writes that store a verified piece: one per file it touches, padding files skipped.
pub fn write_plan(
    map: &PieceMap,
    piece: PieceIndex,
    blocks: &[Bytes],
) -> Result<Vec<FileWrite>, PlanError> {
    let expected = map.piece_len(piece).map(u64::from).unwrap_or(0);
    let found: u64 = blocks.iter().map(|b| b.len() as u64).sum();
    if found != expected {
        return Err(PlanError::Length {
            piece,
            expected,
            found,
        });
    }
    let mut writes = Vec::new();
    let mut blocks = blocks.iter();
    let mut current: Option<Bytes> = None;
    for seg in map.piece_segments(piece)? {
        let mut need = seg.len as usize;
        let mut bufs = Vec::new();
        while need > 0 {
            let mut buf = match current.take() {
                Some(b) if !b.is_empty() => b,
                _ => match blocks.next() {
                    Some(b) => b.clone(),
                    None => break,
                },
            };
            let take = need.min(buf.len());
            let head = buf.split_to(take);
            need -= take;
            bufs.push(head);
            current = Some(buf);
        }
        if !seg.padding {
            writes.push(FileWrite {
                file: seg.file,
                offset: seg.offset,
                bufs,
            });
        }
    }
    Ok(writes)
}

/// The reads that assemble a block (or a whole piece): file segments in order; padding
/// segments are to be filled with zeros, not read.
pub fn read_plan(
    map: &PieceMap,
    piece: PieceIndex,
    offset: u32,
    length: u32,
) -> Result<Vec<Segment>, RangeError> {
    Ok(map.block_segments(piece, offset, length)?.collect())
}

/// Where a file of the torrent lives under `base`. The components were checked when the
/// metainfo was parsed (no `..`, no separators, no absolute paths), so the result is always
/// inside `base` lexically; adapters still check symlinks where they open the file.
pub fn file_path(base: &Path, file: &FileEntry) -> PathBuf {
    base.join(file.path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn plan_covers_the_piece_exactly(
            files in proptest::collection::vec((0u64..50, any::<bool>()), 1..8),
            piece_len in 1u32..40,
            cuts in proptest::collection::vec(1usize..20, 0..10),
        ) {
            prop_assume!(files.iter().map(|f| f.0).sum::<u64>() > 0);
            let map = PieceMap::new(piece_len, files.clone()).unwrap();
            let total: u64 = files.iter().map(|f| f.0).sum();
            let content: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            for p in 0..map.piece_count() {
                let piece = PieceIndex(p);
                let start = map.piece_offset(piece).unwrap() as usize;
                let len = map.piece_len(piece).unwrap() as usize;
                let data = &content[start..start + len];
                // Cut the piece into blocks at arbitrary places.
                let mut blocks = Vec::new();
                let mut at = 0;
                for c in &cuts {
                    if at + c >= len { break; }
                    blocks.push(Bytes::copy_from_slice(&data[at..at + c]));
                    at += c;
                }
                blocks.push(Bytes::copy_from_slice(&data[at..]));
                let plan = write_plan(&map, piece, &blocks).unwrap();
                for w in plan {
                    let file_start = map.file_offset(w.file).unwrap();
                    let bytes: Vec<u8> = w.bufs.concat();
                    let at = (file_start + w.offset) as usize;
                    prop_assert_eq!(&content[at..at + bytes.len()], &bytes[..]);
                    prop_assert!(!map.is_padding(w.file).unwrap());
                }
                prop_assert!(verify_blocks(&blocks, &PieceHash(crate::sha1(data))));
            }
        }
    }

    #[test]
    fn wrong_length_is_refused() {
        let map = PieceMap::new(4, [(8, false)]).unwrap();
        let err = write_plan(&map, PieceIndex(0), &[Bytes::from_static(b"abc")]).unwrap_err();
        assert!(matches!(
            err,
            PlanError::Length {
                expected: 4,
                found: 3,
                ..
            }
        ));
        assert!(write_plan(&map, PieceIndex(9), &[]).is_err());
    }
}
