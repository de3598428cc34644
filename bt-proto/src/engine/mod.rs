//! The engine: a sans-IO session that downloads and seeds many torrents over one port.
//!
//! # The contract
//!
//! A [`Session`] is driven by four kinds of call, all taking the caller's `now`:
//!
//! - **Inputs**: [`Session::handle`] with an [`Input`] (a connection opened, closed, read or
//!   written; a disk job or an announce finished) and [`Session::accept`] for an incoming connection.
//! - **Commands and queries**: methods such as [`Session::add_torrent`],
//!   [`Session::set_state`], [`Session::hashcheck`], [`Session::stats`], [`Session::peers`].
//! - **Time**: [`Session::poll_timeout`] says when the session next needs
//!   [`Session::handle_timeout`]; the session never reads the clock.
//! - **Draining**: [`Session::poll_output`] until `None` gives what the adapter must do,
//!   [`Session::poll_event`] until `None` what the application is told.
//!
//! Rules the adapter can rely on:
//!
//! - Any number of inputs, commands and timeouts may be fed before draining (the bundled
//!   driver feeds up to 256): outputs and events queue up in order, and a peer's messages
//!   from several inputs go out as one [`Output::Send`]. Drain outputs, then events, after
//!   each batch; a long batch only delays what the outputs say.
//! - The outputs of one connection come in the order they must be carried out: its
//!   [`Output::Send`]s before its [`Output::Close`]; nothing is sent on a connection before
//!   [`Input::Connected`] for it (or before [`Session::accept`] gave its id).
//! - [`Session::poll_timeout`] may change after any call; read it again before sleeping. A
//!   deadline already past means "call [`Session::handle_timeout`] now".
//! - A [`crate::ConnId`] is never reused. After [`Output::Close`] the engine has forgotten the
//!   connection: inputs for it are ignored and no [`Input::Closed`] is needed. Answers to
//!   disk jobs of a stopped or removed torrent are ignored likewise.
//! - Remote input never panics the session; a peer that breaks the protocol is closed with
//!   [`CloseReason::Protocol`] and a [`ProtocolViolation`] saying how.
//!
//! # Inside
//!
//! The session composes parts that keep their own rules: `peers` (every connection, the
//! bytes each has queued, and the counts the connection limits check), each torrent's picker,
//! choker, smart ban, dialling candidates and announcer, and one `timers` table of named
//! deadlines, so that [`Session::handle_timeout`] touches only what is due. The modules
//! follow a connection's life: `connection` (accept, connect, close), `handshake` (route,
//! admit, activate), `extension` (BEP 10, routing to `metadata`, BEP 9, and `pex`, BEP 11),
//! `messages`, `download` (with `block_memory`: what
//! a kept block may pin, and `exclusive`: failed pieces fetched again from one peer),
//! `upload` (with `send_window`: how much is handed to a connection's transport at once),
//! `hashcheck`, `failure` (storage errors), then `dialing`, `announce`,
//! `local_discovery` (BEP 14, over [`crate::lsd`]) and `resume_saves`; `commands` and
//! `queries` are the user's side. `utp` carries uTP connections ([`crate::utp`]) over the
//! session's UDP port inside the engine, so that they are [`crate::ConnId`]s like TCP ones
//! and the adapter sees only their datagrams.
//!
//! A torrent added by magnet link lives in a second map until its metadata arrives
//! (`fetching`): it dials, announces and handshakes through the same code as a whole torrent
//! (`fetching::swarm_of` gives both one view), `magnet` fetches the metadata with
//! `metadata_fetch` deciding what to ask whom, and what its peers say they have waits in
//! `early_pieces` until the piece count is known.

mod announce;
mod announce_slots;
mod block_memory;
mod commands;
mod config;
mod connection;
mod dht;
mod dialing;
mod download;
mod early_pieces;
mod encryption;
#[cfg(test)]
mod encryption_tests;
mod exclusive;
mod extension;
#[cfg(test)]
mod extension_tests;
mod failure;
mod fetching;
mod handshake;
mod hashcheck;
#[cfg(test)]
mod hostile_tests;
mod info;
mod io;
mod local_discovery;
mod magnet;
#[cfg(test)]
mod magnet_tests;
mod messages;
mod metadata;
mod metadata_fetch;
mod peer;
mod peers;
mod pex;
mod queries;
mod queue;
mod rate_limits;
mod reading;
mod resume_saves;
mod send_window;
#[cfg(test)]
mod send_window_tests;
mod smart_ban;
mod streaming;
#[cfg(test)]
mod tests;
mod timers;
mod torrent;
mod upload;
mod utp;
#[cfg(test)]
mod utp_tests;
mod violation;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

pub use announce::{RETRY_BASE, RETRY_MAX, STARVED_REANNOUNCE};
pub use announce_slots::{MAX_ANNOUNCES_IN_FLIGHT, MAX_ANNOUNCES_PER_TRACKER};
pub use block_memory::MIN_ZERO_COPY_READ;
pub use config::*;
pub use dht::{
    DHT_SEARCH_INTERVAL, DHT_SEARCH_RETRY, DHT_STARVED_SEARCH, MAX_DHT_PEERS_PER_ANSWER,
};
pub use dialing::{
    BUSY_RETRY_MAX, CONNECTION_PROVEN_AFTER, MAX_BUSY_REFUSALS, MAX_CONNECT_FAILURES,
    MAX_KNOWN_PEERS, MAX_PEERS_PER_REPLY, PROTOCOL_ERROR_CLOSES, RECONNECT_AFTER_CLOSE,
    RECONNECT_AFTER_CLOSE_MAX, RECONNECT_BASE, RECONNECT_WHEN_DONE, STUCK_REDIAL_EVERY,
};
pub use early_pieces::MAX_PIECES_BEFORE_METADATA;
pub use extension::{MAX_CLIENT_NAME, MAX_EXTENSION_HANDSHAKE_LEN, MAX_EXTENSION_HANDSHAKES};
pub use info::{ConnEncryption, FileInfo, MemoryUse, PeerInfo, TorrentStats, TrackerInfo};
pub use io::{
    AddTorrent, CheckScope, CloseReason, Event, HashcheckReport, Input, Output, ResumeSave,
    StorageError, TorrentId, TorrentState,
};
pub use metadata::{MAX_METADATA_REJECTS, METADATA_SERVINGS_PER_PIECE};
pub use metadata_fetch::{
    MAX_METADATA_SIZE, METADATA_REQUEST_TIMEOUT, METADATA_REQUESTS_PER_PEER, METADATA_RETRY_AFTER,
};
pub use peer::{MAX_ALLOWED_FAST, MAX_SLIPS};
pub use pex::{
    MAX_PEX_ADDED, MAX_PEX_ADDRESSES_TAKEN, MAX_PEX_RECEIVED_PER_INTERVAL, PEX_FIRST_DELAY,
    PEX_INTERVAL,
};
pub use rate_limits::{PIECE_HEADER_LEN, REQUEST_LEN};
pub use reading::{ReadStatus, seek_target};
pub use send_window::{MIN_SEND_WATERMARK, SEND_AHEAD};
pub use streaming::{
    MAX_READERS, MIN_STREAM_DEPTH, MIN_WINDOW_PIECES, ReaderId, STREAM_REQUEST_AHEAD, STREAM_WINDOW,
};
pub use violation::ProtocolViolation;

use fetching::Fetching;
use peers::Peers;
use timers::{Timer, TimerTable, TorrentTimer};
use torrent::Torrent;

use crate::InfoHash;
use crate::rng::Rng;

/// Many torrents, their peers and trackers, behind one listening port.
#[derive(Debug)]
pub struct Session {
    config: Config,
    rng: Rng,
    /// Boxed: a torrent is over a kilobyte, and a map's nodes are often half empty.
    torrents: BTreeMap<TorrentId, Box<Torrent>>,
    /// Torrents added by magnet link that are fetching their metadata; the same id is never
    /// in both maps.
    fetching: BTreeMap<TorrentId, Fetching>,
    by_info_hash: BTreeMap<InfoHash, TorrentId>,
    /// Each torrent's info-hash by the key an MSE handshake names it with
    /// ([`crate::mse::torrent_key`]), kept beside `by_info_hash`.
    mse_keys: BTreeMap<[u8; 20], InfoHash>,
    /// Each torrent's lifetime (uploaded, downloaded) when added to this session, from its
    /// resume data: the session's own figures are the difference.
    run_base: BTreeMap<TorrentId, (u64, u64)>,
    /// Torrents whose encryption policy is their own ([`AddTorrent::encryption`]).
    encryption_of: BTreeMap<TorrentId, crate::mse::Encryption>,
    next_torrent: u32,
    peers: Peers,
    timers: TimerTable,
    outputs: VecDeque<Output>,
    events: VecDeque<Event>,
    /// Addresses that turned out to be ourselves.
    self_addrs: BTreeSet<SocketAddr>,
    /// Announce key, constant for the session so trackers recognise us.
    key: u32,
    /// The generation of the last resume snapshot taken (see [`ResumeSave`]).
    resume_generation: u64,
    /// The read being handled, for [`block_memory`].
    read_use: block_memory::ReadUse,
    /// Local service discovery (BEP 14).
    lsd: local_discovery::LocalDiscovery,
    /// The DHT node and the torrent of each of its lookups (see `dht`).
    dht: dht::SessionDht,
    /// The uTP socket and the connections it carries (see `utp`).
    utp: utp::SessionUtp,
    /// Rate limits and the peers waiting on them (see `rate_limits`).
    limits: rate_limits::Limits,
    /// Which started torrents run and which wait (see `queue`).
    queue: queue::Queue,
    /// Streaming readers and their windows (see `streaming`).
    readers: streaming::Readers,
    /// Announces in flight and the torrents waiting to send one (see `announce_slots`).
    announce_slots: announce_slots::AnnounceSlots,
}

impl Session {
    /// A session with no torrents.
    pub fn new(config: Config) -> Self {
        let mut rng = Rng::seed_from_u64(config.seed);
        let key = rng.next_u32();
        let lsd = local_discovery::LocalDiscovery::new(&config);
        let dht = dht::SessionDht::new(&config, &mut rng);
        let utp = utp::SessionUtp::new(&config);
        let limits = rate_limits::Limits::new(&config);
        Session {
            config,
            rng,
            torrents: BTreeMap::new(),
            fetching: BTreeMap::new(),
            by_info_hash: BTreeMap::new(),
            mse_keys: BTreeMap::new(),
            encryption_of: BTreeMap::new(),
            run_base: BTreeMap::new(),
            next_torrent: 0,
            peers: Peers::default(),
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            self_addrs: BTreeSet::new(),
            key,
            resume_generation: 0,
            read_use: block_memory::ReadUse::default(),
            lsd,
            dht,
            utp,
            limits,
            queue: queue::Queue::default(),
            readers: streaming::Readers::default(),
            announce_slots: announce_slots::AnnounceSlots::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.utp.tick(now);
        match input {
            Input::Connected { conn } => self.on_connected(now, conn),
            Input::Received { conn, data } => self.on_received(now, conn, data),
            Input::Closed { conn } => self.remove_peer(now, conn, None),
            Input::Written { conn, bytes } => self.on_written(now, conn, bytes),
            Input::BlockRead {
                torrent,
                conn,
                block,
                data,
            } => self.on_block_read(now, torrent, conn, block, data),
            Input::PieceStored {
                torrent,
                piece,
                result,
            } => self.on_piece_stored(now, torrent, piece, result),
            Input::PieceChecked { torrent, piece, ok } => {
                self.on_piece_checked(now, torrent, piece, ok)
            }
            Input::Announced {
                torrent,
                url,
                result,
            } => self.on_announced(now, torrent, &url, result),
            Input::MulticastReceived { from, data } => self.on_lsd_datagram(now, from, &data),
            Input::Datagram { from, data } => self.on_datagram(now, from, &data),
        }
    }

    /// Runs what is due at `now`: time-outs, keep-alives, choke rounds, redials, announces,
    /// resume saves. Only due deadlines are looked at.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.utp.tick(now);
        if self.utp.next_timeout().is_some_and(|t| t <= now) {
            self.on_utp_timer(now);
        }
        // Taken first: a handler that sets a deadline at or before `now` runs at the next
        // call instead of looping here.
        let mut due = Vec::new();
        while let Some(timer) = self.timers.pop_due(now) {
            due.push(timer);
        }
        for timer in due {
            match timer {
                Timer::Peer(conn, t) => self.on_peer_timer(now, conn, t),
                Timer::Torrent(id, t) => self.on_torrent_timer(now, id, t),
                Timer::Lsd => self.on_lsd_timer(now),
                Timer::Dht => self.on_dht_timer(now),
                Timer::RateLimit => self.on_rate_timer(now),
                Timer::Queue => self.rebalance_queue(now),
            }
        }
    }

    fn on_torrent_timer(&mut self, now: Instant, id: TorrentId, timer: TorrentTimer) {
        match timer {
            TorrentTimer::Announce => self.announce_due(now, id),
            TorrentTimer::ChokeRound => self.choke_round(now, id),
            TorrentTimer::Dial => self.connect_more(now, id),
            TorrentTimer::ResumeSave => self.save_resume_if_dirty(id),
            TorrentTimer::Metadata => self.request_metadata(now, id),
            TorrentTimer::Dht => self.dht_search(now, id),
        }
    }

    /// The next thing for the adapter to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.next_adapter_output()
    }

    /// The next thing to tell the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next(), self.utp.next_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
