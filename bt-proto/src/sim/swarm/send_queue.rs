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

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::run::Delayed;
use super::{NodeId, Swarm};
use crate::ConnId;
use crate::engine::Input;

/// What a socket takes before a write would block: Linux's default send buffer (`wmem`
/// default, 16 KiB), one block message.
pub const SEND_BUFFER: usize = 16 * 1024;

/// One connection's bytes not yet handed to the network.
#[derive(Debug, Default)]
pub(super) struct SendQueue {
    bufs: VecDeque<Bytes>,
    /// When a pump is scheduled, so one is not scheduled twice for the same instant.
    pump_at: Option<Instant>,
}

impl SendQueue {
    /// Up to `max` bytes from the front, as slices of the queued buffers.
    fn take(&mut self, max: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut taken = 0;
        while taken < max {
            let Some(front) = self.bufs.front_mut() else {
                break;
            };
            let n = front.len().min(max - taken);
            out.push(front.split_to(n));
            taken += n;
            if front.is_empty() {
                self.bufs.pop_front();
            }
        }
        out
    }
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
        let Some(end) = n.conns.get_mut(&conn) else {
            return;
        };
        end.queue
            .bufs
            .extend(bufs.into_iter().filter(|b| !b.is_empty()));
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
            if q.bufs.is_empty() {
                return;
            }
            if let Some(free) = self.net.flushed_at(sim, side).filter(|t| *t > now) {
                if q.pump_at.is_none() {
                    q.pump_at = Some(free);
                    self.schedule(free, Delayed::Pump(node, conn));
                }
                return;
            }
            let chunk = q.take(SEND_BUFFER);
            let bytes = chunk.iter().map(Bytes::len).sum();
            if self.net.send_bufs(sim, side, chunk, now).is_err() {
                // The other end is gone; its close event is on the way.
                q.bufs.clear();
                return;
            }
            n.session.handle(now, Input::Written { conn, bytes });
        }
    }

    /// Everything still queued for `conn`, handed to the network at once (a close flushes
    /// what was written before it, as the adapters' writers do).
    pub(super) fn flush_queue(&mut self, node: NodeId, conn: ConnId, now: Instant) {
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        let Some(end) = n.conns.get_mut(&conn) else {
            return;
        };
        let (sim, side, mut q) = (end.sim, end.side, std::mem::take(&mut end.queue));
        let rest = q.take(usize::MAX);
        if !rest.is_empty() {
            let _ = self.net.send_bufs(sim, side, rest, now);
        }
    }
}
