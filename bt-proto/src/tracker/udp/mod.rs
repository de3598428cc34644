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

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use super::AnnounceEvent;
use super::scrape::ScrapeStats;
use crate::{InfoHash, PeerId};

pub mod client;
pub use client::{ClientError, Event, UdpJob, UdpTrackerClient};

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

/// Reads big-endian fields in order, tracking the offset for error messages.
struct Reader<'a> {
    what: &'static str,
    packet: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, packet: &'a [u8]) -> Self {
        Reader {
            what,
            packet,
            offset: 0,
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], UdpError> {
        let too_short = UdpError::TooShort {
            what: self.what,
            len: self.packet.len(),
            min: self.offset + N,
        };
        let rest = self.packet.get(self.offset..).ok_or(too_short.clone())?;
        let (head, _) = rest.split_first_chunk::<N>().ok_or(too_short)?;
        self.offset += N;
        Ok(*head)
    }

    fn u16(&mut self) -> Result<u16, UdpError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, UdpError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, UdpError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A signed 32-bit count that must not be negative.
    fn count(&mut self, field: &'static str) -> Result<u32, UdpError> {
        let offset = self.offset;
        let value = self.array().map(i32::from_be_bytes)?;
        u32::try_from(value).map_err(|_| UdpError::Negative {
            field,
            offset,
            value,
        })
    }

    fn rest(&self) -> &'a [u8] {
        self.packet.get(self.offset..).unwrap_or_default()
    }

    /// The rest of the packet split into `N`-byte entries.
    fn entries<const N: usize>(&self) -> Result<impl Iterator<Item = &'a [u8; N]>, UdpError> {
        let rest = self.rest();
        let (entries, tail) = rest.as_chunks::<N>();
        if !tail.is_empty() {
            return Err(UdpError::RaggedEntries {
                what: self.what,
                offset: self.offset,
                len: rest.len(),
                entry: N,
            });
        }
        Ok(entries.iter())
    }

    fn action(&mut self) -> Result<Action, UdpError> {
        let offset = self.offset;
        let code = self.u32()?;
        Action::from_code(code).ok_or(UdpError::UnknownAction { code, offset })
    }
}

/// Writes a count as the non-negative `int32_t` the wire wants, saturating at `i32::MAX`.
fn put_count(out: &mut Vec<u8>, n: u32) {
    let n = n.min(i32::MAX as u32);
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_secs(out: &mut Vec<u8>, d: Duration) {
    put_count(out, u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
}

/// Connect request: asks for a connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The request's id.
    pub transaction_id: TransactionId,
}

impl ConnectRequest {
    /// Appends the 16-byte packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
        out.extend_from_slice(&Action::Connect.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
    }

    /// The 16-byte packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONNECT_LEN);
        self.encode_into(&mut out);
        out
    }
}

/// Connect response: the connection id to use for a minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Echo of the request's id.
    pub transaction_id: TransactionId,
    /// The id to put in announce and scrape requests.
    pub connection_id: ConnectionId,
}

impl ConnectResponse {
    /// Appends the 16-byte packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Action::Connect.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        out.extend_from_slice(&self.connection_id.0.to_be_bytes());
    }

    /// The 16-byte packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONNECT_LEN);
        self.encode_into(&mut out);
        out
    }
}

/// Announce request (98 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// From the connect response.
    pub connection_id: ConnectionId,
    /// The request's id.
    pub transaction_id: TransactionId,
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still wanted.
    pub left: u64,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Why we announce (`None` is code 0, a regular announce).
    pub event: Option<AnnounceEvent>,
    /// Our address if not the packet's source; `None` is 0 on the wire ("use the source").
    /// `Some(0.0.0.0)` is the same as `None`, and decodes as `None`.
    pub ip: Option<Ipv4Addr>,
    /// Lets the tracker recognise us across address changes.
    pub key: u32,
    /// Peers wanted; `None` is -1 on the wire ("tracker's default"). Values above `i32::MAX`
    /// are sent as `i32::MAX`; any negative value decodes as `None`.
    pub num_want: Option<u32>,
    /// Our listening port.
    pub port: u16,
}

impl AnnounceRequest {
    /// Builds the UDP request from the transport-independent [`super::AnnounceRequest`].
    /// Its `tracker_id` has no UDP field; an IPv6 `ip` cannot be sent and becomes `None`;
    /// a missing `key` becomes 0.
    pub fn from_announce(
        connection_id: ConnectionId,
        transaction_id: TransactionId,
        req: &super::AnnounceRequest,
    ) -> Self {
        AnnounceRequest {
            connection_id,
            transaction_id,
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            downloaded: req.downloaded,
            left: req.left,
            uploaded: req.uploaded,
            event: req.event,
            ip: match req.ip {
                Some(std::net::IpAddr::V4(v4)) => Some(v4),
                _ => None,
            },
            key: req.key.unwrap_or(0),
            num_want: req.numwant,
            port: req.port,
        }
    }

    /// Appends the 98-byte packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.connection_id.0.to_be_bytes());
        out.extend_from_slice(&Action::Announce.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        out.extend_from_slice(self.info_hash.as_bytes());
        out.extend_from_slice(self.peer_id.as_bytes());
        out.extend_from_slice(&self.downloaded.to_be_bytes());
        out.extend_from_slice(&self.left.to_be_bytes());
        out.extend_from_slice(&self.uploaded.to_be_bytes());
        let event = self.event.map_or(0, AnnounceEvent::udp_code);
        out.extend_from_slice(&event.to_be_bytes());
        let ip = self.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        out.extend_from_slice(&ip.octets());
        out.extend_from_slice(&self.key.to_be_bytes());
        let num_want: i32 = match self.num_want {
            Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
            None => -1,
        };
        out.extend_from_slice(&num_want.to_be_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
    }

    /// The 98-byte packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Decodes the fields after the action (the reader is at offset 12).
    fn decode_body(connection_id: ConnectionId, r: &mut Reader<'_>) -> Result<Self, UdpError> {
        let transaction_id = TransactionId(r.u32()?);
        let info_hash = InfoHash(r.array()?);
        let peer_id = PeerId(r.array()?);
        let downloaded = r.u64()?;
        let left = r.u64()?;
        let uploaded = r.u64()?;
        let event_offset = r.offset;
        let event =
            AnnounceEvent::from_udp_code(r.u32()?).map_err(|code| UdpError::UnknownEvent {
                code,
                offset: event_offset,
            })?;
        let ip = Ipv4Addr::from(r.array::<4>()?);
        let key = r.u32()?;
        let num_want = u32::try_from(i32::from_be_bytes(r.array()?)).ok();
        let port = r.u16()?;
        // BEP 41 options may follow; trackers that do not know them ignore them, and so do we.
        Ok(AnnounceRequest {
            connection_id,
            transaction_id,
            info_hash,
            peer_id,
            downloaded,
            left,
            uploaded,
            event,
            ip: (!ip.is_unspecified()).then_some(ip),
            key,
            num_want,
            port,
        })
    }
}

/// The peers of an announce response, in the family of the socket that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompactPeers {
    /// From a tracker reached over IPv4.
    V4(Vec<SocketAddrV4>),
    /// From a tracker reached over IPv6.
    V6(Vec<SocketAddrV6>),
}

impl CompactPeers {
    /// How many peers.
    pub fn len(&self) -> usize {
        match self {
            CompactPeers::V4(v) => v.len(),
            CompactPeers::V6(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The family these peers belong to.
    pub fn family(&self) -> AddressFamily {
        match self {
            CompactPeers::V4(_) => AddressFamily::V4,
            CompactPeers::V6(_) => AddressFamily::V6,
        }
    }
}

/// Announce response: the schedule, swarm counts and peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Echo of the request's id.
    pub transaction_id: TransactionId,
    /// Wait before the next announce, whole seconds as sent (see
    /// [`super::announce_interval`] for the clamped schedule).
    pub interval: Duration,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// The peers.
    pub peers: CompactPeers,
}

impl AnnounceResponse {
    /// Appends the packet. Counts above `i32::MAX` (and intervals above `i32::MAX` seconds)
    /// are sent as `i32::MAX`, since the wire fields are signed.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Action::Announce.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        put_secs(out, self.interval);
        put_count(out, self.leechers);
        put_count(out, self.seeders);
        match &self.peers {
            CompactPeers::V4(peers) => {
                for p in peers {
                    out.extend_from_slice(&p.ip().octets());
                    out.extend_from_slice(&p.port().to_be_bytes());
                }
            }
            CompactPeers::V6(peers) => {
                for p in peers {
                    out.extend_from_slice(&p.ip().octets());
                    out.extend_from_slice(&p.port().to_be_bytes());
                }
            }
        }
    }

    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ANNOUNCE_RESPONSE_HEADER_LEN + self.peers.len() * self.peers.family().peer_len(),
        );
        self.encode_into(&mut out);
        out
    }

    fn decode_body(
        transaction_id: TransactionId,
        r: &mut Reader<'_>,
        family: AddressFamily,
    ) -> Result<Self, UdpError> {
        let interval = Duration::from_secs(r.count("interval")?.into());
        let leechers = r.count("leechers")?;
        let seeders = r.count("seeders")?;
        let peers = match family {
            AddressFamily::V4 => CompactPeers::V4(
                r.entries::<6>()?
                    .map(|e| {
                        let (ip, port) = split_peer::<6, 4>(e);
                        SocketAddrV4::new(Ipv4Addr::from(ip), port)
                    })
                    .collect(),
            ),
            AddressFamily::V6 => CompactPeers::V6(
                r.entries::<18>()?
                    .map(|e| {
                        let (ip, port) = split_peer::<18, 16>(e);
                        SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
                    })
                    .collect(),
            ),
        };
        Ok(AnnounceResponse {
            transaction_id,
            interval,
            leechers,
            seeders,
            peers,
        })
    }
}

/// Splits a compact peer entry (`A` address bytes then a big-endian port) into its parts.
fn split_peer<const N: usize, const A: usize>(entry: &[u8; N]) -> ([u8; A], u16) {
    let mut ip = [0u8; A];
    let mut port = [0u8; 2];
    let (head, tail) = entry.split_at(A.min(N));
    ip.iter_mut().zip(head).for_each(|(d, s)| *d = *s);
    port.iter_mut().zip(tail).for_each(|(d, s)| *d = *s);
    (ip, u16::from_be_bytes(port))
}

/// Scrape request: swarm counts for several torrents at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// From the connect response.
    pub connection_id: ConnectionId,
    /// The request's id.
    pub transaction_id: TransactionId,
    /// The torrents; at most [`MAX_SCRAPE_HASHES`] to stay in one MTU (not enforced).
    pub info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// Appends the packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.connection_id.0.to_be_bytes());
        out.extend_from_slice(&Action::Scrape.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        for h in &self.info_hashes {
            out.extend_from_slice(h.as_bytes());
        }
    }

    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + 20 * self.info_hashes.len());
        self.encode_into(&mut out);
        out
    }
}

/// Scrape response: one entry per requested info-hash, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// Echo of the request's id.
    pub transaction_id: TransactionId,
    /// Counts in the order of the request's info-hashes.
    pub stats: Vec<ScrapeStats>,
}

impl ScrapeResponse {
    /// Appends the packet (counts saturate at `i32::MAX`).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Action::Scrape.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        for s in &self.stats {
            put_count(out, s.seeders);
            put_count(out, s.completed);
            put_count(out, s.leechers);
        }
    }

    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REPLY_HEADER_LEN + 12 * self.stats.len());
        self.encode_into(&mut out);
        out
    }

    fn decode_body(transaction_id: TransactionId, r: &mut Reader<'_>) -> Result<Self, UdpError> {
        let n = r.entries::<12>()?.count();
        let mut stats = Vec::with_capacity(n);
        for _ in 0..n {
            stats.push(ScrapeStats {
                seeders: r.count("seeders")?,
                completed: r.count("completed")?,
                leechers: r.count("leechers")?,
            });
        }
        Ok(ScrapeResponse {
            transaction_id,
            stats,
        })
    }
}

/// Error reply: the tracker refused the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Echo of the request's id.
    pub transaction_id: TransactionId,
    /// The tracker's message (invalid UTF-8 replaced by U+FFFD).
    pub message: String,
}

impl ErrorResponse {
    /// Appends the packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Action::Error.code().to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        out.extend_from_slice(self.message.as_bytes());
    }

    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REPLY_HEADER_LEN + self.message.len());
        self.encode_into(&mut out);
        out
    }
}

/// Any packet a client sends (what a tracker decodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Action 0.
    Connect(ConnectRequest),
    /// Action 1.
    Announce(AnnounceRequest),
    /// Action 2.
    Scrape(ScrapeRequest),
}

impl Request {
    /// Decodes a request datagram.
    ///
    /// A connect request must be exactly 16 bytes with [`PROTOCOL_ID`]. An announce request
    /// may carry BEP 41 options after its 98 bytes; they are ignored. A scrape request is a
    /// 16-byte header and whole 20-byte info-hashes.
    pub fn decode(packet: &[u8]) -> Result<Self, UdpError> {
        let mut r = Reader::new("request", packet);
        let connection_id = r.u64()?;
        let action_offset = r.offset;
        match r.action()? {
            Action::Connect => {
                if connection_id != PROTOCOL_ID {
                    return Err(UdpError::BadProtocolId {
                        found: connection_id,
                    });
                }
                let transaction_id = TransactionId(r.u32()?);
                if packet.len() != CONNECT_LEN {
                    return Err(UdpError::WrongLength {
                        what: "connect request",
                        len: packet.len(),
                        expected: CONNECT_LEN,
                    });
                }
                Ok(Request::Connect(ConnectRequest { transaction_id }))
            }
            Action::Announce => {
                r.what = "announce request";
                AnnounceRequest::decode_body(ConnectionId(connection_id), &mut r)
                    .map(Request::Announce)
            }
            Action::Scrape => {
                r.what = "scrape request";
                let transaction_id = TransactionId(r.u32()?);
                let info_hashes = r.entries::<20>()?.map(|h| InfoHash(*h)).collect();
                Ok(Request::Scrape(ScrapeRequest {
                    connection_id: ConnectionId(connection_id),
                    transaction_id,
                    info_hashes,
                }))
            }
            Action::Error => Err(UdpError::UnknownAction {
                code: Action::Error.code(),
                offset: action_offset,
            }),
        }
    }

    /// Appends the packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Request::Connect(p) => p.encode_into(out),
            Request::Announce(p) => p.encode_into(out),
            Request::Scrape(p) => p.encode_into(out),
        }
    }

    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Any packet a tracker sends (what a client decodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Action 0.
    Connect(ConnectResponse),
    /// Action 1.
    Announce(AnnounceResponse),
    /// Action 2.
    Scrape(ScrapeResponse),
    /// Action 3.
    Error(ErrorResponse),
}

impl Response {
    /// Decodes a reply datagram. `family` is that of the socket it arrived on: it decides
    /// whether announce peers are 6 or 18 bytes (BEP 15).
    ///
    /// A connect response must be exactly 16 bytes; announce peers and scrape entries must
    /// fill the packet with whole entries (a ragged tail means a broken or truncated reply).
    pub fn decode(packet: &[u8], family: AddressFamily) -> Result<Self, UdpError> {
        let mut r = Reader::new("reply", packet);
        let action = r.action()?;
        let transaction_id = TransactionId(r.u32()?);
        match action {
            Action::Connect => {
                r.what = "connect response";
                let connection_id = ConnectionId(r.u64()?);
                if packet.len() != CONNECT_LEN {
                    return Err(UdpError::WrongLength {
                        what: "connect response",
                        len: packet.len(),
                        expected: CONNECT_LEN,
                    });
                }
                Ok(Response::Connect(ConnectResponse {
                    transaction_id,
                    connection_id,
                }))
            }
            Action::Announce => {
                r.what = "announce response";
                AnnounceResponse::decode_body(transaction_id, &mut r, family)
                    .map(Response::Announce)
            }
            Action::Scrape => {
                r.what = "scrape response";
                ScrapeResponse::decode_body(transaction_id, &mut r).map(Response::Scrape)
            }
            Action::Error => Ok(Response::Error(ErrorResponse {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            })),
        }
    }

    /// The echoed transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Response::Connect(p) => p.transaction_id,
            Response::Announce(p) => p.transaction_id,
            Response::Scrape(p) => p.transaction_id,
            Response::Error(p) => p.transaction_id,
        }
    }

    /// What kind of reply this is.
    pub fn action(&self) -> Action {
        match self {
            Response::Connect(_) => Action::Connect,
            Response::Announce(_) => Action::Announce,
            Response::Scrape(_) => Action::Scrape,
            Response::Error(_) => Action::Error,
        }
    }

    /// Appends the packet.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Response::Connect(p) => p.encode_into(out),
            Response::Announce(p) => p.encode_into(out),
            Response::Scrape(p) => p.encode_into(out),
            Response::Error(p) => p.encode_into(out),
        }
    }

    /// The packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Decodes a reply and checks that it answers our request: same transaction id, and the
/// request's action or an error reply. The transaction id is checked before the body, so a
/// stray packet for another request is reported as a mismatch even if malformed.
pub fn decode_reply(
    packet: &[u8],
    family: AddressFamily,
    expected_transaction: TransactionId,
    expected_action: Action,
) -> Result<Response, UdpError> {
    let mut r = Reader::new("reply", packet);
    let _action_code = r.u32()?;
    let found = r.u32()?;
    if found != expected_transaction.0 {
        return Err(UdpError::TransactionMismatch {
            expected: expected_transaction.0,
            found,
        });
    }
    let reply = Response::decode(packet, family)?;
    let action = reply.action();
    if action != expected_action && action != Action::Error {
        return Err(UdpError::UnexpectedAction {
            expected: expected_action,
            found: action,
        });
    }
    Ok(reply)
}

impl From<AnnounceResponse> for super::AnnounceResponse {
    /// A UDP announce reply in the transport-independent form the engine takes.
    fn from(reply: AnnounceResponse) -> Self {
        let peers = match reply.peers {
            CompactPeers::V4(v) => v
                .into_iter()
                .map(|a| super::Peer::from_addr(std::net::SocketAddr::V4(a)))
                .collect(),
            CompactPeers::V6(v) => v
                .into_iter()
                .map(|a| super::Peer::from_addr(std::net::SocketAddr::V6(a)))
                .collect(),
        };
        super::AnnounceResponse {
            interval: reply.interval,
            min_interval: None,
            warning: None,
            tracker_id: None,
            complete: Some(reply.seeders),
            incomplete: Some(reply.leechers),
            peers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TXN: TransactionId = TransactionId(0xdead_beef);

    #[test]
    fn connect_request_exact_bytes() {
        let p = ConnectRequest {
            transaction_id: TXN,
        }
        .encode();
        assert_eq!(
            p,
            [
                0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, // protocol id
                0, 0, 0, 0, // action connect
                0xde, 0xad, 0xbe, 0xef, // transaction
            ]
        );
        assert_eq!(
            Request::decode(&p),
            Ok(Request::Connect(ConnectRequest {
                transaction_id: TXN
            }))
        );
    }

    #[test]
    fn connect_request_rejects_bad_magic_and_length() {
        let mut p = ConnectRequest {
            transaction_id: TXN,
        }
        .encode();
        let mut extra = p.clone();
        extra.push(0);
        assert!(matches!(
            Request::decode(&extra),
            Err(UdpError::WrongLength { len: 17, .. })
        ));
        p[7] = 0x81;
        assert_eq!(
            Request::decode(&p),
            Err(UdpError::BadProtocolId {
                found: 0x0417_2710_1981
            })
        );
    }

    #[test]
    fn connect_response_decodes_and_checks_length() {
        let mut p = vec![0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(
            decode_reply(&p, AddressFamily::V4, TXN, Action::Connect),
            Ok(Response::Connect(ConnectResponse {
                transaction_id: TXN,
                connection_id: ConnectionId(0x0102_0304_0506_0708)
            }))
        );
        assert!(matches!(
            Response::decode(&p[..15], AddressFamily::V4),
            Err(UdpError::TooShort {
                len: 15,
                min: 16,
                ..
            })
        ));
        p.push(9);
        assert!(matches!(
            Response::decode(&p, AddressFamily::V4),
            Err(UdpError::WrongLength { expected: 16, .. })
        ));
    }

    fn sample_announce() -> AnnounceRequest {
        AnnounceRequest {
            connection_id: ConnectionId(0x1122_3344_5566_7788),
            transaction_id: TXN,
            info_hash: InfoHash([0xaa; 20]),
            peer_id: PeerId(*b"-BT0100-012345678901"),
            downloaded: 1,
            left: 2,
            uploaded: 3,
            event: Some(AnnounceEvent::Started),
            ip: None,
            key: 0x0bad_f00d,
            num_want: None,
            port: 6881,
        }
    }

    #[test]
    fn announce_request_layout() {
        let p = sample_announce().encode();
        assert_eq!(p.len(), ANNOUNCE_REQUEST_LEN);
        assert_eq!(&p[8..12], &[0, 0, 0, 1], "action");
        assert_eq!(&p[16..36], &[0xaa; 20], "info hash");
        assert_eq!(&p[56..64], &1u64.to_be_bytes(), "downloaded first");
        assert_eq!(&p[64..72], &2u64.to_be_bytes(), "then left");
        assert_eq!(&p[72..80], &3u64.to_be_bytes(), "then uploaded");
        assert_eq!(&p[80..84], &[0, 0, 0, 2], "started is 2");
        assert_eq!(&p[84..88], &[0, 0, 0, 0], "ip 0 = source address");
        assert_eq!(&p[88..92], &[0x0b, 0xad, 0xf0, 0x0d], "key");
        assert_eq!(&p[92..96], &[0xff; 4], "num_want -1 = default");
        assert_eq!(&p[96..98], &[0x1a, 0xe1], "port");
    }

    #[test]
    fn announce_request_event_codes_and_bep41_options() {
        for (event, code) in [
            (None, 0u8),
            (Some(AnnounceEvent::Completed), 1),
            (Some(AnnounceEvent::Started), 2),
            (Some(AnnounceEvent::Stopped), 3),
        ] {
            let req = AnnounceRequest {
                event,
                ..sample_announce()
            };
            let mut p = req.encode();
            assert_eq!(p[83], code);
            // BEP 41 URL-data option after the fixed part.
            p.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
            assert_eq!(Request::decode(&p), Ok(Request::Announce(req)));
        }
        let mut p = sample_announce().encode();
        p[83] = 4;
        assert_eq!(
            Request::decode(&p),
            Err(UdpError::UnknownEvent {
                code: 4,
                offset: 80
            })
        );
        assert!(matches!(
            Request::decode(&sample_announce().encode()[..97]),
            Err(UdpError::TooShort { min: 98, .. })
        ));
    }

    #[test]
    fn announce_request_from_transport_independent_request() {
        let generic = crate::tracker::AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([2; 20]),
            port: 51413,
            uploaded: 10,
            downloaded: 20,
            left: 30,
            event: Some(AnnounceEvent::Stopped),
            numwant: Some(50),
            key: Some(7),
            tracker_id: Some(b"abc".to_vec()),
            ip: Some("2001:db8::1".parse().unwrap()),
        };
        let udp = AnnounceRequest::from_announce(ConnectionId(9), TXN, &generic);
        assert_eq!(udp.ip, None, "an IPv6 address has no room in the packet");
        assert_eq!(udp.key, 7);
        assert_eq!(udp.num_want, Some(50));
        assert_eq!((udp.uploaded, udp.downloaded, udp.left), (10, 20, 30));
    }

    #[test]
    fn negative_num_want_is_default() {
        let mut p = sample_announce().encode();
        p[92..96].copy_from_slice(&(-7i32).to_be_bytes());
        match Request::decode(&p) {
            Ok(Request::Announce(a)) => assert_eq!(a.num_want, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn announce_response_v4_and_v6_peers() {
        let mut head = vec![0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        head.extend_from_slice(&1800u32.to_be_bytes());
        head.extend_from_slice(&5u32.to_be_bytes());
        head.extend_from_slice(&7u32.to_be_bytes());

        let mut v4 = head.clone();
        v4.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80]);
        let Ok(Response::Announce(a)) = Response::decode(&v4, AddressFamily::V4) else {
            panic!()
        };
        assert_eq!(a.interval, Duration::from_secs(1800));
        assert_eq!((a.leechers, a.seeders), (5, 7));
        assert_eq!(
            a.peers,
            CompactPeers::V4(vec![
                "10.0.0.1:6881".parse().unwrap(),
                "192.168.1.2:80".parse().unwrap()
            ])
        );
        // The same 12 bytes are not a whole IPv6 entry.
        assert!(matches!(
            Response::decode(&v4, AddressFamily::V6),
            Err(UdpError::RaggedEntries {
                offset: 20,
                len: 12,
                entry: 18,
                ..
            })
        ));

        let mut v6 = head;
        v6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0x1a, 0xe2]);
        let Ok(Response::Announce(a)) = Response::decode(&v6, AddressFamily::V6) else {
            panic!()
        };
        assert_eq!(
            a.peers,
            CompactPeers::V6(vec!["[2001:db8::7]:6882".parse().unwrap()])
        );
        assert_eq!(a.encode(), v6);
    }

    #[test]
    fn announce_response_rejects_negative_counts() {
        let mut p = vec![0, 0, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        assert_eq!(
            Response::decode(&p, AddressFamily::V4),
            Err(UdpError::Negative {
                field: "interval",
                offset: 8,
                value: -1
            })
        );
        assert!(matches!(
            Response::decode(&p[..19], AddressFamily::V4),
            Err(UdpError::TooShort { min: 20, .. }) | Err(UdpError::Negative { .. })
        ));
    }

    #[test]
    fn scrape_round_trip_and_layout() {
        let req = ScrapeRequest {
            connection_id: ConnectionId(5),
            transaction_id: TXN,
            info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        };
        let p = req.encode();
        assert_eq!(p.len(), 16 + 40);
        assert_eq!(&p[8..12], &[0, 0, 0, 2]);
        assert_eq!(Request::decode(&p), Ok(Request::Scrape(req)));
        assert!(matches!(
            Request::decode(&p[..55]),
            Err(UdpError::RaggedEntries { entry: 20, .. })
        ));

        let mut reply = vec![0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef];
        for n in [3u32, 100, 4] {
            reply.extend_from_slice(&n.to_be_bytes());
        }
        assert_eq!(
            decode_reply(&reply, AddressFamily::V4, TXN, Action::Scrape),
            Ok(Response::Scrape(ScrapeResponse {
                transaction_id: TXN,
                stats: vec![ScrapeStats {
                    seeders: 3,
                    completed: 100,
                    leechers: 4
                }]
            }))
        );
        reply.pop();
        assert!(matches!(
            Response::decode(&reply, AddressFamily::V4),
            Err(UdpError::RaggedEntries { entry: 12, .. })
        ));
    }

    #[test]
    fn error_reply_is_accepted_for_any_request() {
        let mut p = vec![0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(b"torrent not registered");
        let r = decode_reply(&p, AddressFamily::V4, TXN, Action::Announce);
        assert_eq!(
            r,
            Ok(Response::Error(ErrorResponse {
                transaction_id: TXN,
                message: "torrent not registered".into()
            }))
        );
    }

    #[test]
    fn decode_reply_checks_transaction_and_action() {
        let p = ConnectResponse {
            transaction_id: TransactionId(1),
            connection_id: ConnectionId(2),
        }
        .encode();
        assert_eq!(
            decode_reply(&p, AddressFamily::V4, TransactionId(2), Action::Connect),
            Err(UdpError::TransactionMismatch {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            decode_reply(&p, AddressFamily::V4, TransactionId(1), Action::Announce),
            Err(UdpError::UnexpectedAction {
                expected: Action::Announce,
                found: Action::Connect
            })
        );
        assert_eq!(
            Response::decode(&[0, 0, 0, 9, 0, 0, 0, 0], AddressFamily::V4),
            Err(UdpError::UnknownAction { code: 9, offset: 0 })
        );
        assert!(matches!(
            Request::decode(&[0; 16]).map(|_| ()),
            Err(UdpError::BadProtocolId { found: 0 })
        ));
    }

    #[test]
    fn retransmit_schedule() {
        let expected = [15u64, 30, 60, 120, 240, 480, 960, 1920, 3840];
        for (n, secs) in expected.iter().enumerate() {
            assert_eq!(
                timeout_for_attempt(n as u32),
                Some(Duration::from_secs(*secs))
            );
        }
        assert_eq!(timeout_for_attempt(MAX_ATTEMPT + 1), None);
        assert_eq!(timeout_for_attempt(u32::MAX), None);
    }

    #[test]
    fn connection_id_lifetime() {
        let t = Instant::now();
        assert!(connection_id_valid(t, t));
        assert!(connection_id_valid(t, t + Duration::from_millis(59_999)));
        assert!(!connection_id_valid(t, t + CONNECTION_ID_LIFETIME));
        // A `now` before the id was obtained (caller mixed up instants) counts as fresh.
        assert!(connection_id_valid(t + Duration::from_secs(5), t));
    }

    fn arb_txn() -> impl Strategy<Value = TransactionId> {
        any::<u32>().prop_map(TransactionId)
    }

    fn arb_event() -> impl Strategy<Value = Option<AnnounceEvent>> {
        prop_oneof![
            Just(None),
            Just(Some(AnnounceEvent::Started)),
            Just(Some(AnnounceEvent::Completed)),
            Just(Some(AnnounceEvent::Stopped)),
        ]
    }

    fn arb_count() -> impl Strategy<Value = u32> {
        0..=i32::MAX as u32
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        let connect =
            arb_txn().prop_map(|t| Request::Connect(ConnectRequest { transaction_id: t }));
        let announce = (
            any::<u64>(),
            arb_txn(),
            any::<[u8; 20]>(),
            any::<[u8; 20]>(),
            any::<(u64, u64, u64)>(),
            arb_event(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(arb_count()),
            any::<u16>(),
        )
            .prop_map(|(c, t, ih, pid, (d, l, u), event, ip, key, nw, port)| {
                Request::Announce(AnnounceRequest {
                    connection_id: ConnectionId(c),
                    transaction_id: t,
                    info_hash: InfoHash(ih),
                    peer_id: PeerId(pid),
                    downloaded: d,
                    left: l,
                    uploaded: u,
                    event,
                    ip: (ip != 0).then(|| Ipv4Addr::from(ip)),
                    key,
                    num_want: nw,
                    port,
                })
            });
        let scrape = (
            any::<u64>(),
            arb_txn(),
            proptest::collection::vec(any::<[u8; 20]>(), 0..80),
        )
            .prop_map(|(c, t, hs)| {
                Request::Scrape(ScrapeRequest {
                    connection_id: ConnectionId(c),
                    transaction_id: t,
                    info_hashes: hs.into_iter().map(InfoHash).collect(),
                })
            });
        prop_oneof![connect, announce, scrape]
    }

    fn arb_response() -> impl Strategy<Value = Response> {
        let connect = (arb_txn(), any::<u64>()).prop_map(|(t, c)| {
            Response::Connect(ConnectResponse {
                transaction_id: t,
                connection_id: ConnectionId(c),
            })
        });
        let peers = prop_oneof![
            proptest::collection::vec(any::<(u32, u16)>(), 0..50).prop_map(|v| {
                CompactPeers::V4(
                    v.into_iter()
                        .map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
                        .collect(),
                )
            }),
            proptest::collection::vec(any::<(u128, u16)>(), 0..50).prop_map(|v| {
                CompactPeers::V6(
                    v.into_iter()
                        .map(|(ip, port)| SocketAddrV6::new(ip.into(), port, 0, 0))
                        .collect(),
                )
            }),
        ];
        let announce = (arb_txn(), arb_count(), arb_count(), arb_count(), peers).prop_map(
            |(t, i, l, s, peers)| {
                Response::Announce(AnnounceResponse {
                    transaction_id: t,
                    interval: Duration::from_secs(i.into()),
                    leechers: l,
                    seeders: s,
                    peers,
                })
            },
        );
        let scrape = (
            arb_txn(),
            proptest::collection::vec((arb_count(), arb_count(), arb_count()), 0..80),
        )
            .prop_map(|(t, v)| {
                Response::Scrape(ScrapeResponse {
                    transaction_id: t,
                    stats: v
                        .into_iter()
                        .map(|(s, c, l)| ScrapeStats {
                            seeders: s,
                            completed: c,
                            leechers: l,
                        })
                        .collect(),
                })
            });
        let error = (arb_txn(), ".{0,100}").prop_map(|(t, m)| {
            Response::Error(ErrorResponse {
                transaction_id: t,
                message: m,
            })
        });
        prop_oneof![connect, announce, scrape, error]
    }

    proptest! {
        #[test]
        fn request_round_trip(req in arb_request()) {
            prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
        }

        #[test]
        fn response_round_trip(resp in arb_response()) {
            let family = match &resp {
                Response::Announce(a) => a.peers.family(),
                _ => AddressFamily::V4,
            };
            let bytes = resp.encode();
            prop_assert_eq!(
                decode_reply(&bytes, family, resp.transaction_id(), resp.action()),
                Ok(resp)
            );
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes, AddressFamily::V4);
            let _ = Response::decode(&bytes, AddressFamily::V6);
            let _ = decode_reply(&bytes, AddressFamily::V4, TXN, Action::Announce);
        }

        #[test]
        fn decoders_never_panic_on_plausible_headers(
            action in 0u32..5,
            txn in any::<u32>(),
            tail in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut reply = action.to_be_bytes().to_vec();
            reply.extend_from_slice(&txn.to_be_bytes());
            reply.extend_from_slice(&tail);
            let _ = Response::decode(&reply, AddressFamily::V4);
            let _ = Response::decode(&reply, AddressFamily::V6);
            let mut req = PROTOCOL_ID.to_be_bytes().to_vec();
            req.extend_from_slice(&action.to_be_bytes());
            req.extend_from_slice(&tail);
            let _ = Request::decode(&req);
        }
    }
}
