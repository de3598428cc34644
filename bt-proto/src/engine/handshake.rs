//! The handshake: route an incoming connection to its torrent, admit the peer, activate the
//! connection, and send the piece summary.

use std::time::Instant;

use bytes::Bytes;

use super::fetching::swarm_of;
use super::timers::{PeerTimer, Timer};
use super::{CloseReason, Event, Session, TorrentId};
use crate::wire::{Extension, Handshake, Message, Progress, Reserved};
use crate::{Bitfield, ConnId};

use super::peer::{Peer, Phase};

impl Session {
    /// Sends our handshake on a connection whose torrent is known.
    pub(super) fn send_handshake(&mut self, now: Instant, conn: ConnId) {
        let torrent = self.peers.get(conn).and_then(|p| p.torrent);
        let Some(info_hash) = torrent.and_then(|t| self.info_hash_of(t)) else {
            return;
        };
        let hs = Handshake {
            reserved: self.our_reserved(),
            info_hash,
            peer_id: self.config.peer_id,
        };
        let encoded = hs.encode();
        let in_mse = self.start_mse(conn, info_hash, &encoded);
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        if in_mse {
            p.last_sent = now;
        } else {
            p.send_raw(&encoded, now);
        }
        if let Phase::Handshaking { sent } = &mut p.phase {
            *sent = true;
        }
    }

    /// Handshake bytes arrived: route, then admit and activate once the handshake is whole.
    pub(super) fn on_handshake_bytes(&mut self, now: Instant, conn: ConnId) {
        if let Err(reason) = self.try_handshake(now, conn) {
            self.close(now, conn, reason);
        }
    }

    fn try_handshake(&mut self, now: Instant, conn: ConnId) -> Result<(), CloseReason> {
        let routed = self.peers.get(conn).is_some_and(|p| p.torrent.is_some());
        if !routed && !self.route_incoming(now, conn)? {
            return Ok(());
        }
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        let hs = match p.decoder.decode_handshake() {
            Ok(Progress::NeedMore(_)) => return Ok(()),
            Ok(Progress::Done(hs)) => hs,
            Err(e) => return Err(CloseReason::Protocol(e.into())),
        };
        let (id, replaces) = self.admit(conn, &hs)?;
        if let Some(old) = replaces {
            self.close(now, old, CloseReason::Duplicate);
        }
        self.activate(now, conn, id, &hs);
        Ok(())
    }

    /// An incoming connection names its torrent in its first 48 bytes, before the peer id:
    /// bind it to that torrent and answer with our handshake at once. False while those
    /// bytes have not all arrived.
    fn route_incoming(&mut self, now: Instant, conn: ConnId) -> Result<bool, CloseReason> {
        let Some(p) = self.peers.get(conn) else {
            return Ok(false);
        };
        let prefix = match p.decoder.peek_handshake_prefix() {
            Ok(Progress::NeedMore(_)) => return Ok(false),
            Ok(Progress::Done(prefix)) => prefix,
            Err(e) => return Err(CloseReason::Protocol(e.into())),
        };
        let id = self
            .torrent_by_info_hash(&prefix.info_hash)
            .ok_or(CloseReason::UnknownTorrent)?;
        self.check_encryption(conn, id, &prefix.info_hash)?;
        let t = swarm_of(&mut self.torrents, &mut self.fetching, id)
            .filter(|t| t.state.in_swarm())
            .ok_or(CloseReason::UnknownTorrent)?;
        if t.conns.len() >= self.config.max_connections_per_torrent {
            return Err(CloseReason::TooManyConnections);
        }
        t.conns.insert(conn);
        if let Some(p) = self.peers.get_mut(conn) {
            p.torrent = Some(id);
        }
        self.send_handshake(now, conn);
        Ok(true)
    }

    /// Whether the peer behind a whole handshake may join its torrent, and the connection it
    /// replaces if any; the close reason if not.
    fn admit(
        &mut self,
        conn: ConnId,
        hs: &Handshake,
    ) -> Result<(TorrentId, Option<ConnId>), CloseReason> {
        let Some(p) = self.peers.get(conn) else {
            return Err(CloseReason::UnknownTorrent);
        };
        let (addr, incoming) = (p.addr, p.is_incoming());
        let id = p.torrent.ok_or(CloseReason::UnknownTorrent)?;
        let t = swarm_of(&mut self.torrents, &mut self.fetching, id)
            .ok_or(CloseReason::UnknownTorrent)?;
        if hs.info_hash != t.info_hash {
            return Err(CloseReason::UnknownTorrent);
        }
        if hs.peer_id == self.config.peer_id {
            if !incoming {
                self.self_addrs.insert(addr);
                t.candidates.forget(addr);
            }
            return Err(CloseReason::SelfConnection);
        }
        if t.smart_ban.is_banned(addr.ip()) {
            return Err(CloseReason::Banned);
        }
        let mut same_host = 0;
        for o in t.conns.iter().filter_map(|c| self.peers.get(*c)) {
            if o.conn == conn || !o.is_active() {
                continue;
            }
            if o.peer_id == Some(hs.peer_id) {
                // Both sides dialled each other at once. Both keep the connection opened by
                // the peer with the lower id, so exactly one survives on both ends.
                let ours_wins = self.config.peer_id.0 < hs.peer_id.0;
                let keep_new = incoming != ours_wins && o.is_incoming() != incoming;
                return if keep_new {
                    Ok((id, Some(o.conn)))
                } else {
                    Err(CloseReason::Duplicate)
                };
            }
            if o.addr.ip() == addr.ip() {
                same_host += 1;
            }
        }
        // Only handshaken connections count: two peers dialling each other at once both
        // get through the handshake, and the rule above keeps one.
        if same_host >= self.config.max_connections_per_host {
            return Err(CloseReason::TooManyConnections);
        }
        Ok((id, None))
    }

    /// The handshake is done: the connection is a peer of torrent `id`.
    fn activate(&mut self, now: Instant, conn: ConnId, id: TorrentId, hs: &Handshake) {
        // `None` while the torrent fetches its metadata: what the peer has waits in
        // `early_pieces` until the count is known.
        let pieces = match self.torrents.get(&id) {
            Some(t) => Some(t.piece_count()),
            None if self.fetching.contains_key(&id) => None,
            None => return,
        };
        let sent = self
            .peers
            .get(conn)
            .is_some_and(|p| matches!(p.phase, Phase::Handshaking { sent: true }));
        if !sent {
            self.send_handshake(now, conn);
        }
        let common = self.our_reserved().common(hs.reserved);
        let dht = common.has(Extension::Dht);
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        p.peer_id = Some(hs.peer_id);
        p.fast = common.has(Extension::Fast);
        p.extended = common.has(Extension::ExtensionProtocol);
        p.decoder.set_piece_count(pieces);
        p.pieces = Bitfield::new(pieces.unwrap_or(0));
        let (addr, incoming, extended) = (p.addr, p.is_incoming(), p.extended);
        let (last_received, last_sent) = (p.last_received, p.last_sent);
        self.peers.activate(conn);
        self.timers.stop(Timer::Peer(conn, PeerTimer::Handshake));
        self.timers.set(
            Timer::Peer(conn, PeerTimer::Inactivity),
            last_received + self.config.inactivity_timeout,
        );
        self.timers.set(
            Timer::Peer(conn, PeerTimer::KeepAlive),
            last_sent + self.config.keepalive_interval,
        );
        self.send_piece_summary(now, conn, id);
        self.resume_choke_rounds(now, id);
        if dht {
            self.send_dht_port(now, conn);
        }
        if extended {
            self.send_extension_handshake(now, conn, id);
        }
        let utp = self.peers.get(conn).map(|p| p.transport) == Some(super::Transport::Utp);
        if let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) {
            if !incoming {
                t.candidates.handshook(addr);
            }
            // A uTP peer's source port is its UDP port, which clients keep equal to their
            // listening port: the address, if known, is one to dial over uTP.
            if utp {
                t.candidates.speaks_utp(addr);
            }
        }
        self.events.push_back(Event::PeerConnected {
            torrent: id,
            conn,
            addr,
            peer_id: hs.peer_id,
        });
    }

    /// The extensions our handshakes offer: the DHT bit only with a node to talk to.
    fn our_reserved(&self) -> Reserved {
        let ours = Peer::our_reserved();
        if self.runs_dht() {
            ours.with(Extension::Dht)
        } else {
            ours
        }
    }

    /// BEP 6: the piece summary must directly follow the handshake.
    fn send_piece_summary(&mut self, now: Instant, conn: ConnId, id: TorrentId) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let Some(t) = self.torrents.get(&id) else {
            // Fetching the metadata, we have nothing; HAVE NONE says so where it must be
            // said, and without BEP 6 saying nothing is allowed.
            if p.fast {
                p.send(&Message::HaveNone, now);
            }
            return;
        };
        let have = t.picker.have();
        let summary = if p.fast && have.is_full() {
            Message::HaveAll
        } else if have.count() == 0 {
            if !p.fast {
                // Without the fast extension an empty bitfield may be omitted (BEP 3).
                return;
            }
            Message::HaveNone
        } else {
            Message::Bitfield(Bytes::copy_from_slice(have.as_bytes()))
        };
        p.send(&summary, now);
    }
}
