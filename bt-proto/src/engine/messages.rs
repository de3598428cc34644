//! Messages from an active peer: what it has, what it wants, and our interest in it.

use std::time::Instant;

use bytes::Bytes;

use super::peer::{MAX_ALLOWED_FAST, Phase};
use super::{CloseReason, ProtocolViolation, Session, TorrentId, TorrentState};
use crate::wire::Message;
use crate::{Bitfield, ConnId, PieceIndex};

impl Session {
    pub(super) fn on_received(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        self.on_received_parts(now, conn, [data], false);
    }

    /// What `Input::Received` does for several reads of `conn` in order, the last at `now`:
    /// the simulator's hand-over of held bytes with those that complete a message, as the
    /// buffers the peer wrote them in. The held ones complete no message
    /// ([`Session::inert_bytes`]), so their own arrival times could not be seen, and one
    /// input for them all decodes what one input each would. A block that came as a buffer
    /// of its own is kept as that buffer (a slice of the sender's).
    #[cfg(feature = "sim")]
    pub(crate) fn receive_parts(
        &mut self,
        now: Instant,
        conn: ConnId,
        parts: impl IntoIterator<Item = Bytes>,
    ) {
        self.utp.tick(now);
        self.on_received_parts(now, conn, parts, true);
    }

    /// Feeds `parts` in order and decodes them. Decoding is the same whatever the cuts
    /// between reads. A peer past its handshake has the messages of each part decoded
    /// before the next is fed: fed behind them, the next would have the decoder copy them
    /// aside (a whole block, where the simulator hands over the buffers a peer wrote).
    fn on_received_parts(
        &mut self,
        now: Instant,
        conn: ConnId,
        parts: impl IntoIterator<Item = Bytes>,
        as_written: bool,
    ) {
        if let Some(p) = self.peers.get_mut(conn) {
            p.last_received = now;
        }
        let mut fed = None;
        for data in parts {
            // Nothing to feed yet (an incoming stream still telling plaintext from MSE), or
            // the connection was closed.
            let Some(data) = self.unseal(now, conn, data) else {
                continue;
            };
            let Some(p) = self.peers.get(conn) else {
                return;
            };
            if let Some(len) = fed
                && p.is_active()
                && p.decoder.buffered() > 0
            {
                self.decode_fed(now, conn, len, as_written);
            }
            let Some(p) = self.peers.get_mut(conn) else {
                return;
            };
            fed = Some(data.len());
            p.decoder.feed_bytes(data);
        }
        if let Some(len) = fed {
            self.decode_fed(now, conn, len, as_written);
        }
    }

    /// Handles what was fed to `conn`'s decoder, the last read `len` bytes long: the
    /// handshake, then each message in turn.
    fn decode_fed(&mut self, now: Instant, conn: ConnId, len: usize, as_written: bool) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        self.read_use.start(len, as_written);
        if let Phase::Handshaking { .. } = p.phase {
            self.on_handshake_bytes(now, conn);
        }
        // Each message may close the connection (a violation, a ban, both sides seeds).
        while let Some(p) = self.peers.get_mut(conn).filter(|p| p.is_active()) {
            let result = match p.decoder.next_message() {
                Ok(Some(msg)) => self.on_message(now, conn, msg),
                Ok(None) => break,
                Err(e) => Err(e.into()),
            };
            if let Err(violation) = result {
                self.close(now, conn, CloseReason::Protocol(violation));
                break;
            }
        }
        self.release_sparse_read();
    }

    /// The most bytes `conn` can receive next that the session would only buffer: fewer
    /// than its decoder needs to finish the next message or its header. Handed over later
    /// (at the arrival time of the last of them), and before anything else could look at
    /// the peer, they change nothing the session does; only a query in between sees an older
    /// `last_received` and fewer undecoded bytes. The simulator holds such bytes back to
    /// spare the session an input per segment.
    ///
    /// 0 unless the peer is active on a torrent with metadata (a handshake acts on partial
    /// bytes, and the metadata changes what a bitfield may be) and its stream is plain
    /// messages, in clear or in RC4 (which deciphers the same bytes the same in any cuts).
    /// Besides this peer's own `Received`, `last_received` is read only by its timers and by
    /// queries: the simulator (`sim::swarm`) hands held bytes over before a node's timers and
    /// commands, and a new reader must be one of those or flush them too.
    #[cfg(feature = "sim")]
    pub(crate) fn inert_bytes(&self, conn: ConnId) -> usize {
        use super::encryption::Crypto;
        let Some(p) = self.peers.get(conn).filter(|p| p.is_active()) else {
            return 0;
        };
        let plain = matches!(
            p.crypto,
            Crypto::Plain | Crypto::Obfuscated | Crypto::Rc4 { .. }
        );
        match p.torrent {
            Some(id) if plain && !self.fetching.contains_key(&id) => {
                p.decoder.bytes_needed().saturating_sub(1)
            }
            _ => 0,
        }
    }

    fn on_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        msg: Message,
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        let Some(id) = p.torrent else {
            return Ok(());
        };
        let first = !p.sent_first_message;
        // Some clients send their extension handshake before the piece summary; tolerate it.
        if !matches!(msg, Message::KeepAlive | Message::Extended { .. }) {
            p.sent_first_message = true;
        }
        if self.fetching.contains_key(&id) {
            return self.on_message_while_fetching(now, conn, id, msg, first);
        }
        match msg {
            Message::Port(port) => self.on_dht_port(now, conn, port),
            Message::KeepAlive | Message::Suggest(_) => {}
            Message::Unknown { .. } => {}
            Message::Choke => self.on_choked(now, conn, id),
            Message::Unchoke => {
                p.choke.peer_choking = false;
                self.fill_requests(now, conn);
            }
            Message::Interested => {
                p.choke.peer_interested = true;
                self.maybe_unchoke_now(now, id, conn);
            }
            Message::NotInterested => p.choke.peer_interested = false,
            Message::Have(piece) => {
                let pieces = p.pieces.len();
                if piece.0 >= pieces {
                    return Err(ProtocolViolation::HaveOutOfRange { piece, pieces });
                }
                self.add_peer_pieces(now, conn, id, [piece]);
            }
            Message::Bitfield(bytes) => {
                let b = Bitfield::from_bytes(&bytes, p.pieces.len())?;
                if first {
                    self.set_peer_pieces(now, conn, id, b);
                } else {
                    // BEP 3 allows a bitfield only first, but aria2 sends one in place of a
                    // run of HAVEs whenever it is the shorter message (libtorrent and
                    // transmission accept that): it adds the pieces it lists, as those HAVEs
                    // would. Bits it leaves clear are ignored: a peer does not lose pieces.
                    self.add_peer_pieces(now, conn, id, b.iter_ones());
                }
            }
            Message::HaveAll | Message::HaveNone => {
                if !p.fast || !first {
                    return Err(ProtocolViolation::UnexpectedPieceSummary);
                }
                let n = p.pieces.len();
                let b = if msg == Message::HaveAll {
                    Bitfield::full(n)
                } else {
                    Bitfield::new(n)
                };
                self.set_peer_pieces(now, conn, id, b);
            }
            Message::Request(block) => self.on_request(now, conn, id, block)?,
            Message::Cancel(block) => self.on_cancel(now, conn, id, block),
            Message::RejectRequest(block) => self.on_rejected(now, conn, id, block)?,
            Message::AllowedFast(piece) => {
                if piece.0 < p.pieces.len()
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
            } => self.on_block(now, conn, id, piece, offset, data)?,
            Message::Extended { id: ext, payload } => {
                self.on_extended(now, conn, id, ext, payload)?
            }
        }
        Ok(())
    }

    /// Records `pieces` (in range) as the peer's, from a HAVE or a later BITFIELD.
    fn add_peer_pieces(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        pieces: impl IntoIterator<Item = PieceIndex>,
    ) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        for piece in pieces {
            if p.pieces.set(piece, true)
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
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        if let Some(t) = self.torrents.get_mut(&id) {
            t.picker.peer_removed(&p.pieces);
            t.picker.peer_added(&b);
        }
        p.pieces = b;
        self.update_interest(now, conn);
        self.close_if_both_seeds(now, conn, id);
    }

    pub(super) fn close_if_both_seeds(&mut self, now: Instant, conn: ConnId, id: TorrentId) {
        let we_seed = self
            .torrents
            .get(&id)
            .is_some_and(|t| t.picker.have().is_full());
        if we_seed && self.peers.get(conn).is_some_and(|p| p.is_seed()) {
            self.close(now, conn, CloseReason::BothSeeds);
        }
    }

    /// Sends INTERESTED / NOT INTERESTED when our interest changes.
    pub(super) fn update_interest(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let Some(t) = p.torrent.and_then(|id| self.torrents.get(&id)) else {
            return;
        };
        let interested = t.state == TorrentState::Started && t.picker.is_interesting(&p.pieces);
        p.set_interested(interested, now);
    }
}
