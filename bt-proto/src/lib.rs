//! # bt-proto: the sans-IO BitTorrent core
//!
//! Everything BitTorrent decides, nothing it does: this crate parses and writes every message
//! of the protocol and decides what to send, request, verify and store. It never opens a
//! socket, reads the clock, spawns a thread or touches a file. Time, randomness and I/O are
//! inputs and outputs, so the same code runs under tokio, smol, a deterministic simulator and
//! cargo-fuzz.
//!
//! ## The engine's contract, on one screen
//!
//! ```text
//! let mut s = Session::new(Config::new(peer_id, port, seed));
//! let t = s.add_torrent(now, metainfo, AddTorrent::default());   // user commands are methods:
//!                                                                 // set_state, hashcheck, add_peer,
//!                                                                 // set_file_priority, remove_torrent
//! let conn = s.accept(now, addr);                                 // an incoming TCP connection
//! s.handle(now, Input::Received { conn, data });                  // anything that happened:
//!     // Connected, Received, Written (what the socket took), Closed, BlockRead, PieceStored,
//!     // PieceChecked, Announced, MulticastReceived (local service discovery), Datagram
//! while let Some(o) = s.poll_output() { /* do it */ }             // Connect, Send, Close, ReadBlock,
//!     // VerifyAndStore (the piece's bytes: hash once, write once), CheckPiece, Announce, CloseFiles,
//!     // SendMulticast
//! while let Some(e) = s.poll_event() { /* tell the app */ }       // HashPassed, HashFailed, Complete,
//!     // StateChanged, PeerConnected/Disconnected, TrackerReply/Warning/Error, StorageFailed, ...
//! sleep_until(s.poll_timeout()); s.handle_timeout(now);           // the only clock is the caller's
//! ```
//!
//! Connections are [`ConnId`]s the engine hands out (`Output::Connect`, `Session::accept`); one
//! listening port serves every torrent, routed by the info-hash of the incoming handshake.
//! Remote input never panics the engine: a peer that breaks the protocol is closed with a
//! reason.
//!
//! ## Modules
//! - [`bencode`]: strict, non-recursive decoding into borrowed values that keep their raw
//!   byte span; canonical encoding.
//! - [`metainfo`]: v1 .torrent files, validated; the piece-to-file map; torrent creation.
//! - [`magnet`]: `magnet:?xt=urn:btih:` links.
//! - [`encoding`]: hex, base32 and percent-encoding, written once for every parser, and the
//!   escaping of torrent and tracker text for print.
//! - [`wire`]: the peer handshake, every peer message, an incremental zero-copy decoder.
//! - [`extensions`]: the extension protocol's handshake (BEP 10), metadata exchange (BEP 9)
//!   and peer exchange (BEP 11) messages; [`compact`]: compact peer addresses.
//! - [`lsd`]: local service discovery (BEP 14), the `BT-SEARCH` codec and its rate rules.
//! - [`tracker`]: HTTP announce/scrape (with sans-IO HTTP framing) and UDP trackers (BEP 15).
//! - [`peer_id`]: our Azureus-style peer id and other clients' ids.
//! - [`engine`]: the session state machine; [`picker`], [`choker`], [`rate`] and [`resume`]
//!   are its parts, usable alone.
//! - [`storage`] and [`read_runs`]: which file bytes a piece or block is, and how block reads
//!   merge into disk reads.
//! - [`utp`]: the micro transport protocol (BEP 29) with LEDBAT congestion control, a
//!   connection machine and a multiplexer over one UDP port.
//! - `sim` (feature `sim`): a deterministic swarm simulator on virtual time.
#![forbid(unsafe_code)]

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod compact;
pub mod dht;
pub mod encoding;
pub mod engine;
pub mod extensions;
pub mod lsd;
pub mod magnet;
pub mod metainfo;
pub mod mse;
pub mod peer_id;
pub mod picker;
pub mod rate;
pub mod read_runs;
pub mod resume;
pub mod rng;
#[cfg(feature = "sim")]
pub mod sim;
pub mod storage;
pub mod token_bucket;
pub mod tracker;
pub mod types;
pub mod utp;
pub mod wire;

pub use bitfield::Bitfield;
pub use types::{ConnId, HexError, InfoHash, IoFailure, PeerId, PieceHash, PieceIndex, sha1};
