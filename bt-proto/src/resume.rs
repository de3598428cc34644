//! Resume data: which pieces were verified, and enough about the files to notice when they
//! changed afterwards.
//!
//! The core never looks at files, so the adapter supplies a [`FileStamp`] (length and
//! modification time) for each file when saving and again when loading. A piece is trusted on
//! load only if every file it touches still has the stamp it had when the data was saved; the
//! rest must be checked again (or downloaded). The format is bencoded, versioned, and names the
//! torrent by info-hash so resume data cannot be applied to the wrong torrent.
//!
//! ```
//! use bt_proto::resume::{FileStamp, ResumeData};
//! use bt_proto::{Bitfield, InfoHash, PieceIndex};
//! let mut pieces = Bitfield::new(3);
//! pieces.set(PieceIndex(0), true);
//! let stamp = FileStamp { length: 100, mtime_secs: 1_700_000_000, mtime_nanos: 5 };
//! let data = ResumeData {
//!     info_hash: InfoHash([7; 20]),
//!     pieces,
//!     files: vec![Some(stamp)],
//!     uploaded: 10,
//!     downloaded: 40,
//! };
//! let back = ResumeData::decode(&data.encode(), InfoHash([7; 20]), 3, 1).unwrap();
//! assert_eq!(back, data);
//! ```

use crate::bencode::{self, Bencode};
use crate::{Bitfield, InfoHash, PieceIndex};

/// The resume format written by this version; older or newer versions are refused rather
/// than guessed at.
pub const RESUME_VERSION: i64 = 1;

/// What the adapter knows about one file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Length in bytes.
    pub length: u64,
    /// Modification time, whole seconds since the Unix epoch.
    pub mtime_secs: i64,
    /// Sub-second part of the modification time.
    pub mtime_nanos: u32,
}

/// Resume data of one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeData {
    /// The torrent it belongs to.
    pub info_hash: InfoHash,
    /// Pieces verified when it was saved.
    pub pieces: Bitfield,
    /// Each file's stamp when it was saved, in metainfo order; `None` for a file that did not
    /// exist (nothing of it verified).
    pub files: Vec<Option<FileStamp>>,
    /// Bytes uploaded over the torrent's life, so ratios survive restarts.
    pub uploaded: u64,
    /// Bytes downloaded over the torrent's life.
    pub downloaded: u64,
}

/// Why resume data was refused. Refused data costs a hashcheck, never wrong data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Not bencode.
    #[error("resume data is not valid bencode: {0}")]
    Bencode(#[from] bencode::DecodeError),
    /// A field is missing or has the wrong type.
    #[error("resume data field `{0}` is missing or malformed")]
    Field(&'static str),
    /// Written by another version of the format.
    #[error("resume data version {found} is not supported (expected {RESUME_VERSION})")]
    Version {
        /// Version found.
        found: i64,
    },
    /// For another torrent.
    #[error("resume data is for torrent {found}, not {expected}")]
    WrongTorrent {
        /// The torrent being resumed.
        expected: InfoHash,
        /// The torrent named in the data.
        found: InfoHash,
    },
    /// The piece bitfield does not fit the torrent.
    #[error("resume data pieces do not fit the torrent: {0}")]
    Pieces(#[from] crate::bitfield::BitfieldError),
    /// The file list does not fit the torrent.
    #[error("resume data lists {found} files, the torrent has {expected}")]
    FileCount {
        /// Files in the torrent.
        expected: usize,
        /// Files in the data.
        found: usize,
    },
}

impl ResumeData {
    /// The bencoded form.
    pub fn encode(&self) -> Vec<u8> {
        let files = self
            .files
            .iter()
            .map(|f| match f {
                Some(s) => Bencode::dict()
                    .with("length", clamp_i64(s.length))
                    .with("mtime", s.mtime_secs)
                    .with("mtime_ns", i64::from(s.mtime_nanos)),
                None => Bencode::dict(),
            })
            .collect::<Vec<_>>();
        Bencode::dict()
            .with("version", RESUME_VERSION)
            .with("info-hash", self.info_hash.as_bytes().as_slice())
            .with("piece-count", i64::from(self.pieces.len()))
            .with("pieces", self.pieces.as_bytes())
            .with("files", files)
            .with("uploaded", clamp_i64(self.uploaded))
            .with("downloaded", clamp_i64(self.downloaded))
            .encode()
    }

    /// Parses resume data for the torrent `info_hash` with `piece_count` pieces and
    /// `file_count` files, refusing anything that does not fit it.
    pub fn decode(
        bytes: &[u8],
        info_hash: InfoHash,
        piece_count: u32,
        file_count: usize,
    ) -> Result<Self, ResumeError> {
        let v = bencode::decode(bytes)?;
        let int = |key: &'static str| {
            v.get(key.as_bytes())
                .and_then(|x| x.as_int())
                .ok_or(ResumeError::Field(key))
        };
        let version = int("version")?;
        if version != RESUME_VERSION {
            return Err(ResumeError::Version { found: version });
        }
        let found: [u8; 20] = v
            .get(b"info-hash")
            .and_then(|x| x.as_bytes())
            .and_then(|b| b.try_into().ok())
            .ok_or(ResumeError::Field("info-hash"))?;
        if found != info_hash.0 {
            return Err(ResumeError::WrongTorrent {
                expected: info_hash,
                found: InfoHash(found),
            });
        }
        if int("piece-count")? != i64::from(piece_count) {
            return Err(ResumeError::Field("piece-count"));
        }
        let pieces = v
            .get(b"pieces")
            .and_then(|x| x.as_bytes())
            .ok_or(ResumeError::Field("pieces"))?;
        let pieces = Bitfield::from_bytes(pieces, piece_count)?;
        let list = v
            .get(b"files")
            .and_then(|x| x.as_list())
            .ok_or(ResumeError::Field("files"))?;
        if list.len() != file_count {
            return Err(ResumeError::FileCount {
                expected: file_count,
                found: list.len(),
            });
        }
        let mut files = Vec::with_capacity(list.len());
        for f in list {
            if f.as_dict().is_some_and(|d| d.is_empty()) {
                files.push(None);
                continue;
            }
            let get = |k: &'static str| {
                f.get(k.as_bytes())
                    .and_then(|x| x.as_int())
                    .ok_or(ResumeError::Field("files"))
            };
            files.push(Some(FileStamp {
                length: u64::try_from(get("length")?).map_err(|_| ResumeError::Field("files"))?,
                mtime_secs: get("mtime")?,
                mtime_nanos: u32::try_from(get("mtime_ns")?)
                    .ok()
                    .filter(|n| *n < 1_000_000_000)
                    .ok_or(ResumeError::Field("files"))?,
            }));
        }
        let counter = |key: &'static str| {
            int(key).and_then(|n| u64::try_from(n).map_err(|_| ResumeError::Field(key)))
        };
        Ok(ResumeData {
            info_hash,
            pieces,
            files,
            uploaded: counter("uploaded")?,
            downloaded: counter("downloaded")?,
        })
    }

    /// The pieces that can be trusted now: verified when saved, and every file they touch
    /// (`piece_files(piece)` lists the file indexes) has the same stamp now (`current`) as
    /// then. Files that changed, vanished or appeared since make their pieces untrusted.
    pub fn trusted_pieces<I>(
        &self,
        current: &[Option<FileStamp>],
        piece_files: impl Fn(PieceIndex) -> I,
    ) -> Bitfield
    where
        I: IntoIterator<Item = usize>,
    {
        let unchanged: Vec<bool> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, saved)| saved.is_some() && current.get(i) == Some(saved))
            .collect();
        let mut trusted = Bitfield::new(self.pieces.len());
        for p in self.pieces.iter_ones() {
            if piece_files(p)
                .into_iter()
                .all(|f| unchanged.get(f).copied().unwrap_or(false))
            {
                trusted.set(p, true);
            }
        }
        trusted
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp(length: u64, t: i64) -> FileStamp {
        FileStamp {
            length,
            mtime_secs: t,
            mtime_nanos: 0,
        }
    }

    fn sample() -> ResumeData {
        ResumeData {
            info_hash: InfoHash([1; 20]),
            pieces: Bitfield::full(4),
            files: vec![Some(stamp(10, 100)), Some(stamp(20, 100)), None],
            uploaded: 5,
            downloaded: 6,
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let bytes = sample().encode();
        let h = InfoHash([1; 20]);
        assert!(matches!(
            ResumeData::decode(&bytes, InfoHash([2; 20]), 4, 3),
            Err(ResumeError::WrongTorrent { .. })
        ));
        assert!(matches!(
            ResumeData::decode(&bytes, h, 5, 3),
            Err(ResumeError::Field("piece-count"))
        ));
        assert!(matches!(
            ResumeData::decode(&bytes, h, 4, 2),
            Err(ResumeError::FileCount {
                expected: 2,
                found: 3
            })
        ));
        let v2 = Bencode::dict().with("version", 2).encode();
        assert!(matches!(
            ResumeData::decode(&v2, h, 4, 3),
            Err(ResumeError::Version { found: 2 })
        ));
        assert!(matches!(
            ResumeData::decode(b"garbage", h, 4, 3),
            Err(ResumeError::Bencode(_))
        ));
    }

    #[test]
    fn changed_files_untrust_their_pieces() {
        // Pieces 0-1 live in file 0, piece 2 spans files 0 and 1, piece 3 is in file 2.
        let layout = |p: PieceIndex| match p.0 {
            0 | 1 => vec![0],
            2 => vec![0, 1],
            _ => vec![2],
        };
        let data = sample();
        let same = [Some(stamp(10, 100)), Some(stamp(20, 100)), None];
        let t = data.trusted_pieces(&same, layout);
        // File 2 was missing when saved, so piece 3 is not trusted even if marked.
        assert_eq!(t.iter_ones().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
        let touched = [Some(stamp(10, 100)), Some(stamp(20, 101)), None];
        let t = data.trusted_pieces(&touched, layout);
        assert_eq!(t.iter_ones().map(|p| p.0).collect::<Vec<_>>(), [0, 1]);
        let gone = [None, Some(stamp(20, 100)), None];
        assert_eq!(data.trusted_pieces(&gone, layout).count(), 0);
    }

    proptest! {
        #[test]
        fn round_trip(bits in proptest::collection::vec(any::<bool>(), 0..100),
                      files in proptest::collection::vec(proptest::option::of((0u64..1<<50, any::<i64>(), 0u32..1_000_000_000)), 0..10),
                      up in 0u64..1<<60, down in 0u64..1<<60) {
            let mut pieces = Bitfield::new(bits.len() as u32);
            for (i, b) in bits.iter().enumerate() { pieces.set(PieceIndex(i as u32), *b); }
            let data = ResumeData {
                info_hash: InfoHash([9; 20]),
                pieces,
                files: files.into_iter().map(|f| f.map(|(length, mtime_secs, mtime_nanos)| FileStamp { length, mtime_secs, mtime_nanos })).collect(),
                uploaded: up,
                downloaded: down,
            };
            let back = ResumeData::decode(&data.encode(), data.info_hash, data.pieces.len(), data.files.len()).unwrap();
            prop_assert_eq!(back, data);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ResumeData::decode(&bytes, InfoHash([9; 20]), 8, 2);
        }
    }
}
