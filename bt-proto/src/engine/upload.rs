//! Uploading: checking and queueing a peer's requests, reading and sending blocks, and the
//! choke rounds that decide who is served.

use std::time::Instant;

use bytes::Bytes;

use super::rate_limits::Way;
use super::timers::{Timer, TorrentTimer};
use super::{Output, ProtocolViolation, Session, StorageError, TorrentId, TorrentState};
use crate::ConnId;
use crate::choker::{ChokeChange, Mode as ChokeMode, PeerSnapshot};
use crate::picker::{BLOCK_LEN, Block};
use crate::wire::encode_piece_header;

impl Session {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        b: Block,
    ) -> Result<(), ProtocolViolation> {
        let (Some(p), Some(t)) = (self.peers.get_mut(conn), self.torrents.get(&id)) else {
            return Ok(());
        };
        let piece_len = t.piece_len(b.piece);
        if b.piece.0 >= t.piece_count()
            || b.length == 0
            || b.length > BLOCK_LEN
            || u64::from(b.offset) + u64::from(b.length) > u64::from(piece_len)
        {
            return Err(ProtocolViolation::RequestOutOfBounds(b));
        }
        if t.state != TorrentState::Started || p.choke.am_choking {
            // A request racing our CHOKE is normal; BEP 6 asks for a reject.
            p.reject(b, now);
            return Ok(());
        }
        if !t.picker.have().get(b.piece) {
            // We never serve data we do not have (the seed client served zeros).
            if p.slip() {
                return Err(ProtocolViolation::TooManyRequestsForMissingPieces);
            }
            p.reject(b, now);
            return Ok(());
        }
        if p.their_requests.len() + p.reading.len() >= self.config.max_peer_requests {
            p.reject(b, now);
            return Ok(());
        }
        if p.their_requests.contains(&b) || p.reading.contains(&b) {
            return Ok(());
        }
        p.their_requests.push_back(b);
        self.pump_reads(now, id, conn);
        Ok(())
    }

    /// Starts reads of a peer's queued requests, up to the reads allowed in flight and what
    /// the rate limits allow.
    fn pump_reads(&mut self, now: Instant, id: TorrentId, conn: ConnId) {
        self.start_reads(now, id, conn, false);
    }

    /// One read of a peer's, its turn in the rate limits' queue; whether it started.
    pub(super) fn pump_reads_turn(&mut self, now: Instant, id: TorrentId, conn: ConnId) -> bool {
        self.start_reads(now, id, conn, true)
    }

    /// Starts reads; on its `turn`, one at most. A peer the limits hold back waits for its
    /// turn (see `rate_limits`). Whether any started.
    fn start_reads(&mut self, now: Instant, id: TorrentId, conn: ConnId, turn: bool) -> bool {
        let Some(p) = self.peers.get_mut(conn) else {
            return false;
        };
        let limited = self.limits.covers(id, p.addr, Way::Up);
        let (mut started, mut held) = (false, false);
        let mut serving = p.serving();
        while p.reading.len() < self.config.max_reads_in_flight && !p.their_requests.is_empty() {
            if !p.send_window.has_room(now, serving) {
                // Held under the send watermark: `Input::Written`, a finished read or a
                // CANCEL brings it back here.
                break;
            }
            if limited {
                // Outside its turn a peer queues behind those already waiting.
                held = if turn {
                    started
                } else {
                    self.limits.someone_waits(Way::Up)
                } || self.limits.available(now, id, Way::Up) == 0;
                if held {
                    break;
                }
            }
            let Some(block) = p.their_requests.pop_front() else {
                break;
            };
            if limited {
                self.limits.take(now, id, Way::Up, block.length);
            }
            p.reading.push(block);
            serving += u64::from(block.length);
            started = true;
            self.outputs.push_back(Output::ReadBlock {
                torrent: id,
                conn,
                block,
            });
        }
        if held {
            self.wait_for_tokens(now, id, conn, Way::Up);
        }
        started
    }

    /// The transport of `conn` took `bytes` (see [`super::Input::Written`]): its held
    /// requests may be served.
    pub(super) fn on_written(&mut self, now: Instant, conn: ConnId, bytes: usize) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        p.send_window.written(now, bytes as u64);
        if let Some(id) = p.torrent
            && !p.their_requests.is_empty()
        {
            self.pump_reads(now, id, conn);
        }
    }

    /// The peer withdrew a request. One still queued or being read is dropped and, for a
    /// BEP 6 peer, rejected: with the fast extension a CANCEL is answered by the block or a
    /// reject, and the peer may wait for one. The room it took may serve the next request.
    pub(super) fn on_cancel(&mut self, now: Instant, conn: ConnId, id: TorrentId, b: Block) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let before = p.their_requests.len() + p.reading.len();
        p.their_requests.retain(|x| *x != b);
        // A read in flight is dropped when it returns.
        p.reading.retain(|x| *x != b);
        if p.their_requests.len() + p.reading.len() < before {
            p.reject(b, now);
            self.pump_reads(now, id, conn);
        }
    }

    pub(super) fn on_block_read(
        &mut self,
        now: Instant,
        id: TorrentId,
        conn: ConnId,
        block: Block,
        data: Result<Bytes, StorageError>,
    ) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let Some(i) = p.reading.iter().position(|b| *b == block) else {
            // Cancelled, or the peer was choked meanwhile.
            return;
        };
        p.reading.swap_remove(i);
        match data {
            // Still in `reading`: neither cancelled nor dropped by a choke or a pause.
            Ok(data) if data.len() == block.length as usize => {
                if let Ok(header) = encode_piece_header(block.piece, block.offset, data.len()) {
                    p.send_piece(header, data, now);
                    p.up.record(now, u64::from(block.length));
                    p.uploaded += u64::from(block.length);
                    if let Some(t) = self.torrents.get_mut(&id) {
                        t.uploaded += u64::from(block.length);
                    }
                }
            }
            Ok(data) => {
                p.reject(block, now);
                let error = StorageError::ShortRead {
                    piece: block.piece,
                    offset: block.offset,
                    wanted: block.length,
                    got: data.len(),
                };
                self.storage_failed(now, id, error);
            }
            Err(error) => {
                p.reject(block, now);
                self.storage_failed(now, id, error);
            }
        }
        self.pump_reads(now, id, conn);
    }

    pub(super) fn set_choking(&mut self, now: Instant, conn: ConnId, choke: bool) {
        if let Some(p) = self.peers.get_mut(conn) {
            p.set_choking(choke, now);
        }
    }

    /// An interested peer gets a free upload slot at once rather than at the next round.
    pub(super) fn maybe_unchoke_now(&mut self, now: Instant, id: TorrentId, conn: ConnId) {
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        if t.state != TorrentState::Started {
            return;
        }
        let unchoked = t
            .conns
            .iter()
            .filter(|c| self.peers.get(**c).is_some_and(|p| !p.choke.am_choking))
            .count();
        if unchoked < self.config.upload_slots {
            self.set_choking(now, conn, false);
        }
    }

    /// A peer of torrent `id` finished its handshake: if the torrent's choke rounds had
    /// stopped for want of peers, the next one is due when it would have been (at once, if
    /// that time has passed).
    pub(super) fn resume_choke_rounds(&mut self, now: Instant, id: TorrentId) {
        let timer = Timer::Torrent(id, TorrentTimer::ChokeRound);
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        if t.state == TorrentState::Started && self.timers.deadline(timer).is_none() {
            self.timers.set(timer, t.choker.next_round(now).max(now));
        }
    }

    /// Runs the torrent's choke round and schedules the next one.
    ///
    /// A seed with no peer past its handshake has nobody to choke or unchoke and nothing to
    /// redial for: its rounds stop until a peer arrives ([`Session::resume_choke_rounds`]).
    /// A seedbox's thousands of idle torrents would otherwise wake the session a thousand
    /// times a second between them. A leecher keeps its rounds, which also redial when it is
    /// stuck ([`Session::redial_if_stuck`]).
    pub(super) fn choke_round(&mut self, now: Instant, id: TorrentId) {
        self.redial_if_stuck(now, id);
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.state != TorrentState::Started {
            return;
        }
        let peers = &self.peers;
        let alone = !t
            .conns
            .iter()
            .any(|c| peers.get(*c).is_some_and(|p| p.is_active()));
        if alone && t.picker.is_done() {
            self.timers
                .stop(Timer::Torrent(id, TorrentTimer::ChokeRound));
            return;
        }
        let mode = if t.picker.is_done() {
            ChokeMode::Seeding
        } else {
            ChokeMode::Leeching
        };
        t.choker.set_mode(mode);
        let snapshot: Vec<PeerSnapshot> = t
            .conns
            .iter()
            .filter_map(|c| self.peers.get(*c))
            .filter(|p| p.is_active())
            .map(|p| PeerSnapshot {
                id: p.conn,
                interested: p.choke.peer_interested,
                rate: match mode {
                    ChokeMode::Leeching => p.down.rate(now),
                    ChokeMode::Seeding => p.up.rate(now),
                },
                unchoked: !p.choke.am_choking,
                connected_at: p.connected_at,
                snubbed: p.snubbed,
            })
            .collect();
        if mode == ChokeMode::Leeching {
            let mut rates: Vec<u64> = snapshot.iter().map(|p| p.rate).collect();
            rates.sort_unstable();
            t.median_rate = rates.get(rates.len() / 2).copied().unwrap_or(0);
        }
        let decision = t.choker.run(now, &snapshot, &mut self.rng);
        let next_round = t.choker.next_round(now);
        self.timers
            .set(Timer::Torrent(id, TorrentTimer::ChokeRound), next_round);
        for change in decision.changes {
            let (c, choke) = match change {
                ChokeChange::Choke(c) => (c, true),
                ChokeChange::Unchoke(c) => (c, false),
            };
            self.set_choking(now, c, choke);
        }
        for p in &snapshot {
            if let Some(peer) = self.peers.get_mut(p.id) {
                peer.optimistic = decision.optimistic == Some(p.id);
            }
        }
    }
}
