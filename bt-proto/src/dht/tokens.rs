//! `announce_peer` tokens (BEP 5): what our `get_peers` answer gives a node, proving later
//! that it asked from the address it announces from. A token is a hash of the address and
//! a secret; the secret changes every [`TOKEN_ROTATION`], and the one before is still
//! accepted, so a token lives between one and two rotations.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::rng::Rng;

/// How often the secret changes (BEP 5: "every five minutes"); tokens are accepted for
/// twice that at most (BEP 5: "up to ten minutes").
pub const TOKEN_ROTATION: Duration = Duration::from_secs(5 * 60);

/// Bytes of a token we give: 8 bytes of SHA-1 cannot be guessed in the ten minutes one
/// lives, and keep our answers small.
pub const TOKEN_LEN: usize = 8;

/// The current and previous secrets.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

impl Tokens {
    /// Fresh secrets, drawn from `rng`.
    pub fn new(now: Instant, rng: &mut Rng) -> Self {
        let mut t = Tokens {
            current: [0; 16],
            previous: [0; 16],
            rotated_at: now,
        };
        rng.fill(&mut t.current);
        rng.fill(&mut t.previous);
        t
    }

    /// Rotates the secret if [`TOKEN_ROTATION`] has passed; returns when it next is due.
    pub fn rotate(&mut self, now: Instant, rng: &mut Rng) -> Instant {
        if now.saturating_duration_since(self.rotated_at) >= TOKEN_ROTATION {
            self.previous = self.current;
            rng.fill(&mut self.current);
            self.rotated_at = now;
        }
        self.rotated_at + TOKEN_ROTATION
    }

    /// The token for a node at `ip`.
    pub fn issue(&self, ip: IpAddr) -> Vec<u8> {
        token(&self.current, ip)
    }

    /// Whether `token` is one we gave `ip` with the current or the previous secret.
    pub fn check(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == token_of(&self.current, ip) || token == token_of(&self.previous, ip)
    }
}

fn token_of(secret: &[u8; 16], ip: IpAddr) -> [u8; TOKEN_LEN] {
    let mut input = Vec::with_capacity(32);
    input.extend_from_slice(secret);
    match ip.to_canonical() {
        IpAddr::V4(v4) => input.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => input.extend_from_slice(&v6.octets()),
    }
    let hash = crate::sha1(&input);
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(hash.get(..TOKEN_LEN).unwrap_or(&[0; TOKEN_LEN]));
    out
}

fn token(secret: &[u8; 16], ip: IpAddr) -> Vec<u8> {
    token_of(secret, ip).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_for_its_address_through_one_rotation_only() {
        let now = Instant::now();
        let mut rng = Rng::seed_from_u64(1);
        let mut t = Tokens::new(now, &mut rng);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        let tok = t.issue(ip);
        assert_eq!(tok.len(), TOKEN_LEN);
        assert!(t.check(ip, &tok));
        assert!(!t.check(other, &tok));
        assert!(!t.check(ip, b"nope"));
        assert_eq!(t.rotate(now, &mut rng), now + TOKEN_ROTATION, "not yet");
        t.rotate(now + TOKEN_ROTATION, &mut rng);
        assert!(t.check(ip, &tok), "the previous secret is still accepted");
        assert_ne!(t.issue(ip), tok);
        t.rotate(now + 2 * TOKEN_ROTATION, &mut rng);
        assert!(!t.check(ip, &tok), "ten minutes on, it is gone");
    }
}
