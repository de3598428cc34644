//! A connection's life outside its messages: accepted or dialled, connected, timed out,
//! closed.

use std::net::SocketAddr;
use std::time::Instant;

use super::dialing::EndedConnection;
use super::fetching::swarm_of;
use super::timers::{PeerTimer, Timer};
use super::{CloseReason, Event, Output, Session, TorrentId, Transport};
use crate::ConnId;
use crate::wire::Message;

impl Session {
    /// An incoming connection was accepted by the listener. Returns its id; if the session
    /// has no room for it, a [`Output::Close`] for it follows at once.
    pub fn accept(&mut self, now: Instant, addr: SocketAddr) -> ConnId {
        self.utp.tick(now);
        let (conn, full) = self.admit_incoming(now, addr, Transport::Tcp);
        if !self.config.transports.tcp() {
            self.close(now, conn, CloseReason::TransportDisabled);
        } else if full {
            self.close(now, conn, CloseReason::TooManyConnections);
        }
        conn
    }

    /// Makes a connection the peer opened over `transport`; and whether the session is too
    /// full for it, which the caller answers with a close once it can carry one.
    pub(super) fn admit_incoming(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        transport: Transport,
    ) -> (ConnId, bool) {
        let addr = canonical(addr);
        let cfg = &self.config;
        let counts = self.peers.counts();
        let full = counts.incoming >= cfg.max_incoming
            || counts.incoming_handshakes >= cfg.max_incoming_handshakes
            || counts.incoming_handshakes_from(addr.ip()) >= cfg.max_incoming_handshakes_per_host;
        let conn = self
            .peers
            .add_incoming(addr, now, cfg.initial_request_depth);
        let crypto = self.crypto_for_accept();
        if let Some(p) = self.peers.get_mut(conn) {
            p.crypto = crypto;
            p.transport = transport;
        }
        self.timers.set(
            Timer::Peer(conn, PeerTimer::Handshake),
            now + self.config.handshake_timeout,
        );
        (conn, full)
    }

    /// Opens a connection to `addr` for torrent `id`.
    pub(super) fn dial(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        let depth = self.config.initial_request_depth;
        let conn = self.peers.add_outgoing(addr, id, now, depth);
        let crypto = self.crypto_for_dial(id, addr);
        let mut transport = Transport::Tcp;
        if let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id) {
            t.conns.insert(conn);
            transport = t.candidates.transport_for(addr, self.config.transports);
        }
        if let Some(p) = self.peers.get_mut(conn) {
            p.crypto = crypto;
            p.transport = transport;
        }
        // The connect and the handshake share one deadline, set again once connected.
        self.timers.set(
            Timer::Peer(conn, PeerTimer::Handshake),
            now + self.config.handshake_timeout,
        );
        match transport {
            Transport::Tcp => self.outputs.push_back(Output::Connect { conn, addr }),
            Transport::Utp => self.utp_connect(now, conn, addr),
        }
    }

    pub(super) fn on_connected(&mut self, now: Instant, conn: ConnId) {
        if !self.peers.connected(conn, now) {
            return;
        }
        self.timers.set(
            Timer::Peer(conn, PeerTimer::Handshake),
            now + self.config.handshake_timeout,
        );
        self.send_handshake(now, conn);
    }

    /// Closes a connection we decided to drop; what it had queued goes out first.
    pub(super) fn close(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        if !self.peers.flush_one(conn, &mut self.outputs) {
            return;
        }
        self.outputs.push_back(Output::Close {
            conn,
            reason: reason.clone(),
        });
        self.remove_peer(now, conn, Some(reason));
    }

    /// Forgets a connection (closed by us with `reason`, or by the other side with `None`),
    /// giving its requests back to the picker and scheduling the next dial of its address.
    pub(super) fn remove_peer(&mut self, now: Instant, conn: ConnId, reason: Option<CloseReason>) {
        let Some(p) = self.peers.remove(conn) else {
            return;
        };
        self.timers.stop_peer(conn);
        let active = p.is_active();
        if let Some(t) = p.torrent.and_then(|id| self.torrents.get_mut(&id)) {
            for (b, _) in &p.requests {
                t.picker.release(*b);
            }
            if active {
                t.picker.peer_removed(&p.pieces);
            }
        }
        if let Some(f) = p.torrent.and_then(|id| self.fetching.get_mut(&id)) {
            f.fetch.closed(conn);
        }
        let policy = p.torrent.map(|id| self.encryption_for(id));
        let swarm = p
            .torrent
            .and_then(|id| swarm_of(&mut self.torrents, &mut self.fetching, id));
        if let Some(t) = swarm {
            t.conns.remove(&conn);
            t.candidates.host_freed(p.addr.ip());
            if !p.is_incoming() {
                if reason == Some(CloseReason::TorrentStopped) {
                    t.candidates.closed(p.addr, now, None);
                } else if active {
                    let how = EndedConnection {
                        lasted: now.saturating_duration_since(p.connected_at),
                        delivered: p.downloaded > 0,
                        misbehaved: matches!(reason, Some(CloseReason::Protocol(_))),
                        useless: p.snubbed || reason == Some(CloseReason::Inactive),
                        torrent_done: t.is_done(),
                        peer_seed: p.is_seed(),
                    };
                    t.candidates.closed(p.addr, now, Some(how));
                } else if p.transport == Transport::Utp && p.phase == super::peer::Phase::Connecting
                {
                    // No uTP answer: a peer that speaks only TCP, or a path that drops UDP.
                    // Dial it again at once over TCP if we may.
                    let redial = self.config.transports.tcp();
                    t.candidates.refuses_utp(p.addr, now, redial);
                } else if p.crypto.is_initiating() && p.phase != super::peer::Phase::Connecting {
                    // Connected, and our MSE handshake went unanswered: a peer that speaks
                    // only plaintext. Dial it again at once in plaintext if we may.
                    let redial = policy == Some(crate::mse::Encryption::Enabled);
                    t.candidates.refuses_mse(p.addr, now, redial);
                } else if p.phase != super::peer::Phase::Connecting {
                    // It took the connection and closed it before its handshake: full.
                    t.candidates.busy(p.addr, now);
                } else {
                    t.candidates.dial_failed(p.addr, now);
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
            self.release_exclusive(id, conn, p.addr.ip());
            if !p.requests.is_empty() {
                self.refill(now, id);
            }
            // A freed slot may let another peer in.
            self.connect_more(now, id);
            // Metadata pieces it was asked for go to others.
            self.request_metadata(now, id);
        }
    }

    /// A deadline of a connection came; each is checked against the real time it is due,
    /// which may have moved on since it was set.
    pub(super) fn on_peer_timer(&mut self, now: Instant, conn: ConnId, timer: PeerTimer) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let cfg = &self.config;
        match timer {
            PeerTimer::Handshake => {
                if !p.is_active() {
                    self.close(now, conn, CloseReason::Inactive);
                }
            }
            PeerTimer::Inactivity => {
                let due = p.last_received + cfg.inactivity_timeout;
                if now >= due {
                    self.close(now, conn, CloseReason::Inactive);
                } else {
                    self.timers.set(Timer::Peer(conn, timer), due);
                }
            }
            PeerTimer::KeepAlive => {
                if now >= p.last_sent + cfg.keepalive_interval {
                    p.send(&Message::KeepAlive, now);
                }
                let next = p.last_sent + cfg.keepalive_interval;
                self.timers.set(Timer::Peer(conn, timer), next);
            }
            PeerTimer::Pex => self.on_pex_timer(now, conn),
            PeerTimer::Request => {
                if p.requests.is_empty() {
                    return;
                }
                let due = p.last_block + cfg.request_timeout;
                if now < due {
                    self.timers.set(Timer::Peer(conn, timer), due);
                    return;
                }
                // Snubbed: its blocks go to other peers; it keeps a single request.
                p.snubbed = true;
                let torrent = p.torrent;
                self.withdraw_requests(now, conn, true);
                if let Some(id) = torrent {
                    self.refill(now, id);
                }
            }
        }
    }
}

/// The address as the rest of the engine compares it: an IPv4 peer reached over IPv6
/// (`::ffff:a.b.c.d`) is the IPv4 host, so bans, limits and the self-connection check see
/// one host, not two.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
