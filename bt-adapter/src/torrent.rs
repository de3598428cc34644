//! The [`Torrent`] handle and the [`TorrentOptions`] it is added with.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_channel::Sender;
use bt_proto::engine::{
    self, CheckScope, FileInfo, PeerInfo, TorrentId, TorrentState, TorrentStats, TrackerInfo,
};
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::ResumeData;
use bt_proto::{Bitfield, InfoHash, PeerId, PieceIndex};

use crate::events::{Events, Fanout};
use crate::messages::{Command, PieceCallback, reply};
use crate::runtime::Runtime;
use crate::{Error, HashcheckReport};

/// What the handles share: the way to the driver and the session's identity.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) commands: Sender<Command>,
    pub(crate) peer_id: PeerId,
    pub(crate) port: u16,
}

/// Where a torrent's metainfo comes from.
#[derive(Debug, Clone)]
pub enum TorrentSource {
    /// A `.torrent` file.
    Path(PathBuf),
    /// The bytes of a `.torrent` file.
    Bytes(Vec<u8>),
    /// Already parsed.
    Metainfo(Box<Metainfo>),
}

impl TorrentSource {
    pub(crate) async fn load<R: Runtime>(&self) -> Result<Metainfo, Error> {
        match self {
            TorrentSource::Path(p) => {
                let path = p.clone();
                let bytes = R::unblock(move || std::fs::read(path))
                    .await
                    .ok_or(Error::SessionClosed)?
                    .map_err(|source| Error::ReadTorrent {
                        path: p.clone(),
                        source,
                    })?;
                Ok(Metainfo::from_bytes(&bytes)?)
            }
            TorrentSource::Bytes(b) => Ok(Metainfo::from_bytes(b)?),
            TorrentSource::Metainfo(m) => Ok((**m).clone()),
        }
    }
}

/// How to add a torrent to a [`crate::Session`].
#[derive(Clone)]
pub struct TorrentOptions {
    pub(crate) source: TorrentSource,
    pub(crate) base_dir: Option<PathBuf>,
    pub(crate) state: TorrentState,
    pub(crate) use_resume: bool,
    pub(crate) resume_path: Option<PathBuf>,
    pub(crate) verify_existing: bool,
    pub(crate) file_priorities: Vec<u8>,
    pub(crate) on_hash_pass: Option<PieceCallback>,
    pub(crate) on_hash_fail: Option<PieceCallback>,
}

impl std::fmt::Debug for TorrentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentOptions")
            .field("base_dir", &self.base_dir)
            .field("state", &self.state)
            .field("use_resume", &self.use_resume)
            .field("resume_path", &self.resume_path)
            .field("verify_existing", &self.verify_existing)
            .finish_non_exhaustive()
    }
}

impl TorrentOptions {
    /// Options for a torrent from `source`, with the defaults: files under the current
    /// directory, started, resume data loaded from and saved to the default place
    /// (`<base>/.bt/<info-hash>.resume`), existing files checked when there is none.
    pub fn new(source: TorrentSource) -> Self {
        TorrentOptions {
            source,
            base_dir: None,
            state: TorrentState::Started,
            use_resume: true,
            resume_path: None,
            verify_existing: true,
            file_priorities: Vec::new(),
            on_hash_pass: None,
            on_hash_fail: None,
        }
    }

    /// Options for the `.torrent` file at `path`.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self::new(TorrentSource::Path(path.into()))
    }

    /// Options for a `.torrent` file's bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(TorrentSource::Bytes(bytes.into()))
    }

    /// The directory the torrent's files live in (created on demand).
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// The state to start in: `Started` (default), `Paused` or `Stopped`.
    pub fn state(mut self, state: TorrentState) -> Self {
        self.state = state;
        self
    }

    /// Whether to load and save resume data (default: yes).
    pub fn resume(mut self, enabled: bool) -> Self {
        self.use_resume = enabled;
        self
    }

    /// Where to keep resume data instead of `<base>/.bt/<info-hash>.resume`.
    pub fn resume_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume_path = Some(path.into());
        self
    }

    /// Whether to check files already on disk when there is no resume data (default: yes).
    pub fn verify_existing(mut self, enabled: bool) -> Self {
        self.verify_existing = enabled;
        self
    }

    /// Priority per file in metainfo order (0 = skip); missing entries are 1.
    pub fn file_priorities(mut self, priorities: Vec<u8>) -> Self {
        self.file_priorities = priorities;
        self
    }

    /// Called with the piece index whenever a piece passes its hash check (downloaded or
    /// checked on disk). Runs on the driver task: keep it short.
    pub fn on_hash_pass(mut self, f: impl Fn(PieceIndex) + Send + Sync + 'static) -> Self {
        self.on_hash_pass = Some(Arc::new(f));
        self
    }

    /// Called with the piece index whenever a piece fails its hash check (downloaded or
    /// checked on disk). Runs on the driver task: keep it short.
    pub fn on_hash_fail(mut self, f: impl Fn(PieceIndex) + Send + Sync + 'static) -> Self {
        self.on_hash_fail = Some(Arc::new(f));
        self
    }
}

/// A handle to one torrent of a session. Cheap to clone; every clone names the same torrent.
pub struct Torrent<R: Runtime> {
    id: TorrentId,
    meta: Arc<Metainfo>,
    shared: Arc<Shared>,
    events: Arc<Fanout>,
    resume_path: Option<PathBuf>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Clone for Torrent<R> {
    fn clone(&self) -> Self {
        Torrent {
            id: self.id,
            meta: self.meta.clone(),
            shared: self.shared.clone(),
            events: self.events.clone(),
            resume_path: self.resume_path.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Torrent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrent")
            .field("id", &self.id)
            .field("info_hash", &self.meta.info_hash())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Torrent<R> {
    pub(crate) fn new(
        id: TorrentId,
        meta: Arc<Metainfo>,
        shared: Arc<Shared>,
        events: Arc<Fanout>,
        resume_path: Option<PathBuf>,
    ) -> Self {
        Torrent {
            id,
            meta,
            shared,
            events,
            resume_path,
            runtime: PhantomData,
        }
    }

    async fn send(&self, c: Command) -> Result<(), Error> {
        self.shared
            .commands
            .send(c)
            .await
            .map_err(|_| Error::SessionClosed)
    }

    /// Runs `f` on the engine and returns its answer.
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut engine::Session, TorrentId, Instant) -> Option<T> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = reply();
        let id = self.id;
        self.send(Command::Run(Box::new(move |s, now| {
            let _ = tx.try_send(f(s, id, now));
        })))
        .await?;
        rx.recv()
            .await
            .map_err(|_| Error::SessionClosed)?
            .ok_or(Error::NoSuchTorrent)
    }

    // ----- what the metainfo says ---------------------------------------------------------

    /// The engine's id of this torrent.
    pub fn id(&self) -> TorrentId {
        self.id
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
        self.shared.peer_id
    }

    /// The session's listening port.
    pub fn port(&self) -> u16 {
        self.shared.port
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
        self.resume_path.as_deref()
    }

    // ----- live state ---------------------------------------------------------------------

    /// Counters and flags in one snapshot.
    pub async fn stats(&self) -> Result<TorrentStats, Error> {
        self.query(|s, id, _| s.stats(id)).await
    }

    /// The run state.
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
        self.query(|s, id, _| s.bitfield(id).cloned()).await
    }

    /// Wanted pieces (touching a file of priority above 0).
    pub async fn wanted(&self) -> Result<Bitfield, Error> {
        self.query(|s, id, _| s.wanted(id)).await
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
        self.query(|s, id, _| s.files(id)).await
    }

    /// Sets a file's priority (0 = skip).
    pub async fn set_priority(&self, file: usize, priority: u8) -> Result<(), Error> {
        self.query(move |s, id, now| {
            s.stats(id)?;
            s.set_file_priority(now, id, file, priority);
            Some(())
        })
        .await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.query(|s, id, now| {
            s.stats(id)?;
            Some(s.peers(id, now))
        })
        .await
    }

    /// The engine's view of the download, several lines of text for diagnosing a stall
    /// (see [`engine::Session::debug_state`]).
    pub async fn debug_state(&self) -> Result<String, Error> {
        self.query(|s, id, now| s.debug_state(id, now)).await
    }

    /// Trackers, by tier.
    pub async fn trackers(&self) -> Result<Vec<TrackerInfo>, Error> {
        self.query(|s, id, _| {
            s.stats(id)?;
            Some(s.trackers(id))
        })
        .await
    }

    // ----- commands -----------------------------------------------------------------------

    async fn set_state(&self, state: TorrentState) -> Result<(), Error> {
        let (reply, rx) = reply();
        self.send(Command::SetState {
            id: self.id,
            state,
            reply,
        })
        .await?;
        match rx.recv().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::NoSuchTorrent),
            Err(_) => Err(Error::SessionClosed),
        }
    }

    /// Connect, request and serve.
    pub async fn start(&self) -> Result<(), Error> {
        self.set_state(TorrentState::Started).await
    }

    /// Keep connections, make and serve no requests.
    pub async fn pause(&self) -> Result<(), Error> {
        self.set_state(TorrentState::Paused).await
    }

    /// Announce `stopped`, close every connection, refuse new ones, close files and save
    /// resume data.
    pub async fn stop(&self) -> Result<(), Error> {
        self.set_state(TorrentState::Stopped).await
    }

    /// Adds a peer address to connect to.
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<(), Error> {
        self.query(move |s, id, now| {
            s.stats(id)?;
            s.add_peer(now, id, addr);
            Some(())
        })
        .await
    }

    async fn check(&self, scope: CheckScope) -> Result<HashcheckReport, Error> {
        let (reply, rx) = reply();
        self.send(Command::Hashcheck {
            id: self.id,
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
        self.send(Command::Resume {
            id: self.id,
            save,
            reply,
        })
        .await?;
        rx.recv().await.map_err(|_| Error::SessionClosed)?
    }

    /// This torrent's events from now on.
    pub fn events(&self) -> Events {
        self.events.subscribe()
    }

    /// Returns once every wanted piece is verified (at once if it already is).
    pub async fn wait_complete(&self) -> Result<(), Error> {
        let (reply, rx) = reply();
        self.send(Command::WaitComplete { id: self.id, reply })
            .await?;
        rx.recv().await.map_err(|_| Error::NoSuchTorrent)
    }

    /// Stops the torrent (as [`Torrent::stop`]) and removes it from the session.
    pub async fn remove(self) -> Result<(), Error> {
        let (reply, rx) = reply();
        self.send(Command::Remove { id: self.id, reply }).await?;
        rx.recv().await.map_err(|_| Error::SessionClosed)
    }
}
