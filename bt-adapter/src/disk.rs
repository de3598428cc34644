//! The files of one torrent: positional reads and writes, run by the driver on the runtime's
//! blocking pool. Every decision about which bytes go where is `bt_proto::storage`'s; this module only
//! opens files and moves bytes.
//!
//! - Files are opened lazily and kept in a small LRU cache ([`MAX_OPEN_FILES`]), so a torrent
//!   of thousands of files does not exhaust descriptors. A flush syncs the files written since
//!   the last one; a file evicted with unsynced writes is synced before it is closed, since
//!   the next flush (which resume data trusts) will not see it.
//! - A file opened for writing is created sparse and sized to its final length at once, so
//!   a later read of a piece never comes up short.
//! - Every file is opened beneath the base directory (on Linux by `openat2` with
//!   `RESOLVE_BENEATH`, elsewhere one component at a time with `O_NOFOLLOW`): a symbolic link
//!   in the download tree that leads outside it is refused, whatever the metainfo said and
//!   whenever the link was made.
//! - Missing or short files make a check fail; they are never read as zeros.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::UNIX_EPOCH;

use bt_proto::metainfo::{FileEntry, Metainfo};
use bt_proto::resume::FileStamp;
use bt_proto::storage::{
    StorageError, StorageOp, fill_from_plan, read_plan, verify_blocks, write_plan,
};
use bt_proto::{PieceHash, PieceIndex};
use bytes::Bytes;
use sha1::{Digest, Sha1};

use crate::beneath::{self, Access, OpenError};

mod file_read;

/// Bytes a piece check reads and hashes at a time: fits a core's L2 cache, so each byte read
/// is hashed from cache rather than memory, and a 16 MiB piece needs no 16 MiB buffer.
const CHECK_CHUNK: usize = 256 * 1024;

/// Files of one torrent held open at once. Descriptor limits are commonly 1024 per process;
/// 128 per torrent leaves room for sockets and several busy torrents.
pub const MAX_OPEN_FILES: usize = 128;

#[derive(Debug)]
struct Open {
    file: Arc<File>,
    writable: bool,
    used: u64,
    /// Written since it was last synced.
    dirty: bool,
}

#[derive(Debug, Default)]
struct Cache {
    open: HashMap<usize, Open>,
    clock: u64,
    /// The first failure to sync a file evicted with unsynced writes: the next flush reports
    /// it, so resume data never vouches for writes that may not be on the device.
    /// Boxed: rare, and a session holds a cache in each of thousands of torrents.
    evicted_unsynced: Option<Box<StorageError>>,
    /// Which files were synced, in order: the tests check that evicted files are.
    #[cfg(test)]
    synced: Vec<usize>,
}

/// One torrent's files under a base directory.
#[derive(Debug)]
pub(crate) struct Storage {
    base: PathBuf,
    /// The torrent's files and piece map: the metainfo the engine and the handle hold too,
    /// not a copy of its paths (a session may hold thousands of torrents).
    meta: Arc<Metainfo>,
    cache: Mutex<Cache>,
    /// Files held open at once: [`MAX_OPEN_FILES`] (the tests make it small).
    max_open: usize,
    /// Empty files hold no piece, so no write creates them: the first store that succeeds in
    /// making them does.
    empties_made: AtomicBool,
    /// Held while a verified piece is written: the kernel lets one write into a file at a
    /// time and makes the others spin on its lock, so a second store waits here asleep
    /// instead (PERF.md, "One piece written at a time"). Pieces are still hashed in parallel.
    write_lock: Mutex<()>,
}

impl Storage {
    /// The storage of `meta`'s files under `base`. Touches nothing on disk.
    pub(crate) fn new(base: PathBuf, meta: impl Into<Arc<Metainfo>>) -> Self {
        Storage {
            base,
            meta: meta.into(),
            cache: Mutex::new(Cache::default()),
            max_open: MAX_OPEN_FILES,
            empties_made: AtomicBool::new(false),
            write_lock: Mutex::new(()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the cache inconsistent (it only maps
        // indexes to open files), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spec(&self, index: usize) -> io::Result<&FileEntry> {
        self.meta
            .files()
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file in torrent"))
    }

    /// An open handle to file `index`, from the cache or opened now (beneath the base
    /// directory: see `beneath`).
    fn open(&self, index: usize, write: bool) -> Result<Arc<File>, OpenError> {
        let mut cache = self.cache();
        cache.clock += 1;
        let now = cache.clock;
        if let Some(o) = cache.open.get_mut(&index)
            && (o.writable || !write)
        {
            o.used = now;
            return Ok(o.file.clone());
        }
        let spec = self.spec(index)?;
        let file = if write {
            let f = beneath::open(&self.base, &spec.path.to_path_buf(), Access::Write)?;
            if f.metadata()?.len() < spec.length {
                // Sparse: no blocks are allocated until written.
                f.set_len(spec.length)?;
            }
            f
        } else {
            beneath::open(&self.base, &spec.path.to_path_buf(), Access::Read)?
        };
        let mut evicted = None;
        if cache.open.len() >= self.max_open
            && !cache.open.contains_key(&index)
            && let Some(oldest) = cache
                .open
                .iter()
                .min_by_key(|(_, o)| o.used)
                .map(|(k, _)| *k)
        {
            evicted = cache.open.remove(&oldest).map(|o| (oldest, o));
        }
        let file = Arc::new(file);
        cache.open.insert(
            index,
            Open {
                file: file.clone(),
                writable: write,
                used: now,
                dirty: false,
            },
        );
        drop(cache);
        if let Some((i, o)) = evicted
            && o.dirty
            && let Err(e) = self.sync(i, &o.file)
        {
            // No flush will see this file again; the next one reports the failure instead.
            self.cache()
                .evicted_unsynced
                .get_or_insert_with(|| Box::new(e));
        }
        Ok(file)
    }

    /// Syncs file `index`'s data to the device. Not with the cache locked: it may take long.
    fn sync(&self, index: usize, file: &File) -> Result<(), StorageError> {
        file.sync_data()
            .map_err(|e| self.failed(StorageOp::Flush, index, e))?;
        #[cfg(test)]
        self.cache().synced.push(index);
        Ok(())
    }

    /// File `index` (the handle `file`) was written: it is marked for the next flush, or, if
    /// it was evicted from the cache meanwhile (so no flush will see it), synced now.
    fn written(&self, index: usize, file: &Arc<File>) -> Result<(), StorageError> {
        if let Some(o) = self.cache().open.get_mut(&index)
            && Arc::ptr_eq(&o.file, file)
        {
            o.dirty = true;
            return Ok(());
        }
        self.sync(index, file)
    }

    /// The error of `op` on file `file` failing with `e`.
    fn failed(&self, op: StorageOp, file: usize, e: impl Into<OpenError>) -> StorageError {
        let path = self.meta.files().get(file).map_or_else(
            || self.base.clone(),
            |s| self.base.join(s.path.to_path_buf()),
        );
        match e.into() {
            OpenError::Outside => StorageError::OutsideBase { op, path },
            OpenError::Io(e) => StorageError::Io {
                op,
                path,
                error: e.into(),
            },
        }
    }

    /// Hashes a downloaded piece and, if it matches, writes it: `Ok(false)` on a mismatch
    /// (nothing written).
    pub(crate) fn store(
        &self,
        piece: PieceIndex,
        hash: &PieceHash,
        blocks: &[Bytes],
    ) -> Result<bool, StorageError> {
        if !verify_blocks(blocks, hash) {
            return Ok(false);
        }
        let plan = write_plan(self.meta.piece_map(), piece, blocks).map_err(StorageError::Plan)?;
        if !self.empties_made.load(Ordering::Relaxed) {
            self.make_empty_files()?;
            self.empties_made.store(true, Ordering::Relaxed);
        }
        // Nothing the lock guards can be left half-changed by a panic, so poison is ignored.
        let _writing = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        for w in plan {
            let file = self
                .open(w.file, true)
                .map_err(|e| self.failed(StorageOp::Create, w.file, e))?;
            let mut offset = w.offset;
            for buf in &w.bufs {
                write_all_at(&file, buf, offset)
                    .map_err(|e| self.failed(StorageOp::Write, w.file, e))?;
                offset += buf.len() as u64;
            }
            self.written(w.file, &file)?;
        }
        Ok(true)
    }

    /// Creates the torrent's empty files (and their directories).
    fn make_empty_files(&self) -> Result<(), StorageError> {
        for (i, spec) in self.meta.files().iter().enumerate() {
            if spec.length == 0 && !spec.is_padding() {
                beneath::open(&self.base, &spec.path.to_path_buf(), Access::Write)
                    .map_err(|e| self.failed(StorageOp::Create, i, e))?;
            }
        }
        Ok(())
    }

    /// Appends `len` bytes at `offset` of `piece` to `out` (padding as zeros).
    fn read_into(
        &self,
        piece: PieceIndex,
        offset: u32,
        len: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        let plan = read_plan(self.meta.piece_map(), piece, offset, len)
            .map_err(|e| StorageError::Plan(e.into()))?;
        let start = out.len();
        let complete = fill_from_plan(&plan, len as usize, out, |seg, buf| {
            let file = self
                .open(seg.file, false)
                .map_err(|e| self.failed(StorageOp::Open, seg.file, e))?;
            read_append_at(&file, buf, seg.len as usize, seg.offset)
                .map_err(|e| self.failed(StorageOp::Read, seg.file, e))
        })?;
        if !complete {
            return Err(StorageError::ShortRead {
                piece,
                offset,
                wanted: len,
                got: out.len().saturating_sub(start),
            });
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` of `piece` to serve to peers: several consecutive blocks
    /// in one read, into a buffer of exactly that size that is never zeroed first.
    pub(crate) fn read_run(
        &self,
        piece: PieceIndex,
        offset: u32,
        len: u32,
    ) -> Result<Bytes, StorageError> {
        let mut out = Vec::with_capacity(len as usize);
        self.read_into(piece, offset, len, &mut out)?;
        Ok(Bytes::from(out))
    }

    /// Whether the piece on disk hashes to `hash`; any read failure (missing or short file)
    /// is a mismatch.
    pub(crate) fn check(&self, piece: PieceIndex, hash: &PieceHash) -> bool {
        let Some(len) = self.meta.piece_map().piece_len(piece) else {
            return false;
        };
        // Read and hash a chunk at a time: the chunk is hashed while still in the core's
        // cache, and the buffer is small whatever the piece length.
        let mut buf = Vec::with_capacity((len as usize).min(CHECK_CHUNK));
        let mut hasher = Sha1::new();
        let mut offset = 0u32;
        while offset < len {
            let n = (len - offset).min(CHECK_CHUNK as u32);
            buf.clear();
            if self.read_into(piece, offset, n, &mut buf).is_err() {
                return false;
            }
            hasher.update(&buf);
            offset += n;
        }
        <[u8; 20]>::from(hasher.finalize()) == hash.0
    }

    /// Flushes every file written since it was last synced to the device; the first failure
    /// (of these, or of a file evicted from the cache since the last flush) is returned.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        let (mut result, files) = {
            let mut cache = self.cache();
            let files: Vec<(usize, Arc<File>)> = cache
                .open
                .iter_mut()
                .filter(|(_, o)| o.dirty)
                .map(|(i, o)| {
                    // Cleared first: a write during the sync marks it again.
                    o.dirty = false;
                    (*i, o.file.clone())
                })
                .collect();
            (
                cache.evicted_unsynced.take().map_or(Ok(()), |e| Err(*e)),
                files,
            )
        };
        for (i, f) in files {
            if let Err(e) = self.sync(i, &f) {
                if let Some(o) = self.cache().open.get_mut(&i) {
                    o.dirty = true;
                }
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Flushes and closes every open file.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        let result = self.flush();
        self.cache().open.clear();
        result
    }

    /// Each file's stamp now (length and modification time), `None` where it is missing,
    /// unreadable, escapes the base directory, or is padding.
    pub(crate) fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.meta
            .files()
            .iter()
            .map(|spec| {
                if spec.is_padding() {
                    return None;
                }
                let m = beneath::open(&self.base, &spec.path.to_path_buf(), Access::Read)
                    .ok()?
                    .metadata()
                    .ok()?;
                let mtime = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
                Some(FileStamp {
                    length: m.len(),
                    mtime_secs: i64::try_from(mtime.as_secs()).ok()?,
                    mtime_nanos: mtime.subsec_nanos(),
                })
            })
            .collect()
    }

    /// Whether any file of the torrent exists on disk.
    pub(crate) fn any_file_exists(&self) -> bool {
        self.stamps().iter().any(Option::is_some)
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Appends `len` bytes at `offset` of `file` to `out`, read straight into its spare
/// capacity (never zeroed first). Bytes the read brings beyond `len` (when `out` has more
/// room and the file goes on) are dropped again. The end of the file before `len` bytes is
/// an error, and leaves `out` as it was.
#[cfg(unix)]
pub(crate) fn read_append_at(
    file: &File,
    out: &mut Vec<u8>,
    len: usize,
    mut offset: u64,
) -> io::Result<()> {
    let start = out.len();
    let end = start.saturating_add(len);
    out.reserve(len);
    while out.len() < end {
        let n = match rustix::io::pread(file, rustix::buffer::spare_capacity(out), offset) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => Ok(n),
            Err(rustix::io::Errno::INTR) => Ok(0),
            Err(e) => Err(io::Error::from(e)),
        };
        match n {
            Ok(n) => offset += n as u64,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
    out.truncate(end);
    Ok(())
}

/// Appends `len` bytes at `offset` of `file` to `out`; the end of the file first is an
/// error.
#[cfg(not(unix))]
pub(crate) fn read_append_at(
    file: &File,
    out: &mut Vec<u8>,
    len: usize,
    offset: u64,
) -> io::Result<()> {
    let start = out.len();
    out.resize(start.saturating_add(len), 0);
    let result = read_exact_at(file, out.get_mut(start..).unwrap_or_default(), offset);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = buf.get(n..).unwrap_or_default();
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = std::mem::take(&mut buf).get_mut(n..).unwrap_or_default();
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// Elsewhere, seek then read or write under one lock, so concurrent users of a file cannot
// interleave a seek and another's write.
#[cfg(not(any(unix, windows)))]
static SEEK_LOCK: Mutex<()> = Mutex::new(());

#[cfg(not(any(unix, windows)))]
fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let _g = SEEK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}

#[cfg(not(any(unix, windows)))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let _g = SEEK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_proto::metainfo::create::{InputFile, TorrentBuilder};
    use std::fs;

    fn torrent(files: &[(&str, &[u8])], piece_length: u32) -> Metainfo {
        let inputs = files
            .iter()
            .map(|(p, d)| InputFile::new(p.split('/'), d.len() as u64));
        let plan = TorrentBuilder::multi_file("t", inputs)
            .piece_length(piece_length)
            .plan()
            .unwrap();
        let mut h = plan.hasher();
        for f in plan.files() {
            let (_, data) = files[f.source.unwrap()];
            h.update(data);
        }
        Metainfo::from_bytes(&plan.build(&h.finish().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn store_then_read_and_check() {
        let dir = tempfile::tempdir().unwrap();
        let meta = torrent(&[("a", b"hello"), ("e/empty", b""), ("d/b", b"world!")], 4);
        let s = Storage::new(dir.path().join("base"), meta.clone());
        assert!(!s.any_file_exists());
        let all = b"helloworld!";
        for p in 0..meta.piece_count() {
            let piece = PieceIndex(p);
            let start = (p * 4) as usize;
            let data = &all[start..(start + 4).min(all.len())];
            let hash = meta.piece_hash(piece).unwrap();
            assert!(!s.check(piece, &hash), "missing data never passes");
            // A wrong piece is refused and not written.
            assert!(
                !s.store(piece, &PieceHash([0; 20]), &[Bytes::copy_from_slice(data)])
                    .unwrap()
            );
            assert!(
                s.store(piece, &hash, &[Bytes::copy_from_slice(data)])
                    .unwrap()
            );
            assert!(s.check(piece, &hash));
        }
        s.close().unwrap();
        assert_eq!(fs::read(dir.path().join("base/t/a")).unwrap(), b"hello");
        assert_eq!(fs::read(dir.path().join("base/t/d/b")).unwrap(), b"world!");
        assert_eq!(fs::read(dir.path().join("base/t/e/empty")).unwrap(), b"");
        assert_eq!(&s.read_run(PieceIndex(1), 1, 3).unwrap()[..], b"wor");
        assert!(s.stamps().iter().all(Option::is_some));
    }

    #[test]
    fn pieces_of_many_blocks_are_written_in_place_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..100u8).collect();
        let b: Vec<u8> = (100..=255u8).collect();
        let meta = torrent(&[("a", &a), ("b", &b)], 32);
        let s = Storage::new(dir.path().to_path_buf(), meta.clone());
        let all: Vec<u8> = a.iter().chain(&b).copied().collect();
        for p in (0..meta.piece_count()).rev() {
            let piece = PieceIndex(p);
            let start = p as usize * 32;
            let data = &all[start..(start + 32).min(all.len())];
            // Blocks of 5 bytes (the last shorter) and an empty one: each byte must land where it
            // belongs, across the file boundary too.
            let mut blocks: Vec<Bytes> = data.chunks(5).map(Bytes::copy_from_slice).collect();
            blocks.insert(1, Bytes::new());
            let hash = meta.piece_hash(piece).unwrap();
            assert!(s.store(piece, &hash, &blocks).unwrap(), "piece {p}");
        }
        s.close().unwrap();
        assert_eq!(fs::read(dir.path().join("t/a")).unwrap(), a);
        assert_eq!(fs::read(dir.path().join("t/b")).unwrap(), b);
    }

    #[test]
    fn reads_append_exactly_the_bytes_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        // Room for far more than asked: the bytes after the range must not be appended.
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(b"ab");
        read_append_at(&file, &mut out, 3, 4).unwrap();
        assert_eq!(out, b"ab456");
        let err = read_append_at(&file, &mut out, 5, 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out, b"ab456", "a failed read appends nothing");
    }

    #[test]
    fn short_file_fails_check() {
        let dir = tempfile::tempdir().unwrap();
        let meta = torrent(&[("a", b"abcdefgh")], 4);
        fs::create_dir_all(dir.path().join("t")).unwrap();
        fs::write(dir.path().join("t/a"), b"abcd").unwrap();
        let s = Storage::new(dir.path().to_path_buf(), meta.clone());
        assert!(s.check(PieceIndex(0), &meta.piece_hash(PieceIndex(0)).unwrap()));
        assert!(!s.check(PieceIndex(1), &meta.piece_hash(PieceIndex(1)).unwrap()));
    }

    /// A symlinked directory and a symlinked file in the download tree, both leading
    /// outside: every write, read, check and stamp through them is refused with a typed
    /// error, and nothing outside is touched.
    #[cfg(unix)]
    #[test]
    fn symlinks_leading_outside_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        fs::write(&secret, b"SECRET!!").unwrap();
        let meta = torrent(&[("d/x", b"abcd"), ("f", b"efghijkl")], 4);
        let base = dir.path().join("base");
        fs::create_dir_all(base.join("t")).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("t/d")).unwrap();
        std::os::unix::fs::symlink(&secret, base.join("t/f")).unwrap();
        let s = Storage::new(base.clone(), meta.clone());
        let outside_base = |e: &StorageError, file: &str, want: StorageOp| {
            assert!(
                matches!(e, StorageError::OutsideBase { op, path }
                    if *op == want && *path == base.join(file)),
                "{e:?}"
            );
        };
        let hash = meta.piece_hash(PieceIndex(0)).unwrap();
        let err = s
            .store(PieceIndex(0), &hash, &[Bytes::from_static(b"abcd")])
            .unwrap_err();
        outside_base(&err, "t/d/x", StorageOp::Create);
        assert!(err.to_string().contains("outside"), "{err}");
        let hash = meta.piece_hash(PieceIndex(1)).unwrap();
        let err = s
            .store(PieceIndex(1), &hash, &[Bytes::from_static(b"efgh")])
            .unwrap_err();
        outside_base(&err, "t/f", StorageOp::Create);
        let err = s.read_run(PieceIndex(1), 0, 4).unwrap_err();
        outside_base(&err, "t/f", StorageOp::Open);
        assert!(!s.check(PieceIndex(2), &meta.piece_hash(PieceIndex(2)).unwrap()));
        assert_eq!(s.stamps(), vec![None, None]);
        assert_eq!(fs::read(&secret).unwrap(), b"SECRET!!");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
    }

    /// A directory of the download swapped back and forth with a symbolic link to another
    /// directory while files are opened in it: no write ever lands in the other directory,
    /// however the swaps and the opens interleave.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_directory_swapped_for_a_symlink_never_leads_a_write_outside() {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..64).map(|i| format!("d/f{i:02}")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let meta = torrent(&files, 1);
        let base = dir.path().join("base");
        fs::create_dir_all(base.join("t/d")).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("t/link")).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (done, d, link) = (done.clone(), base.join("t/d"), base.join("t/link"));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    renameat_with(CWD, &d, CWD, &link, RenameFlags::EXCHANGE).unwrap();
                }
            })
        };
        let s = Storage::new(base, meta.clone());
        for _ in 0..20 {
            for p in 0..meta.piece_count() {
                let piece = PieceIndex(p);
                let hash = meta.piece_hash(piece).unwrap();
                let _ = s.store(piece, &hash, &[Bytes::from_static(b"x")]);
            }
            // Closed, so every store opens its file again.
            let _ = s.close();
        }
        done.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        let escaped: Vec<_> = fs::read_dir(outside.path()).unwrap().collect();
        assert!(
            escaped.is_empty(),
            "{} files written outside",
            escaped.len()
        );
    }

    /// A file evicted from the open-file cache while it holds unsynced writes is synced
    /// before it is closed: the flush of the next resume save no longer sees it, and that
    /// save then vouches for its pieces.
    #[test]
    fn files_evicted_with_unsynced_writes_are_synced_first() {
        let dir = tempfile::tempdir().unwrap();
        let meta = torrent(&[("a", b"x"), ("b", b"y"), ("c", b"z")], 1);
        let mut s = Storage::new(dir.path().to_path_buf(), meta.clone());
        s.max_open = 2;
        let store = |p: u32, data: &'static [u8]| {
            let hash = meta.piece_hash(PieceIndex(p)).unwrap();
            assert!(
                s.store(PieceIndex(p), &hash, &[Bytes::from_static(data)])
                    .unwrap()
            );
        };
        store(0, b"x");
        store(1, b"y");
        assert!(s.cache().synced.is_empty());
        // File 2 takes the place of file 0, the least recently used, unsynced.
        store(2, b"z");
        assert_eq!(s.cache().synced, [0]);
        // What a resume save does before it stamps the files.
        s.flush().unwrap();
        let mut synced = s.cache().synced.clone();
        synced.sort();
        assert_eq!(synced, [0, 1, 2]);
        s.flush().unwrap();
        assert_eq!(
            s.cache().synced.len(),
            3,
            "nothing written since, nothing synced"
        );
    }

    /// The empty files are made by the first store that manages to: one that fails (a file
    /// in the way of their directory) leaves the next store to try again.
    #[test]
    fn empty_files_are_made_by_the_first_store_that_can() {
        let dir = tempfile::tempdir().unwrap();
        let meta = torrent(&[("a", b"abcd"), ("e/empty", b"")], 4);
        let base = dir.path().to_path_buf();
        fs::create_dir_all(base.join("t")).unwrap();
        fs::write(base.join("t/e"), b"in the way").unwrap();
        let s = Storage::new(base.clone(), meta.clone());
        let hash = meta.piece_hash(PieceIndex(0)).unwrap();
        let piece = [Bytes::from_static(b"abcd")];
        let err = s.store(PieceIndex(0), &hash, &piece).unwrap_err();
        assert!(
            matches!(&err, StorageError::Io { op: StorageOp::Create, path, .. }
                if *path == base.join("t/e/empty")),
            "{err:?}"
        );
        fs::remove_file(base.join("t/e")).unwrap();
        assert!(s.store(PieceIndex(0), &hash, &piece).unwrap());
        assert!(base.join("t/e/empty").is_file());
    }

    #[test]
    fn lru_bounds_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..MAX_OPEN_FILES + 10)
            .map(|i| format!("f{i:04}"))
            .collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let meta = torrent(&files, 1);
        let s = Storage::new(dir.path().to_path_buf(), meta.clone());
        for p in 0..meta.piece_count() {
            let piece = PieceIndex(p);
            let hash = meta.piece_hash(piece).unwrap();
            assert!(s.store(piece, &hash, &[Bytes::from_static(b"x")]).unwrap());
            assert!(s.cache().open.len() <= MAX_OPEN_FILES);
        }
        for p in 0..meta.piece_count() {
            assert!(s.check(PieceIndex(p), &meta.piece_hash(PieceIndex(p)).unwrap()));
        }
    }
}
