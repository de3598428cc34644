//! The [`MagnetTorrent`] handle: a torrent added by magnet link, whose metadata may not be
//! known yet.
//!
//! Why a handle of its own: [`Torrent`] answers what the metainfo says (name, size, files,
//! piece length) at once and without failing, which a torrent still fetching its metadata
//! cannot. So a magnet gives a [`MagnetTorrent`], which does at once everything that needs no
//! metadata (counters, peers, trackers, events, states, removal), and hands out the
//! [`Torrent`] once the metadata has arrived ([`MagnetTorrent::metadata`] without waiting,
//! [`MagnetTorrent::wait_metadata`] waiting). Both name the same torrent of the engine.

use std::path::Path;

use bt_proto::InfoHash;
use bt_proto::engine::{PeerInfo, TorrentId, TorrentState, TorrentStats, TrackerInfo};

use crate::events::Events;
use crate::handle::{Handle, PeerSpec};
use crate::messages::{Command, MetadataSlot, reply};
use crate::runtime::Runtime;
use crate::{Error, Torrent};

/// A handle to a torrent added by magnet link ([`crate::Session::add_magnet`]). Cheap to
/// clone; every clone names the same torrent. See the module docs for why it is not a
/// [`Torrent`].
pub struct MagnetTorrent<R: Runtime> {
    handle: Handle<R>,
    info_hash: InfoHash,
    display_name: Option<String>,
    metadata: MetadataSlot,
}

impl<R: Runtime> Clone for MagnetTorrent<R> {
    fn clone(&self) -> Self {
        MagnetTorrent {
            handle: self.handle.clone(),
            info_hash: self.info_hash,
            display_name: self.display_name.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for MagnetTorrent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MagnetTorrent")
            .field("id", &self.handle.id)
            .field("info_hash", &self.info_hash)
            .field("has_metadata", &self.metadata.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> MagnetTorrent<R> {
    pub(crate) fn new(
        handle: Handle<R>,
        info_hash: InfoHash,
        display_name: Option<String>,
        metadata: MetadataSlot,
    ) -> Self {
        MagnetTorrent {
            handle,
            info_hash,
            display_name,
            metadata,
        }
    }

    /// The handle every operation goes through.
    pub(crate) fn handle(&self) -> &Handle<R> {
        &self.handle
    }

    /// The engine's id of this torrent (the same as its [`Torrent::id`]).
    pub fn id(&self) -> TorrentId {
        self.handle.id
    }

    /// The info-hash the magnet link names.
    pub fn infohash(&self) -> InfoHash {
        self.info_hash
    }

    /// The name: the metadata's once it has arrived, the link's `dn` until then (`None` if
    /// the link has none).
    pub fn name(&self) -> Option<String> {
        match self.metadata.get() {
            Some(meta) => Some(meta.name().to_string()),
            None => self.display_name.clone(),
        }
    }

    /// Where resume data (and, once fetched, the metadata, as a `.torrent` beside it) is
    /// kept, if it is.
    pub fn resume_file(&self) -> Option<&Path> {
        self.handle.resume_file()
    }

    /// The torrent with its metainfo, if the metadata has arrived (or was kept from an
    /// earlier run), else `None`.
    pub fn metadata(&self) -> Option<Torrent<R>> {
        let meta = self.metadata.get()?;
        Some(Torrent::new(self.handle.clone(), meta.clone()))
    }

    /// Waits for the metadata and returns the torrent with its metainfo (at once if it is
    /// there). Fails with [`Error::Metainfo`] when the metadata the peers sent is not a torrent
    /// this crate accepts (an unsafe path, say), with [`Error::Layout`] when its files cannot
    /// be laid out under the base directory (nothing was written), both leaving the torrent
    /// stopped, and with [`Error::NoSuchTorrent`] once it is removed.
    pub async fn wait_metadata(&self) -> Result<Torrent<R>, Error> {
        if let Some(t) = self.metadata() {
            return Ok(t);
        }
        let (reply, rx) = reply();
        self.handle
            .send(Command::WaitMetadata {
                id: self.handle.id,
                reply,
            })
            .await?;
        let meta = rx.recv().await.map_err(|_| Error::NoSuchTorrent)??;
        Ok(Torrent::new(self.handle.clone(), meta))
    }

    /// Counters and flags in one snapshot; `has_metadata` says whether the metadata is here
    /// (piece counts are 0 until it is, `peers` counts connected peers either way).
    pub async fn stats(&self) -> Result<TorrentStats, Error> {
        self.handle.stats().await
    }

    /// The run state.
    pub async fn state(&self) -> Result<TorrentState, Error> {
        Ok(self.stats().await?.state)
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.handle.peers().await
    }

    /// Trackers, one tier per `tr` of the link.
    pub async fn trackers(&self) -> Result<Vec<TrackerInfo>, Error> {
        self.handle.trackers().await
    }

    /// Connect, fetch the metadata, then request and serve as any torrent.
    pub async fn start(&self) -> Result<(), Error> {
        self.handle.set_state(TorrentState::Started).await
    }

    /// Keep connections, make and serve no requests.
    pub async fn pause(&self) -> Result<(), Error> {
        self.handle.set_state(TorrentState::Paused).await
    }

    /// Close every connection and stop fetching (or downloading).
    pub async fn stop(&self) -> Result<(), Error> {
        self.handle.set_state(TorrentState::Stopped).await
    }

    /// Adds a peer to connect to (and fetch the metadata from), as [`Torrent::add_peer`].
    pub async fn add_peer(&self, peer: impl Into<PeerSpec>) -> Result<(), Error> {
        self.handle.add_peer_spec(peer.into()).await
    }

    /// This torrent's events from now on, [`crate::Event::MetadataReceived`] included.
    /// The stream ends when the torrent is removed or the session shuts down (at once if
    /// it already has); [`crate::TorrentOptions::subscribe`] gives the events from the
    /// torrent's start.
    pub fn events(&self) -> Events {
        self.handle.events()
    }

    /// Returns once the metadata has arrived and every wanted piece is verified, as
    /// [`Torrent::wait_complete`] does.
    pub async fn wait_complete(&self) -> Result<(), Error> {
        self.handle.wait_complete().await
    }

    /// Stops the torrent and removes it from the session.
    pub async fn remove(self) -> Result<(), Error> {
        self.handle.remove().await
    }
}
