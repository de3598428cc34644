//! The engine: a sans-IO session that downloads and seeds many torrents over one port.
//!
//! The adapter feeds [`Input`]s (and user commands through methods), drains [`Output`]s and
//! [`Event`]s after each call, sleeps until [`Session::poll_timeout`] and then calls
//! [`Session::handle_timeout`]. The session never reads the clock: every call takes `now`.
//! Randomness comes from the seed in [`Config`], so the same inputs give the same outputs.

mod announce;
mod config;
mod io;
mod peer;
#[cfg(test)]
mod tests;
mod torrent;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

pub use announce::{RETRY_BASE, RETRY_MAX};
pub use config::*;
pub use io::{
    AddTorrent, CheckScope, CloseReason, Event, HashcheckReport, Input, Output, PeerInfo,
    StorageError, TorrentId, TorrentState, TrackerInfo,
};
pub use peer::MAX_ALLOWED_FAST;
pub use torrent::{
    CONNECTION_PROVEN_AFTER, MAX_CONNECT_FAILURES, MAX_KNOWN_PEERS, PROTOCOL_ERROR_CLOSES,
    RECONNECT_AFTER_CLOSE, RECONNECT_AFTER_CLOSE_MAX, RECONNECT_BASE, RECONNECT_WHEN_DONE,
};

use announce::Announcer;
use peer::{Peer, Phase};
use torrent::{Candidate, EndedConnection, FailedPiece, PieceBuf, Torrent};

use crate::bencode::{self, Bencode};
use crate::choker::{ChokeChange, Choker, Mode as ChokeMode, PeerSnapshot};
use crate::metainfo::Metainfo;
use crate::picker::{BLOCK_LEN, Block, BlockReceived, PickLimits, Picker};
use crate::resume::{FileStamp, ResumeData};
use crate::rng::Rng;
use crate::tracker::{AnnounceEvent, AnnounceRequest, PeerAddr};
use crate::wire::{Handshake, Message, Progress, encode_piece_header};
use crate::{Bitfield, ConnId, InfoHash, PieceIndex};

/// Protocol slips (requests for pieces we lack, unrequested blocks, ...) tolerated per
/// connection before it is closed: a few happen legitimately around HAVE/choke races.
pub const MAX_SLIPS: u32 = 64;

/// Longest client name kept from a peer's extension handshake, in characters: enough for
/// every real client's "name version", short enough that a hostile peer cannot bloat memory.
pub const MAX_CLIENT_NAME: usize = 64;

/// A whole torrent's view for [`Session::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentStats {
    /// The run state.
    pub state: TorrentState,
    /// Bytes of blocks sent, over the torrent's life.
    pub uploaded: u64,
    /// Bytes of blocks received and accepted, over the torrent's life.
    pub downloaded: u64,
    /// Bytes of wanted pieces not yet verified.
    pub left: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub pieces_total: u32,
    /// Every wanted piece is verified.
    pub complete: bool,
    /// Every piece is verified.
    pub seed: bool,
    /// Connected peers (handshake done).
    pub peers: usize,
}

/// One file's state for [`Session::files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Path components below the torrent's directory.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// Priority (0 = skip).
    pub priority: u8,
    /// Bytes of it in verified pieces.
    pub done: u64,
    /// A BEP 47 padding file: never written, not shown to users.
    pub padding: bool,
}

/// Many torrents, their peers and trackers, behind one listening port.
#[derive(Debug)]
pub struct Session {
    config: Config,
    rng: Rng,
    torrents: BTreeMap<TorrentId, Torrent>,
    peers: BTreeMap<ConnId, Peer>,
    outputs: VecDeque<Output>,
    events: VecDeque<Event>,
    next_conn: u64,
    next_torrent: u32,
    next_tick: Option<Instant>,
    /// Addresses that turned out to be ourselves.
    self_addrs: BTreeSet<SocketAddr>,
    /// Announce key, constant for the session so trackers recognise us.
    key: u32,
}

impl Session {
    /// A session with no torrents.
    pub fn new(config: Config) -> Self {
        let mut rng = Rng::seed_from_u64(config.seed);
        let key = rng.next_u32();
        Session {
            config,
            rng,
            torrents: BTreeMap::new(),
            peers: BTreeMap::new(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            next_conn: 0,
            next_torrent: 0,
            next_tick: None,
            self_addrs: BTreeSet::new(),
            key,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next thing for the adapter to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next thing to tell the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let announces = self.torrents.values().filter_map(|t| t.announcer.next_at());
        self.next_tick.into_iter().chain(announces).min()
    }

    // ----- torrents -------------------------------------------------------------------

    /// Adds a torrent. Its pieces are trusted only as far as `opts.have` says (from resume
    /// data checked with [`ResumeData::trusted_pieces`]); run a hashcheck to find more.
    pub fn add_torrent(&mut self, now: Instant, meta: Metainfo, opts: AddTorrent) -> TorrentId {
        let id = TorrentId(self.next_torrent);
        self.next_torrent += 1;
        let n = meta.piece_count();
        let have = opts
            .have
            .filter(|h| h.len() == n)
            .unwrap_or_else(|| Bitfield::new(n));
        let prio = Torrent::piece_priorities(&meta, &opts.file_priorities);
        let piece_length = meta.piece_length();
        let picker = Picker::new(meta.size(), piece_length, &have, &prio, &mut self.rng);
        let announcer = Announcer::new(meta.trackers(), &mut self.rng);
        let was_done = picker.is_done();
        let torrent = Torrent {
            id,
            meta,
            state: TorrentState::Stopped,
            picker,
            file_priorities: opts.file_priorities,
            buffers: BTreeMap::new(),
            verifying: BTreeMap::new(),
            failed: BTreeMap::new(),
            checking: BTreeSet::new(),
            peers: BTreeSet::new(),
            known: BTreeMap::new(),
            strikes: BTreeMap::new(),
            banned: BTreeSet::new(),
            uploaded: opts.uploaded,
            downloaded: opts.downloaded,
            announcer,
            choker: Choker::new(ChokeMode::Leeching, self.config.upload_slots),
            was_done,
        };
        self.torrents.insert(id, torrent);
        self.next_tick.get_or_insert(now);
        self.set_state(now, id, opts.state);
        id
    }

    /// Removes a torrent: stops it (announcing `stopped`) and forgets it.
    pub fn remove_torrent(&mut self, now: Instant, id: TorrentId) {
        self.set_state(now, id, TorrentState::Stopped);
        self.torrents.remove(&id);
    }

    /// The torrent with this info-hash.
    pub fn find(&self, info_hash: &InfoHash) -> Option<TorrentId> {
        self.torrents
            .values()
            .find(|t| t.meta.info_hash() == *info_hash)
            .map(|t| t.id)
    }

    /// The metainfo of a torrent.
    pub fn metainfo(&self, id: TorrentId) -> Option<&Metainfo> {
        self.torrents.get(&id).map(|t| &t.meta)
    }

    /// Ids of every torrent.
    pub fn torrent_ids(&self) -> Vec<TorrentId> {
        self.torrents.keys().copied().collect()
    }

    /// Changes a torrent's run state.
    pub fn set_state(&mut self, now: Instant, id: TorrentId, state: TorrentState) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let old = t.state;
        if old == state {
            return;
        }
        t.state = state;
        if old == TorrentState::Stopped {
            // Paused or started, the torrent is in the swarm again: tell the trackers, and
            // try every known address at once.
            t.announcer.start(now);
            for c in t.known.values_mut() {
                c.next_attempt = now;
            }
        }
        match state {
            TorrentState::Stopped => {
                if let Some(url) = t.announcer.stop() {
                    let request = self.announce_request(id, Some(AnnounceEvent::Stopped));
                    if let Some(request) = request {
                        self.outputs.push_back(Output::Announce {
                            torrent: id,
                            url,
                            request,
                        });
                    }
                }
                let conns: Vec<ConnId> = self
                    .peers
                    .values()
                    .filter(|p| p.torrent == Some(id))
                    .map(|p| p.conn)
                    .collect();
                for c in conns {
                    self.close(now, c, Some(CloseReason::TorrentStopped));
                }
                self.outputs.push_back(Output::CloseFiles { torrent: id });
            }
            TorrentState::Paused => {
                let conns: Vec<ConnId> = self.torrent_conns(id);
                for c in conns {
                    self.cancel_all_requests(now, c);
                    self.set_choking(now, c, true);
                    self.update_interest(now, c);
                    self.flush(c);
                }
                // Paused torrents still make and accept connections.
                self.connect_more(now, id);
                self.announce_due(now, id);
            }
            TorrentState::Started => {
                let conns: Vec<ConnId> = self.torrent_conns(id);
                for c in conns {
                    self.update_interest(now, c);
                    self.fill_requests(now, c);
                    self.flush(c);
                }
                self.choke_round(now, id);
                self.connect_more(now, id);
                self.announce_due(now, id);
            }
        }
        self.events
            .push_back(Event::StateChanged { torrent: id, state });
    }

    /// Adds a peer address to try for a torrent. An address known already (and not
    /// connected) is tried again now: the user asking overrides the reconnect back-off.
    pub fn add_peer(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        self.learn_peer(now, id, addr);
        if let Some(c) = self
            .torrents
            .get_mut(&id)
            .and_then(|t| t.known.get_mut(&addr))
            .filter(|c| !c.connected)
        {
            c.next_attempt = now;
        }
        self.connect_more(now, id);
    }

    /// Sets a file's priority (0 = skip). Pieces shared with a wanted file stay wanted.
    pub fn set_file_priority(&mut self, now: Instant, id: TorrentId, file: usize, priority: u8) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if file >= t.meta.files().len() {
            return;
        }
        if t.file_priorities.len() <= file {
            t.file_priorities.resize(t.meta.files().len(), 1);
        }
        if let Some(slot) = t.file_priorities.get_mut(file) {
            *slot = priority;
        }
        let prio = Torrent::piece_priorities(&t.meta, &t.file_priorities);
        t.picker.set_priorities(&prio, &mut self.rng);
        self.after_have_changed(now, id);
    }

    /// Verifies pieces on disk: all of them, or some. Results arrive as
    /// [`Event::PieceChecked`] and finally [`Event::HashcheckDone`].
    pub fn hashcheck(&mut self, id: TorrentId, scope: CheckScope) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let n = t.piece_count();
        let pieces: Vec<PieceIndex> = match scope {
            CheckScope::All => (0..n).map(PieceIndex).collect(),
            CheckScope::Pieces(list) => list.into_iter().filter(|p| p.0 < n).collect(),
        };
        for p in pieces {
            if t.checking.insert(p)
                && let Some(hash) = t.meta.piece_hash(p)
            {
                self.outputs.push_back(Output::CheckPiece {
                    torrent: id,
                    piece: p,
                    hash,
                });
            }
        }
        if t.checking.is_empty() {
            self.events.push_back(Event::HashcheckDone {
                torrent: id,
                verified: t.picker.have().count(),
                total: n,
            });
        }
    }

    // ----- accessors ---------------------------------------------------------------------

    /// Counters and flags of a torrent.
    pub fn stats(&self, id: TorrentId) -> Option<TorrentStats> {
        let t = self.torrents.get(&id)?;
        Some(TorrentStats {
            state: t.state,
            uploaded: t.uploaded,
            downloaded: t.downloaded,
            left: t.left(),
            pieces_have: t.picker.have().count(),
            pieces_total: t.piece_count(),
            complete: t.picker.is_done(),
            seed: t.picker.have().is_full(),
            peers: t.peers.len(),
        })
    }

    /// Verified pieces.
    pub fn bitfield(&self, id: TorrentId) -> Option<&Bitfield> {
        self.torrents.get(&id).map(|t| t.picker.have())
    }

    /// Pieces wanted (touching a file of priority above 0).
    pub fn wanted(&self, id: TorrentId) -> Option<Bitfield> {
        let t = self.torrents.get(&id)?;
        let mut b = Bitfield::new(t.piece_count());
        for i in 0..t.piece_count() {
            b.set(PieceIndex(i), t.picker.priority(PieceIndex(i)) > 0);
        }
        Some(b)
    }

    /// Each file with its priority and the bytes of it in verified pieces.
    pub fn files(&self, id: TorrentId) -> Option<Vec<FileInfo>> {
        let t = self.torrents.get(&id)?;
        let have = t.picker.have();
        let mut out = Vec::new();
        for (i, f) in t.meta.files().iter().enumerate() {
            let done = t
                .meta
                .piece_map()
                .file_pieces(i)
                .map(|range| {
                    range
                        .iter()
                        .filter(|p| have.get(*p))
                        .map(|p| t.file_overlap(i, p))
                        .sum()
                })
                .unwrap_or(0);
            out.push(FileInfo {
                path: f.path.components().to_vec(),
                length: f.length,
                priority: t.file_priorities.get(i).copied().unwrap_or(1),
                done,
                padding: f.is_padding(),
            });
        }
        Some(out)
    }

    /// Connected peers of a torrent.
    pub fn peers(&self, id: TorrentId, now: Instant) -> Vec<PeerInfo> {
        let Some(t) = self.torrents.get(&id) else {
            return Vec::new();
        };
        t.peers
            .iter()
            .filter_map(|c| self.peers.get(c))
            .filter_map(|p| {
                let peer_id = p.peer_id?;
                Some(PeerInfo {
                    conn: p.conn,
                    addr: p.addr,
                    peer_id,
                    client: p.ext_client.clone().unwrap_or_else(|| {
                        let c = crate::peer_id::identify(&peer_id);
                        format!("{} {}", c.name, c.version).trim().to_string()
                    }),
                    am_choking: p.am_choking,
                    am_interested: p.am_interested,
                    peer_choking: p.peer_choking,
                    peer_interested: p.peer_interested,
                    incoming: p.incoming,
                    snubbed: p.snubbed,
                    download_rate: p.down.rate(now),
                    upload_rate: p.up.rate(now),
                    downloaded: p.downloaded,
                    uploaded: p.uploaded,
                    pieces: p.has.count(),
                })
            })
            .collect()
    }

    /// A multi-line description of a torrent's download state for diagnosing stalls: the
    /// picker's started pieces, the pieces being verified, and per peer its choke and
    /// interest state, requests in flight and how long ago it last sent a block.
    pub fn debug_state(&self, id: TorrentId, now: Instant) -> Option<String> {
        use std::fmt::Write;
        let t = self.torrents.get(&id)?;
        let ago = |at: Instant| now.saturating_duration_since(at).as_secs_f32();
        let mut s = String::new();
        let (partial, verifying) = t.picker.partial_progress();
        let _ = writeln!(
            s,
            "state {:?} have {}/{} endgame {} verifying {} (engine {:?}) checking {} buffers {} \
             next tick in {:?} choke round in {:?}",
            t.state,
            t.picker.have().count(),
            t.piece_count(),
            t.picker.in_endgame(),
            verifying,
            t.verifying.keys().collect::<Vec<_>>(),
            t.checking.len(),
            t.buffers.len(),
            self.next_tick.map(|n| n.saturating_duration_since(now)),
            t.choker.next_round(now).saturating_duration_since(now),
        );
        for (p, free, requested, received) in partial {
            let _ = writeln!(
                s,
                "  partial {p}: free {free} requested {requested} received {received} \
                 (availability {})",
                t.picker.availability(p)
            );
        }
        for p in t.peers.iter().filter_map(|c| self.peers.get(c)) {
            let oldest = p.requests.front().map(|(_, at)| ago(*at));
            let _ = writeln!(
                s,
                "  peer {} {} {:?} fast {} am_choking {} am_interested {} peer_choking {} \
                 peer_interested {} snubbed {} has {} requests {} (oldest {:?}s) depth {} \
                 last block {:.1}s ago, last received {:.1}s ago, their requests {} reading {} \
                 down {} B/s up {} B/s",
                p.conn,
                p.addr,
                p.phase,
                p.fast,
                p.am_choking,
                p.am_interested,
                p.peer_choking,
                p.peer_interested,
                p.snubbed,
                p.has.count(),
                p.requests.len(),
                oldest,
                p.queue_depth,
                ago(p.last_block),
                ago(p.last_received),
                p.their_requests.len(),
                p.reading.len(),
                p.down.rate(now),
                p.up.rate(now),
            );
        }
        for (addr, c) in &t.known {
            let _ = writeln!(
                s,
                "  known {addr} connected {} failures {} closes {} next attempt in {:?}",
                c.connected,
                c.failures,
                c.closes,
                c.next_attempt.saturating_duration_since(now)
            );
        }
        Some(s)
    }

    /// Trackers of a torrent, by tier.
    pub fn trackers(&self, id: TorrentId) -> Vec<TrackerInfo> {
        let Some(t) = self.torrents.get(&id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (tier, urls) in t.announcer.tiers.iter().enumerate() {
            for e in urls {
                out.push(TrackerInfo {
                    tier,
                    url: e.url.clone(),
                    seeders: e.seeders,
                    leechers: e.leechers,
                    last_error: e.last_error.clone(),
                    next_announce: t.announcer.next_announce_of(&e.url),
                });
            }
        }
        out
    }

    /// Resume data for a torrent, given each file's stamp now (in metainfo order).
    pub fn resume_data(&self, id: TorrentId, files: Vec<Option<FileStamp>>) -> Option<ResumeData> {
        let t = self.torrents.get(&id)?;
        Some(ResumeData {
            info_hash: t.meta.info_hash(),
            pieces: t.picker.have().clone(),
            files,
            uploaded: t.uploaded,
            downloaded: t.downloaded,
        })
    }

    // ----- connections -------------------------------------------------------------------

    fn new_conn_id(&mut self) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        c
    }

    fn torrent_conns(&self, id: TorrentId) -> Vec<ConnId> {
        self.torrents
            .get(&id)
            .map(|t| t.peers.iter().copied().collect())
            .unwrap_or_default()
    }

    /// An incoming connection was accepted by the listener. Returns its id; if the session
    /// is full, a [`Output::Close`] for it follows at once.
    pub fn accept(&mut self, now: Instant, addr: SocketAddr) -> ConnId {
        let conn = self.new_conn_id();
        let depth = self.config.initial_request_depth;
        self.peers
            .insert(conn, Peer::new(conn, addr, true, None, now, depth));
        if self.peers.len() > self.config.max_connections {
            self.close(now, conn, Some(CloseReason::TooManyConnections));
        }
        self.next_tick.get_or_insert(now);
        conn
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Connected { conn } => self.on_connected(now, conn),
            Input::Received { conn, data } => self.on_received(now, conn, data),
            Input::Closed { conn } => {
                if self.peers.contains_key(&conn) {
                    self.remove_peer(now, conn, None);
                }
            }
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
        }
    }

    fn on_connected(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if p.phase != Phase::Connecting {
            return;
        }
        p.phase = Phase::Handshaking { sent: false };
        p.connected_at = now;
        p.last_received = now;
        self.send_handshake(now, conn);
        self.flush(conn);
    }

    fn send_handshake(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(info_hash) = p
            .torrent
            .and_then(|t| self.torrents.get(&t))
            .map(|t| t.meta.info_hash())
        else {
            return;
        };
        let hs = Handshake {
            reserved: Peer::our_reserved(),
            info_hash,
            peer_id: self.config.peer_id,
        };
        p.out.extend_from_slice(&hs.encode());
        p.last_sent = now;
        if let Phase::Handshaking { sent } = &mut p.phase {
            *sent = true;
        }
    }

    /// Closes a connection we decided to drop.
    fn close(&mut self, now: Instant, conn: ConnId, reason: Option<CloseReason>) {
        self.flush(conn);
        if let Some(reason) = reason.clone() {
            self.outputs.push_back(Output::Close { conn, reason });
        }
        self.remove_peer(now, conn, reason);
    }

    /// Forgets a connection, giving its requests back to the picker.
    fn remove_peer(&mut self, now: Instant, conn: ConnId, reason: Option<CloseReason>) {
        let Some(p) = self.peers.remove(&conn) else {
            return;
        };
        let active = p.phase == Phase::Active;
        if let Some(t) = p.torrent.and_then(|id| self.torrents.get_mut(&id)) {
            for (b, _) in &p.requests {
                t.picker.release(*b);
            }
            if active {
                t.picker.peer_removed(&p.has);
            }
            t.peers.remove(&conn);
            let torrent_done = t.picker.is_done();
            if !p.incoming
                && let Some(c) = t.known.get_mut(&p.addr)
            {
                c.connected = false;
                if active && reason != Some(CloseReason::TorrentStopped) {
                    // Stopping says nothing about the peer; starting again redials everyone.
                    c.closed(
                        now,
                        EndedConnection {
                            lasted: now.saturating_duration_since(p.connected_at),
                            delivered: p.downloaded > 0,
                            misbehaved: matches!(reason, Some(CloseReason::Protocol(_))),
                            useless: p.snubbed || reason == Some(CloseReason::Inactive),
                            torrent_done,
                        },
                    );
                } else if !active {
                    c.failures += 1;
                    c.next_attempt = now + RECONNECT_BASE * (1u32 << c.failures.min(8));
                    if c.failures >= MAX_CONNECT_FAILURES {
                        t.known.remove(&p.addr);
                    }
                }
            }
        }
        if active || reason.is_some() {
            self.events.push_back(Event::PeerDisconnected {
                torrent: p.torrent,
                conn,
                addr: p.addr,
                reason,
            });
        }
        if let Some(id) = p.torrent {
            if !p.requests.is_empty() {
                self.refill(now, id);
            }
            // A freed slot may let another peer in.
            self.connect_more(now, id);
        }
    }

    fn flush(&mut self, conn: ConnId) {
        if let Some(p) = self.peers.get_mut(&conn) {
            let bufs = p.take_output();
            if !bufs.is_empty() {
                self.outputs.push_back(Output::Send { conn, bufs });
            }
        }
    }

    fn send(&mut self, now: Instant, conn: ConnId, msg: &Message) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.send(msg, now);
        }
    }

    fn protocol_error(&mut self, now: Instant, conn: ConnId, why: impl Into<String>) {
        self.close(now, conn, Some(CloseReason::Protocol(why.into())));
    }

    fn on_received(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        p.decoder.feed_bytes(data);
        p.last_received = now;
        if let Phase::Handshaking { .. } = p.phase {
            self.on_handshake_bytes(now, conn);
        }
        loop {
            let Some(p) = self.peers.get_mut(&conn) else {
                return;
            };
            if p.phase != Phase::Active {
                break;
            }
            match p.decoder.next_message() {
                Ok(Some(msg)) => self.on_message(now, conn, msg),
                Ok(None) => break,
                Err(e) => {
                    self.protocol_error(now, conn, e.to_string());
                    return;
                }
            }
        }
        self.flush(conn);
    }

    fn on_handshake_bytes(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        // An incoming connection is routed by the info-hash before the peer id arrives.
        if p.torrent.is_none() {
            match p.decoder.peek_handshake_prefix() {
                Ok(Progress::NeedMore(_)) => return,
                Ok(Progress::Done(prefix)) => {
                    let found = self
                        .torrents
                        .values()
                        .find(|t| t.meta.info_hash() == prefix.info_hash)
                        .filter(|t| t.state != TorrentState::Stopped)
                        .map(|t| (t.id, t.peers.len()));
                    let Some((id, count)) = found else {
                        self.close(now, conn, Some(CloseReason::UnknownTorrent));
                        return;
                    };
                    if count >= self.config.max_connections_per_torrent {
                        self.close(now, conn, Some(CloseReason::TooManyConnections));
                        return;
                    }
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.torrent = Some(id);
                    }
                    self.send_handshake(now, conn);
                }
                Err(e) => {
                    self.protocol_error(now, conn, e.to_string());
                    return;
                }
            }
        }
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let hs = match p.decoder.decode_handshake() {
            Ok(Progress::NeedMore(_)) => return,
            Ok(Progress::Done(hs)) => hs,
            Err(e) => {
                self.protocol_error(now, conn, e.to_string());
                return;
            }
        };
        let Some(id) = p.torrent else {
            return;
        };
        let Some(t) = self.torrents.get(&id) else {
            self.close(now, conn, Some(CloseReason::UnknownTorrent));
            return;
        };
        if hs.info_hash != t.meta.info_hash() {
            self.close(now, conn, Some(CloseReason::UnknownTorrent));
            return;
        }
        if hs.peer_id == self.config.peer_id {
            let addr = p.addr;
            if !p.incoming {
                self.self_addrs.insert(addr);
                if let Some(t) = self.torrents.get_mut(&id) {
                    t.known.remove(&addr);
                }
            }
            self.close(now, conn, Some(CloseReason::SelfConnection));
            return;
        }
        if t.banned.contains(&p.addr.ip()) {
            self.close(now, conn, Some(CloseReason::Banned));
            return;
        }
        let duplicate = t.peers.iter().any(|c| {
            self.peers
                .get(c)
                .is_some_and(|o| o.peer_id == Some(hs.peer_id))
        });
        if duplicate {
            self.close(now, conn, Some(CloseReason::Duplicate));
            return;
        }
        let n = t.piece_count();
        let we_are_seed = t.picker.have().is_full();
        let have_none = t.picker.have().count() == 0;
        let have_bytes = t.picker.have().clone();
        let ours = Peer::our_reserved();
        let common = ours.common(hs.reserved);
        let fast = common.has(crate::wire::Extension::Fast);
        let extended = common.has(crate::wire::Extension::ExtensionProtocol);
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        p.peer_id = Some(hs.peer_id);
        p.fast = fast;
        p.extended = extended;
        p.decoder.set_piece_count(Some(n));
        p.has = Bitfield::new(n);
        let sent = matches!(p.phase, Phase::Handshaking { sent: true });
        p.phase = Phase::Active;
        let addr = p.addr;
        let incoming = p.incoming;
        if !sent {
            self.send_handshake(now, conn);
            if let Some(p) = self.peers.get_mut(&conn) {
                p.phase = Phase::Active;
            }
        }
        // BEP 6: the piece summary must directly follow the handshake.
        let first = if fast && we_are_seed {
            Message::HaveAll
        } else if fast && have_none {
            Message::HaveNone
        } else if have_none {
            // Without the fast extension an empty bitfield may be omitted (BEP 3).
            Message::KeepAlive
        } else {
            Message::Bitfield(Bytes::copy_from_slice(have_bytes.as_bytes()))
        };
        if first != Message::KeepAlive {
            self.send(now, conn, &first);
        }
        if extended {
            let payload = self.extension_handshake(addr);
            self.send(
                now,
                conn,
                &Message::Extended {
                    id: 0,
                    payload: Bytes::from(payload),
                },
            );
        }
        if let Some(t) = self.torrents.get_mut(&id) {
            t.peers.insert(conn);
            // It answered: earlier failed dials (a restart, a busy moment) are forgotten, so
            // a later one does not count towards forgetting a peer that works.
            if !incoming && let Some(c) = t.known.get_mut(&addr) {
                c.failures = 0;
            }
        }
        self.events.push_back(Event::PeerConnected {
            torrent: id,
            conn,
            addr,
            peer_id: hs.peer_id,
        });
    }

    fn extension_handshake(&self, addr: SocketAddr) -> Vec<u8> {
        let yourip: Vec<u8> = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
            std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        Bencode::dict()
            .with("m", Bencode::dict())
            .with("p", self.config.listen_port)
            .with("v", self.config.client_name.as_str())
            .with(
                "reqq",
                i64::try_from(self.config.max_peer_requests).unwrap_or(i64::MAX),
            )
            .with("yourip", yourip)
            .encode()
    }

    // ----- messages ----------------------------------------------------------------------

    fn on_message(&mut self, now: Instant, conn: ConnId, msg: Message) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(id) = p.torrent else {
            return;
        };
        let first = !p.sent_first_message;
        // Some clients send their extension handshake before the piece summary; tolerate it.
        if !matches!(msg, Message::KeepAlive | Message::Extended { .. }) {
            p.sent_first_message = true;
        }
        let fast = p.fast;
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::Suggest(_) => {}
            Message::Unknown { .. } => {}
            Message::Choke => {
                p.peer_choking = true;
                if !fast {
                    // Without BEP 6, a choke silently drops every request we made.
                    let reqs: Vec<Block> = p.requests.drain(..).map(|(b, _)| b).collect();
                    for b in &reqs {
                        p.withdraw(*b, self.config.max_request_depth);
                    }
                    if let Some(t) = self.torrents.get_mut(&id) {
                        for b in &reqs {
                            t.picker.release(*b);
                        }
                    }
                    if !reqs.is_empty() {
                        self.refill(now, id);
                    }
                }
            }
            Message::Unchoke => {
                p.peer_choking = false;
                self.fill_requests(now, conn);
            }
            Message::Interested => {
                p.peer_interested = true;
                self.maybe_unchoke_now(now, id, conn);
            }
            Message::NotInterested => p.peer_interested = false,
            Message::Have(piece) => self.on_have(now, conn, id, piece),
            Message::Bitfield(bytes) => {
                let n = p.has.len();
                match Bitfield::from_bytes(&bytes, n) {
                    Ok(b) if first => self.set_peer_pieces(now, conn, id, b),
                    // BEP 3 allows a bitfield only first, but aria2 sends one in place of a
                    // run of HAVEs whenever it is the shorter message (libtorrent and
                    // transmission accept that): it adds the pieces it lists, as those HAVEs
                    // would. Bits it leaves clear are ignored: a peer does not lose pieces.
                    Ok(b) => self.add_peer_pieces(now, conn, id, b.iter_ones()),
                    Err(e) => self.protocol_error(now, conn, e.to_string()),
                }
            }
            Message::HaveAll | Message::HaveNone => {
                if !fast || !first {
                    self.protocol_error(now, conn, "unexpected have-all/have-none");
                    return;
                }
                let n = p.has.len();
                let b = if msg == Message::HaveAll {
                    Bitfield::full(n)
                } else {
                    Bitfield::new(n)
                };
                self.set_peer_pieces(now, conn, id, b);
            }
            Message::Request(r) => {
                let b = r;
                self.on_request(now, conn, id, b);
            }
            Message::Cancel(r) => {
                let b = r;
                p.their_requests.retain(|x| *x != b);
                // A read in flight is dropped when it returns.
                p.reading.retain(|x| *x != b);
            }
            Message::RejectRequest(r) => {
                if !fast {
                    self.protocol_error(now, conn, "reject without the fast extension");
                    return;
                }
                let b = r;
                let before = p.requests.len();
                p.requests.retain(|(x, _)| *x != b);
                if p.requests.len() == before {
                    // The answer to a cancel (BEP 6): that block will not come.
                    p.was_withdrawn(b);
                } else if let Some(t) = self.torrents.get_mut(&id) {
                    t.picker.release(b);
                    self.refill(now, id);
                }
            }
            Message::AllowedFast(piece) => {
                if piece.0 < p.has.len()
                    && p.allowed_fast.len() < MAX_ALLOWED_FAST
                    && !p.allowed_fast.contains(&piece)
                {
                    p.allowed_fast.push(piece);
                    self.fill_requests(now, conn);
                }
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                self.on_block(now, conn, id, piece, offset, data);
            }
            Message::Extended { id: ext, payload } => {
                if ext == 0 {
                    self.on_extension_handshake(conn, &payload);
                }
            }
        }
    }

    fn on_extension_handshake(&mut self, conn: ConnId, payload: &[u8]) {
        let Ok(v) = bencode::decode(payload) else {
            // A malformed extension handshake only costs the extensions.
            return;
        };
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if let Some(reqq) = v.get(b"reqq").and_then(|x| x.as_int()) {
            p.reqq = usize::try_from(reqq).ok().filter(|n| *n > 0);
        }
        if let Some(port) = v.get(b"p").and_then(|x| x.as_int()) {
            p.listen_port = u16::try_from(port).ok().filter(|n| *n > 0);
        }
        if let Some(name) = v.get(b"v").and_then(|x| x.as_bytes()) {
            let name = String::from_utf8_lossy(name);
            p.ext_client = Some(name.chars().take(MAX_CLIENT_NAME).collect());
        }
    }

    fn on_have(&mut self, now: Instant, conn: ConnId, id: TorrentId, piece: PieceIndex) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if piece.0 >= p.has.len() {
            self.protocol_error(now, conn, format!("have for piece {piece} out of range"));
            return;
        }
        self.add_peer_pieces(now, conn, id, [piece]);
    }

    /// Records `pieces` (in range) as the peer's, from a HAVE or a later BITFIELD.
    fn add_peer_pieces(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        pieces: impl IntoIterator<Item = PieceIndex>,
    ) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        for piece in pieces {
            if p.has.set(piece, true)
                && let Some(t) = self.torrents.get_mut(&id)
            {
                t.picker.peer_has(piece);
            }
        }
        self.update_interest(now, conn);
        self.fill_requests(now, conn);
        self.close_if_both_seeds(now, conn, id);
    }

    fn set_peer_pieces(&mut self, now: Instant, conn: ConnId, id: TorrentId, b: Bitfield) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if let Some(t) = self.torrents.get_mut(&id) {
            t.picker.peer_removed(&p.has);
            t.picker.peer_added(&b);
        }
        p.has = b;
        self.update_interest(now, conn);
        self.close_if_both_seeds(now, conn, id);
    }

    fn close_if_both_seeds(&mut self, now: Instant, conn: ConnId, id: TorrentId) {
        let we_seed = self
            .torrents
            .get(&id)
            .is_some_and(|t| t.picker.have().is_full());
        if we_seed && self.peers.get(&conn).is_some_and(Peer::is_seed) {
            self.close(now, conn, Some(CloseReason::BothSeeds));
        }
    }

    /// Sends INTERESTED / NOT INTERESTED when our interest changes.
    fn update_interest(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if p.phase != Phase::Active {
            return;
        }
        let Some(t) = p.torrent.and_then(|id| self.torrents.get(&id)) else {
            return;
        };
        let interested = t.state == TorrentState::Started && t.picker.is_interesting(&p.has);
        if interested != p.am_interested {
            p.am_interested = interested;
            let msg = if interested {
                Message::Interested
            } else {
                Message::NotInterested
            };
            p.send(&msg, now);
        }
    }

    // ----- downloading -------------------------------------------------------------------

    /// Keeps a peer's request pipeline full.
    fn fill_requests(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(t) = p.torrent.and_then(|id| self.torrents.get_mut(&id)) else {
            return;
        };
        if p.phase != Phase::Active || t.state != TorrentState::Started || !p.am_interested {
            return;
        }
        if p.peer_choking && p.allowed_fast.is_empty() {
            return;
        }
        let mut depth = if p.snubbed { 1 } else { p.queue_depth };
        if let Some(reqq) = p.reqq {
            depth = depth.min(reqq);
        }
        let want = depth.saturating_sub(p.requests.len());
        if want == 0 {
            return;
        }
        let choked_subset;
        let has = if p.peer_choking {
            let mut b = Bitfield::new(p.has.len());
            for &piece in &p.allowed_fast {
                if p.has.get(piece) {
                    b.set(piece, true);
                }
            }
            choked_subset = b;
            &choked_subset
        } else {
            &p.has
        };
        let limits = PickLimits {
            max_partial_pieces: usize::try_from(
                self.config.max_inflight_bytes / u64::from(t.meta.piece_length().max(1)),
            )
            .unwrap_or(usize::MAX)
            .max(2),
        };
        let requests = &p.requests;
        // Asked in endgame only, once per block in flight: sorted on first use, the peer's
        // requests answer each with a binary search instead of a scan of up to
        // `max_request_depth` of them.
        let asked: std::cell::OnceCell<Vec<Block>> = std::cell::OnceCell::new();
        let picked = t.picker.pick(has, want, limits, &mut self.rng, |b| {
            asked
                .get_or_init(|| {
                    let mut v: Vec<Block> = requests.iter().map(|(r, _)| *r).collect();
                    v.sort_unstable();
                    v
                })
                .binary_search(&b)
                .is_ok()
        });
        for piece in t.picker.take_abandoned() {
            t.buffers.remove(&piece);
        }
        if p.requests.is_empty() && !picked.is_empty() {
            // The snub clock starts when requests go out after a quiet spell.
            p.last_block = now;
        }
        for b in picked {
            p.send(&Message::Request(b), now);
            p.requests.push_back((b, now));
        }
    }

    fn on_block(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        piece: PieceIndex,
        offset: u32,
        data: Bytes,
    ) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let block = Block {
            piece,
            offset,
            length,
        };
        let requested = match p.requests.iter().position(|(b, _)| *b == block) {
            Some(i) => {
                p.requests.remove(i);
                true
            }
            None => false,
        };
        let withdrawn = !requested && p.was_withdrawn(block);
        // In endgame others were asked for this block too; they are told to stop below.
        let duplicates = t.picker.requested_from(block) > u8::from(requested);
        let outcome = t.picker.block_received(block);
        if outcome == BlockReceived::NotWanted {
            if !requested && !withdrawn {
                p.slips += 1;
                if p.slips > MAX_SLIPS {
                    self.protocol_error(now, conn, "too many unrequested blocks");
                }
            }
            return;
        }
        p.down.record(now, u64::from(length));
        p.downloaded += u64::from(length);
        p.last_block = now;
        p.snubbed = false;
        let rate = p.down.rate(now);
        let by_rate = rate.saturating_mul(self.config.request_queue_seconds) / u64::from(BLOCK_LEN);
        p.queue_depth = usize::try_from(by_rate).unwrap_or(usize::MAX).clamp(
            self.config.initial_request_depth,
            self.config.max_request_depth,
        );
        let addr = p.addr;
        t.downloaded += u64::from(length);
        let blocks = t.blocks_in(piece);
        let buf = t.buffers.entry(piece).or_insert_with(|| PieceBuf {
            blocks: vec![None; blocks],
        });
        if let Some(slot) = buf.blocks.get_mut((offset / BLOCK_LEN) as usize) {
            *slot = Some((data, addr));
        }
        // Endgame: whoever else was asked for this block is told not to bother.
        let others: Vec<ConnId> = if duplicates {
            t.peers.iter().copied().filter(|c| *c != conn).collect()
        } else {
            Vec::new()
        };
        for c in others {
            if let Some(o) = self.peers.get_mut(&c)
                && let Some(i) = o.requests.iter().position(|(b, _)| *b == block)
            {
                o.requests.remove(i);
                o.withdraw(block, self.config.max_request_depth);
                o.send(&Message::Cancel(block), now);
                self.flush(c);
            }
        }
        if outcome == BlockReceived::PieceComplete {
            self.piece_complete(id, piece);
        }
        self.fill_requests(now, conn);
    }

    fn piece_complete(&mut self, id: TorrentId, piece: PieceIndex) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let Some(buf) = t.buffers.remove(&piece) else {
            return;
        };
        let Some(hash) = t.meta.piece_hash(piece) else {
            return;
        };
        let mut blocks = Vec::with_capacity(buf.blocks.len());
        let mut senders = Vec::with_capacity(buf.blocks.len());
        for slot in buf.blocks {
            let Some((data, from)) = slot else {
                // The picker said complete, so every block is here; if not, fetch again.
                t.picker.piece_failed(piece);
                return;
            };
            // A second handle on the same bytes, released when the result comes back.
            senders.push((data.clone(), from));
            blocks.push(data);
        }
        t.verifying.insert(piece, senders);
        self.outputs.push_back(Output::VerifyAndStore {
            torrent: id,
            piece,
            hash,
            blocks,
        });
    }

    fn on_piece_stored(
        &mut self,
        now: Instant,
        id: TorrentId,
        piece: PieceIndex,
        result: Result<bool, StorageError>,
    ) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let Some(senders) = t.verifying.remove(&piece) else {
            return;
        };
        match result {
            Ok(true) => {
                // Smart ban: with the good data in hand, whoever sent a differing block of an
                // earlier failed attempt sent bad data.
                let mut culprits = BTreeSet::new();
                if let Some(failed) = t.failed.remove(&piece) {
                    for ((hash, from), (good, _)) in failed.blocks.iter().zip(&senders) {
                        if crate::sha1(good) != *hash {
                            culprits.insert(*from);
                        }
                    }
                }
                t.picker.piece_passed(piece);
                self.events
                    .push_back(Event::HashPassed { torrent: id, piece });
                for addr in culprits {
                    self.ban(now, id, addr);
                }
                self.after_piece_passed(now, id, piece);
            }
            Ok(false) => {
                t.picker.piece_failed(piece);
                let mut failed = FailedPiece::default();
                let mut from: Vec<SocketAddr> = Vec::new();
                for (data, addr) in &senders {
                    if !from.contains(addr) {
                        from.push(*addr);
                    }
                    failed.blocks.push((crate::sha1(data), *addr));
                }
                t.failed.insert(piece, failed);
                self.events.push_back(Event::HashFailed {
                    torrent: id,
                    piece,
                    peers: from.clone(),
                });
                // A piece from a single peer convicts it; mixed pieces wait for the smart ban.
                if let [only] = from.as_slice() {
                    let strikes = t.strikes.entry(only.ip()).or_insert(0);
                    *strikes += 1;
                    if *strikes >= self.config.ban_strikes {
                        let addr = *only;
                        self.ban(now, id, addr);
                    }
                }
                self.refill(now, id);
            }
            Err(error) => {
                // Verified data could not be written: fetch the piece again later and stop
                // touching the disk until the user has looked.
                t.picker.piece_failed(piece);
                self.events
                    .push_back(Event::StorageFailed { torrent: id, error });
                self.set_state(now, id, TorrentState::Paused);
            }
        }
    }

    fn ban(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if !t.banned.insert(addr.ip()) {
            return;
        }
        t.known.retain(|a, _| a.ip() != addr.ip());
        self.events
            .push_back(Event::PeerBanned { torrent: id, addr });
        let conns: Vec<ConnId> = self
            .peers
            .values()
            .filter(|p| p.torrent == Some(id) && p.addr.ip() == addr.ip())
            .map(|p| p.conn)
            .collect();
        for c in conns {
            self.close(now, c, Some(CloseReason::Banned));
        }
    }

    fn after_piece_passed(&mut self, now: Instant, id: TorrentId, piece: PieceIndex) {
        let conns = self.torrent_conns(id);
        for c in &conns {
            if let Some(p) = self.peers.get_mut(c)
                && p.is_active()
                && !p.has.get(piece)
            {
                p.send(&Message::Have(piece), now);
            }
        }
        self.after_have_changed(now, id);
    }

    /// Our pieces or wants changed: interest, completion, seeds to drop.
    fn after_have_changed(&mut self, now: Instant, id: TorrentId) {
        let conns = self.torrent_conns(id);
        for c in &conns {
            self.update_interest(now, *c);
            self.fill_requests(now, *c);
            self.close_if_both_seeds(now, *c, id);
            self.flush(*c);
        }
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let done = t.picker.is_done();
        if done && !t.was_done {
            self.events.push_back(Event::Complete { torrent: id });
            if t.state == TorrentState::Started {
                t.announcer.completed(now);
                self.announce_due(now, id);
            }
        }
        if let Some(t) = self.torrents.get_mut(&id) {
            if !done && t.was_done {
                // Wanting pieces again (a file re-enabled, a piece lost): the seeds we left
                // as "both seeds" are worth calling back now.
                for c in t.known.values_mut() {
                    c.next_attempt = c.next_attempt.min(now);
                }
                t.was_done = false;
                self.connect_more(now, id);
            } else {
                t.was_done = done;
            }
        }
    }

    /// Blocks were given back to the picker: every peer of the torrent may take them.
    fn refill(&mut self, now: Instant, id: TorrentId) {
        for c in self.torrent_conns(id) {
            self.fill_requests(now, c);
            self.flush(c);
        }
    }

    fn cancel_all_requests(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let reqs: Vec<Block> = p.requests.drain(..).map(|(b, _)| b).collect();
        for b in &reqs {
            p.send(&Message::Cancel(*b), now);
            p.withdraw(*b, self.config.max_request_depth);
        }
        if let Some(t) = p.torrent.and_then(|id| self.torrents.get_mut(&id)) {
            for b in reqs {
                t.picker.release(b);
            }
        }
    }

    // ----- serving -----------------------------------------------------------------------

    fn reject(&mut self, now: Instant, conn: ConnId, b: Block) {
        if let Some(p) = self.peers.get_mut(&conn)
            && p.fast
        {
            p.send(&Message::RejectRequest(b), now);
        }
    }

    fn on_request(&mut self, now: Instant, conn: ConnId, id: TorrentId, b: Block) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        let piece_len = t.piece_len(b.piece);
        if b.piece.0 >= t.piece_count()
            || b.length == 0
            || b.length > BLOCK_LEN
            || u64::from(b.offset) + u64::from(b.length) > u64::from(piece_len)
        {
            self.protocol_error(now, conn, format!("request out of bounds: {b:?}"));
            return;
        }
        if t.state != TorrentState::Started || p.am_choking {
            // A request racing our CHOKE is normal; BEP 6 asks for a reject.
            self.reject(now, conn, b);
            return;
        }
        if !t.picker.have().get(b.piece) {
            // We never serve data we do not have (the seed client served zeros).
            p.slips += 1;
            if p.slips > MAX_SLIPS {
                self.protocol_error(now, conn, "too many requests for pieces we lack");
                return;
            }
            self.reject(now, conn, b);
            return;
        }
        if p.their_requests.len() + p.reading.len() >= self.config.max_peer_requests {
            self.reject(now, conn, b);
            return;
        }
        if p.their_requests.contains(&b) || p.reading.contains(&b) {
            return;
        }
        p.their_requests.push_back(b);
        self.pump_reads(id, conn);
    }

    fn pump_reads(&mut self, id: TorrentId, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        while p.reading.len() < self.config.max_reads_in_flight {
            let Some(b) = p.their_requests.pop_front() else {
                break;
            };
            p.reading.push(b);
            self.outputs.push_back(Output::ReadBlock {
                torrent: id,
                conn,
                block: b,
            });
        }
    }

    fn on_block_read(
        &mut self,
        now: Instant,
        id: TorrentId,
        conn: ConnId,
        block: Block,
        data: Result<Bytes, StorageError>,
    ) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(i) = p.reading.iter().position(|b| *b == block) else {
            // Cancelled, or the peer was choked meanwhile.
            return;
        };
        p.reading.swap_remove(i);
        match data {
            Ok(data) if data.len() == block.length as usize && !p.am_choking => {
                if let Ok(header) = encode_piece_header(block.piece, block.offset, data.len()) {
                    p.send_piece(header, data, now);
                    p.up.record(now, u64::from(block.length));
                    p.uploaded += u64::from(block.length);
                    if let Some(t) = self.torrents.get_mut(&id) {
                        t.uploaded += u64::from(block.length);
                    }
                }
            }
            Ok(data) if data.len() != block.length as usize => {
                self.reject(now, conn, block);
                self.events.push_back(Event::StorageFailed {
                    torrent: id,
                    error: StorageError(format!(
                        "short read of piece {} at {}: {} of {} bytes",
                        block.piece,
                        block.offset,
                        data.len(),
                        block.length
                    )),
                });
            }
            Ok(_) => self.reject(now, conn, block),
            Err(error) => {
                self.reject(now, conn, block);
                self.events
                    .push_back(Event::StorageFailed { torrent: id, error });
            }
        }
        self.pump_reads(id, conn);
        self.flush(conn);
    }

    fn set_choking(&mut self, now: Instant, conn: ConnId, choke: bool) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if p.phase != Phase::Active || p.am_choking == choke {
            return;
        }
        p.am_choking = choke;
        if choke {
            p.optimistic = false;
            p.send(&Message::Choke, now);
            // Queued requests die with the choke; with BEP 6 each gets a reject.
            let dropped: Vec<Block> = p
                .their_requests
                .drain(..)
                .chain(p.reading.drain(..))
                .collect();
            if p.fast {
                for b in dropped {
                    p.send(&Message::RejectRequest(b), now);
                }
            }
        } else {
            p.send(&Message::Unchoke, now);
        }
    }

    /// An interested peer gets a free upload slot at once rather than at the next round.
    fn maybe_unchoke_now(&mut self, now: Instant, id: TorrentId, conn: ConnId) {
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        if t.state != TorrentState::Started {
            return;
        }
        let unchoked = t
            .peers
            .iter()
            .filter(|c| self.peers.get(c).is_some_and(|p| !p.am_choking))
            .count();
        if unchoked < self.config.upload_slots {
            self.set_choking(now, conn, false);
        }
    }

    fn choke_round(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.state != TorrentState::Started {
            return;
        }
        let mode = if t.picker.is_done() {
            ChokeMode::Seeding
        } else {
            ChokeMode::Leeching
        };
        t.choker.set_mode(mode);
        let snapshot: Vec<PeerSnapshot> = t
            .peers
            .iter()
            .filter_map(|c| self.peers.get(c))
            .filter(|p| p.is_active())
            .map(|p| PeerSnapshot {
                id: p.conn,
                interested: p.peer_interested,
                rate: match mode {
                    ChokeMode::Leeching => p.down.rate(now),
                    ChokeMode::Seeding => p.up.rate(now),
                },
                unchoked: !p.am_choking,
                connected_at: p.connected_at,
                snubbed: p.snubbed,
            })
            .collect();
        let decision = t.choker.run(now, &snapshot, &mut self.rng);
        for change in decision.changes {
            let (c, choke) = match change {
                ChokeChange::Choke(c) => (c, true),
                ChokeChange::Unchoke(c) => (c, false),
            };
            self.set_choking(now, c, choke);
            self.flush(c);
        }
        for p in &snapshot {
            if let Some(peer) = self.peers.get_mut(&p.id) {
                peer.optimistic = decision.optimistic == Some(p.id);
            }
        }
    }

    // ----- peers to connect to -----------------------------------------------------------

    fn learn_peer(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        if self.self_addrs.contains(&addr) {
            return;
        }
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.banned.contains(&addr.ip()) || t.known.contains_key(&addr) {
            return;
        }
        if t.known.len() >= MAX_KNOWN_PEERS {
            return;
        }
        t.known.insert(
            addr,
            Candidate {
                next_attempt: now,
                failures: 0,
                closes: 0,
                connected: false,
            },
        );
    }

    fn connect_more(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.state == TorrentState::Stopped {
            return;
        }
        let half_open = self
            .peers
            .values()
            .filter(|p| p.phase == Phase::Connecting)
            .count();
        let torrent_conns = self
            .peers
            .values()
            .filter(|p| p.torrent == Some(id))
            .count();
        let budget = (self.config.max_half_open.saturating_sub(half_open))
            .min(
                self.config
                    .max_connections_per_torrent
                    .saturating_sub(torrent_conns),
            )
            .min(self.config.max_connections.saturating_sub(self.peers.len()));
        let due: Vec<SocketAddr> = t
            .known
            .iter()
            .filter(|(_, c)| !c.connected && c.next_attempt <= now)
            .map(|(a, _)| *a)
            .take(budget)
            .collect();
        for addr in due {
            if let Some(c) = t.known.get_mut(&addr) {
                c.connected = true;
            }
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            let depth = self.config.initial_request_depth;
            self.peers
                .insert(conn, Peer::new(conn, addr, false, Some(id), now, depth));
            self.outputs.push_back(Output::Connect { conn, addr });
        }
    }

    // ----- trackers ----------------------------------------------------------------------

    fn announce_request(
        &self,
        id: TorrentId,
        event: Option<AnnounceEvent>,
    ) -> Option<AnnounceRequest> {
        let t = self.torrents.get(&id)?;
        Some(AnnounceRequest {
            info_hash: t.meta.info_hash(),
            peer_id: self.config.peer_id,
            port: self.config.listen_port,
            uploaded: t.uploaded,
            downloaded: t.downloaded,
            left: t.left(),
            event,
            numwant: (event != Some(AnnounceEvent::Stopped)).then_some(self.config.numwant),
            key: Some(self.key),
            tracker_id: t.announcer.tracker_id.clone(),
            ip: None,
        })
    }

    fn announce_due(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.state == TorrentState::Stopped {
            return;
        }
        let Some((url, event)) = t.announcer.due(now) else {
            return;
        };
        if let Some(request) = self.announce_request(id, event) {
            self.outputs.push_back(Output::Announce {
                torrent: id,
                url,
                request,
            });
        }
    }

    fn on_announced(
        &mut self,
        now: Instant,
        id: TorrentId,
        url: &str,
        result: Result<crate::tracker::AnnounceResponse, String>,
    ) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.state == TorrentState::Stopped {
            return;
        }
        match result {
            Ok(reply) => {
                t.announcer.succeeded(url, &reply, now);
                if let Some(w) = &reply.warning {
                    self.events.push_back(Event::TrackerWarning {
                        torrent: id,
                        url: url.to_string(),
                        message: w.clone(),
                    });
                }
                self.events.push_back(Event::TrackerReply {
                    torrent: id,
                    url: url.to_string(),
                    peers: reply.peers.len(),
                });
                for peer in reply.peers {
                    // Host names would need DNS, which is the adapter's; trackers in
                    // practice send addresses.
                    if let PeerAddr::Ip(addr) = peer.addr {
                        self.learn_peer(now, id, addr);
                    }
                }
                self.connect_more(now, id);
            }
            Err(message) => {
                t.announcer.failed(url, &message, now);
                self.events.push_back(Event::TrackerError {
                    torrent: id,
                    url: url.to_string(),
                    message,
                });
                self.announce_due(now, id);
            }
        }
    }

    // ----- hashcheck ---------------------------------------------------------------------

    fn on_piece_checked(&mut self, now: Instant, id: TorrentId, piece: PieceIndex, ok: bool) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if !t.checking.remove(&piece) {
            return;
        }
        let had = t.picker.have().get(piece);
        if ok && !had {
            t.buffers.remove(&piece);
            t.picker.piece_passed(piece);
        } else if !ok && had {
            t.picker.piece_lost(piece);
        }
        let done = t.checking.is_empty();
        let verified = t.picker.have().count();
        let total = t.piece_count();
        self.events.push_back(Event::PieceChecked {
            torrent: id,
            piece,
            ok,
        });
        if ok && !had {
            self.after_piece_passed(now, id, piece);
        } else if !ok && had {
            self.after_have_changed(now, id);
        }
        if done {
            self.events.push_back(Event::HashcheckDone {
                torrent: id,
                verified,
                total,
            });
        }
    }

    // ----- time --------------------------------------------------------------------------

    /// Runs what is due at `now`: timeouts, keep-alives, choke rounds, reconnects, announces.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<TorrentId> = self.torrents.keys().copied().collect();
        for id in &ids {
            self.announce_due(now, *id);
        }
        if self.next_tick.is_some_and(|t| t > now) {
            return;
        }
        self.next_tick = Some(now + TICK);
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.peer_timers(now, c);
        }
        for id in ids {
            let due = self.torrents.get(&id).is_some_and(|t| t.choker.is_due(now));
            if due {
                self.choke_round(now, id);
            }
            self.connect_more(now, id);
        }
    }

    fn peer_timers(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let idle = now.saturating_duration_since(p.last_received);
        match p.phase {
            Phase::Connecting | Phase::Handshaking { .. } => {
                if now.saturating_duration_since(p.connected_at) > self.config.handshake_timeout {
                    self.close(now, conn, Some(CloseReason::Inactive));
                }
                return;
            }
            Phase::Active => {}
        }
        if idle > self.config.inactivity_timeout {
            self.close(now, conn, Some(CloseReason::Inactive));
            return;
        }
        if now.saturating_duration_since(p.last_sent) >= self.config.keepalive_interval {
            p.send(&Message::KeepAlive, now);
        }
        if !p.requests.is_empty()
            && now.saturating_duration_since(p.last_block) > self.config.request_timeout
        {
            // Snubbed: its blocks go to other peers; it keeps a single request.
            p.snubbed = true;
            self.cancel_all_requests(now, conn);
            if let Some(id) = self.peers.get(&conn).and_then(|p| p.torrent) {
                self.refill(now, id);
            }
        }
        self.flush(conn);
    }
}
