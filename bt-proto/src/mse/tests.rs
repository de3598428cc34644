//! The MSE handshake against vectors computed independently (`testdata/vectors.py`, with
//! Python's integers, hashlib and a textbook RC4), the torrent lookup among many, every
//! truncation point, and each way a handshake fails.

use std::collections::HashMap;

use super::*;
use crate::rng::Rng;

const VECTORS: &str = include_str!("testdata/vectors.txt");

/// One case of the vectors: field name → bytes.
fn case(name: &str) -> HashMap<String, Vec<u8>> {
    VECTORS
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let (n, key, value) = (parts.next()?, parts.next()?, parts.next()?);
            (n == name).then(|| (key.to_string(), hex(value)))
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn private(bytes: &[u8]) -> KeyPair {
    KeyPair::from_private(PrivateKey(bytes.try_into().unwrap()))
}

fn info_hash(v: &HashMap<String, Vec<u8>>) -> InfoHash {
    InfoHash(v["info_hash"].as_slice().try_into().unwrap())
}

fn methods(bytes: &[u8]) -> Methods {
    Methods(u32::from_be_bytes(bytes.try_into().unwrap()))
}

#[test]
fn keys_and_secret_match_the_vectors() {
    for name in ["rc4", "plain"] {
        let v = case(name);
        let (a, b) = (private(&v["xa"]), private(&v["xb"]));
        assert_eq!(a.public().as_slice(), v["ya"], "{name}");
        assert_eq!(b.public().as_slice(), v["yb"], "{name}");
        let yb: [u8; 96] = v["yb"].as_slice().try_into().unwrap();
        let ya: [u8; 96] = v["ya"].as_slice().try_into().unwrap();
        assert_eq!(a.secret(&yb).unwrap().as_slice(), v["secret"]);
        assert_eq!(b.secret(&ya).unwrap().as_slice(), v["secret"]);
    }
}

#[test]
fn the_initiator_sends_and_reads_what_the_vectors_say() {
    for name in ["rc4", "plain"] {
        let v = case(name);
        let mut rng = Rng::seed_from_u64(1);
        let mut a = Initiator::with_keys(
            &mut rng,
            private(&v["xa"]),
            info_hash(&v),
            methods(&v["provide"]),
            v["ia"].clone(),
        )
        .unwrap();
        let first = a.take_output();
        assert_eq!(first[..96], v["ya"], "{name}");
        assert!(first.len() <= 96 + MAX_PAD_LEN);
        assert!(a.receive(&v["yb"]).unwrap().is_none());
        assert_eq!(a.take_output(), v["step3"], "{name}");
        let mut answer = v["step4"].clone();
        answer.extend(&v["wire_b"]);
        let mut done = a.receive(&answer).unwrap().unwrap();
        assert_eq!(done.method, methods(&v["select"]));
        assert_eq!(done.rest, v["payload_b"], "{name}");
        let mut out = v["payload_a"].clone();
        if let Some(c) = done.send.as_mut() {
            c.apply(&mut out);
        }
        assert_eq!(out, v["wire_a"], "{name}");
    }
}

#[test]
fn the_responder_sends_and_reads_what_the_vectors_say() {
    for name in ["rc4", "plain"] {
        let v = case(name);
        let ih = info_hash(&v);
        let mut rng = Rng::seed_from_u64(2);
        // It accepts exactly what the vector selected.
        let mut b = Responder::with_keys(&mut rng, private(&v["xb"]));
        let mut stream = v["ya"].clone();
        stream.extend(&v["pad_a"]);
        stream.extend(&v["step3"]);
        stream.extend(&v["wire_a"]);
        let find = |k: &[u8; 20]| (*k == torrent_key(&ih)).then_some((ih, methods(&v["select"])));
        let mut done = b.receive(&stream, find).unwrap().unwrap();
        let out = b.take_output();
        assert_eq!(out[..96], v["yb"], "{name}");
        assert!(out.ends_with(&v["step4"]), "{name}");
        assert_eq!(done.info_hash, ih);
        assert_eq!(done.initial_payload, v["ia"], "{name}");
        assert_eq!(done.rest, v["payload_a"], "{name}");
        let mut reply = v["payload_b"].clone();
        if let Some(c) = done.send.as_mut() {
            c.apply(&mut reply);
        }
        assert_eq!(reply, v["wire_b"], "{name}");
    }
}

/// A's whole stream to B (key, padding, hashes, encrypted header and payload) and what B
/// answers, from a real exchange with random padding.
fn exchange(seed: u64, offer: Methods, accept: Methods) -> (Vec<u8>, Vec<u8>, InfoHash) {
    let mut rng = Rng::seed_from_u64(seed);
    let ih = InfoHash([seed as u8; 20]);
    let mut a = Initiator::new(&mut rng, ih, offer, b"IA bytes".to_vec()).unwrap();
    let mut b = Responder::new(&mut rng);
    let find = |k: &[u8; 20]| (*k == torrent_key(&ih)).then_some((ih, accept));
    let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
    let (mut a_done, mut b_done) = (false, false);
    for _ in 0..4 {
        let out = a.take_output();
        to_b.extend(&out);
        if !b_done {
            b_done = b.receive(&out, find).unwrap().is_some();
        }
        let out = b.take_output();
        to_a.extend(&out);
        if !a_done {
            a_done = a.receive(&out).unwrap().is_some();
        }
    }
    assert!(a_done && b_done);
    (to_b, to_a, ih)
}

/// The responder of [`exchange`]'s run with `seed`, made again: the same keys and padding,
/// so that A's recorded stream fits it.
fn replayed_responder(seed: u64, offer: Methods) -> Responder {
    let mut rng = Rng::seed_from_u64(seed);
    let ih = InfoHash([seed as u8; 20]);
    let _a = Initiator::new(&mut rng, ih, offer, b"IA bytes".to_vec()).unwrap();
    Responder::new(&mut rng)
}

#[test]
fn every_truncation_point_waits_and_the_rest_completes() {
    let (to_b, _, ih) = exchange(3, Methods::BOTH, Methods::RC4);
    let find = |k: &[u8; 20]| (*k == torrent_key(&ih)).then_some((ih, Methods::RC4));
    for cut in 0..to_b.len() {
        let mut b = replayed_responder(3, Methods::BOTH);
        assert!(
            b.receive(&to_b[..cut], find).unwrap().is_none(),
            "cut {cut}"
        );
        let done = b.receive(&to_b[cut..], find).unwrap().unwrap();
        assert_eq!(done.initial_payload, b"IA bytes", "cut {cut}");
    }
}

#[test]
fn the_initiator_waits_at_every_truncation_point_of_the_answer() {
    // B's answer for A's key: replayed to a copy of A made with the same seed.
    let (_, to_a, _) = exchange(4, Methods::BOTH, Methods::BOTH);
    for cut in 0..to_a.len() {
        let mut rng = Rng::seed_from_u64(4);
        let ih = InfoHash([4; 20]);
        let mut a = Initiator::new(&mut rng, ih, Methods::BOTH, b"IA bytes".to_vec()).unwrap();
        assert!(a.receive(&to_a[..cut]).unwrap().is_none(), "cut {cut}");
        let done = a.receive(&to_a[cut..]).unwrap().unwrap();
        assert_eq!(done.method, Methods::PLAINTEXT, "cut {cut}");
    }
}

#[test]
fn the_torrent_is_found_among_ten_thousand_and_an_unknown_one_refused() {
    let keys: HashMap<[u8; 20], InfoHash> = (0..10_000u32)
        .map(|i| {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            (torrent_key(&InfoHash(h)), InfoHash(h))
        })
        .collect();
    let mut want = [0u8; 20];
    want[..4].copy_from_slice(&7777u32.to_be_bytes());
    let mut rng = Rng::seed_from_u64(5);
    let mut a = Initiator::new(&mut rng, InfoHash(want), Methods::RC4, Vec::new()).unwrap();
    let mut b = Responder::new(&mut rng);
    let find = |k: &[u8; 20]| keys.get(k).map(|h| (*h, Methods::BOTH));
    b.receive(&a.take_output(), find).unwrap();
    a.receive(&b.take_output()).unwrap();
    let done = b.receive(&a.take_output(), find).unwrap().unwrap();
    assert_eq!(done.info_hash, InfoHash(want));
    assert_eq!(done.method, Methods::RC4, "RC4 was all A offered");

    let mut a = Initiator::new(&mut rng, InfoHash([0xee; 20]), Methods::RC4, Vec::new()).unwrap();
    let mut b = Responder::new(&mut rng);
    b.receive(&a.take_output(), find).unwrap();
    a.receive(&b.take_output()).unwrap();
    assert_eq!(
        b.receive(&a.take_output(), find).unwrap_err(),
        MseError::UnknownTorrent
    );
}

/// Runs A against B (whose torrent `ih` accepts `accept`) until one fails; that error.
fn failure(mut a: Initiator, mut b: Responder, ih: InfoHash, accept: Methods) -> MseError {
    let find = |k: &[u8; 20]| (*k == torrent_key(&ih)).then_some((ih, accept));
    for _ in 0..4 {
        if let Err(e) = b.receive(&a.take_output(), find) {
            return e;
        }
        if let Err(e) = a.receive(&b.take_output()) {
            return e;
        }
    }
    panic!("no failure");
}

#[test]
fn policies_that_share_no_method_fail_cleanly() {
    let mut rng = Rng::seed_from_u64(6);
    let ih = InfoHash([6; 20]);
    let a = Initiator::new(&mut rng, ih, Methods::PLAINTEXT, Vec::new()).unwrap();
    let b = Responder::new(&mut rng);
    assert_eq!(
        failure(a, b, ih, Encryption::Required.accept()),
        MseError::NoCommonMethod {
            offered: 1,
            accepted: 2
        }
    );
}

#[test]
fn weak_public_keys_are_refused() {
    let kp = KeyPair::from_private(PrivateKey([9; 20]));
    let mut p_minus_1 = [0xff; 96];
    let p = hex(concat!(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A",
        "08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9",
        "A63A36210000000000090563"
    ));
    p_minus_1.copy_from_slice(&p);
    p_minus_1[95] -= 1;
    let mut one = [0u8; 96];
    one[95] = 1;
    for weak in [[0u8; 96], one, p_minus_1, p.try_into().unwrap(), [0xff; 96]] {
        assert_eq!(kp.secret(&weak), Err(MseError::BadPublicKey));
    }
}

#[test]
fn malformed_handshakes_fail_with_their_reason() {
    let ih = InfoHash([8; 20]);
    let find = |k: &[u8; 20]| (*k == torrent_key(&ih)).then_some((ih, Methods::BOTH));
    // Padding beyond 512 bytes before the synchronisation hash.
    let mut rng = Rng::seed_from_u64(8);
    let mut b = Responder::new(&mut rng);
    let kp = KeyPair::random(&mut rng);
    let mut stream = kp.public().to_vec();
    stream.extend(vec![0x5a; MAX_PAD_LEN + 20]);
    assert_eq!(b.receive(&stream, find).unwrap_err(), MseError::NoSync);

    // A flipped bit in the encrypted header: the VC does not decrypt to zeros.
    let (mut to_b, _, ih2) = exchange(9, Methods::BOTH, Methods::BOTH);
    let vc_at = to_b.len() - (8 + 4 + 2 + 2 + b"IA bytes".len());
    to_b[vc_at] ^= 1;
    let mut b = replayed_responder(9, Methods::BOTH);
    let find2 = |k: &[u8; 20]| (*k == torrent_key(&ih2)).then_some((ih2, Methods::BOTH));
    assert_eq!(b.receive(&to_b, find2).unwrap_err(), MseError::BadVc);

    // An initial payload over the limit is refused before it is sent.
    let mut rng = Rng::seed_from_u64(10);
    let big = vec![0; MAX_INITIAL_PAYLOAD + 1];
    assert_eq!(
        Initiator::new(&mut rng, ih, Methods::BOTH, big).unwrap_err(),
        MseError::PayloadTooLong(MAX_INITIAL_PAYLOAD + 1)
    );
}

#[test]
fn a_responder_selecting_what_was_not_offered_is_refused() {
    let v = case("rc4");
    let mut rng = Rng::seed_from_u64(11);
    // A offers plaintext only; B's answer selects RC4.
    let mut a = Initiator::with_keys(
        &mut rng,
        private(&v["xa"]),
        info_hash(&v),
        Methods::PLAINTEXT,
        v["ia"].clone(),
    )
    .unwrap();
    a.take_output();
    a.receive(&v["yb"]).unwrap();
    assert_eq!(a.receive(&v["step4"]).unwrap_err(), MseError::BadSelect(2));
}

#[test]
fn plaintext_handshakes_are_told_from_mse_keys() {
    assert_eq!(is_plaintext(b"\x13BitTorrent protocol\0\0"), Some(true));
    assert_eq!(is_plaintext(b"\x13BitTorr"), None);
    assert_eq!(is_plaintext(b""), None);
    assert_eq!(is_plaintext(b"\x13BitTorrX"), Some(false));
    assert_eq!(is_plaintext(&[0x8c; 96]), Some(false));
}

#[test]
fn rc4_streams_carry_bytes_both_ways_after_the_handshake() {
    let mut rng = Rng::seed_from_u64(12);
    let ih = InfoHash([12; 20]);
    let mut a = Initiator::new(&mut rng, ih, Methods::RC4, Vec::new()).unwrap();
    let mut b = Responder::new(&mut rng);
    let find = |k: &[u8; 20]| (*k == torrent_key(&ih)).then_some((ih, Methods::BOTH));
    b.receive(&a.take_output(), find).unwrap();
    a.receive(&b.take_output()).unwrap();
    let mut bd = b.receive(&a.take_output(), find).unwrap().unwrap();
    let mut ad = a.receive(&b.take_output()).unwrap().unwrap();
    for round in 0..3u8 {
        let msg = vec![round; 1000 + usize::from(round)];
        let mut wire = msg.clone();
        ad.send.as_mut().unwrap().apply(&mut wire);
        assert_ne!(wire, msg);
        bd.receive.as_mut().unwrap().apply(&mut wire);
        assert_eq!(wire, msg);
        let mut back = msg.clone();
        bd.send.as_mut().unwrap().apply(&mut back);
        ad.receive.as_mut().unwrap().apply(&mut back);
        assert_eq!(back, msg);
    }
}
