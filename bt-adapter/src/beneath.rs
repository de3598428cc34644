//! Opening a torrent's files beneath its base directory, and never outside it.
//!
//! Paths are checked when a torrent is added, but what lies under the base directory can
//! change afterwards: a directory of the download replaced by a symbolic link to `/etc` would
//! lead the next write there, and a check made before opening races with the swap. So the
//! kernel resolves each path, at the moment of opening, under a descriptor of the base
//! directory:
//!
//! - On Linux 5.6 and later, `openat2` with `RESOLVE_BENEATH` resolves the whole path and
//!   fails (`EXDEV`) wherever a symbolic link (absolute, or climbing with `..`) would leave
//!   the base directory; links that stay beneath it are followed.
//! - Where `openat2` is missing (an older kernel, a seccomp filter that refuses it, another
//!   Unix), the path is opened one component at a time, each with `O_NOFOLLOW`, so every
//!   symbolic link on it is refused, even one that stays beneath: stricter, never looser.
//! - Elsewhere (Windows), the path is resolved and checked, then opened: a link made between
//!   the two is not seen.
//!
//! The base directory itself, and the path to it, are the user's choice and may hold links.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Component, Path};

/// Why a file of a torrent could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Its path leads outside the base directory through a symbolic link (or, where that
    /// cannot be told, passes through one), or is not a plain relative path.
    Outside,
    /// The system refused, or the file is missing.
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// For reading; it must exist.
    Read,
    /// For reading and writing; it is created, with its directories and the base directory,
    /// when missing.
    Write,
}

/// Opens `rel` (a path of plain names) beneath the directory `base`.
pub(crate) fn open(base: &Path, rel: &Path, access: Access) -> Result<File, OpenError> {
    let mut names: Vec<&OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => names.push(s),
            // The metainfo parser refused these already; refuse again rather than trust.
            _ => return Err(OpenError::Outside),
        }
    }
    if names.is_empty() {
        return Err(OpenError::Outside);
    }
    if access == Access::Write {
        std::fs::create_dir_all(base)?;
    }
    imp::open(base, &names, access)
}

#[cfg(unix)]
mod imp {
    use std::ffi::OsStr;
    use std::fs::File;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use rustix::fs::{AtFlags, FileType, Mode, OFlags, mkdirat, openat, statat};
    use rustix::io::Errno;

    use super::{Access, OpenError};

    /// Permissions of a file made, before the umask (as `File::create` has them); none for a
    /// file only opened (`openat2` refuses a mode without `O_CREAT`).
    fn file_mode(access: Access) -> Mode {
        match access {
            Access::Read => Mode::empty(),
            Access::Write => Mode::from_raw_mode(0o666),
        }
    }

    /// Permissions of a directory made, before the umask (as `create_dir` has them).
    fn dir_mode() -> Mode {
        Mode::from_raw_mode(0o777)
    }

    /// How each path is resolved: see the module docs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Resolve {
        /// The whole path by `openat2` with `RESOLVE_BENEATH`.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Beneath,
        /// One component at a time, each with `O_NOFOLLOW`.
        NoFollow,
    }

    pub(super) fn open(base: &Path, names: &[&OsStr], access: Access) -> Result<File, OpenError> {
        let dir = rustix::fs::open(
            base,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_error)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if beneath::available() {
            match open_with(Resolve::Beneath, dir.as_fd(), names, access) {
                Err(OpenError::Io(e)) if beneath::refused(&e) => {}
                done => return done,
            }
        }
        open_with(Resolve::NoFollow, dir.as_fd(), names, access)
    }

    fn io_error(e: Errno) -> OpenError {
        OpenError::Io(e.into())
    }

    fn file_flags(access: Access) -> OFlags {
        match access {
            // Non-blocking, so a FIFO put in the download's place cannot block a disk worker
            // for ever (regular files ignore the flag).
            Access::Read => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Access::Write => OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
        }
    }

    const DIR_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::CLOEXEC);

    /// Opens `names` beneath `base`, resolved as `how` says; with `Access::Write`, missing
    /// directories are made one by one, each inside its parent's descriptor.
    pub(super) fn open_with(
        how: Resolve,
        base: BorrowedFd<'_>,
        names: &[&OsStr],
        access: Access,
    ) -> Result<File, OpenError> {
        let Some((file, dirs)) = names.split_last() else {
            return Err(OpenError::Outside);
        };
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if how == Resolve::Beneath {
            // Most opens find every directory there: one call.
            let path: PathBuf = names.iter().collect();
            match beneath::open(base, &path, file_flags(access), file_mode(access)) {
                Err(Errno::NOENT) if access == Access::Write => {}
                result => {
                    return result
                        .map(File::from)
                        .map_err(|e| refused(how, base, file, e));
                }
            }
        }
        let mut parent: Option<OwnedFd> = None;
        let mut path = PathBuf::new();
        for name in dirs {
            path.push(name);
            let at = parent.as_ref().map_or(base, AsFd::as_fd);
            let mut next = step(how, base, at, &path, name, DIR_FLAGS, Mode::empty());
            if matches!(next, Err(Errno::NOENT)) && access == Access::Write {
                match mkdirat(at, *name, dir_mode()) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_error(e)),
                }
                next = step(how, base, at, &path, name, DIR_FLAGS, Mode::empty());
            }
            parent = Some(next.map_err(|e| refused(how, at, name, e))?);
        }
        path.push(file);
        let at = parent.as_ref().map_or(base, AsFd::as_fd);
        step(
            how,
            base,
            at,
            &path,
            file,
            file_flags(access),
            file_mode(access),
        )
        .map(File::from)
        .map_err(|e| refused(how, at, file, e))
    }

    /// Opens one more component: `path` (from the base) beneath `base`, or `name` in the
    /// directory `at` without following a link.
    fn step(
        how: Resolve,
        base: BorrowedFd<'_>,
        at: BorrowedFd<'_>,
        path: &Path,
        name: &OsStr,
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, Errno> {
        match how {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Resolve::Beneath => {
                let _ = (at, name);
                beneath::open(base, path, flags, mode)
            }
            Resolve::NoFollow => {
                let _ = (base, path);
                openat(at, name, flags | OFlags::NOFOLLOW, mode)
            }
        }
    }

    /// The error of an open of `name` in `at` that failed with `e`: a path leaving the base,
    /// or (walking) passing through a symbolic link, is [`OpenError::Outside`].
    fn refused(how: Resolve, at: BorrowedFd<'_>, name: &OsStr, e: Errno) -> OpenError {
        let outside = match how {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Resolve::Beneath => e == Errno::XDEV,
            // O_NOFOLLOW fails with ELOOP on a link, or ENOTDIR where a directory was asked
            // for; either may also have other causes, which the link test tells apart.
            Resolve::NoFollow => {
                (e == Errno::LOOP || e == Errno::NOTDIR)
                    && statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
            }
        };
        if outside {
            OpenError::Outside
        } else {
            io_error(e)
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    mod beneath {
        use std::os::fd::{BorrowedFd, OwnedFd};
        use std::path::Path;
        use std::sync::atomic::{AtomicBool, Ordering};

        use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
        use rustix::io::Errno;

        /// Cleared once the kernel says it has no `openat2` (ENOSYS): it will not grow one.
        static AVAILABLE: AtomicBool = AtomicBool::new(true);

        pub(super) fn available() -> bool {
            AVAILABLE.load(Ordering::Relaxed)
        }

        /// Whether `e` means `openat2` itself was refused, so the open is to be done the
        /// other way: ENOSYS (remembered), or EPERM, which seccomp filters return for calls
        /// they do not know (not remembered: a file can also refuse with it, and the walk
        /// then fails the same way).
        pub(super) fn refused(e: &std::io::Error) -> bool {
            match e.raw_os_error().map(Errno::from_raw_os_error) {
                Some(Errno::NOSYS) => {
                    AVAILABLE.store(false, Ordering::Relaxed);
                    true
                }
                Some(Errno::PERM) => true,
                _ => false,
            }
        }

        pub(super) fn open(
            base: BorrowedFd<'_>,
            path: &Path,
            flags: OFlags,
            mode: Mode,
        ) -> Result<OwnedFd, Errno> {
            openat2(base, path, flags, mode, ResolveFlags::BENEATH)
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use std::ffi::OsStr;
    use std::fs::{self, File, OpenOptions};

    use super::{Access, OpenError};

    pub(super) fn open(
        base: &std::path::Path,
        names: &[&OsStr],
        access: Access,
    ) -> Result<File, OpenError> {
        let base = fs::canonicalize(base)?;
        let Some((file, dirs)) = names.split_last() else {
            return Err(OpenError::Outside);
        };
        let mut dir = base.clone();
        for name in dirs {
            dir.push(name);
            if access == Access::Write && !dir.exists() {
                match fs::create_dir(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e.into()),
                    _ => {}
                }
            }
            dir = fs::canonicalize(&dir)?;
            if !dir.starts_with(&base) {
                return Err(OpenError::Outside);
            }
        }
        let path = dir.join(file);
        if let Ok(real) = fs::canonicalize(&path)
            && !real.starts_with(&base)
        {
            return Err(OpenError::Outside);
        }
        let mut opts = OpenOptions::new();
        opts.read(true);
        if access == Access::Write {
            opts.write(true).create(true).truncate(false);
        }
        Ok(opts.open(&path)?)
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::imp::{Resolve, open_with};
    use super::*;
    use std::fs;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    /// Every way a path is resolved on this system.
    fn ways() -> Vec<Resolve> {
        vec![
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Resolve::Beneath,
            Resolve::NoFollow,
        ]
    }

    fn open_as(how: Resolve, base: &Path, rel: &str, access: Access) -> Result<File, OpenError> {
        let dir = File::open(base).unwrap();
        let names: Vec<&OsStr> = Path::new(rel).iter().collect();
        open_with(how, dir.as_fd(), &names, access)
    }

    #[test]
    fn links_leading_outside_are_refused_and_the_outside_is_untouched() {
        for how in ways() {
            let dir = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            let secret = outside.path().join("secret");
            fs::write(&secret, b"secret").unwrap();
            let base = dir.path();
            fs::create_dir_all(base.join("t")).unwrap();
            symlink(outside.path(), base.join("t/dir")).unwrap();
            symlink(&secret, base.join("t/file")).unwrap();
            symlink("../../..", base.join("t/up")).unwrap();
            for (rel, access) in [
                ("t/dir/new", Access::Write),
                ("t/dir/sub/new", Access::Write),
                ("t/dir/secret", Access::Read),
                ("t/file", Access::Write),
                ("t/file", Access::Read),
                ("t/up/etc/passwd", Access::Read),
            ] {
                let r = open_as(how, base, rel, access);
                assert!(matches!(r, Err(OpenError::Outside)), "{how:?} {rel}: {r:?}");
            }
            assert_eq!(fs::read(&secret).unwrap(), b"secret", "{how:?}");
            assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1, "{how:?}");
        }
    }

    #[test]
    fn plain_paths_are_made_and_opened() {
        for how in ways() {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path();
            assert!(matches!(
                open_as(how, base, "t/a/b", Access::Read),
                Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound
            ));
            open_as(how, base, "t/a/b", Access::Write).unwrap();
            assert!(base.join("t/a/b").is_file(), "{how:?}");
            open_as(how, base, "t/a/b", Access::Read).unwrap();
            // A file where a directory should be is an I/O error, not a link.
            assert!(matches!(
                open_as(how, base, "t/a/b/c", Access::Write),
                Err(OpenError::Io(_))
            ));
        }
    }

    #[test]
    fn links_that_stay_beneath_are_followed_only_where_the_kernel_checks_them() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("t/real")).unwrap();
        fs::write(base.join("t/real/f"), b"in").unwrap();
        symlink("real", base.join("t/alias")).unwrap();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        open_as(Resolve::Beneath, base, "t/alias/f", Access::Read).unwrap();
        assert!(matches!(
            open_as(Resolve::NoFollow, base, "t/alias/f", Access::Read),
            Err(OpenError::Outside)
        ));
    }

    #[test]
    fn paths_that_are_not_plain_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["", "../x", "/etc/passwd", "a/../../x"] {
            assert!(
                matches!(
                    open(dir.path(), Path::new(rel), Access::Write),
                    Err(OpenError::Outside)
                ),
                "{rel}"
            );
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
