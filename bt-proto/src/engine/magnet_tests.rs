//! Torrents added by magnet link against scripted peers: the metadata fetched (BEP 9),
//! lies found out, limits kept, and the torrent that results.

use std::time::Instant;

use bytes::Bytes;

use super::extension_tests::{THEIR_METADATA_ID, addr, extended, extended_peer, meta};
use super::hostile_tests::closes;
use super::*;
use crate::PeerId;
use crate::bencode::Bencode;
use crate::extensions::ut_metadata::{METADATA_PIECE_LEN, MetadataMessage, piece_count, piece_of};
use crate::extensions::{ExtensionHandshake, UT_METADATA_ID};
use crate::magnet::Magnet;
use crate::metainfo::{Metainfo, MetainfoError};
use crate::sim::remote::RemotePeer;
use crate::wire::Message;

fn magnet_session(m: &Metainfo) -> (Session, TorrentId) {
    let mut s = Session::new(Config::new(PeerId([1; 20]), 6881, 1));
    let id = s.add_magnet(
        Instant::now(),
        &Magnet::new(m.info_hash()),
        AddTorrent::default(),
    );
    (s, id)
}

/// An extension handshake serving metadata of `size` bytes.
fn serving(size: u64) -> Message {
    let h = ExtensionHandshake {
        ut_metadata: Some(THEIR_METADATA_ID),
        metadata_size: Some(size),
        ..Default::default()
    };
    Message::Extended {
        id: 0,
        payload: h.encode().into(),
    }
}

/// A peer at `10.0.0.<host>` connecting with `hello` after its handshake.
fn peer_from(
    s: &mut Session,
    m: &Metainfo,
    now: Instant,
    host: u8,
    hello: &[Message],
) -> RemotePeer {
    let conn = s.accept(now, addr(&format!("10.0.0.{host}:40000")));
    let peer = extended_peer(conn, m);
    peer.hello(s, now, hello).unwrap();
    peer
}

/// The metadata requests `peer` got, by piece.
fn asked(s: &mut Session, peer: &mut RemotePeer) -> Vec<u32> {
    peer.drain(s);
    extended(peer, THEIR_METADATA_ID)
        .iter()
        .filter_map(|p| match MetadataMessage::decode(p) {
            Ok(MetadataMessage::Request { piece }) => Some(piece),
            _ => None,
        })
        .collect()
}

fn data(piece: u32, total: usize, bytes: &[u8]) -> Message {
    let msg = MetadataMessage::Data {
        piece,
        total_size: total as u64,
        data: Bytes::copy_from_slice(bytes),
    };
    Message::Extended {
        id: UT_METADATA_ID,
        payload: msg.encode().into(),
    }
}

/// Answers every piece `pieces` of `info`, from `peer`.
fn answer(s: &mut Session, peer: &RemotePeer, now: Instant, info: &[u8], pieces: &[u32]) {
    let msgs: Vec<Message> = pieces
        .iter()
        .map(|p| data(*p, info.len(), piece_of(info, *p).unwrap()))
        .collect();
    peer.send(s, now, &msgs).unwrap();
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn the_metadata_is_fetched_from_two_peers_and_the_torrent_keeps_its_id_and_peers() {
    let now = Instant::now();
    let m = meta(2000, false);
    let info = m.info_bytes().to_vec();
    assert_eq!(piece_count(info.len()), 3);
    let (mut s, id) = magnet_session(&m);
    let size = info.len() as u64;
    let mut a = peer_from(&mut s, &m, now, 2, &[Message::HaveAll, serving(size)]);
    let got_a = asked(&mut s, &mut a);
    let mut b = peer_from(&mut s, &m, now, 3, &[Message::HaveNone, serving(size)]);
    let got_b = asked(&mut s, &mut b);
    assert_eq!(
        got_a,
        [0, 1, 2],
        "four may be in flight to one peer, and there are three"
    );
    assert!(got_b.is_empty());
    assert!(s.metainfo(id).is_none() && s.is_fetching_metadata(id));
    answer(&mut s, &a, now, &info, &[0, 1, 2]);
    assert_eq!(s.metainfo(id).map(|t| t.info_bytes()), Some(&info[..]));
    assert!(!s.is_fetching_metadata(id));
    let ev = events(&mut s);
    assert!(
        ev.contains(&Event::MetadataReceived { torrent: id }),
        "{ev:?}"
    );
    // Both connections stayed, and each heard our handshake again, now with the size.
    assert_eq!(s.peers(id, now).len(), 2);
    let mut outputs = a.drain(&mut s);
    assert_eq!(outputs.remove(0), Output::MetadataReceived { torrent: id });
    let again = extended(&mut a, 0);
    let hs = ExtensionHandshake::decode(again.last().unwrap()).unwrap();
    assert_eq!(hs.metadata_size, Some(size));
    let stats = s.stats(id, std::time::Instant::now()).unwrap();
    assert!(stats.has_metadata);
    assert_eq!(stats.pieces_total, 2000);
    // The peer that had everything is interesting now, the empty one is not.
    let peers = s.peers(id, now);
    let by_addr = |h: &str| peers.iter().find(|p| p.addr == addr(h)).unwrap().clone();
    assert!(by_addr("10.0.0.2:40000").am_interested);
    assert_eq!(by_addr("10.0.0.2:40000").pieces, 2000);
    assert!(!by_addr("10.0.0.3:40000").am_interested);
}

#[test]
fn a_peer_that_sent_all_of_a_corrupt_copy_is_banned_and_an_honest_one_finishes() {
    let now = Instant::now();
    let m = meta(2000, false);
    let info = m.info_bytes().to_vec();
    let (mut s, id) = magnet_session(&m);
    let mut liar = peer_from(&mut s, &m, now, 2, &[serving(info.len() as u64)]);
    let pieces = asked(&mut s, &mut liar);
    let mut lie = info.clone();
    lie[100] ^= 1;
    answer(&mut s, &liar, now, &lie, &pieces);
    let ev = events(&mut s);
    let liar_addr = addr("10.0.0.2:40000");
    assert!(
        ev.contains(&Event::MetadataHashFailed {
            torrent: id,
            peers: vec![liar_addr]
        }),
        "{ev:?}"
    );
    assert!(
        ev.contains(&Event::PeerBanned {
            torrent: id,
            addr: liar_addr
        }),
        "{ev:?}"
    );
    assert!(closes(&mut s).contains(&(liar.conn(), CloseReason::Banned)));
    // Its host cannot come back; an honest peer gives the real metadata.
    let again = s.accept(now, liar_addr);
    let back = extended_peer(again, &m);
    back.hello(&mut s, now, &[]).unwrap();
    assert!(closes(&mut s).contains(&(again, CloseReason::Banned)));
    let mut honest = peer_from(&mut s, &m, now, 3, &[serving(info.len() as u64)]);
    let pieces = asked(&mut s, &mut honest);
    answer(&mut s, &honest, now, &info, &pieces);
    assert!(events(&mut s).contains(&Event::MetadataReceived { torrent: id }));
}

#[test]
fn a_size_over_the_limit_is_never_asked_for_and_a_lying_piece_closes_its_peer() {
    let now = Instant::now();
    let m = meta(2000, false);
    let info = m.info_bytes().to_vec();
    let (mut s, _) = magnet_session(&m);
    let mut huge = peer_from(&mut s, &m, now, 2, &[serving(MAX_METADATA_SIZE + 1)]);
    assert!(asked(&mut s, &mut huge).is_empty());
    let mut zero = peer_from(&mut s, &m, now, 3, &[serving(0)]);
    assert!(asked(&mut s, &mut zero).is_empty());
    let mut honest = peer_from(&mut s, &m, now, 4, &[serving(info.len() as u64)]);
    assert_eq!(asked(&mut s, &mut honest), [0, 1, 2]);
    // A piece of the wrong length, or with another total size, cannot be part of it.
    honest
        .send(
            &mut s,
            now,
            &[data(2, info.len(), &info[..METADATA_PIECE_LEN])],
        )
        .unwrap();
    let closed = closes(&mut s);
    let want = CloseReason::Protocol(ProtocolViolation::BadMetadataPiece { piece: 2 });
    assert!(closed.contains(&(honest.conn(), want)), "{closed:?}");
}

#[test]
fn while_fetching_we_refuse_metadata_requests_and_choke() {
    let now = Instant::now();
    let m = meta(2000, false);
    let (mut s, _) = magnet_session(&m);
    let request = Message::Extended {
        id: UT_METADATA_ID,
        payload: MetadataMessage::Request { piece: 0 }.encode().into(),
    };
    let mut p = peer_from(
        &mut s,
        &m,
        now,
        2,
        &[serving(100), Message::Interested, request],
    );
    p.drain(&mut s);
    let all = p.messages().unwrap();
    // Interested, but we have nothing to give: it stays choked.
    assert!(!all.contains(&Message::Unchoke), "{all:?}");
    let msgs: Vec<MetadataMessage> = all
        .iter()
        .filter_map(|m| match m {
            Message::Extended { id, payload } if *id == THEIR_METADATA_ID => Some(payload),
            _ => None,
        })
        .map(|b| MetadataMessage::decode(b).unwrap())
        .collect();
    assert!(
        msgs.contains(&MetadataMessage::Reject { piece: 0 }),
        "{msgs:?}"
    );
}

#[test]
fn pieces_said_before_the_metadata_are_held_to_the_torrent_when_it_arrives() {
    let now = Instant::now();
    let m = meta(2000, false);
    let info = m.info_bytes().to_vec();
    let (mut s, id) = magnet_session(&m);
    // 2,000 pieces take 250 bytes; this bitfield is one byte too long.
    let bad = Message::Bitfield(Bytes::from(vec![0u8; 251]));
    let liar = peer_from(&mut s, &m, now, 2, &[bad]);
    let have = Message::Have(crate::PieceIndex(1999));
    let ok = peer_from(&mut s, &m, now, 3, &[Message::HaveNone, have]);
    let mut source = peer_from(&mut s, &m, now, 4, &[serving(info.len() as u64)]);
    let pieces = asked(&mut s, &mut source);
    answer(&mut s, &source, now, &info, &pieces);
    let closed = closes(&mut s);
    assert!(
        closed.iter().any(|(c, r)| *c == liar.conn()
            && matches!(r, CloseReason::Protocol(ProtocolViolation::Bitfield(_)))),
        "{closed:?}"
    );
    let peers = s.peers(id, now);
    let kept = peers.iter().find(|p| p.conn == ok.conn()).unwrap();
    assert_eq!(kept.pieces, 1);
}

#[test]
fn a_request_left_unanswered_goes_to_another_peer() {
    let now = Instant::now();
    let m = meta(2000, false);
    let info = m.info_bytes().to_vec();
    let (mut s, id) = magnet_session(&m);
    let size = info.len() as u64;
    let mut slow = peer_from(&mut s, &m, now, 2, &[serving(size)]);
    assert_eq!(asked(&mut s, &mut slow), [0, 1, 2]);
    let mut other = peer_from(&mut s, &m, now, 3, &[serving(size)]);
    assert!(asked(&mut s, &mut other).is_empty());
    let later = now + METADATA_REQUEST_TIMEOUT;
    assert!(s.poll_timeout().is_some_and(|t| t <= later));
    s.handle_timeout(later);
    assert_eq!(asked(&mut s, &mut other), [0, 1, 2]);
    assert!(asked(&mut s, &mut slow).is_empty(), "it rests");
    answer(&mut s, &other, later, &info, &[0, 1, 2]);
    assert!(events(&mut s).contains(&Event::MetadataReceived { torrent: id }));
}

#[test]
fn metadata_that_hashes_right_but_is_unsafe_stops_the_torrent() {
    let now = Instant::now();
    let info = Bencode::dict()
        .with("length", 16384)
        .with("name", "..")
        .with("piece length", 16384)
        .with("pieces", vec![0u8; 20])
        .encode();
    let hash = crate::InfoHash(crate::sha1(&info));
    let mut s = Session::new(Config::new(PeerId([1; 20]), 6881, 1));
    let id = s.add_magnet(now, &Magnet::new(hash), AddTorrent::default());
    let conn = s.accept(now, addr("10.0.0.2:40000"));
    let mut peer = RemotePeer::new(conn, hash, PeerId([9; 20]))
        .with_reserved(crate::wire::Reserved::NONE.with(crate::wire::Extension::ExtensionProtocol));
    peer.hello(&mut s, now, &[serving(info.len() as u64)])
        .unwrap();
    let pieces = asked(&mut s, &mut peer);
    assert_eq!(pieces, [0]);
    answer(&mut s, &peer, now, &info, &pieces);
    let ev = events(&mut s);
    assert!(
        ev.iter().any(|e| matches!(e, Event::MetadataInvalid { torrent, error: MetainfoError::UnsafePath { .. } } if *torrent == id)),
        "{ev:?}"
    );
    assert_eq!(
        s.stats(id, std::time::Instant::now()).unwrap().state,
        TorrentState::Stopped
    );
    assert!(closes(&mut s).contains(&(conn, CloseReason::TorrentStopped)));
}

#[test]
fn peers_and_file_priorities_given_while_fetching_are_kept() {
    let now = Instant::now();
    let m = meta(2000, false);
    let info = m.info_bytes().to_vec();
    let (mut s, id) = magnet_session(&m);
    s.set_file_priority(now, id, 0, 0);
    s.add_peer(now, id, addr("10.0.0.9:6881"));
    let dialled: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(
        dialled
            .iter()
            .any(|o| matches!(o, Output::Connect { addr: a, .. } if *a == addr("10.0.0.9:6881"))),
        "{dialled:?}"
    );
    let mut source = peer_from(&mut s, &m, now, 4, &[serving(info.len() as u64)]);
    let pieces = asked(&mut s, &mut source);
    answer(&mut s, &source, now, &info, &pieces);
    assert_eq!(
        s.wanted(id).map(|w| w.count()),
        Some(0),
        "the file is skipped"
    );
    assert!(s.stats(id, std::time::Instant::now()).unwrap().complete);
}
