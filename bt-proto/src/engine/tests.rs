//! Regression tests of the engine found by the adapters.

use std::time::{Duration, Instant};

use bytes::Bytes;

use std::net::SocketAddr;

use super::*;
use crate::metainfo::Metainfo;
use crate::metainfo::create::TorrentBuilder;
use crate::picker::{BLOCK_LEN, Block};
use crate::sim::remote::RemotePeer;
use crate::tracker::{AnnounceEvent, AnnounceResponse, Peer as TrackerPeer, PeerAddr};
use crate::wire::{Extension, Message, Reserved};
use crate::{Bitfield, ConnId, PieceIndex};

/// A one-file torrent of `len` bytes, every one `byte`, in pieces of `piece_len`, announced
/// to `trackers` (one tier).
pub(super) fn torrent(len: u64, piece_len: u32, byte: u8, trackers: &[&str]) -> Metainfo {
    let mut builder = TorrentBuilder::single_file("f", len).piece_length(piece_len);
    if !trackers.is_empty() {
        builder = builder.tracker_tier(trackers.iter().copied());
    }
    let plan = builder.plan().unwrap();
    let mut h = plan.hasher();
    h.update(&vec![byte; len as usize]);
    Metainfo::from_bytes(&plan.build(&h.finish().unwrap()).unwrap()).unwrap()
}

/// A session seeding a torrent of three pieces (the last short), without trackers.
pub(super) fn seed_session() -> (Session, InfoHash) {
    seed_session_with(Config::new(crate::PeerId([1; 20]), 6881, 1), 7)
}

/// A session with `config` seeding a torrent like [`seed_session`]'s, of bytes `byte`.
pub(super) fn seed_session_with(config: Config, byte: u8) -> (Session, InfoHash) {
    let mut s = Session::new(config);
    let info_hash = add_seed_torrent(&mut s, byte);
    (s, info_hash)
}

/// Adds a seeding torrent of three pieces, every byte `byte`, to `s`.
pub(super) fn add_seed_torrent(s: &mut Session, byte: u8) -> InfoHash {
    let meta = torrent(40_000, 16384, byte, &[]);
    let info_hash = meta.info_hash();
    let opts = AddTorrent {
        have: Some(Bitfield::full(meta.piece_count())),
        ..Default::default()
    };
    s.add_torrent(Instant::now(), meta, opts);
    info_hash
}

#[test]
fn have_all_comes_before_the_extension_handshake() {
    let (mut s, info_hash) = seed_session();
    let now = Instant::now();
    let conn = s.accept(now, "127.0.0.1:5000".parse().unwrap());
    let reserved = Reserved::NONE
        .with(Extension::Fast)
        .with(Extension::ExtensionProtocol);
    let mut peer = RemotePeer::new(conn, info_hash, crate::PeerId([2; 20]))
        .with_reserved(reserved)
        .with_piece_count(3);
    peer.hello(&mut s, now, &[]).unwrap();
    peer.drain(&mut s);
    let msgs = peer.messages().unwrap();
    assert!(peer.their_handshake().is_some(), "no handshake sent");
    assert_eq!(msgs.first(), Some(&Message::HaveAll), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| matches!(m, Message::Extended { id: 0, .. })),
        "{msgs:?}"
    );
}

pub(super) fn connects(s: &mut Session) -> Vec<ConnId> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        if let Output::Connect { conn, .. } = o {
            out.push(conn);
        }
    }
    out
}

#[test]
fn add_peer_again_retries_at_once() {
    let meta = torrent(40_000, 16384, 7, &[]);
    let mut s = Session::new(Config::new(crate::PeerId([1; 20]), 6881, 1));
    let now = Instant::now();
    let id = s.add_torrent(now, meta, AddTorrent::default());
    let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    s.add_peer(now, id, addr);
    let first = connects(&mut s);
    assert_eq!(first.len(), 1);
    s.handle(now, Input::Closed { conn: first[0] });
    // The back-off would wait; the user asking again does not.
    s.handle_timeout(now);
    assert!(connects(&mut s).is_empty());
    s.add_peer(now, id, addr);
    assert_eq!(connects(&mut s).len(), 1);
}

#[test]
fn a_torrent_added_paused_announces_and_started_later_does_not_announce_twice() {
    let meta = torrent(20_000, 16384, 1, &["http://tracker.example/announce"]);
    let mut s = Session::new(Config::new(crate::PeerId([2; 20]), 6881, 1));
    let now = Instant::now();
    let opts = AddTorrent {
        state: TorrentState::Paused,
        ..Default::default()
    };
    let id = s.add_torrent(now, meta, opts);
    let announces = |s: &mut Session| {
        let mut events = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Announce { request, .. } = o {
                events.push(request.event);
            }
        }
        events
    };
    assert_eq!(
        announces(&mut s),
        vec![Some(AnnounceEvent::Started)],
        "paused torrents are in the swarm: they announce"
    );
    s.set_state(now, id, TorrentState::Started);
    assert_eq!(announces(&mut s), vec![], "the answer is still awaited");
}

#[test]
fn a_torrent_without_trackers_sets_no_past_deadline() {
    let (mut s, _) = seed_session();
    let start = Instant::now();
    let later = start + std::time::Duration::from_secs(5);
    s.handle_timeout(later);
    while s.poll_output().is_some() {}
    // Only the choke round remains, and it lies in the future.
    assert!(s.poll_timeout().is_some_and(|t| t > later));
}

/// aria2 sends a BITFIELD instead of several HAVEs mid-connection; dropping it for that cut
/// every aria2 download short.
#[test]
fn a_late_bitfield_adds_pieces_like_haves() {
    let (mut s, info_hash) = seed_session();
    let id = s.torrent_ids()[0];
    let now = Instant::now();
    let conn = s.accept(now, "127.0.0.1:5000".parse().unwrap());
    let peer = RemotePeer::new(conn, info_hash, crate::PeerId([2; 20]))
        .with_reserved(Reserved::NONE.with(Extension::Fast));
    let send = |s: &mut Session, msg: Message| peer.send(s, now, &[msg]).unwrap();
    peer.hello(&mut s, now, &[]).unwrap();
    send(&mut s, Message::HaveNone);
    let pieces = |s: &Session| s.peers(id, now).first().map(|p| p.pieces);
    assert_eq!(pieces(&s), Some(0));
    // Pieces 0 and 2 of 3.
    send(&mut s, Message::Bitfield(vec![0b1010_0000].into()));
    assert_eq!(
        pieces(&s),
        Some(2),
        "the peer was dropped or the bitfield ignored"
    );
    // Piece 0 only: the bits left clear do not take piece 2 away.
    send(&mut s, Message::Bitfield(vec![0b1000_0000].into()));
    assert_eq!(pieces(&s), Some(2));
}

/// The swarm bench stalled for a minute: in endgame a leecher cancels, at every other peer,
/// each block that one peer delivered, but a deep pipeline still has those blocks on the
/// wire. Each was counted as an unrequested block (a protocol slip), so past `MAX_SLIPS`
/// the leecher closed good peers, the seed among them, and redialled them only after
/// `RECONNECT_AFTER_CLOSE` (a minute then). Blocks we cancelled are not slips; blocks never
/// asked for are.
#[test]
fn cancelled_blocks_still_in_flight_do_not_close_the_peer() {
    const BLOCKS: u32 = 128;
    // The whole piece in one pipeline, as a fast peer's measured rate would allow.
    let (mut s, id, info_hash) = leech_session(1, BLOCKS * BLOCK_LEN, |c| {
        c.initial_request_depth = BLOCKS as usize
    });
    let now = Instant::now();
    // Two seeds, A then B, both unchoking us: A is asked for every block, then B for every
    // block again (endgame).
    let mut a = accept_remote(&mut s, now, 1, info_hash, 1, &Message::HaveAll);
    let (asked_a, _) = drain(&mut s, &mut a);
    assert_eq!(asked_a.len(), BLOCKS as usize);
    let mut b = accept_remote(&mut s, now, 2, info_hash, 1, &Message::HaveAll);
    let (asked_b, _) = drain(&mut s, &mut b);
    assert_eq!(asked_b.len(), BLOCKS as usize, "endgame asks B too");
    let block = |i: u32| Block {
        piece: PieceIndex(0),
        offset: i * BLOCK_LEN,
        length: BLOCK_LEN,
    };
    // A delivers all but the last block; B is told to cancel each, but had sent them already.
    let late = BLOCKS - 1;
    assert!(late > MAX_SLIPS);
    for i in 0..late {
        deliver(&mut s, now, &a, block(i));
    }
    for i in 0..late {
        deliver(&mut s, now, &b, block(i));
    }
    let connected = |s: &Session, c: ConnId| s.peers(id, now).iter().any(|p| p.conn == c);
    assert!(
        connected(&s, b.conn()),
        "B was closed for blocks we had cancelled"
    );
    assert!(connected(&s, a.conn()));
    // The same blocks again were asked of nobody: those are slips, and a flood of them closes.
    for i in 0..=MAX_SLIPS {
        deliver(&mut s, now, &b, block(i));
    }
    assert!(
        !connected(&s, b.conn()),
        "unrequested blocks are still slips"
    );
}

/// A piece length of two blocks, so a piece can be left half done.
pub(super) const TWO_BLOCKS: u32 = 2 * BLOCK_LEN;

/// Every byte of [`leech_session`]'s content.
pub(super) const CONTENT: u8 = 5;

/// `peer` sends block `b` of the content.
pub(super) fn deliver(s: &mut Session, now: Instant, peer: &RemotePeer, b: Block) {
    let msg = Message::Piece {
        piece: b.piece,
        offset: b.offset,
        data: Bytes::from(vec![CONTENT; b.length as usize]),
    };
    peer.send(s, now, &[msg]).unwrap();
}

/// A session downloading a torrent of `pieces` pieces of `piece_len` bytes, all [`CONTENT`],
/// with `tune` applied to the configuration.
pub(super) fn leech_session(
    pieces: u32,
    piece_len: u32,
    tune: impl FnOnce(&mut Config),
) -> (Session, TorrentId, InfoHash) {
    let meta = torrent(
        u64::from(pieces) * u64::from(piece_len),
        piece_len,
        CONTENT,
        &[],
    );
    let info_hash = meta.info_hash();
    let mut config = Config::new(crate::PeerId([1; 20]), 6881, 1);
    tune(&mut config);
    let mut s = Session::new(config);
    let id = s.add_torrent(Instant::now(), meta, AddTorrent::default());
    (s, id, info_hash)
}

/// The peer at the far end of `conn`, with the fast extension, for a torrent of `pieces`
/// pieces; its id is told by the connection's number, as peers connected at once differ.
pub(super) fn remote(conn: ConnId, info_hash: InfoHash, pieces: u32) -> RemotePeer {
    let mut peer_id = [9; 20];
    peer_id[..8].copy_from_slice(&conn.0.to_be_bytes());
    RemotePeer::new(conn, info_hash, crate::PeerId(peer_id))
        .with_reserved(Reserved::NONE.with(Extension::Fast))
        .with_piece_count(pieces)
}

/// Steps virtual time from deadline to deadline from `from` until the session dials again;
/// the wait and the new connection. Gives up after two hours.
pub(super) fn time_to_redial(s: &mut Session, from: Instant) -> Option<(Duration, ConnId)> {
    let mut t = from;
    for _ in 0..100_000 {
        let next = s.poll_timeout()?;
        if next > from + Duration::from_secs(2 * 3600) {
            return None;
        }
        t = t.max(next);
        s.handle_timeout(t);
        if let Some(conn) = connects(s).first() {
            return Some((t - from, *conn));
        }
    }
    None
}

/// A tracker's reply listing `addrs`, with a half-hour interval and nothing else.
pub(super) fn announce_reply(addrs: &[&str]) -> AnnounceResponse {
    AnnounceResponse {
        interval: Duration::from_secs(1800),
        min_interval: None,
        warning: None,
        tracker_id: None,
        complete: None,
        incomplete: None,
        peers: addrs
            .iter()
            .map(|a| TrackerPeer {
                addr: PeerAddr::Ip(a.parse().unwrap()),
                peer_id: None,
            })
            .collect(),
    }
}

/// The interop stall: a leecher at 255 of 256 pieces whose only peer closed sat for a
/// minute with no peer at all (`RECONNECT_AFTER_CLOSE` was a flat 60 s).
#[test]
fn a_lone_peer_whose_connection_closed_is_redialled_within_seconds() {
    let (mut s, id, info_hash) = leech_session(4, TWO_BLOCKS, |_| {});
    let start = Instant::now();
    let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    s.add_peer(start, id, addr);
    let conn = connects(&mut s)[0];
    s.handle(start, Input::Connected { conn });
    let hello = [Message::HaveAll];
    remote(conn, info_hash, 4)
        .hello(&mut s, start, &hello)
        .unwrap();
    assert_eq!(s.stats(id, std::time::Instant::now()).unwrap().peers, 1);
    let closed_at = start + Duration::from_secs(3);
    s.handle(closed_at, Input::Closed { conn });
    assert_eq!(s.stats(id, std::time::Instant::now()).unwrap().peers, 0);
    let (wait, _) = time_to_redial(&mut s, closed_at).expect("never redialled");
    assert!(
        wait <= RECONNECT_AFTER_CLOSE,
        "redialled after {wait:?} with no other peer"
    );
    assert!(wait >= RECONNECT_AFTER_CLOSE, "redialled at once: {wait:?}");
    assert!(RECONNECT_AFTER_CLOSE <= Duration::from_secs(10));
}

/// A peer that drops every connection right after the handshake is tried less and less
/// often; one whose connection worked for a while is redialled soon again; one we closed
/// for a protocol error waits longer from the start.
#[test]
fn a_peer_that_keeps_closing_is_backed_off() {
    let (mut s, id, info_hash) = leech_session(4, TWO_BLOCKS, |_| {});
    let mut now = Instant::now();
    let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    s.add_peer(now, id, addr);
    let mut conn = connects(&mut s)[0];
    let hello = [Message::HaveAll];
    let mut waits = Vec::new();
    for _ in 0..7 {
        s.handle(now, Input::Connected { conn });
        remote(conn, info_hash, 4)
            .hello(&mut s, now, &hello)
            .unwrap();
        s.handle(now, Input::Closed { conn });
        let (wait, next) = time_to_redial(&mut s, now).expect("never redialled");
        waits.push(wait);
        now += wait;
        conn = next;
    }
    for pair in waits.windows(2) {
        assert!(pair[1] >= pair[0] * 2, "no back-off: {waits:?}");
    }
    assert!(waits[0] <= RECONNECT_AFTER_CLOSE, "{waits:?}");
    assert!(
        *waits.last().unwrap() >= Duration::from_secs(5 * 60),
        "{waits:?}"
    );

    // This time the connection stays up: it worked, so its close is forgiven.
    s.handle(now, Input::Connected { conn });
    remote(conn, info_hash, 4)
        .hello(&mut s, now, &hello)
        .unwrap();
    now += CONNECTION_PROVEN_AFTER;
    s.handle(now, Input::Closed { conn });
    let (wait, next) = time_to_redial(&mut s, now).expect("never redialled");
    assert!(wait <= RECONNECT_AFTER_CLOSE, "not forgiven: {wait:?}");
    now += wait;

    // Back off again, then a short connection that delivers a block is forgiven too.
    let mut conn = next;
    for _ in 0..3 {
        s.handle(now, Input::Connected { conn });
        remote(conn, info_hash, 4)
            .hello(&mut s, now, &hello)
            .unwrap();
        s.handle(now, Input::Closed { conn });
        let (wait, next) = time_to_redial(&mut s, now).expect("never redialled");
        now += wait;
        conn = next;
    }
    s.handle(now, Input::Connected { conn });
    let mut peer = remote(conn, info_hash, 4);
    peer.hello(&mut s, now, &hello).unwrap();
    let _ = drain(&mut s, &mut peer);
    peer.send(&mut s, now, &[Message::Unchoke]).unwrap();
    let (asked, _) = drain(&mut s, &mut peer);
    deliver(
        &mut s,
        now,
        &peer,
        *asked.first().expect("nothing requested"),
    );
    now += Duration::from_secs(1);
    s.handle(now, Input::Closed { conn });
    let (wait, _) = time_to_redial(&mut s, now).expect("never redialled");
    assert!(wait <= RECONNECT_AFTER_CLOSE, "not forgiven: {wait:?}");

    // A second peer breaks the protocol (HAVE ALL twice): we close it and wait longer than
    // after a first plain close.
    let rude: SocketAddr = "127.0.0.2:5001".parse().unwrap();
    s.add_peer(now, id, rude);
    let conn = connects(&mut s)[0];
    s.handle(now, Input::Connected { conn });
    let rude = remote(conn, info_hash, 4);
    rude.hello(&mut s, now, &hello).unwrap();
    rude.send(&mut s, now, &hello).unwrap();
    assert_eq!(
        s.stats(id, std::time::Instant::now()).unwrap().peers,
        0,
        "the protocol error did not close"
    );
    let (wait, _) = time_to_redial(&mut s, now).expect("never redialled");
    assert!(wait >= RECONNECT_AFTER_CLOSE * 4, "{wait:?}");
    assert!(wait <= RECONNECT_AFTER_CLOSE_MAX, "{wait:?}");
}

/// Accepts a connection from host 127.0.0.`host` (one per peer: the engine allows one
/// connection per host and torrent) whose peer has the fast extension, sends `first` and
/// unchokes us.
pub(super) fn accept_remote(
    s: &mut Session,
    now: Instant,
    host: u8,
    info_hash: InfoHash,
    pieces: u32,
    first: &Message,
) -> RemotePeer {
    let conn = s.accept(now, SocketAddr::from(([127, 0, 0, host], 6881)));
    let peer = remote(conn, info_hash, pieces);
    peer.hello(s, now, std::slice::from_ref(first)).unwrap();
    peer.send(s, now, &[Message::Unchoke]).unwrap();
    peer
}

/// Drains the session's output: requests sent to `peer` (a malformed message fails the
/// test), and the pieces handed over to verify and store.
pub(super) fn drain(s: &mut Session, peer: &mut RemotePeer) -> (Vec<Block>, Vec<PieceIndex>) {
    let stored = peer
        .drain(s)
        .into_iter()
        .filter_map(|o| match o {
            Output::VerifyAndStore { piece, .. } => Some(piece),
            _ => None,
        })
        .collect();
    let requests = peer
        .messages()
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            Message::Request(b) => Some(b),
            _ => None,
        })
        .collect();
    (requests, stored)
}

/// `peer` answers every request and every piece passes, until nothing more is asked.
pub(super) fn serve_all(s: &mut Session, now: Instant, id: TorrentId, peer: &mut RemotePeer) {
    loop {
        let (requests, stored) = drain(s, peer);
        if requests.is_empty() && stored.is_empty() {
            return;
        }
        for piece in stored {
            s.handle(
                now,
                Input::PieceStored {
                    torrent: id,
                    piece,
                    result: Ok(true),
                },
            );
        }
        for b in requests {
            deliver(s, now, peer, b);
        }
    }
}

/// Pieces begun with a peer that then left count against the in-flight memory limit; with
/// the limit full of them, the peers still there were asked for nothing, for good.
#[test]
fn pieces_started_with_a_peer_that_left_do_not_block_the_others() {
    const PIECES: u32 = 8;
    const LIMIT: u32 = 4;
    let (mut s, id, info_hash) = leech_session(PIECES, TWO_BLOCKS, |c| {
        c.max_inflight_bytes = u64::from(LIMIT * TWO_BLOCKS);
    });
    let now = Instant::now();
    // A has pieces 0..4: the leecher starts all four (the limit) and gets half of each.
    let mut a = accept_remote(
        &mut s,
        now,
        1,
        info_hash,
        PIECES,
        &Message::Bitfield(vec![0b1111_0000].into()),
    );
    let (asked, _) = drain(&mut s, &mut a);
    assert_eq!(asked.len(), (LIMIT * 2) as usize, "{asked:?}");
    for b in asked.iter().filter(|b| b.offset == 0) {
        deliver(&mut s, now, &a, *b);
    }
    s.handle(now, Input::Closed { conn: a.conn() });
    // B has every other piece: it must be asked for them all.
    let mut b = accept_remote(
        &mut s,
        now,
        2,
        info_hash,
        PIECES,
        &Message::Bitfield(vec![0b0000_1111].into()),
    );
    serve_all(&mut s, now, id, &mut b);
    let have = s.bitfield(id).unwrap().clone();
    let got: Vec<u32> = have.iter_ones().map(|p| p.0).collect();
    assert_eq!(got, vec![4, 5, 6, 7], "B's pieces were not all fetched");
    // A seed comes: the pieces given up are fetched whole, and memory stayed bounded.
    assert!(s.torrents[&id].in_flight().partial_pieces.len() <= LIMIT as usize);
    let mut c = accept_remote(&mut s, now, 3, info_hash, PIECES, &Message::HaveAll);
    serve_all(&mut s, now, id, &mut c);
    assert!(
        s.stats(id, std::time::Instant::now()).unwrap().complete,
        "{}",
        s.debug_state(id, now).unwrap()
    );
    assert!(s.torrents[&id].in_flight().partial_pieces.is_empty());
}

/// A leecher whose every address failed asks the tracker again once the minimum interval
/// allows, not after the half hour the interval says; a seed with no peers waits for the
/// interval, as it waits for leechers to come.
#[test]
fn a_leecher_out_of_peers_announces_again_early() {
    let interval = Duration::from_secs(1800);
    for complete in [false, true] {
        let meta = torrent(40_000, 16384, 7, &["http://tracker.example/announce"]);
        let have = complete.then(|| Bitfield::full(meta.piece_count()));
        let mut s = Session::new(Config::new(crate::PeerId([1; 20]), 6881, 1));
        let start = Instant::now();
        let opts = AddTorrent {
            have,
            ..Default::default()
        };
        let id = s.add_torrent(start, meta, opts);
        let url = std::iter::from_fn(|| s.poll_output())
            .find_map(|o| match o {
                Output::Announce { url, .. } => Some(url),
                _ => None,
            })
            .unwrap();
        let reply = announce_reply(&["10.1.2.3:5000"]);
        s.handle(
            start,
            Input::Announced {
                torrent: id,
                url,
                result: Ok(reply),
            },
        );
        // Every dial fails, until the address is forgotten; then the next announce.
        let mut now = start;
        let announced = loop {
            let mut announced = false;
            while let Some(o) = s.poll_output() {
                match o {
                    Output::Connect { conn, .. } => s.handle(now, Input::Closed { conn }),
                    Output::Announce { .. } => announced = true,
                    _ => {}
                }
            }
            if announced {
                break now - start;
            }
            now = s.poll_timeout().unwrap().max(now);
            assert!(now - start <= 2 * interval, "no announce");
            s.handle_timeout(now);
        };
        if complete {
            assert_eq!(announced, interval, "a seed announced early");
        } else {
            assert!(announced >= STARVED_REANNOUNCE, "too early: {announced:?}");
            assert!(
                announced <= 2 * STARVED_REANNOUNCE,
                "too late: {announced:?}"
            );
        }
    }
}

/// A peer that keeps closing on us without delivering is backed off for ever longer. When
/// it is all the torrent has and the tracker still lists it, the torrent dials it at each
/// announce instead of waiting out a back-off of many minutes.
#[test]
fn a_starved_leecher_dials_a_backed_off_peer_the_tracker_still_lists() {
    let meta = torrent(40_000, 16384, 7, &["http://tracker.example/announce"]);
    let (pieces, info_hash) = (meta.piece_count(), meta.info_hash());
    let mut s = Session::new(Config::new(crate::PeerId([1; 20]), 6881, 1));
    let start = Instant::now();
    let id = s.add_torrent(start, meta, AddTorrent::default());
    let (mut dials, mut announces) = (Vec::new(), Vec::new());
    let mut now = start;
    while now - start < Duration::from_secs(2 * 1800) {
        while let Some(o) = s.poll_output() {
            match o {
                Output::Connect { conn, .. } => {
                    dials.push(now - start);
                    s.handle(now, Input::Connected { conn });
                    remote(conn, info_hash, pieces)
                        .hello(&mut s, now, &[Message::HaveAll])
                        .unwrap();
                    s.handle(now, Input::Closed { conn });
                }
                Output::Announce { url, .. } => {
                    announces.push(now - start);
                    let result = Ok(announce_reply(&["10.1.2.3:5000"]));
                    s.handle(
                        now,
                        Input::Announced {
                            torrent: id,
                            url,
                            result,
                        },
                    );
                }
                _ => {}
            }
        }
        now = s.poll_timeout().unwrap().max(now);
        s.handle_timeout(now);
    }
    let late: Vec<_> = announces
        .iter()
        .filter(|at| **at > Duration::from_secs(900))
        .collect();
    assert!(late.len() >= 2, "announces {announces:?}");
    for at in late {
        assert!(
            dials.contains(at),
            "an announce at {at:?} without a dial; dials {dials:?}"
        );
    }
}

/// Torrents beyond their tracker's announce slots send their first announce as earlier ones
/// finish, in the order they were added; until then no timer sends it.
#[test]
fn announces_beyond_the_slots_wait_for_one_to_finish() {
    let mut s = Session::new(Config::new(crate::PeerId([1; 20]), 6881, 1));
    let now = Instant::now();
    let ids: Vec<TorrentId> = (0..MAX_ANNOUNCES_PER_TRACKER as u64 + 2)
        .map(|i| {
            let meta = torrent(1000 + i, 16384, 7, &["http://tracker.example/announce"]);
            s.add_torrent(now, meta, AddTorrent::default())
        })
        .collect();
    let announced = |s: &mut Session| -> Vec<(TorrentId, String)> {
        std::iter::from_fn(|| s.poll_output())
            .filter_map(|o| match o {
                Output::Announce { torrent, url, .. } => Some((torrent, url)),
                _ => None,
            })
            .collect()
    };
    let first = announced(&mut s);
    assert_eq!(first.len(), MAX_ANNOUNCES_PER_TRACKER);
    s.handle_timeout(now);
    assert!(announced(&mut s).is_empty(), "a waiting torrent announced");
    let (torrent, url) = first[0].clone();
    let result = Err(crate::tracker::AnnounceError::Timeout(Duration::from_secs(
        30,
    )));
    s.handle(
        now,
        Input::Announced {
            torrent,
            url,
            result,
        },
    );
    let next: Vec<TorrentId> = announced(&mut s).into_iter().map(|(t, _)| t).collect();
    assert_eq!(next, vec![ids[MAX_ANNOUNCES_PER_TRACKER]]);
}

/// A seed without peers runs no choke rounds (a seedbox's thousands of idle torrents would
/// otherwise each wake the session every round interval); its first peer brings them back,
/// and they stop again when the last one leaves.
#[test]
fn a_seeds_choke_rounds_stop_without_peers_and_come_back_with_one() {
    let (mut s, info_hash) = seed_session();
    let id = s.torrent_by_info_hash(&info_hash).unwrap();
    let round = Timer::Torrent(id, TorrentTimer::ChokeRound);
    assert_eq!(
        s.timers.deadline(round),
        None,
        "rounds with nobody to choke"
    );
    let now = Instant::now();
    let mut peer = accept_remote(&mut s, now, 2, info_hash, 3, &Message::Interested);
    let next = s.timers.deadline(round).expect("no round for the new peer");
    s.handle_timeout(next.max(now));
    peer.drain(&mut s);
    assert!(peer.messages().unwrap().contains(&Message::Unchoke));
    let next = s.timers.deadline(round).expect("rounds go on with a peer");
    s.handle(next, Input::Closed { conn: peer.conn() });
    s.handle_timeout(next);
    assert_eq!(
        s.timers.deadline(round),
        None,
        "rounds after the last peer left"
    );
}

/// A leecher keeps its rounds without peers: they are what redials when it is stuck.
#[test]
fn a_leechers_choke_rounds_go_on_without_peers() {
    let (mut s, id, _) = leech_session(4, 16 * 1024, |_| {});
    let round = Timer::Torrent(id, TorrentTimer::ChokeRound);
    let first = s.timers.deadline(round).expect("a leecher's first round");
    s.handle_timeout(first);
    assert!(s.timers.deadline(round).is_some_and(|t| t > first));
}

/// A seed that dialled another seed (both close the connection, having nothing to trade)
/// does not dial it again: in the simulator's swarm of a thousand nodes, seeds meeting
/// seeds made much of the connections closed right after their handshake.
#[test]
fn a_seed_does_not_redial_a_seed() {
    let (mut s, info_hash) = seed_session();
    let id = s.torrent_by_info_hash(&info_hash).unwrap();
    let start = Instant::now();
    let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    s.add_peer(start, id, addr);
    let conn = connects(&mut s)[0];
    s.handle(start, Input::Connected { conn });
    let pieces = s.torrents.get(&id).unwrap().piece_count();
    let peer = remote(conn, info_hash, pieces);
    peer.hello(&mut s, start, &[Message::HaveAll]).unwrap();
    assert!(s.peers.get(conn).is_none(), "two seeds stayed connected");
    assert_eq!(
        time_to_redial(&mut s, start),
        None,
        "a seed redialled a seed"
    );
}
