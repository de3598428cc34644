//! Resume data on disk: written atomically (a temporary file, synced, then renamed over the
//! old one), stamped after the torrent's files are flushed, and read back at add time through
//! `bt_proto::storage::resume_plan`, which decides what to trust and what to check again.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use bt_proto::metainfo::Metainfo;
use bt_proto::resume::ResumeData;
use bt_proto::storage::{ResumePlan, resume_plan};

use crate::Error;
use crate::disk::Storage;

/// Resume files larger than this are not read: real ones are a few hundred bytes plus one
/// bit per piece and a few dozen bytes per file.
pub const MAX_RESUME_FILE: u64 = 64 * 1024 * 1024;

/// `data` with each file's stamp taken now, after flushing the files so the stamps describe
/// what is on the device (`closed`: the caller already flushed them).
pub(crate) fn snapshot(
    storage: &Storage,
    mut data: ResumeData,
    closed: bool,
) -> Result<ResumeData, Error> {
    if !closed {
        storage.flush().map_err(Error::Storage)?;
    }
    data.files = storage.stamps();
    Ok(data)
}

/// Writes `data` to `path` atomically, creating its directory.
pub(crate) fn write(path: &Path, data: &ResumeData) -> Result<(), Error> {
    let io_err = |source: io::Error| Error::Resume {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp).map_err(io_err)?;
    f.write_all(&data.encode()).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err)
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
