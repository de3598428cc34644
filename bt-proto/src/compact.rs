//! Compact peer addresses: 4 or 16 address bytes then a big-endian port, one after the other
//! (BEP 23 for IPv4, BEP 7 for IPv6). Peer exchange (BEP 11) lists peers the same way.
//!
//! ```
//! use bt_proto::compact::{self, Family};
//! let addrs = ["10.0.0.1:6881".parse().unwrap(), "[2001:db8::1]:51413".parse().unwrap()];
//! let mut v4 = Vec::new();
//! compact::encode(&addrs, Family::V4, &mut v4);
//! assert_eq!(v4, [10, 0, 0, 1, 0x1a, 0xe1]);
//! assert_eq!(compact::decode(&v4, Family::V4).unwrap(), vec![addrs[0]]);
//! ```

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes per compact IPv4 address: 4 address bytes and the port.
pub const COMPACT_V4_LEN: usize = 6;

/// Bytes per compact IPv6 address: 16 address bytes and the port.
pub const COMPACT_V6_LEN: usize = 18;

/// Which of the two compact layouts a string uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 6-byte entries.
    V4,
    /// 18-byte entries.
    V6,
}

impl Family {
    /// Bytes per entry.
    pub const fn entry_len(self) -> usize {
        match self {
            Family::V4 => COMPACT_V4_LEN,
            Family::V6 => COMPACT_V6_LEN,
        }
    }

    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }
}

/// A compact string that is not a whole number of entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes is not a whole number of {entry}-byte compact addresses")]
pub struct RaggedCompact {
    /// The string's length.
    pub len: usize,
    /// The entry length it should be a multiple of.
    pub entry: usize,
}

/// The addresses of a compact string of `family`.
pub fn decode(bytes: &[u8], family: Family) -> Result<Vec<SocketAddr>, RaggedCompact> {
    let ragged = RaggedCompact {
        len: bytes.len(),
        entry: family.entry_len(),
    };
    match family {
        Family::V4 => {
            let (entries, tail) = bytes.as_chunks::<COMPACT_V4_LEN>();
            if !tail.is_empty() {
                return Err(ragged);
            }
            Ok(entries
                .iter()
                .map(|&[a, b, c, d, p1, p2]| {
                    let ip = Ipv4Addr::new(a, b, c, d);
                    SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be_bytes([p1, p2])))
                })
                .collect())
        }
        Family::V6 => {
            let (entries, tail) = bytes.as_chunks::<COMPACT_V6_LEN>();
            if !tail.is_empty() {
                return Err(ragged);
            }
            Ok(entries
                .iter()
                .map(|entry| {
                    let (ip, port) = entry.split_at(16);
                    let ip = <[u8; 16]>::try_from(ip).unwrap_or_default();
                    let port = <[u8; 2]>::try_from(port).unwrap_or_default();
                    let ip = Ipv6Addr::from(ip);
                    SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be_bytes(port), 0, 0))
                })
                .collect())
        }
    }
}

/// Appends the addresses of `family` among `addrs` to `out`, in order; the others are left
/// out.
pub fn encode<'a>(
    addrs: impl IntoIterator<Item = &'a SocketAddr>,
    family: Family,
    out: &mut Vec<u8>,
) {
    for addr in addrs {
        match (addr, family) {
            (SocketAddr::V4(a), Family::V4) => {
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            (SocketAddr::V6(a), Family::V6) => {
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_round_trip_and_ragged_strings_are_errors() {
        let addrs: Vec<SocketAddr> = vec![
            "1.2.3.4:5".parse().unwrap(),
            "[::1]:6881".parse().unwrap(),
            "255.255.255.255:65535".parse().unwrap(),
        ];
        for family in [Family::V4, Family::V6] {
            let mut out = Vec::new();
            encode(&addrs, family, &mut out);
            let back = decode(&out, family).unwrap();
            let same: Vec<SocketAddr> = addrs
                .iter()
                .filter(|a| Family::of(a) == family)
                .copied()
                .collect();
            assert_eq!(back, same);
            out.push(0);
            assert_eq!(
                decode(&out, family),
                Err(RaggedCompact {
                    len: out.len(),
                    entry: family.entry_len()
                })
            );
        }
    }
}
