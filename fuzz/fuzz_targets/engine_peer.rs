//! The engine under hostile peers: a session with one small torrent is driven by a fuzz-chosen
//! sequence of connections from several hosts, raw bytes, well-formed messages, closes, writes
//! the transport reports, user commands, disk and tracker answers and timer advances. After
//! every step: no panic; every byte the engine sends decodes as valid peer-wire messages; the
//! bitfield holds only verified pieces; `left` is exactly the wanted, unverified bytes; no
//! block is taken from a peer it was never asked of; the blocks and undecoded bytes held stay
//! within the engine's limits; metadata pieces sent are the torrent's own bytes and peer
//! exchange messages list at most 50 peers each way. Peers speak the extension protocol too:
//! handshakes naming `ut_metadata` and `ut_pex`, metadata requests, pieces (true, corrupt or
//! malformed) and rejects, peer exchange messages. Half the runs add the torrent by magnet
//! link: it must fetch the metadata (the torrent's own bytes, never other ones) from them.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_proto::engine::{
    AddTorrent, CheckScope, Config, Input, MAX_PEX_ADDED, Output, Session, StorageError,
    TorrentState,
};
use bt_proto::extensions::ut_metadata::{self, MetadataMessage};
use bt_proto::extensions::ut_pex::{PexFlags, PexMessage};
use bt_proto::extensions::{ExtensionHandshake, UT_METADATA_ID, UT_PEX_ID};
use bt_proto::metainfo::Metainfo;
use bt_proto::metainfo::create::TorrentBuilder;
use bt_proto::sim::remote::RemotePeer;
use bt_proto::storage::verify_blocks;
use bt_proto::tracker::{AnnounceError, AnnounceResponse};
use bt_proto::wire::{BlockRequest, Extension, Message, Reserved};
use bt_proto::{Bitfield, ConnId, PeerId, PieceIndex};
use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const PIECE: u32 = 16 * 1024;
const SIZE: usize = 3 * PIECE as usize + 5000;

struct World {
    meta: Metainfo,
    content: Vec<u8>,
}

fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let content: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
        let plan = TorrentBuilder::multi_file(
            "t",
            [
                bt_proto::metainfo::create::InputFile::new(["a"], 20_000),
                bt_proto::metainfo::create::InputFile::new(["b"], (SIZE - 20_000) as u64),
            ],
        )
        .tracker_tier(["http://tracker.invalid/announce"])
        .piece_length(PIECE)
        .plan()
        .expect("valid layout");
        let mut h = plan.hasher();
        h.update(&content);
        let bytes = plan.build(&h.finish().expect("all bytes")).expect("builds");
        World {
            meta: Metainfo::from_bytes(&bytes).expect("parses"),
            content,
        }
    })
}

struct Harness {
    s: Session,
    now: Instant,
    conns: Vec<ConnId>,
    pending_connects: Vec<ConnId>,
    /// The far end of each connection the engine sent on: decodes what it sent as it arrives.
    peers: BTreeMap<ConnId, RemotePeer>,
    /// Every block the engine asked of each connection.
    asked: BTreeMap<ConnId, BTreeSet<BlockRequest>>,
    verified: BTreeSet<u32>,
    reads: Vec<Input>,
    /// The most block bytes the engine may hold: its in-flight limit, in whole pieces, at
    /// least two pieces.
    max_block_bytes: u64,
}

fn piece_bytes(p: u32) -> &'static [u8] {
    let w = world();
    let start = (p * PIECE) as usize;
    let end = (start + PIECE as usize).min(w.content.len());
    &w.content[start..end]
}

/// The far end of `conn`: a peer without extensions until it sends its handshake.
fn remote(conn: ConnId) -> RemotePeer {
    let meta = &world().meta;
    RemotePeer::new(conn, meta.info_hash(), PeerId([0; 20])).with_piece_count(meta.piece_count())
}

impl Harness {
    fn drain(&mut self, u: &mut Unstructured) -> Result<()> {
        let t = bt_proto::engine::TorrentId(0);
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::Connect { conn, .. } => self.pending_connects.push(conn),
                Output::Send { conn, bufs } => {
                    let peer = self.peers.entry(conn).or_insert_with(|| remote(conn));
                    for b in &bufs {
                        peer.receive(b);
                    }
                    let sent = peer.messages().unwrap_or_else(|e| panic!("{e}"));
                    for m in &sent {
                        if let Message::Extended { id, payload } = m
                            && *id != 0
                        {
                            check_extended(payload);
                        }
                    }
                    let asked = self.asked.entry(conn).or_default();
                    asked.extend(sent.into_iter().filter_map(|m| match m {
                        Message::Request(b) => Some(b),
                        _ => None,
                    }));
                }
                Output::Close { conn, .. } => {
                    self.conns.retain(|c| *c != conn);
                    self.peers.remove(&conn);
                }
                Output::ReadBlock {
                    torrent,
                    conn,
                    block,
                } => {
                    let bytes = piece_bytes(block.piece.0);
                    let data = bytes
                        .get(block.offset as usize..(block.offset + block.length) as usize)
                        .map(Bytes::copy_from_slice)
                        .ok_or_else(|| StorageError::Backend("out of range".into()));
                    assert!(
                        self.verified.contains(&block.piece.0),
                        "read of a piece we lack"
                    );
                    self.reads.push(Input::BlockRead {
                        torrent,
                        conn,
                        block,
                        data,
                    });
                }
                Output::VerifyAndStore {
                    torrent,
                    piece,
                    hash,
                    blocks,
                } => {
                    let ok = verify_blocks(&blocks, &hash);
                    assert_eq!(ok, blocks.concat() == piece_bytes(piece.0));
                    let result = if ok && u.ratio(1, 20)? {
                        Err(StorageError::Backend("disk full".into()))
                    } else {
                        Ok(ok)
                    };
                    if result == Ok(true) {
                        self.verified.insert(piece.0);
                    }
                    self.reads.push(Input::PieceStored {
                        torrent,
                        piece,
                        result,
                    });
                }
                Output::CheckPiece { torrent, piece, .. } => {
                    let ok = self.verified.contains(&piece.0);
                    self.reads.push(Input::PieceChecked { torrent, piece, ok });
                }
                Output::Announce { torrent, url, .. } => {
                    let result = if u.arbitrary()? {
                        Err(AnnounceError::Timeout(Duration::from_secs(30)))
                    } else {
                        Ok(AnnounceResponse {
                            interval: Duration::from_secs(u.int_in_range(0..=4000)?),
                            min_interval: None,
                            warning: None,
                            tracker_id: None,
                            complete: None,
                            incomplete: None,
                            peers: Vec::new(),
                        })
                    };
                    self.reads.push(Input::Announced {
                        torrent,
                        url,
                        result,
                    });
                }
                // No resume file here: nothing to save.
                Output::CloseFiles { .. } | Output::SaveResume(_) => {}
                Output::MetadataReceived { torrent } => {
                    let got = self.s.metainfo(torrent).map(|m| m.info_bytes());
                    assert_eq!(
                        got,
                        Some(world().meta.info_bytes()),
                        "foreign metadata taken"
                    );
                }
                // One hostile peer: nobody is on the LAN, and the DHT is off.
                Output::SendMulticast { .. } | Output::SendDatagram { .. } => {}
            }
        }
        // Invariants.
        if self.s.is_fetching_metadata(t) {
            let stats = self.s.stats(t, self.now).expect("torrent exists");
            assert!(!stats.has_metadata && stats.left == 0 && stats.pieces_have == 0);
            return Ok(());
        }
        let have = self.s.bitfield(t).expect("torrent exists").clone();
        for p in have.iter_ones() {
            assert!(
                self.verified.contains(&p.0),
                "piece {p} in the bitfield but never verified"
            );
        }
        let wanted = self.s.wanted(t).expect("torrent exists");
        let left: u64 = wanted
            .iter_ones()
            .filter(|p| !have.get(*p))
            .map(|p| piece_bytes(p.0).len() as u64)
            .sum();
        assert_eq!(
            self.s.stats(t, self.now).expect("torrent exists").left,
            left
        );
        let memory = self.s.memory_use();
        assert!(
            memory.block_bytes <= self.max_block_bytes,
            "{memory:?} beyond {}",
            self.max_block_bytes
        );
        // At most one unfinished message per connection: a block with its header, or an
        // extended message.
        let frame = 4 + bt_proto::wire::MAX_EXTENDED_LEN as u64;
        assert!(
            memory.undecoded_bytes <= memory.connections as u64 * frame,
            "{memory:?}"
        );
        Ok(())
    }

    /// Sends `messages` from `conn`'s far end: the torrent's downloaded bytes grow by at most
    /// the blocks among them that were asked of `conn` (before they arrived: an UNCHOKE early
    /// in `messages` may have the engine ask for a block later in them).
    fn send(&mut self, u: &mut Unstructured, conn: ConnId, messages: &[Message]) -> Result<()> {
        let t = bt_proto::engine::TorrentId(0);
        let before = self
            .s
            .stats(t, self.now)
            .expect("torrent exists")
            .downloaded;
        let peer = self.peers.entry(conn).or_insert_with(|| remote(conn));
        let _ = peer.send(&mut self.s, self.now, messages);
        let after = self
            .s
            .stats(t, self.now)
            .expect("torrent exists")
            .downloaded;
        self.drain(u)?;
        let asked = self.asked.get(&conn);
        let allowed: u64 = messages
            .iter()
            .filter_map(|m| match m {
                Message::Piece {
                    piece,
                    offset,
                    data,
                } => {
                    let b = BlockRequest::new(*piece, *offset, data.len() as u32);
                    asked
                        .is_some_and(|a| a.contains(&b))
                        .then_some(data.len() as u64)
                }
                _ => None,
            })
            .sum();
        assert!(
            after - before <= allowed,
            "took {} bytes of blocks never asked of {conn}",
            after - before - allowed
        );
        Ok(())
    }
}

fn message(u: &mut Unstructured, pieces: u32) -> Result<Message> {
    let piece = |u: &mut Unstructured| -> Result<PieceIndex> {
        Ok(PieceIndex(if u.ratio(9, 10)? {
            u.int_in_range(0..=pieces - 1)?
        } else {
            u.arbitrary()?
        }))
    };
    let block = |u: &mut Unstructured| -> Result<BlockRequest> {
        let p = piece(u)?;
        let offset = if u.ratio(9, 10)? {
            u.int_in_range(0..=1u32)? * 16384
        } else {
            u.arbitrary()?
        };
        let length = if u.ratio(9, 10)? {
            16384
        } else {
            u.int_in_range(1..=16384)?
        };
        Ok(BlockRequest::new(p, offset, length))
    };
    Ok(match u.int_in_range(0..=15)? {
        0 => Message::KeepAlive,
        1 => Message::Choke,
        2 => Message::Unchoke,
        3 => Message::Interested,
        4 => Message::NotInterested,
        5 => Message::Have(piece(u)?),
        6 => {
            let len = if u.ratio(9, 10)? {
                Bitfield::byte_len(pieces)
            } else {
                u.int_in_range(0..=4)?
            };
            Message::Bitfield(Bytes::from(u.bytes(len)?.to_vec()))
        }
        7 => Message::Request(block(u)?),
        8 => {
            let b = block(u)?;
            let good = piece_bytes(b.piece.0 % pieces);
            let mut data = good
                .get(b.offset as usize..)
                .map(|d| d[..d.len().min(b.length as usize)].to_vec())
                .unwrap_or_default();
            if data.is_empty() || u.ratio(1, 4)? {
                let n = u.int_in_range(1..=64)?;
                data = u.bytes(n)?.to_vec();
            }
            Message::Piece {
                piece: b.piece,
                offset: b.offset,
                data: Bytes::from(data),
            }
        }
        9 => Message::Cancel(block(u)?),
        10 => Message::HaveAll,
        11 => Message::HaveNone,
        12 => Message::RejectRequest(block(u)?),
        13 => Message::AllowedFast(piece(u)?),
        14 => extended(u)?,
        _ => Message::Suggest(piece(u)?),
    })
}

/// An extended message: raw bytes under a small id, or a well-formed extension handshake,
/// metadata message or peer exchange message under the ids the engine gave out.
fn extended(u: &mut Unstructured) -> Result<Message> {
    let small = |u: &mut Unstructured| -> Result<u32> { u.int_in_range(0..=3) };
    let named = |u: &mut Unstructured| -> Result<Option<u8>> {
        Ok(if u.arbitrary()? {
            Some(u.int_in_range(0..=3)?)
        } else {
            None
        })
    };
    let (id, payload) = match u.int_in_range(0..=4)? {
        0 => {
            let n = u.int_in_range(0..=40)?;
            (u.int_in_range(0..=2)?, u.bytes(n)?.to_vec())
        }
        1 => {
            let size = world().meta.info_bytes().len() as u64;
            let h = ExtensionHandshake {
                ut_metadata: named(u)?,
                ut_pex: named(u)?,
                metadata_size: if u.ratio(3, 4)? {
                    Some(size)
                } else {
                    u.arbitrary()?
                },
                listen_port: u.arbitrary()?,
                reqq: None,
                client: None,
                yourip: None,
            };
            (0, h.encode())
        }
        2 => {
            let piece = if u.ratio(9, 10)? {
                small(u)?
            } else {
                u.arbitrary()?
            };
            let info = world().meta.info_bytes();
            let m = match u.int_in_range(0..=6)? {
                0 => MetadataMessage::Reject { piece },
                1 => MetadataMessage::Data {
                    piece,
                    total_size: 1,
                    data: Bytes::from_static(b"x"),
                },
                2 | 3 => {
                    // The true piece, now and then with one byte flipped.
                    let mut data = ut_metadata::piece_of(info, piece).unwrap_or(b"").to_vec();
                    if u.ratio(1, 4)?
                        && let Some(b) = data.first_mut()
                    {
                        *b ^= 1;
                    }
                    MetadataMessage::Data {
                        piece,
                        total_size: info.len() as u64,
                        data: Bytes::from(data),
                    }
                }
                _ => MetadataMessage::Request { piece },
            };
            (UT_METADATA_ID, m.encode())
        }
        _ => {
            let addr = |u: &mut Unstructured| -> Result<SocketAddr> {
                let host: u8 = u.int_in_range(1..=6)?;
                Ok(SocketAddr::from(([10, 0, 0, host], u.int_in_range(0..=2)?)))
            };
            let mut m = PexMessage::default();
            for _ in 0..u.int_in_range(0..=4)? {
                m.added.push((addr(u)?, PexFlags(u.arbitrary()?)));
            }
            for _ in 0..u.int_in_range(0..=2)? {
                m.dropped.push(addr(u)?);
            }
            (UT_PEX_ID, m.encode())
        }
    };
    Ok(Message::Extended {
        id,
        payload: Bytes::from(payload),
    })
}

/// What the engine sent under an extension: metadata pieces are the torrent's own bytes, and
/// peer exchange messages keep to the per-message limit.
fn check_extended(payload: &[u8]) {
    let info = world().meta.info_bytes();
    if let Ok(MetadataMessage::Data {
        piece,
        total_size,
        data,
    }) = MetadataMessage::decode(payload)
    {
        assert_eq!(total_size, info.len() as u64);
        assert_eq!(Some(&data[..]), ut_metadata::piece_of(info, piece));
    }
    if let Ok(m) = PexMessage::decode(payload) {
        assert!(m.added.len() <= MAX_PEX_ADDED && m.dropped.len() <= MAX_PEX_ADDED);
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let w = world();
    let pieces = w.meta.piece_count();
    let mut have = Bitfield::new(pieces);
    let mut verified = BTreeSet::new();
    for p in 0..pieces {
        if u.arbitrary()? {
            have.set(PieceIndex(p), true);
            verified.insert(p);
        }
    }
    let mut config = Config::new(PeerId(*b"-Sx0001-fuzzfuzzfuzz"), 6881, u.arbitrary()?);
    config.upload_slots = u.int_in_range(0..=3)?;
    let inflight_pieces = u.int_in_range(0..=4u64)?;
    config.max_inflight_bytes = inflight_pieces * u64::from(PIECE);
    let mut h = Harness {
        s: Session::new(config),
        now: Instant::now(),
        conns: Vec::new(),
        pending_connects: Vec::new(),
        peers: BTreeMap::new(),
        asked: BTreeMap::new(),
        verified,
        reads: Vec::new(),
        max_block_bytes: inflight_pieces.max(2) * u64::from(PIECE),
    };
    let magnet = u.arbitrary()?;
    let opts = AddTorrent {
        have: Some(have),
        file_priorities: vec![u.int_in_range(0..=2)?, u.int_in_range(0..=2)?],
        ..Default::default()
    };
    let t = if magnet {
        // Nothing is had before the metadata is.
        h.verified.clear();
        h.s.add_magnet(h.now, &w.meta.magnet(), opts)
    } else {
        h.s.add_torrent(h.now, w.meta.clone(), opts)
    };
    h.drain(u)?;
    for _ in 0..u.int_in_range(0..=200)? {
        let pick = |u: &mut Unstructured, conns: &[ConnId]| -> Result<Option<ConnId>> {
            if conns.is_empty() {
                Ok(None)
            } else {
                Ok(conns.get(u.choose_index(conns.len())?).copied())
            }
        };
        match u.int_in_range(0..=9)? {
            0 if h.conns.len() < 4 => {
                // A few hosts, so the per-host rules and bans are exercised as well.
                let host = u.int_in_range(1..=3u8)?;
                let port: u16 = u.arbitrary()?;
                let c = h.s.accept(h.now, ([127, 0, 0, host], port).into());
                h.conns.push(c);
            }
            1 => {
                if let Some(c) = pick(u, &h.conns)? {
                    let mut reserved = Reserved::NONE;
                    if u.arbitrary()? {
                        reserved = reserved.with(Extension::Fast);
                    }
                    if u.arbitrary()? {
                        reserved = reserved.with(Extension::ExtensionProtocol);
                    }
                    let mut id = [0u8; 20];
                    u.fill_buffer(&mut id)?;
                    let peer = h.peers.entry(c).or_insert_with(|| remote(c));
                    peer.handshake_mut().reserved = reserved;
                    peer.handshake_mut().peer_id = PeerId(id);
                    // A handshake with no messages after it always encodes.
                    let _ = peer.hello(&mut h.s, h.now, &[]);
                }
            }
            2..=4 => {
                if let Some(c) = pick(u, &h.conns)? {
                    // Messages that cannot be encoded (too long for their kind) are left out.
                    let mut messages = Vec::new();
                    for _ in 0..u.int_in_range(1..=4)? {
                        messages.push(message(u, pieces)?);
                    }
                    messages.retain(|m| m.validate().is_ok());
                    h.send(u, c, &messages)?;
                }
            }
            5 => {
                if let Some(c) = pick(u, &h.conns)? {
                    let n = u.int_in_range(0..=80)?;
                    let data = u.bytes(n)?.to_vec();
                    let peer = h.peers.entry(c).or_insert_with(|| remote(c));
                    peer.send_bytes(&mut h.s, h.now, data);
                }
            }
            6 => {
                if let Some(c) = pick(u, &h.conns)? {
                    if u.arbitrary()? {
                        h.conns.retain(|x| *x != c);
                        h.s.handle(h.now, Input::Closed { conn: c });
                    } else {
                        // The transport took some bytes: any count, even more than was sent.
                        let bytes = usize::from(u.arbitrary::<u16>()?) * 4;
                        h.s.handle(h.now, Input::Written { conn: c, bytes });
                    }
                }
            }
            7 => {
                h.now += Duration::from_millis(u.int_in_range(0..=200_000)?);
                h.s.handle_timeout(h.now);
            }
            8 => match u.int_in_range(0..=5)? {
                0 => h.s.set_state(h.now, t, TorrentState::Started),
                1 => h.s.set_state(h.now, t, TorrentState::Paused),
                2 => h.s.set_state(h.now, t, TorrentState::Stopped),
                3 => h.s.hashcheck(h.now, t, CheckScope::All),
                4 => {
                    let f = u.int_in_range(0..=2)?;
                    let p = u.int_in_range(0..=2)?;
                    h.s.set_file_priority(h.now, t, f, p)
                }
                _ => {
                    let port: u16 = u.arbitrary()?;
                    h.s.add_peer(h.now, t, ([10, 0, 0, 1], port).into())
                }
            },
            _ => {
                // Answer some pending disk, tracker and connect work, in a fuzz-chosen order.
                for _ in 0..u.int_in_range(0..=8)? {
                    if !h.reads.is_empty() {
                        let i = u.choose_index(h.reads.len())?;
                        let input = h.reads.swap_remove(i);
                        h.s.handle(h.now, input);
                    }
                }
                if let Some(c) = h.pending_connects.pop() {
                    if u.arbitrary()? {
                        h.conns.push(c);
                        h.s.handle(h.now, Input::Connected { conn: c });
                    } else {
                        h.s.handle(h.now, Input::Closed { conn: c });
                    }
                }
            }
        }
        h.drain(u)?;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
