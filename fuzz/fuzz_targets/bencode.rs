//! Bencode decoding: nothing panics, and the three decoders agree with each other.
//!
//! - what `decode_strict` accepts re-encodes to exactly the input;
//! - what `decode` accepts and `decode_strict` rejects is rejected for unsorted keys only,
//!   and `check_canonical` says the same;
//! - `decode_prefix` reads one value whose bytes `decode` accepts on their own.
#![no_main]

use bt_proto::bencode::{self, DecodeErrorKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lenient = bencode::decode(data);
    let strict = bencode::decode_strict(data);
    match (&lenient, &strict) {
        (Ok(v), Ok(s)) => {
            assert_eq!(v, s, "strict and lenient decoders disagree");
            assert_eq!(
                s.to_owned().encode(),
                data,
                "strict value does not re-encode to input"
            );
            assert_eq!(v.raw(), data);
            assert_eq!(v.offset(), 0);
            assert_eq!(v.check_canonical(), Ok(()));
        }
        (Ok(v), Err(e)) => {
            assert_eq!(
                e.kind,
                DecodeErrorKind::UnsortedKey,
                "strict-only rejection: {e}"
            );
            let canonical = v.check_canonical();
            assert!(
                matches!(canonical, Err(c) if c.kind == DecodeErrorKind::UnsortedKey),
                "check_canonical disagrees with decode_strict: {canonical:?} vs {e}"
            );
            // Re-encoding sorts the keys; the sorted form is canonical and means the same.
            let sorted = v.to_owned().encode();
            let again = bencode::decode_strict(&sorted).expect("re-encoding is canonical");
            assert_eq!(again.to_owned(), v.to_owned());
        }
        (Err(e), Ok(_)) => panic!("strict accepts what lenient rejects: {e}"),
        (Err(e), Err(_)) => assert!(e.offset <= data.len(), "error offset past input: {e}"),
    }

    match bencode::decode_prefix(data) {
        Ok((value, used)) => {
            assert!(used > 0 && used <= data.len());
            assert_eq!(value.raw(), &data[..used]);
            let alone = bencode::decode(&data[..used]).expect("a prefix value decodes alone");
            assert_eq!(alone, value);
            match &lenient {
                Ok(v) => {
                    assert_eq!(used, data.len());
                    assert_eq!(*v, value);
                }
                Err(e) => {
                    assert_eq!(e.kind, DecodeErrorKind::TrailingBytes, "{e}");
                    assert_eq!(e.offset, used);
                }
            }
        }
        Err(e) => assert!(
            lenient.is_err(),
            "decode_prefix rejects what decode accepts: {e}"
        ),
    }
});
