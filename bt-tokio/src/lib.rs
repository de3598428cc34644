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

mod reader;
mod runtime;

pub use reader::FileReader;
pub use runtime::Tokio;

bt_adapter::adapter_api!(crate::Tokio);
