//! Every connection of a session, by id, and the bytes they have queued.
//!
//! Connection ids are made here and only here. Mutable access to a peer may queue bytes for
//! it, so it puts the peer on the flush list; [`Peers::flush_into`] turns each listed peer's
//! bytes into one [`Output::Send`] when the adapter next polls. A connection we close is
//! flushed first ([`Peers::flush_one`]), so its last messages go out before the close.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::io::{Output, TorrentId};
use super::peer::{Peer, Phase};
use crate::ConnId;

/// The connections of a session.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    by_conn: BTreeMap<ConnId, Peer>,
    next_conn: u64,
    /// Connections that may have bytes queued since the last flush.
    to_flush: Vec<ConnId>,
    /// Outbound connections still waiting for their TCP connect.
    connecting: usize,
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
            .insert(conn, Peer::incoming(conn, addr, now, depth));
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
        self.by_conn
            .insert(conn, Peer::outgoing(conn, addr, torrent, now, depth));
        self.connecting += 1;
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
        self.connecting = self.connecting.saturating_sub(1);
        p.phase = Phase::Handshaking { sent: false };
        p.connected_at = now;
        p.last_received = now;
        true
    }

    pub fn get(&self, conn: ConnId) -> Option<&Peer> {
        self.by_conn.get(&conn)
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
        let p = self.by_conn.remove(&conn)?;
        if p.phase == Phase::Connecting {
            self.connecting = self.connecting.saturating_sub(1);
        }
        Some(p)
    }

    /// Turns the queued bytes of every peer changed since the last call into sends.
    pub fn flush_into(&mut self, out: &mut VecDeque<Output>) {
        for conn in std::mem::take(&mut self.to_flush) {
            if let Some(p) = self.by_conn.get_mut(&conn) {
                p.flush_queued = false;
                push_send(p, out);
            }
        }
    }

    /// Outbound connections waiting for their TCP connect.
    pub fn connecting(&self) -> usize {
        self.connecting
    }

    pub fn len(&self) -> usize {
        self.by_conn.len()
    }
}

fn push_send(p: &mut Peer, out: &mut VecDeque<Output>) {
    let bufs = p.take_output();
    if !bufs.is_empty() {
        out.push_back(Output::Send { conn: p.conn, bufs });
    }
}
