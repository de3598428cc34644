//! The [`Torrent`] handle: a torrent whose metainfo is known.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bt_proto::engine::{
    CheckScope, FileInfo, PeerInfo, TorrentId, TorrentState, TorrentStats, TrackerInfo,
};
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::ResumeData;
use bt_proto::{Bitfield, InfoHash, PeerId, PieceIndex};

use crate::events::Events;
use crate::handle::{Handle, PeerSpec};
use crate::messages::{Command, reply};
use crate::runtime::Runtime;
use crate::{Error, HashcheckReport};

/// A handle to one torrent of a session. Cheap to clone; every clone names the same torrent.
///
/// Its metainfo is always known: a torrent added by magnet link gets one from
/// [`crate::MagnetTorrent::metadata`] once its metadata has arrived.
pub struct Torrent<R: Runtime> {
    handle: Handle<R>,
    meta: Arc<Metainfo>,
}

impl<R: Runtime> Clone for Torrent<R> {
    fn clone(&self) -> Self {
        Torrent {
            handle: self.handle.clone(),
            meta: self.meta.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Torrent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrent")
            .field("id", &self.handle.id)
            .field("info_hash", &self.meta.info_hash())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Torrent<R> {
    pub(crate) fn new(handle: Handle<R>, meta: Arc<Metainfo>) -> Self {
        Torrent { handle, meta }
    }

    /// What the torrent is, for a [`crate::MagnetTorrent`] of it: the handle and the
    /// metainfo.
    pub(crate) fn parts(&self) -> (&Handle<R>, &Arc<Metainfo>) {
        (&self.handle, &self.meta)
    }

    // ----- what the metainfo says ---------------------------------------------------------

    /// The engine's id of this torrent.
    pub fn id(&self) -> TorrentId {
        self.handle.id
    }

    /// The parsed metainfo.
    pub fn metainfo(&self) -> &Metainfo {
        &self.meta
    }

    /// SHA-1 of the `info` dictionary as found in the file.
    pub fn infohash(&self) -> InfoHash {
        self.meta.info_hash()
    }

    /// The session's peer id.
    pub fn peerid(&self) -> PeerId {
        self.handle.shared.peer_id
    }

    /// The session's listening port.
    pub fn port(&self) -> u16 {
        self.handle.shared.port
    }

    /// Total bytes of the torrent.
    pub fn size(&self) -> u64 {
        self.meta.size()
    }

    /// The torrent's name (UTF-8).
    pub fn name(&self) -> &str {
        self.meta.name()
    }

    /// Bytes per piece (the last may be shorter).
    pub fn piece_length(&self) -> u32 {
        self.meta.piece_length()
    }

    /// Where resume data is kept, if it is.
    pub fn resume_file(&self) -> Option<&Path> {
        self.handle.resume_file()
    }

    // ----- live state ---------------------------------------------------------------------

    /// Counters and flags in one snapshot.
    pub async fn stats(&self) -> Result<TorrentStats, Error> {
        self.handle.stats().await
    }

    /// The run state: `Started`, `Paused` or `Stopped` as asked, `Queued` while a started
    /// torrent waits for a slot of the session's queue
    /// ([`crate::SessionBuilder::max_active_downloads`]), `Failed` after a disk error.
    pub async fn state(&self) -> Result<TorrentState, Error> {
        Ok(self.stats().await?.state)
    }

    /// Bytes uploaded, over the torrent's life (resume data carries earlier runs).
    pub async fn uploaded(&self) -> Result<u64, Error> {
        Ok(self.stats().await?.uploaded)
    }

    /// Bytes downloaded, over the torrent's life.
    pub async fn downloaded(&self) -> Result<u64, Error> {
        Ok(self.stats().await?.downloaded)
    }

    /// Bytes of wanted pieces not yet verified.
    pub async fn left(&self) -> Result<u64, Error> {
        Ok(self.stats().await?.left)
    }

    /// Verified pieces.
    pub async fn bitfield(&self) -> Result<Bitfield, Error> {
        self.handle.query(|s, id, _| s.bitfield(id).cloned()).await
    }

    /// Wanted pieces (touching a file of priority above 0).
    pub async fn wanted(&self) -> Result<Bitfield, Error> {
        self.handle.query(|s, id, _| s.wanted(id)).await
    }

    /// Whether every wanted piece is verified.
    pub async fn complete(&self) -> Result<bool, Error> {
        Ok(self.stats().await?.complete)
    }

    /// Whether every piece is verified.
    pub async fn seed(&self) -> Result<bool, Error> {
        Ok(self.stats().await?.seed)
    }

    /// Each file with its priority and bytes done.
    pub async fn files(&self) -> Result<Vec<FileInfo>, Error> {
        self.handle.query(|s, id, _| s.files(id)).await
    }

    /// Sets a file's priority (0 = skip).
    pub async fn set_priority(&self, file: usize, priority: u8) -> Result<(), Error> {
        self.handle
            .query(move |s, id, now| {
                s.has_torrent(id).then_some(())?;
                s.set_file_priority(now, id, file, priority);
                Some(())
            })
            .await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.handle.peers().await
    }

    /// The engine's view of the download, several lines of text for diagnosing a stall
    /// (see [`bt_proto::engine::Session::debug_state`]).
    pub async fn debug_state(&self) -> Result<String, Error> {
        self.handle.query(|s, id, now| s.debug_state(id, now)).await
    }

    /// Trackers, by tier.
    pub async fn trackers(&self) -> Result<Vec<TrackerInfo>, Error> {
        self.handle.trackers().await
    }

    // ----- commands -----------------------------------------------------------------------

    /// Connect, request and serve. From [`TorrentState::Failed`], this tries the disk again.
    /// When the session caps the torrents that run at once
    /// ([`crate::SessionBuilder::max_active_downloads`], `max_active_seeds`), a torrent with
    /// no free slot waits in [`TorrentState::Queued`] until it gets one.
    pub async fn start(&self) -> Result<(), Error> {
        self.handle.set_state(TorrentState::Started).await
    }

    /// Keep connections, make and serve no requests.
    pub async fn pause(&self) -> Result<(), Error> {
        self.handle.set_state(TorrentState::Paused).await
    }

    /// Announce `stopped`, close every connection, refuse new ones, close files and save
    /// resume data.
    pub async fn stop(&self) -> Result<(), Error> {
        self.handle.set_state(TorrentState::Stopped).await
    }

    /// Adds a peer to connect to: an address, or `"HOST:PORT"` resolved through the
    /// runtime ([`Error::Resolve`] if the name does not resolve, [`Error::Magnet`] if the
    /// text is not `HOST:PORT`).
    pub async fn add_peer(&self, peer: impl Into<PeerSpec>) -> Result<(), Error> {
        self.handle.add_peer_spec(peer.into()).await
    }

    async fn check(&self, scope: CheckScope) -> Result<HashcheckReport, Error> {
        let (reply, rx) = reply();
        self.handle
            .send(Command::Hashcheck {
                id: self.handle.id,
                scope,
                reply,
            })
            .await?;
        rx.recv().await.map_err(|_| Error::NoSuchTorrent)
    }

    /// Verifies every piece on disk (on all cores); returns when done.
    pub async fn hashcheck(&self) -> Result<HashcheckReport, Error> {
        self.check(CheckScope::All).await
    }

    /// Verifies one piece on disk; returns when done.
    pub async fn hashcheck_piece(&self, piece: PieceIndex) -> Result<HashcheckReport, Error> {
        self.check(CheckScope::Pieces(vec![piece])).await
    }

    /// Verifies these pieces on disk; returns when done.
    pub async fn hashcheck_pieces(
        &self,
        pieces: impl IntoIterator<Item = PieceIndex>,
    ) -> Result<HashcheckReport, Error> {
        self.check(CheckScope::Pieces(pieces.into_iter().collect()))
            .await
    }

    /// Resume data as of now (files flushed first, then stamped).
    pub async fn resume_data(&self) -> Result<ResumeData, Error> {
        Ok(self.resume(false).await?.0)
    }

    /// Writes resume data now (atomically) and returns where, if resume data is enabled.
    pub async fn save_resume(&self) -> Result<Option<PathBuf>, Error> {
        Ok(self.resume(true).await?.1)
    }

    async fn resume(&self, save: bool) -> Result<(ResumeData, Option<PathBuf>), Error> {
        let (reply, rx) = reply();
        self.handle
            .send(Command::Resume {
                id: self.handle.id,
                save,
                reply,
            })
            .await?;
        rx.recv().await.map_err(|_| Error::SessionClosed)?
    }

    /// This torrent's events from now on.
    /// The stream ends when the torrent is removed or the session shuts down (at once if
    /// it already has); [`crate::TorrentOptions::subscribe`] gives the events from the
    /// torrent's start.
    pub fn events(&self) -> Events {
        self.handle.events()
    }

    /// Returns once every wanted piece is verified (at once if it already is), or with
    /// [`Error::Storage`] once the torrent is [`TorrentState::Failed`] (at once if it is): a
    /// torrent whose disk fails does not complete until it is started again
    /// ([`Torrent::start`]), after which a new wait may follow.
    pub async fn wait_complete(&self) -> Result<(), Error> {
        self.handle.wait_complete().await
    }

    /// Stops the torrent (as [`Torrent::stop`]) and removes it from the session.
    pub async fn remove(self) -> Result<(), Error> {
        self.handle.remove().await
    }
}
