//! HTTP announce (BEP 3, BEP 23 compact peers, BEP 7 IPv6 peers): the request's query string
//! and the bencoded reply, both ways (a client builds queries and parses replies; a test
//! tracker parses queries and builds replies).
//!
//! Reply decisions, applied the same way everywhere:
//! - a `failure reason` makes the whole reply a [`ReplyError::Failure`], whatever else it holds;
//! - a compact `peers`/`peers6` string whose length is not a multiple of 6/18 is rejected
//!   ([`FieldProblem::RaggedCompact`]): a truncated list means the framing is broken, so its
//!   entries cannot be trusted;
//! - intervals and counts must fit `0..=u32::MAX`; [`super::announce_interval`] clamps the
//!   schedule; a missing `interval` is [`super::DEFAULT_ANNOUNCE_INTERVAL`];
//! - a dictionary peer whose `ip` is not an address but a host name is kept as
//!   [`PeerAddr::Host`], for the adapter to resolve;
//! - unknown keys are ignored, keys out of order are accepted, duplicate keys are not; trailing
//!   ASCII whitespace after the dictionary is tolerated (some trackers print a newline).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{AnnounceEvent, DEFAULT_ANNOUNCE_INTERVAL};
use crate::bencode::{self, Bencode, DecodeError, DecodeErrorKind, Value};
use crate::compact::{self, Family};
use crate::encoding::percent::{self, Plus, encode_into, is_unreserved};
use crate::{InfoHash, PeerId};

/// Longest host name accepted in a dictionary peer's `ip` (the DNS limit, RFC 1035).
pub const MAX_HOST_LEN: usize = 253;

pub use crate::compact::{COMPACT_V4_LEN, COMPACT_V6_LEN};

/// What a client tells an HTTP tracker (BEP 3). Transport-independent: the UDP request is
/// built from it with [`super::udp::AnnounceRequest::from_announce`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peer connections on.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still wanted.
    pub left: u64,
    /// Why we announce; `None` for a regular announce.
    pub event: Option<AnnounceEvent>,
    /// Peers wanted (`numwant`); `None` leaves it to the tracker.
    pub numwant: Option<u32>,
    /// A random number that lets the tracker recognise us across address changes; sent as
    /// 8 uppercase hex digits, as most clients do.
    pub key: Option<u32>,
    /// The `tracker id` from a previous reply, to be echoed (`trackerid`).
    pub tracker_id: Option<Vec<u8>>,
    /// Our address, when the tracker cannot see it (same host, proxies).
    pub ip: Option<IpAddr>,
}

/// Appends a query to a URL that may already have one (`?` or `&` as needed). A fragment is
/// dropped: it is never sent to a server.
pub(crate) fn append_query(url: &str, query: &str) -> String {
    let base = url.split_once('#').map_or(url, |(b, _)| b);
    let mut out = String::with_capacity(base.len() + 1 + query.len());
    out.push_str(base);
    if !base.contains('?') {
        out.push('?');
    } else if !base.ends_with(['?', '&']) {
        out.push('&');
    }
    out.push_str(query);
    out
}

/// A malformed announce query (as a tracker sees it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required parameter is absent.
    #[error("announce query lacks `{0}`")]
    Missing(&'static str),
    /// A parameter appears twice.
    #[error("announce query has `{0}` twice")]
    Duplicate(&'static str),
    /// A parameter's value has the wrong form.
    #[error("announce query parameter `{param}` has an invalid value {value:?}")]
    Invalid {
        /// The parameter.
        param: &'static str,
        /// Its value (after percent-decoding, lossily as text).
        value: String,
    },
    /// A `%` not followed by two hex digits.
    #[error("bad percent-escape at byte {offset} of the query")]
    BadEscape {
        /// Offset of the `%` in the query.
        offset: usize,
    },
}

/// Splits a query into percent-decoded `(name, value)` pairs. Names are compared undecoded:
/// every parameter we know is plain ASCII.
pub(crate) fn query_pairs(query: &str) -> Result<Vec<(&str, Vec<u8>)>, QueryError> {
    let mut pairs = Vec::new();
    let mut offset = 0;
    for part in query.split('&') {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        if !name.is_empty() {
            let value_offset = offset + name.len() + 1;
            let value =
                percent::decode(value, Plus::Itself).map_err(|e| QueryError::BadEscape {
                    offset: value_offset + e.offset,
                })?;
            pairs.push((name, value));
        }
        offset += part.len() + 1;
    }
    Ok(pairs)
}

impl AnnounceRequest {
    /// The query string (no leading `?`): `info_hash`, `peer_id`, `port`, `uploaded`,
    /// `downloaded`, `left`, `compact=1`, then whichever of `event`, `numwant`, `key`,
    /// `trackerid`, `ip` are set.
    pub fn query(&self) -> String {
        let mut q = String::with_capacity(200);
        q.push_str("info_hash=");
        encode_into(self.info_hash.as_bytes(), is_unreserved, &mut q);
        q.push_str("&peer_id=");
        encode_into(self.peer_id.as_bytes(), is_unreserved, &mut q);
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = write!(
            q,
            "&port={}&uploaded={}&downloaded={}&left={}&compact=1",
            self.port, self.uploaded, self.downloaded, self.left
        );
        if let Some(e) = self.event {
            let _ = write!(q, "&event={}", e.as_str());
        }
        if let Some(n) = self.numwant {
            let _ = write!(q, "&numwant={n}");
        }
        if let Some(k) = self.key {
            let _ = write!(q, "&key={k:08X}");
        }
        if let Some(id) = &self.tracker_id {
            q.push_str("&trackerid=");
            encode_into(id, is_unreserved, &mut q);
        }
        if let Some(ip) = self.ip {
            q.push_str("&ip=");
            encode_into(ip.to_string().as_bytes(), is_unreserved, &mut q);
        }
        q
    }

    /// The full announce URL: `announce_url` (which may carry its own query, such as a
    /// private tracker's passkey) followed by [`AnnounceRequest::query`].
    pub fn to_url(&self, announce_url: &str) -> String {
        append_query(announce_url, &self.query())
    }

    /// Parses an announce query, as a tracker receives it (the part after `?`).
    ///
    /// Requires `info_hash` and `peer_id` (20 bytes each), `port`, `uploaded`, `downloaded`
    /// and `left`; `event` may also be empty (a regular announce); `key` is hex; unknown
    /// parameters (`compact`, `no_peer_id`, ...) are ignored; a known parameter given twice
    /// is an error.
    pub fn from_query(query: &str) -> Result<Self, QueryError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut uploaded = None;
        let mut downloaded = None;
        let mut left = None;
        let mut event = None;
        let mut numwant = None;
        let mut key = None;
        let mut tracker_id = None;
        let mut ip = None;

        fn set<T>(
            slot: &mut Option<T>,
            param: &'static str,
            value: Option<T>,
            raw: &[u8],
        ) -> Result<(), QueryError> {
            if slot.is_some() {
                return Err(QueryError::Duplicate(param));
            }
            let value = value.ok_or_else(|| QueryError::Invalid {
                param,
                value: String::from_utf8_lossy(raw).into_owned(),
            })?;
            *slot = Some(value);
            Ok(())
        }
        fn text(raw: &[u8]) -> Option<&str> {
            std::str::from_utf8(raw).ok()
        }
        fn num<T: std::str::FromStr>(raw: &[u8]) -> Option<T> {
            // `FromStr` for integers accepts a leading `+`; a query number is digits only.
            let s = text(raw).filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?;
            s.parse().ok()
        }

        for (name, raw) in query_pairs(query)? {
            let r = raw.as_slice();
            match name {
                "info_hash" => set(
                    &mut info_hash,
                    "info_hash",
                    <[u8; 20]>::try_from(r).ok().map(InfoHash),
                    r,
                )?,
                "peer_id" => set(
                    &mut peer_id,
                    "peer_id",
                    <[u8; 20]>::try_from(r).ok().map(PeerId),
                    r,
                )?,
                "port" => set(&mut port, "port", num::<u16>(r), r)?,
                "uploaded" => set(&mut uploaded, "uploaded", num::<u64>(r), r)?,
                "downloaded" => set(&mut downloaded, "downloaded", num::<u64>(r), r)?,
                "left" => set(&mut left, "left", num::<u64>(r), r)?,
                "event" => {
                    let e = match r {
                        b"started" => Some(Some(AnnounceEvent::Started)),
                        b"completed" => Some(Some(AnnounceEvent::Completed)),
                        b"stopped" => Some(Some(AnnounceEvent::Stopped)),
                        b"" | b"empty" => Some(None),
                        _ => None,
                    };
                    set(&mut event, "event", e, r)?
                }
                "numwant" => set(&mut numwant, "numwant", num::<u32>(r), r)?,
                "key" => {
                    let k = text(r)
                        .filter(|s| (1..=8).contains(&s.len()))
                        .and_then(|s| u32::from_str_radix(s, 16).ok());
                    set(&mut key, "key", k, r)?
                }
                "trackerid" => set(&mut tracker_id, "trackerid", Some(raw.clone()), r)?,
                "ip" => set(&mut ip, "ip", text(r).and_then(|s| s.parse().ok()), r)?,
                _ => {}
            }
        }
        Ok(AnnounceRequest {
            info_hash: info_hash.ok_or(QueryError::Missing("info_hash"))?,
            peer_id: peer_id.ok_or(QueryError::Missing("peer_id"))?,
            port: port.ok_or(QueryError::Missing("port"))?,
            uploaded: uploaded.ok_or(QueryError::Missing("uploaded"))?,
            downloaded: downloaded.ok_or(QueryError::Missing("downloaded"))?,
            left: left.ok_or(QueryError::Missing("left"))?,
            event: event.flatten(),
            numwant,
            key,
            tracker_id,
            ip,
        })
    }
}

/// A tracker's refusal (`failure reason`): the request was understood and denied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tracker refused: {reason}")]
pub struct TrackerFailure {
    /// The tracker's words (invalid UTF-8 replaced by U+FFFD).
    pub reason: String,
}

impl TrackerFailure {
    /// The bencoded reply `{"failure reason": reason}`.
    pub fn encode(&self) -> Vec<u8> {
        Bencode::dict()
            .with("failure reason", self.reason.as_str())
            .encode()
    }
}

/// What is wrong with one field of a tracker reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// The value has another bencode type.
    #[error("expected {0}")]
    WrongType(&'static str),
    /// A number outside the accepted range.
    #[error("{value} is outside {min}..={max}")]
    OutOfRange {
        /// The value.
        value: i64,
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A compact peer string that is not whole entries.
    #[error("{len} bytes is not a multiple of {entry}")]
    RaggedCompact {
        /// Its length.
        len: usize,
        /// Bytes per entry.
        entry: usize,
    },
    /// A dictionary peer's `ip` that is neither an address nor a host name.
    #[error("not an IP address or host name: {0:?}")]
    BadAddress(String),
    /// A required key is absent.
    #[error("missing")]
    Missing,
    /// A byte string of the wrong length (a peer id, an info-hash).
    #[error("{found} bytes, expected {expected}")]
    WrongLength {
        /// Bytes found.
        found: usize,
        /// Bytes expected.
        expected: usize,
    },
}

/// Why a tracker reply body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The body is not valid bencode.
    #[error("tracker reply: {0}")]
    Bencode(#[from] DecodeError),
    /// The body is bencode but not a dictionary.
    #[error("tracker reply is not a dictionary")]
    NotADict,
    /// A field is malformed; `offset` is where its value starts in the body.
    #[error("tracker reply field `{field}` at byte {offset}: {problem}")]
    Field {
        /// The key (for a peer entry, the key inside it, e.g. `port`).
        field: &'static str,
        /// Byte offset of the value in the body.
        offset: usize,
        /// What is wrong.
        problem: FieldProblem,
    },
    /// The tracker answered with a `failure reason`.
    #[error(transparent)]
    Failure(TrackerFailure),
}

fn field_err(field: &'static str, v: &Value<'_>, problem: FieldProblem) -> ReplyError {
    ReplyError::Field {
        field,
        offset: v.offset(),
        problem,
    }
}

/// Decodes a reply body into its top-level dictionary, tolerating trailing whitespace.
pub(crate) fn decode_reply_dict(body: &[u8]) -> Result<Value<'_>, ReplyError> {
    let (value, used) = bencode::decode_prefix(body)?;
    let tail = body.get(used..).unwrap_or_default();
    if let Some(pos) = tail.iter().position(|b| !b.is_ascii_whitespace()) {
        return Err(ReplyError::Bencode(DecodeError {
            offset: used + pos,
            kind: DecodeErrorKind::TrailingBytes,
        }));
    }
    if value.as_dict().is_none() {
        return Err(ReplyError::NotADict);
    }
    Ok(value)
}

/// Fails with [`ReplyError::Failure`] if the reply carries a `failure reason`.
pub(crate) fn check_failure(dict: &Value<'_>) -> Result<(), ReplyError> {
    match dict.get(b"failure reason") {
        None => Ok(()),
        Some(v) => {
            let reason = v.as_bytes().ok_or_else(|| {
                field_err("failure reason", v, FieldProblem::WrongType("a string"))
            })?;
            Err(ReplyError::Failure(TrackerFailure {
                reason: String::from_utf8_lossy(reason).into_owned(),
            }))
        }
    }
}

/// An optional integer key that must fit `0..=u32::MAX`.
pub(crate) fn opt_u32(dict: &Value<'_>, field: &'static str) -> Result<Option<u32>, ReplyError> {
    let Some(v) = dict.get(field.as_bytes()) else {
        return Ok(None);
    };
    let n = v
        .as_int()
        .ok_or_else(|| field_err(field, v, FieldProblem::WrongType("an integer")))?;
    u32::try_from(n).map(Some).map_err(|_| {
        field_err(
            field,
            v,
            FieldProblem::OutOfRange {
                value: n,
                min: 0,
                max: u32::MAX.into(),
            },
        )
    })
}

fn opt_bytes<'a>(dict: &Value<'a>, field: &'static str) -> Result<Option<&'a [u8]>, ReplyError> {
    match dict.get(field.as_bytes()) {
        None => Ok(None),
        Some(v) => v
            .as_bytes()
            .map(Some)
            .ok_or_else(|| field_err(field, v, FieldProblem::WrongType("a string"))),
    }
}

/// Where a peer can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An address (compact entries are always this).
    Ip(SocketAddr),
    /// A host name from a dictionary peer, for the adapter to resolve.
    Host {
        /// The name, checked to be a syntactically valid DNS name.
        host: String,
        /// The port.
        port: u16,
    },
}

/// One peer from an announce reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Where to connect.
    pub addr: PeerAddr,
    /// The peer's id, when the tracker sent the dictionary form with one.
    pub peer_id: Option<PeerId>,
}

impl Peer {
    /// A peer known only by address (what compact entries give).
    pub fn from_addr(addr: SocketAddr) -> Self {
        Peer {
            addr: PeerAddr::Ip(addr),
            peer_id: None,
        }
    }

    /// Whether this peer fits a compact entry (an address, no id).
    fn compact_addr(&self) -> Option<SocketAddr> {
        match (&self.addr, self.peer_id) {
            (PeerAddr::Ip(a), None) => Some(*a),
            _ => None,
        }
    }
}

/// Whether `s` is a DNS host name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOST_LEN
        && s.trim_end_matches('.').split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn compact_v4(v: &Value<'_>, field: &'static str, out: &mut Vec<Peer>) -> Result<(), ReplyError> {
    compact_peers(v, field, Family::V4, out)
}

fn compact_v6(v: &Value<'_>, out: &mut Vec<Peer>) -> Result<(), ReplyError> {
    compact_peers(v, "peers6", Family::V6, out)
}

fn compact_peers(
    v: &Value<'_>,
    field: &'static str,
    family: Family,
    out: &mut Vec<Peer>,
) -> Result<(), ReplyError> {
    let bytes = v
        .as_bytes()
        .ok_or_else(|| field_err(field, v, FieldProblem::WrongType("a string")))?;
    let addrs = compact::decode(bytes, family).map_err(|e| {
        let problem = FieldProblem::RaggedCompact {
            len: e.len,
            entry: e.entry,
        };
        field_err(field, v, problem)
    })?;
    out.extend(addrs.into_iter().map(Peer::from_addr));
    Ok(())
}

fn dict_peer(v: &Value<'_>) -> Result<Peer, ReplyError> {
    if v.as_dict().is_none() {
        return Err(field_err(
            "peers",
            v,
            FieldProblem::WrongType("a dictionary"),
        ));
    }
    let missing = |field| field_err(field, v, FieldProblem::Missing);
    let ip_v = v.get(b"ip").ok_or_else(|| missing("ip"))?;
    let ip_bytes = ip_v
        .as_bytes()
        .ok_or_else(|| field_err("ip", ip_v, FieldProblem::WrongType("a string")))?;
    let port_v = v.get(b"port").ok_or_else(|| missing("port"))?;
    let port_n = port_v
        .as_int()
        .ok_or_else(|| field_err("port", port_v, FieldProblem::WrongType("an integer")))?;
    let port = u16::try_from(port_n).map_err(|_| {
        let problem = FieldProblem::OutOfRange {
            value: port_n,
            min: 0,
            max: u16::MAX.into(),
        };
        field_err("port", port_v, problem)
    })?;
    let bad_addr = || {
        field_err(
            "ip",
            ip_v,
            FieldProblem::BadAddress(String::from_utf8_lossy(ip_bytes).into()),
        )
    };
    let text = std::str::from_utf8(ip_bytes).map_err(|_| bad_addr())?;
    // IPv6 literals sometimes come bracketed, as in URLs.
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let addr = if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        PeerAddr::Ip(SocketAddr::new(ip, port))
    } else if is_host_name(text) {
        PeerAddr::Host {
            host: text.to_owned(),
            port,
        }
    } else {
        return Err(bad_addr());
    };
    let peer_id = match v.get(b"peer id") {
        None => None,
        Some(id_v) => {
            let id = id_v
                .as_bytes()
                .ok_or_else(|| field_err("peer id", id_v, FieldProblem::WrongType("a string")))?;
            let id = <[u8; 20]>::try_from(id).map_err(|_| {
                let problem = FieldProblem::WrongLength {
                    found: id.len(),
                    expected: 20,
                };
                field_err("peer id", id_v, problem)
            })?;
            Some(PeerId(id))
        }
    };
    Ok(Peer { addr, peer_id })
}

/// A successful announce reply.
///
/// ```
/// use std::time::Duration;
/// use bt_proto::tracker::{AnnounceResponse, Peer};
///
/// let body = b"d8:intervali900e5:peers6:\x0a\x00\x00\x01\x1a\xe1e";
/// let reply = AnnounceResponse::decode(body).unwrap();
/// assert_eq!(reply.interval, Duration::from_secs(900));
/// assert_eq!(reply.peers, vec![Peer::from_addr("10.0.0.1:6881".parse().unwrap())]);
/// assert_eq!(AnnounceResponse::decode(&reply.encode()).unwrap(), reply);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// `interval`: wait before the next regular announce, whole seconds as sent
    /// ([`super::DEFAULT_ANNOUNCE_INTERVAL`] if absent; see [`super::announce_interval`]).
    pub interval: Duration,
    /// `min interval`: the tracker asks not to be contacted more often than this.
    pub min_interval: Option<Duration>,
    /// `warning message`: shown to the user; the reply is still good.
    pub warning: Option<String>,
    /// `tracker id`: echo it in later announces.
    pub tracker_id: Option<Vec<u8>>,
    /// `complete`: seeders.
    pub complete: Option<u32>,
    /// `incomplete`: leechers.
    pub incomplete: Option<u32>,
    /// `peers` then `peers6`, in reply order.
    pub peers: Vec<Peer>,
}

impl AnnounceResponse {
    /// Parses a reply body. A `failure reason` gives [`ReplyError::Failure`].
    pub fn decode(body: &[u8]) -> Result<Self, ReplyError> {
        let dict = decode_reply_dict(body)?;
        check_failure(&dict)?;
        let secs = |s: u32| Duration::from_secs(s.into());
        let interval = opt_u32(&dict, "interval")?.map_or(DEFAULT_ANNOUNCE_INTERVAL, secs);
        let min_interval = opt_u32(&dict, "min interval")?.map(secs);
        let warning =
            opt_bytes(&dict, "warning message")?.map(|w| String::from_utf8_lossy(w).into_owned());
        let tracker_id = opt_bytes(&dict, "tracker id")?.map(<[u8]>::to_vec);
        let complete = opt_u32(&dict, "complete")?;
        let incomplete = opt_u32(&dict, "incomplete")?;

        let mut peers = Vec::new();
        if let Some(v) = dict.get(b"peers") {
            if let Some(list) = v.as_list() {
                peers.reserve(list.len());
                for p in list {
                    peers.push(dict_peer(p)?);
                }
            } else if v.as_bytes().is_some() {
                compact_v4(v, "peers", &mut peers)?;
            } else {
                let problem = FieldProblem::WrongType("a string or a list");
                return Err(field_err("peers", v, problem));
            }
        }
        if let Some(v) = dict.get(b"peers6") {
            compact_v6(v, &mut peers)?;
        }
        Ok(AnnounceResponse {
            interval,
            min_interval,
            warning,
            tracker_id,
            complete,
            incomplete,
            peers,
        })
    }

    /// The bencoded reply, as a tracker sends it. Peers are compact (`peers` with IPv4,
    /// `peers6` with IPv6 entries) when every peer is a plain address without id; otherwise
    /// `peers` is the list-of-dictionaries form holding all of them. Durations are sent in
    /// whole seconds, saturating at `u32::MAX`.
    pub fn encode(&self) -> Vec<u8> {
        let secs = |d: Duration| {
            i64::try_from(d.as_secs())
                .unwrap_or(i64::MAX)
                .min(u32::MAX.into())
        };
        let mut reply = Bencode::dict().with("interval", secs(self.interval));
        if let Some(d) = self.min_interval {
            reply.insert("min interval", secs(d));
        }
        if let Some(w) = &self.warning {
            reply.insert("warning message", w.as_str());
        }
        if let Some(id) = &self.tracker_id {
            reply.insert("tracker id", id.as_slice());
        }
        if let Some(n) = self.complete {
            reply.insert("complete", n);
        }
        if let Some(n) = self.incomplete {
            reply.insert("incomplete", n);
        }
        let compact: Option<Vec<SocketAddr>> = self.peers.iter().map(Peer::compact_addr).collect();
        match compact {
            Some(addrs) => {
                let mut v4 = Vec::new();
                let mut v6 = Vec::new();
                compact::encode(&addrs, Family::V4, &mut v4);
                compact::encode(&addrs, Family::V6, &mut v6);
                reply.insert("peers", v4);
                if !v6.is_empty() {
                    reply.insert("peers6", v6);
                }
            }
            None => {
                let list = self
                    .peers
                    .iter()
                    .map(|p| {
                        let (ip, port) = match &p.addr {
                            PeerAddr::Ip(a) => (a.ip().to_string(), a.port()),
                            PeerAddr::Host { host, port } => (host.clone(), *port),
                        };
                        let mut d = Bencode::dict().with("ip", ip).with("port", port);
                        if let Some(id) = p.peer_id {
                            d.insert("peer id", id.as_bytes().as_slice());
                        }
                        d
                    })
                    .collect::<Vec<_>>();
                reply.insert("peers", list);
            }
        }
        reply.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

    fn sample() -> AnnounceRequest {
        let mut ih = [0u8; 20];
        ih[..10].copy_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45]);
        ih[10..].copy_from_slice(b"-._~ +/%&=");
        AnnounceRequest {
            info_hash: InfoHash(ih),
            peer_id: PeerId(*b"-BT0100-aZ09~._-xyzw"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: None,
            numwant: None,
            key: None,
            tracker_id: None,
            ip: None,
        }
    }

    #[test]
    fn percent_encoding_is_byte_by_byte_uppercase() {
        let q = sample().query();
        assert_eq!(
            q,
            "info_hash=%124Vx%9A%BC%DE%F1%23E-._~%20%2B%2F%25%26%3D\
             &peer_id=-BT0100-aZ09~._-xyzw\
             &port=6881&uploaded=1&downloaded=2&left=3&compact=1"
        );
    }

    #[test]
    fn optional_parameters() {
        let req = AnnounceRequest {
            event: Some(AnnounceEvent::Completed),
            numwant: Some(50),
            key: Some(0xab),
            tracker_id: Some(b"t 1".to_vec()),
            ip: Some("2001:db8::1".parse().unwrap()),
            ..sample()
        };
        assert!(req.query().ends_with(
            "&compact=1&event=completed&numwant=50&key=000000AB&trackerid=t%201&ip=2001%3Adb8%3A%3A1"
        ));
        for (e, s) in [
            (AnnounceEvent::Started, "&event=started"),
            (AnnounceEvent::Stopped, "&event=stopped"),
        ] {
            let q = AnnounceRequest {
                event: Some(e),
                ..sample()
            }
            .query();
            assert!(q.ends_with(s), "{q}");
        }
    }

    #[test]
    fn url_joins_existing_query() {
        let q = sample().query();
        let r = sample();
        assert_eq!(
            r.to_url("http://t.example/announce"),
            format!("http://t.example/announce?{q}")
        );
        assert_eq!(
            r.to_url("http://t.example/a.php?passkey=abc"),
            format!("http://t.example/a.php?passkey=abc&{q}")
        );
        assert_eq!(
            r.to_url("http://t.example/a?"),
            format!("http://t.example/a?{q}")
        );
        assert_eq!(
            r.to_url("http://t.example/a?x=1&"),
            format!("http://t.example/a?x=1&{q}")
        );
        assert_eq!(
            r.to_url("http://t.example/a#frag"),
            format!("http://t.example/a?{q}")
        );
    }

    #[test]
    fn query_parse_rejects_bad_input() {
        let good = sample().query();
        assert_eq!(AnnounceRequest::from_query(&good), Ok(sample()));
        assert_eq!(
            AnnounceRequest::from_query(&good.replace("&left=3", "")),
            Err(QueryError::Missing("left"))
        );
        assert_eq!(
            AnnounceRequest::from_query(&format!("{good}&port=1")),
            Err(QueryError::Duplicate("port"))
        );
        assert!(matches!(
            AnnounceRequest::from_query(&good.replace("port=6881", "port=70000")),
            Err(QueryError::Invalid { param: "port", .. })
        ));
        assert!(matches!(
            AnnounceRequest::from_query(&good.replace("left=3", "left=+3")),
            Err(QueryError::Invalid { param: "left", .. })
        ));
        assert!(matches!(
            AnnounceRequest::from_query(&format!("{good}&event=complete")),
            Err(QueryError::Invalid { param: "event", .. })
        ));
        assert_eq!(
            AnnounceRequest::from_query("info_hash=%1"),
            Err(QueryError::BadEscape { offset: 10 })
        );
        assert!(matches!(
            AnnounceRequest::from_query(&good.replace("info_hash=%12", "info_hash=")),
            Err(QueryError::Invalid {
                param: "info_hash",
                ..
            })
        ));
        // Unknown parameters and an empty event are a regular announce.
        let q = format!("{good}&event=&no_peer_id=1&supportcrypto=1");
        assert_eq!(AnnounceRequest::from_query(&q), Ok(sample()));
    }

    fn peer_v4(s: &str) -> Peer {
        Peer::from_addr(s.parse().unwrap())
    }

    #[test]
    fn compact_peers_v4_and_v6() {
        let mut body =
            b"d8:completei5e10:incompletei3e8:intervali1800e12:min intervali60e5:peers12:".to_vec();
        body.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 127, 0, 0, 1, 0, 80]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&"::1".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&[0x1f, 0x90]);
        body.push(b'e');
        let r = AnnounceResponse::decode(&body).unwrap();
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((r.complete, r.incomplete), (Some(5), Some(3)));
        assert_eq!(
            r.peers,
            vec![
                peer_v4("10.0.0.1:6881"),
                peer_v4("127.0.0.1:80"),
                peer_v4("[::1]:8080")
            ]
        );
        assert_eq!(
            r.encode(),
            body,
            "the encoder writes this canonical compact form"
        );
    }

    #[test]
    fn ragged_compact_is_rejected_with_offset() {
        let body = b"d8:intervali1e5:peers7:abcdefge";
        assert_eq!(
            AnnounceResponse::decode(body),
            Err(ReplyError::Field {
                field: "peers",
                offset: 21,
                problem: FieldProblem::RaggedCompact { len: 7, entry: 6 }
            })
        );
        let body = b"d6:peers66:abcdefe";
        assert!(matches!(
            AnnounceResponse::decode(body),
            Err(ReplyError::Field {
                field: "peers6",
                problem: FieldProblem::RaggedCompact { len: 6, entry: 18 },
                ..
            })
        ));
    }

    #[test]
    fn dict_peers_with_ids_v6_and_host_names() {
        let body = b"d8:intervali60e5:peersl\
            d2:ip8:10.0.0.27:peer id20:-XX0001-abcdefghijkl4:porti6881ee\
            d2:ip5:[::1]4:porti1ee\
            d2:ip3:::24:porti2ee\
            d2:ip16:peer.example.org4:porti3ee\
            ee";
        let r = AnnounceResponse::decode(body).unwrap();
        assert_eq!(
            r.peers,
            vec![
                Peer {
                    addr: PeerAddr::Ip("10.0.0.2:6881".parse().unwrap()),
                    peer_id: Some(PeerId(*b"-XX0001-abcdefghijkl")),
                },
                peer_v4("[::1]:1"),
                peer_v4("[::2]:2"),
                Peer {
                    addr: PeerAddr::Host {
                        host: "peer.example.org".into(),
                        port: 3
                    },
                    peer_id: None
                },
            ]
        );
        assert_eq!(AnnounceResponse::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn dict_peer_problems() {
        let cases: [(&[u8], &str, FieldProblem); 6] = [
            (b"d5:peersld4:porti1eeee", "ip", FieldProblem::Missing),
            (b"d5:peersld2:ip3:::1eee", "port", FieldProblem::Missing),
            (
                b"d5:peersld2:ip3:::14:porti70000eeee",
                "port",
                FieldProblem::OutOfRange {
                    value: 70000,
                    min: 0,
                    max: 65535,
                },
            ),
            (
                b"d5:peersld2:ip5:a b c4:porti1eeee",
                "ip",
                FieldProblem::BadAddress("a b c".into()),
            ),
            (
                b"d5:peersld2:ip3:::17:peer id3:abc4:porti1eeee",
                "peer id",
                FieldProblem::WrongLength {
                    found: 3,
                    expected: 20,
                },
            ),
            (
                b"d5:peersli1eee",
                "peers",
                FieldProblem::WrongType("a dictionary"),
            ),
        ];
        for (body, field, problem) in cases {
            match AnnounceResponse::decode(body) {
                Err(ReplyError::Field {
                    field: f,
                    problem: p,
                    ..
                }) => {
                    assert_eq!(
                        (f, p),
                        (field, problem),
                        "{}",
                        String::from_utf8_lossy(body)
                    );
                }
                other => panic!("{other:?} for {}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn failure_reason_wins() {
        let body = b"d14:failure reason17:torrent not found8:intervali5ee";
        assert_eq!(
            AnnounceResponse::decode(body),
            Err(ReplyError::Failure(TrackerFailure {
                reason: "torrent not found".into()
            }))
        );
        let f = TrackerFailure {
            reason: "nope".into(),
        };
        assert_eq!(f.encode(), b"d14:failure reason4:nopee");
        assert_eq!(
            AnnounceResponse::decode(&f.encode()),
            Err(ReplyError::Failure(f))
        );
    }

    #[test]
    fn intervals_and_counts_must_fit() {
        assert_eq!(
            AnnounceResponse::decode(b"d8:intervali-1ee"),
            Err(ReplyError::Field {
                field: "interval",
                offset: 11,
                problem: FieldProblem::OutOfRange {
                    value: -1,
                    min: 0,
                    max: u32::MAX.into()
                }
            })
        );
        assert!(matches!(
            AnnounceResponse::decode(b"d8:completei4294967296ee"),
            Err(ReplyError::Field {
                field: "complete",
                ..
            })
        ));
        assert!(matches!(
            AnnounceResponse::decode(b"d8:interval2:10e"),
            Err(ReplyError::Field {
                field: "interval",
                problem: FieldProblem::WrongType("an integer"),
                ..
            })
        ));
        let r = AnnounceResponse::decode(b"de").unwrap();
        assert_eq!(r.interval, DEFAULT_ANNOUNCE_INTERVAL);
        assert!(r.peers.is_empty());
    }

    #[test]
    fn warning_tracker_id_and_framing() {
        let r = AnnounceResponse::decode(b"d10:tracker id3:x\xff\x0015:warning message3:hm!e\r\n")
            .unwrap();
        assert_eq!(r.tracker_id.as_deref(), Some(&b"x\xff\x00"[..]));
        assert_eq!(r.warning.as_deref(), Some("hm!"));
        assert!(matches!(
            AnnounceResponse::decode(b"dex"),
            Err(ReplyError::Bencode(DecodeError {
                offset: 2,
                kind: DecodeErrorKind::TrailingBytes
            }))
        ));
        assert_eq!(AnnounceResponse::decode(b"le"), Err(ReplyError::NotADict));
        assert!(matches!(
            AnnounceResponse::decode(b"<html>"),
            Err(ReplyError::Bencode(_))
        ));
    }

    #[test]
    fn key_order_is_lenient_duplicates_are_not() {
        let r = AnnounceResponse::decode(b"d8:intervali60e8:completei1e5:peers0:e").unwrap();
        assert_eq!((r.interval, r.complete), (Duration::from_secs(60), Some(1)));
        assert!(matches!(
            AnnounceResponse::decode(b"d8:intervali60e8:intervali61ee"),
            Err(ReplyError::Bencode(DecodeError {
                kind: DecodeErrorKind::DuplicateKey,
                ..
            }))
        ));
    }

    fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
        (
            any::<([u8; 20], [u8; 20], u16)>(),
            any::<(u64, u64, u64)>(),
            prop_oneof![
                Just(None),
                Just(Some(AnnounceEvent::Started)),
                Just(Some(AnnounceEvent::Completed)),
                Just(Some(AnnounceEvent::Stopped)),
            ],
            any::<(Option<u32>, Option<u32>)>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            proptest::option::of(any::<IpAddr>()),
        )
            .prop_map(
                |(
                    (ih, pid, port),
                    (uploaded, downloaded, left),
                    event,
                    (numwant, key),
                    tid,
                    ip,
                )| {
                    AnnounceRequest {
                        info_hash: InfoHash(ih),
                        peer_id: PeerId(pid),
                        port,
                        uploaded,
                        downloaded,
                        left,
                        event,
                        numwant,
                        key,
                        tracker_id: tid,
                        ip,
                    }
                },
            )
    }

    fn arb_peer() -> impl Strategy<Value = Peer> {
        (
            prop_oneof![
                any::<SocketAddr>().prop_map(|a| match a {
                    // Scope ids and flow info have no place on the wire.
                    SocketAddr::V6(a) =>
                        PeerAddr::Ip(SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, 0))),
                    v4 => PeerAddr::Ip(v4),
                }),
                (
                    "[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z]{1,5}){0,3}",
                    any::<u16>()
                )
                    .prop_map(|(host, port)| PeerAddr::Host { host, port }),
            ],
            proptest::option::of(any::<[u8; 20]>().prop_map(PeerId)),
        )
            .prop_map(|(addr, peer_id)| Peer { addr, peer_id })
    }

    fn arb_response(
        peers: impl Strategy<Value = Vec<Peer>>,
    ) -> impl Strategy<Value = AnnounceResponse> {
        (
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(".{0,20}"),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            any::<(Option<u32>, Option<u32>)>(),
            peers,
        )
            .prop_map(
                |(i, mi, warning, tracker_id, (complete, incomplete), peers)| AnnounceResponse {
                    interval: Duration::from_secs(i.into()),
                    min_interval: mi.map(|s| Duration::from_secs(s.into())),
                    warning,
                    tracker_id,
                    complete,
                    incomplete,
                    peers,
                },
            )
    }

    fn compact_peers() -> impl Strategy<Value = Vec<Peer>> {
        // Compact encoding lists IPv4 (`peers`) before IPv6 (`peers6`), so generate them so.
        (
            proptest::collection::vec(any::<SocketAddrV4>(), 0..30),
            proptest::collection::vec(any::<(std::net::Ipv6Addr, u16)>(), 0..30),
        )
            .prop_map(|(v4, v6)| {
                v4.into_iter()
                    .map(|a| Peer::from_addr(SocketAddr::V4(a)))
                    .chain(v6.into_iter().map(|(ip, port)| {
                        Peer::from_addr(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
                    }))
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn query_round_trip(req in arb_request()) {
            prop_assert_eq!(AnnounceRequest::from_query(&req.query()), Ok(req));
        }

        #[test]
        fn compact_reply_round_trip(resp in arb_response(compact_peers())) {
            let bytes = resp.encode();
            prop_assert!(!bytes.windows(7).any(|w| w == b"peer id"));
            prop_assert_eq!(AnnounceResponse::decode(&bytes), Ok(resp));
        }

        #[test]
        fn any_reply_round_trip(resp in arb_response(proptest::collection::vec(arb_peer(), 0..20))) {
            let bytes = resp.encode();
            let back = AnnounceResponse::decode(&bytes);
            // All-compact lists come back with IPv4 first; compare as multisets then.
            let mut want = resp.peers.clone();
            let mut got = back.clone().map(|r| r.peers).unwrap_or_default();
            want.sort_by_key(|p| format!("{p:?}"));
            got.sort_by_key(|p| format!("{p:?}"));
            prop_assert_eq!(got, want);
            prop_assert_eq!(back.map(|r| AnnounceResponse { peers: vec![], ..r }),
                Ok(AnnounceResponse { peers: vec![], ..resp }));
        }

        #[test]
        fn reply_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = AnnounceResponse::decode(&bytes);
        }

        #[test]
        fn reply_decoder_never_panics_on_near_valid(
            peers in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..80,
        ) {
            let mut body = b"d8:intervali30e5:peers".to_vec();
            body.extend_from_slice(peers.len().to_string().as_bytes());
            body.push(b':');
            body.extend_from_slice(&peers);
            body.push(b'e');
            body.truncate(body.len().saturating_sub(cut % 8));
            let _ = AnnounceResponse::decode(&body);
        }

        #[test]
        fn query_parser_never_panics(q in ".{0,200}") {
            let _ = AnnounceRequest::from_query(&q);
        }
    }
}
