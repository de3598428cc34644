//! # bt-smol: BitTorrent on smol
//!
//! The smol adapter of the `bt` workspace, with the same API as `bt-tokio`: a [`Session`]
//! (one listening port, many torrents) and a [`Torrent`] handle per torrent, the same
//! options, events and errors.
//!
//! ```no_run
//! use bt_smol::{Session, TorrentOptions};
//!
//! # fn main() -> Result<(), bt_smol::Error> {
//! smol::block_on(async {
//!     let session = Session::builder().port(6881).start().await?;
//!     let torrent = session
//!         .add_torrent(TorrentOptions::from_path("debian.iso.torrent").base_dir("downloads"))
//!         .await?;
//!     println!("{} ({} bytes)", torrent.name(), torrent.size());
//!     torrent.wait_complete().await?;
//!     session.shutdown().await; // announces `stopped`, flushes files, saves resume data
//!     Ok(())
//! })
//! # }
//! ```
//!
//! ## How it is built
//! Everything but the runtime is [`bt_adapter`]'s, written once for every runtime: the driver
//! task that owns the engine, the API types, the files. This crate gives it smol's executor,
//! blocking pool, timer and sockets ([`Smol`]) and names the API's types for it. Tasks run on
//! smol's global executor, so any `block_on` drives a session; `SMOL_THREADS` sets how many
//! threads it has.
#![forbid(unsafe_code)]

mod reader;
mod runtime;

pub use reader::FileReader;
pub use runtime::{Smol, SmolReader};

bt_adapter::adapter_api!(crate::Smol);
