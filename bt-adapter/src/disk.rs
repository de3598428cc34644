//! The files of one torrent: positional reads and writes, run by the driver on the runtime's
//! blocking pool. Every decision about which bytes go where is `bt_proto::storage`'s; this module only
//! opens files and moves bytes.
//!
//! - Files are opened lazily and kept in a small LRU cache ([`MAX_OPEN_FILES`]), so a torrent
//!   of thousands of files does not exhaust descriptors.
//! - A file opened for writing is created sparse and sized to its final length at once, so
//!   a later read of a piece never comes up short.
//! - Every path is resolved again here, component by component, against the base directory:
//!   a directory or file that is a symlink leading outside the base is refused, whatever the
//!   metainfo said.
//! - Missing or short files make a check fail; they are never read as zeros.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::UNIX_EPOCH;

use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::piece_map::PieceMap;
use bt_proto::resume::FileStamp;
use bt_proto::storage::{
    StorageError, StorageOp, fill_from_plan, read_plan, verify_blocks, write_plan,
};
use bt_proto::{PieceHash, PieceIndex};
use bytes::Bytes;
use sha1::{Digest, Sha1};

/// Bytes a piece check reads and hashes at a time: fits a core's L2 cache, so each byte read
/// is hashed from cache rather than memory, and a 16 MiB piece needs no 16 MiB buffer.
const CHECK_CHUNK: usize = 256 * 1024;

/// Files of one torrent held open at once. Descriptor limits are commonly 1024 per process;
/// 128 per torrent leaves room for sockets and several busy torrents.
pub const MAX_OPEN_FILES: usize = 128;

#[derive(Debug)]
struct FileSpec {
    /// Relative to the base directory.
    rel: PathBuf,
    length: u64,
    padding: bool,
}

#[derive(Debug)]
struct Open {
    file: Arc<File>,
    writable: bool,
    used: u64,
}

#[derive(Debug, Default)]
struct Cache {
    open: HashMap<usize, Open>,
    clock: u64,
}

/// One torrent's files under a base directory.
#[derive(Debug)]
pub(crate) struct Storage {
    base: PathBuf,
    files: Vec<FileSpec>,
    map: PieceMap,
    cache: Mutex<Cache>,
    /// Empty files hold no piece, so no write creates them: the first store does.
    empties_made: AtomicBool,
    /// Held while a verified piece is written: the kernel lets one write into a file at a
    /// time and makes the others spin on its lock, so a second store waits here asleep
    /// instead (PERF.md, "One piece written at a time"). Pieces are still hashed in parallel.
    write_lock: Mutex<()>,
}

fn escape_error(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} leads outside the download directory; refused",
            path.display()
        ),
    )
}

impl Storage {
    /// The storage of `meta`'s files under `base`. Touches nothing on disk.
    pub(crate) fn new(base: PathBuf, meta: &Metainfo) -> Self {
        let files = meta
            .files()
            .iter()
            .map(|f| FileSpec {
                rel: f.path.to_path_buf(),
                length: f.length,
                padding: f.is_padding(),
            })
            .collect();
        Storage {
            base,
            files,
            map: meta.piece_map().clone(),
            cache: Mutex::new(Cache::default()),
            empties_made: AtomicBool::new(false),
            write_lock: Mutex::new(()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the cache inconsistent (it only maps
        // indexes to open files), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spec(&self, index: usize) -> io::Result<&FileSpec> {
        self.files
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file in torrent"))
    }

    /// The path of file `index`, checked against the base directory; with `create`, missing
    /// directories (the base included) are created one by one.
    fn resolve(&self, index: usize, create: bool) -> io::Result<PathBuf> {
        let spec = self.spec(index)?;
        if create {
            fs::create_dir_all(&self.base)?;
        }
        let base = fs::canonicalize(&self.base)?;
        let mut comps: Vec<&std::ffi::OsStr> = Vec::new();
        for c in spec.rel.components() {
            match c {
                Component::Normal(s) => comps.push(s),
                // The metainfo parser already refused these; refuse again rather than trust.
                _ => return Err(escape_error(&spec.rel)),
            }
        }
        let Some((name, dirs)) = comps.split_last() else {
            return Err(escape_error(&spec.rel));
        };
        let mut dir = base.clone();
        for d in dirs {
            dir.push(d);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    let real = fs::canonicalize(&dir)?;
                    if !real.starts_with(&base) || !real.is_dir() {
                        return Err(escape_error(&dir));
                    }
                    dir = real;
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a directory", dir.display()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    match fs::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let path = dir.join(name);
        if let Ok(m) = fs::symlink_metadata(&path)
            && m.file_type().is_symlink()
        {
            let real = fs::canonicalize(&path)?;
            if !real.starts_with(&base) {
                return Err(escape_error(&path));
            }
        }
        Ok(path)
    }

    /// An open handle to file `index`, from the cache or opened now.
    fn open(&self, index: usize, write: bool) -> io::Result<Arc<File>> {
        let mut cache = self.cache();
        cache.clock += 1;
        let now = cache.clock;
        if let Some(o) = cache.open.get_mut(&index)
            && (o.writable || !write)
        {
            o.used = now;
            return Ok(o.file.clone());
        }
        let path = self.resolve(index, write)?;
        let file = if write {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            let length = self.spec(index)?.length;
            if f.metadata()?.len() < length {
                // Sparse: no blocks are allocated until written.
                f.set_len(length)?;
            }
            f
        } else {
            File::open(&path)?
        };
        if cache.open.len() >= MAX_OPEN_FILES
            && !cache.open.contains_key(&index)
            && let Some(oldest) = cache
                .open
                .iter()
                .min_by_key(|(_, o)| o.used)
                .map(|(k, _)| *k)
        {
            cache.open.remove(&oldest);
        }
        let file = Arc::new(file);
        cache.open.insert(
            index,
            Open {
                file: file.clone(),
                writable: write,
                used: now,
            },
        );
        Ok(file)
    }

    /// The error of `op` on file `file` failing with `e`.
    fn failed(&self, op: StorageOp, file: usize, e: &io::Error) -> StorageError {
        let path = self
            .files
            .get(file)
            .map_or_else(|| self.base.clone(), |s| self.base.join(&s.rel));
        StorageError::Io {
            op,
            path,
            error: e.into(),
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
        let plan = write_plan(&self.map, piece, blocks).map_err(StorageError::Plan)?;
        if !self.empties_made.swap(true, Ordering::Relaxed) {
            self.make_empty_files()?;
        }
        // Nothing the lock guards can be left half-changed by a panic, so poison is ignored.
        let _writing = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        for w in plan {
            let file = self
                .open(w.file, true)
                .map_err(|e| self.failed(StorageOp::Create, w.file, &e))?;
            let mut offset = w.offset;
            for buf in &w.bufs {
                write_all_at(&file, buf, offset)
                    .map_err(|e| self.failed(StorageOp::Write, w.file, &e))?;
                offset += buf.len() as u64;
            }
        }
        Ok(true)
    }

    /// Creates the torrent's empty files (and their directories).
    fn make_empty_files(&self) -> Result<(), StorageError> {
        for (i, spec) in self.files.iter().enumerate() {
            if spec.length == 0 && !spec.padding {
                let create = |e| self.failed(StorageOp::Create, i, &e);
                let path = self.resolve(i, true).map_err(create)?;
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(create)?;
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
        let plan =
            read_plan(&self.map, piece, offset, len).map_err(|e| StorageError::Plan(e.into()))?;
        let start = out.len();
        let complete = fill_from_plan(&plan, len as usize, out, |seg, buf| {
            let file = self
                .open(seg.file, false)
                .map_err(|e| self.failed(StorageOp::Open, seg.file, &e))?;
            read_append_at(&file, buf, seg.len as usize, seg.offset)
                .map_err(|e| self.failed(StorageOp::Read, seg.file, &e))
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
        let Some(len) = self.map.piece_len(piece) else {
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

    /// Flushes every file open for writing to the device.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        let files: Vec<(usize, Arc<File>)> = self
            .cache()
            .open
            .iter()
            .filter(|(_, o)| o.writable)
            .map(|(i, o)| (*i, o.file.clone()))
            .collect();
        for (i, f) in files {
            f.sync_data()
                .map_err(|e| self.failed(StorageOp::Flush, i, &e))?;
        }
        Ok(())
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
        (0..self.files.len())
            .map(|i| {
                if self.files.get(i).is_none_or(|s| s.padding) {
                    return None;
                }
                let path = self.resolve(i, false).ok()?;
                let m = fs::metadata(path).ok()?;
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
        let s = Storage::new(dir.path().join("base"), &meta);
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
        let s = Storage::new(dir.path().to_path_buf(), &meta);
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
        let s = Storage::new(dir.path().to_path_buf(), &meta);
        assert!(s.check(PieceIndex(0), &meta.piece_hash(PieceIndex(0)).unwrap()));
        assert!(!s.check(PieceIndex(1), &meta.piece_hash(PieceIndex(1)).unwrap()));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_out_of_base_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let meta = torrent(&[("d/x", b"abcd")], 4);
        let base = dir.path().join("base");
        fs::create_dir_all(base.join("t")).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("t/d")).unwrap();
        let s = Storage::new(base, &meta);
        let hash = meta.piece_hash(PieceIndex(0)).unwrap();
        let err = s
            .store(PieceIndex(0), &hash, &[Bytes::from_static(b"abcd")])
            .unwrap_err();
        assert!(
            matches!(
                &err,
                StorageError::Io { op: StorageOp::Create, error, .. }
                    if error.kind == io::ErrorKind::PermissionDenied
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("outside"), "{err}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn lru_bounds_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..MAX_OPEN_FILES + 10)
            .map(|i| format!("f{i:04}"))
            .collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let meta = torrent(&files, 1);
        let s = Storage::new(dir.path().to_path_buf(), &meta);
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
