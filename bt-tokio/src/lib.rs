//! # bt-tokio: BitTorrent on tokio
//!
//! The tokio adapter of the `bt` workspace. The protocol core, [`bt_proto`], decides
//! everything; this crate gives it sockets, timers, files and DNS, and exposes the public API:
//! a [`Session`] (one listening port, many torrents) and a [`Torrent`] handle per torrent.
//!
//! ```no_run
//! use bt_tokio::{Session, TorrentOptions};
//!
//! # async fn run() -> Result<(), bt_tokio::Error> {
//! let session = Session::builder().port(6881).start().await?;
//! let torrent = session
//!     .add_torrent(TorrentOptions::from_path("debian.iso.torrent").base_dir("downloads"))
//!     .await?;
//! println!("{} ({} bytes), info-hash {}", torrent.name(), torrent.size(), torrent.infohash());
//! torrent.wait_complete().await?;
//! session.shutdown().await; // announces `stopped`, flushes files, saves resume data
//! # Ok(())
//! # }
//! ```
//!
//! ## How it is built
//! Everything but the runtime is [`bt_adapter`]'s, written once for every runtime: the driver
//! task that owns the engine, the API types, the files. This crate gives it tokio's tasks,
//! blocking pool, timer and sockets ([`Tokio`]) and names the API's types for it. `bt-smol`
//! does the same on smol, so the two expose the same API, events and errors.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod runtime;

pub use bt_adapter::{
    CheckScope, CloseReason, Config, EVENT_QUEUE, Error, Event, Events, FileInfo, HashcheckReport,
    INPUT_QUEUE, MAX_CONCURRENT_READS, MAX_RESUME_FILE, PeerInfo, ResumeData, SHUTDOWN_DEADLINE,
    StorageError, TorrentId, TorrentOptions, TorrentSource, TorrentState, TorrentStats,
    TrackerInfo, disk, net, tracker,
};
pub use bt_proto as proto;
pub use bt_proto::{Bitfield, InfoHash, PeerId, PieceIndex};
pub use runtime::Tokio;

/// A BitTorrent session on tokio: one listening port serving any number of torrents.
pub type Session = bt_adapter::Session<Tokio>;
/// Configures and starts a [`Session`].
pub type SessionBuilder = bt_adapter::SessionBuilder<Tokio>;
/// A handle to one torrent of a [`Session`].
pub type Torrent = bt_adapter::Torrent<Tokio>;

/// Making a `.torrent` from a file or directory on disk, hashing on tokio's blocking pool.
pub mod create {
    use std::path::Path;

    pub use bt_adapter::create::CreateOptions;

    /// Builds the torrent of `path` (a file or a directory) and returns its bytes.
    pub async fn create_torrent(
        path: impl AsRef<Path>,
        opts: CreateOptions,
    ) -> Result<Vec<u8>, crate::Error> {
        bt_adapter::create::create_torrent::<crate::Tokio>(path, opts).await
    }
}
