//! RC4's keystream, written here for speed: on an encrypted connection every byte passes
//! through it once on each side, and it is a serial loop no SIMD can widen.
//!
//! The state table holds each of its 256 byte values in a 32-bit word, and the loop keeps
//! its indices in registers. Both were chosen by measurement (`cargo bench -p bt-proto
//! --bench rc4`): on the development machine this runs at 617 MiB/s in place and 609 from
//! one buffer to another, against 425 for RustCrypto's `rc4` 0.2 (a table of bytes) in the
//! same sitting; OpenSSL's assembly (`openssl speed -evp rc4`) ran at about 500 MB/s there.
//! RustCrypto's crate stays as the reference the tests hold the keystream to.

/// RC4 keys are 1 to 256 bytes (MSE's are 20).
pub(super) const MAX_KEY_LEN: usize = 256;

/// The table's word `n`. A byte always indexes 256 words, so the compiler drops the check
/// (the speed of `cargo bench -p bt-proto --bench rc4` is the same as with plain indexing).
#[inline(always)]
fn word(s: &[u32; 256], n: u8) -> u32 {
    s.get(usize::from(n)).copied().unwrap_or(0)
}

/// Sets the table's word `n` (see [`word`]).
#[inline(always)]
fn set(s: &mut [u32; 256], n: u8, v: u32) {
    if let Some(w) = s.get_mut(usize::from(n)) {
        *w = v;
    }
}

/// One RC4 keystream.
#[derive(Clone)]
pub(super) struct Rc4 {
    /// The permutation of 0..=255; every word is below 256.
    s: [u32; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// The key schedule; `None` for a key of 0 or more than [`MAX_KEY_LEN`] bytes.
    pub(super) fn new(key: &[u8]) -> Option<Rc4> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return None;
        }
        let mut s = [0u32; 256];
        for (n, w) in (0u32..).zip(s.iter_mut()) {
            *w = n;
        }
        let mut j = 0u8;
        for (i, k) in (0..=255u8).zip(key.iter().cycle()) {
            // Every word is below 256, so the truncation keeps its value.
            j = j.wrapping_add(word(&s, i) as u8).wrapping_add(*k);
            s.swap(usize::from(i), usize::from(j));
        }
        Some(Rc4 { s, i: 0, j: 0 })
    }

    /// The next keystream byte.
    #[inline(always)]
    fn next(s: &mut [u32; 256], i: &mut u8, j: &mut u8) -> u8 {
        *i = i.wrapping_add(1);
        let si = word(s, *i);
        // Every word is below 256, so the truncations keep their values.
        *j = j.wrapping_add(si as u8);
        let sj = word(s, *j);
        set(s, *i, sj);
        set(s, *j, si);
        word(s, si.wrapping_add(sj) as u8) as u8
    }

    /// XORs the keystream into `data` in place.
    pub(super) fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        for b in data {
            *b ^= Rc4::next(&mut self.s, &mut i, &mut j);
        }
        (self.i, self.j) = (i, j);
    }

    /// Writes `src` XOR the keystream to `dst` (the shorter's length of each): a copy and
    /// the cipher in one pass.
    pub(super) fn apply_to(&mut self, src: &[u8], dst: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        for (d, b) in dst.iter_mut().zip(src) {
            *d = b ^ Rc4::next(&mut self.s, &mut i, &mut j);
        }
        (self.i, self.j) = (i, j);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ::rc4::{KeyInit, StreamCipher};
    use proptest::prelude::*;

    use super::*;

    /// RFC 6229's first test vector: key 0x0102030405, keystream bytes 0-15 and 1024-1039.
    #[test]
    fn rfc_6229_key_of_40_bits() {
        let mut rc4 = Rc4::new(&[1, 2, 3, 4, 5]).unwrap();
        let mut ks = [0u8; 1040];
        rc4.apply(&mut ks);
        assert_eq!(
            ks[..16],
            [
                0xb2, 0x39, 0x63, 0x05, 0xf0, 0x3d, 0xc0, 0x27, 0xcc, 0xc3, 0x52, 0x4a, 0x0a, 0x11,
                0x18, 0xa8
            ]
        );
        assert_eq!(
            ks[1024..],
            [
                0x30, 0xab, 0xbc, 0xc7, 0xc2, 0x0b, 0x01, 0x60, 0x9f, 0x23, 0xee, 0x2d, 0x5f, 0x6b,
                0xb7, 0xdf
            ]
        );
    }

    #[test]
    fn keys_of_no_byte_or_too_many_are_refused() {
        assert!(Rc4::new(&[]).is_none());
        assert!(Rc4::new(&[7; MAX_KEY_LEN + 1]).is_none());
        assert!(Rc4::new(&[7; MAX_KEY_LEN]).is_some());
    }

    proptest! {
        /// Whatever the key and however the stream is cut, in place or from one buffer to
        /// another, the bytes equal RustCrypto's RC4 over the whole stream.
        #[test]
        fn equals_the_reference_cut_anyhow(
            key in proptest::collection::vec(any::<u8>(), 1..=MAX_KEY_LEN),
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            cuts in proptest::collection::vec((0usize..3000, any::<bool>()), 0..8),
        ) {
            let mut want = data.clone();
            ::rc4::Rc4::new_from_slice(&key).unwrap().apply_keystream(&mut want);
            let mut ours = Rc4::new(&key).unwrap();
            let mut got = Vec::new();
            let mut at = 0;
            let mut cuts = cuts;
            cuts.sort_unstable();
            cuts.push((data.len(), false));
            for (cut, in_place) in cuts {
                let end = cut.clamp(at, data.len());
                let Some(part) = data.get(at..end) else { continue };
                if in_place {
                    let mut p = part.to_vec();
                    ours.apply(&mut p);
                    got.extend_from_slice(&p);
                } else {
                    let mut p = vec![0u8; part.len()];
                    ours.apply_to(part, &mut p);
                    got.extend_from_slice(&p);
                }
                at = end;
            }
            prop_assert_eq!(got, want);
        }
    }
}
