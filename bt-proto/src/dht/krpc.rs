//! KRPC (BEP 5): the DHT's bencoded queries, responses and errors, with IPv6 (BEP 32), the
//! requester's address (BEP 42) and read-only nodes (BEP 43).
//!
//! Decoding is strict about what a node acts on and lenient about the rest: unknown keys are
//! ignored, dictionary keys may come in any order (some clients do not sort them), and
//! every length is bounded by a named limit, so that a datagram costs at most its size.
//!
//! ```
//! use bt_proto::dht::NodeId;
//! use bt_proto::dht::krpc::{Body, Message, Query};
//! let ping = Message::query(b"aa".to_vec(), Query::Ping { id: NodeId([1; 20]) });
//! let bytes = ping.encode();
//! assert_eq!(Message::decode(&bytes).unwrap(), ping);
//! ```

use std::net::SocketAddr;

use super::NodeId;
use crate::InfoHash;
use crate::bencode::{self, Bencode, Value};
use crate::compact::{self, COMPACT_V4_LEN, COMPACT_V6_LEN, Family};

/// Largest KRPC datagram read. The largest honest messages, a `get_peers` answer with a
/// hundred peers or eight nodes of each family, stay under 1.5 KiB; twice the usual MTU
/// leaves room without letting a datagram cost more.
pub const MAX_MESSAGE_LEN: usize = 3000;

/// Longest transaction id accepted. Clients use 2 to 4 bytes; the id is echoed in answers,
/// so a long one would make us send bytes a stranger chose.
pub const MAX_TRANSACTION_ID_LEN: usize = 16;

/// Longest token accepted. libtorrent's are 4 bytes, others' up to 20 (a SHA-1).
pub const MAX_TOKEN_LEN: usize = 40;

/// Nodes taken from one answer, per family. BEP 5 answers with the 8 closest; some clients
/// send 16. More only costs us lookups.
pub const MAX_NODES_PER_REPLY: usize = 16;

/// Peers taken from one `get_peers` answer. Enough to start a download; a node listing
/// thousands would only have us dial them.
pub const MAX_PEERS_PER_REPLY: usize = 200;

/// Longest error message kept, in bytes; the rest is cut.
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;

/// Bytes of one compact node: the id and a compact address.
const NODE_V4_LEN: usize = 20 + COMPACT_V4_LEN;
const NODE_V6_LEN: usize = 20 + COMPACT_V6_LEN;

/// A node's id and where it listens, as `nodes` and `nodes6` carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Its id.
    pub id: NodeId,
    /// Its address.
    pub addr: SocketAddr,
}

/// Which families of nodes a requester wants (BEP 32 `want`). Neither means "the family
/// the query came over", as BEP 32 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`.
    pub v4: bool,
    /// `n6`.
    pub v6: bool,
}

/// A query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querying node.
        id: NodeId,
    },
    /// `find_node`: the nodes closest to `target`.
    FindNode {
        /// The querying node.
        id: NodeId,
        /// What to find.
        target: NodeId,
        /// Families wanted.
        want: Want,
    },
    /// `get_peers`: peers of `info_hash`, or the nodes closest to it.
    GetPeers {
        /// The querying node.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
        /// Families wanted.
        want: Want,
    },
    /// `announce_peer`: the querying node is a peer of `info_hash`.
    AnnouncePeer {
        /// The querying node.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
        /// Its peer port (ignored with `implied_port`).
        port: u16,
        /// Use the port the query came from (for peers behind NATs, and uTP).
        implied_port: bool,
        /// The token our `get_peers` answer gave it.
        token: Vec<u8>,
    },
}

/// A response: which query it answers is known from the transaction id only, so every
/// field but `id` is optional here.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Response {
    /// The answering node.
    pub id: NodeId,
    /// `nodes`: IPv4 nodes.
    pub nodes: Vec<NodeInfo>,
    /// `nodes6`: IPv6 nodes.
    pub nodes6: Vec<NodeInfo>,
    /// `values`: peers (`get_peers`).
    pub values: Vec<SocketAddr>,
    /// `token` (`get_peers`), for a later `announce_peer`.
    pub token: Option<Vec<u8>>,
}

/// What a message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `y = q`.
    Query(Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`: a code (201 generic, 202 server, 203 protocol, 204 method unknown) and text.
    Error {
        /// The code.
        code: i64,
        /// The text, lossily decoded.
        message: String,
    },
}

/// One KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `t`: echoed in the answer.
    pub transaction: Vec<u8>,
    /// What it is.
    pub body: Body,
    /// `ro`: the sender is read-only (BEP 43): query it, never expect it to answer.
    pub read_only: bool,
    /// `ip`: in answers, the requester's address as the answering node saw it (BEP 42).
    pub your_ip: Option<SocketAddr>,
    /// `v`: the client and version, two letters and two bytes by convention.
    pub version: Option<Vec<u8>>,
}

/// Why a datagram is not a KRPC message we can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KrpcError {
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("KRPC message of {0} bytes")]
    TooLong(usize),
    /// Not bencode.
    #[error(transparent)]
    Bencode(#[from] bencode::DecodeError),
    /// Not a dictionary.
    #[error("KRPC message is not a dictionary")]
    NotADict,
    /// A key that must be there is missing or of the wrong type.
    #[error("KRPC message lacks a valid `{0}`")]
    Missing(&'static str),
    /// A value out of its bounds (a long transaction id or token, a bad port...).
    #[error("KRPC `{0}` is out of bounds")]
    Bad(&'static str),
    /// A `y` other than `q`, `r` or `e`.
    #[error("KRPC message of unknown kind")]
    UnknownKind,
    /// A query method we do not serve, with the query's transaction id: it is answered
    /// with error 204 (BEP 5), so the asker need not wait for a time-out.
    #[error("unknown KRPC method")]
    UnknownMethod {
        /// The query's `t`.
        transaction: Vec<u8>,
    },
}

impl Message {
    /// A query with transaction id `transaction`.
    pub fn query(transaction: Vec<u8>, query: Query) -> Self {
        Message {
            transaction,
            body: Body::Query(query),
            read_only: false,
            your_ip: None,
            version: None,
        }
    }

    /// Reads a datagram.
    pub fn decode(datagram: &[u8]) -> Result<Self, KrpcError> {
        if datagram.len() > MAX_MESSAGE_LEN {
            return Err(KrpcError::TooLong(datagram.len()));
        }
        let msg = bencode::decode(datagram)?;
        if msg.as_dict().is_none() {
            return Err(KrpcError::NotADict);
        }
        let transaction = bytes(&msg, "t")?;
        if transaction.len() > MAX_TRANSACTION_ID_LEN {
            return Err(KrpcError::Bad("t"));
        }
        let body = match msg.get(b"y").and_then(Value::as_bytes) {
            Some(b"q") => match decode_query(&msg) {
                Err(KrpcError::UnknownMethod { .. }) => {
                    return Err(KrpcError::UnknownMethod {
                        transaction: transaction.to_vec(),
                    });
                }
                q => Body::Query(q?),
            },
            Some(b"r") => Body::Response(decode_response(&msg)?),
            Some(b"e") => decode_error(&msg)?,
            Some(_) => return Err(KrpcError::UnknownKind),
            None => return Err(KrpcError::Missing("y")),
        };
        let your_ip = msg
            .get(b"ip")
            .and_then(Value::as_bytes)
            .and_then(one_address);
        Ok(Message {
            transaction: transaction.to_vec(),
            body,
            read_only: msg.get(b"ro").and_then(Value::as_int) == Some(1),
            your_ip,
            version: msg.get(b"v").and_then(Value::as_bytes).map(<[u8]>::to_vec),
        })
    }

    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Bencode::dict().with("t", self.transaction.clone());
        match &self.body {
            Body::Query(q) => {
                let (name, args) = encode_query(q);
                d.insert("y", "q");
                d.insert("q", name);
                d.insert("a", args);
            }
            Body::Response(r) => {
                d.insert("y", "r");
                d.insert("r", encode_response(r));
            }
            Body::Error { code, message } => {
                d.insert("y", "e");
                let list = vec![
                    Bencode::Int(*code),
                    Bencode::Bytes(message.clone().into_bytes()),
                ];
                d.insert("e", Bencode::List(list));
            }
        }
        if self.read_only {
            d.insert("ro", 1i64);
        }
        if let Some(ip) = &self.your_ip {
            let mut b = Vec::new();
            compact::encode(std::slice::from_ref(ip), Family::of(ip), &mut b);
            d.insert("ip", b);
        }
        if let Some(v) = &self.version {
            d.insert("v", v.clone());
        }
        d.encode()
    }
}

fn bytes<'a>(v: &Value<'a>, key: &'static str) -> Result<&'a [u8], KrpcError> {
    v.get(key.as_bytes())
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::Missing(key))
}

fn id_of(v: &Value<'_>, key: &'static str) -> Result<NodeId, KrpcError> {
    let b = bytes(v, key)?;
    <[u8; 20]>::try_from(b)
        .map(NodeId)
        .map_err(|_| KrpcError::Bad(key))
}

fn want(args: &Value<'_>) -> Want {
    let mut w = Want::default();
    for item in args
        .get(b"want")
        .and_then(Value::as_list)
        .unwrap_or_default()
    {
        match item.as_bytes() {
            Some(b"n4") => w.v4 = true,
            Some(b"n6") => w.v6 = true,
            _ => {}
        }
    }
    w
}

fn decode_query(msg: &Value<'_>) -> Result<Query, KrpcError> {
    let method = bytes(msg, "q")?;
    let args = msg.get(b"a").ok_or(KrpcError::Missing("a"))?;
    if args.as_dict().is_none() {
        return Err(KrpcError::Missing("a"));
    }
    let id = id_of(args, "id")?;
    Ok(match method {
        b"ping" => Query::Ping { id },
        b"find_node" => Query::FindNode {
            id,
            target: id_of(args, "target")?,
            want: want(args),
        },
        b"get_peers" => Query::GetPeers {
            id,
            info_hash: InfoHash(id_of(args, "info_hash")?.0),
            want: want(args),
        },
        b"announce_peer" => {
            let implied_port = args.get(b"implied_port").and_then(Value::as_int) == Some(1);
            let port = args.get(b"port").and_then(Value::as_int);
            let port = match (port.map(u16::try_from), implied_port) {
                (Some(Ok(p)), _) if p != 0 => p,
                // With implied_port the port is the query's; some clients send none.
                (_, true) => 0,
                _ => return Err(KrpcError::Bad("port")),
            };
            let token = bytes(args, "token")?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(KrpcError::Bad("token"));
            }
            Query::AnnouncePeer {
                id,
                info_hash: InfoHash(id_of(args, "info_hash")?.0),
                port,
                implied_port,
                token: token.to_vec(),
            }
        }
        _ => {
            return Err(KrpcError::UnknownMethod {
                transaction: Vec::new(),
            });
        }
    })
}

fn decode_response(msg: &Value<'_>) -> Result<Response, KrpcError> {
    let r = msg.get(b"r").ok_or(KrpcError::Missing("r"))?;
    if r.as_dict().is_none() {
        return Err(KrpcError::Missing("r"));
    }
    let id = id_of(r, "id")?;
    let nodes = match r.get(b"nodes").and_then(Value::as_bytes) {
        Some(b) => {
            decode_nodes(b, Family::V4, MAX_NODES_PER_REPLY).ok_or(KrpcError::Bad("nodes"))?
        }
        None => Vec::new(),
    };
    let nodes6 = match r.get(b"nodes6").and_then(Value::as_bytes) {
        Some(b) => {
            decode_nodes(b, Family::V6, MAX_NODES_PER_REPLY).ok_or(KrpcError::Bad("nodes6"))?
        }
        None => Vec::new(),
    };
    let mut values = Vec::new();
    for v in r
        .get(b"values")
        .and_then(Value::as_list)
        .unwrap_or_default()
    {
        if values.len() >= MAX_PEERS_PER_REPLY {
            break;
        }
        let addr = v
            .as_bytes()
            .and_then(one_address)
            .ok_or(KrpcError::Bad("values"))?;
        values.push(addr);
    }
    let token = match r.get(b"token") {
        Some(t) => {
            let t = t.as_bytes().ok_or(KrpcError::Bad("token"))?;
            if t.len() > MAX_TOKEN_LEN {
                return Err(KrpcError::Bad("token"));
            }
            Some(t.to_vec())
        }
        None => None,
    };
    Ok(Response {
        id,
        nodes,
        nodes6,
        values,
        token,
    })
}

fn decode_error(msg: &Value<'_>) -> Result<Body, KrpcError> {
    let e = msg
        .get(b"e")
        .and_then(Value::as_list)
        .ok_or(KrpcError::Missing("e"))?;
    let code = e
        .first()
        .and_then(Value::as_int)
        .ok_or(KrpcError::Missing("e"))?;
    let text = e.get(1).and_then(Value::as_bytes).unwrap_or_default();
    // Cut after the lossy decoding, at a character boundary: cutting the raw bytes first
    // would let the replacement characters (three bytes each) take the text past the cap,
    // and a second decode would cut it elsewhere.
    let mut message = String::from_utf8_lossy(text).into_owned();
    let mut end = message.len().min(MAX_ERROR_MESSAGE_LEN);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    Ok(Body::Error { code, message })
}

/// The nodes of a `nodes` or `nodes6` string, at most `max`; `None` if it is not a whole
/// number of entries.
pub(super) fn decode_nodes(b: &[u8], family: Family, max: usize) -> Option<Vec<NodeInfo>> {
    let entry = match family {
        Family::V4 => NODE_V4_LEN,
        Family::V6 => NODE_V6_LEN,
    };
    if !b.len().is_multiple_of(entry) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in b.chunks_exact(entry).take(max) {
        let (id, addr) = chunk.split_at(20);
        let id = NodeId(<[u8; 20]>::try_from(id).ok()?);
        let addr = compact::decode(addr, family).ok()?.into_iter().next()?;
        out.push(NodeInfo { id, addr });
    }
    Some(out)
}

/// One compact address of either family.
fn one_address(b: &[u8]) -> Option<SocketAddr> {
    let family = match b.len() {
        COMPACT_V4_LEN => Family::V4,
        COMPACT_V6_LEN => Family::V6,
        _ => return None,
    };
    compact::decode(b, family).ok()?.into_iter().next()
}

pub(super) fn encode_nodes(nodes: &[NodeInfo], family: Family) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| Family::of(&n.addr) == family) {
        out.extend_from_slice(&n.id.0);
        compact::encode(std::slice::from_ref(&n.addr), family, &mut out);
    }
    out
}

fn encode_want(want: Want, args: &mut Bencode) {
    let mut list = Vec::new();
    if want.v4 {
        list.push(Bencode::Bytes(b"n4".to_vec()));
    }
    if want.v6 {
        list.push(Bencode::Bytes(b"n6".to_vec()));
    }
    if !list.is_empty() {
        args.insert("want", Bencode::List(list));
    }
}

fn encode_query(q: &Query) -> (&'static str, Bencode) {
    match q {
        Query::Ping { id } => ("ping", Bencode::dict().with("id", id.0.to_vec())),
        Query::FindNode { id, target, want } => {
            let mut a = Bencode::dict()
                .with("id", id.0.to_vec())
                .with("target", target.0.to_vec());
            encode_want(*want, &mut a);
            ("find_node", a)
        }
        Query::GetPeers {
            id,
            info_hash,
            want,
        } => {
            let mut a = Bencode::dict()
                .with("id", id.0.to_vec())
                .with("info_hash", info_hash.0.to_vec());
            encode_want(*want, &mut a);
            ("get_peers", a)
        }
        Query::AnnouncePeer {
            id,
            info_hash,
            port,
            implied_port,
            token,
        } => {
            let a = Bencode::dict()
                .with("id", id.0.to_vec())
                .with("info_hash", info_hash.0.to_vec())
                .with("port", i64::from(*port))
                .with("implied_port", i64::from(*implied_port))
                .with("token", token.clone());
            ("announce_peer", a)
        }
    }
}

fn encode_response(r: &Response) -> Bencode {
    let mut d = Bencode::dict().with("id", r.id.0.to_vec());
    if !r.nodes.is_empty() {
        d.insert("nodes", encode_nodes(&r.nodes, Family::V4));
    }
    if !r.nodes6.is_empty() {
        d.insert("nodes6", encode_nodes(&r.nodes6, Family::V6));
    }
    if !r.values.is_empty() {
        let values = r
            .values
            .iter()
            .map(|a| {
                let mut b = Vec::new();
                compact::encode(std::slice::from_ref(a), Family::of(a), &mut b);
                Bencode::Bytes(b)
            })
            .collect();
        d.insert("values", Bencode::List(values));
    }
    if let Some(t) = &r.token {
        d.insert("token", t.clone());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8, addr: &str) -> NodeInfo {
        NodeInfo {
            id: NodeId([n; 20]),
            addr: addr.parse().unwrap(),
        }
    }

    /// The examples of BEP 5, byte for byte.
    #[test]
    fn bep5_examples_decode() {
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        let m = Message::decode(ping).unwrap();
        assert_eq!(m.transaction, b"aa");
        assert_eq!(
            m.body,
            Body::Query(Query::Ping {
                id: NodeId(*b"abcdefghij0123456789")
            })
        );
        assert_eq!(m.encode(), ping);
        let announce = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
        let m = Message::decode(announce).unwrap();
        let Body::Query(Query::AnnouncePeer {
            port,
            implied_port,
            token,
            ..
        }) = &m.body
        else {
            panic!("{m:?}");
        };
        assert_eq!(
            (*port, *implied_port, &token[..]),
            (6881, true, &b"aoeusnth"[..])
        );
        assert_eq!(m.encode(), announce);
        let values = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
        let m = Message::decode(values).unwrap();
        let Body::Response(r) = &m.body else {
            panic!("{m:?}");
        };
        assert_eq!(r.values.len(), 2);
        assert_eq!(m.encode(), values);
        let error = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
        let m = Message::decode(error).unwrap();
        assert_eq!(
            m.body,
            Body::Error {
                code: 201,
                message: "A Generic Error Ocurred".into()
            }
        );
        assert_eq!(m.encode(), error);
    }

    #[test]
    fn every_kind_round_trips() {
        let id = NodeId([9; 20]);
        let want = Want { v4: true, v6: true };
        let queries = [
            Query::FindNode {
                id,
                target: NodeId([3; 20]),
                want,
            },
            Query::GetPeers {
                id,
                info_hash: InfoHash([4; 20]),
                want: Want::default(),
            },
        ];
        for q in queries {
            let m = Message::query(b"xy".to_vec(), q);
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        let r = Message {
            transaction: b"t1".to_vec(),
            body: Body::Response(Response {
                id,
                nodes: vec![node(1, "1.2.3.4:5"), node(2, "5.6.7.8:9")],
                nodes6: vec![node(3, "[2001:db8::1]:6881")],
                values: vec!["9.9.9.9:1".parse().unwrap(), "[::2]:3".parse().unwrap()],
                token: Some(b"tok".to_vec()),
            }),
            read_only: true,
            your_ip: Some("203.0.113.5:4000".parse().unwrap()),
            version: Some(b"BT01".to_vec()),
        };
        assert_eq!(Message::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn malformed_and_oversized_messages_are_refused() {
        let long_t = format!(
            "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:{}1:y1:qe",
            "x".repeat(17)
        );
        let cases: [(&[u8], KrpcError); 8] = [
            (b"", KrpcError::Bencode(bencode::decode(b"").unwrap_err())),
            (b"le", KrpcError::NotADict),
            (b"d1:y1:qe", KrpcError::Missing("t")),
            (b"d1:t2:aa1:y1:xe", KrpcError::UnknownKind),
            (
                b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
                KrpcError::Bad("id"),
            ),
            (
                b"d1:ad2:id20:abcdefghij0123456789e1:q4:frob1:t2:aa1:y1:qe",
                KrpcError::UnknownMethod {
                    transaction: b"aa".to_vec(),
                },
            ),
            (long_t.as_bytes(), KrpcError::Bad("t")),
            (
                b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
                KrpcError::Bad("nodes"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                Message::decode(input),
                Err(want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            Message::decode(&vec![b'x'; MAX_MESSAGE_LEN + 1]),
            Err(KrpcError::TooLong(MAX_MESSAGE_LEN + 1))
        );
        let no_port = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token2:aae1:q13:announce_peer1:t2:aa1:y1:qe";
        assert_eq!(Message::decode(no_port), Err(KrpcError::Bad("port")));
    }

    #[test]
    fn replies_are_capped() {
        let nodes: Vec<NodeInfo> = (0..40u8)
            .map(|i| node(i, &format!("10.0.0.{i}:1")))
            .collect();
        let values: Vec<SocketAddr> = (0..300u16)
            .map(|p| SocketAddr::from(([10, 0, 0, 1], p + 1)))
            .collect();
        for r in [
            Response {
                nodes,
                ..Default::default()
            },
            Response {
                values,
                ..Default::default()
            },
        ] {
            let m = Message {
                transaction: b"t".to_vec(),
                body: Body::Response(r),
                read_only: false,
                your_ip: None,
                version: None,
            };
            let bytes = m.encode();
            assert!(bytes.len() <= MAX_MESSAGE_LEN);
            let Ok(Message {
                body: Body::Response(back),
                ..
            }) = Message::decode(&bytes)
            else {
                panic!("decodes");
            };
            assert!(back.nodes.len() == MAX_NODES_PER_REPLY || back.nodes.is_empty());
            assert!(back.values.len() == MAX_PEERS_PER_REPLY || back.values.is_empty());
        }
    }

    /// An error text with bytes that are not UTF-8, longer than the cap: what decodes
    /// re-encodes to bytes that decode to the same text (the fuzzer found the text cut
    /// before the replacement characters made it longer, so a second decode cut it again
    /// elsewhere).
    #[test]
    fn an_error_text_with_invalid_utf8_decodes_the_same_after_a_round_trip() {
        let mut text = b"A Generic Error".to_vec();
        text.extend([0xd2; 150]);
        text.extend(b" and more after it");
        let mut datagram = format!("d1:eli201e{}:", text.len()).into_bytes();
        datagram.extend(&text);
        datagram.extend(b"e1:t2:aa1:y1:ee");
        let m = Message::decode(&datagram).unwrap();
        let Body::Error { message, .. } = &m.body else {
            panic!("an error");
        };
        assert!(message.len() <= MAX_ERROR_MESSAGE_LEN);
        assert_eq!(Message::decode(&m.encode()), Ok(m));
    }
}
