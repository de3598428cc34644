//! Carrying out a session's outputs, as an adapter would: connections on the simulated
//! network, block reads, piece checks and writes on the simulated disk (answered after
//! [`Swarm::disk_latency`]), announces to the simulated tracker (answered after
//! [`Swarm::tracker_latency`]).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::held::End;
use super::run::Delayed;
use super::{ConnEnd, NodeId, Swarm, TRACKER_URL};
use crate::IoFailure;
use crate::engine::{Input, Output, TorrentId};
use crate::lsd::LsdGroup;
use crate::sim::net::Side;
use crate::tracker::{AnnounceError, AnnounceEvent, AnnounceRequest, AnnounceResponse, Peer};

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
                self.note_timer(node);
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
                n.conns.insert(conn, ConnEnd::new(sim, Side::Initiator));
                self.ends
                    .set(sim, Side::Initiator, Some(End::new(node.0, conn)));
            }
            Output::Send { conn, bufs } => self.queue_send(node, conn, bufs, now),
            Output::Close { conn, .. } => {
                self.flush_queue(node, conn, now);
                if let Some(n) = self.nodes.get_mut(node.0)
                    && let Some(end) = n.conns.remove(&conn)
                {
                    self.ends.set(end.sim, end.side, None);
                    let _ = self.net.close(end.sim, end.side, now);
                }
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                let corrupt = n.options.corrupt_uploads;
                let span = Some((block.offset, block.length));
                let data = self
                    .read_piece(node, torrent, block.piece, span)
                    .map(|bytes| {
                        if !corrupt {
                            return bytes;
                        }
                        // A hostile or broken seed: what it serves is not what it has.
                        let mut bytes = Vec::from(bytes);
                        if let Some(b) = bytes.first_mut() {
                            *b ^= 0xff;
                        }
                        Bytes::from(bytes)
                    });
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
                let ok = self
                    .read_piece(node, torrent, piece, None)
                    .is_ok_and(|bytes| crate::sha1(&bytes) == hash.0);
                let input = Input::PieceChecked { torrent, piece, ok };
                self.answer_later(node, now + self.disk_latency, input);
            }
            Output::Announce {
                torrent,
                url,
                request,
            } => self.announce(node, addr, torrent, url, &request, now),
            Output::CloseFiles { .. } | Output::SaveResume(_) => {}
            Output::MetadataReceived { torrent } => {
                // The node's files are laid out from the metadata, as an adapter's would be.
                if let Some(meta) = n.session.metainfo(torrent).cloned() {
                    n.metas.insert(torrent, meta);
                }
            }
            Output::SendMulticast { group, data } => self.multicast(node, addr, group, data, now),
            Output::SendDatagram { to, data } => self.datagram(addr, to, data, now),
        }
    }

    /// A datagram from `from` to whichever running node is at `to`, over the network's
    /// link between them ([`crate::sim::net::Network::datagram`]: its latency, bandwidth,
    /// loss, jitter and duplicates, in the queues the connections use).
    fn datagram(&mut self, from: SocketAddr, to: SocketAddr, data: Bytes, now: Instant) {
        let Some(i) = self
            .by_addr
            .get(&to)
            .copied()
            .filter(|i| self.nodes.get(*i).is_some_and(|n| n.alive && !n.raw))
        else {
            return;
        };
        for at in self.net.datagram(from, to, data.len(), now) {
            let data = data.clone();
            self.answer_later(NodeId(i), at, Input::Datagram { from, data });
        }
    }

    /// A local service discovery announce of `node`, delivered to every other running node
    /// of the same address family after [`Swarm::lsd_latency`] (if set).
    fn multicast(
        &mut self,
        node: NodeId,
        from: SocketAddr,
        group: LsdGroup,
        data: Bytes,
        now: Instant,
    ) {
        self.multicasts.push((from, self.clock.elapsed()));
        let Some(latency) = self.lsd_latency else {
            return;
        };
        if group.addr().is_ipv4() != from.is_ipv4() {
            return;
        }
        let others: Vec<NodeId> = (0..self.nodes.len())
            .map(NodeId)
            .filter(|o| *o != node)
            .filter(|o| self.nodes.get(o.0).is_some_and(|n| n.alive && !n.raw))
            .collect();
        for other in others {
            let data = data.clone();
            self.answer_later(
                other,
                now + latency,
                Input::MulticastReceived { from, data },
            );
        }
    }

    /// An announce of `node` (at `addr`) to `url`, answered after [`Swarm::tracker_latency`].
    fn announce(
        &mut self,
        node: NodeId,
        addr: SocketAddr,
        torrent: TorrentId,
        url: String,
        request: &AnnounceRequest,
        now: Instant,
    ) {
        let result = self.tracker_reply(addr, &url, request);
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

    /// Hands `input` to `node`'s session at `at`.
    fn answer_later(&mut self, node: NodeId, at: Instant, input: Input) {
        self.schedule(at, Delayed::Input(node, input));
    }

    /// The answer to `req`, sent from `from` to `url`: the simulated tracker's at
    /// [`TRACKER_URL`], a refused connection anywhere else.
    fn tracker_reply(
        &mut self,
        from: SocketAddr,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        if url != TRACKER_URL {
            return Err(AnnounceError::Connect {
                host: url.to_string(),
                error: IoFailure::new(ErrorKind::ConnectionRefused, "no tracker there"),
            });
        }
        self.announces.push((from, req.event));
        let view = self.tracker.announce(from, req);
        Ok(AnnounceResponse {
            interval: Duration::from_secs(1800),
            min_interval: None,
            warning: None,
            tracker_id: None,
            complete: Some(view.complete),
            incomplete: Some(view.incomplete),
            peers: view.peers.into_iter().map(Peer::from_addr).collect(),
        })
    }
}
