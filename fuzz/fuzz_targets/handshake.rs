//! The peer handshake: nothing panics; `Handshake::decode`, `HandshakePrefix::decode` and the
//! stream decoder's view of the same bytes agree; accepted handshakes re-encode to the bytes
//! they came from.
#![no_main]

use bt_proto::wire::{
    Decoder, HANDSHAKE_LEN, HANDSHAKE_PREFIX_LEN, Handshake, HandshakePrefix, Progress,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = Handshake::decode(data);
    let prefix = HandshakePrefix::decode(data);
    match (&full, &prefix) {
        (Ok(Progress::Done(h)), Ok(Progress::Done(p))) => {
            assert_eq!(h.prefix(), *p);
            assert_eq!(h.encode().as_slice(), &data[..HANDSHAKE_LEN]);
            assert_eq!(Handshake::decode(&h.encode()), Ok(Progress::Done(*h)));
        }
        (Ok(Progress::NeedMore(n)), Ok(prefix)) => {
            assert!(*n > 0);
            assert_eq!(data.len() + n, HANDSHAKE_LEN);
            match prefix {
                Progress::Done(p) => {
                    assert!(data.len() >= HANDSHAKE_PREFIX_LEN);
                    let mut bytes = data.to_vec();
                    bytes.resize(HANDSHAKE_LEN, 0);
                    let Ok(Progress::Done(h)) = Handshake::decode(&bytes) else {
                        panic!("a valid prefix padded to full length is not a handshake");
                    };
                    assert_eq!(h.prefix(), *p);
                }
                Progress::NeedMore(m) => {
                    assert!(*m > 0);
                    assert_eq!(data.len() + m, HANDSHAKE_PREFIX_LEN);
                }
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "handshake and prefix report different errors"),
        other => panic!("handshake and prefix decoders disagree: {other:?}"),
    }

    let mut decoder = Decoder::new(None);
    decoder.feed(data);
    assert_eq!(decoder.peek_handshake_prefix(), prefix);
    assert_eq!(decoder.buffered(), data.len());
    assert_eq!(decoder.decode_handshake(), full);
    let used = if matches!(full, Ok(Progress::Done(_))) {
        HANDSHAKE_LEN
    } else {
        0
    };
    assert_eq!(decoder.buffered(), data.len() - used);

    // Byte by byte, the answer only moves from NeedMore to the final one.
    for end in 0..data.len().min(HANDSHAKE_LEN) {
        match Handshake::decode(&data[..end]) {
            Ok(Progress::NeedMore(n)) => assert_eq!(end + n, HANDSHAKE_LEN),
            Ok(Progress::Done(_)) => panic!("done before {HANDSHAKE_LEN} bytes"),
            Err(e) => assert_eq!(full, Err(e), "an early error that the whole input lacks"),
        }
    }
});
