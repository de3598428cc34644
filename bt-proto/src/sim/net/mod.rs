//! The simulated network: hosts, links and TCP-like stream connections on virtual time.
//!
//! Hosts are labelled by `SocketAddr` (say `10.0.0.7:6881`); no real traffic exists. Each
//! direction between two hosts is a [`LinkConfig`]: one-way latency, an optional bandwidth
//! cap, a loss rate and an optional random drop of the connections over it. Each host may
//! also cap its upload ([`HostConfig::upload`]), shared by all its connections, which is
//! what usually limits a BitTorrent swarm, and its download ([`HostConfig::download`]).
//!
//! ## The model, segment by segment
//! A `send` is cut into segments of at most the link's MSS. A segment waits in the sending
//! host's upload queue, then in the link's queue, then in the receiving host's download queue
//! if it has one (which takes each segment in the first free span at or after the time it
//! leaves the link's queue, since its segments come from many senders; the other two are each
//! a FIFO that lets bytes out at its rate,
//! so throughput really is capped), then travels for the link's latency. TCP is reliable, so
//! loss never loses bytes: a lost segment arrives one retransmission timeout later (twice the
//! link's latency plus [`MIN_RTO`], doubling per further loss up to [`MAX_RTO`]; bandwidth used
//! by retransmissions is not modelled), and after [`MAX_RETRANSMITS`] losses of one segment the
//! connection is reset, as a kernel gives up. Segments of one connection are delivered in
//! order: one held back by a retransmission holds back those behind it. The queues are FIFO
//! whatever the connection, so connections sharing an upload interleave at the granularity
//! of their sends; [`Network::flushed_at`] tells when a connection's bytes have all left, which
//! the swarm runner waits for before it hands a connection more (socket-like backpressure).
//! The bytes of a connection wait in its stream as the buffers they were written in; an
//! event takes its segment's bytes with it, unless the receiver chooses to take them later
//! (the swarm runner does, to get a block written as one buffer as that buffer).
//!
//! Connection setup: the initiator's [`NetEventKind::Connected`] comes one RTT after
//! [`Network::connect`] (SYN, SYN-ACK), the acceptor's half an RTT later (the final ACK),
//! which is when a real `accept()` returns; so the first bytes the initiator sends never
//! arrive before the acceptor knows the connection. A refusing host answers with
//! [`NetEventKind::Refused`] one RTT after the connect; a silent host (or an address no host
//! has) never answers, so the caller's connect timeout fires. Handshake packets neither queue
//! behind data nor get lost.
//!
//! Closing: [`Network::close`] ends the connection for that side at once (nothing more is
//! delivered to it) and sends EOF, which the other side receives as
//! [`CloseKind::Eof`] after every byte sent before it. A drop ([`Network::drop_at`] or
//! [`LinkConfig::drop_within`]) resets the connection: bytes not delivered by then are lost
//! and both sides get [`CloseKind::Reset`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::rng::Rng;

mod calendar;
mod config;
mod events;
mod flight;
mod queue;
mod stream;
use calendar::Calendar;
pub use config::{HostConfig, LinkConfig, Listen};
pub(crate) use events::{Arrival, Arrived};
pub use events::{CloseKind, NetError, NetEvent, NetEventKind, Side, SimConnId};
use queue::{EventQueue, Pending};
use stream::Stream;

/// Default maximum segment size: Ethernet's 1500-byte MTU less 40 bytes of IPv4 and TCP
/// headers, the size real peers' bytes arrive in.
pub const MSS: usize = 1460;

/// Retransmission timeout floor over the RTT. Linux uses 200 ms as its minimum RTO.
pub const MIN_RTO: Duration = Duration::from_millis(200);

/// Longest retransmission timeout after backoff: Linux's `TCP_RTO_MAX`.
pub const MAX_RTO: Duration = Duration::from_secs(120);

/// Losses of one segment after which the connection is reset: Linux's `tcp_retries2`.
pub const MAX_RETRANSMITS: u32 = 15;

#[derive(Debug)]
struct Conn {
    /// Hosts of the initiator and the acceptor.
    ends: [SocketAddr; 2],
    /// The same hosts' indices in [`Network::hosts`].
    hosts: [usize; 2],
    /// When each end may send; `None` if it never will.
    established: [Option<Instant>; 2],
    /// The end's owner closed it.
    closed: [bool; 2],
    /// The end received its `Closed` event.
    finished: [bool; 2],
    /// The initiator gave up before the handshake completed: nothing more for either end.
    aborted: bool,
    reset_at: Option<Instant>,
    /// Latest delivery time towards each end, keeping the byte stream in order.
    last_delivery: [Option<Instant>; 2],
    /// When the last byte each end sent leaves its host's queues.
    flushed: [Option<Instant>; 2],
    /// The bytes written towards each end that it has not taken.
    streams: [Stream; 2],
}

/// A host's configuration and its queues.
#[derive(Debug, Default)]
struct Host {
    /// `None` for an address never added: it does not answer.
    config: Option<HostConfig>,
    /// When its upload queue is next free.
    upload_free: Option<Instant>,
    /// Its download queue, booked segment by segment.
    download_busy: Calendar,
    /// Streams towards it whose next segment arrives without an event (and some that no
    /// longer have one, dropped when next looked at).
    quiet: Vec<(SimConnId, Side)>,
}

/// Where a send goes: the hosts it leaves and reaches, by address and by index.
#[derive(Debug, Clone, Copy)]
struct Route {
    from: SocketAddr,
    to: SocketAddr,
    from_host: usize,
    to_host: usize,
}

/// The fate of one segment's first transmission.
#[derive(Debug, Clone, Copy)]
struct Transmission {
    /// When its last byte leaves the sender's queues.
    departed: Instant,
    /// When it arrives, if not lost.
    arrival: Instant,
    lost: bool,
}

/// The whole simulated network.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bt_proto::sim::net::{HostConfig, LinkConfig, NetEventKind, Network, Side};
///
/// let t0 = Instant::now(); // the simulator's base instant
/// let (a, b) = ("10.0.0.1:6881".parse().unwrap(), "10.0.0.2:6881".parse().unwrap());
/// let mut net = Network::new(42);
/// net.add_host(b, HostConfig::default());
/// net.set_default_link(LinkConfig::new(Duration::from_millis(50)));
/// let conn = net.connect(a, b, t0);
/// let ev = net.poll(t0 + Duration::from_secs(1)).unwrap();
/// assert_eq!((ev.side, ev.kind, ev.at), (Side::Initiator, NetEventKind::Connected, t0 + Duration::from_millis(100)));
/// net.send(conn, Side::Initiator, &b"hello"[..], ev.at).unwrap();
/// let ev = net.poll(t0 + Duration::from_secs(1)).unwrap(); // the acceptor learns of it
/// assert_eq!((ev.side, ev.kind), (Side::Acceptor, NetEventKind::Connected));
/// let ev = net.poll(t0 + Duration::from_secs(1)).unwrap();
/// assert_eq!(ev.kind, NetEventKind::Data(bytes::Bytes::from_static(b"hello")));
/// assert_eq!(ev.at, t0 + Duration::from_millis(150));
/// ```
#[derive(Debug)]
pub struct Network {
    rng: Rng,
    /// Every address met, configured or not; connections name theirs by index, so that a
    /// segment's way through the queues takes no lookup by address.
    hosts: Vec<Host>,
    host_index: HashMap<SocketAddr, usize>,
    links: HashMap<(SocketAddr, SocketAddr), LinkConfig>,
    default_link: LinkConfig,
    /// When each link direction's queue is next free.
    link_free: HashMap<(SocketAddr, SocketAddr), Instant>,
    conns: Vec<Conn>,
    queue: EventQueue,
    seq: u64,
}

impl Network {
    /// An empty network whose random choices (loss, random drops) follow `seed`.
    pub fn new(seed: u64) -> Self {
        Network {
            rng: Rng::seed_from_u64(seed),
            hosts: Vec::new(),
            host_index: HashMap::new(),
            links: HashMap::new(),
            default_link: LinkConfig::default(),
            link_free: HashMap::new(),
            conns: Vec::new(),
            queue: EventQueue::default(),
            seq: 0,
        }
    }

    /// Adds a host (or replaces its configuration). Addresses never added do not answer.
    pub fn add_host(&mut self, addr: SocketAddr, config: HostConfig) {
        let i = self.host(addr);
        if let Some(h) = self.hosts.get_mut(i) {
            h.config = Some(config);
        }
    }

    /// A host's configuration, to change it mid-run (e.g. start refusing connections).
    pub fn host_mut(&mut self, addr: SocketAddr) -> Option<&mut HostConfig> {
        let i = *self.host_index.get(&addr)?;
        self.hosts.get_mut(i)?.config.as_mut()
    }

    /// The configuration of every direction without its own.
    pub fn set_default_link(&mut self, config: LinkConfig) {
        self.default_link = config;
    }

    /// Configures the direction `from` → `to`.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, config: LinkConfig) {
        self.links.insert((from, to), config);
    }

    /// Configures both directions between `a` and `b` alike.
    pub fn set_path(&mut self, a: SocketAddr, b: SocketAddr, config: LinkConfig) {
        self.set_link(a, b, config);
        self.set_link(b, a, config);
    }

    /// The configuration of the direction `from` → `to`.
    pub fn link(&self, from: SocketAddr, to: SocketAddr) -> LinkConfig {
        if self.links.is_empty() {
            return self.default_link;
        }
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_link)
    }

    /// The hosts of a connection's initiator and acceptor.
    pub fn endpoints(&self, conn: SimConnId) -> Option<(SocketAddr, SocketAddr)> {
        self.conn(conn).ok().map(|c| (c.ends[0], c.ends[1]))
    }

    /// Opens a connection from `from` to `to` at `now`. Its fate (connected, refused,
    /// unanswered) arrives as events; see the module documentation for the timing.
    pub fn connect(&mut self, from: SocketAddr, to: SocketAddr, now: Instant) -> SimConnId {
        let id = SimConnId(self.conns.len() as u64);
        let out = self.link(from, to);
        let back = self.link(to, from);
        let rtt = out.latency.saturating_add(back.latency);
        let answered = after(now, rtt);
        let hosts = [self.host(from), self.host(to)];
        let listen = self
            .hosts
            .get(hosts[1])
            .and_then(|h| h.config)
            .map_or(Listen::Silent, |h| h.listen);
        let mut conn = Conn {
            ends: [from, to],
            hosts,
            established: [None, None],
            closed: [false; 2],
            finished: [false; 2],
            aborted: false,
            reset_at: None,
            last_delivery: [None, None],
            flushed: [None, None],
            streams: Default::default(),
        };
        match listen {
            Listen::Accept => {
                let accepted = after(answered, out.latency);
                conn.established = [Some(answered), Some(accepted)];
                self.conns.push(conn);
                self.schedule(answered, id, Side::Initiator, Arrived::Connected);
                self.schedule(accepted, id, Side::Acceptor, Arrived::Connected);
                let span = match (out.drop_within, back.drop_within) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                if let Some(span) = span {
                    let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
                    let offset = Duration::from_nanos(self.rng.below(nanos));
                    self.reset(id, after(accepted, offset));
                }
            }
            Listen::Refuse => {
                self.conns.push(conn);
                self.schedule(answered, id, Side::Initiator, Arrived::Refused);
            }
            Listen::Silent => self.conns.push(conn),
        }
        id
    }

    /// Queues `bytes` from `side` of `conn` at `now`; they arrive at the other side as
    /// [`NetEventKind::Data`] events of at most the link's MSS each.
    pub fn send(
        &mut self,
        conn: SimConnId,
        side: Side,
        bytes: impl Into<Bytes>,
        now: Instant,
    ) -> Result<(), NetError> {
        self.send_bufs(conn, side, vec![bytes.into()], now)
    }

    /// [`Network::send`] of `bufs` one after the other, as one write: the segments are the
    /// same, and each is a slice of a buffer unless it spans two.
    pub fn send_bufs(
        &mut self,
        conn: SimConnId,
        side: Side,
        bufs: Vec<Bytes>,
        now: Instant,
    ) -> Result<(), NetError> {
        self.check_open(conn, side, now)?;
        let n = bufs.iter().map(Bytes::len).sum();
        self.write(conn, side, bufs);
        self.transmit(conn, side, n, now)
    }

    /// Closes `side` of `conn` at `now`: nothing more is delivered to it, and the other side
    /// gets EOF after everything sent before. Closing before the handshake completed abandons
    /// the connection for both ends. Closing twice does nothing.
    pub fn close(&mut self, conn: SimConnId, side: Side, now: Instant) -> Result<(), NetError> {
        let c = self.conn_mut(conn)?;
        let i = side.index();
        if c.closed.get(i).copied().unwrap_or(true) {
            return Ok(());
        }
        if let Some(closed) = c.closed.get_mut(i) {
            *closed = true;
        }
        let established = c
            .established
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|t| t <= now);
        if !established {
            c.aborted = true;
            return Ok(());
        }
        if c.reset_at.is_some_and(|r| r <= now) {
            return Ok(());
        }
        // Nothing more reaches this end: what was sent to it is gone with it.
        self.drop_sent(conn, side);
        let route = self.direction(conn, side)?;
        let link = self.link(route.from, route.to);
        let sent = self.transmit_segment(route, &link, 0, now);
        self.note_flushed(conn, side, sent.departed);
        let at = self.in_order(conn, side.other(), sent.arrival)?;
        self.schedule(at, conn, side.other(), Arrived::Closed(CloseKind::Eof));
        Ok(())
    }

    /// Resets `conn` at `at` (but not before both ends are established): bytes not yet
    /// delivered then are lost and both ends get [`CloseKind::Reset`]. An earlier reset
    /// already scheduled stands.
    pub fn drop_at(&mut self, conn: SimConnId, at: Instant) -> Result<(), NetError> {
        let c = self.conn(conn)?;
        let [Some(a), Some(b)] = c.established else {
            return Err(NetError::NotEstablished {
                conn,
                side: Side::Acceptor,
            });
        };
        self.reset(conn, at.max(a).max(b));
        Ok(())
    }

    /// When the earliest pending event happens, if any: the simulator advances its clock
    /// there and calls [`Network::poll`].
    pub fn next_event_time(&mut self) -> Option<Instant> {
        while let Some(top) = self.queue.peek() {
            if self.deliverable(top) {
                return Some(top.at);
            }
            self.queue.pop();
        }
        None
    }

    /// The next event due at or before `now`, earliest first (ties in the order they were
    /// caused); `None` when nothing more is due.
    pub fn poll(&mut self, now: Instant) -> Option<NetEvent> {
        let (a, at) = self.next_arrival(now, true)?;
        let kind = match a.what {
            Arrived::Connected => NetEventKind::Connected,
            Arrived::Refused => NetEventKind::Refused,
            Arrived::Bytes(_) => NetEventKind::Data(at.1),
            Arrived::Closed(k) => NetEventKind::Closed(k),
        };
        Some(NetEvent {
            at: at.0,
            conn: a.conn,
            side: a.side,
            host: a.host,
            peer: a.peer,
            kind,
        })
    }

    /// [`Network::poll`] that leaves the bytes delivered in their stream, for
    /// [`Network::take_received`] when the receiver wants them.
    pub(crate) fn poll_arrival(&mut self, now: Instant) -> Option<Arrival> {
        self.next_arrival(now, false).map(|(a, _)| a)
    }

    /// The next arrival due by `now`, with its time and (if `take`) its bytes.
    fn next_arrival(&mut self, now: Instant, take: bool) -> Option<(Arrival, (Instant, Bytes))> {
        loop {
            if self.queue.peek()?.at > now {
                return None;
            }
            let p = self.queue.pop()?;
            if !self.deliverable(&p) {
                continue;
            }
            let c = self.conns.get_mut(index(p.conn))?;
            let host = *c.ends.get(p.side.index())?;
            let peer = *c.ends.get(p.side.other().index())?;
            let (what, bytes) = match p.kind {
                Arrived::Bytes(_) => {
                    let flight = &mut c.streams.get_mut(p.side.index())?.flight;
                    // A stale event: the stream's wake moved since.
                    let Some((n, next)) = flight.arrive(p.seq) else {
                        continue;
                    };
                    self.wake(p.conn, p.side, next);
                    (Arrived::Bytes(n), self.deliver(p.conn, p.side, n, take))
                }
                Arrived::Closed(_) => {
                    if let Some(f) = c.finished.get_mut(p.side.index()) {
                        *f = true;
                    }
                    // What arrived quietly before the close is the receiver's to take.
                    self.settle(p.conn, p.side, p.at);
                    self.end_stream(p.conn, p.side);
                    (p.kind, Bytes::new())
                }
                Arrived::Connected | Arrived::Refused => (p.kind, Bytes::new()),
            };
            let arrival = Arrival {
                conn: p.conn,
                side: p.side,
                seq: p.seq,
                host,
                peer,
                what,
            };
            return Some((arrival, (p.at, bytes)));
        }
    }

    /// When everything `side` of `conn` has sent so far has left its host's upload queue and
    /// the link's queue: when a real socket's send buffer would be empty. A runner that wants
    /// socket-like backpressure feeds a connection more bytes only from then. `None` before
    /// the first send (or for an unknown connection).
    pub fn flushed_at(&self, conn: SimConnId, side: Side) -> Option<Instant> {
        self.conn(conn)
            .ok()?
            .flushed
            .get(side.index())
            .copied()
            .flatten()
    }

    /// Events waiting, including some that will turn out void (for closed ends).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    fn conn(&self, id: SimConnId) -> Result<&Conn, NetError> {
        self.conns.get(index(id)).ok_or(NetError::UnknownConn(id))
    }

    fn conn_mut(&mut self, id: SimConnId) -> Result<&mut Conn, NetError> {
        self.conns
            .get_mut(index(id))
            .ok_or(NetError::UnknownConn(id))
    }

    /// The hosts a send from `side` leaves and reaches.
    fn direction(&self, conn: SimConnId, side: Side) -> Result<Route, NetError> {
        let c = self.conn(conn)?;
        let ([initiator, acceptor], [i, a]) = (c.ends, c.hosts);
        Ok(match side {
            Side::Initiator => Route {
                from: initiator,
                to: acceptor,
                from_host: i,
                to_host: a,
            },
            Side::Acceptor => Route {
                from: acceptor,
                to: initiator,
                from_host: a,
                to_host: i,
            },
        })
    }

    /// The index of the host at `addr`, met now if not before.
    fn host(&mut self, addr: SocketAddr) -> usize {
        *self.host_index.entry(addr).or_insert_with(|| {
            self.hosts.push(Host::default());
            self.hosts.len() - 1
        })
    }

    fn check_open(&self, conn: SimConnId, side: Side, now: Instant) -> Result<(), NetError> {
        let c = self.conn(conn)?;
        let i = side.index();
        if c.closed.get(i).copied().unwrap_or(true) {
            return Err(NetError::Closed { conn, side });
        }
        if c.reset_at.is_some_and(|r| r <= now) {
            return Err(NetError::Reset { conn });
        }
        if c.finished.get(i).copied().unwrap_or(true) {
            return Err(NetError::PeerClosed { conn, side });
        }
        let established = c.established.get(i).copied().flatten();
        if c.aborted || established.is_none_or(|t| t > now) {
            return Err(NetError::NotEstablished { conn, side });
        }
        Ok(())
    }

    /// A datagram of `len` bytes from `from` to `to` sent at `now`: when its copies arrive
    /// (none if it is lost, two if duplicated). It waits in the same upload and link queues
    /// as the connections' segments, so datagrams and streams share a bottleneck; it is
    /// never retransmitted, and [`LinkConfig::jitter`] may reorder datagrams.
    pub fn datagram(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        len: usize,
        now: Instant,
    ) -> Vec<Instant> {
        let link = self.link(from, to);
        let route = Route {
            from,
            to,
            from_host: self.host(from),
            to_host: self.host(to),
        };
        let t = self.transmit_segment(route, &link, len.max(1), now);
        if t.lost {
            return Vec::new();
        }
        let copies = if link.duplicate > 0.0 && self.chance(link.duplicate) {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let nanos = u64::try_from(link.jitter.as_nanos()).unwrap_or(u64::MAX);
                let extra = match nanos {
                    0 => 0,
                    n => self.rng.below(n.saturating_add(1)),
                };
                after(t.arrival, Duration::from_nanos(extra))
            })
            .collect()
    }

    /// Passes `len` bytes through the sender's upload queue, the link's queue and the
    /// receiver's download queue.
    fn transmit_segment(
        &mut self,
        r: Route,
        link: &LinkConfig,
        len: usize,
        now: Instant,
    ) -> Transmission {
        let mut t = now;
        if let Some(h) = self.hosts.get_mut(r.from_host)
            && let Some(rate) = h.config.and_then(|c| c.upload)
        {
            t = serialise(h.upload_free.get_or_insert(now), t, len, rate);
        }
        if let Some(rate) = link.bandwidth {
            t = serialise(
                self.link_free.entry((r.from, r.to)).or_insert(now),
                t,
                len,
                rate,
            );
        }
        if let Some(h) = self.hosts.get_mut(r.to_host)
            && let Some(rate) = h.config.and_then(|c| c.download)
        {
            t = h.download_busy.book(now, t, duration_of(len, rate));
        }
        let lost = len > 0 && link.loss > 0.0 && self.chance(link.loss);
        Transmission {
            departed: t,
            arrival: after(t, link.latency),
            lost,
        }
    }

    /// Adds retransmission timeouts while the segment keeps being lost; `true` if the
    /// sender gives up (the arrival is then when it does).
    fn retransmit_delay(
        &mut self,
        mut arrival: Instant,
        lost: bool,
        link: &LinkConfig,
    ) -> (Instant, bool) {
        if !lost {
            return (arrival, false);
        }
        let rtt = link.latency.saturating_mul(2);
        let mut rto = rtt.saturating_add(MIN_RTO).min(MAX_RTO);
        for _ in 0..MAX_RETRANSMITS {
            arrival = after(arrival, rto);
            if !self.chance(link.loss) {
                return (arrival, false);
            }
            rto = rto.saturating_mul(2).min(MAX_RTO);
        }
        (arrival, true)
    }

    /// Holds a delivery towards `to_side` behind the previous one (TCP's in-order stream).
    fn in_order(
        &mut self,
        conn: SimConnId,
        to_side: Side,
        arrival: Instant,
    ) -> Result<Instant, NetError> {
        let c = self.conn_mut(conn)?;
        let slot = c
            .last_delivery
            .get_mut(to_side.index())
            .ok_or(NetError::UnknownConn(conn))?;
        let at = slot.map_or(arrival, |last| last.max(arrival));
        *slot = Some(at);
        Ok(at)
    }

    fn note_flushed(&mut self, conn: SimConnId, side: Side, departed: Instant) {
        if let Some(slot) = self
            .conns
            .get_mut(index(conn))
            .and_then(|c| c.flushed.get_mut(side.index()))
        {
            *slot = Some(slot.map_or(departed, |t| t.max(departed)));
        }
    }

    fn reset(&mut self, conn: SimConnId, at: Instant) {
        let Some(c) = self.conns.get_mut(index(conn)) else {
            return;
        };
        if c.reset_at.is_some_and(|r| r <= at) {
            return;
        }
        c.reset_at = Some(at);
        for side in [Side::Initiator, Side::Acceptor] {
            self.schedule(at, conn, side, Arrived::Closed(CloseKind::Reset));
        }
    }

    fn schedule(&mut self, at: Instant, conn: SimConnId, side: Side, kind: Arrived) {
        self.seq += 1;
        self.queue.push(Pending {
            at,
            seq: self.seq,
            conn,
            side,
            kind,
        });
    }

    fn deliverable(&self, p: &Pending) -> bool {
        let Some(c) = self.conns.get(index(p.conn)) else {
            return false;
        };
        let i = p.side.index();
        let gone =
            c.closed.get(i).copied().unwrap_or(true) || c.finished.get(i).copied().unwrap_or(true);
        if c.aborted || gone {
            return false;
        }
        match p.kind {
            Arrived::Closed(CloseKind::Reset) => c.reset_at == Some(p.at),
            Arrived::Bytes(_) | Arrived::Closed(CloseKind::Eof) => {
                c.reset_at.is_none_or(|r| p.at < r)
            }
            Arrived::Connected | Arrived::Refused => true,
        }
    }

    /// `true` with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits make an exactly representable fraction in [0, 1).
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

fn index(id: SimConnId) -> usize {
    usize::try_from(id.0).unwrap_or(usize::MAX)
}

/// `t + d`, or `t` where the sum is past what `Instant` represents (centuries of virtual
/// time: not a case a simulation reaches).
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

/// Lets `len` bytes through a FIFO that is free from `*free` at `rate` bytes/s, starting no
/// earlier than `ready`; returns when the last byte leaves.
fn serialise(free: &mut Instant, ready: Instant, len: usize, rate: u64) -> Instant {
    let done = after((*free).max(ready), duration_of(len, rate));
    *free = done;
    done
}

/// How long `len` bytes take at `rate` bytes/s (0 taken as 1), rounded up to the nanosecond.
fn duration_of(len: usize, rate: u64) -> Duration {
    let rate = u128::from(rate.max(1));
    let nanos = (len as u128 * 1_000_000_000).div_ceil(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
