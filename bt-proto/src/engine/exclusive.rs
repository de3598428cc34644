//! Pieces that failed their hash check are downloaded again from one peer alone.
//!
//! A failed piece with several senders says only that one of them lied. Downloaded again from
//! a single peer, the next attempt decides: it fails with one sender, who takes a strike, or
//! it passes and the smart ban compares it with every earlier attempt (see `smart_ban`).
//! A host that already had a go at a piece (sent a failed attempt alone, or took the piece
//! and dropped it) takes it again only when no connected peer with the piece is untried, so
//! a liar that grabs every re-download and never finishes it cannot keep it failing.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{Session, TorrentId};
use crate::{Bitfield, ConnId, PieceIndex};

/// A failed piece being downloaded again from one peer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exclusive {
    /// The connection re-downloading it, once one took it.
    pub owner: Option<ConnId>,
    /// Hosts that already had a go at it.
    pub tried: BTreeSet<IpAddr>,
}

impl Session {
    /// A piece of torrent `id` failed, sent by `senders`: it is re-downloaded from one peer.
    /// A lone sender had its go; senders of a mixed attempt did not (the honest one among
    /// them is the one to ask).
    pub(super) fn exclusive_failed(
        &mut self,
        id: TorrentId,
        piece: PieceIndex,
        senders: &[IpAddr],
    ) {
        if let Some(t) = self.torrents.get_mut(&id) {
            let e = t.in_flight_mut().exclusive.entry(piece).or_default();
            e.owner = None;
            if let [only] = senders {
                e.tried.insert(*only);
            }
        }
    }

    /// The failed pieces `conn` may not be asked for now: those another peer is
    /// re-downloading, and those it had a go at while an untried peer could take them.
    pub(super) fn exclusive_blocked(&self, id: TorrentId, conn: ConnId) -> Vec<PieceIndex> {
        let (Some(t), Some(me)) = (self.torrents.get(&id), self.peers.get(conn)) else {
            return Vec::new();
        };
        let untried_other = |piece: PieceIndex, tried: &BTreeSet<IpAddr>| {
            t.conns.iter().filter_map(|c| self.peers.get(*c)).any(|o| {
                o.conn != conn
                    && o.is_active()
                    && o.pieces.get(piece)
                    && !tried.contains(&o.addr.ip())
            })
        };
        t.in_flight()
            .exclusive
            .iter()
            .filter(|(piece, e)| match e.owner {
                Some(owner) => owner != conn,
                None => e.tried.contains(&me.addr.ip()) && untried_other(**piece, &e.tried),
            })
            .map(|(piece, _)| *piece)
            .collect()
    }

    /// `conn` was asked for blocks of `pieces`: the failed ones among them are its alone.
    pub(super) fn claim_exclusive(&mut self, id: TorrentId, conn: ConnId, pieces: &[PieceIndex]) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        for piece in pieces {
            if let Some(e) = t.in_flight_mut().exclusive.get_mut(piece) {
                e.owner = Some(conn);
            }
        }
    }

    /// `conn` stops serving the pieces it was re-downloading alone (it left, was snubbed, or
    /// choked or rejected us): each starts over, so its next attempt has one sender again, and
    /// `conn`'s host has had its go.
    pub(super) fn release_exclusive(&mut self, id: TorrentId, conn: ConnId, host: IpAddr) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let Some(flight) = t.in_flight.as_deref_mut() else {
            return;
        };
        for (piece, e) in flight.exclusive.iter_mut() {
            if e.owner != Some(conn) || flight.verifying.contains_key(piece) {
                continue;
            }
            e.owner = None;
            e.tried.insert(host);
            flight.partial_pieces.remove(piece);
            t.picker.piece_failed(*piece);
        }
    }
}

/// The pieces of `has` a peer may be asked for: only the allowed-fast ones while it chokes
/// us, and none of `blocked`.
pub(super) fn pickable(
    has: &Bitfield,
    allowed_fast: Option<&[PieceIndex]>,
    blocked: &[PieceIndex],
) -> Bitfield {
    let mut b = Bitfield::new(has.len());
    let mut allow = |piece: PieceIndex| {
        if has.get(piece) && !blocked.contains(&piece) {
            b.set(piece, true);
        }
    };
    match allowed_fast {
        Some(fast) => fast.iter().copied().for_each(&mut allow),
        None => has.iter_ones().for_each(&mut allow),
    }
    b
}
