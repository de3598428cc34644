//! A torrent whose storage failed: the error becomes its state, [`TorrentState::Failed`], so
//! an application waiting on the torrent learns of it instead of waiting for ever.

use std::time::Instant;

use super::{Event, Session, StorageError, TorrentId, TorrentState};

impl Session {
    /// A write or read of the torrent's files failed: the application is told, and a torrent
    /// started or paused enters `Failed` with the error (the first one: later failures of
    /// jobs already in flight are reported but do not replace the cause). A stopped torrent
    /// stays stopped; starting it tries the disk again anyway.
    pub(super) fn storage_failed(&mut self, now: Instant, id: TorrentId, error: StorageError) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let enter = t.state.in_swarm() && t.error.is_none();
        if enter {
            t.error = Some(Box::new(error.clone()));
        }
        self.events
            .push_back(Event::StorageFailed { torrent: id, error });
        if enter {
            self.change_state(now, id, TorrentState::Failed);
        }
    }
}
