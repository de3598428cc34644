//! Streaming readers on the driver's side: opening one hands it the torrent's files, and the
//! engine readers of dropped ones are closed at the next command (a dropped reader nudges
//! the driver with an empty one).

use std::time::Instant;

use bt_proto::engine::TorrentId;

use super::Driver;
use crate::Error;
use crate::messages::{OpenedReader, ReaderGuard};
use crate::runtime::Runtime;

impl<R: Runtime> Driver<R> {
    /// Opens an engine reader on file `file` of torrent `id`.
    pub(super) fn open_reader(
        &mut self,
        now: Instant,
        id: TorrentId,
        file: usize,
    ) -> Result<OpenedReader, Error> {
        let storage = self
            .torrents
            .get(&id)
            .and_then(|t| t.storage.clone())
            .ok_or(Error::NoSuchTorrent)?;
        let files = self
            .session
            .metainfo(id)
            .map_or(0, |m| m.piece_map().file_count());
        if file >= files {
            return Err(Error::NoSuchFile { file, files });
        }
        let reader = self
            .session
            .open_reader(now, id, file)
            .ok_or(Error::TooManyReaders)?;
        Ok(OpenedReader {
            guard: ReaderGuard {
                reader,
                dropped: self.dropped_readers.clone(),
            },
            storage,
        })
    }

    /// Closes the engine readers of the readers dropped since the last command.
    pub(super) fn close_dropped_readers(&mut self, now: Instant) {
        // The list stays valid whatever a panicking holder did: it only grows and is taken.
        let dropped = std::mem::take(
            &mut *self
                .dropped_readers
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for reader in dropped {
            self.session.close_reader(now, reader);
        }
    }
}
