//! Node ids (BEP 5): 160-bit names in the same space as info-hashes, compared by XOR
//! distance, and the BEP 42 rule that ties an id to its node's IP address.

use std::fmt;
use std::net::IpAddr;

use crate::InfoHash;
use crate::rng::Rng;

/// A DHT node's id, or any point of the id space (an info-hash is one too).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

/// The XOR distance between two ids, ordered as the big-endian number it is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl NodeId {
    /// A random id (before our external address is known, or for a lookup target).
    pub fn random(rng: &mut Rng) -> Self {
        let mut id = [0u8; 20];
        rng.fill(&mut id);
        NodeId(id)
    }

    /// The distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, slot) in d.iter_mut().enumerate() {
            *slot = self.0.get(i).copied().unwrap_or(0) ^ other.0.get(i).copied().unwrap_or(0);
        }
        Distance(d)
    }

    /// How many leading bits `self` and `other` share (160 for the same id).
    pub fn shared_prefix(&self, other: &NodeId) -> u32 {
        self.distance(other).leading_zeros()
    }

    /// An id as BEP 42 wants it for a node at `ip`: the first 21 bits from the CRC-32C of
    /// the masked address and 3 random bits `r`, which the last byte repeats, the rest
    /// random. Checked with [`NodeId::is_secure_for`].
    pub fn secure_for(ip: IpAddr, rng: &mut Rng) -> Self {
        let mut id = [0u8; 20];
        rng.fill(&mut id);
        let r = id[19] & 0x07;
        let crc = secure_prefix(ip, r);
        id[0] = (crc >> 24) as u8;
        id[1] = (crc >> 16) as u8;
        id[2] = ((crc >> 8) as u8 & 0xf8) | (id[2] & 0x07);
        NodeId(id)
    }

    /// Whether the id follows BEP 42 for a node at `ip`. Addresses the rule does not cover
    /// (loopback, private, link-local: they are not unique) always pass.
    pub fn is_secure_for(&self, ip: IpAddr) -> bool {
        if exempt(ip) {
            return true;
        }
        let crc = secure_prefix(ip, self.0[19] & 0x07);
        self.0[0] == (crc >> 24) as u8
            && self.0[1] == (crc >> 16) as u8
            && self.0[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
    }

    /// A random id whose first `bits` bits are `self`'s: a target inside a bucket's range.
    pub fn random_with_prefix(&self, bits: u32, rng: &mut Rng) -> Self {
        let mut id = NodeId::random(rng).0;
        for (i, (byte, ours)) in id.iter_mut().zip(self.0).enumerate() {
            let first_bit = i as u32 * 8;
            if first_bit + 8 <= bits {
                *byte = ours;
            } else if first_bit < bits {
                let keep = 0xffu8 << (8 - (bits - first_bit));
                *byte = (ours & keep) | (*byte & !keep);
            }
        }
        NodeId(id)
    }
}

impl Distance {
    /// Leading zero bits: the length of the prefix the two ids share.
    pub fn leading_zeros(&self) -> u32 {
        let mut n = 0;
        for b in self.0 {
            if b == 0 {
                n += 8;
            } else {
                return n + b.leading_zeros();
            }
        }
        n
    }
}

impl From<InfoHash> for NodeId {
    fn from(h: InfoHash) -> Self {
        NodeId(h.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Addresses BEP 42 leaves alone: many nodes share them, so they prove nothing.
fn exempt(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        // fec0::/10: the deprecated site-local range, private like the unique-local one.
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.segments()[0] & 0xffc0 == 0xfec0
        }
    }
}

/// The CRC-32C of `ip`, masked as BEP 42 says, with `r` in the top three bits.
fn secure_prefix(ip: IpAddr, r: u8) -> u32 {
    const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
    const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];
    let mut bytes: Vec<u8> = match ip.to_canonical() {
        IpAddr::V4(v4) => v4
            .octets()
            .iter()
            .zip(V4_MASK)
            .map(|(b, m)| b & m)
            .collect(),
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .zip(V6_MASK)
            .map(|(b, m)| b & m)
            .collect(),
    };
    if let Some(first) = bytes.first_mut() {
        *first |= (r & 0x07) << 5;
    }
    crc32c(&bytes)
}

/// CRC-32C (Castagnoli), bit by bit: BEP 42 hashes a few bytes per id, rarely.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(hex: &str) -> NodeId {
        let mut b = [0u8; 20];
        for (i, slot) in b.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap();
        }
        NodeId(b)
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    /// The examples of BEP 42.
    #[test]
    fn bep42_examples_are_secure_and_others_are_not() {
        let cases = [
            ("124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
            ("21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
            ("65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
            ("84.124.73.14", "1b032191ca8a8b6b9cc3e2f46b7d0c8ddb1f0a41"),
            ("43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
        ];
        for (ip, hex) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(id(hex).is_secure_for(ip), "{ip}");
            let mut wrong = id(hex);
            wrong.0[0] ^= 0x80;
            assert!(!wrong.is_secure_for(ip), "{ip}");
        }
        let mut rng = Rng::seed_from_u64(3);
        for ip in ["8.8.8.8", "2001:4860::8888", "203.0.113.9"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(NodeId::secure_for(ip, &mut rng).is_secure_for(ip));
        }
        assert!(NodeId([0; 20]).is_secure_for("192.168.1.4".parse().unwrap()));
        for private in ["fec0::1", "fd00::1", "fe80::1", "::1"] {
            assert!(NodeId([0; 20]).is_secure_for(private.parse().unwrap()));
        }
        assert!(!NodeId([0; 20]).is_secure_for("2001:4860::8888".parse().unwrap()));
    }

    #[test]
    fn distance_orders_by_shared_prefix() {
        let a = NodeId([0; 20]);
        let mut b = a;
        b.0[0] = 0x10;
        let mut c = a;
        c.0[19] = 1;
        assert_eq!(a.shared_prefix(&b), 3);
        assert_eq!(a.shared_prefix(&c), 159);
        assert_eq!(a.shared_prefix(&a), 160);
        assert!(a.distance(&c) < a.distance(&b));
        let mut rng = Rng::seed_from_u64(1);
        for bits in [0, 1, 7, 8, 9, 100, 160] {
            let t = b.random_with_prefix(bits, &mut rng);
            assert!(t.shared_prefix(&b) >= bits, "{bits}");
        }
    }
}
