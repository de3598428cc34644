//! Tests of the UDP tracker packets: exact layouts, rejections, round trips.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::tracker::AnnounceEvent;
use crate::tracker::scrape::ScrapeStats;
use crate::{InfoHash, PeerId};

const TXN: TransactionId = TransactionId(0xdead_beef);

#[test]
fn connect_request_exact_bytes() {
    let p = ConnectRequest {
        transaction_id: TXN,
    }
    .encode();
    assert_eq!(
        p,
        [
            0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, // protocol id
            0, 0, 0, 0, // action connect
            0xde, 0xad, 0xbe, 0xef, // transaction
        ]
    );
    assert_eq!(
        Request::decode(&p),
        Ok(Request::Connect(ConnectRequest {
            transaction_id: TXN
        }))
    );
}

#[test]
fn connect_request_rejects_bad_magic_and_length() {
    let mut p = ConnectRequest {
        transaction_id: TXN,
    }
    .encode();
    let mut extra = p.clone();
    extra.push(0);
    assert!(matches!(
        Request::decode(&extra),
        Err(UdpError::WrongLength { len: 17, .. })
    ));
    p[7] = 0x81;
    assert_eq!(
        Request::decode(&p),
        Err(UdpError::BadProtocolId {
            found: 0x0417_2710_1981
        })
    );
}

#[test]
fn connect_response_decodes_and_checks_length() {
    let mut p = vec![0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    p.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(
        decode_reply(&p, AddressFamily::V4, TXN, Action::Connect),
        Ok(Response::Connect(ConnectResponse {
            transaction_id: TXN,
            connection_id: ConnectionId(0x0102_0304_0506_0708)
        }))
    );
    assert!(matches!(
        Response::decode(&p[..15], AddressFamily::V4),
        Err(UdpError::TooShort {
            len: 15,
            min: 16,
            ..
        })
    ));
    p.push(9);
    assert!(matches!(
        Response::decode(&p, AddressFamily::V4),
        Err(UdpError::WrongLength { expected: 16, .. })
    ));
}

fn sample_announce() -> AnnounceRequest {
    AnnounceRequest {
        connection_id: ConnectionId(0x1122_3344_5566_7788),
        transaction_id: TXN,
        info_hash: InfoHash([0xaa; 20]),
        peer_id: PeerId(*b"-BT0100-012345678901"),
        downloaded: 1,
        left: 2,
        uploaded: 3,
        event: Some(AnnounceEvent::Started),
        ip: None,
        key: 0x0bad_f00d,
        num_want: None,
        port: 6881,
    }
}

#[test]
fn announce_request_layout() {
    let p = sample_announce().encode();
    assert_eq!(p.len(), ANNOUNCE_REQUEST_LEN);
    assert_eq!(&p[8..12], &[0, 0, 0, 1], "action");
    assert_eq!(&p[16..36], &[0xaa; 20], "info hash");
    assert_eq!(&p[56..64], &1u64.to_be_bytes(), "downloaded first");
    assert_eq!(&p[64..72], &2u64.to_be_bytes(), "then left");
    assert_eq!(&p[72..80], &3u64.to_be_bytes(), "then uploaded");
    assert_eq!(&p[80..84], &[0, 0, 0, 2], "started is 2");
    assert_eq!(&p[84..88], &[0, 0, 0, 0], "ip 0 = source address");
    assert_eq!(&p[88..92], &[0x0b, 0xad, 0xf0, 0x0d], "key");
    assert_eq!(&p[92..96], &[0xff; 4], "num_want -1 = default");
    assert_eq!(&p[96..98], &[0x1a, 0xe1], "port");
}

#[test]
fn announce_request_event_codes_and_bep41_options() {
    for (event, code) in [
        (None, 0u8),
        (Some(AnnounceEvent::Completed), 1),
        (Some(AnnounceEvent::Started), 2),
        (Some(AnnounceEvent::Stopped), 3),
    ] {
        let req = AnnounceRequest {
            event,
            ..sample_announce()
        };
        let mut p = req.encode();
        assert_eq!(p[83], code);
        // BEP 41 URL-data option after the fixed part.
        p.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
        assert_eq!(Request::decode(&p), Ok(Request::Announce(req)));
    }
    let mut p = sample_announce().encode();
    p[83] = 4;
    assert_eq!(
        Request::decode(&p),
        Err(UdpError::UnknownEvent {
            code: 4,
            offset: 80
        })
    );
    assert!(matches!(
        Request::decode(&sample_announce().encode()[..97]),
        Err(UdpError::TooShort { min: 98, .. })
    ));
}

#[test]
fn announce_request_from_transport_independent_request() {
    let generic = crate::tracker::AnnounceRequest {
        info_hash: InfoHash([1; 20]),
        peer_id: PeerId([2; 20]),
        port: 51413,
        uploaded: 10,
        downloaded: 20,
        left: 30,
        event: Some(AnnounceEvent::Stopped),
        numwant: Some(50),
        key: Some(7),
        tracker_id: Some(b"abc".to_vec()),
        ip: Some("2001:db8::1".parse().unwrap()),
    };
    let udp = AnnounceRequest::from_announce(ConnectionId(9), TXN, &generic);
    assert_eq!(udp.ip, None, "an IPv6 address has no room in the packet");
    assert_eq!(udp.key, 7);
    assert_eq!(udp.num_want, Some(50));
    assert_eq!((udp.uploaded, udp.downloaded, udp.left), (10, 20, 30));
}

#[test]
fn negative_num_want_is_default() {
    let mut p = sample_announce().encode();
    p[92..96].copy_from_slice(&(-7i32).to_be_bytes());
    match Request::decode(&p) {
        Ok(Request::Announce(a)) => assert_eq!(a.num_want, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn announce_response_v4_and_v6_peers() {
    let mut head = vec![0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    head.extend_from_slice(&1800u32.to_be_bytes());
    head.extend_from_slice(&5u32.to_be_bytes());
    head.extend_from_slice(&7u32.to_be_bytes());

    let mut v4 = head.clone();
    v4.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80]);
    let Ok(Response::Announce(a)) = Response::decode(&v4, AddressFamily::V4) else {
        panic!()
    };
    assert_eq!(a.interval, Duration::from_secs(1800));
    assert_eq!((a.leechers, a.seeders), (5, 7));
    assert_eq!(
        a.peers,
        CompactPeers::V4(vec![
            "10.0.0.1:6881".parse().unwrap(),
            "192.168.1.2:80".parse().unwrap()
        ])
    );
    // The same 12 bytes are not a whole IPv6 entry.
    assert!(matches!(
        Response::decode(&v4, AddressFamily::V6),
        Err(UdpError::RaggedEntries {
            offset: 20,
            len: 12,
            entry: 18,
            ..
        })
    ));

    let mut v6 = head;
    v6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&[0x1a, 0xe2]);
    let Ok(Response::Announce(a)) = Response::decode(&v6, AddressFamily::V6) else {
        panic!()
    };
    assert_eq!(
        a.peers,
        CompactPeers::V6(vec!["[2001:db8::7]:6882".parse().unwrap()])
    );
    assert_eq!(a.encode(), v6);
}

#[test]
fn announce_response_rejects_negative_counts() {
    let mut p = vec![0, 0, 0, 1, 0, 0, 0, 0];
    p.extend_from_slice(&(-1i32).to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    assert_eq!(
        Response::decode(&p, AddressFamily::V4),
        Err(UdpError::Negative {
            field: "interval",
            offset: 8,
            value: -1
        })
    );
    assert!(matches!(
        Response::decode(&p[..19], AddressFamily::V4),
        Err(UdpError::TooShort { min: 20, .. }) | Err(UdpError::Negative { .. })
    ));
}

#[test]
fn scrape_round_trip_and_layout() {
    let req = ScrapeRequest {
        connection_id: ConnectionId(5),
        transaction_id: TXN,
        info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
    };
    let p = req.encode();
    assert_eq!(p.len(), 16 + 40);
    assert_eq!(&p[8..12], &[0, 0, 0, 2]);
    assert_eq!(Request::decode(&p), Ok(Request::Scrape(req)));
    assert!(matches!(
        Request::decode(&p[..55]),
        Err(UdpError::RaggedEntries { entry: 20, .. })
    ));

    let mut reply = vec![0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef];
    for n in [3u32, 100, 4] {
        reply.extend_from_slice(&n.to_be_bytes());
    }
    assert_eq!(
        decode_reply(&reply, AddressFamily::V4, TXN, Action::Scrape),
        Ok(Response::Scrape(ScrapeResponse {
            transaction_id: TXN,
            stats: vec![ScrapeStats {
                seeders: 3,
                completed: 100,
                leechers: 4
            }]
        }))
    );
    reply.pop();
    assert!(matches!(
        Response::decode(&reply, AddressFamily::V4),
        Err(UdpError::RaggedEntries { entry: 12, .. })
    ));
}

#[test]
fn error_reply_is_accepted_for_any_request() {
    let mut p = vec![0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef];
    p.extend_from_slice(b"torrent not registered");
    let r = decode_reply(&p, AddressFamily::V4, TXN, Action::Announce);
    assert_eq!(
        r,
        Ok(Response::Error(ErrorResponse {
            transaction_id: TXN,
            message: "torrent not registered".into()
        }))
    );
}

#[test]
fn decode_reply_checks_transaction_and_action() {
    let p = ConnectResponse {
        transaction_id: TransactionId(1),
        connection_id: ConnectionId(2),
    }
    .encode();
    assert_eq!(
        decode_reply(&p, AddressFamily::V4, TransactionId(2), Action::Connect),
        Err(UdpError::TransactionMismatch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        decode_reply(&p, AddressFamily::V4, TransactionId(1), Action::Announce),
        Err(UdpError::UnexpectedAction {
            expected: Action::Announce,
            found: Action::Connect
        })
    );
    assert_eq!(
        Response::decode(&[0, 0, 0, 9, 0, 0, 0, 0], AddressFamily::V4),
        Err(UdpError::UnknownAction { code: 9, offset: 0 })
    );
    assert!(matches!(
        Request::decode(&[0; 16]).map(|_| ()),
        Err(UdpError::BadProtocolId { found: 0 })
    ));
}

#[test]
fn retransmit_schedule() {
    let expected = [15u64, 30, 60, 120, 240, 480, 960, 1920, 3840];
    for (n, secs) in expected.iter().enumerate() {
        assert_eq!(
            timeout_for_attempt(n as u32),
            Some(Duration::from_secs(*secs))
        );
    }
    assert_eq!(timeout_for_attempt(MAX_ATTEMPT + 1), None);
    assert_eq!(timeout_for_attempt(u32::MAX), None);
}

#[test]
fn connection_id_lifetime() {
    let t = Instant::now();
    assert!(connection_id_valid(t, t));
    assert!(connection_id_valid(t, t + Duration::from_millis(59_999)));
    assert!(!connection_id_valid(t, t + CONNECTION_ID_LIFETIME));
    // A `now` before the id was obtained (caller mixed up instants) counts as fresh.
    assert!(connection_id_valid(t + Duration::from_secs(5), t));
}

fn arb_txn() -> impl Strategy<Value = TransactionId> {
    any::<u32>().prop_map(TransactionId)
}

fn arb_event() -> impl Strategy<Value = Option<AnnounceEvent>> {
    prop_oneof![
        Just(None),
        Just(Some(AnnounceEvent::Started)),
        Just(Some(AnnounceEvent::Completed)),
        Just(Some(AnnounceEvent::Stopped)),
    ]
}

fn arb_count() -> impl Strategy<Value = u32> {
    0..=i32::MAX as u32
}

fn arb_request() -> impl Strategy<Value = Request> {
    let connect = arb_txn().prop_map(|t| Request::Connect(ConnectRequest { transaction_id: t }));
    let announce = (
        any::<u64>(),
        arb_txn(),
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        any::<(u64, u64, u64)>(),
        arb_event(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(arb_count()),
        any::<u16>(),
    )
        .prop_map(|(c, t, ih, pid, (d, l, u), event, ip, key, nw, port)| {
            Request::Announce(AnnounceRequest {
                connection_id: ConnectionId(c),
                transaction_id: t,
                info_hash: InfoHash(ih),
                peer_id: PeerId(pid),
                downloaded: d,
                left: l,
                uploaded: u,
                event,
                ip: (ip != 0).then(|| Ipv4Addr::from(ip)),
                key,
                num_want: nw,
                port,
            })
        });
    let scrape = (
        any::<u64>(),
        arb_txn(),
        proptest::collection::vec(any::<[u8; 20]>(), 0..80),
    )
        .prop_map(|(c, t, hs)| {
            Request::Scrape(ScrapeRequest {
                connection_id: ConnectionId(c),
                transaction_id: t,
                info_hashes: hs.into_iter().map(InfoHash).collect(),
            })
        });
    prop_oneof![connect, announce, scrape]
}

fn arb_response() -> impl Strategy<Value = Response> {
    let connect = (arb_txn(), any::<u64>()).prop_map(|(t, c)| {
        Response::Connect(ConnectResponse {
            transaction_id: t,
            connection_id: ConnectionId(c),
        })
    });
    let peers = prop_oneof![
        proptest::collection::vec(any::<(u32, u16)>(), 0..50).prop_map(|v| {
            CompactPeers::V4(
                v.into_iter()
                    .map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
                    .collect(),
            )
        }),
        proptest::collection::vec(any::<(u128, u16)>(), 0..50).prop_map(|v| {
            CompactPeers::V6(
                v.into_iter()
                    .map(|(ip, port)| SocketAddrV6::new(ip.into(), port, 0, 0))
                    .collect(),
            )
        }),
    ];
    let announce = (arb_txn(), arb_count(), arb_count(), arb_count(), peers).prop_map(
        |(t, i, l, s, peers)| {
            Response::Announce(AnnounceResponse {
                transaction_id: t,
                interval: Duration::from_secs(i.into()),
                leechers: l,
                seeders: s,
                peers,
            })
        },
    );
    let scrape = (
        arb_txn(),
        proptest::collection::vec((arb_count(), arb_count(), arb_count()), 0..80),
    )
        .prop_map(|(t, v)| {
            Response::Scrape(ScrapeResponse {
                transaction_id: t,
                stats: v
                    .into_iter()
                    .map(|(s, c, l)| ScrapeStats {
                        seeders: s,
                        completed: c,
                        leechers: l,
                    })
                    .collect(),
            })
        });
    let error = (arb_txn(), ".{0,100}").prop_map(|(t, m)| {
        Response::Error(ErrorResponse {
            transaction_id: t,
            message: m,
        })
    });
    prop_oneof![connect, announce, scrape, error]
}

proptest! {
    #[test]
    fn request_round_trip(req in arb_request()) {
        prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
    }

    #[test]
    fn response_round_trip(resp in arb_response()) {
        let family = match &resp {
            Response::Announce(a) => a.peers.family(),
            _ => AddressFamily::V4,
        };
        let bytes = resp.encode();
        prop_assert_eq!(
            decode_reply(&bytes, family, resp.transaction_id(), resp.action()),
            Ok(resp)
        );
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes, AddressFamily::V4);
        let _ = Response::decode(&bytes, AddressFamily::V6);
        let _ = decode_reply(&bytes, AddressFamily::V4, TXN, Action::Announce);
    }

    #[test]
    fn decoders_never_panic_on_plausible_headers(
        action in 0u32..5,
        txn in any::<u32>(),
        tail in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut reply = action.to_be_bytes().to_vec();
        reply.extend_from_slice(&txn.to_be_bytes());
        reply.extend_from_slice(&tail);
        let _ = Response::decode(&reply, AddressFamily::V4);
        let _ = Response::decode(&reply, AddressFamily::V6);
        let mut req = PROTOCOL_ID.to_be_bytes().to_vec();
        req.extend_from_slice(&action.to_be_bytes());
        req.extend_from_slice(&tail);
        let _ = Request::decode(&req);
    }
}
