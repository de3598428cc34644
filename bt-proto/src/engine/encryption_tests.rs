//! The engine's encryption stage against a real MSE initiator driven byte by byte.

use std::time::Instant;

use super::*;
use crate::mse::{Encryption, Initiator, Methods};
use crate::rng::Rng;
use crate::wire::{Handshake, Reserved};

/// Runs an MSE initiator for `mse_torrent` against `s` on a fresh incoming connection, its
/// initial payload a BitTorrent handshake for `named`; the close reason, if the engine
/// closed the connection.
fn incoming_mse(s: &mut Session, mse_torrent: InfoHash, named: InfoHash) -> Option<CloseReason> {
    let now = Instant::now();
    let conn = s.accept(now, "10.0.0.9:5000".parse().unwrap());
    let hs = Handshake {
        reserved: Reserved::NONE,
        info_hash: named,
        peer_id: crate::PeerId([9; 20]),
    };
    let mut rng = Rng::seed_from_u64(5);
    let mut a = Initiator::new(&mut rng, mse_torrent, Methods::BOTH, hs.encode().to_vec()).unwrap();
    for _ in 0..3 {
        let data = a.take_output();
        s.handle(
            now,
            Input::Received {
                conn,
                data: data.into(),
            },
        );
        while let Some(o) = s.poll_output() {
            match o {
                Output::Send { conn: c, bufs } if c == conn => {
                    for b in bufs {
                        let _ = a.receive(&b);
                    }
                }
                Output::Close { conn: c, reason } if c == conn => return Some(reason),
                _ => {}
            }
        }
    }
    None
}

/// A session (encryption enabled) seeding torrents `a` and `b`.
fn two_torrents() -> (Session, InfoHash, InfoHash) {
    let mut config = Config::new(crate::PeerId([1; 20]), 6881, 1);
    config.encryption = Encryption::Enabled;
    let (mut s, a) = super::tests::seed_session_with(config, 7);
    let b = super::tests::add_seed_torrent(&mut s, 8);
    (s, a, b)
}

#[test]
fn an_mse_handshake_for_a_torrent_carries_a_handshake_for_that_torrent() {
    let (mut s, a, b) = two_torrents();
    assert_eq!(
        incoming_mse(&mut s, a, a),
        None,
        "a matching handshake is taken"
    );
    // The encryption was agreed for one torrent, the handshake names another (one whose
    // policy might differ): refused.
    assert_eq!(
        incoming_mse(&mut s, a, b),
        Some(CloseReason::UnknownTorrent)
    );
}

#[test]
fn a_torrent_that_disables_encryption_refuses_mse_for_it() {
    let (mut s, a, b) = two_torrents();
    s.encryption_of
        .insert(s.torrent_by_info_hash(&b).unwrap(), Encryption::Disabled);
    assert!(matches!(
        incoming_mse(&mut s, b, b),
        Some(CloseReason::Encryption(
            crate::mse::MseError::NoCommonMethod { .. }
        ))
    ));
    assert_eq!(incoming_mse(&mut s, a, a), None);
}
