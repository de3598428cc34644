//! The names and events the network hands out, and the errors of its calls.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

/// A connection's name in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimConnId(pub u64);

impl fmt::Display for SimConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simconn#{}", self.0)
    }
}

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The end that called [`Network::connect`](super::Network::connect).
    Initiator,
    /// The end that accepted.
    Acceptor,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Acceptor,
            Side::Acceptor => Side::Initiator,
        }
    }

    /// 0 for the initiator, 1 for the acceptor: where arrays by side keep each end.
    pub(crate) fn index(self) -> usize {
        match self {
            Side::Initiator => 0,
            Side::Acceptor => 1,
        }
    }
}

/// How a connection ended for the side receiving the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// The other side closed after sending everything it had sent.
    Eof,
    /// The connection was dropped; undelivered bytes are gone.
    Reset,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEventKind {
    /// The connection is established for this side: it may send.
    Connected,
    /// The remote host refused the connection (only to the initiator).
    Refused,
    /// Bytes arrived, in order.
    Data(Bytes),
    /// The connection ended; nothing more comes for this side.
    Closed(CloseKind),
}

/// What happened, as [`Network::poll_arrival`](super::Network::poll_arrival) tells it: bytes as a count, to be taken from
/// the stream with [`Network::take_received`](super::Network::take_received).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrived {
    /// As [`NetEventKind::Connected`].
    Connected,
    /// As [`NetEventKind::Refused`].
    Refused,
    /// A segment of this many bytes arrived; they wait in the stream.
    Bytes(usize),
    /// As [`NetEventKind::Closed`].
    Closed(CloseKind),
}

/// One delivery to one end of a connection, its bytes left in the stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub conn: SimConnId,
    pub side: Side,
    /// The event's sequence number: among events at one instant, their order.
    pub seq: u64,
    pub host: SocketAddr,
    pub peer: SocketAddr,
    pub what: Arrived,
}

/// One delivery to one end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEvent {
    /// When it happens.
    pub at: Instant,
    /// The connection.
    pub conn: SimConnId,
    /// Which end receives it.
    pub side: Side,
    /// The host of that end.
    pub host: SocketAddr,
    /// The host at the other end.
    pub peer: SocketAddr,
    /// What happened.
    pub kind: NetEventKind,
}

/// A call the network cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// No such connection in this network.
    #[error("{0} is not a connection of this network")]
    UnknownConn(SimConnId),
    /// That end cannot send yet (or ever: refused or unanswered connections).
    #[error("{conn}: the {side:?} end is not established")]
    NotEstablished {
        /// The connection.
        conn: SimConnId,
        /// The end that tried.
        side: Side,
    },
    /// That end closed the connection already.
    #[error("{conn}: the {side:?} end was closed")]
    Closed {
        /// The connection.
        conn: SimConnId,
        /// The end that tried.
        side: Side,
    },
    /// The other end closed and this end has seen the EOF.
    #[error("{conn}: the peer of the {side:?} end closed the connection")]
    PeerClosed {
        /// The connection.
        conn: SimConnId,
        /// The end that tried.
        side: Side,
    },
    /// The connection was reset.
    #[error("{conn} was reset")]
    Reset {
        /// The connection.
        conn: SimConnId,
    },
}
