//! The engine against hostile peers and trackers: each test fails without the rule it checks.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::tests::{
    CONTENT, TWO_BLOCKS, accept_remote, announce_reply, connects, deliver, drain, leech_session,
    remote, seed_session,
};
use super::*;
use crate::PeerId;
use crate::picker::{BLOCK_LEN, Block};
use crate::sim::remote::RemotePeer;
use crate::wire::{Extension, Message, Reserved};
use crate::{ConnId, PieceIndex};

fn block(piece: u32, index: u32) -> Block {
    Block {
        piece: PieceIndex(piece),
        offset: index * BLOCK_LEN,
        length: BLOCK_LEN,
    }
}

/// Every close the session asked for since the last drain, with its reason; other outputs go.
pub(super) fn closes(s: &mut Session) -> Vec<(ConnId, CloseReason)> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        if let Output::Close { conn, reason } = o {
            out.push((conn, reason));
        }
    }
    out
}

/// A peer with no pieces unchoked us and pushed garbage for blocks asked of the honest
/// seed: the garbage was taken (a hash failure per piece), and the seed was told to cancel.
#[test]
fn a_peer_cannot_fill_our_pieces_with_blocks_nobody_asked_it_for() {
    let (mut s, id, info_hash) = leech_session(1, TWO_BLOCKS, |_| {});
    let now = Instant::now();
    let mut seed = accept_remote(&mut s, now, 1, info_hash, 1, &Message::HaveAll);
    let (asked, _) = drain(&mut s, &mut seed);
    assert_eq!(asked, vec![block(0, 0), block(0, 1)]);
    let mut forger = accept_remote(&mut s, now, 2, info_hash, 1, &Message::HaveNone);
    let forged = Message::Piece {
        piece: PieceIndex(0),
        offset: 0,
        data: Bytes::from(vec![0xee; BLOCK_LEN as usize]),
    };
    forger
        .send(&mut s, now, std::slice::from_ref(&forged))
        .unwrap();
    drain(&mut s, &mut forger);
    assert_eq!(
        s.stats(id, std::time::Instant::now()).unwrap().downloaded,
        0,
        "the forged block was taken"
    );
    let told = seed.drain(&mut s);
    assert!(told.is_empty(), "{told:?}");
    let to_seed = seed.messages().unwrap();
    assert!(
        !to_seed.iter().any(|m| matches!(m, Message::Cancel(_))),
        "the honest seed was told to cancel: {to_seed:?}"
    );
    // The seed's real blocks make the piece, all of its bytes the content.
    deliver(&mut s, now, &seed, block(0, 0));
    deliver(&mut s, now, &seed, block(0, 1));
    let stored: Vec<Vec<Bytes>> = seed
        .drain(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            Output::VerifyAndStore { blocks, .. } => Some(blocks),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(
        stored
            .iter()
            .flatten()
            .all(|b| b.iter().all(|x| *x == CONTENT))
    );
    // Forging on is a protocol violation.
    for _ in 0..MAX_SLIPS {
        forger
            .send(&mut s, now, std::slice::from_ref(&forged))
            .unwrap();
    }
    assert!(
        closes(&mut s).iter().any(|(c, r)| *c == forger.conn()
            && *r == CloseReason::Protocol(ProtocolViolation::TooManyUnrequestedBlocks)),
        "the forger is still connected"
    );
}

/// One host held every slot of `bt seed` with silent connections (450 from 127.0.0.2 kept a
/// real leecher out until the handshake time-out).
#[test]
fn silent_connections_from_one_host_cannot_take_every_slot() {
    let (mut s, info_hash) = seed_session();
    let id = s.torrent_ids()[0];
    let now = Instant::now();
    let attacker = |port: u16| SocketAddr::from(([127, 0, 0, 2], port));
    for port in 1..=450 {
        s.accept(now, attacker(port));
    }
    let refused = closes(&mut s);
    assert_eq!(
        refused.len(),
        450 - DEFAULT_MAX_INCOMING_HANDSHAKES_PER_HOST,
        "one host keeps a few pending handshakes"
    );
    assert!(
        refused
            .iter()
            .all(|(_, r)| *r == CloseReason::TooManyConnections)
    );
    // A real peer gets in at once, while the silent ones still wait for their time-out.
    let conn = s.accept(now, SocketAddr::from(([127, 0, 0, 3], 6881)));
    let mut peer = remote(conn, info_hash, 3);
    peer.hello(&mut s, now, &[]).unwrap();
    peer.drain(&mut s);
    peer.messages().unwrap();
    assert!(
        peer.their_handshake().is_some(),
        "the real peer was refused"
    );
    assert_eq!(s.stats(id, std::time::Instant::now()).unwrap().peers, 1);
}

/// The pending-handshake cap is session-wide, and our own dials have a budget inbound
/// connections cannot take.
#[test]
fn inbound_connections_cannot_take_the_outbound_budget() {
    let (mut s, id, _) = leech_session(4, TWO_BLOCKS, |c| {
        c.max_incoming = 8;
        c.max_incoming_handshakes = 8;
    });
    let now = Instant::now();
    for host in 1..=20u8 {
        s.accept(now, SocketAddr::from(([127, 0, 1, host], 6881)));
    }
    let refused = closes(&mut s).len();
    assert_eq!(refused, 12, "inbound connections past the cap are refused");
    s.add_peer(now, id, "10.0.0.1:6881".parse().unwrap());
    assert_eq!(connects(&mut s).len(), 1, "no room left to dial out");
}

/// One host gets one handshaken connection per torrent; another host is not affected.
#[test]
fn one_connection_per_host_and_torrent() {
    let (mut s, info_hash) = seed_session();
    let id = s.torrent_ids()[0];
    let now = Instant::now();
    let hello = |s: &mut Session, ip: [u8; 4], port: u16| {
        let conn = s.accept(now, SocketAddr::from((ip, port)));
        let peer = remote(conn, info_hash, 3);
        peer.hello(s, now, &[]).unwrap();
        conn
    };
    hello(&mut s, [127, 0, 0, 2], 1);
    closes(&mut s);
    let second = hello(&mut s, [127, 0, 0, 2], 2);
    assert!(
        closes(&mut s).contains(&(second, CloseReason::TooManyConnections)),
        "a second connection from the same host was admitted"
    );
    hello(&mut s, [127, 0, 0, 3], 1);
    assert!(closes(&mut s).is_empty());
    assert_eq!(s.stats(id, std::time::Instant::now()).unwrap().peers, 2);
}

/// Two peers that dial each other at once: both ends keep the connection opened by the peer
/// with the lower id, so one survives (closing the newer on each side closed both).
#[test]
fn peers_dialling_each_other_keep_one_connection() {
    for their_id in [[0u8; 20], [0xff; 20]] {
        let (mut s, id, info_hash) = leech_session(4, TWO_BLOCKS, |_| {});
        let now = Instant::now();
        let addr: SocketAddr = "127.0.0.2:7000".parse().unwrap();
        s.add_peer(now, id, addr);
        let out = connects(&mut s)[0];
        s.handle(now, Input::Connected { conn: out });
        let inc = s.accept(now, addr);
        let peer = |conn| {
            RemotePeer::new(conn, info_hash, PeerId(their_id))
                .with_reserved(Reserved::NONE.with(Extension::Fast))
                .with_piece_count(4)
        };
        peer(out).hello(&mut s, now, &[]).unwrap();
        peer(inc).hello(&mut s, now, &[]).unwrap();
        let closed = closes(&mut s);
        // Ours is [1; 20]: the lower id's dial survives.
        let (kept, dropped) = if their_id < [1; 20] {
            (inc, out)
        } else {
            (out, inc)
        };
        assert_eq!(
            closed,
            vec![(dropped, CloseReason::Duplicate)],
            "{their_id:?}"
        );
        let peers = s.peers(id, now);
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].conn, kept);
    }
}

/// A tracker's peer list is not trusted: port 0, unspecified, multicast and broadcast
/// addresses, our own address, and a banned host written as an IPv4-mapped IPv6 address all
/// got dialled.
#[test]
fn tracker_peers_no_peer_can_be_at_are_not_dialled() {
    let (mut s, id, _) = leech_session(4, TWO_BLOCKS, |_| {});
    let now = Instant::now();
    s.torrents
        .get_mut(&id)
        .unwrap()
        .smart_ban
        .ban("10.0.0.66".parse().unwrap());
    let reply = announce_reply(&[
        "10.0.0.1:0",
        "0.0.0.0:6881",
        "[::]:6881",
        "224.0.0.1:6881",
        "255.255.255.255:6881",
        "127.0.0.1:6881",
        "[::ffff:10.0.0.66]:6881",
        "[::ffff:10.0.0.9]:6881",
        "10.0.0.10:6881",
    ]);
    s.handle(
        now,
        Input::Announced {
            torrent: id,
            url: "http://tracker.example/announce".into(),
            result: Ok(reply),
        },
    );
    let mut dialled = Vec::new();
    while let Some(o) = s.poll_output() {
        if let Output::Connect { addr, .. } = o {
            dialled.push(addr);
        }
    }
    let want: Vec<SocketAddr> = vec![
        "10.0.0.9:6881".parse().unwrap(),
        "10.0.0.10:6881".parse().unwrap(),
    ];
    assert_eq!(dialled, want);
}

/// A tracker that floods the list with thousands of addresses no longer hides the peers
/// learned after it: the list makes room by forgetting addresses that failed.
#[test]
fn a_flooded_peer_list_still_takes_new_peers() {
    let (mut s, id, _) = leech_session(4, TWO_BLOCKS, |c| c.max_half_open = 0);
    let now = Instant::now();
    for chunk in 0..20u8 {
        let addrs: Vec<String> = (0..=255u8)
            .map(|i| format!("10.1.{chunk}.{i}:6881"))
            .collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        s.handle(
            now,
            Input::Announced {
                torrent: id,
                url: "http://tracker.example/announce".into(),
                result: Ok(announce_reply(&refs)),
            },
        );
    }
    let real: SocketAddr = "10.9.9.9:6881".parse().unwrap();
    s.add_peer(now, id, real);
    assert!(
        s.torrents[&id].candidates.iter().any(|(a, _)| *a == real),
        "the real peer was dropped from a full list"
    );
}

/// Blocks are slices of the read they came in, and a slice keeps that whole read buffer.
/// A peer padding each block with keep-alives (or a slow link bringing one block per read)
/// made each kept block hold many times its size.
#[test]
fn kept_blocks_do_not_pin_mostly_dead_reads() {
    const PIECES: u32 = 32;
    let (mut s, id, info_hash) = leech_session(PIECES, TWO_BLOCKS, |c| {
        c.initial_request_depth = 2 * PIECES as usize;
    });
    let now = Instant::now();
    let mut seed = accept_remote(&mut s, now, 1, info_hash, PIECES, &Message::HaveAll);
    let (asked, _) = drain(&mut s, &mut seed);
    // First blocks only: a piece stays partial, where kept blocks wait.
    let asked: Vec<Block> = asked.into_iter().filter(|b| b.offset == 0).collect();
    let piece_of = |b: Block| Message::Piece {
        piece: b.piece,
        offset: b.offset,
        data: Bytes::from(vec![CONTENT; b.length as usize]),
    };
    let pinned = |s: &Session, b: Block, read: &Bytes| {
        let kept = s.torrents[&id].in_flight().partial_pieces[&b.piece].blocks
            [(b.offset / BLOCK_LEN) as usize]
            .as_ref()
            .unwrap()
            .0
            .as_ptr() as usize;
        let start = read.as_ptr() as usize;
        (start..start + read.len()).contains(&kept)
    };
    // A block padded to a large read with keep-alives: copied out.
    let mut padded = crate::sim::remote::encode(&[piece_of(asked[0])])
        .unwrap()
        .to_vec();
    let keep_alives = (MIN_ZERO_COPY_READ * 2 - padded.len()) / 4;
    padded.resize(padded.len() + 4 * keep_alives, 0);
    let padded = Bytes::from(padded);
    seed.send_bytes(&mut s, now, padded.clone());
    assert!(!pinned(&s, asked[0], &padded), "a padded read is pinned");
    // A small read: copied out.
    let small = crate::sim::remote::encode(&[piece_of(asked[1])]).unwrap();
    seed.send_bytes(&mut s, now, small.clone());
    assert!(!pinned(&s, asked[1], &small), "a small read is pinned");
    // A large read of blocks: kept as it is.
    let dense: Vec<Message> = asked[2..].iter().map(|b| piece_of(*b)).collect();
    let dense = crate::sim::remote::encode(&dense).unwrap();
    assert!(dense.len() >= MIN_ZERO_COPY_READ, "{}", dense.len());
    seed.send_bytes(&mut s, now, dense.clone());
    assert!(pinned(&s, asked[2], &dense), "a dense read was copied");
}

/// Extension handshakes of up to 1 MiB were accepted, and parsed again on every one sent.
#[test]
fn extension_handshakes_are_bounded_in_size_and_number() {
    let (mut s, info_hash) = seed_session();
    let now = Instant::now();
    let hello = |s: &mut Session, host: u8| {
        let conn = s.accept(now, SocketAddr::from(([127, 0, 0, host], 6881)));
        let peer = RemotePeer::new(conn, info_hash, PeerId([host; 20]))
            .with_reserved(Reserved::NONE.with(Extension::ExtensionProtocol))
            .with_piece_count(3);
        peer.hello(s, now, &[]).unwrap();
        peer
    };
    let handshake = |len: usize| Message::Extended {
        id: 0,
        payload: crate::bencode::Bencode::dict()
            .with("v", "x".repeat(len).as_str())
            .encode()
            .into(),
    };
    let big = hello(&mut s, 2);
    let too_big = handshake(MAX_EXTENSION_HANDSHAKE_LEN);
    let Message::Extended { payload, .. } = &too_big else {
        unreachable!()
    };
    let len = payload.len();
    assert!(len > MAX_EXTENSION_HANDSHAKE_LEN);
    big.send(&mut s, now, &[too_big]).unwrap();
    let chatty = hello(&mut s, 3);
    let again = vec![handshake(10); MAX_EXTENSION_HANDSHAKES as usize + 1];
    chatty.send(&mut s, now, &again).unwrap();
    let closed = closes(&mut s);
    assert!(
        closed.contains(&(
            big.conn(),
            CloseReason::Protocol(ProtocolViolation::ExtensionHandshakeTooLarge { len })
        )),
        "{closed:?}"
    );
    assert!(
        closed.contains(&(
            chatty.conn(),
            CloseReason::Protocol(ProtocolViolation::TooManyExtensionHandshakes)
        )),
        "{closed:?}"
    );
}
