//! Many uTP connections over one UDP port: packets routed by (remote address, connection
//! id), incoming connections bounded, strangers answered with at most one reset each.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::connection::{Connection, Event, State};
use super::packet::{Header, Packet, PacketType};
use crate::rng::Rng;

/// Resets queued and not yet sent, at most: 64. Each answers one packet for no connection
/// (never a reset, never more than one per packet, never larger than it), so they amplify
/// nothing; the cap keeps a flood of strangers from growing the queue between two drains.
pub const MAX_PENDING_RESETS: usize = 64;

/// Resets sent per second, at most: 100. Stale connections after a restart need a few; a
/// flood of packets with forged source addresses should not turn the socket into a
/// reflector of more than 2 kB/s (a reset is 20 bytes).
pub const MAX_RESETS_PER_SECOND: u32 = 100;

/// Stale entries the timer heap may hold beyond one per connection before it is rebuilt:
/// each connection re-arms its timer on every ack, so stale entries pile up at the rate of
/// acks; rebuilding when the heap is four times the connections (plus a floor of 64 for few
/// connections) keeps it small at the cost of a rebuild every few hundred acks.
const TIMER_SLACK: (usize, usize) = (4, 64);

/// A connection's handle, unique for the socket's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// The socket's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// Connections the peers opened that may exist at once; SYNs beyond it are answered
    /// with a reset and allocate nothing.
    pub max_incoming: usize,
}

/// What happened, for the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketEvent {
    /// A peer opened a connection.
    Incoming(StreamId, SocketAddr),
    /// Something happened on a connection. After `Closed` or `Failed` the socket forgets it
    /// once nothing is left to read.
    Stream(StreamId, Event),
}

#[derive(Clone, Debug)]
struct Entry {
    conn: Connection,
    addr: SocketAddr,
    /// Whether it counts against [`SocketConfig::max_incoming`]: opened by the peer and
    /// neither closed nor failed.
    incoming: bool,
    /// Its next time-out as the timer heap knows it.
    scheduled: Option<Instant>,
}

/// The multiplexer.
#[derive(Clone, Debug)]
pub struct Socket {
    config: SocketConfig,
    rng: Rng,
    streams: HashMap<StreamId, Entry>,
    /// (peer, the id its packets carry) → stream.
    routes: HashMap<(SocketAddr, u16), StreamId>,
    next_id: u64,
    incoming: usize,
    resets: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The second in which resets are being counted, and how many were queued in it.
    reset_second: (Instant, u32),
    events: VecDeque<SocketEvent>,
    /// The events queued, so that each is queued once until taken: the queue stays within
    /// a few per connection even if the application is slow to take them.
    queued: HashSet<SocketEvent>,
    /// Connections that may have something to send (every call that changes one puts it
    /// here), in turn order for [`Socket::poll_transmit`]; and the same as a set.
    ready: VecDeque<StreamId>,
    ready_set: HashSet<StreamId>,
    /// Every connection's next time-out, earliest first; entries that no longer match
    /// their connection's `scheduled` are stale and skipped. The earliest is always valid.
    timers: BinaryHeap<Reverse<(Instant, StreamId)>>,
    epoch: Instant,
}

impl Socket {
    /// An empty socket; `seed` decides its connection ids and sequence numbers.
    pub fn new(now: Instant, config: SocketConfig, seed: u64) -> Self {
        Socket {
            config,
            rng: Rng::seed_from_u64(seed),
            streams: HashMap::new(),
            routes: HashMap::new(),
            next_id: 0,
            incoming: 0,
            resets: VecDeque::new(),
            reset_second: (now, 0),
            events: VecDeque::new(),
            queued: HashSet::new(),
            ready: VecDeque::new(),
            ready_set: HashSet::new(),
            timers: BinaryHeap::new(),
            epoch: now,
        }
    }

    /// Opens a connection to `to`; its SYN comes out of [`Socket::poll_transmit`].
    pub fn connect(&mut self, now: Instant, to: SocketAddr) -> StreamId {
        // A free receive id for this peer: random start, then the next free one (at most
        // 65,536 steps; a peer with every id taken is not a case worth more).
        let start = self.rng.next_u32() as u16;
        let recv_id = (0..=u16::MAX)
            .map(|i| start.wrapping_add(i))
            .find(|id| !self.routes.contains_key(&(to, *id)))
            .unwrap_or(start);
        let conn = Connection::connect(now, recv_id, self.rng.next_u32() as u16);
        self.insert(to, conn, false)
    }

    fn insert(&mut self, addr: SocketAddr, conn: Connection, incoming: bool) -> StreamId {
        let id = StreamId(self.next_id);
        self.next_id += 1;
        self.routes.insert((addr, conn.recv_id()), id);
        self.streams.insert(
            id,
            Entry {
                conn,
                addr,
                incoming,
                scheduled: None,
            },
        );
        self.touch(id);
        self.schedule(id);
        if incoming {
            self.incoming += 1;
        }
        id
    }

    /// A datagram from `from` (the caller checked [`super::is_utp`] or not: anything that
    /// does not decode is dropped).
    pub fn handle(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let Ok(packet) = Packet::decode(datagram) else {
            return;
        };
        let h = packet.header;
        let key_id = if h.kind == PacketType::Syn {
            h.connection_id.wrapping_add(1)
        } else {
            h.connection_id
        };
        let route = self.routes.get(&(from, key_id)).copied().or_else(|| {
            // A peer that forgot the connection answers with our send id - 1: our receive
            // id if we opened it, our receive id - 2 if the peer did (see answer_stranger).
            let id = *self.routes.get(&(from, key_id.wrapping_add(2)))?;
            let e = self.streams.get(&id)?;
            (h.kind == PacketType::Reset && e.conn.send_id() == key_id.wrapping_add(1))
                .then_some(id)
        });
        if let Some(id) = route {
            if let Some(e) = self.streams.get_mut(&id) {
                e.conn.on_datagram(now, &packet);
            }
            self.touch(id);
            self.collect(id);
            return;
        }
        if h.kind == PacketType::Syn && self.incoming < self.config.max_incoming {
            let conn = Connection::accept(now, &h, self.rng.next_u32() as u16);
            let id = self.insert(from, conn, true);
            self.push_event(SocketEvent::Incoming(id, from));
            return;
        }
        self.answer_stranger(now, from, &h);
    }

    /// One reset for a packet that belongs to no connection (a reset gets none). The peer
    /// receives on our id − 1 if it opened the connection, on the SYN's id if this is one.
    fn answer_stranger(&mut self, now: Instant, to: SocketAddr, h: &Header) {
        if h.kind == PacketType::Reset || self.resets.len() >= MAX_PENDING_RESETS {
            return;
        }
        let (second, count) = &mut self.reset_second;
        if now.saturating_duration_since(*second) >= Duration::from_secs(1) {
            (*second, *count) = (now, 0);
        }
        if *count >= MAX_RESETS_PER_SECOND {
            return;
        }
        *count += 1;
        let connection_id = if h.kind == PacketType::Syn {
            h.connection_id
        } else {
            h.connection_id.wrapping_sub(1)
        };
        let header = Header {
            kind: PacketType::Reset,
            connection_id,
            // Wrapping on purpose: a free-running 32-bit microsecond clock.
            timestamp_us: now.saturating_duration_since(self.epoch).as_micros() as u32,
            timestamp_diff_us: 0,
            wnd_size: 0,
            seq_nr: self.rng.next_u32() as u16,
            ack_nr: h.seq_nr,
        };
        let reset = Packet {
            header,
            sack: None,
            payload: &[],
        };
        self.resets.push_back((to, reset.encode()));
    }

    /// Moves a connection's events to the socket's queue, and forgets it if it is finished.
    fn collect(&mut self, id: StreamId) {
        let Some(e) = self.streams.get_mut(&id) else {
            return;
        };
        while let Some(ev) = e.conn.poll_event() {
            let ev = SocketEvent::Stream(id, ev);
            if self.queued.insert(ev) {
                self.events.push_back(ev);
            }
        }
        if e.incoming && !matches!(e.conn.state(), State::SynSent | State::Connected) {
            // Closed (lingering) or failed: the slot is free for another peer.
            e.incoming = false;
            self.incoming -= 1;
        }
        if e.conn.is_finished() {
            self.remove(id);
        }
        self.schedule(id);
    }

    /// Brings the timer heap up to date with `id`'s next time-out, and drops stale entries
    /// from its top (or rebuilds it when stale entries pile up).
    fn schedule(&mut self, id: StreamId) {
        if let Some(e) = self.streams.get_mut(&id) {
            let t = e.conn.next_timeout();
            if t != e.scheduled {
                e.scheduled = t;
                if let Some(t) = t {
                    self.timers.push(Reverse((t, id)));
                }
            }
        }
        self.clean_timers();
    }

    fn clean_timers(&mut self) {
        let (per_connection, floor) = TIMER_SLACK;
        if self.timers.len() > per_connection * self.streams.len() + floor {
            self.timers = self
                .streams
                .iter()
                .filter_map(|(id, e)| e.scheduled.map(|t| Reverse((t, *id))))
                .collect();
        }
        while let Some(Reverse((t, id))) = self.timers.peek() {
            if self
                .streams
                .get(id)
                .is_some_and(|e| e.scheduled == Some(*t))
            {
                break;
            }
            self.timers.pop();
        }
    }

    /// Marks `id` as maybe having something to send.
    fn touch(&mut self, id: StreamId) {
        if self.ready_set.insert(id) {
            self.ready.push_back(id);
        }
    }

    /// The next datagram to send and where, if any; call until `None` after every input.
    /// Connections with something to send take turns, one datagram each; idle ones cost
    /// nothing.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if let Some(r) = self.resets.pop_front() {
            return Some(r);
        }
        while let Some(id) = self.ready.pop_front() {
            let Some(e) = self.streams.get_mut(&id) else {
                self.ready_set.remove(&id);
                continue;
            };
            let (addr, d) = (e.addr, e.conn.poll_transmit(now));
            self.collect(id);
            match d {
                Some(d) => {
                    if self.streams.contains_key(&id) {
                        self.ready.push_back(id);
                    } else {
                        self.ready_set.remove(&id);
                    }
                    return Some((addr, d));
                }
                None => {
                    self.ready_set.remove(&id);
                }
            }
        }
        None
    }

    fn push_event(&mut self, ev: SocketEvent) {
        if self.queued.insert(ev) {
            self.events.push_back(ev);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        let ev = self.events.pop_front()?;
        self.queued.remove(&ev);
        Some(ev)
    }

    /// When [`Socket::handle_timeout`] should be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// The earliest time-out of all connections, found the slow way: the tests check the
    /// timer heap against it.
    #[cfg(test)]
    pub(super) fn next_timeout_scan(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|e| e.conn.next_timeout())
            .min()
    }

    /// Time passed: each connection's time-outs; finished connections are forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if let Some(e) = self.streams.get_mut(&id)
                && e.scheduled == Some(t)
            {
                e.scheduled = None;
                due.push(id);
            }
        }
        for id in due {
            if let Some(e) = self.streams.get_mut(&id) {
                e.conn.on_timeout(now);
            }
            self.touch(id);
            self.collect(id);
        }
        self.clean_timers();
    }

    fn remove(&mut self, id: StreamId) {
        if let Some(e) = self.streams.remove(&id) {
            self.routes.remove(&(e.addr, e.conn.recv_id()));
            if e.incoming {
                self.incoming -= 1;
            }
        }
    }

    /// The connection behind `id`, while the socket has it.
    pub fn connection(&self, id: StreamId) -> Option<&Connection> {
        self.streams.get(&id).map(|e| &e.conn)
    }

    /// Queues bytes on `id`; returns how many its send buffer took.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> usize {
        self.touch(id);
        self.streams.get_mut(&id).map_or(0, |e| e.conn.write(data))
    }

    /// Reads bytes from `id`; returns how many.
    pub fn read(&mut self, id: StreamId, buf: &mut [u8]) -> usize {
        let n = self.streams.get_mut(&id).map_or(0, |e| e.conn.read(buf));
        self.touch(id);
        self.collect(id);
        n
    }

    /// Bytes readable on `id` now.
    pub fn readable(&self, id: StreamId) -> usize {
        self.connection(id).map_or(0, Connection::readable)
    }

    /// Bytes `id` would take now.
    pub fn writable(&self, id: StreamId) -> usize {
        self.connection(id).map_or(0, Connection::writable)
    }

    /// Ends our side of `id`'s stream after the bytes written.
    pub fn close(&mut self, id: StreamId) {
        if let Some(e) = self.streams.get_mut(&id) {
            e.conn.close();
        }
        self.touch(id);
    }

    /// Ends `id` at once with a reset.
    pub fn reset(&mut self, id: StreamId) {
        if let Some(e) = self.streams.get_mut(&id) {
            e.conn.reset();
        }
        self.touch(id);
        self.collect(id);
    }

    /// Connections the socket holds, and how many of them count against
    /// [`SocketConfig::max_incoming`] (opened by the peers, neither closed nor failed).
    pub fn counts(&self) -> (usize, usize) {
        (self.streams.len(), self.incoming)
    }

    /// Whether the socket holds no connection.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}
