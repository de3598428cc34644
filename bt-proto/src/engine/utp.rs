//! uTP connections ([`crate::utp`]) carried inside the engine, over the session's UDP port.
//!
//! A uTP connection is a [`ConnId`] like a TCP one: the peer logic queues bytes, closes and
//! hears of closes the same way. The difference stays here. The adapter never sees an
//! [`Output::Connect`], [`Output::Send`] or [`Output::Close`] for a uTP connection:
//! [`Session::poll_output`] takes them out of the queue and turns them into writes on the
//! [`Socket`], whose packets leave as [`Output::SendDatagram`]. Datagrams that are not the
//! DHT's come in through [`Input::Datagram`](super::Input::Datagram) and feed the socket;
//! what it reports becomes the inputs a TCP adapter would have given: connected, bytes
//! received, closed.
//!
//! The socket's send buffer is bounded ([`crate::utp::MAX_SEND_BUFFER`]), so a connection
//! keeps the bytes the socket did not take yet, in order, and hands them over as acks make
//! room. What it keeps is bounded as a TCP adapter's write queue is: by the send watermark
//! (`send_window`), as the bytes the socket takes count as a TCP adapter's
//! [`Input::Written`](super::Input::Written) reports do. The socket's own buffer is the
//! kernel's send buffer of a TCP connection: the watermark does not reach into it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::connection::canonical;
use super::{Config, Output, Session, Transport};
use crate::ConnId;
use crate::utp::{Event, Socket, SocketConfig, SocketEvent, State, StreamId};

/// Mixed into the session's seed for the socket's connection ids and sequence numbers, so
/// that they are deterministic without drawing from the engine's generator (which would
/// change every simulation's course).
const SOCKET_SEED_SALT: u64 = 0x7574_705f_736f_636b;

/// One uTP connection of the engine's.
#[derive(Debug)]
struct Stream {
    id: StreamId,
    /// Bytes the engine sent that the socket's buffer has not taken yet, in order.
    queue: VecDeque<Bytes>,
    /// The engine closed it: a FIN follows the queue, and the connection is no longer
    /// the engine's (what arrives on it is dropped).
    closing: bool,
}

/// What became of an output: the adapter's to carry out, or a uTP connection's, whose socket
/// took that many of its queued bytes.
enum Intercepted {
    Adapter(Output),
    Taken(ConnId, usize),
}

/// The session's uTP socket and its connections.
#[derive(Debug)]
pub(super) struct SessionUtp {
    /// Made at the first use, as it needs a time; `None` while uTP is off or unused.
    socket: Option<Socket>,
    enabled: bool,
    seed: u64,
    max_incoming: usize,
    by_conn: BTreeMap<ConnId, Stream>,
    by_stream: BTreeMap<StreamId, ConnId>,
    /// Connections whose socket connection ended while outputs for them may still be queued:
    /// those outputs are dropped, not given to the adapter, which never knew them. Emptied
    /// whenever the outputs are.
    retired: BTreeSet<ConnId>,
    /// The time of the latest input: the outputs drained after it are written to the socket
    /// at that time (packets carry a timestamp).
    now: Option<Instant>,
}

impl SessionUtp {
    pub fn new(config: &Config) -> Self {
        SessionUtp {
            socket: None,
            enabled: config.transports.utp(),
            seed: config.seed ^ SOCKET_SEED_SALT,
            max_incoming: config.max_incoming,
            by_conn: BTreeMap::new(),
            by_stream: BTreeMap::new(),
            retired: BTreeSet::new(),
            now: None,
        }
    }

    /// Records the time of an input.
    pub fn tick(&mut self, now: Instant) {
        self.now = Some(now);
    }

    fn socket(&mut self, now: Instant) -> &mut Socket {
        let (seed, max_incoming) = (self.seed, self.max_incoming);
        self.socket
            .get_or_insert_with(|| Socket::new(now, SocketConfig { max_incoming }, seed))
    }

    /// When the socket next needs [`Session::on_utp_timer`].
    pub fn next_timeout(&self) -> Option<Instant> {
        self.socket.as_ref().and_then(Socket::next_timeout)
    }

    /// Connections the socket holds, and the engine's own.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        let socket = self.socket.as_ref().map_or(0, |s| s.counts().0);
        (socket, self.by_conn.len())
    }

    fn insert(&mut self, conn: ConnId, id: StreamId) {
        self.by_stream.insert(id, conn);
        self.by_conn.insert(
            conn,
            Stream {
                id,
                queue: VecDeque::new(),
                closing: false,
            },
        );
    }

    fn forget(&mut self, id: StreamId) -> Option<(ConnId, Stream)> {
        let conn = self.by_stream.remove(&id)?;
        let stream = self.by_conn.remove(&conn)?;
        self.retired.insert(conn);
        Some((conn, stream))
    }

    /// Hands queued bytes to the socket while its buffer takes them; the FIN follows once
    /// the queue of a closing connection is empty. How many bytes the socket took.
    fn write_queue(&mut self, conn: ConnId) -> usize {
        let Some(s) = self.by_conn.get_mut(&conn) else {
            return 0;
        };
        let Some(socket) = self.socket.as_mut() else {
            return 0;
        };
        let mut taken = 0;
        while let Some(front) = s.queue.front_mut() {
            let n = socket.write(s.id, front);
            taken += n;
            if n < front.len() {
                *front = front.slice(n..);
                return taken;
            }
            s.queue.pop_front();
        }
        if s.closing {
            // A connection that never got an answer has nothing to finish: a reset ends it
            // at once instead of a FIN retried into silence.
            match socket.connection(s.id).map(|c| c.state()) {
                Some(State::SynSent) => socket.reset(s.id),
                _ => socket.close(s.id),
            }
        }
        taken
    }

    /// Takes what a uTP connection is told to do out of the adapter's outputs; gives back
    /// the outputs that are the adapter's.
    fn intercept(&mut self, output: Output) -> Intercepted {
        let (Output::Send { conn, .. } | Output::Close { conn, .. }) = &output else {
            return Intercepted::Adapter(output);
        };
        let conn = *conn;
        let Some(s) = self.by_conn.get_mut(&conn) else {
            // Gone with its socket connection while this was queued: nobody to tell.
            return match self.retired.contains(&conn) {
                true => Intercepted::Taken(conn, 0),
                false => Intercepted::Adapter(output),
            };
        };
        match output {
            Output::Send { bufs, .. } if !s.closing => s.queue.extend(bufs),
            Output::Close { .. } => s.closing = true,
            _ => {}
        }
        Intercepted::Taken(conn, self.write_queue(conn))
    }

    /// Moves the socket's packets to the outputs.
    fn transmit(&mut self, outputs: &mut VecDeque<Output>) {
        let (Some(socket), Some(now)) = (self.socket.as_mut(), self.now) else {
            return;
        };
        while let Some((to, data)) = socket.poll_transmit(now) {
            outputs.push_back(Output::SendDatagram {
                to,
                data: Bytes::from(data),
            });
        }
    }

    /// Everything readable on `id`, in one buffer.
    fn read_all(&mut self, id: StreamId) -> Option<Bytes> {
        let socket = self.socket.as_mut()?;
        let n = socket.readable(id);
        if n == 0 {
            return None;
        }
        let mut buf = vec![0; n];
        let got = socket.read(id, &mut buf);
        buf.truncate(got);
        (!buf.is_empty()).then(|| Bytes::from(buf))
    }
}

impl Session {
    /// Opens a uTP connection for `conn`, which the engine made for an outgoing peer.
    pub(super) fn utp_connect(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) {
        self.utp.tick(now);
        let id = self.utp.socket(now).connect(now, addr);
        self.utp.insert(conn, id);
        self.after_utp(now);
    }

    /// A datagram that is not the DHT's: the socket's, if uTP is on.
    pub(super) fn on_utp_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.utp.enabled || !crate::utp::is_utp(data) {
            return;
        }
        self.utp.socket(now).handle(now, canonical(from), data);
        self.after_utp(now);
    }

    pub(super) fn on_utp_timer(&mut self, now: Instant) {
        if let Some(socket) = self.utp.socket.as_mut() {
            socket.handle_timeout(now);
            self.after_utp(now);
        }
    }

    /// Carries out what the socket reports: new connections, bytes, closes.
    fn after_utp(&mut self, now: Instant) {
        while let Some(event) = self.utp.socket.as_mut().and_then(Socket::poll_event) {
            match event {
                SocketEvent::Incoming(id, addr) => self.on_utp_incoming(now, id, addr),
                SocketEvent::Stream(id, event) => self.on_utp_event(now, id, event),
            }
        }
    }

    fn on_utp_incoming(&mut self, now: Instant, id: StreamId, addr: SocketAddr) {
        let (conn, full) = self.admit_incoming(now, addr, Transport::Utp);
        self.utp.insert(conn, id);
        if full {
            self.close(now, conn, super::CloseReason::TooManyConnections);
        }
    }

    fn on_utp_event(&mut self, now: Instant, id: StreamId, event: Event) {
        let Some(&conn) = self.utp.by_stream.get(&id) else {
            return;
        };
        let closing = self.utp.by_conn.get(&conn).is_none_or(|s| s.closing);
        match event {
            Event::Connected if !closing => self.on_connected(now, conn),
            Event::Readable => {
                // Read even when closing: the window must stay open for the FIN to come.
                if let Some(data) = self.utp.read_all(id)
                    && !closing
                {
                    self.on_received(now, conn, data);
                }
            }
            Event::Writable => {
                let taken = self.utp.write_queue(conn);
                self.on_written(now, conn, taken);
            }
            Event::Eof => {
                if let Some(data) = self.utp.read_all(id)
                    && !closing
                {
                    self.on_received(now, conn, data);
                }
                if let Some(socket) = self.utp.socket.as_mut() {
                    socket.close(id);
                }
                if !closing {
                    // As a TCP adapter reports a peer's FIN: the connection is over.
                    self.remove_peer(now, conn, None);
                    if let Some(s) = self.utp.by_conn.get_mut(&conn) {
                        s.closing = true;
                    }
                }
            }
            Event::Closed | Event::Failed(_) => {
                self.utp.forget(id);
                if !closing {
                    self.remove_peer(now, conn, None);
                }
            }
            Event::Connected => {}
        }
    }

    /// Takes uTP connections' outputs out of the adapter's queue (see the module docs) and
    /// adds the socket's packets; the next output that is the adapter's, if any.
    pub(super) fn next_adapter_output(&mut self) -> Option<Output> {
        loop {
            if self.outputs.is_empty() {
                self.peers.flush_into(&mut self.outputs);
            }
            if self.outputs.is_empty() {
                self.utp.transmit(&mut self.outputs);
            }
            let Some(output) = self.outputs.pop_front() else {
                self.utp.retired.clear();
                return None;
            };
            match self.utp.intercept(output) {
                Intercepted::Adapter(o) => return Some(o),
                // What the socket took is what a TCP adapter reports with `Input::Written`;
                // the reads it lets start join the outputs.
                Intercepted::Taken(conn, taken) if taken > 0 => {
                    if let Some(now) = self.utp.now {
                        self.on_written(now, conn, taken);
                    }
                }
                Intercepted::Taken(..) => {}
            }
        }
    }
}
