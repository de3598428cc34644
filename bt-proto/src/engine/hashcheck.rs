//! Verifying pieces already on disk, and starting a torrent once its add-time check is done.

use std::time::Instant;

use super::{CheckScope, Event, Output, Session, TorrentId};
use crate::PieceIndex;

impl Session {
    /// Verifies pieces on disk: all of them, or some. Results arrive as
    /// [`Event::PieceChecked`] and finally [`Event::HashcheckDone`].
    pub fn hashcheck(&mut self, now: Instant, id: TorrentId, scope: CheckScope) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        let n = t.piece_count();
        let pieces: Vec<PieceIndex> = match scope {
            CheckScope::All => (0..n).map(PieceIndex).collect(),
            CheckScope::Pieces(list) => list.into_iter().filter(|p| p.0 < n).collect(),
        };
        for p in pieces {
            if t.in_flight_mut().checking.insert(p)
                && let Some(hash) = t.meta.piece_hash(p)
            {
                self.outputs.push_back(Output::CheckPiece {
                    torrent: id,
                    piece: p,
                    hash,
                });
            }
        }
        if t.in_flight().checking.is_empty() {
            self.check_done(now, id);
        }
    }

    pub(super) fn on_piece_checked(
        &mut self,
        now: Instant,
        id: TorrentId,
        piece: PieceIndex,
        ok: bool,
    ) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if !t.in_flight_mut().checking.remove(&piece) {
            return;
        }
        let had = t.picker.have().get(piece);
        if ok && !had {
            t.in_flight_mut().partial_pieces.remove(&piece);
            t.picker.piece_passed(piece);
        } else if !ok && had {
            t.picker.piece_lost(piece);
        }
        let done = t.in_flight().checking.is_empty();
        self.events.push_back(Event::PieceChecked {
            torrent: id,
            piece,
            ok,
        });
        if ok != had {
            self.mark_resume_dirty(now, id);
        }
        if ok && !had {
            self.after_piece_passed(now, id, piece);
        } else if !ok && had {
            self.after_have_changed(now, id);
        }
        if done {
            self.check_done(now, id);
        }
    }

    /// Every piece of the check answered: report, and start a torrent waiting for it.
    fn check_done(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        self.events.push_back(Event::HashcheckDone {
            torrent: id,
            verified: t.picker.have().count(),
            total: t.piece_count(),
        });
        let state = t.after_check.take();
        // Saves waited for the check (see `resume_saves`); what it found is worth keeping.
        self.save_resume_if_dirty(id);
        if let Some(state) = state {
            self.change_state(now, id, state);
        }
    }
}
