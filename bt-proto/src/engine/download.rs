//! Downloading: keeping requests in flight, taking blocks, handing whole pieces to be verified
//! and stored, and what a verified (or failed) piece changes.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::exclusive::pickable;
use super::fetching::swarm_of;
use super::rate_limits::Way;
use super::smart_ban;
use super::timers::{PeerTimer, Timer};
use super::torrent::PartialPiece;
use super::{Event, Output, ProtocolViolation, Session, StorageError, TorrentId, TorrentState};
use crate::picker::{BLOCK_LEN, Block, BlockReceived, PickLimits};
use crate::wire::Message;
use crate::{ConnId, PieceIndex};

impl Session {
    /// Keeps a peer's request pipeline full, within what the rate limits allow.
    pub(super) fn fill_requests(&mut self, now: Instant, conn: ConnId) {
        self.request_blocks(now, conn, false);
    }

    /// One request of a peer's, its turn in the rate limits' queue; whether it went out.
    pub(super) fn fill_requests_turn(&mut self, now: Instant, conn: ConnId) -> bool {
        self.request_blocks(now, conn, true)
    }

    /// Requests blocks of the peer; on its `turn`, one at most. A peer the limits hold back
    /// waits for its turn (see `rate_limits`). Whether any went out.
    fn request_blocks(&mut self, now: Instant, conn: ConnId, turn: bool) -> bool {
        let blocked = self.exclusive_blocked_for(conn);
        let Some(p) = self.peers.get_mut(conn) else {
            return false;
        };
        let Some((id, t)) = p
            .torrent
            .and_then(|id| Some((id, self.torrents.get_mut(&id)?)))
        else {
            return false;
        };
        if !p.is_active() || t.state != TorrentState::Started || !p.choke.am_interested {
            return false;
        }
        if p.choke.peer_choking && p.allowed_fast.is_empty() {
            return false;
        }
        let depth = p.pipeline_depth(self.readers.streams(id), now);
        let mut want = depth.saturating_sub(p.requests.len());
        if want == 0 {
            return false;
        }
        let limited = self.limits.covers(id, p.addr, Way::Down);
        if limited {
            match self.limits.blocks_allowed(now, id, turn) {
                0 => {
                    self.wait_for_tokens(now, id, conn, Way::Down);
                    return false;
                }
                n => want = want.min(n),
            }
        }
        let subset;
        let has = if p.choke.peer_choking || !blocked.is_empty() {
            let fast = p.choke.peer_choking.then_some(p.allowed_fast.as_slice());
            subset = pickable(&p.pieces, fast, &blocked);
            &subset
        } else {
            &p.pieces
        };
        // A peer at least as fast as the torrent's median is asked again for the blocks of
        // the most urgent pieces that slower ones hold.
        let deadline_endgame = p.down.rate(now) >= t.median_rate;
        let limits = PickLimits {
            deadline_endgame,
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
            t.in_flight_mut().partial_pieces.remove(&piece);
        }
        if p.requests.is_empty() && !picked.is_empty() {
            // The snub clock starts when requests go out after a quiet spell.
            p.last_block = now;
            self.timers.set(
                Timer::Peer(conn, PeerTimer::Request),
                now + self.config.request_timeout,
            );
        }
        let exclusive: Vec<PieceIndex> = picked
            .iter()
            .map(|b| b.piece)
            .filter(|piece| t.in_flight().exclusive.contains_key(piece))
            .collect();
        let sent = !picked.is_empty();
        for b in picked {
            p.send(&Message::Request(b), now);
            p.requests.push_back((b, now));
            if limited {
                self.limits.take(now, id, Way::Down, b.length);
            }
        }
        let room = p.requests.len() < depth;
        if !exclusive.is_empty() {
            self.claim_exclusive(id, conn, &exclusive);
        }
        if limited && turn && sent && room {
            // Its turn is over; the next comes after the others'.
            self.wait_for_tokens(now, id, conn, Way::Down);
        }
        sent
    }

    /// The pieces `conn` may not be asked for because another peer has them to itself.
    fn exclusive_blocked_for(&self, conn: ConnId) -> Vec<PieceIndex> {
        match self.peers.get(conn).and_then(|p| p.torrent) {
            Some(id)
                if self
                    .torrents
                    .get(&id)
                    .is_some_and(|t| !t.in_flight().exclusive.is_empty()) =>
            {
                self.exclusive_blocked(id, conn)
            }
            _ => Vec::new(),
        }
    }

    /// Blocks were given back to the picker: every peer of the torrent may take them.
    pub(super) fn refill(&mut self, now: Instant, id: TorrentId) {
        for c in self.torrent_conns(id) {
            self.fill_requests(now, c);
        }
    }

    /// Stops waiting for every request made to `conn` (with a CANCEL each if `cancel`) and
    /// gives the blocks back to the picker; true if there were any.
    pub(super) fn withdraw_requests(&mut self, now: Instant, conn: ConnId, cancel: bool) -> bool {
        let Some(p) = self.peers.get_mut(conn) else {
            return false;
        };
        let blocks = p.drop_requests(cancel, self.config.max_request_depth, now);
        let (torrent, host) = (p.torrent, p.addr.ip());
        if let Some(t) = torrent.and_then(|id| self.torrents.get_mut(&id)) {
            for b in &blocks {
                t.picker.release(*b);
            }
        }
        if let Some(id) = torrent {
            self.release_exclusive(id, conn, host);
        }
        !blocks.is_empty()
    }

    /// Withdraws, with a CANCEL each, the requests made to `conn` for pieces outside
    /// `inside`, giving their blocks back to the picker (a streaming reader seeked).
    pub(super) fn withdraw_outside(
        &mut self,
        now: Instant,
        conn: ConnId,
        inside: &std::collections::BTreeSet<PieceIndex>,
    ) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let depth = self.config.max_request_depth;
        let blocks = p.drop_requests_where(true, depth, now, |b| !inside.contains(&b.piece));
        if let Some(t) = p.torrent.and_then(|id| self.torrents.get_mut(&id)) {
            for b in &blocks {
                t.picker.release(*b);
            }
        }
    }

    /// The peer choked us. Without BEP 6 that silently drops every request we made.
    pub(super) fn on_choked(&mut self, now: Instant, conn: ConnId, id: TorrentId) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        p.choke.peer_choking = true;
        if !p.fast && self.withdraw_requests(now, conn, false) {
            self.refill(now, id);
        }
    }

    /// The peer will not send a block we asked for (BEP 6).
    pub(super) fn on_rejected(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        block: Block,
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        if !p.fast {
            return Err(ProtocolViolation::RejectWithoutFast);
        }
        if p.take_request(block) {
            let host = p.addr.ip();
            let mut gives_up = false;
            if let Some(t) = self.torrents.get_mut(&id) {
                t.picker.release(block);
                gives_up = t
                    .in_flight()
                    .exclusive
                    .get(&block.piece)
                    .is_some_and(|e| e.owner == Some(conn));
            }
            // A peer that will not serve a piece it took alone gives it up.
            if gives_up {
                self.release_exclusive(id, conn, host);
            }
            self.refill(now, id);
        } else {
            // The answer to a cancel (BEP 6): that block will not come.
            p.was_withdrawn(block);
        }
        Ok(())
    }

    pub(super) fn on_block(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        piece: PieceIndex,
        offset: u32,
        data: Bytes,
    ) -> Result<(), ProtocolViolation> {
        let (Some(p), Some(t)) = (self.peers.get_mut(conn), self.torrents.get_mut(&id)) else {
            return Ok(());
        };
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let block = Block {
            piece,
            offset,
            length,
        };
        // Only a block we asked this peer for (or stopped asking it for, whose data may have
        // been on the wire) is taken. Anything else is forged or a slip: a peer with nothing
        // to offer must not fill our pieces, nor make us cancel an honest peer's request.
        let owned = p.decoder.last_payload_owned();
        let requested = p.take_request(block);
        if !requested && !p.was_withdrawn(block) {
            return if p.slip() {
                Err(ProtocolViolation::TooManyUnrequestedBlocks)
            } else {
                Ok(())
            };
        }
        // In endgame others were asked for this block too; they are told to stop below.
        let duplicates = t.picker.requested_from(block) > u8::from(requested);
        let outcome = t.picker.block_received(block);
        if outcome == BlockReceived::NotWanted {
            return Ok(());
        }
        let cfg = &self.config;
        let depths = (cfg.initial_request_depth, cfg.max_request_depth);
        p.record_block(length, now, cfg.request_queue_seconds, depths);
        let addr = p.addr;
        t.downloaded += u64::from(length);
        self.queue.progressed(id, now);
        let blocks = t.blocks_in(piece);
        let partial = t
            .in_flight_mut()
            .partial_pieces
            .entry(piece)
            .or_insert_with(|| PartialPiece {
                blocks: vec![None; blocks],
            });
        let index = (offset / BLOCK_LEN) as usize;
        if let Some(slot) = partial.blocks.get_mut(index) {
            *slot = Some((self.read_use.keep(data, owned, (id, piece, index)), addr));
        }
        if duplicates {
            self.cancel_elsewhere(now, id, conn, block);
        }
        if outcome == BlockReceived::PieceComplete {
            self.piece_complete(id, piece);
        }
        self.fill_requests(now, conn);
        Ok(())
    }

    /// Endgame: whoever else was asked for a block `conn` delivered is told not to bother.
    fn cancel_elsewhere(&mut self, now: Instant, id: TorrentId, conn: ConnId, block: Block) {
        let max = self.config.max_request_depth;
        for c in self.torrent_conns(id) {
            if c != conn
                && let Some(o) = self.peers.get_mut(c)
            {
                o.cancel_request(block, max, now);
            }
        }
    }

    fn piece_complete(&mut self, id: TorrentId, piece: PieceIndex) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let (Some(partial), Some(hash)) = (
            t.in_flight_mut().partial_pieces.remove(&piece),
            t.meta.piece_hash(piece),
        ) else {
            return;
        };
        let mut blocks = Vec::with_capacity(partial.blocks.len());
        let mut senders = Vec::with_capacity(partial.blocks.len());
        for slot in partial.blocks {
            let Some((data, from)) = slot else {
                // The picker said complete, so every block is here; if not, fetch again.
                t.picker.piece_failed(piece);
                return;
            };
            // A second handle on the same bytes, released when the result comes back.
            senders.push((data.clone(), from));
            blocks.push(data);
        }
        t.in_flight_mut().verifying.insert(piece, senders);
        self.outputs.push_back(Output::VerifyAndStore {
            torrent: id,
            piece,
            hash,
            blocks,
        });
    }

    pub(super) fn on_piece_stored(
        &mut self,
        now: Instant,
        id: TorrentId,
        piece: PieceIndex,
        result: Result<bool, StorageError>,
    ) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let Some(blocks) = t.in_flight_mut().verifying.remove(&piece) else {
            return;
        };
        match result {
            Ok(true) => {
                // With the good data in hand, whoever sent a differing block of an earlier
                // failed attempt sent bad data.
                t.in_flight_mut().exclusive.remove(&piece);
                let culprits = t.smart_ban.piece_passed(piece, &blocks);
                t.picker.piece_passed(piece);
                self.events
                    .push_back(Event::HashPassed { torrent: id, piece });
                self.mark_resume_dirty(now, id);
                for addr in culprits {
                    self.ban(now, id, addr);
                }
                self.after_piece_passed(now, id, piece);
            }
            Ok(false) => {
                t.picker.piece_failed(piece);
                let convicted = t.smart_ban.piece_failed(piece, &blocks);
                let senders = smart_ban::senders(&blocks);
                let hosts: Vec<_> = senders.iter().map(|a| a.ip()).collect();
                self.exclusive_failed(id, piece, &hosts);
                self.events.push_back(Event::HashFailed {
                    torrent: id,
                    piece,
                    peers: senders,
                });
                if let Some(addr) = convicted {
                    self.ban(now, id, addr);
                }
                self.refill(now, id);
            }
            Err(error) => {
                // Verified data could not be written: the piece is fetched again once the
                // torrent is started again.
                t.picker.piece_failed(piece);
                t.in_flight_mut().exclusive.remove(&piece);
                self.storage_failed(now, id, error);
            }
        }
    }

    /// Bans the host of `addr` from the torrent and closes its connections.
    pub(super) fn ban(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        if !t.smart_ban.ban(addr.ip()) {
            return;
        }
        t.candidates.forget_host(addr.ip());
        self.events
            .push_back(Event::PeerBanned { torrent: id, addr });
        let conns: Vec<ConnId> = t
            .conns
            .iter()
            .copied()
            .filter(|c| self.peers.get(*c).is_some_and(|p| p.addr.ip() == addr.ip()))
            .collect();
        for c in conns {
            self.close(now, c, super::CloseReason::Banned);
        }
    }

    pub(super) fn after_piece_passed(&mut self, now: Instant, id: TorrentId, piece: PieceIndex) {
        for c in self.torrent_conns(id) {
            if let Some(p) = self.peers.get_mut(c)
                && p.is_active()
                && !p.pieces.get(piece)
            {
                p.send(&Message::Have(piece), now);
            }
        }
        self.after_have_changed(now, id);
    }

    /// Our pieces or wants changed: interest, completion, seeds to drop.
    pub(super) fn after_have_changed(&mut self, now: Instant, id: TorrentId) {
        for c in self.torrent_conns(id) {
            self.update_interest(now, c);
            self.fill_requests(now, c);
            self.close_if_both_seeds(now, c, id);
        }
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let done = t.picker.is_done();
        let was_done = std::mem::replace(&mut t.was_done, done);
        if done && !was_done {
            self.events.push_back(Event::Complete { torrent: id });
            // A finished download is worth keeping at once: a crash now would otherwise
            // cost a full check at the next start.
            self.save_resume_if_dirty(id);
            if let Some(t) = self.torrents.get_mut(&id)
                && t.state == TorrentState::Started
            {
                t.announcer.completed(now);
                self.announce_due(now, id);
            }
        } else if !done && was_done {
            // Wanting pieces again (a file re-enabled, a piece lost): the seeds we left as
            // "both seeds" are worth calling back now.
            t.candidates.retry_all(now);
            self.connect_more(now, id);
        }
        if done != was_done {
            // A download became a seed or the other way: it changes queues.
            self.rebalance_queue(now);
        }
    }

    /// The connections bound to a torrent, in id order.
    pub(super) fn torrent_conns(&self, id: TorrentId) -> Vec<ConnId> {
        let conns = match self.torrents.get(&id) {
            Some(t) => &t.conns,
            None => match self.fetching.get(&id) {
                Some(f) => &f.conns,
                None => return Vec::new(),
            },
        };
        conns.iter().copied().collect()
    }
}
