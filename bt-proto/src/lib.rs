//! # bt-proto: the sans-IO BitTorrent core
//!
//! Everything BitTorrent decides, nothing it does: this crate parses and writes every message
//! of the protocol and (with the engine) decides what to send, request, verify and store. It
//! never opens a socket, reads the clock, spawns a thread or touches a file. Time, randomness
//! and I/O are inputs and outputs, so the same code runs under tokio, smol, a deterministic
//! simulator and cargo-fuzz.
//!
//! ## Codecs
//! - [`bencode`]: strict, non-recursive decoding into borrowed values that keep their raw
//!   byte span; canonical encoding.
//! - [`metainfo`]: v1 .torrent files, validated; the piece-to-file map; torrent creation.
//! - [`magnet`]: `magnet:?xt=urn:btih:` links.
//! - [`wire`]: the peer handshake, every peer message, an incremental zero-copy decoder.
//! - [`tracker`]: HTTP announce/scrape (with sans-IO HTTP framing) and UDP trackers (BEP 15).
//! - [`peer_id`]: our Azureus-style peer id and other clients' ids.
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

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod magnet;
pub mod metainfo;
pub mod peer_id;
pub mod picker;
pub mod rate;
pub mod resume;
pub mod rng;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tracker;
pub mod types;
pub mod wire;

pub use bitfield::Bitfield;
pub use types::{ConnId, HexError, InfoHash, PeerId, PieceHash, PieceIndex, sha1};
