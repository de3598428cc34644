//! The extension handshake (BEP 10): a bencoded dictionary saying which extensions a peer
//! speaks under which message ids, and a few facts about it.
//!
//! What the engine relies on is strict: `m` must be a dictionary, the ids of the extensions we
//! speak (`ut_metadata`, `ut_pex`) must be integers fitting a byte, and `metadata_size` a
//! non-negative integer; anything else is an [`ExtensionHandshakeError`] and closes the peer.
//! Entries of `m` we do not speak are ignored whatever they hold. What is only informative is
//! lenient: a `p`, `reqq` or `v` of the wrong type or out of range is left out, as a client
//! that gets them wrong still exchanges pieces correctly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{UT_METADATA, UT_PEX};
use crate::bencode::{self, Bencode, Value};

/// Longest client name kept from a peer's extension handshake, in characters: enough for
/// every real client's "name version", short enough that a hostile peer cannot bloat memory.
pub const MAX_CLIENT_NAME: usize = 64;

/// What one extension handshake says.
///
/// For the two extensions, `None` means the handshake did not name it and `Some(0)` that it
/// switched it off: BEP 10 makes `m` additive, so a later handshake that leaves an extension
/// out keeps the id it had.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// The sender's id for `ut_metadata` messages.
    pub ut_metadata: Option<u8>,
    /// The sender's id for `ut_pex` messages.
    pub ut_pex: Option<u8>,
    /// Length of the torrent's info dictionary, when the sender has it (BEP 9).
    pub metadata_size: Option<u64>,
    /// The sender's listening port (`p`).
    pub listen_port: Option<u16>,
    /// How many requests the sender queues (`reqq`).
    pub reqq: Option<usize>,
    /// The sender's client name and version (`v`), at most [`MAX_CLIENT_NAME`] characters.
    pub client: Option<String>,
    /// The address the sender sees the receiver at (`yourip`).
    pub yourip: Option<IpAddr>,
}

/// Why an extension handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionHandshakeError {
    /// Not bencode.
    #[error("extension handshake: {0}")]
    Bencode(#[from] bencode::DecodeError),
    /// Bencode, but not a dictionary.
    #[error("extension handshake is not a dictionary")]
    NotADict,
    /// `m` is there but not a dictionary.
    #[error("extension handshake's `m` is not a dictionary")]
    MNotADict,
    /// The id of an extension we speak is not an integer from 0 to 255.
    #[error("extension handshake names {name} with id {value}, not a byte")]
    BadId {
        /// The extension.
        name: &'static str,
        /// What it held, as bencode.
        value: String,
    },
    /// `metadata_size` is not a non-negative integer.
    #[error("extension handshake's metadata_size is {0}")]
    BadMetadataSize(String),
}

impl ExtensionHandshake {
    /// Reads a handshake payload.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionHandshakeError> {
        let v = bencode::decode(payload)?;
        if v.as_dict().is_none() {
            return Err(ExtensionHandshakeError::NotADict);
        }
        let (ut_metadata, ut_pex) = match v.get(b"m") {
            None => (None, None),
            Some(m) if m.as_dict().is_none() => return Err(ExtensionHandshakeError::MNotADict),
            Some(m) => (id_of(m, UT_METADATA)?, id_of(m, UT_PEX)?),
        };
        let metadata_size = match v.get(b"metadata_size") {
            None => None,
            Some(n) => Some(
                n.as_int()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| ExtensionHandshakeError::BadMetadataSize(shown(n)))?,
            ),
        };
        let int = |key: &[u8]| v.get(key).and_then(Value::as_int);
        Ok(ExtensionHandshake {
            ut_metadata,
            ut_pex,
            metadata_size,
            listen_port: int(b"p")
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0),
            reqq: int(b"reqq")
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0),
            client: v.get(b"v").and_then(Value::as_bytes).map(|name| {
                String::from_utf8_lossy(name)
                    .chars()
                    .take(MAX_CLIENT_NAME)
                    .collect()
            }),
            yourip: v.get(b"yourip").and_then(Value::as_bytes).and_then(ip_of),
        })
    }

    /// The handshake payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Bencode::dict();
        if let Some(id) = self.ut_metadata {
            m.insert(UT_METADATA, i64::from(id));
        }
        if let Some(id) = self.ut_pex {
            m.insert(UT_PEX, i64::from(id));
        }
        let mut d = Bencode::dict().with("m", m);
        if let Some(n) = self.metadata_size {
            d.insert("metadata_size", i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let Some(p) = self.listen_port {
            d.insert("p", p);
        }
        if let Some(n) = self.reqq {
            d.insert("reqq", i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let Some(v) = &self.client {
            d.insert("v", v.as_str());
        }
        if let Some(ip) = self.yourip {
            let bytes = match ip {
                IpAddr::V4(ip) => ip.octets().to_vec(),
                IpAddr::V6(ip) => ip.octets().to_vec(),
            };
            d.insert("yourip", bytes);
        }
        d.encode()
    }

    /// Takes what a later handshake says, keeping what it leaves out (BEP 10: a peer may send
    /// its handshake again to change some values, and `m` lists only the changes).
    pub fn update(&mut self, newer: ExtensionHandshake) {
        fn take<T>(old: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *old = new;
            }
        }
        take(&mut self.ut_metadata, newer.ut_metadata);
        take(&mut self.ut_pex, newer.ut_pex);
        take(&mut self.metadata_size, newer.metadata_size);
        take(&mut self.listen_port, newer.listen_port);
        take(&mut self.reqq, newer.reqq);
        take(&mut self.client, newer.client);
        take(&mut self.yourip, newer.yourip);
    }

    /// The sender's id for `ut_metadata`, if it speaks it now.
    pub fn metadata_id(&self) -> Option<u8> {
        self.ut_metadata.filter(|id| *id != 0)
    }

    /// The sender's id for `ut_pex`, if it speaks it now.
    pub fn pex_id(&self) -> Option<u8> {
        self.ut_pex.filter(|id| *id != 0)
    }
}

/// The id `m` gives extension `name`, if it names it.
fn id_of(m: &Value<'_>, name: &'static str) -> Result<Option<u8>, ExtensionHandshakeError> {
    let Some(v) = m.get(name.as_bytes()) else {
        return Ok(None);
    };
    v.as_int()
        .and_then(|n| u8::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| ExtensionHandshakeError::BadId {
            name,
            value: shown(v),
        })
}

/// A value as it was sent, short enough for an error message.
fn shown(v: &Value<'_>) -> String {
    const MAX_SHOWN: usize = 32;
    let raw = v.raw();
    let mut s = String::from_utf8_lossy(raw.get(..MAX_SHOWN).unwrap_or(raw)).into_owned();
    if raw.len() > MAX_SHOWN {
        s.push_str("...");
    }
    s
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_size_port_reqq_and_a_bounded_client_name() {
        let long = "x".repeat(MAX_CLIENT_NAME * 2);
        let payload = Bencode::dict()
            .with(
                "m",
                Bencode::dict()
                    .with("ut_metadata", 3)
                    .with("ut_pex", 0)
                    .with("lt_donthave", "whatever"),
            )
            .with("metadata_size", 31_235)
            .with("reqq", 250)
            .with("p", 51413)
            .with("v", long.as_str())
            .with("yourip", vec![10u8, 0, 0, 1])
            .encode();
        let h = ExtensionHandshake::decode(&payload).unwrap();
        assert_eq!((h.ut_metadata, h.ut_pex), (Some(3), Some(0)));
        assert_eq!((h.metadata_id(), h.pex_id()), (Some(3), None));
        assert_eq!(h.metadata_size, Some(31_235));
        assert_eq!((h.reqq, h.listen_port), (Some(250), Some(51413)));
        assert_eq!(h.client.as_ref().unwrap().chars().count(), MAX_CLIENT_NAME);
        assert_eq!(h.yourip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(ExtensionHandshake::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn informative_values_out_of_range_are_left_out() {
        let payload = Bencode::dict()
            .with("reqq", 0)
            .with("p", 70000)
            .with("v", 5)
            .with("yourip", "abc")
            .encode();
        let h = ExtensionHandshake::decode(&payload).unwrap();
        assert_eq!(h, ExtensionHandshake::default());
    }

    #[test]
    fn malformed_handshakes_are_typed_errors() {
        use ExtensionHandshakeError as E;
        assert!(matches!(
            ExtensionHandshake::decode(b"d1:"),
            Err(E::Bencode(_))
        ));
        assert_eq!(ExtensionHandshake::decode(b"le"), Err(E::NotADict));
        assert_eq!(ExtensionHandshake::decode(b"d1:mi1ee"), Err(E::MNotADict));
        let bad_id = |v: Bencode| Bencode::dict().with("m", Bencode::dict().with("ut_pex", v));
        assert_eq!(
            ExtensionHandshake::decode(&bad_id(Bencode::Int(256)).encode()),
            Err(E::BadId {
                name: "ut_pex",
                value: "i256e".into()
            })
        );
        assert!(matches!(
            ExtensionHandshake::decode(&bad_id("x".into()).encode()),
            Err(E::BadId { name: "ut_pex", .. })
        ));
        let size = Bencode::dict().with("metadata_size", -1).encode();
        assert_eq!(
            ExtensionHandshake::decode(&size),
            Err(E::BadMetadataSize("i-1e".into()))
        );
    }

    #[test]
    fn a_later_handshake_changes_only_what_it_names() {
        let first = Bencode::dict()
            .with(
                "m",
                Bencode::dict().with("ut_metadata", 3).with("ut_pex", 4),
            )
            .with("reqq", 9)
            .encode();
        let mut h = ExtensionHandshake::decode(&first).unwrap();
        let later = Bencode::dict()
            .with("m", Bencode::dict().with("ut_pex", 0))
            .with("p", 1)
            .encode();
        h.update(ExtensionHandshake::decode(&later).unwrap());
        assert_eq!((h.metadata_id(), h.pex_id()), (Some(3), None));
        assert_eq!((h.reqq, h.listen_port), (Some(9), Some(1)));
    }
}
