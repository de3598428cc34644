//! Every connection of a session, by id, and the bytes they have queued.
//!
//! Connection ids are made here and only here. Mutable access to a peer may queue bytes for
//! it, so it puts the peer on the flush list; [`Peers::flush_into`] turns each listed peer's
//! bytes into one [`Output::Send`] when the adapter next polls. A connection we close is
//! flushed first ([`Peers::flush_one`]), so its last messages go out before the close.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;

use super::io::{Output, TorrentId};
use super::peer::{Peer, Phase};
use crate::ConnId;

/// How many connections of each kind exist, kept up to date as they change so that checking
/// a limit costs nothing.
#[derive(Debug, Default)]
pub(crate) struct ConnCounts {
    /// Connections accepted by our listener, in any phase.
    pub incoming: usize,
    /// Connections we dialled, in any phase.
    pub outgoing: usize,
    /// Outbound connections still waiting for their TCP connect.
    pub connecting: usize,
    /// Inbound connections whose handshake is not done.
    pub incoming_handshakes: usize,
    /// Inbound connections whose handshake is not done, by host.
    handshakes_by_host: BTreeMap<IpAddr, usize>,
}

impl ConnCounts {
    /// Inbound connections from `ip` whose handshake is not done.
    pub fn incoming_handshakes_from(&self, ip: IpAddr) -> usize {
        self.handshakes_by_host.get(&ip).copied().unwrap_or(0)
    }

    fn handshake_started(&mut self, ip: IpAddr) {
        self.incoming_handshakes += 1;
        *self.handshakes_by_host.entry(ip).or_insert(0) += 1;
    }

    fn handshake_ended(&mut self, ip: IpAddr) {
        self.incoming_handshakes = self.incoming_handshakes.saturating_sub(1);
        if let Some(n) = self.handshakes_by_host.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.handshakes_by_host.remove(&ip);
            }
        }
    }
}

/// The connections of a session.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    /// Boxed, so that the map's nodes hold keys and pointers only: a lookup (several per
    /// received buffer) reads a few cache lines instead of striding over nodes of eleven
    /// whole peers (11 KiB); it was 60 % of the engine's receive path in the simulator.
    by_conn: BTreeMap<ConnId, Box<Peer>>,
    next_conn: u64,
    /// Connections that may have bytes queued since the last flush.
    to_flush: Vec<ConnId>,
    counts: ConnCounts,
}

impl Peers {
    fn next_id(&mut self) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        c
    }

    /// Adds a connection accepted by our listener.
    pub fn add_incoming(&mut self, addr: SocketAddr, now: Instant, depth: usize) -> ConnId {
        let conn = self.next_id();
        self.by_conn
            .insert(conn, Box::new(Peer::incoming(conn, addr, now, depth)));
        self.counts.incoming += 1;
        self.counts.handshake_started(addr.ip());
        conn
    }

    /// Adds a connection we dial for `torrent`.
    pub fn add_outgoing(
        &mut self,
        addr: SocketAddr,
        torrent: TorrentId,
        now: Instant,
        depth: usize,
    ) -> ConnId {
        let conn = self.next_id();
        self.by_conn.insert(
            conn,
            Box::new(Peer::outgoing(conn, addr, torrent, now, depth)),
        );
        self.counts.outgoing += 1;
        self.counts.connecting += 1;
        conn
    }

    /// An outbound connection's TCP connect finished: it handshakes now. False if it was not
    /// waiting for one.
    pub fn connected(&mut self, conn: ConnId, now: Instant) -> bool {
        let Some(p) = self.by_conn.get_mut(&conn) else {
            return false;
        };
        if p.phase != Phase::Connecting {
            return false;
        }
        self.counts.connecting = self.counts.connecting.saturating_sub(1);
        p.phase = Phase::Handshaking { sent: false };
        p.connected_at = now;
        p.last_received = now;
        true
    }

    /// The handshake of `conn` is done: messages flow.
    pub fn activate(&mut self, conn: ConnId) {
        let Some(p) = self.by_conn.get_mut(&conn) else {
            return;
        };
        if p.phase == Phase::Active {
            return;
        }
        p.phase = Phase::Active;
        if p.is_incoming() {
            self.counts.handshake_ended(p.addr.ip());
        }
    }

    pub fn get(&self, conn: ConnId) -> Option<&Peer> {
        self.by_conn.get(&conn).map(Box::as_ref)
    }

    /// A peer to change; it is flushed at the next poll.
    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        let p = self.by_conn.get_mut(&conn)?;
        if !p.flush_queued {
            p.flush_queued = true;
            self.to_flush.push(conn);
        }
        Some(p)
    }

    /// Queues what one connection has to send now (before its close); false if there is no
    /// such connection.
    pub fn flush_one(&mut self, conn: ConnId, out: &mut VecDeque<Output>) -> bool {
        match self.by_conn.get_mut(&conn) {
            Some(p) => {
                push_send(p, out);
                true
            }
            None => false,
        }
    }

    /// Forgets a connection; bytes it had queued are dropped.
    pub fn remove(&mut self, conn: ConnId) -> Option<Peer> {
        let p = *self.by_conn.remove(&conn)?;
        let c = &mut self.counts;
        if p.is_incoming() {
            c.incoming = c.incoming.saturating_sub(1);
            if !p.is_active() {
                c.handshake_ended(p.addr.ip());
            }
        } else {
            c.outgoing = c.outgoing.saturating_sub(1);
            if p.phase == Phase::Connecting {
                c.connecting = c.connecting.saturating_sub(1);
            }
        }
        Some(p)
    }

    /// Turns the queued bytes of every peer changed since the last call into sends.
    pub fn flush_into(&mut self, out: &mut VecDeque<Output>) {
        // The list is emptied in place: it fills again after nearly every input, and a new
        // one would be allocated each time.
        let mut queued = std::mem::take(&mut self.to_flush);
        for conn in queued.drain(..) {
            if let Some(p) = self.by_conn.get_mut(&conn) {
                p.flush_queued = false;
                push_send(p, out);
            }
        }
        self.to_flush = queued;
    }

    /// Every connection, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Peer> + Clone {
        self.by_conn.values().map(Box::as_ref)
    }

    /// How many connections of each kind there are.
    pub fn counts(&self) -> &ConnCounts {
        &self.counts
    }
}

fn push_send(p: &mut Peer, out: &mut VecDeque<Output>) {
    let bufs = p.take_output();
    if !bufs.is_empty() {
        let n: usize = bufs.iter().map(Bytes::len).sum();
        p.send_window.handed(n as u64);
        out.push_back(Output::Send { conn: p.conn, bufs });
    }
}
