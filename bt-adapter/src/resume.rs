//! Resume data on disk: written atomically (a temporary file made anew, synced, renamed over
//! the old one, and the rename synced), stamped after the torrent's files are flushed, and
//! read back at add time through
//! `bt_proto::storage::resume_plan`, which decides what to trust and what to check again.
//!
//! The engine decides when to save (when a torrent stops, when it completes, and within
//! `Config::resume_save_interval` of verifying pieces: see `bt_proto::engine`), so a crash
//! loses at most that interval's pieces (they are downloaded again; nothing unverified is ever
//! trusted); the driver writes what it is given.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bt_proto::InfoHash;
use bt_proto::engine::MAX_METADATA_SIZE;
use bt_proto::magnet::MAX_MAGNET_LEN;
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::ResumeData;
use bt_proto::storage::{ResumePlan, resume_plan};

use crate::Error;
use crate::disk::Storage;

/// Resume files larger than this are not read: real ones are a few hundred bytes plus one
/// bit per piece and a few dozen bytes per file.
pub const MAX_RESUME_FILE: u64 = 64 * 1024 * 1024;

/// A torrent's resume file. Saves run on the blocking pool and may finish out of order (a
/// periodic save still running when the torrent stops): each carries a generation number
/// and the file only ever moves forward, so an older snapshot never replaces a newer one.
#[derive(Debug)]
pub(crate) struct ResumeFile {
    path: Arc<Path>,
    /// The generation last written; the lock also keeps two writes from sharing the
    /// temporary file.
    written: Mutex<u64>,
}

impl ResumeFile {
    pub(crate) fn new(path: impl Into<Arc<Path>>) -> Self {
        ResumeFile {
            path: path.into(),
            written: Mutex::new(0),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data`, snapshot number `generation`, unless a later one is there already.
    pub(crate) fn write(&self, generation: u64, data: &ResumeData) -> Result<(), Error> {
        // A panic elsewhere while holding the lock leaves the number intact: keep going.
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if generation <= *written {
            return Ok(());
        }
        write_atomic(&self.path, &data.encode())?;
        *written = generation;
        Ok(())
    }
}

/// What a resume save does with the torrent's open files before it stamps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BeforeStamp {
    /// Flush them to the device and keep them open (a save while the torrent runs). A flush
    /// that fails fails the save: the stamps would vouch for data that may not be there.
    Flush,
    /// Flush and close them (the torrent stopped). A flush that fails is logged and the save
    /// goes on: the files are closed either way.
    Close,
}

/// The one path of every resume save: `data` gets each file's stamp, taken after the files
/// are flushed (or closed) as `before` says so the stamps describe what is on the device,
/// and with a `file` is written there as snapshot number `generation` (see [`ResumeFile`]).
/// Returns the stamped data.
pub(crate) fn save(
    storage: &Storage,
    mut data: ResumeData,
    generation: u64,
    before: BeforeStamp,
    file: Option<&ResumeFile>,
) -> Result<ResumeData, Error> {
    match before {
        BeforeStamp::Flush => storage.flush().map_err(Error::Storage)?,
        BeforeStamp::Close => {
            if let Err(e) = storage.close() {
                tracing::warn!("closing files: {e}");
            }
        }
    }
    data.files = storage.stamps();
    if let Some(file) = file {
        file.write(generation, &data)?;
    }
    Ok(data)
}

/// Writes `bytes` to `path` atomically, creating its directory: resume data, and the
/// metadata of a torrent added by magnet link kept beside it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io_err = |source: io::Error| Error::Resume {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = create_new(&tmp).map_err(io_err)?;
    f.write_all(bytes).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err)?;
    // The rename is durable once the directory is: until then a crash may bring the old file
    // back, though the torrent's files were flushed for the new one.
    sync_dir(dir).map_err(io_err)
}

/// A new file at `tmp`, never an existing one or what a symbolic link there points at: what
/// is in the way (the temporary file of a save a crash cut short, or anything put there) is
/// removed first (a link itself, not its target), and the file made anew.
fn create_new(tmp: &Path) -> io::Result<fs::File> {
    let new = || fs::File::options().write(true).create_new(true).open(tmp);
    match new() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(tmp)?;
            new()
        }
        made => made,
    }
}

/// Syncs the directory `dir`, making the names made or renamed in it durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Elsewhere a directory cannot be opened to be synced; a rename there is as durable as
/// the file system makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Saved metadata larger than this is not read: it is the largest metadata the engine
/// fetches plus a magnet link's worth of trackers.
pub const MAX_METADATA_FILE: u64 = MAX_METADATA_SIZE + MAX_MAGNET_LEN as u64;

/// The metadata of the torrent `info_hash` kept at `path` by an earlier run (see
/// [`bt_proto::storage::metadata_path`]), if it is there, readable, and of that torrent.
/// `None` otherwise: that costs fetching it again, never a wrong torrent.
pub(crate) fn load_metadata(path: &Path, info_hash: &InfoHash) -> Option<Metainfo> {
    let len = fs::metadata(path).ok()?.len();
    if len > MAX_METADATA_FILE {
        tracing::warn!(path = %path.display(), "saved metadata too large; ignored");
        return None;
    }
    let meta = match Metainfo::from_bytes(&fs::read(path).ok()?) {
        Ok(meta) => meta,
        Err(e) => {
            tracing::warn!(path = %path.display(), "saved metadata ignored: {e}");
            return None;
        }
    };
    (meta.info_hash() == *info_hash).then_some(meta)
}

/// Reads the resume data at `path` for `meta` and decides, from the files as they are now,
/// which pieces to trust and which to check again. `None` when there is no usable data (no
/// file, unreadable, or for another torrent): that costs a check, never wrong data.
pub(crate) fn load(
    path: &Path,
    meta: &Metainfo,
    storage: &Storage,
) -> Option<(ResumeData, ResumePlan)> {
    let len = fs::metadata(path).ok()?.len();
    if len > MAX_RESUME_FILE {
        tracing::warn!(path = %path.display(), "resume file too large; ignored");
        return None;
    }
    let bytes = fs::read(path).ok()?;
    let data = match ResumeData::decode(
        &bytes,
        meta.info_hash(),
        meta.piece_count(),
        meta.files().len(),
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(path = %path.display(), "resume data ignored: {e}");
            return None;
        }
    };
    let plan = resume_plan(&data, meta.piece_map(), &storage.stamps());
    Some((data, plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_proto::{Bitfield, InfoHash};

    fn data(downloaded: u64) -> ResumeData {
        ResumeData {
            info_hash: InfoHash([7; 20]),
            pieces: Bitfield::new(8),
            files: vec![None],
            uploaded: 0,
            downloaded,
        }
    }

    fn on_disk(path: &Path) -> ResumeData {
        ResumeData::decode(&fs::read(path).unwrap(), InfoHash([7; 20]), 8, 1).unwrap()
    }

    #[test]
    fn a_later_snapshot_is_never_replaced_by_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = ResumeFile::new(dir.path().join("sub").join("x.resume"));
        file.write(2, &data(200)).unwrap();
        // The earlier snapshot's job finishes last: it is dropped.
        file.write(1, &data(100)).unwrap();
        assert_eq!(on_disk(file.path()), data(200));
        file.write(3, &data(300)).unwrap();
        assert_eq!(on_disk(file.path()), data(300));
    }

    /// A symbolic link planted at the temporary path is replaced, not followed: what it
    /// points at is untouched, and the resume file is a file of its own.
    #[cfg(unix)]
    #[test]
    fn a_link_at_the_temporary_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"not resume data").unwrap();
        let path = dir.path().join("bt").join("x.resume");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("bt/x.resume.tmp")).unwrap();
        ResumeFile::new(path.clone()).write(1, &data(100)).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"not resume data");
        assert!(!fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(on_disk(&path), data(100));
    }

    /// The temporary file of a save that a crash cut short does not stop later saves.
    #[test]
    fn a_stale_temporary_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.resume");
        fs::write(dir.path().join("x.resume.tmp"), b"half a save").unwrap();
        ResumeFile::new(path.clone()).write(1, &data(100)).unwrap();
        assert_eq!(on_disk(&path), data(100));
        assert!(!dir.path().join("x.resume.tmp").exists());
    }

    /// Kept metadata is taken only when it is a torrent of the info-hash asked for; anything
    /// else there (another torrent's, a cut write, garbage) means fetching it again.
    #[test]
    fn kept_metadata_is_taken_only_for_its_own_torrent() {
        use bt_proto::bencode::Bencode;
        let dir = tempfile::tempdir().unwrap();
        let info = |name: &str| {
            Bencode::dict()
                .with("length", 5)
                .with("name", name)
                .with("piece length", 16384)
                .with("pieces", vec![7u8; 20])
                .encode()
        };
        let meta = Metainfo::from_info_bytes(&info("a"))
            .unwrap()
            .with_trackers(vec![vec!["http://t.example/announce".into()]]);
        let other = Metainfo::from_info_bytes(&info("b")).unwrap();
        let path = dir.path().join("x.torrent");
        assert!(
            load_metadata(&path, &meta.info_hash()).is_none(),
            "none kept"
        );
        write_atomic(&path, &meta.to_torrent_bytes()).unwrap();
        assert_eq!(load_metadata(&path, &meta.info_hash()), Some(meta.clone()));
        assert!(
            load_metadata(&path, &other.info_hash()).is_none(),
            "another torrent's"
        );
        let bytes = meta.to_torrent_bytes();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(
            load_metadata(&path, &meta.info_hash()).is_none(),
            "a cut write"
        );
    }

    #[test]
    fn a_save_stamps_the_files_and_writes_only_to_a_file_given() {
        use bt_proto::metainfo::create::{InputFile, TorrentBuilder};
        let dir = tempfile::tempdir().unwrap();
        let content = b"hello";
        let plan = TorrentBuilder::multi_file("t", [InputFile::new(["a"], 5)])
            .piece_length(16 * 1024)
            .plan()
            .unwrap();
        let mut hasher = plan.hasher();
        hasher.update(content);
        let meta = Metainfo::from_bytes(&plan.build(&hasher.finish().unwrap()).unwrap()).unwrap();
        fs::create_dir_all(dir.path().join("t")).unwrap();
        fs::write(dir.path().join("t/a"), content).unwrap();
        let storage = Storage::new(dir.path().to_path_buf(), meta.clone());
        let unstamped = ResumeData {
            info_hash: meta.info_hash(),
            pieces: Bitfield::new(1),
            files: Vec::new(),
            uploaded: 0,
            downloaded: 5,
        };

        let stamped = save(&storage, unstamped.clone(), 1, BeforeStamp::Flush, None).unwrap();
        assert_eq!(stamped.files, storage.stamps());
        assert!(
            stamped.files.iter().all(Option::is_some),
            "the file is stamped"
        );
        assert_eq!(stamped.downloaded, 5);

        let file = ResumeFile::new(dir.path().join("t.resume"));
        let saved = save(&storage, unstamped, 2, BeforeStamp::Close, Some(&file)).unwrap();
        assert_eq!(saved, stamped);
        let on_disk = ResumeData::decode(&fs::read(file.path()).unwrap(), meta.info_hash(), 1, 1);
        assert_eq!(on_disk, Ok(stamped));
    }
}
