//! Torrents added by magnet link: fetching their metadata from peers (BEP 9), what their
//! peers may say meanwhile, and the moment each becomes a whole torrent.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::fetching::Fetching;
use super::metadata::send_metadata;
use super::metadata_fetch::{Assembled, MetadataFetch};
use super::smart_ban::SmartBan;
use super::timers::{Timer, TorrentTimer};
use super::{
    AddTorrent, CloseReason, Event, Output, ProtocolViolation, Session, TorrentId, TorrentState,
};
use crate::ConnId;
use crate::extensions::ut_metadata::{MetadataError, MetadataMessage};
use crate::magnet::{Magnet, MagnetPeer};
use crate::metainfo::Metainfo;
use crate::wire::Message;

impl Session {
    /// Adds a torrent known by its magnet link: it connects to the link's `x.pe` peers (the
    /// literal addresses; host names are the adapter's to resolve and give with
    /// [`Session::add_peer`]) and announces to its `tr` trackers, fetching the metadata from
    /// peers that serve it. When the metadata arrives and hashes to the info-hash,
    /// [`Output::MetadataReceived`] and [`Event::MetadataReceived`] say so and the torrent
    /// goes on as one added with [`Session::add_torrent`] and `opts` would (its `have` is
    /// ignored: there was nothing to have; a `check` runs then, with the torrent paused
    /// until it is done).
    ///
    /// ```
    /// use std::time::Instant;
    /// use bt_proto::engine::{AddTorrent, Config, Output, Session};
    /// use bt_proto::magnet::Magnet;
    /// use bt_proto::PeerId;
    ///
    /// let magnet: Magnet = "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
    ///                       &x.pe=192.0.2.7:6881".parse().unwrap();
    /// let mut session = Session::new(Config::new(PeerId([7; 20]), 6881, 1));
    /// let id = session.add_magnet(Instant::now(), &magnet, AddTorrent::default());
    /// assert!(session.is_fetching_metadata(id));
    /// assert!(matches!(session.poll_output(), Some(Output::Connect { .. })));
    /// ```
    pub fn add_magnet(&mut self, now: Instant, magnet: &Magnet, opts: AddTorrent) -> TorrentId {
        let id = self.new_torrent_id();
        self.index_info_hash(magnet.info_hash, id);
        self.keep_torrent_options(now, id, &opts);
        // Each `tr` its own tier, tried in link order, as libtorrent does: a link lists
        // alternatives, not one tracker's addresses.
        let trackers: Vec<Vec<String>> = magnet.trackers.iter().map(|u| vec![u.clone()]).collect();
        let announcer = super::announce::Announcer::new(&trackers, &mut self.rng);
        let state = opts.state.requested();
        self.fetching.insert(
            id,
            Fetching {
                id,
                info_hash: magnet.info_hash,
                display_name: magnet.display_name.clone(),
                trackers,
                state: TorrentState::Stopped,
                conns: Default::default(),
                candidates: Default::default(),
                smart_ban: SmartBan::new(self.config.ban_strikes),
                announcer,
                uploaded: opts.uploaded,
                downloaded: opts.downloaded,
                opts,
                fetch: MetadataFetch::default(),
                strikes: Default::default(),
            },
        );
        for peer in &magnet.peers {
            if let MagnetPeer::Addr(addr) = peer {
                self.learn_peer(now, id, *addr);
            }
        }
        self.change_state(now, id, state);
        id
    }

    /// A message from a peer of a torrent fetching its metadata. What it has is kept for
    /// later; it is choked and asks for nothing, as we have nothing.
    pub(super) fn on_message_while_fetching(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        msg: Message,
        first: bool,
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        match msg {
            Message::Choke => p.choke.peer_choking = true,
            Message::Unchoke => p.choke.peer_choking = false,
            Message::Interested => p.choke.peer_interested = true,
            Message::NotInterested => p.choke.peer_interested = false,
            Message::Have(piece) => p.early_pieces.add(piece)?,
            Message::Bitfield(bytes) if first => p.early_pieces.set_summary(bytes)?,
            Message::Bitfield(bytes) => p.early_pieces.add_bitfield(&bytes)?,
            Message::HaveAll | Message::HaveNone if !p.fast || !first => {
                return Err(ProtocolViolation::UnexpectedPieceSummary);
            }
            Message::HaveAll => p.early_pieces.have_all(),
            // We are choking it and said we have nothing.
            Message::Request(block) if p.fast => p.reject(block, now),
            Message::RejectRequest(_) if !p.fast => {
                return Err(ProtocolViolation::RejectWithoutFast);
            }
            Message::Piece { .. } if p.slip() => {
                return Err(ProtocolViolation::TooManyUnrequestedBlocks);
            }
            Message::Extended { id: ext, payload } => {
                return self.on_extended(now, conn, id, ext, payload);
            }
            Message::Port(port) => self.on_dht_port(now, conn, port),
            _ => {}
        }
        Ok(())
    }

    /// A `ut_metadata` message under our id while the torrent fetches its metadata.
    pub(super) fn on_metadata_while_fetching(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        payload: Bytes,
    ) -> Result<(), ProtocolViolation> {
        let msg = match MetadataMessage::decode(&payload) {
            Ok(msg) => msg,
            // BEP 9: types we do not know are ignored.
            Err(MetadataError::UnknownType(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(addr) = self.peers.get(conn).map(|p| p.addr) else {
            return Ok(());
        };
        let Some(f) = self.fetching.get_mut(&id) else {
            return Ok(());
        };
        match msg {
            // We do not have it yet (BEP 9: reject).
            MetadataMessage::Request { piece } => {
                return self.refuse_metadata_request(now, conn, piece);
            }
            MetadataMessage::Reject { piece } => f.fetch.rejected(now, conn, piece),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => match f
                .fetch
                .received(&f.info_hash, addr, piece, total_size, data)
            {
                Ok(Assembled::Incomplete) => {}
                Ok(Assembled::Done(bytes)) => {
                    self.metadata_assembled(now, id, bytes);
                    return Ok(());
                }
                Ok(Assembled::HashFailed(senders)) => self.metadata_hash_failed(now, id, senders),
                Err(_) => return Err(ProtocolViolation::BadMetadataPiece { piece }),
            },
        }
        self.request_metadata(now, id);
        Ok(())
    }

    /// Asks the torrent's peers that serve metadata of the size being assembled for the
    /// pieces still missing, and sets the deadline of the oldest request.
    pub(super) fn request_metadata(&mut self, now: Instant, id: TorrentId) {
        let timer = Timer::Torrent(id, TorrentTimer::Metadata);
        let Some(f) = self.fetching.get_mut(&id) else {
            return;
        };
        if f.state != TorrentState::Started {
            self.timers.stop(timer);
            return;
        }
        f.fetch.expire(now);
        // Active peers that serve metadata, with the size each advertises.
        let serving: Vec<(ConnId, u8, u64)> = f
            .conns
            .iter()
            .filter_map(|c| {
                let p = self.peers.get(*c).filter(|p| p.is_active())?;
                let said = &p.extensions.said;
                Some((*c, said.metadata_id()?, said.metadata_size?))
            })
            .collect();
        f.fetch
            .choose_size(serving.iter().map(|(_, _, size)| *size));
        for (conn, their_id, size) in serving {
            if !f.fetch.wants_size(size) {
                continue;
            }
            let pieces = f.fetch.assign(now, conn);
            if let Some(p) = self.peers.get_mut(conn) {
                for piece in pieces {
                    send_metadata(p, their_id, &MetadataMessage::Request { piece }, now);
                }
            }
        }
        match f.fetch.expire(now) {
            Some(at) => self.timers.set(timer, at),
            None => self.timers.stop(timer),
        }
    }

    /// The assembled metadata did not hash to the info-hash. A peer that sent all of it lied
    /// and is banned; several share a strike each, and a second strike bans. The next copy
    /// comes from one peer at a time (see [`MetadataFetch`]), so a liar is soon alone.
    fn metadata_hash_failed(&mut self, now: Instant, id: TorrentId, senders: Vec<SocketAddr>) {
        let Some(f) = self.fetching.get_mut(&id) else {
            return;
        };
        let mut to_ban = Vec::new();
        for addr in &senders {
            let strikes = f.strikes.entry(addr.ip()).or_insert(0);
            *strikes += 1;
            if senders.len() == 1 || *strikes >= METADATA_STRIKES_TO_BAN {
                to_ban.push(*addr);
            }
        }
        self.events.push_back(Event::MetadataHashFailed {
            torrent: id,
            peers: senders,
        });
        for addr in to_ban {
            self.ban(now, id, addr);
        }
    }

    /// Every piece arrived and the bytes are the torrent's: check them as a .torrent file is
    /// checked, then make the torrent whole.
    fn metadata_assembled(&mut self, now: Instant, id: TorrentId, bytes: Vec<u8>) {
        let Some(f) = self.fetching.get(&id) else {
            return;
        };
        match Metainfo::from_info_bytes(&bytes) {
            Ok(meta) => {
                let meta = meta.with_trackers(f.trackers.clone());
                self.metadata_arrived(now, id, meta);
            }
            Err(error) => {
                self.events
                    .push_back(Event::MetadataInvalid { torrent: id, error });
                self.change_state(now, id, TorrentState::Stopped);
            }
        }
    }

    /// The fetching torrent `id` becomes a whole one with the same id, connections,
    /// candidates, bans and trackers. Its peers' early pieces are checked against the
    /// torrent now, and each hears our extension handshake again, with the size and peer
    /// exchange.
    fn metadata_arrived(&mut self, now: Instant, id: TorrentId, meta: Metainfo) {
        let Some(f) = self.fetching.remove(&id) else {
            return;
        };
        self.timers.stop(Timer::Torrent(id, TorrentTimer::Metadata));
        let check = f.opts.check.clone();
        let opts = AddTorrent {
            have: None,
            ..f.opts
        };
        let mut t = self.build_torrent(id, std::sync::Arc::new(meta), opts);
        let state = f.state;
        // A check finds what is on disk before anything is requested.
        let checking = check.is_some() && state == TorrentState::Started;
        t.state = if checking {
            TorrentState::Paused
        } else {
            state
        };
        t.after_check = checking.then_some(TorrentState::Started);
        t.conns = f.conns;
        t.candidates = f.candidates;
        t.smart_ban = f.smart_ban;
        t.announcer = f.announcer;
        let pieces = t.piece_count();
        let conns: Vec<ConnId> = t.conns.iter().copied().collect();
        self.torrents.insert(id, Box::new(t));
        // Before any disk job of the torrent: its storage is made from this.
        self.outputs
            .push_back(Output::MetadataReceived { torrent: id });
        self.events
            .push_back(Event::MetadataReceived { torrent: id });
        for conn in conns {
            if let Err(v) = self.learn_piece_count(now, conn, id, pieces) {
                self.close(now, conn, CloseReason::Protocol(v));
            }
        }
        if checking {
            self.events.push_back(Event::StateChanged {
                torrent: id,
                state: TorrentState::Paused,
            });
        }
        if let Some(scope) = check {
            self.hashcheck(now, id, scope);
        }
        if state == TorrentState::Started && !checking {
            self.choke_round(now, id);
            for conn in self.torrent_conns(id) {
                self.update_interest(now, conn);
                self.fill_requests(now, conn);
            }
        }
        self.connect_more(now, id);
    }

    /// An active peer of a torrent whose metadata just arrived: its pieces as it said them,
    /// held to the torrent's count.
    fn learn_piece_count(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        pieces: u32,
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn).filter(|p| p.is_active()) else {
            return Ok(());
        };
        p.decoder.set_piece_count(Some(pieces));
        let have = std::mem::take(&mut p.early_pieces).into_bitfield(pieces)?;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.picker.peer_added(&have);
        }
        p.pieces = have;
        let extended = p.extended;
        if extended {
            self.send_extension_handshake(now, conn, id);
            self.start_pex(now, conn, id);
        }
        Ok(())
    }
}

/// Metadata hash failures shared with other senders that ban a host. The first copy after a
/// failure comes from one peer at a time, so an honest peer is in a shared failure at most
/// once, and a liar that keeps joining them is banned at its second.
pub const METADATA_STRIKES_TO_BAN: u32 = 2;
