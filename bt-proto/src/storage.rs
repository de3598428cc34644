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

use crate::metainfo::path::{FilePath, PathClash, check_unique_ignoring_case};
use crate::metainfo::piece_map::{PieceMap, RangeError, Segment};
use crate::metainfo::{FileEntry, Metainfo};
use crate::resume::{FileStamp, ResumeData};
use crate::{Bitfield, InfoHash, IoFailure, PieceHash, PieceIndex};

/// Directory under a torrent's base directory where adapters keep resume data by default:
/// hidden, so it does not look like part of the download, and beside the data it describes.
pub const RESUME_DIR: &str = ".bt";

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

/// What a storage operation was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageOp {
    /// Opening a file to read it.
    Open,
    /// Creating a file or a directory, or opening a file to write it.
    Create,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// Flushing written data to the device.
    Flush,
}

impl std::fmt::Display for StorageOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageOp::Open => "open",
            StorageOp::Create => "create",
            StorageOp::Read => "read",
            StorageOp::Write => "write",
            StorageOp::Flush => "flush",
        })
    }
}

/// Why a torrent's data could not be read or written, as the adapter reports it to the
/// engine (in its block-read and piece-stored inputs) and the engine to the application (in
/// its storage-failed event).
///
/// ```
/// use std::io::ErrorKind;
/// use bt_proto::IoFailure;
/// use bt_proto::storage::{StorageError, StorageOp};
/// let e = StorageError::Io {
///     op: StorageOp::Write,
///     path: "dl/t/a.bin".into(),
///     error: IoFailure::new(ErrorKind::StorageFull, "No space left on device"),
/// };
/// assert_eq!(e.to_string(), "storage error: cannot write dl/t/a.bin: No space left on device");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A file operation failed: disk full, file too large, permission denied, ...
    #[error("storage error: cannot {op} {}: {error}", path.display())]
    Io {
        /// What was being done.
        op: StorageOp,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        error: IoFailure,
    },
    /// A file was not opened because its path leads outside the torrent's base directory
    /// through a symbolic link (where the system cannot tell where a link leads: because it
    /// passes through one at all). Nothing outside was read or written.
    #[error(
        "storage error: cannot {op} {}: a symbolic link on its path leads outside the download directory",
        path.display()
    )]
    OutsideBase {
        /// What was being done.
        op: StorageOp,
        /// The file, as the torrent places it under the base directory.
        path: PathBuf,
    },
    /// Fewer bytes than asked for: the files are shorter than the torrent says.
    #[error("storage error: short read of piece {piece} at {offset}: {got} of {wanted} bytes")]
    ShortRead {
        /// The piece.
        piece: PieceIndex,
        /// Where the read starts in the piece.
        offset: u32,
        /// Bytes asked for.
        wanted: u32,
        /// Bytes read.
        got: usize,
    },
    /// The piece or block is not the torrent's (a read or write plan could not be made).
    #[error("storage error: {0}")]
    Plan(PlanError),
    /// A storage that is not files under a directory (the simulator's disk, an application's
    /// own) failed; its own words.
    #[error("storage error: {0}")]
    Backend(String),
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

/// Why a torrent's files cannot be laid out under a base directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A file would be written in [`RESUME_DIR`], where resume data is kept: a torrent named
    /// `.bt` could overwrite another torrent's resume file.
    #[error("file {0} would be written in {RESUME_DIR}, where resume data is kept")]
    ResumeDir(FilePath),
    /// Two files would be one (or one a directory of the other), because the file system of
    /// the base directory ignores case.
    #[error("{0}, and the file system ignores case")]
    CaseClash(PathClash),
}

/// Checks that `meta`'s files can be laid out under a base directory whose file system
/// ignores case or not, before anything is written: no file in [`RESUME_DIR`] (compared
/// ignoring case where the file system does) and, where case is ignored, no two files that
/// would be one. Padding files are never written and are left out.
pub fn check_layout(meta: &Metainfo, ignores_case: bool) -> Result<(), LayoutError> {
    let files = meta.files().iter().filter(|f| !f.is_padding());
    for f in files.clone() {
        let first = f.path.components().first().map_or("", String::as_str);
        let reserved = if ignores_case {
            first.to_lowercase() == RESUME_DIR
        } else {
            first == RESUME_DIR
        };
        if reserved {
            return Err(LayoutError::ResumeDir(f.path.clone()));
        }
    }
    if ignores_case {
        check_unique_ignoring_case(files.map(|f| &f.path)).map_err(LayoutError::CaseClash)?;
    }
    Ok(())
}

/// Where an adapter keeps a torrent's resume data by default: `<base>/.bt/<info-hash>.resume`.
pub fn resume_path(base: &Path, info_hash: &InfoHash) -> PathBuf {
    base.join(RESUME_DIR).join(format!("{info_hash}.resume"))
}

/// Where an adapter keeps the metadata of a torrent added by magnet link (as a `.torrent`
/// file, [`Metainfo::to_torrent_bytes`]) next to its resume file `resume`: the same name with
/// the extension `.torrent` (`<base>/.bt/<info-hash>.torrent` by default), or with `.torrent`
/// added when the resume file's own name ends so.
pub fn metadata_path(resume: &Path) -> PathBuf {
    let path = resume.with_extension("torrent");
    if path == resume {
        let mut name = resume.as_os_str().to_owned();
        name.push(".torrent");
        PathBuf::from(name)
    } else {
        path
    }
}

/// The files holding bytes of `piece` that live on disk (padding files are skipped: they are
/// never written, so they have no stamp to compare). Empty for a piece not in the map.
pub fn piece_files(map: &PieceMap, piece: PieceIndex) -> Vec<usize> {
    let mut files: Vec<usize> = Vec::new();
    if let Ok(segments) = map.piece_segments(piece) {
        for seg in segments.filter(|s| !s.padding) {
            if files.last() != Some(&seg.file) {
                files.push(seg.file);
            }
        }
    }
    files
}

/// What resume data means at add time, given each file's stamp now (`None` where a file is
/// missing; padding files may be anything, they are not consulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePlan {
    /// Pieces to trust without reading them: verified when saved, files unchanged since.
    pub trusted: Bitfield,
    /// Pieces verified when saved whose files changed since: check them again rather than
    /// trust or forget them.
    pub recheck: Vec<PieceIndex>,
}

/// Splits the pieces of `data` into trusted ones and ones to check again.
pub fn resume_plan(data: &ResumeData, map: &PieceMap, current: &[Option<FileStamp>]) -> ResumePlan {
    let trusted = data.trusted_pieces(current, |p| piece_files(map, p));
    let recheck = data
        .pieces
        .iter_ones()
        .filter(|p| !trusted.get(*p))
        .collect();
    ResumePlan { trusted, recheck }
}

/// Appends a block (or a whole piece) of `len` bytes to `out` from its read plan: each file
/// segment is read with `read(segment, out)`, which appends the segment's bytes; padding
/// segments are appended as zeros without reading. Appending lets an adapter read straight
/// into a buffer's spare capacity, with no zeroing first. `Ok(false)` if a read appended
/// another length than its segment's, or the plan does not cover exactly `len` bytes (what
/// was appended stays).
pub fn fill_from_plan<E>(
    plan: &[Segment],
    len: usize,
    out: &mut Vec<u8>,
    mut read: impl FnMut(&Segment, &mut Vec<u8>) -> Result<(), E>,
) -> Result<bool, E> {
    let start = out.len();
    for seg in plan {
        let end = out.len().saturating_add(seg.len as usize);
        if seg.padding {
            out.resize(end, 0);
        } else {
            read(seg, out)?;
            if out.len() != end {
                return Ok(false);
            }
        }
    }
    Ok(out.len() - start == len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn metadata_is_kept_beside_the_resume_file_never_in_its_place() {
        let resume = resume_path(Path::new("dl"), &InfoHash([0xab; 20]));
        assert_eq!(
            metadata_path(&resume),
            Path::new("dl/.bt").join(format!("{}.torrent", InfoHash([0xab; 20])))
        );
        assert_eq!(
            metadata_path(Path::new("r/state")),
            Path::new("r/state.torrent")
        );
        assert_eq!(
            metadata_path(Path::new("r/x.torrent")),
            Path::new("r/x.torrent.torrent")
        );
    }

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
    fn piece_files_skip_padding_and_repeat() {
        // file 0: 3 bytes, file 1: 1 byte of padding, file 2: 8 bytes; pieces of 4.
        let map = PieceMap::new(4, [(3, false), (1, true), (8, false)]).unwrap();
        assert_eq!(piece_files(&map, PieceIndex(0)), vec![0]);
        assert_eq!(piece_files(&map, PieceIndex(1)), vec![2]);
        assert_eq!(piece_files(&map, PieceIndex(9)), Vec::<usize>::new());
        let map = PieceMap::new(4, [(3, false), (0, false), (5, false)]).unwrap();
        assert_eq!(piece_files(&map, PieceIndex(0)), vec![0, 2]);
    }

    #[test]
    fn resume_plan_rechecks_changed_files_only() {
        let map = PieceMap::new(4, [(6, false), (6, false)]).unwrap();
        let stamp = |t| FileStamp {
            length: 6,
            mtime_secs: t,
            mtime_nanos: 0,
        };
        let data = ResumeData {
            info_hash: InfoHash([1; 20]),
            pieces: Bitfield::full(3),
            files: vec![Some(stamp(1)), Some(stamp(1))],
            uploaded: 0,
            downloaded: 0,
        };
        // File 1 changed: piece 0 (file 0 only) stays trusted; 1 (both) and 2 (file 1) not.
        let plan = resume_plan(&data, &map, &[Some(stamp(1)), Some(stamp(2))]);
        assert!(plan.trusted.get(PieceIndex(0)));
        assert!(!plan.trusted.get(PieceIndex(1)));
        assert_eq!(plan.recheck, vec![PieceIndex(1), PieceIndex(2)]);
        // A vanished file is not trusted either.
        let plan = resume_plan(&data, &map, &[None, Some(stamp(1))]);
        assert_eq!(plan.trusted.count(), 1);
        assert!(plan.trusted.get(PieceIndex(2)));
    }

    fn made(builder: crate::metainfo::create::TorrentBuilder) -> Metainfo {
        let plan = builder.piece_length(16 * 1024).plan().unwrap();
        let mut h = plan.hasher();
        for f in plan.files() {
            h.update(&vec![0; f.length as usize]);
        }
        Metainfo::from_bytes(&plan.build(&h.finish().unwrap()).unwrap()).unwrap()
    }

    fn multi(name: &str, files: &[&str]) -> Metainfo {
        use crate::metainfo::create::{InputFile, TorrentBuilder};
        let inputs = files.iter().map(|f| InputFile::new(f.split('/'), 3));
        made(TorrentBuilder::multi_file(name, inputs))
    }

    #[test]
    fn layout_keeps_out_of_the_resume_dir_and_apart_in_case() {
        use crate::metainfo::create::TorrentBuilder;
        let resume_dir = |r: Result<(), LayoutError>| matches!(r, Err(LayoutError::ResumeDir(_)));
        let hostile = multi(".bt", &[&format!("{}.resume", "ab".repeat(20))]);
        assert!(resume_dir(check_layout(&hostile, false)));
        assert!(resume_dir(check_layout(&hostile, true)));
        let single = made(TorrentBuilder::single_file(".bt", 3));
        assert!(resume_dir(check_layout(&single, false)));
        // Another case of the name is the resume directory only where case is ignored.
        let upper = multi(".BT", &["x"]);
        assert_eq!(check_layout(&upper, false), Ok(()));
        assert!(resume_dir(check_layout(&upper, true)));
        // Deeper down, `.bt` is an ordinary name.
        assert_eq!(check_layout(&multi("t", &[".bt/x"]), true), Ok(()));

        let twins = multi("t", &["A.txt", "a.txt"]);
        assert_eq!(check_layout(&twins, false), Ok(()));
        assert!(matches!(
            check_layout(&twins, true),
            Err(LayoutError::CaseClash(PathClash::SameIgnoringCase { .. }))
        ));
    }

    #[test]
    fn resume_path_names_the_torrent() {
        let p = resume_path(Path::new("/data"), &InfoHash([0xab; 20]));
        assert_eq!(
            p,
            Path::new("/data/.bt").join(format!("{}.resume", "ab".repeat(20)))
        );
    }

    #[test]
    fn fill_reads_files_and_zeros_padding() {
        let map = PieceMap::new(8, [(3, false), (2, true), (3, false)]).unwrap();
        let plan = read_plan(&map, PieceIndex(0), 1, 6).unwrap();
        let mut out = b"head".to_vec();
        let ok = fill_from_plan(&plan, 6, &mut out, |seg, buf| {
            let byte = b'a' + seg.file as u8 + seg.offset as u8;
            buf.extend(std::iter::repeat_n(byte, seg.len as usize));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(ok);
        // After what was there: file 0 from offset 1 (2 bytes), padding (2 zeros), file 2
        // from offset 0 (2 bytes).
        assert_eq!(out, b"headbb\0\0cc");
        let mut short = Vec::new();
        assert_eq!(
            fill_from_plan(&plan, 6, &mut short, |_, buf| {
                buf.push(1);
                Ok::<(), ()>(())
            }),
            Ok(false),
            "a read that appends less than its segment"
        );
        let mut longer = Vec::new();
        assert_eq!(
            fill_from_plan(&plan, 7, &mut longer, |seg, buf| {
                buf.resize(buf.len() + seg.len as usize, 1);
                Ok::<(), ()>(())
            }),
            Ok(false),
            "a plan that does not cover the length asked for"
        );
        let failing = fill_from_plan(&plan, 6, &mut out, |_, _| Err("disk"));
        assert_eq!(failing, Err("disk"));
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
