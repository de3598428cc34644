//! Magnet links: nothing panics, and every accepted link written back with `to_uri` parses
//! to an equal value (and writes back to the same text: writing is a fixed point).
#![no_main]

use bt_proto::magnet::{MAX_MAGNET_LEN, Magnet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Links arrive as text; invalid UTF-8 is replaced so every input still exercises the
    // parser (percent-escapes reach the byte level anyway).
    let text = String::from_utf8_lossy(data);
    let Ok(m) = Magnet::parse(&text) else {
        return;
    };
    let uri = m.to_uri();
    if uri.len() > MAX_MAGNET_LEN {
        // Percent-escaping can make a link longer than the input; the length cap applies.
        return;
    }
    let back = Magnet::parse(&uri).unwrap_or_else(|e| panic!("{uri:?} does not parse: {e}"));
    assert_eq!(back, m, "{uri:?}");
    assert_eq!(back.to_uri(), uri);
    assert_eq!(uri.parse::<Magnet>().ok(), Some(m));
});
