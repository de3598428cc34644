//! Metainfo: v1 `.torrent` files (BEP 3), validated, with the piece-to-file map and creation.
//!
//! [`Metainfo::from_bytes`] decodes a torrent into an owned value that outlives its input. The
//! info-hash is the SHA-1 of the `info` dictionary's bytes exactly as found in the file (never
//! a re-encoding), and that dictionary must be canonical (sorted, unique keys).
//!
//! Supported: single- and multi-file torrents; `announce` and `announce-list` (BEP 12);
//! `url-list` (BEP 19, a string or a list); `private` (BEP 27); `name.utf-8` and `path.utf-8`
//! (preferred over `name` and `path`); file attributes (BEP 47: `p` padding, `x` executable,
//! `h` hidden, `l` symlink); `creation date`, `comment`, `created by`.
//!
//! Rules, each with a typed [`MetainfoError`]:
//! - the file is at most [`MAX_TORRENT_SIZE`] bytes of valid bencode, a dictionary with an
//!   `info` dictionary that is canonical;
//! - `piece length` is in `1..=`[`MAX_PIECE_LENGTH`]; powers of two are usual but BEP 3 does not
//!   require one, so any length is accepted (the last block of a piece may then be short);
//! - exactly one of `length` (single file) and `files` (multi-file, at least one file, at most
//!   [`MAX_FILES`]); lengths are non-negative, their sum fits [`MAX_TOTAL_LENGTH`] and is not
//!   zero: a torrent of no bytes has no piece to share, and no client can do anything with it;
//! - `pieces` is a multiple of 20 bytes and holds exactly `ceil(total / piece length)` hashes;
//! - every path component passes the [`path`] policy (the name too, as one component), no two
//!   files share a path and no file is a directory of another; padding files are exempt from
//!   the last two checks (BEP 47 names them all `.pad/<size>`, and they are never written).
//!
//! What is decided rather than refused:
//! - a missing `name` becomes the info-hash in hex, as libtorrent does (old torrents lack it);
//! - names and paths that are not UTF-8 are decoded lossily (U+FFFD), then checked;
//! - outside `info`, an optional field of the wrong type is dropped rather than fatal: it does
//!   not change what is downloaded. A tracker list that is present but holds no URL falls back
//!   to `announce`; empty tiers and repeated URLs are dropped;
//! - `creation date` is kept as written: usually seconds since the epoch, milliseconds from some
//!   creators (WebTorrent's fixtures among them);
//! - `private` is true only for the integer 1 (BEP 27).
//!
//! ```
//! use bt_proto::metainfo::{Metainfo, create::TorrentBuilder};
//! let plan = TorrentBuilder::single_file("hello.txt", 11).piece_length(16384).plan().unwrap();
//! let hashes = vec![bt_proto::PieceHash(bt_proto::sha1(b"hello world"))];
//! let torrent = plan.build(&hashes).unwrap();
//! let m = Metainfo::from_bytes(&torrent).unwrap();
//! assert_eq!(m.name(), "hello.txt");
//! assert_eq!(m.size(), 11);
//! assert_eq!(m.piece_hash(bt_proto::PieceIndex(0)), Some(hashes[0]));
//! ```

pub mod create;
mod parse;
pub mod path;
pub mod piece_map;

use std::fmt;

use crate::bencode::{Bencode, DecodeError};
use crate::magnet::Magnet;
use crate::{InfoHash, PieceHash, PieceIndex};
use path::{FilePath, PathClash, PathError};
pub use piece_map::{MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH, PieceMap};

/// Largest .torrent accepted, in bytes (100 MiB). The `pieces` string dominates: 100 MiB holds
/// five million piece hashes, enough for a 5 TB payload in 1 MiB pieces.
pub const MAX_TORRENT_SIZE: usize = 100 * 1024 * 1024;

/// Most files in one torrent. The largest real torrents (software mirrors, datasets) have a
/// few hundred thousand; each file costs a path and a map entry.
pub const MAX_FILES: usize = 1_000_000;

/// Why a torrent was rejected. Fields are named as in the file, e.g. `info.files[3].length`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoError {
    /// Larger than [`MAX_TORRENT_SIZE`].
    #[error("torrent is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid bencode (this includes nesting deeper than the bencode limit).
    #[error("not a valid torrent: {0}")]
    Bencode(DecodeError),
    /// The `info` dictionary has unsorted keys somewhere (duplicates fail as [`Self::Bencode`]).
    #[error("the info dictionary is not canonical: {0}")]
    InfoNotCanonical(DecodeError),
    /// A required field is absent.
    #[error("missing field {field}")]
    Missing {
        /// The field.
        field: String,
    },
    /// A field has the wrong type.
    #[error("field {field} should be {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// What it should be.
        expected: &'static str,
    },
    /// `piece length` is not in `1..=MAX_PIECE_LENGTH`.
    #[error("piece length {value} is not within 1..={MAX_PIECE_LENGTH}")]
    InvalidPieceLength {
        /// The value found.
        value: i64,
    },
    /// A negative file length.
    #[error("field {field} is negative ({value})")]
    NegativeLength {
        /// The field.
        field: String,
        /// The value found.
        value: i64,
    },
    /// The lengths add up past [`MAX_TOTAL_LENGTH`] (or overflow).
    #[error("the files add up to more than {MAX_TOTAL_LENGTH} bytes")]
    TotalTooLarge,
    /// The files hold no bytes.
    #[error("the torrent holds no bytes")]
    EmptyTorrent,
    /// `files` is an empty list.
    #[error("info.files lists no file")]
    NoFiles,
    /// More than [`MAX_FILES`] files.
    #[error("{count} files, more than the limit of {MAX_FILES}")]
    TooManyFiles {
        /// Files listed.
        count: usize,
    },
    /// Both `length` and `files` are present, so the layout is ambiguous.
    #[error("info has both length and files")]
    BothLengthAndFiles,
    /// `pieces` is not a whole number of 20-byte hashes.
    #[error("info.pieces is {len} bytes, not a multiple of 20")]
    PiecesNotMultipleOf20 {
        /// Its length.
        len: usize,
    },
    /// `pieces` holds a different number of hashes than the size needs.
    #[error("info.pieces holds {found} hashes but the size needs {expected}")]
    PieceCountMismatch {
        /// `ceil(total / piece length)`.
        expected: u64,
        /// Hashes present.
        found: u64,
    },
    /// More pieces than a piece index can count.
    #[error("{count} pieces is more than a piece index can count")]
    TooManyPieces {
        /// Pieces needed.
        count: u64,
    },
    /// A name or path that must never reach a file system.
    #[error("unsafe path in {field} ({path}): {reason}")]
    UnsafePath {
        /// The field (`info.name` or `info.files[i].path`).
        field: String,
        /// The path as found (lossily decoded, components joined with `/`).
        path: String,
        /// Which rule it breaks.
        reason: PathError,
    },
    /// Two files with the same path, or a file that is a directory of another.
    #[error("{0}")]
    PathClash(PathClash),
}

/// Attributes of a file (BEP 47).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FileAttr {
    /// `p`: padding; its bytes are zeros, never written to disk, never offered to the user.
    pub padding: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symbolic link in the creator's tree. This crate never creates links (the target
    /// is not even read), so the file is stored as a regular file like any other.
    pub symlink: bool,
}

impl FileAttr {
    /// Reads an `attr` string; unknown letters are ignored, as BEP 47 asks.
    pub fn from_letters(letters: &[u8]) -> Self {
        FileAttr {
            padding: letters.contains(&b'p'),
            executable: letters.contains(&b'x'),
            hidden: letters.contains(&b'h'),
            symlink: letters.contains(&b'l'),
        }
    }

    /// The `attr` string, empty when no attribute is set.
    pub fn to_letters(self) -> String {
        let mut s = String::new();
        for (set, c) in [
            (self.symlink, 'l'),
            (self.padding, 'p'),
            (self.executable, 'x'),
            (self.hidden, 'h'),
        ] {
            if set {
                s.push(c);
            }
        }
        s
    }
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the download directory: the name alone for a single-file torrent,
    /// the name then the file's path for a multi-file torrent.
    pub path: FilePath,
    /// Length in bytes.
    pub length: u64,
    /// Offset of its first byte in the torrent's byte space.
    pub offset: u64,
    /// BEP 47 attributes.
    pub attr: FileAttr,
}

impl FileEntry {
    /// Whether this is a padding file (never written, read as zeros).
    pub fn is_padding(&self) -> bool {
        self.attr.padding
    }
}

/// A parsed, validated v1 torrent. Owned: it does not borrow the input.
#[derive(Clone, PartialEq, Eq)]
pub struct Metainfo {
    info_hash: InfoHash,
    info_bytes: Vec<u8>,
    name: String,
    single_file: bool,
    /// Where the `pieces` string lies in `info_bytes`: the hashes are kept once, not copied
    /// beside the dictionary that holds them (20 bytes a piece, 200 KiB for a 10 GiB torrent
    /// of 1 MiB pieces).
    pieces: std::ops::Range<usize>,
    files: Vec<FileEntry>,
    map: PieceMap,
    private: bool,
    trackers: Vec<Vec<String>>,
    url_list: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
}

impl Metainfo {
    /// Parses and validates a `.torrent` file.
    pub fn from_bytes(input: &[u8]) -> Result<Self, MetainfoError> {
        parse::parse_torrent(input)
    }

    /// Parses and validates a bare `info` dictionary, as received from peers (BEP 9): the
    /// result has no trackers, web seeds, comment or dates.
    pub fn from_info_bytes(info: &[u8]) -> Result<Self, MetainfoError> {
        parse::parse_info_only(info)
    }

    /// The same torrent with these tracker tiers (BEP 12), as for metadata fetched from peers
    /// (BEP 9): the info dictionary carries no trackers, the magnet link's `tr` do.
    pub fn with_trackers(mut self, tiers: Vec<Vec<String>>) -> Self {
        self.trackers = tiers;
        self
    }

    /// SHA-1 of the `info` dictionary exactly as found in the file.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The raw `info` dictionary, byte for byte (what peers ask for in BEP 9).
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// The torrent's name (`name.utf-8` preferred): the file name of a single-file torrent,
    /// the directory name of a multi-file one.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a single-file torrent (`length` rather than `files`).
    pub fn is_single_file(&self) -> bool {
        self.single_file
    }

    /// Total bytes the pieces cover: every file, padding included.
    pub fn size(&self) -> u64 {
        self.map.total_length()
    }

    /// Bytes of real content: every file except padding.
    pub fn content_size(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| !f.is_padding())
            .map(|f| f.length)
            .sum()
    }

    /// The nominal piece length.
    pub fn piece_length(&self) -> u32 {
        self.map.piece_length()
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.map.piece_count()
    }

    /// Length of the last piece.
    pub fn last_piece_length(&self) -> u32 {
        self.map.last_piece_length()
    }

    /// Length of `piece`, or `None` if it does not exist.
    pub fn piece_len(&self, piece: PieceIndex) -> Option<u32> {
        self.map.piece_len(piece)
    }

    /// The expected SHA-1 of `piece`, or `None` if it does not exist.
    pub fn piece_hash(&self, piece: PieceIndex) -> Option<PieceHash> {
        let start = piece.as_usize().checked_mul(20)?;
        let start = self.pieces.start.checked_add(start)?;
        let end = start.checked_add(20)?;
        if end > self.pieces.end {
            return None;
        }
        let bytes = self.info_bytes.get(start..end)?;
        <[u8; 20]>::try_from(bytes).ok().map(PieceHash)
    }

    /// The files in metainfo order (padding files included, flagged).
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The piece-to-file map.
    pub fn piece_map(&self) -> &PieceMap {
        &self.map
    }

    /// Tracker URLs by tier (BEP 12), in file order; `announce` alone is one tier.
    pub fn trackers(&self) -> &[Vec<String>] {
        &self.trackers
    }

    /// Whether the torrent is private (BEP 27): trackers only, no DHT or PEX.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Web seed URLs (BEP 19).
    pub fn url_list(&self) -> &[String] {
        &self.url_list
    }

    /// The `comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The `created by` field, if any.
    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// The `creation date` as written (usually seconds since the Unix epoch), if any.
    pub fn creation_date(&self) -> Option<i64> {
        self.creation_date
    }

    /// A `.torrent` file of this torrent: its `info` dictionary byte for byte (so the
    /// info-hash is the same) and its tracker tiers (`announce` and `announce-list`); web
    /// seeds, comment and dates are left out. This is how metadata fetched from peers
    /// (BEP 9) is kept, so that a restart adds it as a torrent instead of fetching it again.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        let mut root = Bencode::dict();
        if let Some(first) = self.trackers.iter().flatten().next() {
            root.insert("announce", first.as_str());
            let tiers: Vec<Bencode> = self
                .trackers
                .iter()
                .map(|t| Bencode::List(t.iter().map(|u| Bencode::from(u.as_str())).collect()))
                .collect();
            root.insert("announce-list", tiers);
        }
        let mut out = root.encode();
        // The dictionary's closing `e` goes after `info`, spliced in raw: a re-encoding could
        // differ from the bytes the info-hash is of. Keys stay sorted: `info` comes after
        // `announce` and `announce-list`.
        out.pop();
        out.extend_from_slice(b"4:info");
        out.extend_from_slice(&self.info_bytes);
        out.push(b'e');
        out
    }

    /// A magnet link for this torrent: info-hash, name and every tracker.
    pub fn magnet(&self) -> Magnet {
        let mut m = Magnet::new(self.info_hash);
        m.display_name = Some(self.name.clone());
        // Parsing already dropped repeated URLs across tiers.
        m.trackers = self.trackers.iter().flatten().cloned().collect();
        m
    }
}

impl fmt::Debug for Metainfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The piece hashes and raw info can be megabytes; show what identifies the torrent.
        f.debug_struct("Metainfo")
            .field("info_hash", &self.info_hash)
            .field("name", &self.name)
            .field("size", &self.size())
            .field("piece_length", &self.piece_length())
            .field("piece_count", &self.piece_count())
            .field("files", &self.files.len())
            .field("private", &self.private)
            .field("trackers", &self.trackers)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Bencode;

    /// The info dictionary of a one-file torrent of one piece, with a key order and an
    /// integer a re-encoding would keep, and an unknown key it must not drop.
    fn info() -> Vec<u8> {
        Bencode::dict()
            .with("length", 5)
            .with("name", "a.bin")
            .with("piece length", 16384)
            .with("pieces", vec![7u8; 20])
            .with("x-unknown", "kept")
            .encode()
    }

    #[test]
    fn a_torrent_made_from_fetched_metadata_has_the_same_info_hash_and_trackers() {
        let tiers = vec![
            vec!["http://a.example/announce".to_string()],
            vec![
                "udp://b.example:1337".to_string(),
                "http://c.example/a".to_string(),
            ],
        ];
        let fetched = Metainfo::from_info_bytes(&info())
            .unwrap()
            .with_trackers(tiers.clone());
        let again = Metainfo::from_bytes(&fetched.to_torrent_bytes()).unwrap();
        assert_eq!(again.info_hash(), fetched.info_hash());
        assert_eq!(again.info_bytes(), &info()[..]);
        assert_eq!(again.trackers(), &tiers[..]);
        assert_eq!(again.name(), "a.bin");
    }

    #[test]
    fn a_torrent_without_trackers_has_only_its_info() {
        let fetched = Metainfo::from_info_bytes(&info()).unwrap();
        let bytes = fetched.to_torrent_bytes();
        assert!(bytes.starts_with(b"d4:infod"));
        let again = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(again.info_hash(), fetched.info_hash());
        assert!(again.trackers().is_empty());
    }
}
