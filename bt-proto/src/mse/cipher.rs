//! RC4 as MSE uses it: keyed with `HASH('keyA' | 'keyB', S, SKEY)`, the first 1024 bytes
//! of keystream thrown away (they leak the key).

use sha1::{Digest, Sha1};

use super::PUBLIC_KEY_LEN;
use super::rc4::Rc4;
use crate::InfoHash;

/// Keystream bytes discarded after keying.
const DISCARD: usize = 1024;

/// One direction's RC4 stream.
pub struct Cipher(Rc4);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(rc4)")
    }
}

impl Cipher {
    /// The stream the initiator (A) encrypts with, and the responder decrypts with.
    pub fn a_to_b(secret: &[u8; PUBLIC_KEY_LEN], skey: &InfoHash) -> Cipher {
        Cipher::keyed(b"keyA", secret, skey)
    }

    /// The stream the responder (B) encrypts with, and the initiator decrypts with.
    pub fn b_to_a(secret: &[u8; PUBLIC_KEY_LEN], skey: &InfoHash) -> Cipher {
        Cipher::keyed(b"keyB", secret, skey)
    }

    fn keyed(label: &[u8], secret: &[u8; PUBLIC_KEY_LEN], skey: &InfoHash) -> Cipher {
        let key: [u8; 20] = Sha1::new()
            .chain_update(label)
            .chain_update(secret)
            .chain_update(skey.0)
            .finalize()
            .into();
        let rc4 = match Rc4::new(&key) {
            Some(rc4) => rc4,
            // RC4 takes keys of 1 to 256 bytes: a 20-byte one, always.
            None => unreachable!("RC4 refused a 20-byte key"),
        };
        let mut c = Cipher(rc4);
        c.apply(&mut [0u8; DISCARD]);
        c
    }

    /// Encrypts or decrypts `data` in place (RC4 is its own inverse).
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply(data);
    }

    /// Writes `src` encrypted (or decrypted) to `dst`, as many bytes as the shorter holds:
    /// where the bytes must be copied anyway, the copy and the cipher in one pass.
    pub fn apply_to(&mut self, src: &[u8], dst: &mut [u8]) {
        self.0.apply_to(src, dst);
    }
}

/// `HASH(label, parts...)`: SHA-1 of the concatenation.
pub(super) fn hash(label: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new().chain_update(label);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}
