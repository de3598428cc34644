//! Local service discovery announces (BEP 14): nothing panics, what is accepted keeps the
//! limits, and it re-encodes to bytes that decode to the same announce.
#![no_main]

use bt_proto::lsd::{Announce, MAX_LSD_COOKIE_LEN, MAX_LSD_INFOHASHES, MAX_LSD_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = Announce::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_LSD_MESSAGE_LEN);
    assert!(!a.info_hashes.is_empty() && a.info_hashes.len() <= MAX_LSD_INFOHASHES);
    for (i, h) in a.info_hashes.iter().enumerate() {
        assert!(!a.info_hashes[..i].contains(h), "repeated {h}");
    }
    assert_ne!(a.port, 0);
    let cookie_len = a.cookie.as_ref().map_or(0, String::len);
    if let Some(c) = &a.cookie {
        assert!(c.bytes().all(|b| b.is_ascii_graphic()), "{c:?}");
    }
    let bytes = a.encode();
    if cookie_len <= MAX_LSD_COOKIE_LEN {
        // Within the limits we send by, our encoding fits the message limit.
        assert!(bytes.len() <= MAX_LSD_MESSAGE_LEN, "{} bytes", bytes.len());
    }
    if bytes.len() <= MAX_LSD_MESSAGE_LEN {
        assert_eq!(Announce::decode(&bytes).as_ref(), Ok(&a));
    }
});
