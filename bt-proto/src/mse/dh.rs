//! The Diffie-Hellman exchange of MSE: a 768-bit prime, generator 2, private keys of 160
//! random bits, public keys and the secret as 96 big-endian bytes.

use crypto_bigint::modular::ConstMontyForm;
use crypto_bigint::{U768, const_monty_params};

use super::MseError;
use crate::rng::Rng;

/// Bytes of a public key (and of the shared secret): 768 bits.
pub const PUBLIC_KEY_LEN: usize = 96;

/// Bits of a private key. The protocol asks for at least 128; more than 180 is believed to
/// add nothing but time (every client uses about 160).
const PRIVATE_KEY_BITS: u32 = 160;

/// The prime P of MSE, in hexadecimal.
const P_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

/// P as a number, to check keys against.
const P: U768 = U768::from_be_hex(P_HEX);

const_monty_params!(MsePrime, U768, P_HEX, "The prime P of MSE.");

type Residue = ConstMontyForm<MsePrime, { U768::LIMBS }>;

/// A private key: 160 random bits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PrivateKey(pub [u8; 20]);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// Our side of the exchange.
#[derive(Clone, Debug)]
pub struct KeyPair {
    private: PrivateKey,
    public: [u8; PUBLIC_KEY_LEN],
}

impl KeyPair {
    /// A key pair from a fresh random private key.
    pub fn random(rng: &mut Rng) -> Self {
        let mut private = [0u8; 20];
        rng.fill(&mut private);
        KeyPair::from_private(PrivateKey(private))
    }

    /// The key pair of `private` (the public key is 2^private mod P).
    pub fn from_private(private: PrivateKey) -> Self {
        let public = pow(&U768::from_u8(2), &private);
        KeyPair { private, public }
    }

    /// Our public key, as sent.
    pub fn public(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// The shared secret S with the holder of `theirs`: their key to our private power.
    /// Keys 0, 1, P - 1 and those not below P would make S guessable or are not keys.
    pub fn secret(&self, theirs: &[u8; PUBLIC_KEY_LEN]) -> Result<[u8; PUBLIC_KEY_LEN], MseError> {
        let y = U768::from_be_slice(theirs);
        let p_minus_1 = P.wrapping_sub(&U768::ONE);
        if y <= U768::ONE || y >= p_minus_1 {
            return Err(MseError::BadPublicKey);
        }
        Ok(pow(&y, &self.private))
    }
}

fn pow(base: &U768, exponent: &PrivateKey) -> [u8; PUBLIC_KEY_LEN] {
    let mut wide = [0u8; PUBLIC_KEY_LEN];
    let start = PUBLIC_KEY_LEN - exponent.0.len();
    if let Some(tail) = wide.get_mut(start..) {
        tail.copy_from_slice(&exponent.0);
    }
    let e = U768::from_be_slice(&wide);
    let r = Residue::new(base)
        .pow_bounded_exp(&e, PRIVATE_KEY_BITS)
        .retrieve();
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(r.to_be_bytes().as_ref());
    out
}
