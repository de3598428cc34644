//! The packets a client sends (connect, announce, scrape), and their decoding as a tracker
//! receives them.

use std::net::Ipv4Addr;

use super::fields::Reader;
use super::{
    ANNOUNCE_REQUEST_LEN, Action, CONNECT_LEN, ConnectionId, PROTOCOL_ID, REQUEST_HEADER_LEN,
    TransactionId, UdpError,
};
use crate::tracker::AnnounceEvent;
use crate::{InfoHash, PeerId};

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
    /// Builds the UDP request from the transport-independent [`crate::tracker::AnnounceRequest`].
    /// Its `tracker_id` has no UDP field; an IPv6 `ip` cannot be sent and becomes `None`;
    /// a missing `key` becomes 0.
    pub fn from_announce(
        connection_id: ConnectionId,
        transaction_id: TransactionId,
        req: &crate::tracker::AnnounceRequest,
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

/// Scrape request: swarm counts for several torrents at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// From the connect response.
    pub connection_id: ConnectionId,
    /// The request's id.
    pub transaction_id: TransactionId,
    /// The torrents; at most [`MAX_SCRAPE_HASHES`](super::MAX_SCRAPE_HASHES) to stay in one MTU
    /// (not enforced).
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
