//! The path policy: which file names from a torrent may ever reach a file system.
//!
//! A torrent names its files with lists of path components chosen by whoever made it, so every
//! component is checked before a [`FilePath`] exists. The rules are the same on every platform,
//! because a torrent must be safe wherever it is opened and the names that are only dangerous
//! on one system are almost never legitimate anywhere:
//!
//! Always rejected (these escape or alias the base directory):
//! - an empty component, `.` or `..`;
//! - a component holding `/` or `\` (a separator on some system), NUL, or `:` (a drive prefix
//!   such as `C:`, or an NTFS alternate data stream such as `file::$DATA`, which aliases
//!   `file`). An absolute path is caught by these too: `/etc` has a separator, `C:` a colon.
//!
//! Rejected as unsafe (legal on some systems, but used to attack others):
//! - control characters (0x01-0x1F, 0x7F): they hide the real name in terminals and logs;
//! - Windows device names (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`, with the
//!   superscript-digit forms, `CONIN$`, `CONOUT$`), in any case and with any extension
//!   (`nul.txt` is the NUL device too): opening them on Windows opens a device, not a file;
//! - a trailing `.` or space: Windows strips them, so `a.` would silently become `a` and
//!   overwrite another file of the torrent.
//!
//! Rejected as impossible: a component longer than [`MAX_COMPONENT_LEN`] bytes.
//!
//! Names are not rewritten: a torrent that breaks a rule is refused as a whole, so what is on
//! disk always has the names the torrent gives. Other characters that Windows forbids
//! (`<>"|?*`) are accepted: they cannot escape or alias anything there, opening such a file just
//! fails with an error, and they are common in torrents made elsewhere.
//!
//! Beyond single components, a set of paths is checked by [`check_unique`]: no two files may
//! have the same path, and no file may be a directory on another file's path (`a` and `a/b`).
//! Both comparisons are exact (case-sensitive, no Unicode normalisation beyond decoding); an
//! adapter whose file system ignores case checks again with [`check_unique_ignoring_case`].

use std::fmt;
use std::path::PathBuf;

/// Longest path component accepted, in bytes: the limit of ext4, APFS and (in UTF-16 units,
/// which are never more than UTF-8 bytes) NTFS, so a longer name cannot be created anywhere.
pub const MAX_COMPONENT_LEN: usize = 255;

/// Why a path component is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path has no components at all.
    #[error("path has no components")]
    NoComponents,
    /// An empty component.
    #[error("empty path component")]
    Empty,
    /// `.` or `..`.
    #[error("path component {0:?} refers to a directory, not a name")]
    DotComponent(String),
    /// A component holding a path separator (`/` or `\`).
    #[error("path component holds the separator {0:?}")]
    Separator(char),
    /// A component holding NUL.
    #[error("path component holds NUL")]
    Nul,
    /// A component holding `:` (drive prefix or alternate data stream).
    #[error("path component holds ':' (drive prefix or alternate data stream)")]
    Colon,
    /// A control character other than NUL.
    #[error("path component holds control character 0x{0:02x}")]
    ControlChar(u8),
    /// A Windows device name, with or without an extension.
    #[error("path component {0:?} is a Windows device name")]
    ReservedName(String),
    /// A trailing `.` or space, which Windows strips.
    #[error("path component {0:?} ends with a dot or space")]
    TrailingDotOrSpace(String),
    /// Longer than [`MAX_COMPONENT_LEN`] bytes.
    #[error("path component is {len} bytes, more than {MAX_COMPONENT_LEN}")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
}

/// Windows device names. Each is reserved alone and with any extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Checks one path component against the policy in the module documentation.
///
/// ```
/// use bt_proto::metainfo::path::{check_component, PathError};
/// assert!(check_component("Leaves of Grass.epub").is_ok());
/// assert_eq!(check_component(".."), Err(PathError::DotComponent("..".into())));
/// assert_eq!(check_component("C:"), Err(PathError::Colon));
/// assert_eq!(check_component("nul.txt"), Err(PathError::ReservedName("nul.txt".into())));
/// ```
pub fn check_component(c: &str) -> Result<(), PathError> {
    if c.is_empty() {
        return Err(PathError::Empty);
    }
    if c == "." || c == ".." {
        return Err(PathError::DotComponent(c.to_owned()));
    }
    if c.len() > MAX_COMPONENT_LEN {
        return Err(PathError::TooLong { len: c.len() });
    }
    for ch in c.chars() {
        match ch {
            '/' | '\\' => return Err(PathError::Separator(ch)),
            '\0' => return Err(PathError::Nul),
            ':' => return Err(PathError::Colon),
            '\u{1}'..='\u{1f}' | '\u{7f}' => return Err(PathError::ControlChar(ch as u8)),
            _ => {}
        }
    }
    if c.ends_with('.') || c.ends_with(' ') {
        return Err(PathError::TrailingDotOrSpace(c.to_owned()));
    }
    // Windows looks at the part before the first dot, ignoring trailing spaces there.
    let stem = c.split('.').next().unwrap_or(c).trim_end_matches(' ');
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err(PathError::ReservedName(c.to_owned()));
    }
    Ok(())
}

/// A file's path relative to the download directory, every component checked by
/// [`check_component`]. It can only be built through that check.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilePath(Vec<String>);

impl FilePath {
    /// Checks every component; at least one is required.
    ///
    /// ```
    /// use bt_proto::metainfo::path::FilePath;
    /// let p = FilePath::new(["numbers", "1.txt"]).unwrap();
    /// assert_eq!(p.to_string(), "numbers/1.txt");
    /// assert!(FilePath::new(["numbers", "..", "etc"]).is_err());
    /// ```
    pub fn new<I, S>(components: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let components: Vec<String> = components.into_iter().map(Into::into).collect();
        if components.is_empty() {
            return Err(PathError::NoComponents);
        }
        for c in &components {
            check_component(c)?;
        }
        Ok(FilePath(components))
    }

    /// The checked components, outermost first.
    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The path for the local file system, relative to the download directory.
    pub fn to_path_buf(&self) -> PathBuf {
        self.0.iter().collect()
    }

    /// Whether `self` names a directory that `other` lies inside.
    pub fn is_ancestor_of(&self, other: &FilePath) -> bool {
        other.0.len() > self.0.len() && other.0.starts_with(&self.0)
    }

    /// This path with `dir` put in front (the torrent's name for multi-file torrents).
    pub(crate) fn under(&self, dir: &str) -> FilePath {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.push(dir.to_owned());
        v.extend(self.0.iter().cloned());
        FilePath(v)
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for c in &self.0 {
            if !first {
                f.write_str("/")?;
            }
            first = false;
            f.write_str(c)?;
        }
        Ok(())
    }
}

impl fmt::Debug for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FilePath({:?})", self.to_string())
    }
}

/// Two paths of one torrent that cannot both exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathClash {
    /// The same path twice.
    #[error("two files have the path {0}")]
    Duplicate(FilePath),
    /// A file whose path is a directory of another file.
    #[error("file {file} is also a directory holding {inside}")]
    FileIsDirectory {
        /// The file that would have to be a directory.
        file: FilePath,
        /// A file inside it.
        inside: FilePath,
    },
    /// Two paths that differ only in case: one file where case is ignored.
    #[error("files {first} and {second} differ only in case")]
    SameIgnoringCase {
        /// One of them.
        first: FilePath,
        /// The other.
        second: FilePath,
    },
}

/// Checks that no two paths are equal and none is a directory of another.
pub fn check_unique<'a>(paths: impl IntoIterator<Item = &'a FilePath>) -> Result<(), PathClash> {
    find_clash(paths, |c| c.as_str())
}

/// [`check_unique`] for a file system that ignores case, where `A.txt` and `a.txt` are one
/// file and `Docs/x` lies in the directory of a file `docs`: names are compared lowercased
/// (Unicode's default mapping, which case-insensitive file systems follow for nearly every
/// name; none of them normalises forms the same way, so normalisation is not attempted).
pub fn check_unique_ignoring_case<'a>(
    paths: impl IntoIterator<Item = &'a FilePath>,
) -> Result<(), PathClash> {
    find_clash(paths, |c| c.to_lowercase())
}

/// The first clash between `paths` whose components are compared as `key` makes them.
///
/// Sorting puts a path right before the paths inside it, so comparing neighbours finds every
/// clash in O(n log n).
fn find_clash<'a, K: Ord>(
    paths: impl IntoIterator<Item = &'a FilePath>,
    key: impl Fn(&'a String) -> K,
) -> Result<(), PathClash> {
    let mut sorted: Vec<(Vec<K>, &FilePath)> = paths
        .into_iter()
        .map(|p| (p.0.iter().map(&key).collect(), p))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for pair in sorted.windows(2) {
        if let [(ka, a), (kb, b)] = pair {
            if ka == kb && a == b {
                return Err(PathClash::Duplicate((*a).clone()));
            }
            if ka == kb {
                return Err(PathClash::SameIgnoringCase {
                    first: (*a).clone(),
                    second: (*b).clone(),
                });
            }
            if kb.starts_with(ka) {
                return Err(PathClash::FileIsDirectory {
                    file: (*a).clone(),
                    inside: (*b).clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traversal_and_separators_rejected() {
        assert_eq!(check_component(""), Err(PathError::Empty));
        assert_eq!(
            check_component("."),
            Err(PathError::DotComponent(".".into()))
        );
        assert_eq!(
            check_component(".."),
            Err(PathError::DotComponent("..".into()))
        );
        assert_eq!(check_component("a/b"), Err(PathError::Separator('/')));
        assert_eq!(check_component("/etc"), Err(PathError::Separator('/')));
        assert_eq!(check_component("..\\x"), Err(PathError::Separator('\\')));
        assert_eq!(check_component("a\0b"), Err(PathError::Nul));
        assert_eq!(check_component("C:"), Err(PathError::Colon));
        assert_eq!(check_component("c:windows"), Err(PathError::Colon));
        assert_eq!(check_component("file::$DATA"), Err(PathError::Colon));
        assert_eq!(
            FilePath::new(Vec::<String>::new()),
            Err(PathError::NoComponents)
        );
    }

    #[test]
    fn unsafe_names_rejected() {
        assert_eq!(check_component("a\x1bb"), Err(PathError::ControlChar(0x1b)));
        assert_eq!(check_component("a\nb"), Err(PathError::ControlChar(b'\n')));
        assert_eq!(
            check_component("del\x7f"),
            Err(PathError::ControlChar(0x7f))
        );
        for name in [
            "CON",
            "con",
            "Nul",
            "nul.txt",
            "COM1",
            "lpt9.tar.gz",
            "AUX ",
            "aux .x",
            "COM¹",
            "CONIN$",
        ] {
            let err = check_component(name).unwrap_err();
            assert!(
                matches!(
                    err,
                    PathError::ReservedName(_) | PathError::TrailingDotOrSpace(_)
                ),
                "{name}: {err:?}"
            );
        }
        assert_eq!(
            check_component("aux.x"),
            Err(PathError::ReservedName("aux.x".into()))
        );
        assert_eq!(
            check_component("a."),
            Err(PathError::TrailingDotOrSpace("a.".into()))
        );
        assert_eq!(
            check_component("a "),
            Err(PathError::TrailingDotOrSpace("a ".into()))
        );
        assert_eq!(
            check_component(&"x".repeat(256)),
            Err(PathError::TooLong { len: 256 })
        );
    }

    #[test]
    fn ordinary_names_accepted() {
        for name in [
            "a",
            "x".repeat(255).as_str(),
            ".pad",
            "..a",
            "a..b",
            "CONSOLE",
            "COM10",
            "nul_file",
            "big numbers",
            " leading space",
            "Whitman – Leaves of Grass?.epub",
            "日本語.txt",
        ] {
            assert_eq!(check_component(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn clashes_found() {
        let p = |s: &[&str]| FilePath::new(s.iter().copied()).unwrap();
        assert_eq!(
            check_unique(&[p(&["a"]), p(&["b"]), p(&["c", "d"])]),
            Ok(())
        );
        assert_eq!(
            check_unique(&[p(&["x", "a"]), p(&["b"]), p(&["x", "a"])]),
            Err(PathClash::Duplicate(p(&["x", "a"])))
        );
        assert_eq!(
            check_unique(&[p(&["a", "b", "c"]), p(&["a", "a"]), p(&["a", "b"])]),
            Err(PathClash::FileIsDirectory {
                file: p(&["a", "b"]),
                inside: p(&["a", "b", "c"]),
            })
        );
        // Only whole components count: "ab" is not a directory of "a".
        assert_eq!(check_unique(&[p(&["a"]), p(&["ab", "c"])]), Ok(()));
        // Case matters.
        assert_eq!(check_unique(&[p(&["A"]), p(&["a"])]), Ok(()));
    }

    #[test]
    fn clashes_ignoring_case() {
        let p = |s: &[&str]| FilePath::new(s.iter().copied()).unwrap();
        assert_eq!(
            check_unique_ignoring_case(&[p(&["t", "A.txt"]), p(&["t", "b"]), p(&["t", "a.TXT"])]),
            Err(PathClash::SameIgnoringCase {
                first: p(&["t", "A.txt"]),
                second: p(&["t", "a.TXT"]),
            })
        );
        assert_eq!(
            check_unique_ignoring_case(&[p(&["t", "Docs", "x"]), p(&["t", "docs"])]),
            Err(PathClash::FileIsDirectory {
                file: p(&["t", "docs"]),
                inside: p(&["t", "Docs", "x"]),
            })
        );
        // Beyond ASCII too; and directories that differ in case are one directory, no clash.
        assert!(check_unique_ignoring_case(&[p(&["Ärger"]), p(&["ärger"])]).is_err());
        assert_eq!(
            check_unique_ignoring_case(&[p(&["D", "a"]), p(&["d", "b"]), p(&["x"])]),
            Ok(())
        );
        assert_eq!(
            check_unique_ignoring_case(&[p(&["a"]), p(&["a"])]),
            Err(PathClash::Duplicate(p(&["a"])))
        );
    }

    proptest! {
        #[test]
        fn accepted_components_are_single_plain_names(s in any::<String>()) {
            if check_component(&s).is_ok() {
                let p = std::path::Path::new(&s);
                let mut comps = p.components();
                prop_assert!(matches!(comps.next(), Some(std::path::Component::Normal(_))));
                prop_assert!(comps.next().is_none());
                prop_assert!(!s.contains(['/', '\\', ':', '\0']));
            }
        }

        #[test]
        fn clash_check_agrees_with_pairwise(
            paths in proptest::collection::vec(
                proptest::collection::vec("[ab]{1,2}", 1..4), 0..8)
        ) {
            let paths: Vec<FilePath> =
                paths.into_iter().map(|p| FilePath::new(p).unwrap()).collect();
            let mut clash = false;
            for (i, a) in paths.iter().enumerate() {
                for b in paths.iter().skip(i + 1) {
                    clash |= a == b || a.is_ancestor_of(b) || b.is_ancestor_of(a);
                }
            }
            prop_assert_eq!(check_unique(&paths).is_err(), clash);
        }
    }
}
