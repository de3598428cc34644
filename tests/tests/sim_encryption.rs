//! Message stream encryption in the engine, on the simulator: swarms under each pair of
//! policies. Required on both sides moves every byte under RC4; enabled on both hides the
//! handshake and sends plaintext; an enabled side dialling a plaintext-only peer falls back
//! to plaintext; required against disabled fails cleanly, and is not retried in a loop.
// Test code: helpers that fail should fail the test on their line.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use bt_proto::engine::{AddTorrent, CloseReason, Config, ConnEncryption, STUCK_REDIAL_EVERY};
use bt_proto::extensions::UT_PEX_ID;
use bt_proto::extensions::ut_pex::{PexFlags, PexMessage};
use bt_proto::metainfo::Metainfo;
use bt_proto::mse::Encryption;
use bt_proto::sim::net::LinkConfig;
use bt_proto::sim::swarm::{NodeId, NodeOptions, Swarm, make_torrent};
use bt_proto::wire::Message;

const KIB: u64 = 1024;

fn disabled(c: &mut Config) {
    c.encryption = Encryption::Disabled;
}
fn enabled(c: &mut Config) {
    c.encryption = Encryption::Enabled;
}
fn required(c: &mut Config) {
    c.encryption = Encryption::Required;
}

/// A seed with policy `seed`, a leecher with `leech` that learns the seed from the
/// tracker and dials it; the swarm after `run`, and whether the leecher completed.
struct Run {
    swarm: Swarm,
    seed: NodeId,
    leecher: NodeId,
    seen: Vec<ConnEncryption>,
    meta: Metainfo,
    content: Vec<u8>,
    complete: bool,
}

fn run(seed_policy: fn(&mut Config), leech_policy: fn(&mut Config), run: Duration) -> Run {
    let (meta, content) = make_torrent(&[("e.bin", 512 * KIB)], 16 * 1024, 3).unwrap();
    let mut swarm = Swarm::new(41);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = swarm.add_node(NodeOptions::with_config(seed_policy));
    swarm.add_seed(seed, &meta, &content);
    swarm.run_for(Duration::from_secs(1));
    let leecher = swarm.add_node(NodeOptions::with_config(leech_policy));
    let t = swarm.add_torrent(leecher, &meta, AddTorrent::default());
    // How the connection looks while it carries blocks (two seeds part once done).
    let mut seen = Vec::new();
    let complete = swarm
        .run_until(
            |s| {
                let peers = s.session(leecher).unwrap().peers(t, s.now());
                if seen.is_empty() {
                    seen = peers
                        .iter()
                        .filter(|p| p.downloaded > 0)
                        .map(|p| p.encryption)
                        .collect();
                }
                s.is_complete(leecher, t)
            },
            run,
        )
        .is_ok();
    Run {
        swarm,
        seed,
        leecher,
        seen,
        meta,
        content,
        complete,
    }
}

#[test]
fn required_on_both_sides_moves_every_byte_under_rc4() {
    let r = run(required, required, Duration::from_secs(60));
    assert!(r.complete);
    assert_eq!(r.swarm.content(r.leecher, &r.meta), r.content);
    assert_eq!(r.seen, vec![ConnEncryption::Rc4]);
}

#[test]
fn enabled_on_both_sides_hides_the_handshake_and_sends_plaintext() {
    let r = run(enabled, enabled, Duration::from_secs(60));
    assert!(r.complete);
    assert_eq!(r.swarm.content(r.leecher, &r.meta), r.content);
    assert_eq!(r.seen, vec![ConnEncryption::Obfuscated]);
}

#[test]
fn a_seed_that_requires_it_gets_rc4_from_an_enabled_leecher() {
    let r = run(required, enabled, Duration::from_secs(60));
    assert!(r.complete);
    assert_eq!(r.seen, vec![ConnEncryption::Rc4]);
}

#[test]
fn an_enabled_leecher_falls_back_to_plaintext_for_a_peer_without_mse() {
    let r = run(disabled, enabled, Duration::from_secs(60));
    assert!(r.complete, "no fall back to plaintext");
    assert_eq!(r.swarm.content(r.leecher, &r.meta), r.content);
    assert_eq!(r.seen, vec![ConnEncryption::Plaintext]);
}

/// Required against disabled, both ways round: no transfer, and no retry loop. A required
/// leecher whose MSE handshake a plaintext-only seed drops never dials it again; a
/// plaintext-only leecher that a required seed drops cannot know why, and treats it as a
/// peer too full to take it (it took the connection, then closed it before its handshake):
/// tried again within a minute and, as the leecher has no other peer, called back with its
/// other peers at most every `STUCK_REDIAL_EVERY`.
#[test]
fn required_against_disabled_fails_cleanly_and_is_not_retried_in_a_loop() {
    let span = Duration::from_secs(600);
    // The first dial, the first call back (at the first choke round), the refusing peer's
    // own retry 20 s after its first refusal, then one call back per STUCK_REDIAL_EVERY
    // (sooner than the peer's own wait, which stays under a minute): about two a minute.
    let stuck = 3 + (span.as_secs() / STUCK_REDIAL_EVERY.as_secs()) as usize;
    for (seed, leech, most) in [
        (disabled as fn(&mut Config), required as fn(&mut Config), 1),
        (required, disabled, stuck),
    ] {
        let r = run(seed, leech, span);
        assert!(!r.complete);
        // Every attempt ends at the seed with a reason: a plaintext handshake refused, or
        // an MSE key that is no BitTorrent handshake.
        let at_seed = r.swarm.close_reasons(r.seed);
        assert!(
            (1..=most).contains(&at_seed.len()),
            "{} closes, at most {most}: {at_seed:?}",
            at_seed.len()
        );
        assert!(
            at_seed.iter().all(|c| matches!(
                c,
                CloseReason::EncryptionRequired | CloseReason::Protocol(_)
            )),
            "{at_seed:?}"
        );
    }
}

/// Peer exchange says which peers speak MSE (BEP 11's flag 0x01): a raw node that joins the
/// seed in plaintext hears of an encrypting leecher with the flag, and of a plaintext one
/// without.
#[test]
fn peer_exchange_flags_the_peers_that_speak_mse() {
    let (meta, content) = make_torrent(&[("p.bin", 4096 * KIB)], 16 * 1024, 9).unwrap();
    let mut swarm = Swarm::new(42);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    // The seed uploads slowly, so the leechers stay leechers while peer exchange runs.
    let seed = swarm.add_node(NodeOptions {
        upload: Some(64 * KIB),
        tweak: Some(enabled),
        ..Default::default()
    });
    swarm.add_seed(seed, &meta, &content);
    let mut leechers = Vec::new();
    for policy in [enabled as fn(&mut Config), disabled] {
        let l = swarm.add_node(NodeOptions::with_config(policy));
        swarm.add_torrent(l, &meta, AddTorrent::default());
        leechers.push(swarm.addr(l));
    }
    swarm.run_for(Duration::from_secs(2));
    let to = swarm.addr(seed);
    let (raw, mut peer) = bt_tests::sim::pex_peer(&mut swarm, &meta, to);
    let mut told = Vec::new();
    for _ in 0..200 {
        swarm.run_for(Duration::from_millis(100));
        swarm.raw_receive(raw, &mut peer);
        for m in peer.messages().unwrap() {
            if let Message::Extended { id, payload } = m
                && id == UT_PEX_ID
            {
                told.extend(PexMessage::decode(&payload).unwrap().added);
            }
        }
        if !told.is_empty() {
            break;
        }
    }
    let flags_of = |a| told.iter().find(|(x, _)| *x == a).map(|(_, f)| *f);
    let (encrypting, plain) = (leechers[0], leechers[1]);
    let f = flags_of(encrypting).unwrap_or_else(|| panic!("{told:?}"));
    assert_eq!(
        f.0 & PexFlags::ENCRYPTION.0,
        PexFlags::ENCRYPTION.0,
        "{told:?}"
    );
    let f = flags_of(plain).unwrap_or_else(|| panic!("{told:?}"));
    assert_eq!(f.0 & PexFlags::ENCRYPTION.0, 0, "{told:?}");
}

/// A torrent's own policy over the session's: in a session with encryption disabled, a
/// torrent that requires it takes only RC4 connections, while the session's other torrent
/// still talks plaintext. A plaintext-only leecher gets the second and never the first.
#[test]
fn a_torrent_may_require_encryption_in_a_session_that_disables_it() {
    let (strict, strict_content) =
        make_torrent(&[("strict.bin", 256 * KIB)], 16 * 1024, 10).unwrap();
    let (open, open_content) = make_torrent(&[("open.bin", 256 * KIB)], 16 * 1024, 11).unwrap();
    let mut swarm = Swarm::new(43);
    swarm.set_default_link(LinkConfig::new(Duration::from_millis(10)));
    let seed = swarm.add_node(NodeOptions::with_config(disabled));
    swarm.put_content(seed, &strict, &strict_content);
    swarm.add_torrent(
        seed,
        &strict,
        AddTorrent {
            have: Some(bt_proto::Bitfield::full(strict.piece_count())),
            encryption: Some(Encryption::Required),
            ..Default::default()
        },
    );
    swarm.add_seed(seed, &open, &open_content);
    swarm.run_for(Duration::from_secs(1));
    let (plain, rc4) = (
        swarm.add_node(NodeOptions::with_config(disabled)),
        swarm.add_node(NodeOptions::with_config(required)),
    );
    let plain_strict = swarm.add_torrent(plain, &strict, AddTorrent::default());
    let plain_open = swarm.add_torrent(plain, &open, AddTorrent::default());
    let rc4_strict = swarm.add_torrent(rc4, &strict, AddTorrent::default());
    swarm
        .run_until(
            |s| s.is_complete(plain, plain_open) && s.is_complete(rc4, rc4_strict),
            Duration::from_secs(120),
        )
        .unwrap();
    swarm.run_for(Duration::from_secs(60));
    assert!(!swarm.is_complete(plain, plain_strict));
    assert_eq!(swarm.content(rc4, &strict), strict_content);
    assert_eq!(swarm.content(plain, &open), open_content);
}
