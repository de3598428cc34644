//! Message stream encryption: a responder and an initiator fed fuzz-chosen bytes in
//! fuzz-chosen pieces, and a real exchange whose streams the fuzzer cuts, flips and pads.
//! Nothing panics; a handshake either waits, fails with a reason, or completes with what
//! was sent; what a side holds stays within the handshake's limits.
#![no_main]

use bt_proto::InfoHash;
use bt_proto::mse::{Initiator, MAX_INITIAL_PAYLOAD, MAX_PAD_LEN, Methods, Responder, torrent_key};
use bt_proto::rng::Rng;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const TORRENT: InfoHash = InfoHash([0x42; 20]);

/// The one torrent, accepting `accept`.
fn finder(accept: Methods) -> impl Fn(&[u8; 20]) -> Option<(InfoHash, Methods)> {
    move |k| (*k == torrent_key(&TORRENT)).then_some((TORRENT, accept))
}

fn methods(u: &mut Unstructured) -> Result<Methods> {
    Ok(Methods(u.int_in_range(0..=3)?))
}

/// Arbitrary bytes, in arbitrary pieces, to both roles.
fn raw(u: &mut Unstructured) -> Result<()> {
    let mut rng = Rng::seed_from_u64(u.arbitrary()?);
    let offer = methods(u)?;
    let mut a = Initiator::new(&mut rng, TORRENT, offer, b"ia".to_vec())
        .map_err(|_| libfuzzer_sys::arbitrary::Error::IncorrectFormat)?;
    let mut b = Responder::new(&mut rng);
    let find = finder(methods(u)?);
    while !u.is_empty() {
        let n = u.int_in_range(0..=700)?;
        let piece = u.bytes(n.min(u.len()))?;
        if let Ok(Some(done)) = b.receive(piece, &find) {
            assert_eq!(done.info_hash, TORRENT);
            assert!(done.initial_payload.len() <= MAX_INITIAL_PAYLOAD);
        }
        if let Ok(Some(done)) = a.receive(piece) {
            assert!(offer.contains(done.method));
        }
        // What a side sends answers a key at most: its key, padding and a header.
        assert!(b.take_output().len() <= 96 + MAX_PAD_LEN + 14);
        assert!(a.take_output().len() <= 96 + MAX_PAD_LEN + 60 + MAX_INITIAL_PAYLOAD);
    }
    Ok(())
}

/// A real exchange; the fuzzer may flip one byte of A's stream and split its delivery.
fn exchange(u: &mut Unstructured) -> Result<()> {
    let mut rng = Rng::seed_from_u64(u.arbitrary()?);
    let len = u.int_in_range(0..=100)?;
    let ia = u.bytes(len)?.to_vec();
    let offer = methods(u)?;
    let accept = methods(u)?;
    let Ok(mut a) = Initiator::new(&mut rng, TORRENT, offer, ia.clone()) else {
        return Ok(());
    };
    let mut b = Responder::new(&mut rng);
    let find = finder(accept);
    let flip: Option<(usize, u8)> = u.arbitrary()?;
    let mut sent = 0usize;
    let (mut b_done, mut failed) = (None, false);
    for _ in 0..4 {
        let mut out = a.take_output();
        if let Some((at, x)) = flip
            && let Some(byte) = at.checked_sub(sent).and_then(|i| out.get_mut(i))
        {
            *byte ^= x;
        }
        sent += out.len();
        let cut = u.int_in_range(0..=out.len())?;
        for piece in [&out[..cut], &out[cut..]] {
            match b.receive(piece, &find) {
                Ok(Some(d)) => b_done = Some(d),
                Ok(None) => {}
                Err(_) => failed = true,
            }
        }
        if failed {
            return Ok(());
        }
        if a.receive(&b.take_output()).is_err() {
            return Ok(());
        }
    }
    let untouched = flip.is_none_or(|(at, x)| x == 0 || at >= sent);
    let common = offer.and(accept).0 != 0;
    if untouched && common {
        let done = b_done.expect("an honest exchange with a common method completes");
        assert_eq!(done.initial_payload, ia);
        assert!(offer.and(accept).contains(done.method));
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        raw(&mut u)
    } else {
        exchange(&mut u)
    };
});
