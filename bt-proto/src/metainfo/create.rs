//! Making a v1 `.torrent` from files the caller has enumerated.
//!
//! The core reads no files and spawns nothing, so creation is three pure steps:
//!
//! 1. [`TorrentBuilder`] collects the name, the files (path components and lengths), trackers
//!    and options, and [`TorrentBuilder::plan`] validates them into a [`TorrentPlan`]: the
//!    files in their final order with padding inserted, and the piece map.
//! 2. The caller hashes the bytes, in one stream with [`TorrentPlan::hasher`] or split across
//!    threads with [`TorrentPlan::range_hasher`] (piece `i`'s bytes are located by
//!    [`PieceMap::piece_segments`]).
//! 3. [`TorrentPlan::build`] takes the piece hashes and returns the bencoded torrent, canonical,
//!    which [`Metainfo::from_bytes`](super::Metainfo::from_bytes) parses back to the same
//!    layout.
//!
//! Decisions:
//! - **Order**: files are sorted by their path components, each compared as bytes, so a
//!   directory's files stay together and the same tree always gives the same torrent whatever
//!   order the caller enumerated it in. [`PlannedFile::source`] maps back to the caller's list.
//! - **Piece length** (unless given): the smallest power of two that cuts the content into at
//!   most [`AUTO_TARGET_PIECES`] pieces, clamped to [`AUTO_MIN_PIECE_LENGTH`]..=
//!   [`AUTO_MAX_PIECE_LENGTH`]. Between the clamps that is 1000 to 2000 pieces: few enough to
//!   keep the torrent small, many enough to spread a swarm.
//! - **Padding** (BEP 47, off by default): with [`TorrentBuilder::pad_files`], every file but
//!   the last non-empty one is followed by a padding file up to the next piece boundary, so
//!   each file starts on a piece of its own. Padding files are named `.pad/<length>` and carry
//!   `attr` `p`; feed zeros for them with [`PieceHasher::update_zeros`].
//! - **Trackers**: `announce` is the first URL; `announce-list` is written whenever there is
//!   more than one URL. Empty URLs and tiers are dropped.
//!
//! ```
//! use bt_proto::metainfo::create::{InputFile, TorrentBuilder};
//! use bt_proto::metainfo::Metainfo;
//! let files = vec![
//!     InputFile::new(["b.txt"], 3),
//!     InputFile::new(["a.txt"], 2),
//! ];
//! let plan = TorrentBuilder::multi_file("numbers", files)
//!     .tracker_tier(["udp://tracker.example:1337"])
//!     .piece_length(16384)
//!     .plan()
//!     .unwrap();
//! // Sorted: a.txt first.
//! assert_eq!(plan.files()[0].source, Some(1));
//! let mut hasher = plan.hasher();
//! hasher.update(b"aa");
//! hasher.update(b"bbb");
//! let torrent = plan.build(&hasher.finish().unwrap()).unwrap();
//! let m = Metainfo::from_bytes(&torrent).unwrap();
//! assert_eq!(m.files()[1].path.to_string(), "numbers/b.txt");
//! assert_eq!(m.trackers(), [vec!["udp://tracker.example:1337".to_owned()]]);
//! ```

use sha1::Digest;

use super::path::{self, FilePath, PathClash, PathError};
use super::piece_map::{LayoutError, PieceMap, RangeError};
use super::{FileAttr, MAX_PIECE_LENGTH};
use crate::bencode::Bencode;
use crate::{PieceHash, PieceIndex};

/// The automatic piece length aims at no more than this many pieces.
pub const AUTO_TARGET_PIECES: u64 = 2000;

/// Smallest automatic piece length: 16 KiB, one request block, the smallest length common
/// clients make (smaller pieces only make the torrent bigger).
pub const AUTO_MIN_PIECE_LENGTH: u32 = 16 * 1024;

/// Largest automatic piece length: 16 MiB, the largest length widely supported by clients.
pub const AUTO_MAX_PIECE_LENGTH: u32 = 16 * 1024 * 1024;

/// The automatic piece length for `content` bytes (see the module documentation).
///
/// ```
/// use bt_proto::metainfo::create::auto_piece_length;
/// assert_eq!(auto_piece_length(1000), 16 * 1024);
/// assert_eq!(auto_piece_length(1 << 30), 1 << 20); // 1 GiB: 1024 pieces of 1 MiB
/// assert_eq!(auto_piece_length(1 << 50), 16 << 20);
/// ```
pub fn auto_piece_length(content: u64) -> u32 {
    let ideal = content.div_ceil(AUTO_TARGET_PIECES).max(1);
    let pow2 = ideal
        .checked_next_power_of_two()
        .unwrap_or(u64::from(AUTO_MAX_PIECE_LENGTH));
    let clamped = pow2.clamp(
        u64::from(AUTO_MIN_PIECE_LENGTH),
        u64::from(AUTO_MAX_PIECE_LENGTH),
    );
    u32::try_from(clamped).unwrap_or(AUTO_MAX_PIECE_LENGTH)
}

/// Why a torrent could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// A name or path component breaks the [`path`] policy.
    #[error("unsafe path {path}: {reason}")]
    UnsafePath {
        /// The path as given, components joined with `/`.
        path: String,
        /// Which rule it breaks.
        reason: PathError,
    },
    /// Two files with the same path, or a file that is a directory of another.
    #[error("{0}")]
    PathClash(PathClash),
    /// A multi-file torrent with no file.
    #[error("no files to put in the torrent")]
    NoFiles,
    /// The piece length given is 0 or above [`MAX_PIECE_LENGTH`].
    #[error("piece length {0} is not within 1..={MAX_PIECE_LENGTH}")]
    InvalidPieceLength(u32),
    /// The files hold no bytes.
    #[error("the files hold no bytes")]
    Empty,
    /// The files add up to more than the map allows.
    #[error("the files are too large for one torrent")]
    TooLarge,
    /// More pieces than a piece index counts (only with a tiny explicit piece length).
    #[error("{0} pieces is more than a piece index can count")]
    TooManyPieces(u64),
    /// [`TorrentPlan::build`] got the wrong number of hashes.
    #[error("{found} piece hashes given, {expected} needed")]
    HashCount {
        /// Pieces in the plan.
        expected: u32,
        /// Hashes given.
        found: usize,
    },
    /// A [`PieceHasher`] was fed the wrong number of bytes.
    #[error("{found} bytes hashed, {expected} expected")]
    ByteCount {
        /// Bytes the pieces cover.
        expected: u64,
        /// Bytes fed.
        found: u64,
    },
}

impl From<LayoutError> for CreateError {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::InvalidPieceLength(l) => {
                CreateError::InvalidPieceLength(u32::try_from(l).unwrap_or(u32::MAX))
            }
            LayoutError::TooLarge => CreateError::TooLarge,
            LayoutError::Empty => CreateError::Empty,
            LayoutError::TooManyPieces(n) => CreateError::TooManyPieces(n),
        }
    }
}

/// A file to include: its path inside the torrent and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path components below the torrent's directory, outermost first.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
}

impl InputFile {
    /// A file at `path` (components) of `length` bytes.
    pub fn new<I, S>(path: I, length: u64) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        InputFile {
            path: path.into_iter().map(Into::into).collect(),
            length,
        }
    }
}

/// Collects what a torrent is made of; [`TorrentBuilder::plan`] checks it.
#[derive(Debug, Clone)]
pub struct TorrentBuilder {
    name: String,
    /// `None` for a single-file torrent.
    files: Option<Vec<InputFile>>,
    single_length: u64,
    trackers: Vec<Vec<String>>,
    url_list: Vec<String>,
    private: bool,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    piece_length: Option<u32>,
    pad_files: bool,
}

impl TorrentBuilder {
    fn with_layout(name: String, files: Option<Vec<InputFile>>, single_length: u64) -> Self {
        TorrentBuilder {
            name,
            files,
            single_length,
            trackers: Vec::new(),
            url_list: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
            piece_length: None,
            pad_files: false,
        }
    }

    /// A single-file torrent: the file is called `name`.
    pub fn single_file(name: impl Into<String>, length: u64) -> Self {
        Self::with_layout(name.into(), None, length)
    }

    /// A multi-file torrent: the files live in a directory called `name`.
    pub fn multi_file(name: impl Into<String>, files: impl IntoIterator<Item = InputFile>) -> Self {
        Self::with_layout(name.into(), Some(files.into_iter().collect()), 0)
    }

    /// Adds a tier of tracker URLs (BEP 12); tiers are tried in the order added.
    pub fn tracker_tier<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trackers
            .push(urls.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a web seed URL (BEP 19).
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.url_list.push(url.into());
        self
    }

    /// Marks the torrent private (BEP 27). Changes the info-hash.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Sets the `comment`.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by`.
    pub fn created_by(mut self, created_by: impl Into<String>) -> Self {
        self.created_by = Some(created_by.into());
        self
    }

    /// Sets `creation date`, seconds since the Unix epoch (the core does not read the clock).
    pub fn creation_date(mut self, secs: i64) -> Self {
        self.creation_date = Some(secs);
        self
    }

    /// Uses this piece length instead of the automatic one.
    pub fn piece_length(mut self, piece_length: u32) -> Self {
        self.piece_length = Some(piece_length);
        self
    }

    /// Pads every file but the last to a piece boundary (BEP 47); multi-file torrents only.
    pub fn pad_files(mut self, pad: bool) -> Self {
        self.pad_files = pad;
        self
    }

    /// Validates everything and lays the files out.
    pub fn plan(self) -> Result<TorrentPlan, CreateError> {
        let unsafe_path = |comps: &[String], reason| CreateError::UnsafePath {
            path: comps.join("/"),
            reason,
        };
        path::check_component(&self.name)
            .map_err(|r| unsafe_path(std::slice::from_ref(&self.name), r))?;
        if let Some(l) = self.piece_length
            && (l == 0 || l > MAX_PIECE_LENGTH)
        {
            return Err(CreateError::InvalidPieceLength(l));
        }

        let mut files = Vec::new();
        match &self.files {
            None => files.push(PlannedFile {
                path: FilePath::new([self.name.clone()])
                    .map_err(|r| unsafe_path(std::slice::from_ref(&self.name), r))?,
                length: self.single_length,
                padding: false,
                source: Some(0),
            }),
            Some(inputs) => {
                if inputs.is_empty() {
                    return Err(CreateError::NoFiles);
                }
                let mut order: Vec<usize> = (0..inputs.len()).collect();
                order.sort_by(|&a, &b| {
                    let pa = inputs.get(a).map(|f| &f.path);
                    let pb = inputs.get(b).map(|f| &f.path);
                    pa.cmp(&pb)
                });
                for i in order {
                    let Some(input) = inputs.get(i) else { continue };
                    let path = FilePath::new(input.path.iter().cloned())
                        .map_err(|r| unsafe_path(&input.path, r))?;
                    files.push(PlannedFile {
                        path: path.under(&self.name),
                        length: input.length,
                        padding: false,
                        source: Some(i),
                    });
                }
                path::check_unique(files.iter().map(|f| &f.path))
                    .map_err(CreateError::PathClash)?;
            }
        }

        let content = files
            .iter()
            .try_fold(0u64, |sum, f| sum.checked_add(f.length))
            .ok_or(CreateError::TooLarge)?;
        let piece_length = self
            .piece_length
            .unwrap_or_else(|| auto_piece_length(content));
        if self.pad_files && self.files.is_some() {
            files = pad(files, piece_length, &self.name)?;
        }
        let map = PieceMap::new(piece_length, files.iter().map(|f| (f.length, f.padding)))?;
        Ok(TorrentPlan {
            builder: self,
            files,
            map,
        })
    }
}

/// Inserts padding after every file but the last non-empty one, up to a piece boundary.
fn pad(
    files: Vec<PlannedFile>,
    piece_length: u32,
    name: &str,
) -> Result<Vec<PlannedFile>, CreateError> {
    let pl = u64::from(piece_length);
    let last_data = files.iter().rposition(|f| f.length > 0);
    let mut out = Vec::with_capacity(files.len() * 2);
    let mut offset: u64 = 0;
    for (i, f) in files.into_iter().enumerate() {
        offset = offset.checked_add(f.length).ok_or(CreateError::TooLarge)?;
        let needs_pad = f.length > 0 && Some(i) != last_data && !offset.is_multiple_of(pl);
        out.push(f);
        if needs_pad {
            let len = pl - offset % pl;
            let path = FilePath::new([".pad".to_owned(), len.to_string()])
                .map_err(|reason| CreateError::UnsafePath {
                    path: format!(".pad/{len}"),
                    reason,
                })?
                .under(name);
            out.push(PlannedFile {
                path,
                length: len,
                padding: true,
                source: None,
            });
            offset += len;
        }
    }
    Ok(out)
}

/// One file of a planned torrent, in final order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Path relative to the download directory (the torrent's name comes first for a
    /// multi-file torrent), as [`Metainfo::files`](super::Metainfo::files) will give it.
    pub path: FilePath,
    /// Length in bytes.
    pub length: u64,
    /// A padding file: hash zeros for it.
    pub padding: bool,
    /// Index of the caller's [`InputFile`] this is (0 for a single file); `None` for padding.
    pub source: Option<usize>,
}

/// A validated layout waiting for its piece hashes.
#[derive(Debug, Clone)]
pub struct TorrentPlan {
    builder: TorrentBuilder,
    files: Vec<PlannedFile>,
    map: PieceMap,
}

impl TorrentPlan {
    /// The files in the order their bytes are hashed.
    pub fn files(&self) -> &[PlannedFile] {
        &self.files
    }

    /// The piece map of the layout, to find each piece's bytes.
    pub fn piece_map(&self) -> &PieceMap {
        &self.map
    }

    /// The piece length used.
    pub fn piece_length(&self) -> u32 {
        self.map.piece_length()
    }

    /// Number of pieces, so of hashes [`TorrentPlan::build`] needs.
    pub fn piece_count(&self) -> u32 {
        self.map.piece_count()
    }

    /// A hasher for the whole torrent: feed every file's bytes in [`TorrentPlan::files`] order
    /// (zeros for padding).
    pub fn hasher(&self) -> PieceHasher {
        PieceHasher::new(self.map.piece_length(), self.map.total_length())
    }

    /// A hasher for `count` pieces from `first`: feed exactly those pieces' bytes. Hashers of
    /// disjoint ranges can run on different threads; concatenate their hashes in order.
    pub fn range_hasher(&self, first: PieceIndex, count: u32) -> Result<PieceHasher, RangeError> {
        let no_such = |piece| RangeError::NoSuchPiece {
            piece,
            count: self.map.piece_count(),
        };
        let last = first
            .0
            .checked_add(count.saturating_sub(1))
            .map(PieceIndex)
            .ok_or(no_such(first))?;
        let start = self.map.piece_offset(first).ok_or(no_such(first))?;
        let last_start = self.map.piece_offset(last).ok_or(no_such(last))?;
        let last_len = self.map.piece_len(last).ok_or(no_such(last))?;
        let bytes = if count == 0 {
            0
        } else {
            last_start + u64::from(last_len) - start
        };
        Ok(PieceHasher::new(self.map.piece_length(), bytes))
    }

    /// The `info` dictionary for these hashes (its SHA-1 is the info-hash).
    pub fn info_dict(&self, hashes: &[PieceHash]) -> Result<Bencode, CreateError> {
        if hashes.len() != self.map.piece_count() as usize {
            return Err(CreateError::HashCount {
                expected: self.map.piece_count(),
                found: hashes.len(),
            });
        }
        let b = &self.builder;
        let pieces: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
        let mut info = Bencode::dict()
            .with("name", b.name.as_str())
            .with("piece length", i64::from(self.map.piece_length()))
            .with("pieces", pieces);
        if b.private {
            info.insert("private", 1);
        }
        match &b.files {
            None => {
                info.insert("length", length(b.single_length));
            }
            Some(_) => {
                let list: Vec<Bencode> = self
                    .files
                    .iter()
                    .map(|f| {
                        // Drop the torrent's name: `files` paths are relative to it.
                        let comps = f.path.components().get(1..).unwrap_or_default();
                        let path: Vec<Bencode> =
                            comps.iter().map(|c| Bencode::from(c.as_str())).collect();
                        let mut d = Bencode::dict()
                            .with("length", length(f.length))
                            .with("path", path);
                        if f.padding {
                            let attr = FileAttr {
                                padding: true,
                                ..FileAttr::default()
                            };
                            d.insert("attr", attr.to_letters());
                        }
                        d
                    })
                    .collect();
                info.insert("files", list);
            }
        }
        Ok(info)
    }

    /// The bencoded `.torrent` for these hashes, in canonical form.
    pub fn build(&self, hashes: &[PieceHash]) -> Result<Vec<u8>, CreateError> {
        let info = self.info_dict(hashes)?;
        let b = &self.builder;
        let mut root = Bencode::dict().with("info", info);
        let tiers: Vec<Vec<&str>> = clean_tiers(&b.trackers);
        if let Some(first) = tiers.first().and_then(|t| t.first()) {
            root.insert("announce", *first);
        }
        if tiers.iter().map(Vec::len).sum::<usize>() > 1 {
            let list: Vec<Bencode> = tiers
                .iter()
                .map(|t| Bencode::List(t.iter().map(|u| Bencode::from(*u)).collect()))
                .collect();
            root.insert("announce-list", list);
        }
        let seeds: Vec<Bencode> = b
            .url_list
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .map(Bencode::from)
            .collect();
        if !seeds.is_empty() {
            root.insert("url-list", seeds);
        }
        if let Some(c) = &b.comment {
            root.insert("comment", c.as_str());
        }
        if let Some(c) = &b.created_by {
            root.insert("created by", c.as_str());
        }
        if let Some(d) = b.creation_date {
            root.insert("creation date", d);
        }
        Ok(root.encode())
    }
}

/// File lengths are at most `MAX_TOTAL_LENGTH` (2^50) once planned, so they fit an `i64`.
fn length(len: u64) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Trimmed, non-empty, first occurrence of each URL; empty tiers dropped.
fn clean_tiers(tiers: &[Vec<String>]) -> Vec<Vec<&str>> {
    let mut seen = std::collections::HashSet::new();
    tiers
        .iter()
        .map(|t| {
            t.iter()
                .map(|u| u.trim())
                .filter(|u| !u.is_empty() && seen.insert(*u))
                .collect::<Vec<&str>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Zeros fed for padding, a block at a time.
static ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];

/// Hashes a stream of bytes into piece hashes. Feed it in chunks of any size.
///
/// ```
/// use bt_proto::metainfo::create::PieceHasher;
/// use bt_proto::{sha1, PieceHash};
/// let mut h = PieceHasher::new(4, 6);
/// h.update(b"abc");
/// h.update(b"def");
/// assert_eq!(h.finish().unwrap(), [PieceHash(sha1(b"abcd")), PieceHash(sha1(b"ef"))]);
/// ```
#[derive(Debug, Clone)]
pub struct PieceHasher {
    piece_length: u32,
    expected: u64,
    fed: u64,
    in_piece: u32,
    sha: sha1::Sha1,
    hashes: Vec<PieceHash>,
}

impl PieceHasher {
    /// A hasher for `expected` bytes cut into pieces of `piece_length` (the last may be
    /// short). A `piece_length` of 0 is treated as 1.
    pub fn new(piece_length: u32, expected: u64) -> Self {
        let piece_length = piece_length.max(1);
        let pieces = expected.div_ceil(u64::from(piece_length));
        PieceHasher {
            piece_length,
            expected,
            fed: 0,
            in_piece: 0,
            sha: sha1::Sha1::new(),
            hashes: Vec::with_capacity(usize::try_from(pieces).unwrap_or(0).min(1 << 20)),
        }
    }

    /// Feeds the next bytes. Bytes past the expected total are counted, not hashed, and make
    /// [`PieceHasher::finish`] fail.
    pub fn update(&mut self, mut data: &[u8]) {
        let room = self.expected.saturating_sub(self.fed);
        self.fed = self.fed.saturating_add(data.len() as u64);
        if (data.len() as u64) > room {
            // room < data.len(), a usize.
            data = data.get(..room as usize).unwrap_or_default();
        }
        while !data.is_empty() {
            let space = (self.piece_length - self.in_piece) as usize;
            let (now, rest) = data.split_at(space.min(data.len()));
            self.sha.update(now);
            // now.len() <= space, a u32.
            self.in_piece += now.len() as u32;
            if self.in_piece == self.piece_length {
                self.hashes
                    .push(PieceHash(self.sha.finalize_reset().into()));
                self.in_piece = 0;
            }
            data = rest;
        }
    }

    /// Feeds `n` zero bytes (a padding file).
    pub fn update_zeros(&mut self, mut n: u64) {
        while n > 0 {
            let k = n.min(ZEROS.len() as u64);
            // k <= ZEROS.len().
            self.update(ZEROS.get(..k as usize).unwrap_or_default());
            n -= k;
        }
    }

    /// Bytes fed so far.
    pub fn bytes_fed(&self) -> u64 {
        self.fed
    }

    /// The hashes, once exactly the expected number of bytes was fed.
    pub fn finish(mut self) -> Result<Vec<PieceHash>, CreateError> {
        if self.fed != self.expected {
            return Err(CreateError::ByteCount {
                expected: self.expected,
                found: self.fed,
            });
        }
        if self.in_piece > 0 {
            self.hashes.push(PieceHash(self.sha.finalize().into()));
        }
        Ok(self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metainfo;
    use super::*;
    use crate::sha1;
    use proptest::prelude::*;

    #[test]
    fn auto_piece_length_rule() {
        assert_eq!(auto_piece_length(0), AUTO_MIN_PIECE_LENGTH);
        assert_eq!(auto_piece_length(2000 * 16384), 16384);
        assert_eq!(auto_piece_length(2000 * 16384 + 1), 32768);
        assert_eq!(auto_piece_length(u64::MAX), AUTO_MAX_PIECE_LENGTH);
        // Between the clamps (up to 2000 pieces of 16 MiB, 32 GiB).
        for exp in 25..=33 {
            let total = 3u64 << exp;
            let pl = auto_piece_length(total);
            assert!(pl.is_power_of_two());
            let pieces = total.div_ceil(u64::from(pl));
            assert!((1000..=2000).contains(&pieces), "{total}: {pieces}");
        }
    }

    #[test]
    fn hasher_chunking_and_counts() {
        let data: Vec<u8> = (0..100u8).collect();
        let want: Vec<PieceHash> = data.chunks(7).map(|c| PieceHash(sha1(c))).collect();
        for step in [1, 3, 7, 50, 100] {
            let mut h = PieceHasher::new(7, 100);
            for chunk in data.chunks(step) {
                h.update(chunk);
            }
            assert_eq!(h.finish().unwrap(), want);
        }
        let mut short = PieceHasher::new(7, 100);
        short.update(&data[..99]);
        assert_eq!(
            short.finish().unwrap_err(),
            CreateError::ByteCount {
                expected: 100,
                found: 99
            }
        );
        let mut long = PieceHasher::new(7, 100);
        long.update(&data);
        long.update(b"x");
        assert_eq!(
            long.finish().unwrap_err(),
            CreateError::ByteCount {
                expected: 100,
                found: 101
            }
        );
        let mut zeros = PieceHasher::new(16384, 40_000);
        zeros.update_zeros(40_000);
        assert_eq!(
            zeros.finish().unwrap()[2],
            PieceHash(sha1(&[0u8; 40_000 - 32768]))
        );
    }

    #[test]
    fn files_are_sorted_and_checked() {
        let plan = TorrentBuilder::multi_file(
            "t",
            vec![
                InputFile::new(["z"], 1),
                InputFile::new(["a", "b"], 1),
                InputFile::new(["a b"], 1),
            ],
        )
        .plan()
        .unwrap();
        let order: Vec<String> = plan.files().iter().map(|f| f.path.to_string()).collect();
        assert_eq!(order, ["t/a/b", "t/a b", "t/z"]);
        let err =
            |files: Vec<InputFile>| TorrentBuilder::multi_file("t", files).plan().unwrap_err();
        assert!(matches!(
            err(vec![InputFile::new(["..", "x"], 1)]),
            CreateError::UnsafePath {
                reason: PathError::DotComponent(_),
                ..
            }
        ));
        assert!(matches!(
            err(vec![InputFile::new(["x"], 1), InputFile::new(["x"], 2)]),
            CreateError::PathClash(PathClash::Duplicate(_))
        ));
        assert!(matches!(
            err(vec![
                InputFile::new(["x"], 1),
                InputFile::new(["x", "y"], 2)
            ]),
            CreateError::PathClash(PathClash::FileIsDirectory { .. })
        ));
        assert_eq!(err(vec![]), CreateError::NoFiles);
        assert_eq!(err(vec![InputFile::new(["x"], 0)]), CreateError::Empty);
        assert_eq!(
            TorrentBuilder::single_file("a", 1)
                .piece_length(0)
                .plan()
                .unwrap_err(),
            CreateError::InvalidPieceLength(0)
        );
        assert!(matches!(
            TorrentBuilder::single_file("CON", 1).plan().unwrap_err(),
            CreateError::UnsafePath {
                reason: PathError::ReservedName(_),
                ..
            }
        ));
    }

    #[test]
    fn padding_aligns_files_to_pieces() {
        let plan = TorrentBuilder::multi_file(
            "t",
            vec![
                InputFile::new(["a"], 5),
                InputFile::new(["b"], 8),
                InputFile::new(["c"], 0),
                InputFile::new(["d"], 3),
                InputFile::new(["e"], 0),
            ],
        )
        .piece_length(8)
        .pad_files(true)
        .plan()
        .unwrap();
        let layout: Vec<(String, u64, bool)> = plan
            .files()
            .iter()
            .map(|f| (f.path.to_string(), f.length, f.padding))
            .collect();
        assert_eq!(
            layout,
            [
                ("t/a".into(), 5, false),
                ("t/.pad/3".into(), 3, true),
                ("t/b".into(), 8, false),
                ("t/c".into(), 0, false),
                ("t/d".into(), 3, false),
                ("t/e".into(), 0, false),
            ]
        );
        let mut h = plan.hasher();
        for f in plan.files() {
            if f.padding {
                h.update_zeros(f.length);
            } else {
                h.update(&vec![1; f.length as usize]);
            }
        }
        let torrent = plan.build(&h.finish().unwrap()).unwrap();
        let m = Metainfo::from_bytes(&torrent).unwrap();
        assert!(m.files()[1].is_padding());
        assert_eq!(m.content_size(), 16);
        assert_eq!(m.size(), 19);
    }

    #[test]
    fn range_hashers_agree_with_the_whole() {
        let plan = TorrentBuilder::single_file("f", 100)
            .piece_length(16)
            .plan()
            .unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = plan.hasher();
        whole.update(&data);
        let whole = whole.finish().unwrap();
        let mut parts = Vec::new();
        for (first, count) in [(0u32, 3u32), (3, 0), (3, 4)] {
            let mut h = plan.range_hasher(PieceIndex(first), count).unwrap();
            let start = first as usize * 16;
            let end = (start + count as usize * 16).min(100);
            h.update(&data[start..end]);
            parts.extend(h.finish().unwrap());
        }
        assert_eq!(parts, whole);
        assert!(plan.range_hasher(PieceIndex(5), 3).is_err());
        assert!(plan.range_hasher(PieceIndex(7), 1).is_err());
        assert!(plan.range_hasher(PieceIndex(u32::MAX), 2).is_err());
    }

    #[test]
    fn build_writes_every_field() {
        let plan = TorrentBuilder::single_file("f.bin", 3)
            .tracker_tier(["udp://a:1", " ", "udp://b:2"])
            .tracker_tier(Vec::<String>::new())
            .tracker_tier(["udp://a:1", "http://c/"])
            .web_seed("http://seed/f.bin")
            .private(true)
            .comment("c")
            .created_by("bt test")
            .creation_date(1_700_000_000)
            .plan()
            .unwrap();
        assert_eq!(
            plan.build(&[]).unwrap_err(),
            CreateError::HashCount {
                expected: 1,
                found: 0
            }
        );
        let hashes = [PieceHash(sha1(b"xyz"))];
        let bytes = plan.build(&hashes).unwrap();
        // Canonical: the strict decoder accepts it and re-encoding gives the same bytes.
        let v = crate::bencode::decode_strict(&bytes).unwrap();
        assert_eq!(v.to_owned().encode(), bytes);
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(
            m.trackers(),
            [
                vec!["udp://a:1".to_owned(), "udp://b:2".to_owned()],
                vec!["http://c/".to_owned()]
            ]
        );
        assert_eq!(v.get(b"announce").unwrap().as_str(), Some("udp://a:1"));
        assert_eq!(m.url_list(), ["http://seed/f.bin"]);
        assert!(m.is_private());
        assert_eq!(m.comment(), Some("c"));
        assert_eq!(m.created_by(), Some("bt test"));
        assert_eq!(m.creation_date(), Some(1_700_000_000));
        assert_eq!(
            m.info_hash().0,
            sha1(&plan.info_dict(&hashes).unwrap().encode())
        );
    }

    fn arb_files() -> impl Strategy<Value = Vec<InputFile>> {
        proptest::collection::vec(
            (proptest::collection::vec("[a-d]{1,2}", 1..3), 0u64..70),
            1..7,
        )
        .prop_map(|v| v.into_iter().map(|(p, l)| InputFile::new(p, l)).collect())
    }

    proptest! {
        /// Creation then parsing gives back the same layout, hashes and info-hash, and every
        /// piece verifies against content assembled through the piece map.
        #[test]
        fn create_parse_round_trip(
            files in arb_files(),
            piece_length in 1u32..50,
            pad in any::<bool>(),
            private in any::<bool>(),
            seed in any::<u8>(),
        ) {
            let plan = match TorrentBuilder::multi_file("root", files.clone())
                .piece_length(piece_length)
                .pad_files(pad)
                .private(private)
                .tracker_tier(["http://t/announce"])
                .plan()
            {
                Ok(plan) => plan,
                Err(CreateError::PathClash(_) | CreateError::Empty) => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            };
            // Content of each input file: a pattern seeded by its index.
            let content = |i: usize, len: u64| -> Vec<u8> {
                (0..len).map(|k| (k as u8).wrapping_mul(31) ^ (i as u8) ^ seed).collect()
            };
            let mut h = plan.hasher();
            for f in plan.files() {
                match f.source {
                    Some(i) => h.update(&content(i, f.length)),
                    None => h.update_zeros(f.length),
                }
            }
            let hashes = h.finish().unwrap();
            let bytes = plan.build(&hashes).unwrap();
            let m = Metainfo::from_bytes(&bytes).unwrap();
            prop_assert_eq!(m.info_hash().0, sha1(&plan.info_dict(&hashes).unwrap().encode()));
            prop_assert_eq!(m.is_private(), private);
            prop_assert_eq!(m.files().len(), plan.files().len());
            for (got, want) in m.files().iter().zip(plan.files()) {
                prop_assert_eq!(&got.path, &want.path);
                prop_assert_eq!(got.length, want.length);
                prop_assert_eq!(got.is_padding(), want.padding);
            }
            prop_assert_eq!(m.piece_map(), plan.piece_map());
            for p in 0..m.piece_count() {
                let mut piece = Vec::new();
                for s in m.piece_map().piece_segments(PieceIndex(p)).unwrap() {
                    let pf = &plan.files()[s.file];
                    let data = match pf.source {
                        Some(i) => content(i, pf.length),
                        None => vec![0; pf.length as usize],
                    };
                    piece.extend_from_slice(&data[s.offset as usize..][..s.len as usize]);
                }
                prop_assert_eq!(Some(PieceHash(sha1(&piece))), m.piece_hash(PieceIndex(p)));
            }
            if pad {
                // Every non-padding file with data, except the last, starts and ends on a
                // piece boundary.
                let pl = u64::from(piece_length);
                for f in m.files().iter().filter(|f| !f.is_padding() && f.length > 0) {
                    prop_assert_eq!(f.offset % pl, 0);
                }
            }
        }
    }
}
