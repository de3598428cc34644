//! Small types that carry meaning through the whole crate: hashes, ids, indexes.

use std::fmt;

use crate::encoding::hex;

/// Error for a hexadecimal or base32 digest that has the wrong length or a bad digit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits, found {found:?}")]
pub struct HexError {
    /// Digits expected.
    pub expected: usize,
    /// What was found (truncated to the first 80 bytes for display).
    pub found: String,
}

/// Decodes exactly 40 hex digits into 20 bytes.
fn decode_hex20(s: &str) -> Result<[u8; 20], HexError> {
    hex::decode_array(s.as_bytes()).ok_or_else(|| HexError {
        expected: 40,
        found: s.chars().take(80).collect(),
    })
}

/// The SHA-1 of a torrent's bencoded `info` dictionary, exactly as found in the file.
///
/// ```
/// use bt_proto::InfoHash;
/// let h: InfoHash = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36".parse().unwrap();
/// assert_eq!(h.to_string(), "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The 20 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::Lower(&self.0).fmt(f)
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

impl std::str::FromStr for InfoHash {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, HexError> {
        decode_hex20(s).map(InfoHash)
    }
}

/// A peer's 20-byte id as sent in the handshake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

impl PeerId {
    /// The 20 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Printable ids (most clients) read better as text; others as hex.
        if self.0.iter().all(|b| b.is_ascii_graphic()) {
            write!(f, "PeerId({})", String::from_utf8_lossy(&self.0))
        } else {
            write!(f, "PeerId({})", hex::Lower(&self.0))
        }
    }
}

/// The index of a piece within a torrent (0-based).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PieceIndex(pub u32);

impl PieceIndex {
    /// As a `usize`, for indexing local tables.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The engine's name for one peer connection; the adapter maps it to a socket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A SHA-1 digest of one piece, as listed in the metainfo's `pieces`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceHash(pub [u8; 20]);

impl fmt::Debug for PieceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PieceHash({})", hex::Lower(&self.0))
    }
}

/// SHA-1 of `data`; the one hashing entry point so every caller gets the same implementation.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(data).into()
}

/// An I/O error as a value that can be cloned and compared (`std::io::Error` can be neither,
/// and the inputs and events that report one must be both): its kind and the system's words.
///
/// ```
/// use bt_proto::IoFailure;
/// let e = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
/// let f = IoFailure::from(&e);
/// assert_eq!((f.kind, f.to_string()), (std::io::ErrorKind::StorageFull, "disk full".to_string()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IoFailure {
    /// What kind of failure it was.
    pub kind: std::io::ErrorKind,
    /// What the system said (the error's `Display`).
    pub message: String,
}

impl IoFailure {
    /// A failure of `kind` with these words.
    pub fn new(kind: std::io::ErrorKind, message: impl Into<String>) -> Self {
        IoFailure {
            kind,
            message: message.into(),
        }
    }
}

impl From<&std::io::Error> for IoFailure {
    fn from(e: &std::io::Error) -> Self {
        IoFailure::new(e.kind(), e.to_string())
    }
}

impl From<std::io::Error> for IoFailure {
    fn from(e: std::io::Error) -> Self {
        IoFailure::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let h: InfoHash = "D2474E86C95B19B8BCFDB92BC12C9D44667CFA36".parse().unwrap();
        assert_eq!(h.to_string(), "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36");
        assert!(
            "d2474e86c95b19b8bcfdb92bc12c9d44667cfa3"
                .parse::<InfoHash>()
                .is_err()
        );
        assert!(
            "g2474e86c95b19b8bcfdb92bc12c9d44667cfa36"
                .parse::<InfoHash>()
                .is_err()
        );
        assert!(
            "é2474e86c95b19b8bcfdb92bc12c9d44667cfa3"
                .parse::<InfoHash>()
                .is_err()
        );
    }

    #[test]
    fn sha1_known_vector() {
        assert_eq!(
            InfoHash(sha1(b"abc")).to_string(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
