//! The simulated disk: every host's files in memory, with faults on demand.
//!
//! Files are keyed by host and relative path, hold bytes (in chunks of shared buffers, so
//! that hosts with the same content share it: [`MemDisk::write_bytes`]), grow on write (a gap reads as
//! zeros, as in a sparse file) and answer reads past their end with short reads, as
//! `pread` does. A test can make writes or reads fail with a typed error, once, a few times
//! or until cleared, and can corrupt a file's bytes to exercise hash failure. Paths are
//! checked as the real adapters check them: an absolute path or one with `..` never reaches a
//! file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::rng::Rng;

mod file;
use file::File;

/// Largest file the simulated disk holds. Simulated torrents are small; a larger write means a
/// bug (or a hostile size that slipped through) and would exhaust memory.
pub const MAX_FILE_LEN: u64 = 1 << 32;

/// A disk operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The file does not exist.
    #[error("{host}: no file {path:?}")]
    NotFound {
        /// The host whose disk it is.
        host: SocketAddr,
        /// The path asked for.
        path: PathBuf,
    },
    /// The path is absolute, empty or climbs out with `..`.
    #[error("{host}: refusing unsafe path {path:?}")]
    UnsafePath {
        /// The host whose disk it is.
        host: SocketAddr,
        /// The path asked for.
        path: PathBuf,
    },
    /// The write would make the file larger than [`MAX_FILE_LEN`].
    #[error("{host}: write to {path:?} would end at byte {end}, past the limit")]
    TooLarge {
        /// The host whose disk it is.
        host: SocketAddr,
        /// The file.
        path: PathBuf,
        /// Where the write would end (saturated at `u64::MAX`).
        end: u64,
    },
    /// An injected write failure; the file is unchanged.
    #[error("{host}: injected write failure on {path:?} at offset {offset}")]
    WriteFault {
        /// The host whose disk it is.
        host: SocketAddr,
        /// The file.
        path: PathBuf,
        /// Where the write was to start.
        offset: u64,
    },
    /// An injected read failure.
    #[error("{host}: injected read failure on {path:?} at offset {offset}")]
    ReadFault {
        /// The host whose disk it is.
        host: SocketAddr,
        /// The file.
        path: PathBuf,
        /// Where the read was to start.
        offset: u64,
    },
}

/// Which files an injected fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultScope {
    /// Every file of a host.
    Host(SocketAddr),
    /// One file.
    File(SocketAddr, PathBuf),
}

impl FaultScope {
    fn covers(&self, host: SocketAddr, path: &Path) -> bool {
        match self {
            FaultScope::Host(h) => *h == host,
            FaultScope::File(h, p) => *h == host && p == path,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

#[derive(Debug, Clone)]
struct Fault {
    scope: FaultScope,
    op: Op,
    /// Failures left; `None` fails until cleared.
    remaining: Option<u32>,
}

/// Files of every simulated host, in memory.
///
/// ```
/// use std::path::Path;
/// use bt_proto::sim::disk::{DiskError, FaultScope, MemDisk};
/// let host = "10.0.0.1:6881".parse().unwrap();
/// let mut disk = MemDisk::new();
/// disk.write(host, Path::new("a/b.bin"), 4, b"data").unwrap();
/// assert_eq!(disk.read(host, Path::new("a/b.bin"), 0, 100).unwrap(), b"\0\0\0\0data");
/// disk.fail_writes(FaultScope::Host(host), Some(1));
/// assert!(matches!(disk.write(host, Path::new("a/b.bin"), 0, b"x"), Err(DiskError::WriteFault { .. })));
/// assert!(disk.write(host, Path::new("a/b.bin"), 0, b"x").is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    files: BTreeMap<(SocketAddr, PathBuf), File>,
    faults: Vec<Fault>,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> Self {
        MemDisk::default()
    }

    /// Writes `data` at `offset`, creating the file and zero-filling any gap before `offset`.
    pub fn write(
        &mut self,
        host: SocketAddr,
        path: &Path,
        offset: u64,
        data: &[u8],
    ) -> Result<(), DiskError> {
        self.write_bytes(host, path, offset, Bytes::copy_from_slice(data))
    }

    /// [`MemDisk::write`] of a shared buffer: the file keeps slices of `data` rather than a
    /// copy where it covers whole chunks, so hosts writing the same buffer share its memory.
    pub fn write_bytes(
        &mut self,
        host: SocketAddr,
        path: &Path,
        offset: u64,
        data: Bytes,
    ) -> Result<(), DiskError> {
        check_path(host, path)?;
        let end = offset.saturating_add(data.len() as u64);
        let too_large = || DiskError::TooLarge {
            host,
            path: path.to_path_buf(),
            end,
        };
        if end > MAX_FILE_LEN {
            return Err(too_large());
        }
        if self.take_fault(Op::Write, host, path) {
            return Err(DiskError::WriteFault {
                host,
                path: path.to_path_buf(),
                offset,
            });
        }
        let start = usize::try_from(offset).map_err(|_| too_large())?;
        usize::try_from(end).map_err(|_| too_large())?;
        let file = self.files.entry((host, path.to_path_buf())).or_default();
        file.write(start, &data);
        Ok(())
    }

    /// Reads up to `len` bytes at `offset`: fewer (maybe none) where the file ends first.
    pub fn read(
        &mut self,
        host: SocketAddr,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, DiskError> {
        self.read_bytes(host, path, offset, len).map(Vec::from)
    }

    /// [`MemDisk::read`] into a shared buffer: a read within one chunk (a block read of a
    /// piece-aligned file) is a slice of the file's memory, not a copy.
    pub fn read_bytes(
        &mut self,
        host: SocketAddr,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, DiskError> {
        check_path(host, path)?;
        if !self.files.contains_key(&(host, path.to_path_buf())) {
            return Err(not_found(host, path));
        }
        if self.take_fault(Op::Read, host, path) {
            return Err(DiskError::ReadFault {
                host,
                path: path.to_path_buf(),
                offset,
            });
        }
        let Some(file) = self.files.get(&(host, path.to_path_buf())) else {
            return Err(not_found(host, path));
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        Ok(file.read(start, start.saturating_add(len)))
    }

    /// Places a whole file (e.g. a seed's content), replacing any file at that path.
    pub fn insert(
        &mut self,
        host: SocketAddr,
        path: &Path,
        contents: Vec<u8>,
    ) -> Result<(), DiskError> {
        self.insert_bytes(host, path, Bytes::from(contents))
    }

    /// [`MemDisk::insert`] of a shared buffer, which the file keeps rather than copies.
    pub fn insert_bytes(
        &mut self,
        host: SocketAddr,
        path: &Path,
        contents: Bytes,
    ) -> Result<(), DiskError> {
        check_path(host, path)?;
        if contents.len() as u64 > MAX_FILE_LEN {
            return Err(DiskError::TooLarge {
                host,
                path: path.to_path_buf(),
                end: contents.len() as u64,
            });
        }
        self.files
            .insert((host, path.to_path_buf()), File::from_bytes(&contents));
        Ok(())
    }

    /// Removes a file; `true` if it existed.
    pub fn remove(&mut self, host: SocketAddr, path: &Path) -> bool {
        self.files.remove(&(host, path.to_path_buf())).is_some()
    }

    /// A file's bytes, if it exists (copied out of its chunks).
    pub fn contents(&self, host: SocketAddr, path: &Path) -> Option<Vec<u8>> {
        self.files
            .get(&(host, path.to_path_buf()))
            .map(File::to_vec)
    }

    /// A file's length, if it exists.
    pub fn len(&self, host: SocketAddr, path: &Path) -> Option<u64> {
        self.files
            .get(&(host, path.to_path_buf()))
            .map(|f| f.len() as u64)
    }

    /// The paths of a host's files, sorted.
    pub fn files(&self, host: SocketAddr) -> Vec<&Path> {
        self.files
            .keys()
            .filter(|(h, _)| *h == host)
            .map(|(_, p)| p.as_path())
            .collect()
    }

    /// Makes the next `times` writes in `scope` fail (`None`: until [`MemDisk::clear_faults`]).
    pub fn fail_writes(&mut self, scope: FaultScope, times: Option<u32>) {
        self.faults.push(Fault {
            scope,
            op: Op::Write,
            remaining: times,
        });
    }

    /// Makes the next `times` reads in `scope` fail (`None`: until [`MemDisk::clear_faults`]).
    pub fn fail_reads(&mut self, scope: FaultScope, times: Option<u32>) {
        self.faults.push(Fault {
            scope,
            op: Op::Read,
            remaining: times,
        });
    }

    /// Removes every injected read and write fault.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Changes every byte of `offset..offset + len` (clipped to the file) to a different
    /// random value, as silent disk corruption would; returns how many bytes changed.
    pub fn corrupt(
        &mut self,
        host: SocketAddr,
        path: &Path,
        offset: u64,
        len: usize,
        rng: &mut Rng,
    ) -> Result<usize, DiskError> {
        let file = self
            .files
            .get_mut(&(host, path.to_path_buf()))
            .ok_or_else(|| not_found(host, path))?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(file.len());
        let end = start.saturating_add(len).min(file.len());
        file.modify(start, end, |byte| {
            // XOR with a non-zero mask always changes the byte.
            let mask = 1 + rng.below(255) as u8;
            *byte ^= mask;
        });
        Ok(end - start)
    }

    /// Whether a fault applies to this operation now, using one of its failures if so.
    fn take_fault(&mut self, op: Op, host: SocketAddr, path: &Path) -> bool {
        let hit = self.faults.iter_mut().find(|f| {
            f.op == op && f.scope.covers(host, path) && f.remaining.is_none_or(|n| n > 0)
        });
        match hit {
            Some(fault) => {
                if let Some(n) = fault.remaining.as_mut() {
                    *n -= 1;
                }
                self.faults.retain(|f| f.remaining != Some(0));
                true
            }
            None => false,
        }
    }
}

fn not_found(host: SocketAddr, path: &Path) -> DiskError {
    DiskError::NotFound {
        host,
        path: path.to_path_buf(),
    }
}

/// A relative path of plain names only, as the adapters require before opening a file.
fn check_path(host: SocketAddr, path: &Path) -> Result<(), DiskError> {
    let mut components = path.components().peekable();
    let plain =
        components.peek().is_some() && components.all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(DiskError::UnsafePath {
            host,
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::*;

    fn host(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 6881))
    }

    #[test]
    fn writes_grow_files_and_reads_are_short_past_the_end() {
        let mut d = MemDisk::new();
        let p = Path::new("dir/file");
        d.write(host(1), p, 0, b"hello").unwrap();
        d.write(host(1), p, 8, b"xy").unwrap();
        assert_eq!(d.contents(host(1), p).unwrap(), b"hello\0\0\0xy");
        d.write(host(1), p, 1, b"EL").unwrap();
        assert_eq!(d.read(host(1), p, 0, 5).unwrap(), b"hELlo");
        assert_eq!(d.read(host(1), p, 7, 100).unwrap(), b"\0xy");
        assert_eq!(d.read(host(1), p, 10, 4).unwrap(), b"");
        assert_eq!(d.read(host(1), p, u64::MAX, usize::MAX).unwrap(), b"");
        assert_eq!(d.len(host(1), p), Some(10));
        // Another host's disk is separate.
        assert_eq!(
            d.read(host(2), p, 0, 1),
            Err(DiskError::NotFound {
                host: host(2),
                path: p.into()
            })
        );
    }

    #[test]
    fn insert_remove_and_listing() {
        let mut d = MemDisk::new();
        d.insert(host(1), Path::new("b"), vec![1, 2]).unwrap();
        d.insert(host(1), Path::new("a"), vec![3]).unwrap();
        d.insert(host(2), Path::new("c"), vec![]).unwrap();
        assert_eq!(d.files(host(1)), vec![Path::new("a"), Path::new("b")]);
        assert!(d.remove(host(1), Path::new("a")));
        assert!(!d.remove(host(1), Path::new("a")));
        assert_eq!(d.files(host(1)), vec![Path::new("b")]);
        assert_eq!(d.len(host(2), Path::new("c")), Some(0));
    }

    #[test]
    fn unsafe_paths_and_huge_writes_are_refused() {
        let mut d = MemDisk::new();
        for bad in ["", ".", "/etc/passwd", "../x", "a/../../x"] {
            let p = Path::new(bad);
            assert!(matches!(
                d.write(host(1), p, 0, b"x"),
                Err(DiskError::UnsafePath { .. })
            ));
            assert!(matches!(
                d.read(host(1), p, 0, 1),
                Err(DiskError::UnsafePath { .. })
            ));
        }
        let p = Path::new("big");
        assert_eq!(
            d.write(host(1), p, MAX_FILE_LEN, b"x"),
            Err(DiskError::TooLarge {
                host: host(1),
                path: p.into(),
                end: MAX_FILE_LEN + 1
            })
        );
        assert!(matches!(
            d.write(host(1), p, u64::MAX, b"x"),
            Err(DiskError::TooLarge { end: u64::MAX, .. })
        ));
        assert_eq!(d.len(host(1), p), None);
    }

    #[test]
    fn write_faults_fail_a_counted_number_of_times_without_changing_the_file() {
        let mut d = MemDisk::new();
        let p = Path::new("f");
        d.write(host(1), p, 0, b"aaaa").unwrap();
        d.fail_writes(FaultScope::File(host(1), p.into()), Some(2));
        for _ in 0..2 {
            assert_eq!(
                d.write(host(1), p, 1, b"b"),
                Err(DiskError::WriteFault {
                    host: host(1),
                    path: p.into(),
                    offset: 1
                })
            );
        }
        assert_eq!(d.contents(host(1), p).unwrap(), b"aaaa");
        // Other files and hosts are not affected; the third write succeeds.
        d.write(host(1), Path::new("g"), 0, b"ok").unwrap();
        d.write(host(2), p, 0, b"ok").unwrap();
        d.write(host(1), p, 1, b"b").unwrap();
        assert_eq!(d.contents(host(1), p).unwrap(), b"abaa");
    }

    #[test]
    fn unbounded_faults_last_until_cleared_and_reads_can_fail_too() {
        let mut d = MemDisk::new();
        let p = Path::new("f");
        d.insert(host(1), p, vec![1; 10]).unwrap();
        d.fail_reads(FaultScope::Host(host(1)), None);
        d.fail_writes(FaultScope::Host(host(1)), None);
        for _ in 0..5 {
            assert!(matches!(
                d.read(host(1), p, 3, 1),
                Err(DiskError::ReadFault { offset: 3, .. })
            ));
            assert!(d.write(host(1), p, 0, b"x").is_err());
        }
        // A missing file is reported as such, not as a fault.
        assert!(matches!(
            d.read(host(1), Path::new("nope"), 0, 1),
            Err(DiskError::NotFound { .. })
        ));
        d.clear_faults();
        assert_eq!(d.read(host(1), p, 3, 1).unwrap(), vec![1]);
    }

    #[test]
    fn hosts_writing_one_buffer_share_it_until_one_changes() {
        let mut d = MemDisk::new();
        let p = Path::new("f");
        let shared = Bytes::from(vec![7u8; 3 * file::CHUNK]);
        d.insert_bytes(host(1), p, shared.clone()).unwrap();
        d.write_bytes(host(2), p, 0, shared.clone()).unwrap();
        let block = |d: &mut MemDisk, h| d.read_bytes(h, p, file::CHUNK as u64, 100).unwrap();
        // A read within a chunk is a slice of the buffer both hosts hold, not a copy.
        let at = shared.as_ptr().wrapping_add(file::CHUNK);
        assert_eq!(block(&mut d, host(1)).as_ptr(), at);
        assert_eq!(block(&mut d, host(2)).as_ptr(), at);
        let mut rng = Rng::seed_from_u64(1);
        d.corrupt(host(2), p, file::CHUNK as u64, 1, &mut rng)
            .unwrap();
        assert_ne!(block(&mut d, host(2))[0], 7);
        assert_eq!(d.contents(host(1), p).unwrap(), &shared[..]);
        assert!(shared.iter().all(|&b| b == 7));
    }

    #[test]
    fn corruption_changes_every_byte_in_range_and_nothing_else() {
        let mut d = MemDisk::new();
        let p = Path::new("f");
        d.insert(host(1), p, vec![0xAA; 100]).unwrap();
        let mut rng = Rng::seed_from_u64(3);
        assert_eq!(d.corrupt(host(1), p, 10, 20, &mut rng).unwrap(), 20);
        let c = d.contents(host(1), p).unwrap();
        assert!(c[10..30].iter().all(|&b| b != 0xAA));
        assert!(c[..10].iter().chain(&c[30..]).all(|&b| b == 0xAA));
        assert_eq!(d.corrupt(host(1), p, 95, 100, &mut rng).unwrap(), 5);
        assert_eq!(d.corrupt(host(1), p, 500, 1, &mut rng).unwrap(), 0);
        assert!(matches!(
            d.corrupt(host(1), Path::new("x"), 0, 1, &mut rng),
            Err(DiskError::NotFound { .. })
        ));
    }

    proptest! {
        #[test]
        // Offsets and lengths across chunk boundaries; writes alternate between copied
        // bytes and shared buffers.
        fn matches_a_simple_model(ops in proptest::collection::vec((0..3 * file::CHUNK as u64, 0..2 * file::CHUNK, any::<u8>(), 0..2 * file::CHUNK), 0..24)) {
            let mut d = MemDisk::new();
            let p = Path::new("m");
            let mut model: Vec<u8> = Vec::new();
            for (i, (offset, len, first, read_len)) in ops.into_iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|j| first.wrapping_add(j as u8)).collect();
                if i % 2 == 0 {
                    d.write(host(1), p, offset, &data).unwrap();
                } else {
                    d.write_bytes(host(1), p, offset, Bytes::from(data.clone())).unwrap();
                }
                let (o, end) = (offset as usize, offset as usize + data.len());
                if model.len() < end { model.resize(end, 0); }
                model[o..end].copy_from_slice(&data);
                let got = d.read(host(1), p, offset, read_len).unwrap();
                let want_end = (o + read_len).min(model.len());
                prop_assert_eq!(&got[..], &model[o.min(want_end)..want_end]);
                prop_assert_eq!(d.len(host(1), p), Some(model.len() as u64));
            }
            prop_assert_eq!(d.contents(host(1), p).unwrap_or_default(), &model[..]);
        }
    }
}
