//! # bt-tokio
//!
//! The tokio adapter of the bt workspace: it will give the sans-IO core in `bt-proto` its
//! sockets, timers and files, and expose the public `Session`/`Torrent` API. Until the engine
//! lands, this crate only re-exports the core so the workspace layout is in place.
#![forbid(unsafe_code)]

pub use bt_proto as proto;
