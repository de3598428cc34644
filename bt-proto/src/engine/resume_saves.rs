//! When resume data is saved: within [`super::Config::resume_save_interval`] of a change to
//! the verified pieces, at once when a download completes or a hashcheck ends, and whenever a
//! torrent stops; never while a hashcheck runs.
//!
//! A check at add time runs over pieces that the resume file on disk vouched for but whose
//! files changed since: until each is answered it is not verified, so a snapshot taken then
//! would leave it out, and a resume file written from it would forget a piece that is on
//! disk and good (the next start trusts the file and downloads the piece again). So while a
//! check runs, the file on disk is left as it is: it still vouches for those pieces, with
//! the stamps that make the next start check them again.

use std::time::Instant;

use super::timers::{Timer, TorrentTimer};
use super::{Output, ResumeSave, Session, TorrentId};

impl Session {
    /// A snapshot of a torrent's resume data, numbered after every earlier one; the adapter
    /// fills in the file stamps when it writes it. This does not count as a save of the
    /// torrent's changes: use it for what the user asks. Taken during a hashcheck, it leaves
    /// out the pieces not yet answered, which a resume file written from it then forgets.
    pub fn resume_snapshot(&mut self, id: TorrentId) -> Option<ResumeSave> {
        let data = self.resume_data(id, Vec::new())?;
        self.resume_generation += 1;
        Some(ResumeSave {
            torrent: id,
            data,
            generation: self.resume_generation,
        })
    }

    /// The torrent's verified pieces changed: save within the interval.
    pub(super) fn mark_resume_dirty(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if t.resume_dirty {
            return;
        }
        t.resume_dirty = true;
        if let Some(every) = self.config.resume_save_interval {
            self.timers
                .set(Timer::Torrent(id, TorrentTimer::ResumeSave), now + every);
        }
    }

    /// Saves the torrent's resume data if its pieces changed since the last save (and no
    /// hashcheck runs: the check's end saves).
    pub(super) fn save_resume_if_dirty(&mut self, id: TorrentId) {
        if self.torrents.get(&id).is_some_and(|t| t.resume_dirty)
            && let Some(save) = self.take_resume_save(id)
        {
            self.outputs.push_back(Output::SaveResume(save));
        }
    }

    /// A snapshot that covers every change so far; `None` while a hashcheck runs (see the
    /// module docs), the changes then left for the check's end to save.
    pub(super) fn take_resume_save(&mut self, id: TorrentId) -> Option<ResumeSave> {
        if !self.torrents.get(&id)?.in_flight().checking.is_empty() {
            return None;
        }
        let save = self.resume_snapshot(id)?;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.resume_dirty = false;
        }
        self.timers
            .stop(Timer::Torrent(id, TorrentTimer::ResumeSave));
        Some(save)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::{AddTorrent, CheckScope, Config, Input, Output, Session, TorrentState};
    use super::TorrentId;
    use crate::metainfo::Metainfo;
    use crate::metainfo::create::TorrentBuilder;
    use crate::{Bitfield, PeerId, PieceIndex};

    const INTERVAL: Duration = Duration::from_secs(1);

    /// A torrent of four pieces whose resume data vouched for all of them, added with 0 and 1
    /// trusted and 2 and 3 to check again (their file changed since).
    fn resumed() -> (Session, TorrentId, Instant) {
        let plan = TorrentBuilder::single_file("f", 4 * 16384)
            .piece_length(16384)
            .plan()
            .unwrap();
        let mut h = plan.hasher();
        h.update(&[0; 4 * 16384]);
        let meta = Metainfo::from_bytes(&plan.build(&h.finish().unwrap()).unwrap()).unwrap();
        let mut config = Config::new(PeerId([1; 20]), 6881, 1);
        config.resume_save_interval = Some(INTERVAL);
        let mut s = Session::new(config);
        let now = Instant::now();
        let mut have = Bitfield::new(4);
        have.set(PieceIndex(0), true);
        have.set(PieceIndex(1), true);
        let add = AddTorrent {
            have: Some(have),
            check: Some(CheckScope::Pieces(vec![PieceIndex(2), PieceIndex(3)])),
            ..Default::default()
        };
        let id = s.add_torrent(now, meta, add);
        while s.poll_output().is_some() {}
        (s, id, now)
    }

    /// The pieces of each resume save the session asked for, and whether it closed files.
    fn saves(s: &mut Session) -> (Vec<Vec<u32>>, bool) {
        let mut saves = Vec::new();
        let mut closed = false;
        while let Some(o) = s.poll_output() {
            let save = match o {
                Output::SaveResume(save) => Some(save),
                Output::CloseFiles { resume, .. } => {
                    closed = true;
                    resume
                }
                _ => None,
            };
            if let Some(save) = save {
                saves.push(save.data.pieces.iter_ones().map(|p| p.0).collect());
            }
        }
        (saves, closed)
    }

    fn checked(s: &mut Session, now: Instant, id: TorrentId, piece: u32) {
        let piece = PieceIndex(piece);
        s.handle(
            now,
            Input::PieceChecked {
                torrent: id,
                piece,
                ok: true,
            },
        );
    }

    #[test]
    fn no_save_forgets_a_piece_the_check_has_not_answered() {
        let (mut s, id, now) = resumed();
        // Piece 2 passes and the save interval passes, piece 3 still being checked: a save
        // now would forget piece 3, which the resume file on disk vouches for.
        checked(&mut s, now, id, 2);
        s.handle_timeout(now + 2 * INTERVAL);
        assert_eq!(saves(&mut s), (vec![], false));
        // The check's end saves at once.
        checked(&mut s, now + 2 * INTERVAL, id, 3);
        assert_eq!(saves(&mut s), (vec![vec![0, 1, 2, 3]], false));
    }

    #[test]
    fn a_stop_during_the_check_closes_the_files_and_saves_at_its_end() {
        let (mut s, id, now) = resumed();
        // Started by the user before the check is done, then stopped.
        s.set_state(now, id, TorrentState::Started);
        s.set_state(now, id, TorrentState::Stopped);
        assert_eq!(saves(&mut s), (vec![], true));
        checked(&mut s, now, id, 2);
        checked(&mut s, now, id, 3);
        assert_eq!(saves(&mut s), (vec![vec![0, 1, 2, 3]], false));
    }
}
