//! # bt-adapter: the runtime-independent half of the adapters
//!
//! `bt-tokio` and `bt-smol` expose the same API; this crate is that API and everything behind
//! it that does not depend on the runtime, written once over the small [`Runtime`] trait
//! (tasks, blocking pool, timer, sockets). An adapter implements [`Runtime`] and names the
//! generic types: `type Session = bt_adapter::Session<Tokio>` and so on.
//!
//! ## How it is built
//! One driver task owns the engine (`bt_proto::engine::Session`). Connection tasks, disk jobs
//! (on the blocking pool, hashing spread over all cores) and tracker tasks feed it inputs
//! through one bounded queue; API handles send it commands; it sleeps until the engine's next
//! deadline. Queues are bounded, so memory per connection is bounded: see the [`net`] module's
//! constants for the back-pressure rules, [`disk`] for the file rules (LRU of open files,
//! files opened beneath the base directory by the kernel, sparse files), and
//! [`tracker`] for HTTP, HTTPS (the `https` feature) and UDP announces.
//!
//! Events, states, statistics and errors of the engine are the shared types of
//! [`bt_proto::engine`], re-exported here.
#![forbid(unsafe_code)]

mod beneath;
pub mod create;
pub mod dht;
pub mod disk;
mod disk_queue;
mod driver;
pub mod events;
mod handle;
mod layout;
mod limits;
pub mod lsd;
mod magnet;
mod messages;
pub mod net;
mod options;
mod resume;
pub mod runtime;
mod session;
pub mod streaming;
#[cfg(feature = "https")]
mod tls;
mod torrent;
pub mod tracker;
pub mod udp;
mod udp_offload;

use std::path::PathBuf;

pub use bt_proto as proto;

pub use bt_proto::engine::{
    CheckScope, CloseReason, Config, ConnEncryption, DEFAULT_RESUME_SAVE_INTERVAL, Event, FileInfo,
    HashcheckReport, PeerInfo, ProtocolViolation, StorageError, TorrentId, TorrentState,
    TorrentStats, TrackerInfo, Transport, Transports,
};
pub use bt_proto::engine::{DEFAULT_STALLED_AFTER, RateLimits};
pub use bt_proto::magnet::Magnet;
pub use bt_proto::metainfo::{Metainfo, MetainfoError};
pub use bt_proto::mse::Encryption;
pub use bt_proto::read_runs::MAX_READ_RUN;
pub use bt_proto::resume::ResumeData;
pub use bt_proto::storage::{LayoutError, StorageOp};
pub use bt_proto::tracker::AnnounceError;
pub use bt_proto::{Bitfield, ConnId, InfoHash, IoFailure, PeerId, PieceIndex};
pub use dht::{DhtOptions, DhtStatus};
pub use driver::{MAX_CONCURRENT_READS, SHUTDOWN_DEADLINE};
pub use events::{EVENT_QUEUE, Events, Lagged};
pub use handle::PeerSpec;
pub use lsd::LsdInterface;
pub use magnet::MagnetTorrent;
pub use options::{MagnetOptions, TorrentOptions, TorrentSource};
pub use resume::{MAX_METADATA_FILE, MAX_RESUME_FILE};
pub use runtime::Runtime;
pub use session::{INPUT_QUEUE, Session, SessionBuilder};
pub use streaming::{READ_CHUNK, ReaderRuntime};
pub use torrent::Torrent;

/// What can go wrong with the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The .torrent file could not be read.
    #[error("cannot read torrent file {path}: {source}")]
    ReadTorrent {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The .torrent is not a valid torrent (or, for a magnet link, the metadata its peers
    /// sent is not).
    #[error("invalid torrent: {0}")]
    Metainfo(#[from] bt_proto::metainfo::MetainfoError),
    /// The magnet link is not a valid one.
    #[error("invalid magnet link: {0}")]
    Magnet(#[from] bt_proto::magnet::MagnetError),
    /// The torrent is in the session already.
    #[error("torrent {0} is already in this session")]
    Duplicate(InfoHash),
    /// The torrent's files cannot be laid out under its base directory: one would be
    /// written where resume data is kept, or two would be one file on a file system that
    /// ignores case. Nothing was written.
    #[error("torrent refused for {}: {source}", base.display())]
    Layout {
        /// The base directory.
        base: PathBuf,
        /// What is wrong.
        source: LayoutError,
    },
    /// The listening port could not be bound.
    #[error("cannot listen on port {port}: {source}")]
    Listen {
        /// The port asked for.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// The session has shut down.
    #[error("the session has shut down")]
    SessionClosed,
    /// A peer's host name could not be resolved.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// The torrent was removed from the session.
    #[error("the torrent is not in the session")]
    NoSuchTorrent,
    /// A file index past the torrent's files ([`Torrent::file_reader`]).
    #[error("the torrent has no file {file}: it has {files}")]
    NoSuchFile {
        /// The index asked for.
        file: usize,
        /// How many files the torrent has.
        files: usize,
    },
    /// The session has [`bt_proto::engine::MAX_READERS`] streaming readers open already.
    #[error("too many file readers open in the session")]
    TooManyReaders,
    /// The torrent was stopped while a reader waited for bytes it had not verified yet:
    /// they will not come until it is started.
    #[error("the torrent is stopped: the bytes to read are not downloaded yet")]
    Stopped,
    /// Reading or writing the torrent's files failed: the torrent is
    /// [`TorrentState::Failed`] until it is started again (see [`Torrent::wait_complete`]).
    #[error("{0}")]
    Storage(StorageError),
    /// Resume data could not be written.
    #[error("cannot write resume data to {path}: {source}")]
    Resume {
        /// The resume file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file or directory to make a torrent of could not be read.
    #[error("cannot read {path}: {source}")]
    ReadContent {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A root certificate given for https trackers is not a valid certificate.
    #[error("invalid tracker root certificate: {0}")]
    Certificate(String),
    /// The content cannot be made into a torrent.
    #[error("cannot create torrent: {0}")]
    Create(#[from] bt_proto::metainfo::create::CreateError),
}

/// The public API of an adapter crate for the runtime `$rt`, whose crate is named `$krate`
/// in examples: the shared types re-exported, `Session`, `SessionBuilder` and `Torrent`
/// named for `$rt`, and `create::create_torrent` hashing on `$rt`'s blocking pool. Every
/// adapter invokes it once, so every adapter has the same API.
#[macro_export]
macro_rules! adapter_api {
    ($rt:ty, $krate:literal) => {
        pub use $crate::proto;
        pub use $crate::{
            AnnounceError, Bitfield, CheckScope, CloseReason, Config, ConnEncryption, ConnId,
            DEFAULT_RESUME_SAVE_INTERVAL, DhtOptions, DhtStatus, EVENT_QUEUE, Encryption, Error,
            Event, Events, FileInfo, HashcheckReport, INPUT_QUEUE, InfoHash, IoFailure, Lagged,
            LayoutError, MAX_CONCURRENT_READS, MAX_METADATA_FILE, MAX_READ_RUN, MAX_RESUME_FILE,
            Magnet, MagnetOptions, Metainfo, MetainfoError, PeerId, PeerInfo, PeerSpec, PieceIndex,
            ProtocolViolation, READ_CHUNK, ResumeData, SHUTDOWN_DEADLINE, StorageError, StorageOp,
            TorrentId, TorrentOptions, TorrentSource, TorrentState, TorrentStats, TrackerInfo,
            Transport, Transports, disk, net, tracker, udp,
        };

        pub use $crate::{DEFAULT_STALLED_AFTER, RateLimits};

        /// A BitTorrent session: one listening port (TCP, and UDP for the DHT and uTP)
        /// serving any number of torrents. Started with [`Session::builder`]; its methods
        /// are listed below (it is `bt_adapter::Session` on this crate's runtime).
        ///
        /// A session shuts down gracefully with [`Session::shutdown`] (or, dropped, in the
        /// background): `stopped` announced, files flushed, resume data saved. Every event
        /// stream of its torrents ends then.
        ///
        /// ```no_run
        #[doc = concat!("use ", $krate, "::{Session, TorrentOptions};")]
        ///
        #[doc = concat!("# async fn f() -> Result<(), ", $krate, "::Error> {")]
        /// let session = Session::builder().port(6881).start().await?;
        /// let torrent = session
        ///     .add_torrent(TorrentOptions::from_path("debian.iso.torrent").base_dir("downloads"))
        ///     .await?;
        /// torrent.add_peer("192.0.2.7:6881").await?;
        /// torrent.wait_complete().await?;
        /// session.shutdown().await;
        /// # Ok(()) }
        /// ```
        pub type Session = $crate::Session<$rt>;

        /// Configures and starts a [`Session`]: port, listening address, peer id, engine
        /// [`Config`], rate limits, queue, DHT, local discovery, encryption, transports.
        ///
        /// ```no_run
        #[doc = concat!("use ", $krate, "::{RateLimits, Session};")]
        ///
        #[doc = concat!("# async fn f() -> Result<(), ", $krate, "::Error> {")]
        /// let session = Session::builder()
        ///     .port(6881)
        ///     .rate_limits(RateLimits { upload: 1 << 20, download: 0 }) // 1 MiB/s up
        ///     .start()
        ///     .await?;
        /// # Ok(()) }
        /// ```
        pub type SessionBuilder = $crate::SessionBuilder<$rt>;

        /// A handle to one torrent of a [`Session`], from [`Session::add_torrent`]; cheap
        /// to clone. Its methods (listed below) read its state ([`Torrent::stats`],
        /// [`Torrent::peers`], [`Torrent::files`], ...), command it ([`Torrent::start`],
        /// [`Torrent::add_peer`], ...) and stream its [`Event`]s ([`Torrent::events`]).
        /// Once the torrent is removed or the session has shut down they return
        /// [`Error::NoSuchTorrent`] or [`Error::SessionClosed`].
        ///
        /// ```no_run
        #[doc = concat!("# async fn f(torrent: ", $krate, "::Torrent) -> Result<(), ", $krate, "::Error> {")]
        /// let s = torrent.stats().await?;
        /// println!(
        ///     "{}: {:.1} %, {} B/s down, {} peers, {:?} to go",
        ///     torrent.name(),
        ///     s.progress * 100.0,
        ///     s.download_rate,
        ///     s.peers,
        ///     s.eta,
        /// );
        /// # Ok(()) }
        /// ```
        pub type Torrent = $crate::Torrent<$rt>;

        /// A handle to a torrent of a [`Session`] added by magnet link
        /// ([`Session::add_magnet`]), whose metadata may not be known yet:
        /// [`MagnetTorrent::wait_metadata`] gives the [`Torrent`] once it is.
        pub type MagnetTorrent = $crate::MagnetTorrent<$rt>;

        /// Making a `.torrent` from a file or directory on disk, hashing on the runtime's
        /// blocking pool.
        pub mod create {
            use std::path::Path;

            pub use $crate::create::CreateOptions;

            /// Builds the torrent of `path` (a file or a directory) and returns its bytes.
            pub async fn create_torrent(
                path: impl AsRef<Path>,
                opts: CreateOptions,
            ) -> Result<Vec<u8>, $crate::Error> {
                $crate::create::create_torrent::<$rt>(path, opts).await
            }
        }
    };
}
