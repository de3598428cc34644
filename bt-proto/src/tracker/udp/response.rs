//! The packets a tracker sends (connect, announce, scrape and error replies), and their
//! decoding as a client receives them, checked against the request they answer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use super::fields::{Reader, put_count, put_secs};
use super::{
    ANNOUNCE_RESPONSE_HEADER_LEN, Action, AddressFamily, CONNECT_LEN, ConnectionId,
    REPLY_HEADER_LEN, TransactionId, UdpError,
};
use crate::tracker::scrape::ScrapeStats;

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
    /// [`crate::tracker::announce_interval`] for the clamped schedule).
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

impl From<AnnounceResponse> for crate::tracker::AnnounceResponse {
    /// A UDP announce reply in the transport-independent form the engine takes.
    fn from(reply: AnnounceResponse) -> Self {
        let peers = match reply.peers {
            CompactPeers::V4(v) => v
                .into_iter()
                .map(|a| crate::tracker::Peer::from_addr(std::net::SocketAddr::V4(a)))
                .collect(),
            CompactPeers::V6(v) => v
                .into_iter()
                .map(|a| crate::tracker::Peer::from_addr(std::net::SocketAddr::V6(a)))
                .collect(),
        };
        crate::tracker::AnnounceResponse {
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
