//! Each network connection's two ends, and the received bytes held back from a session
//! while they complete no message.
//!
//! A 16 KiB block arrives in a dozen segments, and a session handed each at once only
//! buffers the first eleven. The runner keeps such segments at their end instead
//! ([`crate::engine::Session::inert_bytes`] says how many bytes it may) and hands them over
//! with the segment that completes a message, in one input at that segment's time: the
//! session then does exactly what it would have done with one input per segment (what the
//! held ones changed, its decoder's buffer and the peer's last-received time, is seen by no
//! one in between), and the node is not woken per segment.
//!
//! Held bytes stay in the network's stream of the connection, which keeps them as the
//! buffers the sender wrote: handed over, a block the peer wrote as a buffer of its own
//! reaches the session as that buffer, not as a dozen segments to join. The first bytes of
//! the next block, come in the segment that completes a message, are held back again when
//! the session would only buffer them, so that its block too is handed over whole.
//!
//! The runner tells the network how many bytes its session would only buffer
//! ([`crate::sim::net::Network::set_quiet`]); segments within them arrive without an event,
//! and are counted when the segment past them comes or when the end is handed over early.
//! A node's ends are handed over in the order they began holding, and a run that ends
//! between such arrivals first moves the clock to the last of them, so the sessions see
//! what they saw when every segment was an event.
//!
//! Only the peer's own inputs and its timers look at what partial bytes change (its decoder
//! and last-received time), so held bytes are handed over before the connection's close,
//! before the node's timers fire, before any command or kill of the node, and when a run
//! returns. Deliveries on the node's other connections and its disk answers go ahead of them,
//! as they cannot tell.

use std::time::Instant;

use super::{NodeId, Swarm};
use crate::ConnId;
use crate::sim::net::{Side, SimConnId};

/// The node and session connection at one end of a network connection.
#[derive(Debug)]
pub(super) struct End {
    pub node: usize,
    pub conn: ConnId,
    /// Bytes the session would only buffer, as of its last input on this connection.
    inert: usize,
    /// Bytes held back: delivered, and left in the network's stream until handed over.
    held_len: usize,
    /// When the last of them arrived.
    held_at: Option<Instant>,
    /// Time and sequence number of the event at which the end began holding them: among a
    /// node's ends, the order in which they are handed over.
    held_key: Option<(Instant, u64)>,
}

impl End {
    pub fn new(node: usize, conn: ConnId) -> Self {
        End {
            node,
            conn,
            inert: 0,
            held_len: 0,
            held_at: None,
            held_key: None,
        }
    }

    /// How many bytes the end holds and when the last of them arrived, leaving it holding
    /// nothing.
    fn take_held(&mut self) -> Option<(Instant, usize)> {
        self.held_key = None;
        let at = self.held_at.take()?;
        Some((at, std::mem::take(&mut self.held_len)))
    }
}

/// Both ends of every network connection, by its id: a delivery finds its node and session
/// connection without a lookup by address or by connection.
#[derive(Debug, Default)]
pub(super) struct Ends(Vec<[Option<End>; 2]>);

impl Ends {
    pub fn get(&self, sim: SimConnId, side: Side) -> Option<&End> {
        let i = usize::try_from(sim.0).ok()?;
        self.0.get(i)?.get(side.index())?.as_ref()
    }

    fn get_mut(&mut self, sim: SimConnId, side: Side) -> Option<&mut End> {
        let i = usize::try_from(sim.0).ok()?;
        self.0.get_mut(i)?.get_mut(side.index())?.as_mut()
    }

    /// Records the end at `side` of `sim`; `None` forgets it, with any bytes it held (the
    /// session closed the connection, so they would have been dropped with its decoder).
    pub fn set(&mut self, sim: SimConnId, side: Side, end: Option<End>) {
        let Ok(i) = usize::try_from(sim.0) else {
            return;
        };
        if self.0.len() <= i {
            self.0.resize_with(i + 1, Default::default);
        }
        if let Some(slot) = self.0.get_mut(i).and_then(|e| e.get_mut(side.index())) {
            *slot = end;
        }
    }
}

impl Swarm {
    /// `len` bytes arrived at `side` of `sim`, whose end is known, at the event `key`
    /// (its time and sequence number): handed over after what was held. Bytes the session
    /// would only buffer come with no event of their own ([`crate::sim::net::Network::set_quiet`]),
    /// so an event always brings more than that.
    pub(super) fn receive(&mut self, sim: SimConnId, side: Side, key: (Instant, u64), len: usize) {
        let held = self.take_held(sim, side).map_or(0, |(_, n)| n);
        self.hand_over(sim, side, key.0, held + len, Some(key));
    }

    /// Holds back `len` bytes of what came with the event `key` at `side` of `sim`.
    fn hold(&mut self, sim: SimConnId, side: Side, key: (Instant, u64), len: usize) {
        let Some(end) = self.ends.get_mut(sim, side) else {
            return;
        };
        if end.held_key.is_none()
            && let Some(n) = self.nodes.get_mut(end.node)
        {
            n.holding.push((sim, side));
        }
        end.held_key.get_or_insert(key);
        end.held_len += len;
        end.held_at = Some(key.0);
    }

    /// How many bytes `side` of `sim` holds and when the last of them arrived; the end and
    /// its node hold nothing more.
    fn take_held(&mut self, sim: SimConnId, side: Side) -> Option<(Instant, usize)> {
        let end = self.ends.get_mut(sim, side)?;
        let node = end.node;
        let held = end.take_held();
        if let Some(n) = self.nodes.get_mut(node) {
            n.holding.retain(|h| *h != (sim, side));
        }
        held
    }

    /// Hands the next `len` bytes received at `side` of `sim` to its session, as received
    /// at `at`, notes how many bytes it may be spared next (the network lets them arrive
    /// without an event), and carries out what it did. Held bytes go in the same input as
    /// the ones that complete a message, not in one of their own: the session flushes the
    /// connections it touched in the order it touched them since it was last drained, so an
    /// input of their own, drained later, would reorder the node's sends.
    ///
    /// With `split`, the key of the event that completed a message: a buffer the bytes end
    /// inside (the start of the next block, come with the end of the last) is handed over
    /// after the others and only if the session would do more than buffer it; else it stays
    /// held, to be handed over whole with the rest of its message. Two inputs at one instant
    /// with no drain between are one to the session: the same messages in the same order,
    /// the same connections to flush.
    fn hand_over(
        &mut self,
        sim: SimConnId,
        side: Side,
        at: Instant,
        len: usize,
        split: Option<(Instant, u64)>,
    ) {
        let Some((idx, conn, inert)) = self.ends.get(sim, side).map(|e| (e.node, e.conn, e.inert))
        else {
            return;
        };
        let mut parts = Vec::new();
        // Only a peer exchanging messages (inert > 0) is split: a handshake is not.
        let whole_only = split.is_some() && inert > 0;
        let mut rest = self
            .net
            .take_received(sim, side, len, whole_only, &mut parts);
        if parts.is_empty() && rest > 0 {
            rest = self.net.take_received(sim, side, rest, false, &mut parts);
        }
        let Some(n) = self.nodes.get_mut(idx) else {
            return;
        };
        n.session.receive_parts(at, conn, parts);
        let mut inert = n.session.inert_bytes(conn);
        if rest > 0 && rest > inert {
            let mut tail = Vec::new();
            self.net.take_received(sim, side, rest, false, &mut tail);
            if let Some(n) = self.nodes.get_mut(idx) {
                n.session.receive_parts(at, conn, tail);
                inert = n.session.inert_bytes(conn);
            }
            rest = 0;
        }
        if let Some(end) = self.ends.get_mut(sim, side) {
            end.inert = inert;
        }
        // What was held was taken before the hand-over: only the tail is held now.
        if let (true, Some(key)) = (rest > 0, split) {
            self.hold(sim, side, key, rest);
        }
        self.net.set_quiet(sim, side, inert.saturating_sub(rest));
        self.drain(NodeId(idx));
    }

    /// Hands over what `side` of `sim` holds and what arrived at it without an event,
    /// before its close or its next message reaches the session.
    pub(super) fn release_end(&mut self, sim: SimConnId, side: Side) {
        let now = self.clock.now();
        let quiet = self.net.quiet_arrivals(sim, side, now);
        let mut held = self.take_held(sim, side);
        if let Some(q) = quiet {
            held = Some(match held {
                Some((at, len)) => (at.max(q.last), len + q.bytes),
                None => (q.last, q.bytes),
            });
        }
        if let Some((at, len)) = held {
            self.hand_over(sim, side, at, len, None);
        }
    }

    /// Hands over everything `node`'s connections hold, before its timers, a command or its
    /// end: end by end, in the order they began holding, as handing them over as they came
    /// would.
    pub(super) fn release_node(&mut self, node: NodeId) {
        let now = self.clock.now();
        let Some(n) = self.nodes.get(node.0) else {
            return;
        };
        let mut ends = self.net.quiet_streams(n.addr);
        ends.extend(n.holding.iter().copied());
        let mut holding: Vec<((Instant, u64), SimConnId, Side)> = ends
            .into_iter()
            .filter_map(|(sim, side)| {
                let kept = self.ends.get(sim, side)?.held_key;
                let quiet = self.net.first_quiet_arrival(sim, side, now);
                let first = match (kept, quiet) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b)?,
                };
                Some((first, sim, side))
            })
            .collect();
        holding.sort_unstable();
        holding.dedup();
        for (_, sim, side) in holding {
            self.release_end(sim, side);
        }
    }

    /// Hands over everything held anywhere, so that the sessions are exactly as their
    /// inputs left them when a run returns.
    pub(super) fn release_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.release_node(NodeId(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::PeerId;
    use crate::engine::CloseReason;
    use crate::sim::net::SimConnId;
    use crate::sim::remote::RemotePeer;
    use crate::sim::swarm::{NodeId, Swarm, make_torrent};

    /// A seed, and a raw peer connected to it whose handshake went through.
    fn seed_and_peer() -> (Swarm, NodeId, NodeId, SimConnId) {
        let (meta, content) = make_torrent(&[("a.bin", 64 << 10)], 16 << 10, 1).unwrap();
        let mut swarm = Swarm::new(5);
        let seed = swarm.add_node(Default::default());
        swarm.add_seed(seed, &meta, &content);
        let raw = swarm.add_raw_node();
        let to = swarm.addr(seed);
        let conn = swarm.raw_connect(raw, to);
        swarm.run_for(Duration::from_millis(100));
        let peer = RemotePeer::new(conn, meta.info_hash(), PeerId([2; 20]));
        assert!(swarm.raw_send(conn, peer.hello_bytes(&[]).unwrap()));
        swarm.run_for(Duration::from_millis(100));
        (swarm, seed, raw, conn)
    }

    /// The 5-byte header of a block message: its 16 KiB follow.
    fn block_header() -> Vec<u8> {
        let mut header = (9 + (16u32 << 10)).to_be_bytes().to_vec();
        header.push(7);
        header
    }

    #[test]
    fn a_run_returns_with_every_arrived_byte_in_the_session() {
        let (mut swarm, seed, _, conn) = seed_and_peer();
        let undecoded = |s: &Swarm| s.session(seed).unwrap().memory_use().undecoded_bytes;
        assert_eq!(undecoded(&swarm), 0);
        // The header goes to the session at once; the next bytes complete nothing, so they
        // are held back until the run returns.
        assert!(swarm.raw_send(conn, block_header()));
        swarm.run_for(Duration::from_millis(100));
        assert!(swarm.raw_send(conn, vec![0u8; 100]));
        swarm.run_for(Duration::from_millis(100));
        assert_eq!(undecoded(&swarm), 105);
    }

    #[test]
    fn held_bytes_reach_the_session_before_its_timers() {
        let (mut swarm, seed, raw, conn) = seed_and_peer();
        // A peer trickling a block a byte a second, for longer than the inactivity timeout:
        // each byte is activity, though none completes a message.
        let addr = swarm.addr(raw);
        swarm.net_mut().host_mut(addr).unwrap().upload = Some(1);
        assert!(swarm.raw_send(conn, block_header()));
        for _ in 0..400 {
            assert!(swarm.raw_send(conn, vec![0u8]));
        }
        swarm.run_for(Duration::from_secs(400));
        let closed: Vec<CloseReason> = swarm.close_reasons(seed);
        assert_eq!(closed, vec![], "the trickling peer was dropped");
        assert!(!swarm.raw_conn(raw, conn).unwrap().closed);
    }
}
