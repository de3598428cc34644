//! The UDP tracker protocol (BEP 15): typed packets with their encoders and decoders, the
//! connection-id lifetime and the retransmit schedule.
//!
//! A client sends a [`ConnectRequest`], gets a [`ConnectionId`] back, then sends announces
//! and scrapes carrying that id. Every request carries a [`TransactionId`] chosen by the
//! caller (randomness is an input); [`decode_reply`] checks that a reply answers the request
//! it is matched against. All integers are big-endian. [`UdpTrackerClient`] runs the
//! exchange (connect, request, retransmit, connection-id reuse) as a sans-IO state machine.
//!
//! ```
//! use bt_proto::tracker::udp::{
//!     decode_reply, Action, AddressFamily, ConnectRequest, ConnectResponse, ConnectionId,
//!     Response, TransactionId,
//! };
//!
//! let txn = TransactionId(0x1234_5678);
//! let packet = ConnectRequest { transaction_id: txn }.encode();
//! assert_eq!(packet.len(), 16);
//!
//! // What the tracker answers:
//! let reply = ConnectResponse { transaction_id: txn, connection_id: ConnectionId(42) }.encode();
//! match decode_reply(&reply, AddressFamily::V4, txn, Action::Connect) {
//!     Ok(Response::Connect(c)) => assert_eq!(c.connection_id, ConnectionId(42)),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

use std::time::{Duration, Instant};

pub mod client;
mod fields;
mod request;
mod response;

pub use client::{ClientError, Event, UdpJob, UdpTrackerClient};
pub use request::{AnnounceRequest, ConnectRequest, Request, ScrapeRequest};
pub use response::{
    AnnounceResponse, CompactPeers, ConnectResponse, ErrorResponse, Response, ScrapeResponse,
    decode_reply,
};

/// The magic constant that opens a connect request (BEP 15).
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// How long a connection id may be used after it was received. BEP 15: a client may use it
/// for one minute (trackers accept it for two, so one minute leaves room for delays).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// The first retransmit timeout; BEP 15 doubles it after every unanswered attempt.
pub const BASE_TIMEOUT: Duration = Duration::from_secs(15);

/// The last attempt number: BEP 15 gives up after `15 * 2^8` seconds (attempts 0..=8).
pub const MAX_ATTEMPT: u32 = 8;

/// Info-hashes per scrape request. BEP 15: "up to about 74 torrents can be scraped at once",
/// which keeps the request (16 + 74 * 20 = 1496 bytes) inside a 1500-byte Ethernet MTU.
/// The decoder accepts more; callers split their lists with `chunks(MAX_SCRAPE_HASHES)`.
pub const MAX_SCRAPE_HASHES: usize = 74;

/// Bytes of a connect request and of a connect response.
pub const CONNECT_LEN: usize = 16;
/// Bytes of an announce request without BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Bytes of an announce response before its peer list.
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
/// Bytes of a scrape request before its info-hashes, and of any reply header.
pub const REQUEST_HEADER_LEN: usize = 16;
/// Bytes of the `action` and `transaction_id` that open every reply.
pub const REPLY_HEADER_LEN: usize = 8;

/// Retransmit timeout for attempt `n` (0-based): `15 * 2^n` seconds for `n` in `0..=8`,
/// `None` afterwards (the caller gives up).
///
/// ```
/// use std::time::Duration;
/// use bt_proto::tracker::udp::timeout_for_attempt;
/// assert_eq!(timeout_for_attempt(0), Some(Duration::from_secs(15)));
/// assert_eq!(timeout_for_attempt(8), Some(Duration::from_secs(3840)));
/// assert_eq!(timeout_for_attempt(9), None);
/// ```
pub fn timeout_for_attempt(n: u32) -> Option<Duration> {
    if n > MAX_ATTEMPT {
        return None;
    }
    BASE_TIMEOUT.checked_mul(1u32 << n)
}

/// Whether a connection id received at `obtained` may still be used at `now`
/// (less than [`CONNECTION_ID_LIFETIME`] has passed).
///
/// ```
/// use std::time::{Duration, Instant};
/// use bt_proto::tracker::udp::connection_id_valid;
/// let t = Instant::now(); // the caller's clock; the core never reads it
/// assert!(connection_id_valid(t, t + Duration::from_secs(59)));
/// assert!(!connection_id_valid(t, t + Duration::from_secs(60)));
/// ```
pub fn connection_id_valid(obtained: Instant, now: Instant) -> bool {
    now.saturating_duration_since(obtained) < CONNECTION_ID_LIFETIME
}

/// A request's id, echoed by the tracker; chosen at random by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId(pub u32);

/// The tracker-issued id that proves our address is not spoofed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

/// The `action` field that says what a packet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// 0: obtain a connection id.
    Connect,
    /// 1: announce.
    Announce,
    /// 2: scrape.
    Scrape,
    /// 3: an error reply (never a request).
    Error,
}

impl Action {
    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            Action::Connect => 0,
            Action::Announce => 1,
            Action::Scrape => 2,
            Action::Error => 3,
        }
    }

    /// The action for a wire code.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Action::Connect),
            1 => Some(Action::Announce),
            2 => Some(Action::Scrape),
            3 => Some(Action::Error),
            _ => None,
        }
    }
}

/// The address family of the socket a tracker was reached over. BEP 15 announce replies do not
/// say which family their peers are: it is the family of that socket, so decoders take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// 6-byte peers (4 address bytes, 2 port bytes).
    V4,
    /// 18-byte peers (16 address bytes, 2 port bytes).
    V6,
}

impl AddressFamily {
    /// Bytes per compact peer entry of this family.
    pub fn peer_len(self) -> usize {
        match self {
            AddressFamily::V4 => 6,
            AddressFamily::V6 => 18,
        }
    }
}

/// A malformed or unexpected UDP tracker packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    /// The packet ends before a fixed-size part.
    #[error("{what} packet is {len} bytes, needs at least {min}")]
    TooShort {
        /// The packet being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The length needed.
        min: usize,
    },
    /// The variable part is not a whole number of entries.
    #[error("{what}: {len} bytes from offset {offset} are not a multiple of {entry}")]
    RaggedEntries {
        /// The packet being decoded.
        what: &'static str,
        /// Where the entries start.
        offset: usize,
        /// Bytes of entries.
        len: usize,
        /// Bytes per entry.
        entry: usize,
    },
    /// A fixed-size packet has bytes after its end.
    #[error("{what} packet is {len} bytes, expected exactly {expected}")]
    WrongLength {
        /// The packet being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The only valid length.
        expected: usize,
    },
    /// A connect request without the BEP 15 magic.
    #[error("connect request has protocol id {found:#x} at offset 0, expected {PROTOCOL_ID:#x}")]
    BadProtocolId {
        /// What was there.
        found: u64,
    },
    /// An action code outside 0..=3 (or 3 in a request).
    #[error("unknown action {code} at offset {offset}")]
    UnknownAction {
        /// The code.
        code: u32,
        /// Where it is.
        offset: usize,
    },
    /// An announce event code outside 0..=3.
    #[error("unknown announce event {code} at offset {offset}")]
    UnknownEvent {
        /// The code.
        code: u32,
        /// Where it is.
        offset: usize,
    },
    /// A count or interval that is negative as a signed 32-bit integer.
    #[error("{field} at offset {offset} is negative ({value})")]
    Negative {
        /// The field.
        field: &'static str,
        /// Where it is.
        offset: usize,
        /// The value read.
        value: i32,
    },
    /// A reply to some other request (a late retransmit, or spoofing).
    #[error("reply has transaction id {found:#010x}, expected {expected:#010x}")]
    TransactionMismatch {
        /// The id we sent.
        expected: u32,
        /// The id in the reply.
        found: u32,
    },
    /// A reply of another kind than the request (an error reply is always accepted).
    #[error("reply action is {found:?}, expected {expected:?}")]
    UnexpectedAction {
        /// The request's action.
        expected: Action,
        /// The reply's action.
        found: Action,
    },
}

#[cfg(test)]
mod tests;
