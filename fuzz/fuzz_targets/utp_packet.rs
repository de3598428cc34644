//! uTP packets (BEP 29): nothing panics, what decodes keeps to its limits (a selective ack of
//! 1 to 255 bytes, a payload only on DATA) and re-encodes to bytes that
//! decode to the same packet, no longer than the input (skipped extensions are dropped).
#![no_main]

use bt_proto::utp::{Packet, PacketType, is_utp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::decode(data) else {
        return;
    };
    assert!(is_utp(data));
    if let Some(s) = p.sack {
        let n = s.bytes().len();
        assert!((1..=255).contains(&n), "sack of {n} bytes");
    }
    assert!(p.header.kind == PacketType::Data || p.payload.is_empty());
    let bytes = p.encode();
    assert_eq!(bytes.len(), p.encoded_len());
    assert!(bytes.len() <= data.len());
    assert_eq!(Packet::decode(&bytes), Ok(p));
    if bytes.len() == data.len() {
        // Nothing was skipped: the encoding is the input.
        assert_eq!(bytes, data);
    }
});
