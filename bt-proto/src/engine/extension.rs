//! The extension protocol (BEP 10): our extension handshake, and what we read of theirs.

use std::net::{IpAddr, SocketAddr};

use super::peer::PeerExtensions;
use super::{ProtocolViolation, Session};
use crate::bencode::{self, Bencode};

/// Longest client name kept from a peer's extension handshake, in characters: enough for
/// every real client's "name version", short enough that a hostile peer cannot bloat memory.
pub const MAX_CLIENT_NAME: usize = 64;

/// Largest extension handshake accepted. Real ones are a few hundred bytes (a dictionary of
/// extension names and a few numbers); a peer sending more is closed rather than parsed.
pub const MAX_EXTENSION_HANDSHAKE_LEN: usize = 16 * 1024;

/// Extension handshakes accepted per connection. BEP 10 lets a peer send it again to change
/// a value; a peer sending it over and over only makes us parse it over and over.
pub const MAX_EXTENSION_HANDSHAKES: u32 = 4;

impl Session {
    /// Our extension handshake to the peer at `addr`.
    pub(super) fn our_extension_handshake(&self, addr: SocketAddr) -> Vec<u8> {
        let yourip: Vec<u8> = match addr.ip() {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        Bencode::dict()
            .with("m", Bencode::dict())
            .with("p", self.config.listen_port)
            .with("v", self.config.client_name.as_str())
            .with(
                "reqq",
                i64::try_from(self.config.max_peer_requests).unwrap_or(i64::MAX),
            )
            .with("yourip", yourip)
            .encode()
    }
}

/// What a peer's extension handshake says that we use; `None` when it is not bencode (that
/// costs the peer only its extensions). Values out of range are left out.
pub(super) fn parse_handshake(payload: &[u8]) -> Option<PeerExtensions> {
    let v = bencode::decode(payload).ok()?;
    Some(PeerExtensions {
        reqq: v
            .get(b"reqq")
            .and_then(|x| x.as_int())
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0),
        listen_port: v
            .get(b"p")
            .and_then(|x| x.as_int())
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0),
        client: v.get(b"v").and_then(|x| x.as_bytes()).map(|name| {
            String::from_utf8_lossy(name)
                .chars()
                .take(MAX_CLIENT_NAME)
                .collect()
        }),
        handshakes: 0,
    })
}

/// Checks a peer's extension handshake against the limits before it is parsed; `count` is
/// how many it sent before this one.
pub(super) fn check_handshake(payload: &[u8], count: u32) -> Result<(), ProtocolViolation> {
    if payload.len() > MAX_EXTENSION_HANDSHAKE_LEN {
        return Err(ProtocolViolation::ExtensionHandshakeTooLarge { len: payload.len() });
    }
    if count >= MAX_EXTENSION_HANDSHAKES {
        return Err(ProtocolViolation::TooManyExtensionHandshakes);
    }
    Ok(())
}

impl PeerExtensions {
    /// Takes what a later handshake says, keeping what it leaves out (BEP 10 allows a peer to
    /// send its handshake again to change some values).
    pub(super) fn update(&mut self, newer: PeerExtensions) {
        if newer.reqq.is_some() {
            self.reqq = newer.reqq;
        }
        if newer.listen_port.is_some() {
            self.listen_port = newer.listen_port;
        }
        if newer.client.is_some() {
            self.client = newer.client;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_reqq_port_and_a_bounded_client_name() {
        let long = "x".repeat(MAX_CLIENT_NAME * 2);
        let payload = Bencode::dict()
            .with("reqq", 250)
            .with("p", 51413)
            .with("v", long.as_str())
            .encode();
        let ext = parse_handshake(&payload).unwrap();
        assert_eq!(ext.reqq, Some(250));
        assert_eq!(ext.listen_port, Some(51413));
        assert_eq!(ext.client.unwrap().chars().count(), MAX_CLIENT_NAME);
    }

    #[test]
    fn out_of_range_values_are_left_out_and_garbage_is_none() {
        let payload = Bencode::dict().with("reqq", 0).with("p", 70000).encode();
        let ext = parse_handshake(&payload).unwrap();
        assert_eq!((ext.reqq, ext.listen_port), (None, None));
        assert!(parse_handshake(b"d1:").is_none());
    }

    #[test]
    fn a_later_handshake_keeps_what_it_leaves_out() {
        let mut ext = parse_handshake(&Bencode::dict().with("reqq", 9).encode()).unwrap();
        ext.update(parse_handshake(&Bencode::dict().with("p", 1).encode()).unwrap());
        assert_eq!((ext.reqq, ext.listen_port), (Some(9), Some(1)));
    }

    #[test]
    fn oversized_or_repeated_handshakes_are_violations() {
        assert!(check_handshake(&[b'd'; MAX_EXTENSION_HANDSHAKE_LEN], 0).is_ok());
        assert_eq!(
            check_handshake(&[b'd'; MAX_EXTENSION_HANDSHAKE_LEN + 1], 0),
            Err(ProtocolViolation::ExtensionHandshakeTooLarge {
                len: MAX_EXTENSION_HANDSHAKE_LEN + 1
            })
        );
        assert_eq!(
            check_handshake(b"de", MAX_EXTENSION_HANDSHAKES),
            Err(ProtocolViolation::TooManyExtensionHandshakes)
        );
    }
}
