//! Local service discovery (BEP 14): `BT-SEARCH` announces multicast on the local network,
//! so that peers of one swarm on one LAN find each other without a tracker.
//!
//! This module is the codec ([`Announce::encode`], [`Announce::decode`]) and, in [`policy`],
//! the rules of when to announce and what to accept; the engine's session uses both and the
//! adapter only moves the datagrams.
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n       (or [ff15::efc0:988f]:6771)
//! Port: 6881\r\n                       (our TCP listening port)
//! Infohash: <40 hex digits>\r\n        (one or more, consecutive)
//! cookie: <opaque>\r\n                 (lets a sender recognise its own announces)
//! \r\n
//! \r\n
//! ```
//!
//! Decoding is strict and bounded: at most [`MAX_LSD_MESSAGE_LEN`] bytes and
//! [`MAX_LSD_INFOHASHES`] info-hashes, the request line exactly `BT-SEARCH * HTTP/1.1`, a
//! `Host` naming one of the two groups, a valid `Port`, every `Infohash` 40 hex digits, and
//! nothing after the head but blank lines. Headers we do not know are ignored, as the BEP
//! asks.

pub mod policy;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::InfoHash;
use crate::encoding::hex;

/// The UDP port of both groups.
pub const LSD_PORT: u16 = 6771;

/// The IPv4 group (organisation-local scope, BEP 14).
pub const LSD_GROUP_V4: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), LSD_PORT);

/// The IPv6 group (site-local scope, BEP 14).
pub const LSD_GROUP_V6: SocketAddrV6 = SocketAddrV6::new(
    Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f),
    LSD_PORT,
    0,
    0,
);

/// Longest announce sent or accepted. BEP 14: "the packet length should not exceed 1400
/// bytes to avoid MTU/fragmentation problems"; a compliant sender never sends more, so a
/// longer datagram is not an announce.
pub const MAX_LSD_MESSAGE_LEN: usize = 1400;

/// Info-hashes in one announce, sent or accepted. 25 is what fits in
/// [`MAX_LSD_MESSAGE_LEN`]: each `Infohash:` line takes 52 bytes, and the request line,
/// `Host` (IPv6, the longer), `Port`, a cookie of [`MAX_LSD_COOKIE_LEN`] and the blank lines
/// take under 100 (a test checks the worst case).
pub const MAX_LSD_INFOHASHES: usize = 25;

/// Longest cookie we send: ours is 8 hex digits (a random `u32`, as libtorrent's), and 16
/// keeps the fullest announce within [`MAX_LSD_MESSAGE_LEN`]. Cookies received may be longer
/// (they are only compared with ours).
pub const MAX_LSD_COOKIE_LEN: usize = 16;

/// Header lines parsed in one announce: the info-hashes, `Host`, `Port`, the cookie and a few
/// unknown ones (the BEP lets senders add headers). More is not a message we want.
const MAX_HEADERS: usize = MAX_LSD_INFOHASHES + 8;

/// Which multicast group an announce goes to, or came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LsdGroup {
    /// `239.192.152.143:6771`.
    V4,
    /// `[ff15::efc0:988f]:6771`.
    V6,
}

impl LsdGroup {
    /// Both groups, IPv4 first.
    pub const ALL: [LsdGroup; 2] = [LsdGroup::V4, LsdGroup::V6];

    /// The group's address and port.
    pub fn addr(self) -> SocketAddr {
        match self {
            LsdGroup::V4 => SocketAddr::V4(LSD_GROUP_V4),
            LsdGroup::V6 => SocketAddr::V6(LSD_GROUP_V6),
        }
    }

    /// The group as the `Host` header writes it (RFC 2732 brackets for IPv6).
    pub fn host(self) -> &'static str {
        match self {
            LsdGroup::V4 => "239.192.152.143:6771",
            LsdGroup::V6 => "[ff15::efc0:988f]:6771",
        }
    }

    fn from_host(value: &[u8]) -> Option<LsdGroup> {
        LsdGroup::ALL
            .into_iter()
            .find(|g| value.eq_ignore_ascii_case(g.host().as_bytes()))
    }
}

/// One announce: "the peer at the sender's address, port `port`, is in these swarms".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The group named by `Host`.
    pub group: LsdGroup,
    /// The sender's TCP listening port (never 0).
    pub port: u16,
    /// The swarms, in the order sent, without repeats; at most [`MAX_LSD_INFOHASHES`].
    pub info_hashes: Vec<InfoHash>,
    /// The sender's cookie, if it sent one.
    pub cookie: Option<String>,
}

/// Why a datagram is not an announce we take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LsdError {
    /// Longer than [`MAX_LSD_MESSAGE_LEN`].
    #[error("announce of {0} bytes, over {MAX_LSD_MESSAGE_LEN}")]
    TooLong(usize),
    /// The head does not end (a truncated datagram).
    #[error("announce head is incomplete")]
    Truncated,
    /// Not an HTTP request head (or more than the header lines we parse).
    #[error("malformed announce head: {0}")]
    Malformed(httparse::Error),
    /// The request line is not `BT-SEARCH * HTTP/1.1`.
    #[error("request line is not BT-SEARCH * HTTP/1.1")]
    NotBtSearch,
    /// `Host` is missing or names neither LSD group.
    #[error("Host is missing or not an LSD group")]
    WrongHost,
    /// `Port` is missing, not a decimal number, or not in 1..=65535.
    #[error("Port is missing or invalid")]
    BadPort,
    /// An `Infohash` is not 40 hex digits.
    #[error("Infohash is not 40 hex digits")]
    BadInfohash,
    /// No `Infohash` at all.
    #[error("no Infohash")]
    NoInfohash,
    /// More than [`MAX_LSD_INFOHASHES`] info-hashes.
    #[error("more than {MAX_LSD_INFOHASHES} info-hashes")]
    TooManyInfohashes,
    /// `Host`, `Port` or `cookie` given twice.
    #[error("header {0} given twice")]
    Repeated(&'static str),
    /// The cookie holds bytes other than visible ASCII.
    #[error("cookie is not visible ASCII")]
    BadCookie,
    /// Bytes other than blank lines after the head.
    #[error("data after the announce head")]
    TrailingData,
}

impl Announce {
    /// The datagram for `self.group`. The announce is meant to respect the limits
    /// ([`MAX_LSD_INFOHASHES`], [`MAX_LSD_COOKIE_LEN`]); then it is at most
    /// [`MAX_LSD_MESSAGE_LEN`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(MAX_LSD_MESSAGE_LEN);
        out.push_str("BT-SEARCH * HTTP/1.1\r\nHost: ");
        out.push_str(self.group.host());
        out.push_str("\r\nPort: ");
        out.push_str(&self.port.to_string());
        out.push_str("\r\n");
        for h in &self.info_hashes {
            out.push_str("Infohash: ");
            out.push_str(&h.to_string());
            out.push_str("\r\n");
        }
        if let Some(cookie) = &self.cookie {
            out.push_str("cookie: ");
            out.push_str(cookie);
            out.push_str("\r\n");
        }
        // The BEP's message ends with two blank lines; receivers ignore the second.
        out.push_str("\r\n\r\n");
        out.into_bytes()
    }

    /// Reads one datagram; see the module docs for what is refused.
    pub fn decode(data: &[u8]) -> Result<Announce, LsdError> {
        if data.len() > MAX_LSD_MESSAGE_LEN {
            return Err(LsdError::TooLong(data.len()));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let len = match request.parse(data) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Err(LsdError::Truncated),
            Err(e) => return Err(LsdError::Malformed(e)),
        };
        if request.method != Some("BT-SEARCH")
            || request.path != Some("*")
            || request.version != Some(1)
        {
            return Err(LsdError::NotBtSearch);
        }
        let rest = data.get(len..).unwrap_or_default();
        if !rest.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return Err(LsdError::TrailingData);
        }
        let mut group = None;
        let mut port = None;
        let mut cookie = None;
        let mut info_hashes = Vec::new();
        for h in request.headers.iter() {
            let (name, value) = (h.name, h.value.trim_ascii());
            if name.eq_ignore_ascii_case("infohash") {
                let hash = hex::decode_array::<20>(value)
                    .map(InfoHash)
                    .ok_or(LsdError::BadInfohash)?;
                if !info_hashes.contains(&hash) {
                    if info_hashes.len() == MAX_LSD_INFOHASHES {
                        return Err(LsdError::TooManyInfohashes);
                    }
                    info_hashes.push(hash);
                }
            } else if name.eq_ignore_ascii_case("host") {
                let g = LsdGroup::from_host(value).ok_or(LsdError::WrongHost)?;
                set_once(&mut group, g, "Host")?;
            } else if name.eq_ignore_ascii_case("port") {
                set_once(&mut port, parse_port(value)?, "Port")?;
            } else if name.eq_ignore_ascii_case("cookie") {
                set_once(&mut cookie, parse_cookie(value)?, "cookie")?;
            }
        }
        if info_hashes.is_empty() {
            return Err(LsdError::NoInfohash);
        }
        Ok(Announce {
            group: group.ok_or(LsdError::WrongHost)?,
            port: port.ok_or(LsdError::BadPort)?,
            info_hashes,
            cookie,
        })
    }
}

/// Stores `value` in `slot`, refusing a header given twice.
fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), LsdError> {
    if slot.is_some() {
        return Err(LsdError::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

/// 1 to 5 decimal digits, 1..=65535.
fn parse_port(value: &[u8]) -> Result<u16, LsdError> {
    if value.is_empty() || value.len() > 5 || !value.iter().all(u8::is_ascii_digit) {
        return Err(LsdError::BadPort);
    }
    let n = value.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(LsdError::BadPort)
}

/// A cookie: visible ASCII, so it compares byte for byte with ours.
fn parse_cookie(value: &[u8]) -> Result<String, LsdError> {
    if !value.iter().all(u8::is_ascii_graphic) {
        return Err(LsdError::BadCookie);
    }
    String::from_utf8(value.to_vec()).map_err(|_| LsdError::BadCookie)
}

#[cfg(test)]
mod tests;
