//! The handshake that opens every peer connection (BEP 3), and the reserved bits through which
//! peers announce the DHT (BEP 5), the fast extension (BEP 6) and the extension protocol
//! (BEP 10).
//!
//! Layout, 68 bytes: `19`, `"BitTorrent protocol"`, 8 reserved bytes, the 20-byte info-hash,
//! the 20-byte peer id. Decoding is incremental: it says how many more bytes it needs, and it
//! rejects a wrong protocol name as soon as the first wrong byte arrives. The first 48 bytes
//! (through the info-hash) decode on their own, so a listener can route a connection to its
//! torrent before the peer id arrives (some clients wait for our handshake before sending it).

use std::fmt;

use bytes::BufMut;
use nom::{
    IResult, Parser,
    bytes::complete::{tag, take},
    combinator::map_opt,
};

use crate::encoding::hex;
use crate::{InfoHash, PeerId};

/// The protocol name every BitTorrent handshake starts with, after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Bytes in a whole handshake: length byte, protocol name, reserved, info-hash, peer id.
pub const HANDSHAKE_LEN: usize = 1 + PROTOCOL.len() + 8 + 20 + 20;

/// Bytes up to and including the info-hash: what a listener needs to route a connection.
pub const HANDSHAKE_PREFIX_LEN: usize = 1 + PROTOCOL.len() + 8 + 20;

/// A protocol extension announced by a bit of the handshake's reserved bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extension {
    /// BEP 5: the peer runs a DHT node and will send a PORT message (last byte, `0x01`).
    Dht,
    /// BEP 6: the fast extension, HAVE ALL / HAVE NONE / REJECT / SUGGEST / ALLOWED FAST
    /// (last byte, `0x04`).
    Fast,
    /// BEP 10: the extension protocol, EXTENDED messages (byte 5, `0x10`).
    ExtensionProtocol,
}

impl Extension {
    /// Every extension this crate names.
    pub const ALL: [Extension; 3] = [
        Extension::Dht,
        Extension::Fast,
        Extension::ExtensionProtocol,
    ];

    /// Index of the reserved byte holding the bit, and the bit's mask.
    const fn position(self) -> (usize, u8) {
        match self {
            Extension::Dht => (7, 0x01),
            Extension::Fast => (7, 0x04),
            Extension::ExtensionProtocol => (5, 0x10),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Extension::Dht => "dht",
            Extension::Fast => "fast",
            Extension::ExtensionProtocol => "extension-protocol",
        }
    }
}

/// The 8 reserved bytes of a handshake. Bits this crate does not name are kept as received, so
/// a peer's full set can be logged and compared.
///
/// An extension is in use on a connection only when both sides set its bit: see
/// [`Reserved::common`].
///
/// ```
/// use bt_proto::wire::{Extension, Reserved};
/// let ours = Reserved::NONE.with(Extension::Fast).with(Extension::ExtensionProtocol);
/// assert_eq!(ours.0, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
/// let theirs = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0x01]);
/// let both = ours.common(theirs);
/// assert!(both.has(Extension::ExtensionProtocol));
/// assert!(!both.has(Extension::Fast) && !both.has(Extension::Dht));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// No bit set: a plain BEP 3 peer.
    pub const NONE: Reserved = Reserved([0; 8]);

    /// Whether the bit of `ext` is set.
    pub fn has(self, ext: Extension) -> bool {
        let (byte, mask) = ext.position();
        self.0.get(byte).is_some_and(|b| b & mask != 0)
    }

    /// Sets or clears the bit of `ext`.
    pub fn set(&mut self, ext: Extension, on: bool) {
        let (byte, mask) = ext.position();
        if let Some(b) = self.0.get_mut(byte) {
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }

    /// A copy with the bit of `ext` set.
    pub fn with(mut self, ext: Extension) -> Self {
        self.set(ext, true);
        self
    }

    /// The bits set on both sides: what a connection may actually use.
    pub fn common(self, other: Reserved) -> Reserved {
        let mut out = [0u8; 8];
        for ((o, a), b) in out.iter_mut().zip(self.0).zip(other.0) {
            *o = a & b;
        }
        Reserved(out)
    }
}

impl fmt::Debug for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reserved({}", hex::Lower(&self.0))?;
        let mut sep = " ";
        for ext in Extension::ALL {
            if self.has(ext) {
                write!(f, "{sep}{}", ext.name())?;
                sep = ",";
            }
        }
        write!(f, ")")
    }
}

/// The outcome of decoding a handshake from the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<T> {
    /// Decoded; the value used exactly the first [`HANDSHAKE_LEN`] (or, for a
    /// [`HandshakePrefix`], [`HANDSHAKE_PREFIX_LEN`]) bytes of the input.
    Done(T),
    /// The bytes so far are a valid beginning; at least this many more are needed (never 0).
    NeedMore(usize),
}

/// A handshake that is not BitTorrent's. Offsets count from the handshake's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The first byte, the protocol name's length, is not 19. (An encrypted stream, BEP 8
    /// obfuscation or another protocol entirely looks like this.)
    #[error("handshake byte 0: protocol name length is {found}, expected 19")]
    ProtocolLength {
        /// The length byte received.
        found: u8,
    },
    /// The protocol name is not `BitTorrent protocol`.
    #[error(
        "handshake byte {offset}: protocol name differs from \"BitTorrent protocol\" \
         (found {found:#04x}, expected {expected:#04x})"
    )]
    ProtocolName {
        /// Offset of the first wrong byte (1..=19).
        offset: usize,
        /// The byte received there.
        found: u8,
        /// The byte expected there.
        expected: u8,
    },
}

/// Checks whatever part of the length byte and protocol name has arrived.
fn check_protocol(input: &[u8]) -> Result<(), HandshakeError> {
    if let Some(&found) = input.first()
        && usize::from(found) != PROTOCOL.len()
    {
        return Err(HandshakeError::ProtocolLength { found });
    }
    let name = input.get(1..).unwrap_or_default();
    for (i, (&found, &expected)) in name.iter().zip(PROTOCOL.iter()).enumerate() {
        if found != expected {
            return Err(HandshakeError::ProtocolName {
                offset: i + 1,
                found,
                expected,
            });
        }
    }
    Ok(())
}

fn array<const N: usize>(input: &[u8]) -> IResult<&[u8], [u8; N]> {
    map_opt(take(N), |s: &[u8]| <[u8; N]>::try_from(s).ok()).parse(input)
}

fn parse_prefix(input: &[u8]) -> IResult<&[u8], HandshakePrefix> {
    let (rest, (_, _, reserved, info_hash)) = (
        tag(&[19u8][..]),
        tag(&PROTOCOL[..]),
        array::<8>,
        array::<20>,
    )
        .parse(input)?;
    Ok((
        rest,
        HandshakePrefix {
            reserved: Reserved(reserved),
            info_hash: InfoHash(info_hash),
        },
    ))
}

fn parse_handshake(input: &[u8]) -> IResult<&[u8], Handshake> {
    let (rest, (prefix, peer_id)) = (parse_prefix, array::<20>).parse(input)?;
    Ok((
        rest,
        Handshake {
            reserved: prefix.reserved,
            info_hash: prefix.info_hash,
            peer_id: PeerId(peer_id),
        },
    ))
}

/// Runs `parser` over `input` once `len` bytes are there, after checking the protocol name.
fn decode_with<T>(
    input: &[u8],
    len: usize,
    parser: fn(&[u8]) -> IResult<&[u8], T>,
) -> Result<Progress<T>, HandshakeError> {
    check_protocol(input)?;
    if input.len() < len {
        return Ok(Progress::NeedMore(len - input.len()));
    }
    // With the name checked and `len` bytes present the fixed-size fields cannot fail; if nom
    // disagreed, the honest answer would still be "not decodable yet".
    match parser(input) {
        Ok((_, value)) => Ok(Progress::Done(value)),
        Err(_) => Ok(Progress::NeedMore(1)),
    }
}

/// The first 48 bytes of a handshake: enough to pick the torrent an incoming connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandshakePrefix {
    /// The peer's reserved bits.
    pub reserved: Reserved,
    /// The torrent the peer asks for.
    pub info_hash: InfoHash,
}

impl HandshakePrefix {
    /// Decodes the first [`HANDSHAKE_PREFIX_LEN`] bytes of `input`; later bytes are ignored.
    ///
    /// ```
    /// use bt_proto::wire::{HandshakePrefix, Progress};
    /// let mut bytes = vec![19];
    /// bytes.extend_from_slice(b"BitTorrent protocol");
    /// assert_eq!(HandshakePrefix::decode(&bytes), Ok(Progress::NeedMore(28)));
    /// bytes.extend_from_slice(&[0; 8]);
    /// bytes.extend_from_slice(&[0xab; 20]);
    /// let Ok(Progress::Done(prefix)) = HandshakePrefix::decode(&bytes) else { panic!() };
    /// assert_eq!(prefix.info_hash.0, [0xab; 20]);
    /// ```
    pub fn decode(input: &[u8]) -> Result<Progress<HandshakePrefix>, HandshakeError> {
        decode_with(input, HANDSHAKE_PREFIX_LEN, parse_prefix)
    }
}

/// A whole handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Extension bits the sender supports.
    pub reserved: Reserved,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The sender's id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// The wire form, [`HANDSHAKE_LEN`] bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        let mut cursor = &mut out[..];
        self.encode_into(&mut cursor);
        out
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut impl BufMut) {
        out.put_u8(19);
        out.put_slice(PROTOCOL);
        out.put_slice(&self.reserved.0);
        out.put_slice(&self.info_hash.0);
        out.put_slice(&self.peer_id.0);
    }

    /// Decodes the first [`HANDSHAKE_LEN`] bytes of `input`; later bytes (the first messages,
    /// when a peer sends them right behind its handshake) are left to the caller.
    ///
    /// ```
    /// use bt_proto::wire::{Handshake, Progress, Reserved};
    /// use bt_proto::{InfoHash, PeerId};
    /// let ours = Handshake {
    ///     reserved: Reserved::NONE,
    ///     info_hash: InfoHash([1; 20]),
    ///     peer_id: PeerId([2; 20]),
    /// };
    /// let bytes = ours.encode();
    /// assert_eq!(Handshake::decode(&bytes[..60]), Ok(Progress::NeedMore(8)));
    /// assert_eq!(Handshake::decode(&bytes), Ok(Progress::Done(ours)));
    /// assert!(Handshake::decode(b"\x13BitTorrent Protocol").is_err());
    /// ```
    pub fn decode(input: &[u8]) -> Result<Progress<Handshake>, HandshakeError> {
        decode_with(input, HANDSHAKE_LEN, parse_handshake)
    }

    /// The first 48 bytes' worth of this handshake.
    pub fn prefix(&self) -> HandshakePrefix {
        HandshakePrefix {
            reserved: self.reserved,
            info_hash: self.info_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved::NONE
                .with(Extension::Dht)
                .with(Extension::Fast)
                .with(Extension::ExtensionProtocol),
            info_hash: InfoHash(*b"0123456789abcdefghij"),
            peer_id: PeerId(*b"-Sx001U-ABCDEFGHIJKL"),
        }
    }

    #[test]
    fn encodes_exact_bytes() {
        let mut expected = vec![19u8];
        expected.extend_from_slice(b"BitTorrent protocol");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        expected.extend_from_slice(b"0123456789abcdefghij");
        expected.extend_from_slice(b"-Sx001U-ABCDEFGHIJKL");
        assert_eq!(sample().encode().to_vec(), expected);
        let mut v = Vec::new();
        sample().encode_into(&mut v);
        assert_eq!(v, expected);
    }

    #[test]
    fn reserved_bits_are_where_the_beps_put_them() {
        let mut r = Reserved::NONE;
        r.set(Extension::Dht, true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0, 0, 0x01]);
        r.set(Extension::Fast, true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0, 0, 0x05]);
        r.set(Extension::ExtensionProtocol, true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        r.set(Extension::Dht, false);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert!(!r.has(Extension::Dht));
        assert!(r.has(Extension::Fast) && r.has(Extension::ExtensionProtocol));
    }

    #[test]
    fn unknown_reserved_bits_survive_a_round_trip() {
        // Azureus messaging (byte 0, 0x80) and BEP 52 (byte 7, 0x10) are not named here.
        let mut h = sample();
        h.reserved = Reserved([0x80, 0, 0, 0, 0, 0x10, 0, 0x10]);
        let Ok(Progress::Done(back)) = Handshake::decode(&h.encode()) else {
            panic!("round trip")
        };
        assert_eq!(back.reserved.0, [0x80, 0, 0, 0, 0, 0x10, 0, 0x10]);
        assert!(back.reserved.has(Extension::ExtensionProtocol));
        assert!(!back.reserved.has(Extension::Fast));
        assert_eq!(
            format!("{:?}", back.reserved),
            "Reserved(8000000000100010 extension-protocol)"
        );
    }

    #[test]
    fn common_is_the_intersection() {
        let a = Reserved([0xff, 0, 0, 0, 0, 0x10, 0, 0x05]);
        let b = Reserved([0x0f, 0, 0, 0, 0, 0x00, 0, 0x04]);
        assert_eq!(a.common(b).0, [0x0f, 0, 0, 0, 0, 0, 0, 0x04]);
    }

    #[test]
    fn decodes_with_leftover_bytes_untouched() {
        let mut bytes = sample().encode().to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 1, 2]);
        assert_eq!(Handshake::decode(&bytes), Ok(Progress::Done(sample())));
        assert_eq!(
            HandshakePrefix::decode(&bytes),
            Ok(Progress::Done(sample().prefix()))
        );
    }

    #[test]
    fn every_proper_prefix_needs_exactly_the_rest() {
        let bytes = sample().encode();
        for len in 0..HANDSHAKE_LEN {
            assert_eq!(
                Handshake::decode(&bytes[..len]),
                Ok(Progress::NeedMore(HANDSHAKE_LEN - len))
            );
        }
        for len in 0..HANDSHAKE_PREFIX_LEN {
            assert_eq!(
                HandshakePrefix::decode(&bytes[..len]),
                Ok(Progress::NeedMore(HANDSHAKE_PREFIX_LEN - len))
            );
        }
        assert!(matches!(
            HandshakePrefix::decode(&bytes[..HANDSHAKE_PREFIX_LEN]),
            Ok(Progress::Done(_))
        ));
    }

    #[test]
    fn wrong_length_byte_is_rejected_at_once() {
        assert_eq!(
            Handshake::decode(&[0x16]),
            Err(HandshakeError::ProtocolLength { found: 0x16 })
        );
        let err = Handshake::decode(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert_eq!(err, HandshakeError::ProtocolLength { found: b'G' });
        assert_eq!(
            err.to_string(),
            "handshake byte 0: protocol name length is 71, expected 19"
        );
    }

    #[test]
    fn wrong_protocol_name_is_rejected_at_the_first_wrong_byte() {
        // Only 12 bytes so far, the 12th is wrong: no need to wait for the rest.
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent_"),
            Err(HandshakeError::ProtocolName {
                offset: 11,
                found: b'_',
                expected: b' '
            })
        );
        let mut bytes = sample().encode();
        bytes[19] = b'L';
        assert_eq!(
            HandshakePrefix::decode(&bytes),
            Err(HandshakeError::ProtocolName {
                offset: 19,
                found: b'L',
                expected: b'l'
            })
        );
    }

    fn arb_handshake() -> impl Strategy<Value = Handshake> {
        (any::<[u8; 8]>(), any::<[u8; 20]>(), any::<[u8; 20]>()).prop_map(|(r, i, p)| Handshake {
            reserved: Reserved(r),
            info_hash: InfoHash(i),
            peer_id: PeerId(p),
        })
    }

    proptest! {
        #[test]
        fn round_trip(h in arb_handshake()) {
            prop_assert_eq!(Handshake::decode(&h.encode()), Ok(Progress::Done(h)));
            prop_assert_eq!(HandshakePrefix::decode(&h.encode()), Ok(Progress::Done(h.prefix())));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_agree(
            bytes in proptest::collection::vec(any::<u8>(), 0..100)
        ) {
            let full = Handshake::decode(&bytes);
            let prefix = HandshakePrefix::decode(&bytes);
            match (&full, &prefix) {
                // An error in the first 48 bytes is the same error for both.
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (Ok(Progress::Done(h)), Ok(Progress::Done(p))) => prop_assert_eq!(h.prefix(), *p),
                (Ok(Progress::NeedMore(n)), Ok(Progress::NeedMore(m))) => {
                    prop_assert_eq!(*n, HANDSHAKE_LEN - bytes.len());
                    prop_assert_eq!(*m, HANDSHAKE_PREFIX_LEN - bytes.len());
                }
                (Ok(Progress::NeedMore(n)), Ok(Progress::Done(_))) => {
                    prop_assert_eq!(*n, HANDSHAKE_LEN - bytes.len());
                }
                _ => prop_assert!(false, "disagree: {:?} vs {:?}", full, prefix),
            }
        }
    }
}
