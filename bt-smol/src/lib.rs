//! # bt-smol: BitTorrent on smol
//!
//! The smol adapter of the `bt` workspace, with the same API as `bt-tokio`: a [`Session`]
//! (one listening port, many torrents) and a [`Torrent`] handle per torrent, the same
//! options, events and errors.
//!
//! Downloading a torrent from a peer given by address (and those its trackers, the DHT and
//! peer exchange find), printing progress as pieces pass their checks:
//!
//! ```no_run
//! use bt_smol::{Event, Session, TorrentOptions};
//!
//! fn main() -> Result<(), bt_smol::Error> {
//!     smol::block_on(async {
//!         let session = Session::builder().port(6881).start().await?;
//!         let mut opts = TorrentOptions::from_path("debian.iso.torrent").base_dir("downloads");
//!         // Subscribed before adding: the check of files already on disk is seen too.
//!         let mut events = opts.subscribe();
//!         let torrent = session.add_torrent(opts).await?;
//!         torrent.add_peer("192.0.2.7:6881").await?; // or a SocketAddr
//!         let watched = torrent.clone();
//!         // The stream ends when the torrent is removed or the session shuts down.
//!         let printer = smol::spawn(async move {
//!             while let Some(item) = events.next().await {
//!                 match item {
//!                     Ok(Event::HashPassed { .. }) => {
//!                         let Ok(s) = watched.stats().await else { break };
//!                         println!("{:5.1} %  {} B/s", s.progress * 100.0, s.download_rate);
//!                     }
//!                     Ok(_) => {}
//!                     Err(lagged) => eprintln!("{lagged}"), // fell behind by n events
//!                 }
//!             }
//!         });
//!         torrent.wait_complete().await?;
//!         session.shutdown().await; // announces `stopped`, flushes files, saves resume data
//!         printer.await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! [`TorrentOptions::subscribe`] sees the events of the check that
//! [`Session::add_torrent`](bt_adapter::Session::add_torrent) starts before it returns; a
//! reader that falls more than [`EVENT_QUEUE`] events behind gets [`Lagged`]`(n)`.
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

bt_adapter::adapter_api!(crate::Smol, "bt_smol");
