//! The extension protocol's codecs (BEP 10, 9, 11): a selector byte, then a payload for the
//! extension handshake, a `ut_metadata` message or a `ut_pex` message. Nothing panics, and
//! whatever decodes re-encodes to bytes that decode to the same value.
#![no_main]

use bt_proto::extensions::ExtensionHandshake;
use bt_proto::extensions::ut_metadata::{METADATA_PIECE_LEN, MetadataMessage};
use bt_proto::extensions::ut_pex::PexMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(h) = ExtensionHandshake::decode(payload) {
                let again = ExtensionHandshake::decode(&h.encode());
                assert_eq!(again.as_ref(), Ok(&h));
                // `m` names only what it changes: a repeat changes nothing.
                let mut merged = h.clone();
                merged.update(h.clone());
                assert_eq!(merged, h);
            }
        }
        1 => {
            if let Ok(m) = MetadataMessage::decode(payload) {
                if let MetadataMessage::Data { data, .. } = &m {
                    assert!(!data.is_empty() && data.len() <= METADATA_PIECE_LEN);
                }
                assert_eq!(MetadataMessage::decode(&m.encode()), Ok(m));
            }
        }
        _ => {
            if let Ok(m) = PexMessage::decode(payload) {
                assert_eq!(PexMessage::decode(&m.encode()), Ok(m));
            }
        }
    }
});
