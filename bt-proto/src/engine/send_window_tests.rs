//! The send watermark seen from a peer: requests held while the transport has not taken what
//! was handed to it, served as it reports writes, withdrawn by a CANCEL while held, and
//! never held when the adapter does not report writes.

use std::time::Instant;

use bytes::Bytes;

use super::tests::{CONTENT, remote, torrent};
use super::*;
use crate::picker::{BLOCK_LEN, Block};
use crate::sim::remote::RemotePeer;
use crate::wire::Message;
use crate::{Bitfield, PieceIndex};

/// Blocks of the seeded torrent: one piece of sixteen.
const BLOCKS: u32 = 16;

/// A session seeding one piece of [`BLOCKS`] blocks, and a fast-extension peer it has
/// unchoked, the handshake's bytes drained (and, when `report`, reported written).
fn seeding(report: bool) -> (Session, RemotePeer, Instant, TorrentId) {
    let now = Instant::now();
    let meta = torrent(
        u64::from(BLOCKS * BLOCK_LEN),
        BLOCKS * BLOCK_LEN,
        CONTENT,
        &[],
    );
    let info_hash = meta.info_hash();
    let mut s = Session::new(Config::new(crate::PeerId([1; 20]), 6881, 1));
    let opts = AddTorrent {
        have: Some(Bitfield::full(1)),
        ..Default::default()
    };
    let id = s.add_torrent(now, meta, opts);
    let conn = s.accept(now, "127.0.0.1:5000".parse().unwrap());
    let mut peer = remote(conn, info_hash, 1);
    peer.hello(&mut s, now, &[Message::HaveNone, Message::Interested])
        .unwrap();
    peer.drain(&mut s);
    let msgs = peer.messages().unwrap();
    assert!(msgs.contains(&Message::Unchoke), "{msgs:?}");
    if report {
        report_all(&mut s, &peer, now, 0);
    }
    (s, peer, now, id)
}

fn block(i: u32) -> Block {
    Block {
        piece: PieceIndex(0),
        offset: i * BLOCK_LEN,
        length: BLOCK_LEN,
    }
}

/// The blocks the session asks to read, from `outputs`.
fn reads(outputs: &[Output]) -> Vec<Block> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::ReadBlock { block, .. } => Some(*block),
            _ => None,
        })
        .collect()
}

/// Answers the reads in `outputs` with the blocks' bytes; what the session then does.
fn answer(s: &mut Session, peer: &mut RemotePeer, now: Instant, outputs: &[Output]) -> Vec<Output> {
    for o in outputs {
        if let Output::ReadBlock {
            torrent,
            conn,
            block,
        } = o
        {
            let data = Ok(Bytes::from(vec![CONTENT; block.length as usize]));
            let input = Input::BlockRead {
                torrent: *torrent,
                conn: *conn,
                block: *block,
                data,
            };
            s.handle(now, input);
        }
    }
    peer.drain(s)
}

/// The peer's transport took everything the session sent it so far (after `before`).
fn report_all(s: &mut Session, peer: &RemotePeer, now: Instant, before: usize) -> usize {
    let total = peer.bytes_received();
    let conn = peer.conn();
    s.handle(
        now,
        Input::Written {
            conn,
            bytes: total - before,
        },
    );
    total
}

#[test]
fn requests_beyond_the_watermark_wait_for_writes_and_a_cancel_removes_them() {
    let (mut s, mut peer, now, _) = seeding(true);
    let mut written = peer.bytes_received();
    let requests: Vec<Message> = (0..8).map(|i| Message::Request(block(i))).collect();
    peer.send(&mut s, now, &requests).unwrap();
    let out = peer.drain(&mut s);
    let first = reads(&out);
    let floor = (MIN_SEND_WATERMARK / u64::from(BLOCK_LEN)) as usize;
    assert_eq!(first.len(), floor, "the floor's worth is read: {out:?}");
    // The blocks go to the transport, which does not take them yet: nothing more is read.
    let out = answer(&mut s, &mut peer, now, &out);
    assert!(reads(&out).is_empty(), "{out:?}");
    // A held request withdrawn is rejected at once (BEP 6) and never read.
    peer.send(&mut s, now, &[Message::Cancel(block(5))])
        .unwrap();
    let out = peer.drain(&mut s);
    assert!(reads(&out).is_empty(), "{out:?}");
    let msgs = peer.messages().unwrap();
    assert!(msgs.contains(&Message::RejectRequest(block(5))), "{msgs:?}");
    // Each write the transport reports lets the next requests through, until all are served.
    let mut served = first;
    let mut out = Vec::new();
    for _ in 0..10 {
        written = report_all(&mut s, &peer, now, written);
        out = peer.drain(&mut s);
        let more = reads(&out);
        if more.is_empty() {
            break;
        }
        served.extend(more);
        out = answer(&mut s, &mut peer, now, &out);
    }
    assert!(reads(&out).is_empty());
    served.sort_by_key(|b| b.offset);
    let expected: Vec<Block> = (0..8).filter(|i| *i != 5).map(block).collect();
    assert_eq!(served, expected);
}

#[test]
fn without_write_reports_nothing_is_held() {
    let (mut s, mut peer, now, _) = seeding(false);
    let requests: Vec<Message> = (0..8).map(|i| Message::Request(block(i))).collect();
    peer.send(&mut s, now, &requests).unwrap();
    let out = peer.drain(&mut s);
    assert_eq!(reads(&out).len(), 8, "{out:?}");
}

#[test]
fn a_cancelled_read_makes_room_for_a_held_request() {
    let (mut s, mut peer, now, _) = seeding(true);
    let requests: Vec<Message> = (0..4).map(|i| Message::Request(block(i))).collect();
    peer.send(&mut s, now, &requests).unwrap();
    let out = peer.drain(&mut s);
    assert_eq!(reads(&out), vec![block(0), block(1)]);
    // Block 0 is withdrawn while being read: block 2 takes its place, with no write reported.
    peer.send(&mut s, now, &[Message::Cancel(block(0))])
        .unwrap();
    let after = peer.drain(&mut s);
    assert_eq!(reads(&after), vec![block(2)]);
    // The cancelled read returns and is dropped: nothing is sent for it.
    let out = answer(&mut s, &mut peer, now, &out);
    assert!(reads(&out).is_empty());
    let pieces: Vec<u32> = peer
        .messages()
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            Message::Piece { offset, .. } => Some(*offset / BLOCK_LEN),
            _ => None,
        })
        .collect();
    assert_eq!(pieces, vec![1]);
}

#[test]
fn the_watermark_grows_with_what_the_transport_takes() {
    let (mut s, mut peer, now, _) = seeding(true);
    // A transport taking a megabyte at once (a fast link): the watermark follows it.
    s.handle(
        now,
        Input::Written {
            conn: peer.conn(),
            bytes: 1 << 20,
        },
    );
    let requests: Vec<Message> = (0..8).map(|i| Message::Request(block(i))).collect();
    peer.send(&mut s, now, &requests).unwrap();
    let out = peer.drain(&mut s);
    assert_eq!(reads(&out).len(), 8, "{out:?}");
}

/// Serves every request left, the transport taking what was sent (of which `written` bytes
/// were reported); the blocks read.
fn serve_all(
    s: &mut Session,
    peer: &mut RemotePeer,
    now: Instant,
    out: Vec<Output>,
    mut written: usize,
) -> Vec<Block> {
    let mut served = reads(&out);
    let mut out = answer(s, peer, now, &out);
    for _ in 0..BLOCKS {
        written = report_all(s, peer, now, written);
        out.extend(peer.drain(s));
        let more = reads(&out);
        if more.is_empty() {
            break;
        }
        served.extend(more);
        out = answer(s, peer, now, &out);
    }
    served.sort_by_key(|b| b.offset);
    served
}

#[test]
fn a_choke_serves_what_a_fast_peer_was_promised_and_a_pause_drops_it() {
    let (mut s, mut peer, now, id) = seeding(true);
    let written = peer.bytes_received();
    let requests: Vec<Message> = (0..6).map(|i| Message::Request(block(i))).collect();
    peer.send(&mut s, now, &requests).unwrap();
    let out = peer.drain(&mut s);
    assert_eq!(reads(&out).len(), 2);
    s.set_choking(now, peer.conn(), true);
    // What it asks once choked is rejected; what it asked before is served.
    peer.send(&mut s, now, &[Message::Request(block(7))])
        .unwrap();
    let mut out = out;
    out.extend(peer.drain(&mut s));
    let msgs = peer.messages().unwrap();
    assert!(msgs.contains(&Message::Choke), "{msgs:?}");
    assert_eq!(
        msgs.iter()
            .filter(|m| matches!(m, Message::RejectRequest(_)))
            .count(),
        1
    );
    assert!(msgs.contains(&Message::RejectRequest(block(7))), "{msgs:?}");
    let served = serve_all(&mut s, &mut peer, now, out, written);
    assert_eq!(served, (0..6).map(block).collect::<Vec<_>>());

    // Unchoked again, it asks for more; a pause rejects all of it, read or not.
    s.set_choking(now, peer.conn(), false);
    let requests: Vec<Message> = (8..12).map(|i| Message::Request(block(i))).collect();
    peer.send(&mut s, now, &requests).unwrap();
    let out = peer.drain(&mut s);
    assert!(!reads(&out).is_empty(), "{out:?}");
    peer.messages().unwrap();
    s.set_state(now, id, TorrentState::Paused);
    let after = answer(&mut s, &mut peer, now, &out);
    assert!(reads(&after).is_empty());
    let msgs = peer.messages().unwrap();
    let rejected = msgs
        .iter()
        .filter(|m| matches!(m, Message::RejectRequest(_)))
        .count();
    assert_eq!(rejected, 4, "{msgs:?}");
    assert!(
        !msgs.iter().any(|m| matches!(m, Message::Piece { .. })),
        "{msgs:?}"
    );
}

#[test]
fn a_choke_drops_what_a_peer_without_bep_6_asked() {
    let (mut s, mut peer, now, _) = seeding(true);
    let written = peer.bytes_received();
    peer.send(
        &mut s,
        now,
        &(0..6)
            .map(|i| Message::Request(block(i)))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = peer.drain(&mut s);
    assert_eq!(reads(&out).len(), 2);
    // The fast extension was agreed at the handshake; a peer without it is simulated by
    // forgetting it on our side.
    if let Some(p) = s.peers.get_mut(peer.conn()) {
        p.fast = false;
    }
    s.set_choking(now, peer.conn(), true);
    let after = answer(&mut s, &mut peer, now, &out);
    assert!(reads(&after).is_empty());
    let served = serve_all(&mut s, &mut peer, now, Vec::new(), written);
    assert!(served.is_empty(), "{served:?}");
    let msgs = peer.messages().unwrap();
    assert!(
        !msgs.iter().any(|m| matches!(m, Message::Piece { .. })),
        "{msgs:?}"
    );
}
