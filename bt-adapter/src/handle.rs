//! What every torrent handle is: the torrent's id, the way to the driver, its events and its
//! resume file, with the operations that need no metadata. [`crate::Torrent`] and
//! [`crate::MagnetTorrent`] are both built on it, so each operation is written once.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_channel::Sender;
use bt_proto::PeerId;
use bt_proto::engine::{self, PeerInfo, TorrentId, TorrentState, TorrentStats, TrackerInfo};

use crate::Error;
use crate::events::{Events, Fanout};
use crate::messages::{Command, reply};
use crate::runtime::Runtime;
use bt_proto::magnet::MagnetPeer;

/// What the handles share: the way to the driver and the session's identity.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) commands: Sender<Command>,
    pub(crate) peer_id: PeerId,
    pub(crate) port: u16,
}

/// One torrent of a session, as every handle names it.
pub(crate) struct Handle<R: Runtime> {
    pub(crate) id: TorrentId,
    pub(crate) shared: Arc<Shared>,
    pub(crate) events: Arc<Fanout>,
    /// Shared with the driver's [`crate::resume::ResumeFile`]: one copy of the path per
    /// torrent, however many handles and clones.
    pub(crate) resume_path: Option<Arc<Path>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Clone for Handle<R> {
    fn clone(&self) -> Self {
        Handle {
            id: self.id,
            shared: self.shared.clone(),
            events: self.events.clone(),
            resume_path: self.resume_path.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime> Handle<R> {
    pub(crate) fn new(
        id: TorrentId,
        shared: Arc<Shared>,
        events: Arc<Fanout>,
        resume_path: Option<Arc<Path>>,
    ) -> Self {
        Handle {
            id,
            shared,
            events,
            resume_path,
            runtime: PhantomData,
        }
    }

    pub(crate) async fn send(&self, c: Command) -> Result<(), Error> {
        self.shared
            .commands
            .send(c)
            .await
            .map_err(|_| Error::SessionClosed)
    }

    /// Runs `f` on the engine and returns its answer.
    pub(crate) async fn query<T: Send + 'static>(
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

    pub(crate) fn resume_file(&self) -> Option<&Path> {
        self.resume_path.as_deref()
    }

    pub(crate) async fn stats(&self) -> Result<TorrentStats, Error> {
        self.query(|s, id, now| s.stats(id, now)).await
    }

    pub(crate) async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.query(|s, id, now| {
            s.has_torrent(id).then_some(())?;
            Some(s.peers(id, now))
        })
        .await
    }

    pub(crate) async fn trackers(&self) -> Result<Vec<TrackerInfo>, Error> {
        self.query(|s, id, _| {
            s.has_torrent(id).then_some(())?;
            Some(s.trackers(id))
        })
        .await
    }

    pub(crate) async fn set_state(&self, state: TorrentState) -> Result<(), Error> {
        let (reply, rx) = reply();
        self.send(Command::SetState {
            id: self.id,
            state,
            reply,
        })
        .await?;
        rx.recv().await.map_err(|_| Error::SessionClosed)?
    }

    pub(crate) async fn add_peer(&self, addr: SocketAddr) -> Result<(), Error> {
        self.query(move |s, id, now| {
            s.has_torrent(id).then_some(())?;
            s.add_peer(now, id, addr);
            Some(())
        })
        .await
    }

    /// Adds `peer`: an address, or `HOST:PORT` resolved through the runtime (every address
    /// the name has is added).
    pub(crate) async fn add_peer_spec(&self, peer: PeerSpec) -> Result<(), Error> {
        let text = match peer {
            PeerSpec::Addr(addr) => return self.add_peer(addr).await,
            PeerSpec::Text(text) => text,
        };
        let addrs = match text.parse::<MagnetPeer>()? {
            MagnetPeer::Addr(addr) => vec![addr],
            MagnetPeer::Host { host, port } => R::resolve(host.clone(), port)
                .await
                .map_err(|source| Error::Resolve { host, source })?,
        };
        for addr in addrs {
            self.add_peer(addr).await?;
        }
        Ok(())
    }

    pub(crate) fn events(&self) -> Events {
        self.events.subscribe()
    }

    pub(crate) async fn wait_complete(&self) -> Result<(), Error> {
        let (reply, rx) = reply();
        self.send(Command::WaitComplete { id: self.id, reply })
            .await?;
        rx.recv().await.map_err(|_| Error::NoSuchTorrent)?
    }

    pub(crate) async fn remove(&self) -> Result<(), Error> {
        let (reply, rx) = reply();
        self.send(Command::Remove { id: self.id, reply }).await?;
        rx.recv().await.map_err(|_| Error::SessionClosed)
    }
}

/// A peer to add to a torrent: an address, or `HOST:PORT` (a host name or an address
/// literal), resolved through the runtime when added.
///
/// ```
/// use bt_adapter::PeerSpec;
/// let by_addr: PeerSpec = "192.0.2.7:6881".parse::<std::net::SocketAddr>().unwrap().into();
/// let by_name: PeerSpec = "peer.example:6881".into();
/// assert!(matches!(by_addr, PeerSpec::Addr(_)));
/// assert!(matches!(by_name, PeerSpec::Text(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerSpec {
    /// An address.
    Addr(SocketAddr),
    /// `HOST:PORT`.
    Text(String),
}

impl From<SocketAddr> for PeerSpec {
    fn from(a: SocketAddr) -> Self {
        PeerSpec::Addr(a)
    }
}

impl From<&str> for PeerSpec {
    fn from(s: &str) -> Self {
        PeerSpec::Text(s.to_string())
    }
}

impl From<String> for PeerSpec {
    fn from(s: String) -> Self {
        PeerSpec::Text(s)
    }
}
