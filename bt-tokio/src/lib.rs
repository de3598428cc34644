//! # bt-tokio: BitTorrent on tokio
//!
//! The tokio adapter of the `bt` workspace. The protocol core, [`bt_proto`], decides
//! everything; this crate gives it sockets, timers, files and DNS, and exposes the public API:
//! a [`Session`] (one listening port, many torrents) and a [`Torrent`] handle per torrent.
//!
//! A program that downloads a torrent from the peers given on its command line (and those its
//! trackers, the DHT and peer exchange find), printing progress as pieces pass their checks
//! (`examples/progress.rs`; the README shows the same):
//!
#![doc = concat!("```no_run\n", include_str!("../examples/progress.rs"), "```\n")]
//!
//! A torrent's [`Events`] end when it is removed or the session shuts down, so the printer
//! task above ends with the session. [`TorrentOptions::subscribe`] sees the events of the
//! check that [`Session::add_torrent`](bt_adapter::Session::add_torrent) starts before it
//! returns; a reader that falls more than [`EVENT_QUEUE`] events behind gets
//! [`Lagged`]`(n)`.
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

bt_adapter::adapter_api!(crate::Tokio, "bt_tokio");
