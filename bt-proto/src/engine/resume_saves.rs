//! When resume data is saved: within [`super::Config::resume_save_interval`] of a change to
//! the verified pieces, at once when a download completes, and whenever a torrent stops.

use std::time::Instant;

use super::timers::{Timer, TorrentTimer};
use super::{Output, ResumeSave, Session, TorrentId};

impl Session {
    /// A snapshot of a torrent's resume data, numbered after every earlier one; the adapter
    /// fills in the file stamps when it writes it. This does not count as a save of the
    /// torrent's changes: use it for what the user asks.
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

    /// Saves the torrent's resume data if its pieces changed since the last save.
    pub(super) fn save_resume_if_dirty(&mut self, id: TorrentId) {
        if self.torrents.get(&id).is_some_and(|t| t.resume_dirty)
            && let Some(save) = self.take_resume_save(id)
        {
            self.outputs.push_back(Output::SaveResume(save));
        }
    }

    /// A snapshot that covers every change so far.
    pub(super) fn take_resume_save(&mut self, id: TorrentId) -> Option<ResumeSave> {
        let save = self.resume_snapshot(id)?;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.resume_dirty = false;
        }
        self.timers
            .stop(Timer::Torrent(id, TorrentTimer::ResumeSave));
        Some(save)
    }
}
