//! UDP tracker packets (BEP 15): nothing panics; every packet a decoder accepts encodes back
//! to the bytes it was read from (ignored BEP 41 options and an error message's invalid
//! UTF-8 aside) and decodes again to the same value; `decode_reply` agrees with
//! `Response::decode` and checks the transaction and action.
//!
//! The first input byte chooses the reply check (bit 0: IPv6 socket; bits 1-2: the action
//! expected; bit 3: expect another transaction id); the rest is the packet.
#![no_main]

use bt_proto::tracker::udp::{
    ANNOUNCE_REQUEST_LEN, Action, AddressFamily, Request, Response, TransactionId, UdpError,
    decode_reply,
};
use libfuzzer_sys::fuzz_target;

/// Where an announce request's `num_want` (a signed 32-bit count) lies.
const NUM_WANT: std::ops::Range<usize> = 92..96;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };

    if let Ok(request) = Request::decode(packet) {
        let bytes = request.encode();
        let mut expected = packet.to_vec();
        if let Request::Announce(_) = request {
            // Options after the fixed part are ignored on decode and not written.
            expected.truncate(ANNOUNCE_REQUEST_LEN);
            // Any negative num_want means "the tracker's default", which is written as -1.
            if let Some(num_want) = expected.get_mut(NUM_WANT)
                && num_want.first().is_some_and(|&b| b & 0x80 != 0)
            {
                num_want.copy_from_slice(&(-1i32).to_be_bytes());
            }
        }
        assert_eq!(bytes, expected, "request re-encodes differently");
        assert_eq!(Request::decode(&bytes), Ok(request));
    }

    for family in [AddressFamily::V4, AddressFamily::V6] {
        if let Ok(response) = Response::decode(packet, family) {
            let bytes = response.encode();
            let exact = match &response {
                Response::Error(_) => {
                    std::str::from_utf8(packet.get(8..).unwrap_or_default()).is_ok()
                }
                _ => true,
            };
            if exact {
                assert_eq!(bytes, packet, "reply re-encodes differently");
            }
            assert_eq!(Response::decode(&bytes, family), Ok(response));
        }
    }

    let family = if selector & 1 == 0 {
        AddressFamily::V4
    } else {
        AddressFamily::V6
    };
    let action = match (selector >> 1) & 3 {
        0 => Action::Connect,
        1 => Action::Announce,
        2 => Action::Scrape,
        _ => Action::Error,
    };
    let in_packet = packet
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes);
    let expected = TransactionId(if selector & 8 == 0 {
        in_packet
    } else {
        in_packet.wrapping_add(1)
    });
    match decode_reply(packet, family, expected, action) {
        Ok(reply) => {
            assert_eq!(reply.transaction_id(), expected);
            assert!(reply.action() == action || reply.action() == Action::Error);
            assert_eq!(Response::decode(packet, family), Ok(reply));
        }
        Err(UdpError::TransactionMismatch { expected: e, found }) => {
            assert_eq!(e, expected.0);
            assert_eq!(found, in_packet);
            assert_ne!(found, expected.0);
        }
        Err(UdpError::UnexpectedAction { expected: e, found }) => {
            assert_eq!(e, action);
            assert_ne!(found, Action::Error);
            assert_eq!(
                Response::decode(packet, family).map(|r| r.action()),
                Ok(found)
            );
        }
        Err(e) => {
            if packet.len() >= 8 {
                assert_eq!(Response::decode(packet, family), Err(e));
            }
        }
    }
});
