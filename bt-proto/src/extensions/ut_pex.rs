//! Peer exchange (BEP 11): the peers a sender connected to and disconnected from since its
//! last message.
//!
//! A message is a bencoded dictionary of compact address strings, `added`/`dropped` for IPv4
//! (6-byte entries) and `added6`/`dropped6` for IPv6 (18-byte entries), with `added.f` and
//! `added6.f` giving one flag byte per added peer. A string that is not whole entries, a flag
//! string whose length is not the number of added peers, or one of these keys holding
//! something other than a string is a [`PexError`]; missing keys are empty lists, missing
//! flags are no flags, and unknown keys are ignored.
//!
//! ```
//! use bt_proto::extensions::ut_pex::{PexFlags, PexMessage};
//!
//! let m = PexMessage {
//!     added: vec![("10.0.0.2:6881".parse().unwrap(), PexFlags::SEED | PexFlags::REACHABLE)],
//!     dropped: vec!["[2001:db8::7]:51413".parse().unwrap()],
//! };
//! assert_eq!(PexMessage::decode(&m.encode()).unwrap(), m);
//! ```

use std::net::SocketAddr;
use std::ops::BitOr;

use crate::bencode::{self, Bencode, Value};
use crate::compact::{self, Family, RaggedCompact};

/// What a peer exchange message says about one added peer (BEP 11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// No flag.
    pub const NONE: PexFlags = PexFlags(0);
    /// It prefers encrypted connections.
    pub const ENCRYPTION: PexFlags = PexFlags(0x01);
    /// It is a seed (or only uploads).
    pub const SEED: PexFlags = PexFlags(0x02);
    /// It speaks uTP.
    pub const UTP: PexFlags = PexFlags(0x04);
    /// It speaks the hole-punching extension.
    pub const HOLEPUNCH: PexFlags = PexFlags(0x08);
    /// The sender connected to it, so it accepts connections.
    pub const REACHABLE: PexFlags = PexFlags(0x10);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: PexFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for PexFlags {
    type Output = PexFlags;

    fn bitor(self, rhs: PexFlags) -> PexFlags {
        PexFlags(self.0 | rhs.0)
    }
}

/// One `ut_pex` message. Encoding writes IPv4 addresses to the IPv4 keys and IPv6 ones to the
/// IPv6 keys, each family in the order given; decoding gives the IPv4 entries first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers connected to since the last message, with their flags.
    pub added: Vec<(SocketAddr, PexFlags)>,
    /// Peers disconnected from since the last message.
    pub dropped: Vec<SocketAddr>,
}

/// Why a `ut_pex` message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PexError {
    /// Not bencode.
    #[error("ut_pex: {0}")]
    Bencode(#[from] bencode::DecodeError),
    /// Bencode, but not a dictionary.
    #[error("ut_pex message is not a dictionary")]
    NotADict,
    /// One of its keys holds something other than a string.
    #[error("ut_pex `{0}` is not a string")]
    NotAString(&'static str),
    /// An address list that is not whole entries.
    #[error("ut_pex `{key}`: {error}")]
    Ragged {
        /// The key.
        key: &'static str,
        /// How it was ragged.
        error: RaggedCompact,
    },
    /// A flag string whose length is not the number of added peers.
    #[error("ut_pex `{key}` has {flags} flags for {peers} peers")]
    FlagCount {
        /// The flag key.
        key: &'static str,
        /// Flags it holds.
        flags: usize,
        /// Peers added.
        peers: usize,
    },
}

impl PexMessage {
    /// Reads one message's payload.
    pub fn decode(payload: &[u8]) -> Result<Self, PexError> {
        let v = bencode::decode(payload)?;
        if v.as_dict().is_none() {
            return Err(PexError::NotADict);
        }
        let mut m = PexMessage::default();
        for (family, key, flags_key) in [
            (Family::V4, "added", "added.f"),
            (Family::V6, "added6", "added6.f"),
        ] {
            let addrs = addresses(&v, key, family)?;
            let flags = string(&v, flags_key)?;
            match flags {
                None => m
                    .added
                    .extend(addrs.into_iter().map(|a| (a, PexFlags::NONE))),
                Some(f) if f.len() == addrs.len() => m
                    .added
                    .extend(addrs.into_iter().zip(f.iter().map(|b| PexFlags(*b)))),
                Some(f) => {
                    return Err(PexError::FlagCount {
                        key: flags_key,
                        flags: f.len(),
                        peers: addrs.len(),
                    });
                }
            }
        }
        m.dropped = addresses(&v, "dropped", Family::V4)?;
        m.dropped.extend(addresses(&v, "dropped6", Family::V6)?);
        Ok(m)
    }

    /// The message's payload. Every key is written, empty or not, so the message always
    /// holds the `added` or `dropped` field BEP 11 asks for.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Bencode::dict();
        for (family, key, flags_key, dropped_key) in [
            (Family::V4, "added", "added.f", "dropped"),
            (Family::V6, "added6", "added6.f", "dropped6"),
        ] {
            let added: Vec<&(SocketAddr, PexFlags)> = self
                .added
                .iter()
                .filter(|(a, _)| Family::of(a) == family)
                .collect();
            let mut addrs = Vec::new();
            compact::encode(added.iter().map(|(a, _)| a), family, &mut addrs);
            let flags: Vec<u8> = added.iter().map(|(_, f)| f.0).collect();
            let mut dropped = Vec::new();
            compact::encode(&self.dropped, family, &mut dropped);
            d.insert(key, addrs);
            d.insert(flags_key, flags);
            d.insert(dropped_key, dropped);
        }
        d.encode()
    }

    /// How many addresses it lists, added and dropped.
    pub fn len(&self) -> usize {
        self.added.len() + self.dropped.len()
    }

    /// Whether it lists no address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn string<'a>(v: &Value<'a>, key: &'static str) -> Result<Option<&'a [u8]>, PexError> {
    match v.get(key.as_bytes()) {
        None => Ok(None),
        Some(s) => s.as_bytes().map(Some).ok_or(PexError::NotAString(key)),
    }
}

fn addresses(
    v: &Value<'_>,
    key: &'static str,
    family: Family,
) -> Result<Vec<SocketAddr>, PexError> {
    let Some(bytes) = string(v, key)? else {
        return Ok(Vec::new());
    };
    compact::decode(bytes, family).map_err(|error| PexError::Ragged { key, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_families_round_trip_with_their_flags() {
        let m = PexMessage {
            added: vec![
                (addr("10.0.0.1:1"), PexFlags::SEED),
                (addr("10.0.0.2:2"), PexFlags::NONE),
                (addr("[::1]:3"), PexFlags::REACHABLE | PexFlags::UTP),
            ],
            dropped: vec![addr("10.0.0.9:9"), addr("[2001:db8::1]:4")],
        };
        let back = PexMessage::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.len(), 5);
        assert!(back.added[2].1.contains(PexFlags::REACHABLE));
        assert!(!back.added[2].1.contains(PexFlags::SEED));
        let empty = PexMessage::default();
        assert!(empty.is_empty());
        assert_eq!(PexMessage::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn missing_flags_are_no_flags_and_unknown_keys_are_ignored() {
        let payload = Bencode::dict()
            .with("added", vec![10u8, 0, 0, 1, 0x1a, 0xe1])
            .with("x-unknown", 5)
            .encode();
        let m = PexMessage::decode(&payload).unwrap();
        assert_eq!(m.added, vec![(addr("10.0.0.1:6881"), PexFlags::NONE)]);
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let decode = |d: Bencode| PexMessage::decode(&d.encode());
        assert!(matches!(
            PexMessage::decode(b"d5:added"),
            Err(PexError::Bencode(_))
        ));
        assert_eq!(PexMessage::decode(b"le"), Err(PexError::NotADict));
        assert_eq!(
            decode(Bencode::dict().with("dropped6", 1)),
            Err(PexError::NotAString("dropped6"))
        );
        assert_eq!(
            decode(Bencode::dict().with("added", vec![0u8; 7])),
            Err(PexError::Ragged {
                key: "added",
                error: RaggedCompact { len: 7, entry: 6 }
            })
        );
        assert_eq!(
            decode(
                Bencode::dict()
                    .with("added6", vec![0u8; 18])
                    .with("added6.f", vec![0u8; 2])
            ),
            Err(PexError::FlagCount {
                key: "added6.f",
                flags: 2,
                peers: 1
            })
        );
    }
}
