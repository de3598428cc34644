//! What a torrent's files must respect of the file system they go to, checked when it is
//! added and before anything is written: none in the resume directory, and, where the file
//! system ignores case, no two that would be one (`bt_proto::storage::check_layout`). Whether
//! case is ignored is asked of the file system itself, once per torrent added.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bt_proto::metainfo::Metainfo;
use bt_proto::storage::check_layout;

use crate::Error;

/// Checks that `meta`'s files can be laid out under `base`.
pub(crate) fn check(base: &Path, meta: &Metainfo) -> Result<(), Error> {
    check_layout(meta, ignores_case(base)).map_err(|source| Error::Layout {
        base: base.to_path_buf(),
        source,
    })
}

/// Whether the file system of `dir` ignores case (while `dir` does not exist yet: that of its
/// nearest existing ancestor, where it will be made). It is probed by making a file with a
/// lowercase name and looking it up in uppercase; where nothing can be made (a read-only
/// directory to seed from), by looking up an existing entry in another case; where neither
/// can tell, case counts (nothing will be written there anyway).
pub(crate) fn ignores_case(dir: &Path) -> bool {
    let dir = dir
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("."));
    by_making(dir).or_else(|| by_listing(dir)).unwrap_or(false)
}

/// Makes `.bt-case-probe-<pid>-<n>` in `dir`, looks it up in uppercase and removes it.
fn by_making(dir: &Path) -> Option<bool> {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let name = format!(".bt-case-probe-{}-{n}", std::process::id());
    let path = dir.join(&name);
    fs::File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .ok()?;
    let ignored = fs::symlink_metadata(dir.join(name.to_uppercase())).is_ok();
    // Left behind only if removal fails; it is empty and named for what it was.
    let _ = fs::remove_file(&path);
    Some(ignored)
}

/// Looks up, in another case, a name in `dir` whose other case is not there too.
fn by_listing(dir: &Path) -> Option<bool> {
    let names: Vec<OsString> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    let other = names.iter().find_map(|n| {
        let n = n.to_str()?;
        let other = if n.to_lowercase() != n {
            n.to_lowercase()
        } else {
            n.to_uppercase()
        };
        (other != n && !names.iter().any(|m| *m == *other)).then_some(other)
    })?;
    Some(fs::symlink_metadata(dir.join(other)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's temporary directories are on a case-sensitive file system (Linux).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_case_sensitive_file_system_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(by_making(dir.path()), Some(false));
        assert!(!ignores_case(&dir.path().join("not/made/yet")));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe is removed"
        );
    }

    /// Listing looks a name up in another case, when there is a name with letters whose other
    /// case is not listed too. (That the lookup finds it on a file system that ignores case,
    /// this machine cannot show.)
    #[test]
    fn listing_looks_a_name_up_in_another_case() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(by_listing(dir.path()), None, "nothing to look up");
        fs::write(dir.path().join("2024"), b"").unwrap();
        assert_eq!(by_listing(dir.path()), None, "no letters");
        fs::write(dir.path().join("Movie.mkv"), b"").unwrap();
        assert_eq!(by_listing(dir.path()), Some(false));
    }
}
