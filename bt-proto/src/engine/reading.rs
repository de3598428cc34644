//! What a streaming reader may do at its position: read verified bytes, report the end of
//! its file, wait for the piece to be verified, or give up because the torrent will not
//! download it until it is started again. The adapter's file readers ask this, so the rules
//! are the same on every runtime.

use std::io::SeekFrom;

use super::{Session, TorrentId, TorrentState};
use crate::storage::StorageError;

/// What a reader at an offset of a file may do now ([`Session::read_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStatus {
    /// This many verified bytes from the offset on, in one run (more than 0).
    Ready(u64),
    /// The offset is at or past the end of the file.
    End,
    /// The piece holding the offset is not verified yet, and the torrent may still fetch it
    /// (started, paused or queued): wait for its pieces to pass.
    Wait,
    /// Not verified, and the torrent is stopped: nothing will come until it is started.
    Stopped,
    /// Not verified, and the torrent's storage failed: nothing will come until it is
    /// started again.
    Failed(StorageError),
}

impl Session {
    /// What a reader at `offset` of file `file` of torrent `id` may do now; `None` if there
    /// is no such torrent or file. Bytes already verified are readable whatever the
    /// torrent's state.
    pub fn read_status(&self, id: TorrentId, file: usize, offset: u64) -> Option<ReadStatus> {
        let ready = self.file_bytes_ready(id, file, offset)?;
        let t = self.torrents.get(&id)?;
        let len = t.meta.piece_map().file_len(file)?;
        Some(if offset >= len {
            ReadStatus::End
        } else if ready > 0 {
            ReadStatus::Ready(ready)
        } else {
            match (t.state, &t.error) {
                (TorrentState::Stopped, _) => ReadStatus::Stopped,
                (TorrentState::Failed, Some(e)) => ReadStatus::Failed(StorageError::clone(e)),
                _ => ReadStatus::Wait,
            }
        })
    }
}

/// The position a seek to `to` leads to in a file of `len` bytes read at `current`; `None`
/// if it would be before the start or past `u64::MAX`. A position past the end is valid: a
/// read there finds the end.
pub fn seek_target(len: u64, current: u64, to: SeekFrom) -> Option<u64> {
    match to {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => current.checked_add_signed(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_resolve_from_start_end_and_current() {
        assert_eq!(seek_target(100, 10, SeekFrom::Start(7)), Some(7));
        assert_eq!(seek_target(100, 10, SeekFrom::End(-1)), Some(99));
        assert_eq!(seek_target(100, 10, SeekFrom::End(5)), Some(105));
        assert_eq!(seek_target(100, 10, SeekFrom::Current(-10)), Some(0));
        assert_eq!(seek_target(100, 10, SeekFrom::Current(-11)), None);
        assert_eq!(seek_target(100, 10, SeekFrom::End(-101)), None);
        assert_eq!(seek_target(100, u64::MAX, SeekFrom::Current(1)), None);
    }
}
