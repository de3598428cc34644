//! The extension protocol against scripted peers: our handshake, metadata served (BEP 9) and
//! peer exchange (BEP 11), on public and private torrents.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::hostile_tests::closes;
use super::*;
use crate::bencode::Bencode;
use crate::extensions::ut_metadata::{self, METADATA_PIECE_LEN, MetadataError, MetadataMessage};
use crate::extensions::ut_pex::{PexError, PexFlags, PexMessage};
use crate::extensions::{ExtensionHandshake, ExtensionHandshakeError, UT_METADATA_ID, UT_PEX_ID};
use crate::metainfo::Metainfo;
use crate::sim::remote::RemotePeer;
use crate::wire::{Extension, Message, Reserved};
use crate::{Bitfield, ConnId, PeerId};

/// The ids the scripted peers give the extensions in their handshakes.
pub(super) const THEIR_METADATA_ID: u8 = 3;
const THEIR_PEX_ID: u8 = 4;

/// A torrent of `pieces` 16 KiB pieces whose content is never read (only its metadata is):
/// 2,000 pieces make an info dictionary of three metadata pieces, the last one short.
pub(super) fn meta(pieces: u32, private: bool) -> Metainfo {
    let hashes: Vec<u8> = (0..pieces * 20).map(|i| (i % 251) as u8).collect();
    let mut info = Bencode::dict()
        .with("length", i64::from(pieces) * 16384)
        .with("name", "m")
        .with("piece length", 16384)
        .with("pieces", hashes);
    if private {
        info.insert("private", 1);
    }
    Metainfo::from_info_bytes(&info.encode()).unwrap()
}

/// A session seeding `meta`, with `tune` applied to its configuration.
fn session(meta: &Metainfo, tune: impl FnOnce(&mut Config)) -> (Session, TorrentId) {
    let mut config = Config::new(PeerId([1; 20]), 6881, 1);
    tune(&mut config);
    let mut s = Session::new(config);
    let have = Some(Bitfield::full(meta.piece_count()));
    let opts = AddTorrent {
        have,
        ..Default::default()
    };
    let id = s.add_torrent(Instant::now(), meta.clone(), opts);
    (s, id)
}

/// An extension handshake naming both extensions under our scripted ids, and `port`.
fn their_handshake(port: Option<u16>) -> Message {
    let h = ExtensionHandshake {
        ut_metadata: Some(THEIR_METADATA_ID),
        ut_pex: Some(THEIR_PEX_ID),
        listen_port: port,
        ..Default::default()
    };
    Message::Extended {
        id: 0,
        payload: h.encode().into(),
    }
}

/// A peer connecting from `from` that speaks the extension protocol and sends `hello` after
/// its handshake.
fn connect(
    s: &mut Session,
    meta: &Metainfo,
    now: Instant,
    from: SocketAddr,
    hello: &[Message],
) -> RemotePeer {
    let conn = s.accept(now, from);
    let peer = extended_peer(conn, meta);
    peer.hello(s, now, hello).unwrap();
    peer
}

pub(super) fn extended_peer(conn: ConnId, meta: &Metainfo) -> RemotePeer {
    let mut id = [7; 20];
    id[..8].copy_from_slice(&conn.0.to_be_bytes());
    RemotePeer::new(conn, meta.info_hash(), PeerId(id))
        .with_reserved(
            Reserved::NONE
                .with(Extension::Fast)
                .with(Extension::ExtensionProtocol),
        )
        .with_piece_count(meta.piece_count())
}

/// The payloads of the extended messages `peer` got under `id`.
pub(super) fn extended(peer: &mut RemotePeer, id: u8) -> Vec<Bytes> {
    peer.messages()
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            Message::Extended { id: i, payload } if i == id => Some(payload),
            _ => None,
        })
        .collect()
}

/// Our extension handshake as `peer` got it.
fn our_handshake(s: &mut Session, peer: &mut RemotePeer) -> ExtensionHandshake {
    peer.drain(s);
    let got = extended(peer, 0);
    assert_eq!(got.len(), 1, "one extension handshake");
    ExtensionHandshake::decode(&got[0]).unwrap()
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn request(piece: u32) -> Message {
    Message::Extended {
        id: UT_METADATA_ID,
        payload: MetadataMessage::Request { piece }.encode().into(),
    }
}

#[test]
fn our_handshake_offers_metadata_with_its_size_and_pex_only_where_allowed() {
    let now = Instant::now();
    let public = meta(2000, false);
    let private = meta(2000, true);
    let from = addr("10.0.0.2:40000");
    let cases: [(&Metainfo, bool, Option<u8>, Option<u8>); 3] = [
        (&public, true, Some(UT_METADATA_ID), Some(UT_PEX_ID)),
        (&public, false, Some(UT_METADATA_ID), None),
        (&private, true, None, None),
    ];
    for (m, pex, want_metadata, want_pex) in cases {
        let (mut s, _) = session(m, |c| c.pex = pex);
        let mut peer = connect(&mut s, m, now, from, &[]);
        let ours = our_handshake(&mut s, &mut peer);
        assert_eq!(ours.ut_metadata, want_metadata, "pex {pex}, {m:?}");
        assert_eq!(ours.ut_pex, want_pex, "pex {pex}, {m:?}");
        let size = want_metadata.map(|_| m.info_bytes().len() as u64);
        assert_eq!(ours.metadata_size, size);
        assert!(m.info_bytes().len() > 2 * METADATA_PIECE_LEN);
        assert_eq!(ours.listen_port, Some(6881));
        assert_eq!(ours.yourip, Some(from.ip()));
    }
}

/// A seed of a torrent whose metadata is three pieces, and a peer that named ut_metadata.
fn metadata_peer(now: Instant) -> (Metainfo, Session, RemotePeer) {
    let m = meta(2000, false);
    let (mut s, _) = session(&m, |_| {});
    let hello = [their_handshake(None)];
    let peer = connect(&mut s, &m, now, addr("10.0.0.2:40000"), &hello);
    (m, s, peer)
}

/// The metadata messages `peer` got.
fn metadata_answers(peer: &mut RemotePeer) -> Vec<MetadataMessage> {
    extended(peer, THEIR_METADATA_ID)
        .iter()
        .map(|p| MetadataMessage::decode(p).unwrap())
        .collect()
}

#[test]
fn metadata_is_served_byte_exact_and_hashes_to_the_info_hash() {
    let now = Instant::now();
    let (m, mut s, mut peer) = metadata_peer(now);
    let pieces = ut_metadata::piece_count(m.info_bytes().len()) as u32;
    assert_eq!(pieces, 3);
    // Out of order, and one past the end.
    let asked: Vec<Message> = [2, 0, 1, 3].into_iter().map(request).collect();
    peer.send(&mut s, now, &asked).unwrap();
    peer.drain(&mut s);
    let answers = metadata_answers(&mut peer);
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(answers[3], MetadataMessage::Reject { piece: 3 });
    let mut assembled = vec![Vec::new(); 3];
    for (answer, want) in answers[..3].iter().zip([2u32, 0, 1]) {
        let MetadataMessage::Data {
            piece,
            total_size,
            data,
        } = answer
        else {
            panic!("{answer:?}");
        };
        assert_eq!(*piece, want);
        assert_eq!(*total_size, m.info_bytes().len() as u64);
        assembled[want as usize] = data.to_vec();
    }
    assert_eq!(assembled[0].len(), METADATA_PIECE_LEN);
    let assembled = assembled.concat();
    assert_eq!(assembled, m.info_bytes());
    assert_eq!(crate::sha1(&assembled), m.info_hash().0);
}

#[test]
fn metadata_requests_past_the_budget_are_rejected_then_the_flood_is_closed() {
    let now = Instant::now();
    let (_, mut s, mut peer) = metadata_peer(now);
    let budget = 3 * METADATA_SERVINGS_PER_PIECE as usize;
    let flood = vec![request(0); budget + MAX_METADATA_REJECTS as usize];
    peer.send(&mut s, now, &flood).unwrap();
    let others = peer.drain(&mut s);
    assert!(others.is_empty(), "closed too soon: {others:?}");
    let answers = metadata_answers(&mut peer);
    let served = answers
        .iter()
        .filter(|a| matches!(a, MetadataMessage::Data { .. }))
        .count();
    assert_eq!(served, budget);
    assert_eq!(answers.len(), flood.len(), "every request answered");
    peer.send(&mut s, now, &[request(1)]).unwrap();
    assert_eq!(
        closes(&mut s),
        vec![(
            peer.conn(),
            CloseReason::Protocol(ProtocolViolation::MetadataRequestFlood)
        )]
    );
}

#[test]
fn malformed_known_extensions_close_the_peer_and_unknown_ones_are_ignored() {
    let now = Instant::now();
    let m = meta(20, false);
    let (mut s, _) = session(&m, |_| {});
    let ext = |id: u8, payload: &[u8]| Message::Extended {
        id,
        payload: Bytes::copy_from_slice(payload),
    };
    let hs = their_handshake(Some(6881));
    let cases = [
        (
            ext(0, b"d1:mi1ee"),
            ProtocolViolation::ExtensionHandshake(ExtensionHandshakeError::MNotADict),
        ),
        (
            ext(UT_METADATA_ID, b"d8:msg_typei0e5:piecei-1ee"),
            ProtocolViolation::Metadata(MetadataError::BadPiece(-1)),
        ),
        (
            ext(UT_PEX_ID, b"d5:added3:abce"),
            ProtocolViolation::Pex(PexError::Ragged {
                key: "added",
                error: crate::compact::RaggedCompact { len: 3, entry: 6 },
            }),
        ),
    ];
    for (host, (bad, why)) in (2u8..).zip(cases) {
        let from = SocketAddr::from(([10, 0, 0, host], 40000));
        let peer = connect(&mut s, &m, now, from, std::slice::from_ref(&hs));
        // Ids we never gave out, and a metadata type BEP 9 does not define, are ignored.
        let harmless = [
            ext(77, b"garbage"),
            ext(UT_METADATA_ID, b"d8:msg_typei9e5:piecei0ee"),
        ];
        peer.send(&mut s, now, &harmless).unwrap();
        assert!(closes(&mut s).is_empty(), "closed for an unknown extension");
        peer.send(&mut s, now, &[bad]).unwrap();
        assert_eq!(
            closes(&mut s),
            vec![(peer.conn(), CloseReason::Protocol(why))]
        );
    }
}

/// Every session output until now: sends go to the peer they are for.
fn route(s: &mut Session, peers: &mut [&mut RemotePeer]) -> Vec<Output> {
    let mut others = Vec::new();
    while let Some(o) = s.poll_output() {
        let mut o = Some(o);
        for p in peers.iter_mut() {
            o = o.and_then(|o| p.absorb(o));
        }
        others.extend(o);
    }
    others
}

/// Runs the session's deadlines from `from` to `until`, routing what it sends; the PEX
/// messages `observer` got, with when.
fn run_pex(
    s: &mut Session,
    peers: &mut [&mut RemotePeer],
    observer: usize,
    from: Instant,
    until: Instant,
) -> Vec<(Duration, PexMessage)> {
    let mut got = Vec::new();
    let mut now = from;
    while let Some(next) = s.poll_timeout().filter(|t| *t <= until) {
        now = now.max(next);
        s.handle_timeout(now);
        route(s, peers);
        for p in extended(&mut *peers[observer], THEIR_PEX_ID) {
            got.push((now - from, PexMessage::decode(&p).unwrap()));
        }
    }
    got
}

#[test]
fn pex_goes_out_once_a_minute_with_at_most_50_added_and_later_drops() {
    let t0 = Instant::now();
    let m = meta(20, false);
    let (mut s, id) = session(&m, |_| {});
    let mut peers = Vec::new();
    let mut listed = BTreeSet::new();
    // 52 peers that connected to us and said their port; 3 that did not say it.
    for i in 0..55u8 {
        let port = (i < 52).then_some(6881);
        let from = SocketAddr::from(([10, 1, 0, i + 1], 40000));
        peers.push(connect(&mut s, &m, t0, from, &[their_handshake(port)]));
        if port.is_some() {
            listed.insert((SocketAddr::from(([10, 1, 0, i + 1], 6881)), PexFlags::NONE));
        }
    }
    // Two we dialled, at the address we dialled.
    for i in 0..2u8 {
        let to = SocketAddr::from(([10, 2, 0, i + 1], 7000));
        s.add_peer(t0, id, to);
        let mut refs: Vec<&mut RemotePeer> = peers.iter_mut().collect();
        let conn = route(&mut s, &mut refs)
            .into_iter()
            .find_map(|o| match o {
                Output::Connect { conn, .. } => Some(conn),
                _ => None,
            })
            .unwrap();
        s.handle(t0, Input::Connected { conn });
        let peer = extended_peer(conn, &m);
        peer.hello(&mut s, t0, &[their_handshake(Some(1))]).unwrap();
        peers.push(peer);
        listed.insert((to, PexFlags::REACHABLE));
    }
    let observer = 0;
    let own = SocketAddr::from(([10, 1, 0, 1], 6881));
    listed.retain(|(a, _)| *a != own);
    assert_eq!(listed.len(), 53);
    let mut refs: Vec<&mut RemotePeer> = peers.iter_mut().collect();
    route(&mut s, &mut refs);
    for p in refs.iter_mut() {
        p.messages().unwrap();
    }
    let got = run_pex(
        &mut s,
        &mut refs,
        observer,
        t0,
        t0 + Duration::from_secs(130),
    );
    let times: Vec<Duration> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![PEX_FIRST_DELAY, PEX_FIRST_DELAY + PEX_INTERVAL]);
    assert_eq!(got[0].1.added.len(), MAX_PEX_ADDED);
    let told: BTreeSet<(SocketAddr, PexFlags)> = got
        .iter()
        .flat_map(|(_, m)| m.added.iter().copied())
        .collect();
    assert_eq!(told, listed, "each listening address once, with its flags");
    assert!(got.iter().all(|(_, m)| m.dropped.is_empty()));
    // A peer leaves: the next message drops it, and nothing else.
    let left = refs[5].conn();
    let closed_at = t0 + Duration::from_secs(131);
    s.handle(closed_at, Input::Closed { conn: left });
    let got = run_pex(
        &mut s,
        &mut refs,
        observer,
        closed_at,
        t0 + Duration::from_secs(200),
    );
    assert_eq!(got.len(), 1);
    let next = &got[0].1;
    assert_eq!(next.dropped, vec![SocketAddr::from(([10, 1, 0, 6], 6881))]);
    assert!(next.added.is_empty());
}

#[test]
fn pex_addresses_are_filtered_dialled_and_capped() {
    let now = Instant::now();
    let m = meta(20, false);
    let (mut s, _) = session(&m, |c| {
        c.max_half_open = 1000;
        c.max_connections_per_torrent = 1000;
        c.max_outgoing = 1000;
    });
    let peer = connect(
        &mut s,
        &m,
        now,
        addr("10.0.0.2:40000"),
        &[their_handshake(Some(6881))],
    );
    let pex = |added: Vec<SocketAddr>| Message::Extended {
        id: UT_PEX_ID,
        payload: PexMessage {
            added: added.into_iter().map(|a| (a, PexFlags::NONE)).collect(),
            dropped: vec![],
        }
        .encode()
        .into(),
    };
    let dialled = |s: &mut Session| -> BTreeSet<SocketAddr> {
        route(s, &mut [])
            .into_iter()
            .filter_map(|o| match o {
                Output::Connect { addr, .. } => Some(addr),
                _ => None,
            })
            .collect()
    };
    dialled(&mut s);
    let first = vec![
        addr("10.3.0.1:6881"),
        addr("[2001:db8::1]:6882"),
        addr("0.0.0.0:6881"),
        addr("10.3.0.3:0"),
        addr("224.0.0.1:6881"),
        addr("[::ffff:10.3.0.4]:6883"),
    ];
    peer.send(&mut s, now, &[pex(first)]).unwrap();
    let want: BTreeSet<SocketAddr> = [
        addr("10.3.0.1:6881"),
        addr("[2001:db8::1]:6882"),
        addr("10.3.0.4:6883"),
    ]
    .into();
    assert_eq!(dialled(&mut s), want, "the tracker peers' filters apply");
    // A flood: the second message of the minute is taken up to the cap, the third not at all.
    let many: Vec<SocketAddr> = (0..200u16)
        .map(|i| SocketAddr::from(([10, 4, (i >> 8) as u8, i as u8], 6881)))
        .collect();
    peer.send(&mut s, now, &[pex(many)]).unwrap();
    assert_eq!(dialled(&mut s).len(), MAX_PEX_ADDRESSES_TAKEN);
    peer.send(&mut s, now, &[pex(vec![addr("10.5.0.1:1")])])
        .unwrap();
    assert!(dialled(&mut s).is_empty(), "a third message in a minute");
    let later = now + PEX_INTERVAL;
    peer.send(&mut s, later, &[pex(vec![addr("10.5.0.1:1")])])
        .unwrap();
    assert_eq!(dialled(&mut s), [addr("10.5.0.1:1")].into());
}

#[test]
fn private_torrents_and_pex_off_neither_send_nor_take_pex() {
    let t0 = Instant::now();
    let public = meta(20, false);
    let private = meta(20, true);
    for (m, pex) in [(&private, true), (&public, false)] {
        let (mut s, _) = session(m, |c| c.pex = pex);
        let mut peers: Vec<RemotePeer> = (1..=3u8)
            .map(|i| {
                let from = SocketAddr::from(([10, 1, 0, i], 40000));
                connect(&mut s, m, t0, from, &[their_handshake(Some(6881))])
            })
            .collect();
        let offer = Message::Extended {
            id: UT_PEX_ID,
            payload: PexMessage {
                added: vec![(addr("10.3.0.1:6881"), PexFlags::NONE)],
                dropped: vec![],
            }
            .encode()
            .into(),
        };
        peers[0].send(&mut s, t0, &[offer]).unwrap();
        let mut refs: Vec<&mut RemotePeer> = peers.iter_mut().collect();
        let others = route(&mut s, &mut refs);
        assert!(
            !others.iter().any(|o| matches!(o, Output::Connect { .. })),
            "pex {pex}: dialled a PEX address: {others:?}"
        );
        let got = run_pex(&mut s, &mut refs, 0, t0, t0 + Duration::from_secs(200));
        assert!(got.is_empty(), "pex {pex}: {got:?}");
    }
}
