//! KRPC (the DHT's messages, BEP 5, 32, 42, 43): nothing panics, what decodes keeps to the
//! limits, and re-encodes to bytes that decode to the same value.
#![no_main]

use bt_proto::dht::krpc::{
    Body, MAX_NODES_PER_REPLY, MAX_PEERS_PER_REPLY, MAX_TOKEN_LEN, MAX_TRANSACTION_ID_LEN, Message,
    Query,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::decode(data) else {
        return;
    };
    assert!(m.transaction.len() <= MAX_TRANSACTION_ID_LEN);
    match &m.body {
        Body::Response(r) => {
            assert!(r.nodes.len() <= MAX_NODES_PER_REPLY && r.nodes6.len() <= MAX_NODES_PER_REPLY);
            assert!(r.values.len() <= MAX_PEERS_PER_REPLY);
            assert!(r.token.as_ref().is_none_or(|t| t.len() <= MAX_TOKEN_LEN));
        }
        Body::Query(Query::AnnouncePeer {
            port, implied_port, ..
        }) => assert!(*port != 0 || *implied_port),
        _ => {}
    }
    assert_eq!(Message::decode(&m.encode()).as_ref(), Ok(&m));
});
