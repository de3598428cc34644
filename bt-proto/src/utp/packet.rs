//! uTP packets (BEP 29): the 20-byte header, the extension chain and the payload.
//!
//! ```text
//! 0       4       8               16              24              32
//! +-------+-------+---------------+---------------+---------------+
//! | type  | ver   | extension     | connection_id                 |
//! +-------+-------+---------------+---------------+---------------+
//! | timestamp_microseconds                                        |
//! | timestamp_difference_microseconds                             |
//! | wnd_size                                                      |
//! | seq_nr                        | ack_nr                        |
//! +---------------+---------------+---------------+---------------+
//! ```
//!
//! All fields are big-endian. `extension` names the first extension; each extension starts
//! with the type of the next one (0: none) and its length in bytes. Type 1 is the selective
//! ack; any other type is skipped by its length. Decoding borrows the payload and the
//! selective-ack bitmask from the datagram.

use nom::{
    IResult, Parser, number::complete::be_u8, number::complete::be_u16, number::complete::be_u32,
};

/// Bytes in the fixed header.
pub const HEADER_LEN: usize = 20;

/// The protocol version this module speaks, in the low nibble of the first byte.
pub const VERSION: u8 = 1;

/// Extension type of the selective ack.
pub const EXT_SELECTIVE_ACK: u8 = 1;

/// The longest selective-ack bitmask we send: BEP 29 asks for a multiple of 4 bytes and the
/// length is one byte, so 252 bytes, 2,016 packets. What we read may be any length up to 255
/// (see [`SelectiveAck::new`]).
pub const MAX_SACK_LEN: usize = 252;

/// The five packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `ST_DATA` (0): a payload; takes a sequence number.
    Data,
    /// `ST_FIN` (1): the sender's last sequence number; no payload.
    Fin,
    /// `ST_STATE` (2): an ack without data; carries the next sequence number but takes none.
    State,
    /// `ST_RESET` (3): the connection is over, abruptly.
    Reset,
    /// `ST_SYN` (4): opens a connection; takes a sequence number.
    Syn,
}

impl PacketType {
    /// The type's number on the wire.
    pub fn code(self) -> u8 {
        match self {
            PacketType::Data => 0,
            PacketType::Fin => 1,
            PacketType::State => 2,
            PacketType::Reset => 3,
            PacketType::Syn => 4,
        }
    }

    /// The type with number `code`, if there is one.
    pub fn from_code(code: u8) -> Option<PacketType> {
        Some(match code {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// Why a datagram is not a uTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("a uTP header is {HEADER_LEN} bytes, the datagram has {0}")]
    Truncated(usize),
    /// The low nibble of the first byte is not [`VERSION`].
    #[error("uTP version {0}, only version 1 is known")]
    Version(u8),
    /// The high nibble of the first byte names no packet type.
    #[error("unknown uTP packet type {0}")]
    Type(u8),
    /// An extension's header or body runs past the end of the datagram.
    #[error("uTP extension at byte {0} runs past the end of the datagram")]
    ExtensionTruncated(usize),
    /// A selective-ack bitmask that is empty or longer than its one-byte length can say.
    #[error("selective ack of {0} bytes, must be 1 to 255")]
    SackLength(usize),
    /// Bytes after the header of a packet type that carries none.
    #[error("{0:?} packet with {1} bytes of payload")]
    Payload(PacketType, usize),
}

/// The fixed fields of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the packet is.
    pub kind: PacketType,
    /// The receiver's connection id.
    pub connection_id: u16,
    /// The sender's clock when it sent the packet, in microseconds (wrapping).
    pub timestamp_us: u32,
    /// The sender's clock when it received the last packet minus that packet's timestamp: the
    /// one-way delay towards the sender, plus the clocks' offset (wrapping).
    pub timestamp_diff_us: u32,
    /// Bytes the sender can still receive (its advertised window).
    pub wnd_size: u32,
    /// This packet's sequence number (SYN, DATA, FIN) or the next one (STATE).
    pub seq_nr: u16,
    /// The last sequence number the sender received in order.
    pub ack_nr: u16,
}

/// A selective ack's bitmask (BEP 29): bit `i` (least significant bit of byte 0 first)
/// says whether packet `ack_nr + 2 + i` arrived. 1 to 255 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectiveAck<'a>(&'a [u8]);

impl<'a> SelectiveAck<'a> {
    /// The bitmask as it is on the wire, if its one-byte length can say it and it is not empty.
    ///
    /// BEP 29 asks for a multiple of 4 bytes, and ours always are (at most [`MAX_SACK_LEN`]).
    /// libtorrent's are as long as its gap needs: 1 to 23 bytes in one capture of it
    /// downloading from us. Refusing those dropped each of its acks after the first loss,
    /// and the sender stalled until the connection died, so any length is read.
    pub fn new(bitmask: &'a [u8]) -> Result<Self, PacketError> {
        if bitmask.is_empty() || bitmask.len() > usize::from(u8::MAX) {
            return Err(PacketError::SackLength(bitmask.len()));
        }
        Ok(SelectiveAck(bitmask))
    }

    /// The bitmask's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// How many packets the bitmask speaks of.
    pub fn len_bits(&self) -> usize {
        self.0.len() * 8
    }

    /// Whether packet `ack_nr + 2 + i` arrived (false past the end).
    pub fn has(&self, i: usize) -> bool {
        self.0
            .get(i / 8)
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }
}

/// A decoded packet, borrowing its payload and bitmask from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The fixed fields.
    pub header: Header,
    /// The selective ack, if the packet has one (the first, if it has several).
    pub sack: Option<SelectiveAck<'a>>,
    /// The data (empty for every type but DATA).
    pub payload: &'a [u8],
}

/// The header's bytes in order, before the type and version are checked.
struct Fixed {
    type_ver: u8,
    extension: u8,
    connection_id: u16,
    timestamp_us: u32,
    timestamp_diff_us: u32,
    wnd_size: u32,
    seq_nr: u16,
    ack_nr: u16,
}

fn fixed(input: &[u8]) -> IResult<&[u8], Fixed> {
    let (rest, (type_ver, extension, connection_id)) = (be_u8, be_u8, be_u16).parse(input)?;
    let (rest, (timestamp_us, timestamp_diff_us, wnd_size)) =
        (be_u32, be_u32, be_u32).parse(rest)?;
    let (rest, (seq_nr, ack_nr)) = (be_u16, be_u16).parse(rest)?;
    let f = Fixed {
        type_ver,
        extension,
        connection_id,
        timestamp_us,
        timestamp_diff_us,
        wnd_size,
        seq_nr,
        ack_nr,
    };
    Ok((rest, f))
}

fn extension(input: &[u8]) -> IResult<&[u8], (u8, &[u8])> {
    let (rest, (next, len)) = (be_u8, be_u8).parse(input)?;
    let (rest, body) = nom::bytes::complete::take(len).parse(rest)?;
    Ok((rest, (next, body)))
}

impl<'a> Packet<'a> {
    /// Decodes one datagram. Unknown extensions are skipped; a type, version, length or
    /// extension chain that does not hold together is a typed error.
    pub fn decode(datagram: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let Ok((mut rest, f)) = fixed(datagram) else {
            return Err(PacketError::Truncated(datagram.len()));
        };
        let (type_ver, mut next) = (f.type_ver, f.extension);
        if type_ver & 0x0f != VERSION {
            return Err(PacketError::Version(type_ver & 0x0f));
        }
        let kind = PacketType::from_code(type_ver >> 4).ok_or(PacketError::Type(type_ver >> 4))?;
        let mut sack = None;
        while next != 0 {
            let at = datagram.len() - rest.len();
            let Ok((after, (following, body))) = extension(rest) else {
                return Err(PacketError::ExtensionTruncated(at));
            };
            if next == EXT_SELECTIVE_ACK && sack.is_none() {
                sack = Some(SelectiveAck::new(body)?);
            }
            next = following;
            rest = after;
        }
        if kind != PacketType::Data && !rest.is_empty() {
            return Err(PacketError::Payload(kind, rest.len()));
        }
        let header = Header {
            kind,
            connection_id: f.connection_id,
            timestamp_us: f.timestamp_us,
            timestamp_diff_us: f.timestamp_diff_us,
            wnd_size: f.wnd_size,
            seq_nr: f.seq_nr,
            ack_nr: f.ack_nr,
        };
        Ok(Packet {
            header,
            sack,
            payload: rest,
        })
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Bytes [`Packet::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.sack.map_or(0, |s| 2 + s.0.len()) + self.payload.len()
    }

    /// Appends the packet's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let h = &self.header;
        out.push(h.kind.code() << 4 | VERSION);
        out.push(if self.sack.is_some() {
            EXT_SELECTIVE_ACK
        } else {
            0
        });
        out.extend_from_slice(&h.connection_id.to_be_bytes());
        out.extend_from_slice(&h.timestamp_us.to_be_bytes());
        out.extend_from_slice(&h.timestamp_diff_us.to_be_bytes());
        out.extend_from_slice(&h.wnd_size.to_be_bytes());
        out.extend_from_slice(&h.seq_nr.to_be_bytes());
        out.extend_from_slice(&h.ack_nr.to_be_bytes());
        if let Some(SelectiveAck(bits)) = self.sack {
            out.push(0);
            // SelectiveAck::new keeps the length at most 255.
            out.push(u8::try_from(bits.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(bits);
        }
        out.extend_from_slice(self.payload);
    }
}

/// Whether a datagram looks like uTP rather than the DHT's KRPC: version 1 in the low nibble
/// and a known type in the high one (a KRPC message starts with `d`, 0x64, whose low nibble
/// is 4). The engine's demultiplexer; [`Packet::decode`] still has the last word.
pub fn is_utp(datagram: &[u8]) -> bool {
    datagram
        .first()
        .is_some_and(|b| b & 0x0f == VERSION && PacketType::from_code(b >> 4).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: PacketType) -> Header {
        Header {
            kind,
            connection_id: 0x1234,
            timestamp_us: 0xdead_beef,
            timestamp_diff_us: 77,
            wnd_size: 0x0010_0000,
            seq_nr: 65535,
            ack_nr: 1,
        }
    }

    #[test]
    fn syn_as_bep_29_lays_it_out() {
        // A SYN: type 4, version 1, no extension, connection id 0x1234.
        let p = Packet {
            header: header(PacketType::Syn),
            sack: None,
            payload: &[],
        };
        let bytes = p.encode();
        assert_eq!(
            bytes,
            [
                0x41, 0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 77, 0, 0x10, 0, 0, 0xff,
                0xff, 0, 1
            ]
        );
        assert_eq!(Packet::decode(&bytes), Ok(p));
        assert!(is_utp(&bytes));
        assert!(!is_utp(b"d1:ad2:id20:"));
        assert!(!is_utp(&[]));
    }

    #[test]
    fn data_with_sack_round_trips() {
        let bits = [0b0000_0101, 0, 0, 0x80];
        let p = Packet {
            header: header(PacketType::Data),
            sack: Some(SelectiveAck::new(&bits).unwrap()),
            payload: b"hello",
        };
        let bytes = p.encode();
        assert_eq!(bytes.len(), p.encoded_len());
        assert_eq!(bytes[1], EXT_SELECTIVE_ACK);
        assert_eq!(&bytes[20..24], &[0, 4, 0b101, 0]);
        let q = Packet::decode(&bytes).unwrap();
        assert_eq!(q, p);
        let s = q.sack.unwrap();
        assert!(s.has(0) && !s.has(1) && s.has(2) && s.has(31) && !s.has(32));
        assert_eq!(s.len_bits(), 32);
    }

    #[test]
    fn unknown_extensions_are_skipped() {
        let mut bytes = Packet {
            header: header(PacketType::Data),
            sack: None,
            payload: &[],
        }
        .encode();
        // Extension 2 (extension bits, 8 bytes), then an unknown 9 (0 bytes), then a sack.
        bytes[1] = 2;
        bytes.extend_from_slice(&[9, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&[0, 4, 1, 0, 0, 0]);
        bytes.extend_from_slice(b"xy");
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.payload, b"xy");
        assert!(p.sack.unwrap().has(0));
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        let good = Packet {
            header: header(PacketType::State),
            sack: None,
            payload: &[],
        }
        .encode();
        assert_eq!(Packet::decode(&good[..19]), Err(PacketError::Truncated(19)));
        assert_eq!(Packet::decode(&[]), Err(PacketError::Truncated(0)));
        let mut v2 = good.clone();
        v2[0] = 0x22;
        assert_eq!(Packet::decode(&v2), Err(PacketError::Version(2)));
        let mut t5 = good.clone();
        t5[0] = 0x51;
        assert_eq!(Packet::decode(&t5), Err(PacketError::Type(5)));
        let mut ext = good.clone();
        ext[1] = 1;
        assert_eq!(
            Packet::decode(&ext),
            Err(PacketError::ExtensionTruncated(20))
        );
        ext.extend_from_slice(&[0, 8, 1, 2]);
        assert_eq!(
            Packet::decode(&ext),
            Err(PacketError::ExtensionTruncated(20))
        );
        let mut empty = good.clone();
        empty[1] = 1;
        empty.extend_from_slice(&[0, 0]);
        assert_eq!(Packet::decode(&empty), Err(PacketError::SackLength(0)));
        let mut state_payload = good.clone();
        state_payload.push(0);
        assert_eq!(
            Packet::decode(&state_payload),
            Err(PacketError::Payload(PacketType::State, 1))
        );
        assert_eq!(
            SelectiveAck::new(&[0; 256]),
            Err(PacketError::SackLength(256))
        );
    }

    proptest::proptest! {
        #[test]
        fn every_packet_round_trips(
            kind in 0u8..5,
            fields in proptest::prelude::any::<(u16, u32, u32, u32, u16, u16)>(),
            sack_words in 0usize..64,
            sack_seed in proptest::prelude::any::<u8>(),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500),
        ) {
            let kind = PacketType::from_code(kind).unwrap();
            let (connection_id, timestamp_us, timestamp_diff_us, wnd_size, seq_nr, ack_nr) = fields;
            let bits: Vec<u8> = (0..sack_words * 4).map(|i| sack_seed.wrapping_mul(i as u8)).collect();
            let p = Packet {
                header: Header { kind, connection_id, timestamp_us, timestamp_diff_us, wnd_size, seq_nr, ack_nr },
                sack: SelectiveAck::new(&bits).ok(),
                payload: if kind == PacketType::Data { &payload } else { &[] },
            };
            let bytes = p.encode();
            proptest::prop_assert_eq!(bytes.len(), p.encoded_len());
            proptest::prop_assert_eq!(Packet::decode(&bytes), Ok(p));
            // Every strict prefix of the header or of an extension is a typed error.
            for cut in 0..HEADER_LEN.min(bytes.len()) {
                proptest::prop_assert_eq!(Packet::decode(&bytes[..cut]), Err(PacketError::Truncated(cut)));
            }
        }
    }
}
