//! uTP sockets over the simulated network's datagrams: bulk transfers on virtual time, to
//! measure what LEDBAT does with a link (utilisation under loss, fairness between flows,
//! yielding to a TCP-like stream).
//!
//! Each [`Node`] is one [`utp::Socket`] on a host of [`Network`]. A datagram goes through
//! [`Network::datagram`] between the nodes' *hosts*, so it waits in the same upload and link
//! queues as every other datagram and stream between those hosts: two sockets on one host
//! (two senders behind one uplink) share its link. A [`Flow`] is a sender writing bulk bytes
//! as fast as its socket takes them and a receiver reading them as they arrive. A [`Bulk`]
//! is a TCP-like stream of [`Network`] that keeps a fixed window of bytes unacknowledged:
//! the stream model has no congestion control of its own, and a window larger than the
//! path's bandwidth-delay product keeps a standing queue at the bottleneck the way a
//! loss-based TCP fills a buffer (the network's queues are unbounded, so it never loses
//! for it, and its window never shrinks).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::net::{NetEventKind, Network, Side, SimConnId};
use crate::utp::{self, SocketConfig, SocketEvent, StreamId};

/// Bytes a sender offers its socket at a time, and a [`Bulk`] stream sends per call: 64 KiB,
/// small against the buffers (4 MiB) so that they stay full, large enough to be cheap.
const CHUNK: usize = 64 << 10;

/// Incoming uTP connections a node accepts: a few flows per receiver is all a figure needs.
const MAX_INCOMING: usize = 8;

/// One uTP socket on a host.
#[derive(Debug)]
pub struct Node {
    /// The socket's address (what its peers see).
    pub addr: SocketAddr,
    /// The host of [`Network`] whose queues its datagrams take.
    pub host: SocketAddr,
    /// The socket.
    pub socket: utp::Socket,
}

/// A bulk transfer from one node to another over uTP.
#[derive(Debug)]
pub struct Flow {
    /// Sending node and its stream.
    pub sender: usize,
    stream: StreamId,
    /// Receiving node, and its stream once accepted.
    pub receiver: usize,
    incoming: Option<StreamId>,
    /// Bytes the receiver read.
    pub delivered: u64,
}

/// A TCP-like stream over [`Network`] keeping `window` bytes unacknowledged (acks return
/// one link latency after delivery).
#[derive(Debug)]
pub struct Bulk {
    conn: SimConnId,
    window: u64,
    ack_delay: Duration,
    connected: bool,
    sent: u64,
    acked: u64,
    /// Bytes delivered to the acceptor.
    pub delivered: u64,
    acks: VecDeque<(Instant, u64)>,
}

/// A datagram on its way.
#[derive(Debug)]
struct Arrival {
    at: Instant,
    order: u64,
    to: usize,
    from: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for Arrival {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Arrival {}

impl PartialOrd for Arrival {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Arrival {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Nodes, flows and bulk streams on one network.
#[derive(Debug)]
pub struct UtpNet {
    /// The network (configure its hosts and links before starting flows).
    pub net: Network,
    /// Virtual time.
    pub now: Instant,
    /// The uTP nodes.
    pub nodes: Vec<Node>,
    /// The uTP transfers.
    pub flows: Vec<Flow>,
    /// The TCP-like transfers.
    pub bulks: Vec<Bulk>,
    wire: BinaryHeap<Reverse<Arrival>>,
    order: u64,
    chunk: Vec<u8>,
    bulk_chunk: Bytes,
}

impl UtpNet {
    /// No nodes yet, virtual time from `now`.
    pub fn new(net: Network, now: Instant) -> Self {
        UtpNet {
            net,
            now,
            nodes: Vec::new(),
            flows: Vec::new(),
            bulks: Vec::new(),
            wire: BinaryHeap::new(),
            order: 0,
            chunk: vec![0x5a; CHUNK],
            bulk_chunk: Bytes::from(vec![0xa5; CHUNK]),
        }
    }

    /// Adds a socket at `addr` on network host `host`; returns its index.
    pub fn add_node(&mut self, addr: SocketAddr, host: SocketAddr, seed: u64) -> usize {
        let config = SocketConfig {
            max_incoming: MAX_INCOMING,
        };
        self.nodes.push(Node {
            addr,
            host,
            socket: utp::Socket::new(self.now, config, seed),
        });
        self.nodes.len() - 1
    }

    /// Starts a uTP transfer from node `sender` to node `receiver`; returns its index.
    pub fn add_flow(&mut self, sender: usize, receiver: usize) -> Option<usize> {
        let to = self.nodes.get(receiver)?.addr;
        let stream = self.nodes.get_mut(sender)?.socket.connect(self.now, to);
        self.flows.push(Flow {
            sender,
            stream,
            receiver,
            incoming: None,
            delivered: 0,
        });
        Some(self.flows.len() - 1)
    }

    /// Starts a TCP-like transfer from host `from` to host `to` keeping `window` bytes
    /// unacknowledged; returns its index.
    pub fn add_bulk(&mut self, from: SocketAddr, to: SocketAddr, window: u64) -> usize {
        let conn = self.net.connect(from, to, self.now);
        let ack_delay = self.net.link(to, from).latency;
        self.bulks.push(Bulk {
            conn,
            window,
            ack_delay,
            connected: false,
            sent: 0,
            acked: 0,
            delivered: 0,
            acks: VecDeque::new(),
        });
        self.bulks.len() - 1
    }

    /// The sending connection of a flow, while its socket has it.
    pub fn sender(&self, flow: usize) -> Option<&utp::Connection> {
        let f = self.flows.get(flow)?;
        self.nodes.get(f.sender)?.socket.connection(f.stream)
    }

    /// Runs until `end` of virtual time.
    pub fn run_until(&mut self, end: Instant) {
        loop {
            self.app();
            self.transmit();
            let next = [
                self.wire.peek().map(|Reverse(a)| a.at),
                self.net.next_event_time(),
                self.bulks
                    .iter()
                    .filter_map(|b| b.acks.front().map(|a| a.0))
                    .min(),
                self.nodes
                    .iter()
                    .filter_map(|n| n.socket.next_timeout())
                    .min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = self.now.max(end);
                    return;
                }
            }
            self.deliver();
        }
    }

    /// Everything due now: datagrams, stream events, acks of bulk streams, time-outs.
    fn deliver(&mut self) {
        let now = self.now;
        while self.wire.peek().is_some_and(|Reverse(a)| a.at <= now) {
            let Some(Reverse(a)) = self.wire.pop() else {
                break;
            };
            if let Some(n) = self.nodes.get_mut(a.to) {
                n.socket.handle(now, a.from, &a.data);
            }
        }
        while let Some(ev) = self.net.poll(now) {
            let Some(b) = self.bulks.iter_mut().find(|b| b.conn == ev.conn) else {
                continue;
            };
            match (ev.side, ev.kind) {
                (Side::Initiator, NetEventKind::Connected) => b.connected = true,
                (Side::Acceptor, NetEventKind::Data(bytes)) => {
                    let len = bytes.len() as u64;
                    b.delivered += len;
                    b.acks.push_back((now + b.ack_delay, len));
                }
                _ => {}
            }
        }
        for b in &mut self.bulks {
            while let Some((_, len)) = b.acks.front().filter(|a| a.0 <= now).copied() {
                b.acks.pop_front();
                b.acked += len;
            }
        }
        for n in &mut self.nodes {
            if n.socket.next_timeout().is_some_and(|t| t <= now) {
                n.socket.handle_timeout(now);
            }
        }
    }

    /// The applications: senders write, receivers accept and read, bulk streams fill
    /// their window.
    fn app(&mut self) {
        let now = self.now;
        for n in 0..self.nodes.len() {
            while let Some(ev) = self.nodes.get_mut(n).and_then(|n| n.socket.poll_event()) {
                let SocketEvent::Incoming(id, from) = ev else {
                    continue;
                };
                let sender = self.nodes.iter().position(|s| s.addr == from);
                if let Some(f) = self
                    .flows
                    .iter_mut()
                    .find(|f| f.receiver == n && Some(f.sender) == sender && f.incoming.is_none())
                {
                    f.incoming = Some(id);
                }
            }
        }
        let mut buf = vec![0u8; CHUNK];
        for f in &mut self.flows {
            if let Some(s) = self.nodes.get_mut(f.sender) {
                while s.socket.write(f.stream, &self.chunk) > 0 {}
            }
            if let (Some(r), Some(id)) = (self.nodes.get_mut(f.receiver), f.incoming) {
                loop {
                    let n = r.socket.read(id, &mut buf);
                    if n == 0 {
                        break;
                    }
                    f.delivered += n as u64;
                }
            }
        }
        for b in &mut self.bulks {
            while b.connected && b.sent - b.acked + CHUNK as u64 <= b.window {
                if self
                    .net
                    .send(b.conn, Side::Initiator, self.bulk_chunk.clone(), now)
                    .is_err()
                {
                    break;
                }
                b.sent += CHUNK as u64;
            }
        }
    }

    /// Puts every datagram the sockets want sent on the network.
    fn transmit(&mut self) {
        let now = self.now;
        for i in 0..self.nodes.len() {
            while let Some((to, data, from, host)) = self.nodes.get_mut(i).and_then(|n| {
                let (to, data) = n.socket.poll_transmit(now)?;
                Some((to, data, n.addr, n.host))
            }) {
                let Some(dest) = self.nodes.iter().position(|n| n.addr == to) else {
                    continue;
                };
                let to_host = self.nodes.get(dest).map_or(to, |n| n.host);
                for at in self.net.datagram(host, to_host, data.len(), now) {
                    self.order += 1;
                    self.wire.push(Reverse(Arrival {
                        at,
                        order: self.order,
                        to: dest,
                        from,
                        data: data.clone(),
                    }));
                }
            }
        }
    }
}

pub mod figures;
#[cfg(test)]
mod tests;
