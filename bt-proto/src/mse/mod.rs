//! Message stream encryption (MSE, also called protocol encryption): the handshake that
//! libtorrent, Transmission, aria2, qBittorrent and rqbit speak before the BitTorrent
//! handshake, then RC4 or plaintext. A sans-IO stage between a connection's bytes and the
//! wire decoder: bytes in, bytes out, randomness given by the caller.
//!
//! The exchange, A dialling B (`S` the Diffie-Hellman secret, `SKEY` the info-hash):
//!
//! ```text
//! A -> B  Ya, PadA
//! B -> A  Yb, PadB
//! A -> B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! B -> A  ENCRYPT(VC, crypto_select, len(PadD), PadD), then the payload stream
//! ```
//!
//! [`Initiator`] is A, [`Responder`] is B; both end in an [`Established`] stream. What is
//! encrypted is obfuscated, not secured: nobody is authenticated, and RC4 is broken as a
//! cipher. It keeps the protocol from being recognised on the wire, which is what peers
//! and networks that require it want.
//!
//! ```
//! use bt_proto::InfoHash;
//! use bt_proto::mse::{Initiator, Methods, Responder, torrent_key};
//! use bt_proto::rng::Rng;
//!
//! let mut rng = Rng::seed_from_u64(1);
//! let info_hash = InfoHash([7; 20]);
//! let mut a = Initiator::new(&mut rng, info_hash, Methods::BOTH, b"hello".to_vec()).unwrap();
//! let mut b = Responder::new(&mut rng);
//! // The session's torrents by the key an initiator names them with, and what each
//! // accepts.
//! let ours = |key: &[u8; 20]| (*key == torrent_key(&info_hash)).then_some((info_hash, Methods::RC4));
//! let (mut a_done, mut b_done) = (None, None);
//! while a_done.is_none() || b_done.is_none() {
//!     let to_b = a.take_output();
//!     if b_done.is_none() {
//!         b_done = b.receive(&to_b, ours).unwrap();
//!     }
//!     let to_a = b.take_output();
//!     if a_done.is_none() {
//!         a_done = a.receive(&to_a).unwrap();
//!     }
//! }
//! let b_done = b_done.unwrap();
//! assert_eq!(b_done.info_hash, info_hash);
//! assert_eq!(b_done.initial_payload, b"hello");
//! assert_eq!(a_done.unwrap().method, Methods::RC4);
//! ```

mod cipher;
mod dh;
mod initiator;
mod rc4;
mod responder;
mod sync;
#[cfg(test)]
mod tests;

use crate::InfoHash;

pub use cipher::Cipher;
pub use dh::{KeyPair, PUBLIC_KEY_LEN, PrivateKey};
pub use initiator::Initiator;
pub use responder::{Responder, torrent_key};

/// Longest padding either side may send (PadA to PadD), as the protocol fixes it.
pub const MAX_PAD_LEN: usize = 512;

/// Longest initial payload (IA) a responder takes: the BitTorrent handshake (68 bytes)
/// and room for a first message or two. The field allows 65,535; nobody sends more than
/// a handshake and an extension handshake, and we hold it in memory before the torrent
/// is known.
pub const MAX_INITIAL_PAYLOAD: usize = 4096;

/// The verification constant: eight zero bytes, encrypted, mark where the encrypted part
/// begins.
const VC: [u8; 8] = [0; 8];

/// The crypto methods of `crypto_provide` and `crypto_select`: a bit field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Methods(pub u32);

impl Methods {
    /// The payload goes in plaintext after the obfuscated handshake.
    pub const PLAINTEXT: Methods = Methods(0x01);
    /// The payload is RC4-encrypted.
    pub const RC4: Methods = Methods(0x02);
    /// Either.
    pub const BOTH: Methods = Methods(0x03);

    /// Whether every method of `other` is in `self`.
    pub fn contains(self, other: Methods) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// The methods in both.
    pub fn and(self, other: Methods) -> Methods {
        Methods(self.0 & other.0)
    }
}

/// How a connection treats encryption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Plaintext only: incoming MSE handshakes are refused, outgoing connections never
    /// try one.
    Disabled,
    /// Both (libtorrent's default): incoming connections may be either; outgoing ones try
    /// MSE first, offering plaintext or RC4, and fall back to plaintext when the peer does
    /// not answer it. After an MSE handshake a responder picks plaintext when both are
    /// offered: the handshake is hidden either way, and RC4 costs CPU on every byte.
    #[default]
    Enabled,
    /// MSE with RC4 only: plaintext connections are refused, and so is plaintext after an
    /// MSE handshake. A payload in plaintext would let anyone reading the wire see the
    /// BitTorrent messages, which is what a user who requires encryption wants to avoid.
    Required,
}

impl Encryption {
    /// What an outgoing MSE handshake offers (`crypto_provide`).
    pub fn offer(self) -> Methods {
        match self {
            Encryption::Required => Methods::RC4,
            _ => Methods::BOTH,
        }
    }

    /// What an incoming MSE handshake may select (`crypto_select`), best first.
    pub fn accept(self) -> Methods {
        match self {
            Encryption::Required => Methods::RC4,
            Encryption::Enabled => Methods::BOTH,
            Encryption::Disabled => Methods(0),
        }
    }

    /// Whether a connection may go in plaintext from its first byte.
    pub fn allows_plaintext_handshake(self) -> bool {
        self != Encryption::Required
    }
}

/// Why an MSE handshake failed. The connection is closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MseError {
    /// The other side's public key is 0, 1, P - 1 or not below P: a weak or invalid key.
    #[error("the peer's Diffie-Hellman key is invalid")]
    BadPublicKey,
    /// The synchronisation point (`HASH('req1', S)` or the encrypted VC) did not come
    /// within the most padding allowed.
    #[error("no synchronisation point within {MAX_PAD_LEN} bytes of padding")]
    NoSync,
    /// The torrent the initiator asked for is not one of ours.
    #[error("the peer asked for a torrent we do not have")]
    UnknownTorrent,
    /// The verification constant did not decrypt to zeros.
    #[error("the verification constant is wrong")]
    BadVc,
    /// A padding length over [`MAX_PAD_LEN`].
    #[error("padding of {0} bytes is over the limit of {MAX_PAD_LEN}")]
    PadTooLong(usize),
    /// An initial payload over [`MAX_INITIAL_PAYLOAD`].
    #[error("an initial payload of {0} bytes is over the limit of {MAX_INITIAL_PAYLOAD}")]
    PayloadTooLong(usize),
    /// The initiator offered no method we accept.
    #[error("no crypto method in common: offered {offered:#x}, accepted {accepted:#x}")]
    NoCommonMethod {
        /// `crypto_provide`.
        offered: u32,
        /// What our policy accepts.
        accepted: u32,
    },
    /// The responder selected a method we did not offer, or more than one.
    #[error("the peer selected {0:#x}, which we did not offer")]
    BadSelect(u32),
}

/// A finished handshake: the torrent, the method, and the ciphers for the rest of the
/// connection (both `None` for plaintext).
#[derive(Debug)]
pub struct Established {
    /// The torrent the connection is for (the responder learnt it from the handshake).
    pub info_hash: InfoHash,
    /// [`Methods::RC4`] or [`Methods::PLAINTEXT`].
    pub method: Methods,
    /// Encrypts what we send from now on.
    pub send: Option<Cipher>,
    /// Decrypts what we receive from now on.
    pub receive: Option<Cipher>,
    /// The initiator's initial payload (the responder's side; empty for the initiator),
    /// decrypted: the start of the BitTorrent stream.
    pub initial_payload: Vec<u8>,
    /// Bytes that came after the handshake in the same reads, already decrypted: they
    /// follow the initial payload in the stream.
    pub rest: Vec<u8>,
}

/// Whether the first bytes of an incoming connection are a plaintext BitTorrent handshake
/// (`\x13BitTorrent protocol`) rather than an MSE public key: `None` while fewer bytes
/// than the protocol string have come and they still match it.
pub fn is_plaintext(first: &[u8]) -> Option<bool> {
    const PREFIX: &[u8; 20] = b"\x13BitTorrent protocol";
    let n = first.len().min(PREFIX.len());
    if first.get(..n) != PREFIX.get(..n) {
        return Some(false);
    }
    (n == PREFIX.len()).then_some(true)
}
