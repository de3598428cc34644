//! Each connection's bytes wait in the runner until its socket would take them, as they wait
//! in an adapter's writer queue.
//!
//! The network's upload queue is one FIFO per host, shared by its connections. Handing it a
//! connection's every byte at once would put a new connection's handshake behind megabytes
//! of blocks for an old one, which no real host does: a kernel takes from each socket only
//! what fits its send buffer. So a connection gets [`SEND_BUFFER`] more bytes only once what
//! it was given before has left ([`Network::flushed_at`](crate::sim::net::Network::flushed_at)).
//! A host without an upload cap or bandwidth limit flushes at once: nothing waits.
//!
//! What the network takes is reported to the session as [`Input::Written`], as a real
//! adapter reports what the kernel socket took: the session's send watermark holds back the
//! peer's other requests until then.

use std::time::Instant;

use bytes::Bytes;

use super::run::Delayed;
use super::{NodeId, Swarm};
use crate::ConnId;
use crate::engine::Input;

/// What a socket takes before a write would block: Linux's default send buffer (`wmem`
/// default, 16 KiB), one block message.
pub const SEND_BUFFER: usize = 16 * 1024;

/// One connection's pump. Its bytes not yet handed to the network wait in the network's
/// stream as written ([`crate::sim::net::Network::write`]), so that the receiver takes
/// them as the buffers the session wrote, however the pump cut them.
#[derive(Debug, Default)]
pub(super) struct SendQueue {
    /// When a pump is scheduled, so one is not scheduled twice for the same instant.
    pump_at: Option<Instant>,
}

impl Swarm {
    /// Queues `bufs` on `node`'s connection `conn` and hands the network what it takes now.
    pub(super) fn queue_send(
        &mut self,
        node: NodeId,
        conn: ConnId,
        bufs: Vec<Bytes>,
        now: Instant,
    ) {
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        // A connection already closed on our side takes nothing more.
        let Some(end) = n.conns.get(&conn) else {
            return;
        };
        self.net.write(end.sim, end.side, bufs);
        self.pump(node, conn, now);
    }

    /// Hands the network `SEND_BUFFER` bytes of `conn` at a time while its earlier bytes have
    /// left; otherwise comes back when they will have. The session is told what was taken;
    /// the caller drains its outputs.
    pub(super) fn pump(&mut self, node: NodeId, conn: ConnId, now: Instant) {
        loop {
            let Some(n) = self.nodes.get_mut(node.0) else {
                return;
            };
            let Some(end) = n.conns.get_mut(&conn) else {
                return;
            };
            let (sim, side, q) = (end.sim, end.side, &mut end.queue);
            if q.pump_at.is_some_and(|t| t <= now) {
                q.pump_at = None;
            }
            let unsent = self.net.unsent(sim, side);
            if unsent == 0 {
                return;
            }
            if let Some(free) = self.net.flushed_at(sim, side).filter(|t| *t > now) {
                if q.pump_at.is_none() {
                    q.pump_at = Some(free);
                    self.schedule(free, Delayed::Pump(node, conn));
                }
                return;
            }
            let bytes = unsent.min(SEND_BUFFER);
            if self.net.transmit(sim, side, bytes, now).is_err() {
                // The other end is gone; its close event is on the way.
                self.net.discard_unsent(sim, side);
                return;
            }
            n.session.handle(now, Input::Written { conn, bytes });
        }
    }

    /// Everything still queued for `conn`, handed to the network at once (a close flushes
    /// what was written before it, as the adapters' writers do).
    pub(super) fn flush_queue(&mut self, node: NodeId, conn: ConnId, now: Instant) {
        let Some(end) = self.nodes.get(node.0).and_then(|n| n.conns.get(&conn)) else {
            return;
        };
        let (sim, side) = (end.sim, end.side);
        let unsent = self.net.unsent(sim, side);
        if unsent > 0 && self.net.transmit(sim, side, unsent, now).is_err() {
            self.net.discard_unsent(sim, side);
        }
    }
}
