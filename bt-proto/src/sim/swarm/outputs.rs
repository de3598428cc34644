//! Carrying out a session's outputs, as an adapter would: connections on the simulated
//! network, block reads, piece checks and writes on the simulated disk (answered after
//! [`Swarm::disk_latency`]), announces to the simulated tracker (answered after
//! [`Swarm::tracker_latency`]).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::files::{read_bytes, write_piece};
use super::run::Delayed;
use super::{NodeId, Swarm, TRACKER_URL};
use crate::engine::{Input, Output, StorageError, TorrentId};
use crate::sim::net::Side;
use crate::storage::verify_blocks;
use crate::tracker::{AnnounceError, AnnounceEvent, AnnounceRequest, AnnounceResponse, Peer};
use crate::wire::BlockRequest;
use crate::{IoFailure, PieceHash, PieceIndex};

impl Swarm {
    /// Carries out a node's outputs and records its events.
    pub(super) fn drain(&mut self, node: NodeId) {
        let now = self.clock.now();
        let elapsed = self.clock.elapsed();
        loop {
            let Some(n) = self.nodes.get_mut(node.0) else {
                return;
            };
            while let Some(e) = n.session.poll_event() {
                n.events.push((elapsed, e));
            }
            let Some(out) = n.session.poll_output() else {
                return;
            };
            self.carry_out(node, now, out);
        }
    }

    /// Carries out one output of `node`'s session.
    fn carry_out(&mut self, node: NodeId, now: Instant, out: Output) {
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        let addr = n.addr;
        match out {
            Output::Connect { conn, addr: to } => {
                let sim = self.net.connect(addr, to, now);
                n.conns.insert(conn, (sim, Side::Initiator));
                n.by_sim.insert((sim, Side::Initiator), conn);
            }
            Output::Send { conn, bufs } => {
                if let Some((sim, side)) = n.conns.get(&conn).copied() {
                    let data: Vec<u8> = bufs.concat();
                    if self.net.send(sim, side, data, now).is_err() {
                        // The other end is gone; its close event is on the way.
                    }
                }
            }
            Output::Close { conn, .. } => {
                if let Some((sim, side)) = n.conns.remove(&conn) {
                    n.by_sim.remove(&(sim, side));
                    let _ = self.net.close(sim, side, now);
                }
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                let data = self.read_block(node, torrent, block);
                let input = Input::BlockRead {
                    torrent,
                    conn,
                    block,
                    data,
                };
                self.answer_later(node, now + self.disk_latency, input);
            }
            Output::VerifyAndStore {
                torrent,
                piece,
                hash,
                blocks,
            } => {
                let result = self.verify_and_store(node, torrent, piece, &hash, &blocks);
                let input = Input::PieceStored {
                    torrent,
                    piece,
                    result,
                };
                self.answer_later(node, now + self.disk_latency, input);
            }
            Output::CheckPiece {
                torrent,
                piece,
                hash,
            } => {
                let ok = self.check_piece(node, torrent, piece, &hash);
                let input = Input::PieceChecked { torrent, piece, ok };
                self.answer_later(node, now + self.disk_latency, input);
            }
            Output::Announce {
                torrent,
                url,
                request,
            } => {
                let result = if url == TRACKER_URL {
                    Ok(self.tracker_reply(addr, &request))
                } else {
                    Err(AnnounceError::Connect {
                        host: url.clone(),
                        error: IoFailure::new(ErrorKind::ConnectionRefused, "no tracker there"),
                    })
                };
                // A `stopped` announce is not answered (the session does not wait for it).
                if request.event != Some(AnnounceEvent::Stopped) {
                    let input = Input::Announced {
                        torrent,
                        url,
                        result,
                    };
                    self.answer_later(node, now + self.tracker_latency, input);
                }
            }
            Output::CloseFiles { .. } | Output::SaveResume(_) => {}
        }
    }

    /// Hands `input` to `node`'s session at `at`.
    fn answer_later(&mut self, node: NodeId, at: Instant, input: Input) {
        self.schedule(at, Delayed::Input(node, input));
    }

    /// Block `block` of `torrent` from `node`'s disk, flipped if the node corrupts uploads.
    fn read_block(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        block: BlockRequest,
    ) -> Result<Bytes, StorageError> {
        let n = self.nodes.get(node.0);
        let corrupt = n.is_some_and(|n| n.options.corrupt_uploads);
        let Some((addr, meta)) = n.and_then(|n| Some((n.addr, n.metas.get(&torrent)?))) else {
            return Err(StorageError::Backend("unknown torrent".into()));
        };
        let piece = block.piece;
        let mut bytes = read_bytes(
            &mut self.disk,
            addr,
            meta,
            piece,
            block.offset,
            block.length,
        )?;
        if corrupt && let Some(b) = bytes.first_mut() {
            *b ^= 0xff;
        }
        Ok(Bytes::from(bytes))
    }

    /// Whether `blocks` hash to `hash`, and if they do, the result of writing them to
    /// `node`'s disk as piece `piece` of `torrent`.
    fn verify_and_store(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        piece: PieceIndex,
        hash: &PieceHash,
        blocks: &[Bytes],
    ) -> Result<bool, StorageError> {
        if !verify_blocks(blocks, hash) {
            return Ok(false);
        }
        let n = self.nodes.get(node.0);
        let Some((addr, meta)) = n.and_then(|n| Some((n.addr, n.metas.get(&torrent)?))) else {
            return Err(StorageError::Backend("unknown torrent".into()));
        };
        write_piece(&mut self.disk, addr, meta, piece, blocks).map(|()| true)
    }

    /// Whether piece `piece` of `torrent` on `node`'s disk hashes to `hash`.
    fn check_piece(
        &mut self,
        node: NodeId,
        torrent: TorrentId,
        piece: PieceIndex,
        hash: &PieceHash,
    ) -> bool {
        let n = self.nodes.get(node.0);
        let Some((addr, meta)) = n.and_then(|n| Some((n.addr, n.metas.get(&torrent)?))) else {
            return false;
        };
        let len = meta.piece_len(piece).unwrap_or(0);
        read_bytes(&mut self.disk, addr, meta, piece, 0, len)
            .is_ok_and(|b| crate::sha1(&b) == hash.0)
    }

    /// The simulated tracker's answer to `req` from `from`.
    fn tracker_reply(&mut self, from: SocketAddr, req: &AnnounceRequest) -> AnnounceResponse {
        self.announces.push((from, req.event));
        let view = self.tracker.announce(from, req);
        AnnounceResponse {
            interval: Duration::from_secs(1800),
            min_interval: None,
            warning: None,
            tracker_id: None,
            complete: Some(view.complete),
            incomplete: Some(view.incomplete),
            peers: view.peers.into_iter().map(Peer::from_addr).collect(),
        }
    }
}
