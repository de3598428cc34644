//! Peer exchange (BEP 11): each peer that speaks `ut_pex` is told, at most once a minute,
//! which of the torrent's peers we connected to and disconnected from since we last told it;
//! what peers tell us is learned like a tracker's reply.
//!
//! A peer is listed at its listening address: the address we dialled for a connection we
//! opened, or for one it opened the IP it came from with the port (`p`) of its extension
//! handshake; a peer that opened its connection and never said its port is not listed, as
//! nobody could connect to it. Per recipient we keep the addresses it was told of, so each
//! message carries exactly the differences and an added address is dropped later (BEP 11).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::fetching::swarm_of;
use super::timers::{PeerTimer, Timer};
use super::{ProtocolViolation, Session, TorrentId};
use crate::ConnId;
use crate::extensions::ut_pex::{PexFlags, PexMessage};
use crate::wire::Message;

/// Time between two messages to one peer. BEP 11: "no more than 1 PEX message per minute".
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);

/// Wait between a peer's extension handshake and our first message to it: the connections a
/// torrent opens when it starts (a tracker reply's worth, dialled at once) are made by then,
/// so the first message lists them, and a newcomer still learns the swarm within seconds.
pub const PEX_FIRST_DELAY: Duration = Duration::from_secs(5);

/// Peers added (and, apart, peers dropped) per message we send. BEP 11 asks for at most 50
/// after the first message; we keep to it in every message, and what does not fit goes in
/// the next one.
pub const MAX_PEX_ADDED: usize = 50;

/// Added addresses taken from one message we receive; the rest are ignored. A first message
/// may list all the sender's connections (libtorrent sends up to 100), later ones at most 50;
/// taking 100 learns everything an honest peer sends, and a flood of thousands costs us no
/// more than half of a tracker reply ([`super::MAX_PEERS_PER_REPLY`]).
pub const MAX_PEX_ADDRESSES_TAKEN: usize = 100;

/// Messages taken from one peer per [`PEX_INTERVAL`]; more are dropped unread. One a minute
/// is the rule; two lets through a first message sent soon after the handshake followed by
/// the sender's own once-a-minute tick. A peer that sends more is capped rather than closed:
/// the excess costs us nothing once dropped, and it may be a good source of blocks.
pub const MAX_PEX_RECEIVED_PER_INTERVAL: u32 = 2;

/// What one connection was told by peer exchange, and how often it told us.
#[derive(Debug, Clone, Default)]
pub(crate) struct PexSent {
    /// Addresses listed as added to it and not dropped since.
    told: BTreeSet<SocketAddr>,
    /// Our messages to it are scheduled.
    started: bool,
    /// Start of the current window of its messages to us, and how many it holds.
    window: Option<(Instant, u32)>,
}

impl PexSent {
    /// Whether a message received at `now` is within the rate, counting it if so.
    fn take_received(&mut self, now: Instant) -> bool {
        let (start, count) = match self.window {
            Some((start, count)) if now < start + PEX_INTERVAL => (start, count),
            _ => (now, 0),
        };
        if count >= MAX_PEX_RECEIVED_PER_INTERVAL {
            return false;
        }
        self.window = Some((start, count + 1));
        true
    }
}

impl Session {
    /// Schedules our first message to a peer once its extension handshake names `ut_pex`,
    /// on a torrent that exchanges peers.
    pub(super) fn start_pex(&mut self, now: Instant, conn: ConnId, id: TorrentId) {
        let on = self
            .torrents
            .get(&id)
            .is_some_and(|t| self.exchanges_peers(t));
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        if on && !p.pex.started && p.extensions.said.pex_id().is_some() {
            p.pex.started = true;
            self.timers
                .set(Timer::Peer(conn, PeerTimer::Pex), now + PEX_FIRST_DELAY);
        }
    }

    /// Our message to `conn` is due: the differences since the last one, if any, and the
    /// next one in [`PEX_INTERVAL`].
    pub(super) fn on_pex_timer(&mut self, now: Instant, conn: ConnId) {
        let Some(id) = self.peers.get(conn).and_then(|p| p.torrent) else {
            return;
        };
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        if !self.exchanges_peers(t) {
            return;
        }
        let listing = self.pex_listing(id, conn);
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let Some(their_id) = p.extensions.said.pex_id() else {
            // It switched ut_pex off; a later handshake may start it again.
            p.pex.started = false;
            return;
        };
        let told = &mut p.pex.told;
        let added: Vec<(SocketAddr, PexFlags)> = listing
            .iter()
            .filter(|(a, _)| !told.contains(*a))
            .take(MAX_PEX_ADDED)
            .map(|(a, f)| (*a, *f))
            .collect();
        let dropped: Vec<SocketAddr> = told
            .iter()
            .filter(|a| !listing.contains_key(*a))
            .take(MAX_PEX_ADDED)
            .copied()
            .collect();
        for a in &dropped {
            told.remove(a);
        }
        told.extend(added.iter().map(|(a, _)| *a));
        let message = PexMessage { added, dropped };
        if !message.is_empty() {
            let payload = Bytes::from(message.encode());
            p.send(
                &Message::Extended {
                    id: their_id,
                    payload,
                },
                now,
            );
        }
        self.timers
            .set(Timer::Peer(conn, PeerTimer::Pex), now + PEX_INTERVAL);
    }

    /// The listening addresses of torrent `id`'s active peers other than `recipient`, with
    /// what we know of each.
    fn pex_listing(&self, id: TorrentId, recipient: ConnId) -> BTreeMap<SocketAddr, PexFlags> {
        let Some(t) = self.torrents.get(&id) else {
            return BTreeMap::new();
        };
        let listen_addr = |conn: ConnId| {
            let p = self.peers.get(conn).filter(|p| p.is_active())?;
            if p.is_incoming() {
                let port = p.extensions.said.listen_port?;
                Some((SocketAddr::new(p.addr.ip(), port), PexFlags::NONE, p))
            } else {
                // We reached it there, so others can.
                Some((p.addr, PexFlags::REACHABLE, p))
            }
        };
        let own = listen_addr(recipient).map(|(a, _, _)| a);
        t.conns
            .iter()
            .filter(|c| **c != recipient)
            .filter_map(|c| listen_addr(*c))
            .filter(|(a, _, _)| Some(*a) != own)
            .map(|(a, flags, p)| {
                let seed = if p.is_seed() {
                    PexFlags::SEED
                } else {
                    PexFlags::NONE
                };
                // It spoke MSE with us: others may open with it too (BEP 11's flag 0x01).
                let mse = if p.crypto.as_info() == super::ConnEncryption::Plaintext {
                    PexFlags::NONE
                } else {
                    PexFlags::ENCRYPTION
                };
                // It spoke uTP with us, or a peer said it does (BEP 11's flag 0x04).
                let utp = if p.transport == super::Transport::Utp || t.candidates.knows_utp(a) {
                    PexFlags::UTP
                } else {
                    PexFlags::NONE
                };
                (a, flags | seed | mse | utp)
            })
            .collect()
    }

    /// A `ut_pex` message under our id, on a torrent that exchanges peers: its added
    /// addresses are learned as a tracker's would be, and dialled if there is room.
    pub(super) fn on_pex_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: TorrentId,
        payload: &[u8],
    ) -> Result<(), ProtocolViolation> {
        let Some(p) = self.peers.get_mut(conn) else {
            return Ok(());
        };
        if !p.pex.take_received(now) {
            return Ok(());
        }
        let message = PexMessage::decode(payload)?;
        // Dropped addresses are not forgotten: the sender lost its connection, not
        // necessarily the peer its life.
        for (addr, flags) in message.added.into_iter().take(MAX_PEX_ADDRESSES_TAKEN) {
            let kept = self.learn_peer(now, id, addr);
            if let Some(addr) = kept.filter(|_| flags.contains(PexFlags::UTP))
                && let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id)
            {
                t.candidates.speaks_utp(addr);
            }
        }
        self.connect_more(now, id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_two_messages_are_taken_a_minute() {
        let t0 = Instant::now();
        let mut s = PexSent::default();
        assert!(s.take_received(t0));
        assert!(s.take_received(t0 + Duration::from_secs(1)));
        assert!(!s.take_received(t0 + Duration::from_secs(59)));
        assert!(s.take_received(t0 + PEX_INTERVAL));
    }
}
