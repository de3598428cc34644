//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker>&x.pe=<peer>`.
//!
//! A magnet names a v1 torrent by its info-hash (40 hex digits or 32 base32 digits) and may
//! add a display name, trackers and peer addresses. Parsing is strict about what it uses and
//! lenient about what it does not:
//!
//! - The scheme `magnet:` and the `urn:btih:` prefix are matched case-insensitively; parameter
//!   names are matched exactly (`tr.1`, `tr.2`, ... count as `tr`, as some clients write them).
//! - Unknown parameters are ignored, and so are `xt`s of other kinds. In particular a v2
//!   `xt=urn:btmh:` is skipped: this crate speaks v1 only. A hybrid link (btmh + btih) works
//!   through its btih; a link with only a btmh fails with [`MagnetError::OnlyV2`].
//! - Several btih `xt`s are allowed only if they name the same hash.
//! - Every value is percent-decoded; a `%` not followed by two hex digits is an error.
//!   In `dn` only, `+` means a space (the form-encoding most clients write); elsewhere `+` is
//!   itself. A `dn` that is not UTF-8 is decoded lossily (it is only for display); a tracker
//!   URL or peer address that is not UTF-8 is an error.
//!
//! Writing ([`Magnet::to_uri`], `Display`) puts the hash in lowercase hex and percent-encodes
//! everything outside the URI unreserved set, so the output parses back to the same value.
//!
//! ```
//! use bt_proto::magnet::Magnet;
//! let m: Magnet = "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
//!                  &dn=Leaves+of+Grass&tr=udp%3A%2F%2Ftracker.example%3A1337"
//!     .parse()
//!     .unwrap();
//! assert_eq!(m.display_name.as_deref(), Some("Leaves of Grass"));
//! assert_eq!(m.trackers, ["udp://tracker.example:1337"]);
//! assert_eq!(m.to_uri().parse::<Magnet>().unwrap(), m);
//! ```

use crate::InfoHash;
use crate::encoding::percent::{self, Plus, is_unreserved};
use crate::encoding::{base32, hex};
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;

/// Longest magnet link accepted, in bytes. Real links with a hundred trackers stay under
/// 10 KiB; the cap bounds the work and memory a pasted or received link can cost.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;

/// Why a magnet link was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    #[error("not a magnet link (must start with \"magnet:?\")")]
    NotMagnet,
    /// Longer than [`MAX_MAGNET_LEN`].
    #[error("magnet link is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// Length of the link.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `%` not followed by two hex digits.
    #[error("bad percent-escape at byte {offset}")]
    BadPercentEscape {
        /// Byte offset of the `%` in the link.
        offset: usize,
    },
    /// No `xt=urn:btih:` parameter.
    #[error("no xt=urn:btih: parameter")]
    MissingInfoHash,
    /// Only a v2 (`urn:btmh:`) topic, which this crate does not support.
    #[error("only a BitTorrent v2 topic (xt=urn:btmh:); v1 (urn:btih:) is required")]
    OnlyV2,
    /// The btih hash is neither 40 nor 32 characters long.
    #[error("info-hash is {found} characters, expected 40 (hex) or 32 (base32)")]
    InfoHashLength {
        /// Characters found.
        found: usize,
    },
    /// A 40-character hash with a non-hex digit.
    #[error("info-hash {value:?} is not valid hex")]
    InfoHashHex {
        /// The hash as written.
        value: String,
    },
    /// A 32-character hash with a character outside the RFC 4648 base32 alphabet.
    #[error("info-hash {value:?} is not valid base32")]
    InfoHashBase32 {
        /// The hash as written.
        value: String,
    },
    /// Two btih topics naming different hashes.
    #[error("conflicting info-hashes {first} and {second}")]
    ConflictingInfoHash {
        /// The first hash seen.
        first: InfoHash,
        /// A later, different one.
        second: InfoHash,
    },
    /// A parameter that must be text decoded to bytes that are not UTF-8.
    #[error("parameter {param} is not UTF-8 after percent-decoding")]
    NotUtf8 {
        /// The parameter name.
        param: &'static str,
    },
    /// An `x.pe` value that is not `host:port`, `ipv4:port` or `[ipv6]:port` with a port > 0.
    #[error("bad peer address {value:?} in x.pe")]
    BadPeer {
        /// The value after percent-decoding.
        value: String,
    },
}

/// A peer address from `x.pe`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MagnetPeer {
    /// A literal IPv4 or IPv6 address with its port.
    Addr(SocketAddr),
    /// A host name to resolve (the core does no DNS) with its port.
    Host {
        /// The host name, as written.
        host: String,
        /// The port (never 0).
        port: u16,
    },
}

impl fmt::Display for MagnetPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetPeer::Addr(a) => a.fmt(f),
            MagnetPeer::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl std::str::FromStr for MagnetPeer {
    type Err = MagnetError;
    fn from_str(s: &str) -> Result<Self, MagnetError> {
        let bad = || MagnetError::BadPeer {
            value: s.chars().take(200).collect(),
        };
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err(bad())
            } else {
                Ok(MagnetPeer::Addr(addr))
            };
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        // Digits only: `u16::from_str` also takes a leading `+`, and `1.2.3.4:+1` would then
        // become a host name that is written back as the address `1.2.3.4:1`.
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if port == 0 || !host_ok {
            return Err(bad());
        }
        Ok(MagnetPeer::Host {
            host: host.to_owned(),
            port,
        })
    }
}

/// A parsed magnet link. Build one with [`Magnet::new`] and the public fields, or parse one
/// with `str::parse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The torrent's v1 info-hash.
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in link order (duplicates removed).
    pub trackers: Vec<String>,
    /// `x.pe`: peers to try directly, in link order (duplicates removed).
    pub peers: Vec<MagnetPeer>,
}

impl Magnet {
    /// A magnet with only the info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// Parses a magnet link (same as `str::parse`).
    pub fn parse(uri: &str) -> Result<Self, MagnetError> {
        if uri.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong {
                len: uri.len(),
                max: MAX_MAGNET_LEN,
            });
        }
        let prefix = "magnet:?";
        let query = match (uri.get(..prefix.len()), uri.get(prefix.len()..)) {
            (Some(p), Some(rest)) if p.eq_ignore_ascii_case(prefix) => rest,
            _ => return Err(MagnetError::NotMagnet),
        };
        // A fragment is not part of the query.
        let query = query.split_once('#').map_or(query, |(q, _)| q);

        let mut info_hash: Option<InfoHash> = None;
        let mut saw_v2 = false;
        let mut display_name = None;
        let mut trackers: Vec<String> = Vec::new();
        let mut peers: Vec<MagnetPeer> = Vec::new();
        // Sets for the duplicate checks: a 64 KiB link can hold thousands of parameters.
        let mut seen_trackers = HashSet::new();
        let mut seen_peers = HashSet::new();
        let mut offset = prefix.len();
        for pair in query.split('&') {
            let pair_offset = offset;
            offset += pair.len() + 1;
            if pair.is_empty() {
                continue;
            }
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value_offset = pair_offset + name.len() + 1;
            match name {
                "xt" => {
                    let value = utf8(percent_decode(raw, value_offset, Plus::Itself)?, "xt")?;
                    if let Some(h) = strip_prefix_ci(&value, "urn:btih:") {
                        let h = parse_btih(h)?;
                        match info_hash {
                            Some(first) if first != h => {
                                return Err(MagnetError::ConflictingInfoHash { first, second: h });
                            }
                            _ => info_hash = Some(h),
                        }
                    } else if strip_prefix_ci(&value, "urn:btmh:").is_some() {
                        saw_v2 = true;
                    }
                }
                "dn" => {
                    let bytes = percent_decode(raw, value_offset, Plus::Space)?;
                    display_name = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                _ if is_tr(name) => {
                    let url = utf8(percent_decode(raw, value_offset, Plus::Itself)?, "tr")?;
                    if !url.is_empty() && seen_trackers.insert(url.clone()) {
                        trackers.push(url);
                    }
                }
                "x.pe" => {
                    let value = utf8(percent_decode(raw, value_offset, Plus::Itself)?, "x.pe")?;
                    let peer: MagnetPeer = value.parse()?;
                    if seen_peers.insert(peer.clone()) {
                        peers.push(peer);
                    }
                }
                _ => {}
            }
        }
        let info_hash = match info_hash {
            Some(h) => h,
            None if saw_v2 => return Err(MagnetError::OnlyV2),
            None => return Err(MagnetError::MissingInfoHash),
        };
        Ok(Magnet {
            info_hash,
            display_name,
            trackers,
            peers,
        })
    }

    /// Writes the link: hash in lowercase hex, then `dn`, each `tr`, each `x.pe`.
    pub fn to_uri(&self) -> String {
        self.to_string()
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;
    fn from_str(s: &str) -> Result<Self, MagnetError> {
        Magnet::parse(s)
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash)?;
        if let Some(dn) = &self.display_name {
            write!(f, "&dn={}", percent::encode(dn.as_bytes(), is_unreserved))?;
        }
        for tr in &self.trackers {
            write!(f, "&tr={}", percent::encode(tr.as_bytes(), is_unreserved))?;
        }
        for pe in &self.peers {
            let pe = pe.to_string();
            write!(f, "&x.pe={}", percent::encode(pe.as_bytes(), is_unreserved))?;
        }
        Ok(())
    }
}

/// `tr`, or `tr.<digits>` as some clients number their trackers.
fn is_tr(name: &str) -> bool {
    match name.strip_prefix("tr") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    match (s.get(..prefix.len()), s.get(prefix.len()..)) {
        (Some(p), Some(rest)) if p.eq_ignore_ascii_case(prefix) => Some(rest),
        _ => None,
    }
}

fn utf8(bytes: Vec<u8>, param: &'static str) -> Result<String, MagnetError> {
    String::from_utf8(bytes).map_err(|_| MagnetError::NotUtf8 { param })
}

fn parse_btih(h: &str) -> Result<InfoHash, MagnetError> {
    let value = || h.chars().take(80).collect::<String>();
    match h.len() {
        40 => hex::decode_array(h.as_bytes())
            .map(InfoHash)
            .ok_or_else(|| MagnetError::InfoHashHex { value: value() }),
        base32::DIGEST_DIGITS => base32::decode(h)
            .map(InfoHash)
            .ok_or_else(|| MagnetError::InfoHashBase32 { value: value() }),
        found => Err(MagnetError::InfoHashLength { found }),
    }
}

/// Percent-decodes `s`, which starts at byte `offset` of the link (for error positions).
fn percent_decode(s: &str, offset: usize, plus: Plus) -> Result<Vec<u8>, MagnetError> {
    percent::decode(s, plus).map_err(|e| MagnetError::BadPercentEscape {
        offset: offset + e.offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";

    fn hash() -> InfoHash {
        HEX.parse().unwrap()
    }

    #[test]
    fn parses_all_fields() {
        let m = Magnet::parse(
            "magnet:?xt=urn:btih:D2474E86C95B19B8BCFDB92BC12C9D44667CFA36&dn=Leaves%20of+Grass\
             &tr=udp%3A%2F%2Fexplodie.org%3A6969&tr=wss://tracker.btorrent.xyz\
             &x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413&x.pe=peer.example:7000&foo=bar",
        )
        .unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.display_name.as_deref(), Some("Leaves of Grass"));
        assert_eq!(
            m.trackers,
            ["udp://explodie.org:6969", "wss://tracker.btorrent.xyz"]
        );
        assert_eq!(
            m.peers,
            [
                MagnetPeer::Addr("10.0.0.1:6881".parse().unwrap()),
                MagnetPeer::Addr("[2001:db8::1]:51413".parse().unwrap()),
                MagnetPeer::Host {
                    host: "peer.example".into(),
                    port: 7000
                },
            ]
        );
        assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
    }

    #[test]
    fn base32_matches_hex() {
        let b32 = base32::encode(hash().as_bytes());
        assert_eq!(b32.len(), 32);
        let upper = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        let lower = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", b32.to_lowercase())).unwrap();
        assert_eq!(upper.info_hash, hash());
        assert_eq!(lower.info_hash, hash());
    }

    #[test]
    fn rejects_malformed() {
        use MagnetError::*;
        let cases: &[(&str, MagnetError)] = &[
            ("http://example.com/?xt=urn:btih:x", NotMagnet),
            ("magnet:xt=urn:btih:", NotMagnet),
            ("", NotMagnet),
            ("magnet:?dn=x", MissingInfoHash),
            ("magnet:?xt=urn:sha1:abc", MissingInfoHash),
            (
                "magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
                OnlyV2,
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa3",
                InfoHashLength { found: 39 },
            ),
            (
                "magnet:?xt=urn:btih:g2474e86c95b19b8bcfdb92bc12c9d44667cfa36",
                InfoHashHex {
                    value: "g2474e86c95b19b8bcfdb92bc12c9d44667cfa36".into(),
                },
            ),
            (
                "magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQ1",
                InfoHashBase32 {
                    value: "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQ1".into(),
                },
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&dn=a%2",
                BadPercentEscape { offset: 65 },
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&tr=%zz",
                BadPercentEscape { offset: 64 },
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&tr=%FF",
                NotUtf8 { param: "tr" },
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&x.pe=1.2.3.4",
                BadPeer {
                    value: "1.2.3.4".into(),
                },
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&x.pe=h:0",
                BadPeer {
                    value: "h:0".into(),
                },
            ),
            (
                "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&x.pe=a%20b:1",
                BadPeer {
                    value: "a b:1".into(),
                },
            ),
        ];
        for (uri, want) in cases {
            assert_eq!(Magnet::parse(uri).as_ref(), Err(want), "{uri}");
        }
        let long = format!(
            "magnet:?xt=urn:btih:{HEX}&dn={}",
            "a".repeat(MAX_MAGNET_LEN)
        );
        assert!(matches!(
            Magnet::parse(&long),
            Err(TooLong {
                max: MAX_MAGNET_LEN,
                ..
            })
        ));
    }

    /// Found by the `magnet` fuzz target: `+6881` was read as port 6881, so an IPv4 address
    /// with it became a host name, and the link written back parsed to a different value.
    #[test]
    fn peer_port_is_digits_only() {
        for value in [
            "10.0.5.0:+6881",
            "host:+1",
            "host:-1",
            "host: 1",
            "[::1]:+1",
        ] {
            let uri = format!(
                "magnet:?xt=urn:btih:{HEX}&x.pe={}",
                value.replace('+', "%2B")
            );
            assert_eq!(
                Magnet::parse(&uri),
                Err(MagnetError::BadPeer {
                    value: value.into()
                }),
                "{value}"
            );
        }
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=host:06881")).unwrap();
        assert_eq!(
            m.peers,
            [MagnetPeer::Host {
                host: "host".into(),
                port: 6881
            }]
        );
        assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
    }

    #[test]
    fn duplicate_topics_must_agree() {
        let b32 = base32::encode(hash().as_bytes());
        let same = format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{b32}");
        assert_eq!(Magnet::parse(&same).unwrap().info_hash, hash());
        let other = "0000000000000000000000000000000000000000";
        let clash = format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}");
        assert!(matches!(
            Magnet::parse(&clash),
            Err(MagnetError::ConflictingInfoHash { .. })
        ));
    }

    #[test]
    fn hybrid_v2_link_uses_btih_and_unknowns_are_ignored() {
        let uri = format!(
            "MAGNET:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e\
             &xt=URN:BTIH:{HEX}&xl=10826029&so=0-3&&tr.1=http%3A%2F%2Fa%2Fannounce&tr.x=ignored#frag"
        );
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.trackers, ["http://a/announce"]);
        assert_eq!(m.display_name, None);
    }

    #[test]
    fn plus_is_literal_outside_dn_and_encoded_on_output() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&tr=http://a/b+c&dn=x%2By+z"
        ))
        .unwrap();
        assert_eq!(m.trackers, ["http://a/b+c"]);
        assert_eq!(m.display_name.as_deref(), Some("x+y z"));
        let uri = m.to_uri();
        assert!(uri.contains("dn=x%2By%20z"), "{uri}");
        assert_eq!(Magnet::parse(&uri).unwrap(), m);
    }

    fn arb_peer() -> impl Strategy<Value = MagnetPeer> {
        prop_oneof![
            // Flow info and scope ids are not part of a peer address's text form.
            (any::<std::net::IpAddr>(), 1u16..)
                .prop_map(|(ip, port)| MagnetPeer::Addr(SocketAddr::new(ip, port))),
            ("[a-z0-9][a-z0-9.-]{0,20}", 1u16..)
                .prop_map(|(host, port)| MagnetPeer::Host { host, port }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(
            bytes in any::<[u8; 20]>(),
            dn in proptest::option::of(any::<String>()),
            trackers in proptest::collection::vec("[ -~\u{a0}-\u{2ff}]{1,40}", 0..4),
            peers in proptest::collection::vec(arb_peer(), 0..4),
        ) {
            let mut trackers = trackers;
            trackers.dedup();
            let mut m = Magnet::new(InfoHash(bytes));
            m.display_name = dn;
            m.trackers = trackers.into_iter().fold(Vec::new(), |mut v, t| {
                if !v.contains(&t) { v.push(t) }
                v
            });
            m.peers = peers.into_iter().fold(Vec::new(), |mut v, p| {
                if !v.contains(&p) { v.push(p) }
                v
            });
            let uri = m.to_uri();
            prop_assert_eq!(Magnet::parse(&uri).unwrap(), m);
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = Magnet::parse(&s);
            let _ = Magnet::parse(&format!("magnet:?{s}"));
            let _ = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&{s}"));
        }
    }
}
