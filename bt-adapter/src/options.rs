//! How a torrent is added: [`TorrentOptions`], from a `.torrent` ([`TorrentSource`]) or, as
//! [`MagnetOptions`], from a magnet link. The two share every option; only the source and
//! what adding returns differ ([`crate::Torrent`] or [`crate::MagnetTorrent`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bt_proto::engine::{AddTorrent, RateLimits, TorrentState};
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;
use bt_proto::storage::resume_path;
use bt_proto::{InfoHash, PieceIndex};

use crate::Error;
use crate::events::{Events, Fanout};
use crate::messages::PieceCallback;
use crate::runtime::Runtime;

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

/// How to add a torrent to a [`crate::Session`]: where its metainfo comes from (`S`: a
/// [`TorrentSource`] for [`crate::Session::add_torrent`], a [`Magnet`] for
/// [`crate::Session::add_magnet`]) and the options both kinds share.
#[derive(Clone)]
pub struct TorrentOptions<S = TorrentSource> {
    pub(crate) source: S,
    pub(crate) base_dir: Option<PathBuf>,
    pub(crate) state: TorrentState,
    pub(crate) use_resume: bool,
    pub(crate) resume_path: Option<PathBuf>,
    pub(crate) verify_existing: bool,
    pub(crate) file_priorities: Vec<u8>,
    pub(crate) pex: bool,
    pub(crate) sequential: bool,
    pub(crate) encryption: Option<bt_proto::mse::Encryption>,
    pub(crate) rate_limits: RateLimits,
    pub(crate) on_hash_pass: Option<PieceCallback>,
    pub(crate) on_hash_fail: Option<PieceCallback>,
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) events: EarlyEvents,
}

/// The torrent's event fan-out when it was subscribed to before the torrent was added
/// ([`TorrentOptions::subscribe`]). A clone of the options starts without it: one fan-out
/// serves one torrent, and a clone may be added to another session.
#[derive(Default)]
pub(crate) struct EarlyEvents(Option<Arc<Fanout>>);

impl Clone for EarlyEvents {
    fn clone(&self) -> Self {
        EarlyEvents(None)
    }
}

/// How to add a torrent by magnet link ([`crate::Session::add_magnet`]): the options of a
/// `.torrent`, with the link as the source.
pub type MagnetOptions = TorrentOptions<Magnet>;

impl<S> std::fmt::Debug for TorrentOptions<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentOptions")
            .field("base_dir", &self.base_dir)
            .field("state", &self.state)
            .field("use_resume", &self.use_resume)
            .field("resume_path", &self.resume_path)
            .field("verify_existing", &self.verify_existing)
            .field("pex", &self.pex)
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

impl TorrentOptions {
    /// Options for a torrent from `source`, with the defaults: files under the current
    /// directory, started, resume data loaded from and saved to the default place
    /// (`<base>/.bt/<info-hash>.resume`), existing files checked when there is none.
    pub fn new(source: TorrentSource) -> Self {
        Self::with_defaults(source)
    }

    /// Options for the `.torrent` file at `path`.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self::new(TorrentSource::Path(path.into()))
    }

    /// Options for a `.torrent` file's bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(TorrentSource::Bytes(bytes.into()))
    }
}

impl TorrentOptions<Magnet> {
    /// Options for the torrent of a magnet link, with the defaults of
    /// [`TorrentOptions::new`]. Its metadata is kept beside its resume data once fetched
    /// (`<base>/.bt/<info-hash>.torrent`: see [`crate::Session::add_magnet`]).
    pub fn from_magnet(magnet: Magnet) -> Self {
        Self::with_defaults(magnet)
    }

    /// Options for the magnet link `uri` (`magnet:?xt=urn:btih:...`); [`Error::Magnet`] if it
    /// is not a valid one.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        Ok(Self::from_magnet(uri.parse()?))
    }
}

impl<S> TorrentOptions<S> {
    /// The defaults of [`TorrentOptions::new`] for any source.
    fn with_defaults(source: S) -> Self {
        TorrentOptions {
            source,
            base_dir: None,
            state: TorrentState::Started,
            use_resume: true,
            resume_path: None,
            verify_existing: true,
            file_priorities: Vec::new(),
            pex: true,
            sequential: false,
            encryption: None,
            rate_limits: RateLimits::NONE,
            on_hash_pass: None,
            on_hash_fail: None,
            peers: Vec::new(),
            events: EarlyEvents::default(),
        }
    }

    /// The fan-out the torrent's events go to: the one subscribed to early, if any.
    pub(crate) fn fanout(&self) -> Arc<Fanout> {
        self.events.0.clone().unwrap_or_default()
    }

    /// What the engine is told of these options when the torrent is added (the rest is the
    /// adapter's: files, resume data, callbacks).
    pub(crate) fn engine_options(&self) -> AddTorrent {
        AddTorrent {
            state: self.state,
            file_priorities: self.file_priorities.clone(),
            no_pex: !self.pex,
            sequential: self.sequential,
            encryption: self.encryption,
            rate_limits: self.rate_limits,
            ..Default::default()
        }
    }

    /// The base directory (the current one unless set).
    pub(crate) fn base(&self) -> PathBuf {
        self.base_dir.clone().unwrap_or_else(|| ".".into())
    }

    /// Where the torrent of `info_hash` keeps its resume data, if it does.
    pub(crate) fn resume_file(&self, info_hash: &InfoHash) -> Option<PathBuf> {
        self.use_resume.then(|| {
            self.resume_path
                .clone()
                .unwrap_or_else(|| resume_path(&self.base(), info_hash))
        })
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

    /// Peer exchange (BEP 11) for this torrent (default: on, if the session has it on:
    /// [`crate::SessionBuilder::pex`]; never for a private torrent).
    pub fn pex(mut self, enabled: bool) -> Self {
        self.pex = enabled;
        self
    }

    /// Download pieces in index order rather than rarest first (default: off), for a file
    /// played or copied from its start while it downloads; the pieces of open file readers
    /// ([`crate::Torrent::file_reader`]) come first either way. It can be changed later
    /// ([`crate::Torrent::set_sequential`]).
    pub fn sequential(mut self, on: bool) -> Self {
        self.sequential = on;
        self
    }

    /// Message stream encryption for this torrent's connections, instead of the session's
    /// ([`crate::SessionBuilder::encryption`]): a torrent may require it in a session that
    /// only enables it, or refuse it.
    pub fn encryption(mut self, policy: bt_proto::mse::Encryption) -> Self {
        self.encryption = Some(policy);
        self
    }

    /// This torrent's own upload and download limits in bytes per second (default: none;
    /// 0 either way is none), within the session's ([`crate::SessionBuilder::rate_limits`]):
    /// the lower of the two holds. [`crate::Torrent::set_rate_limits`] changes them later.
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Peers to connect to from the start, as if given to [`crate::Torrent::add_peer`] once
    /// the torrent is added; more may be added later. Trackers, the DHT and peer exchange
    /// find others.
    ///
    /// ```
    /// # use bt_adapter::TorrentOptions;
    /// let opts = TorrentOptions::from_path("a.torrent").peers(["192.0.2.7:6881".parse().unwrap()]);
    /// ```
    pub fn peers(mut self, peers: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.peers.extend(peers);
        self
    }

    /// A stream of the torrent's events from its very start, before it is added: the
    /// events of the check of files already on disk, which [`crate::Session::add_torrent`]
    /// starts before it returns, come before [`crate::Torrent::events`] can be called. The
    /// stream ends when the torrent is removed or its session shuts down, or at once if the
    /// torrent is not added (these options dropped, or adding failed). Call it before
    /// adding, on the options that are added: a clone of the options does not carry it.
    ///
    /// Its queue holds [`crate::EVENT_QUEUE`] events, as every subscriber's: one check
    /// event comes per piece, so a subscriber that reads only after adding a torrent of more
    /// pieces than that gets a [`crate::Lagged`] telling how many it missed.
    ///
    /// ```no_run
    /// # async fn f(session: bt_adapter::Session<impl bt_adapter::Runtime>) -> Result<(), bt_adapter::Error> {
    /// use bt_adapter::{Event, TorrentOptions};
    ///
    /// let mut opts = TorrentOptions::from_path("big.torrent").base_dir("downloads");
    /// let mut events = opts.subscribe();
    /// let torrent = session.add_torrent(opts).await?;
    /// while let Some(item) = events.next().await {
    ///     if let Ok(Event::HashcheckDone { verified, total, .. }) = item {
    ///         println!("{verified} of {total} pieces already on disk");
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&mut self) -> Events {
        self.events
            .0
            .get_or_insert_with(Default::default)
            .subscribe()
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
