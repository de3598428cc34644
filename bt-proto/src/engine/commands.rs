//! What the user asks of a session: add and remove torrents, change their state, add peers,
//! choose files.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::announce::Announcer;
use super::dialing::Candidates;
use super::fetching::swarm_of;
use super::smart_ban::SmartBan;
use super::torrent::Torrent;
use super::{AddTorrent, CloseReason, Event, Output, Session, TorrentId, TorrentState};

use crate::Bitfield;
use crate::choker::{Choker, Mode as ChokeMode};
use crate::metainfo::{MAX_FILES, Metainfo};
use crate::picker::Picker;

impl Session {
    /// Adds a torrent. Its pieces are trusted only as far as `opts.have` says (from resume
    /// data checked with [`crate::resume::ResumeData::trusted_pieces`]); `opts.check` verifies
    /// more before the torrent starts. The engine holds `meta` as given: an adapter that
    /// keeps the metainfo too passes an [`Arc`] clone, so a session of many torrents holds
    /// each once.
    pub fn add_torrent(
        &mut self,
        now: Instant,
        meta: impl Into<Arc<Metainfo>>,
        opts: AddTorrent,
    ) -> TorrentId {
        let meta = meta.into();
        let id = self.new_torrent_id();
        self.index_info_hash(meta.info_hash(), id);
        self.keep_torrent_options(now, id, &opts);
        let state = opts.state.requested();
        let check = opts.check.clone();
        let start_after_check = check.is_some() && state == TorrentState::Started;
        let mut torrent = self.build_torrent(id, meta, opts);
        // Nothing is requested or announced before the check found what is there.
        torrent.after_check = start_after_check.then_some(TorrentState::Started);
        self.torrents.insert(id, Box::new(torrent));
        if !start_after_check {
            self.change_state(now, id, state);
        }
        if let Some(scope) = check {
            self.hashcheck(now, id, scope);
        }
        id
    }

    pub(super) fn new_torrent_id(&mut self) -> TorrentId {
        let id = TorrentId(self.next_torrent);
        self.next_torrent += 1;
        id
    }

    /// A stopped torrent with its pieces, priorities and counters from `opts`.
    pub(super) fn build_torrent(
        &mut self,
        id: TorrentId,
        meta: Arc<Metainfo>,
        opts: AddTorrent,
    ) -> Torrent {
        let n = meta.piece_count();
        let have = opts
            .have
            .filter(|h| h.len() == n)
            .unwrap_or_else(|| Bitfield::new(n));
        let prio = Torrent::piece_priorities(&meta, &opts.file_priorities);
        let picker = Picker::new(
            meta.size(),
            meta.piece_length(),
            &have,
            &prio,
            &mut self.rng,
        );
        let mut picker = picker;
        picker.set_sequential(opts.sequential);
        let announcer = Announcer::new(meta.trackers(), &mut self.rng);
        let was_done = picker.is_done();
        Torrent {
            id,
            meta,
            state: TorrentState::Stopped,
            picker,
            file_priorities: opts.file_priorities,
            in_flight: None,
            conns: BTreeSet::new(),
            candidates: Candidates::default(),
            smart_ban: SmartBan::new(self.config.ban_strikes),
            uploaded: opts.uploaded,
            downloaded: opts.downloaded,
            announcer,
            choker: Choker::new(ChokeMode::Leeching, self.config.upload_slots),
            was_done,
            after_check: None,
            resume_dirty: false,
            error: None,
            no_pex: opts.no_pex,
            median_rate: 0,
            stuck_redial: None,
        }
    }

    /// Removes a torrent: stops it (announcing `stopped`) and forgets it.
    pub fn remove_torrent(&mut self, now: Instant, id: TorrentId) {
        self.change_state(now, id, TorrentState::Stopped);
        let info_hash = if let Some(t) = self.torrents.remove(&id) {
            t.meta.info_hash()
        } else if let Some(f) = self.fetching.remove(&id) {
            f.info_hash
        } else {
            return;
        };
        self.timers.stop_torrent(id);
        self.announce_slots.forget(id);
        self.dht_forget(id);
        self.encryption_of.remove(&id);
        self.forget_rate_limits(id);
        self.queue.removed(id);
        self.readers.torrent_removed(id);
        self.rebalance_queue(now);
        self.run_base.remove(&id);
        if self.by_info_hash.get(&info_hash) == Some(&id) {
            self.by_info_hash.remove(&info_hash);
            self.mse_keys.remove(&crate::mse::torrent_key(&info_hash));
            // Another torrent of the same info-hash (the engine allows it) takes its place.
            let torrents = self.torrents.values().map(|o| (o.meta.info_hash(), o.id));
            let fetching = self.fetching.values().map(|f| (f.info_hash, f.id));
            if let Some((_, other)) = torrents.chain(fetching).find(|(h, _)| *h == info_hash) {
                self.index_info_hash(info_hash, other);
            }
        }
    }

    /// What a new torrent's options set beside the torrent itself: its encryption policy,
    /// its counters' base for this session's figures, its rate limits.
    pub(super) fn keep_torrent_options(&mut self, now: Instant, id: TorrentId, opts: &AddTorrent) {
        if let Some(e) = opts.encryption {
            self.encryption_of.insert(id, e);
        }
        self.run_base.insert(id, (opts.uploaded, opts.downloaded));
        self.queue.added(id);
        if opts.rate_limits != super::RateLimits::NONE {
            self.set_torrent_limits(now, id, opts.rate_limits);
        }
    }

    /// Changes a torrent's run state; this overrides a start waiting for the add-time check.
    /// Leaving [`TorrentState::Failed`] clears its error; `Started` tries the disk again.
    pub fn set_state(&mut self, now: Instant, id: TorrentId, state: TorrentState) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.after_check = None;
        }
        self.change_state(now, id, state.requested());
    }

    /// Moves a torrent towards `state`; a start goes through the queue (see `queue`).
    pub(super) fn change_state(&mut self, now: Instant, id: TorrentId, state: TorrentState) {
        let state = self.admit_state(now, id, state);
        self.apply_state(now, id, state);
        self.rebalance_queue(now);
    }

    /// Puts a torrent in `state` and does what entering it takes.
    pub(super) fn apply_state(&mut self, now: Instant, id: TorrentId, state: TorrentState) {
        let Some(s) = swarm_of(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        let old = std::mem::replace(s.state, state);
        if old == state {
            return;
        }
        if !old.in_swarm() {
            // Paused or started, the torrent is in the swarm again: tell the trackers, and
            // try every known address at once.
            s.announcer.start(now);
            s.candidates.retry_all(now);
        }
        if old == TorrentState::Failed
            && let Some(t) = self.torrents.get_mut(&id)
        {
            t.error = None;
            // Stores still in flight were made before this retry: a failure among them would
            // fail it at once, whatever the disk is like now. Their results are not waited
            // for (they are ignored when they come) and their pieces are fetched again.
            if let Some(flight) = t.in_flight.as_deref_mut() {
                for piece in std::mem::take(&mut flight.verifying).into_keys() {
                    t.picker.piece_failed(piece);
                    flight.exclusive.remove(&piece);
                }
            }
        }
        let conns = self.torrent_conns(id);
        match state {
            TorrentState::Stopped | TorrentState::Queued => {
                self.announce_stopped(id);
                for c in conns {
                    self.close(now, c, CloseReason::TorrentStopped);
                }
                // A torrent still fetching its metadata has no files.
                if self.torrents.contains_key(&id) {
                    let resume = self.take_resume_save(id);
                    self.outputs.push_back(Output::CloseFiles {
                        torrent: id,
                        resume,
                    });
                }
                // A stopped torrent has nothing to wake for.
                self.timers.stop_torrent(id);
            }
            TorrentState::Paused | TorrentState::Failed => {
                for c in conns {
                    self.withdraw_requests(now, c, true);
                    self.set_choking(now, c, true);
                    // Nothing is served while paused, not even what a BEP 6 peer was
                    // promised before a choke.
                    if let Some(p) = self.peers.get_mut(c) {
                        p.drop_their_requests(now);
                    }
                    self.update_interest(now, c);
                }
                // Paused torrents still make and accept connections.
                self.connect_more(now, id);
                self.announce_due(now, id);
                self.dht_search(now, id);
            }
            TorrentState::Started => {
                for c in conns {
                    self.update_interest(now, c);
                    self.fill_requests(now, c);
                }
                self.choke_round(now, id);
                self.connect_more(now, id);
                self.announce_due(now, id);
                self.dht_search(now, id);
                self.request_metadata(now, id);
            }
        }
        self.lsd_torrent_changed(now, id);
        self.queue_state_changed(now, id, state);
        self.events
            .push_back(Event::StateChanged { torrent: id, state });
    }

    /// Adds a peer address to try for a torrent. An address known already (and not
    /// connected) is tried again now: the user asking overrides the reconnect back-off.
    pub fn add_peer(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        if let Some(addr) = self.learn_peer(now, id, addr)
            && let Some(t) = swarm_of(&mut self.torrents, &mut self.fetching, id)
        {
            t.candidates.retry_now(addr, now);
        }
        self.connect_more(now, id);
    }

    /// Sets a file's priority (0 = skip). Pieces shared with a wanted file stay wanted. For
    /// a torrent fetching its metadata, the priority applies once the metadata arrives (a
    /// file index past the torrent's files is ignored then).
    pub fn set_file_priority(&mut self, now: Instant, id: TorrentId, file: usize, priority: u8) {
        if let Some(f) = self.fetching.get_mut(&id) {
            let prio = &mut f.opts.file_priorities;
            if file < MAX_FILES {
                if prio.len() <= file {
                    prio.resize(file + 1, 1);
                }
                if let Some(slot) = prio.get_mut(file) {
                    *slot = priority;
                }
            }
            return;
        }
        let Some(t) = self.torrents.get_mut(&id) else {
            return;
        };
        if file >= t.meta.files().len() {
            return;
        }
        if t.file_priorities.len() <= file {
            t.file_priorities.resize(t.meta.files().len(), 1);
        }
        if let Some(slot) = t.file_priorities.get_mut(file) {
            *slot = priority;
        }
        let prio = Torrent::piece_priorities(&t.meta, &t.file_priorities);
        t.picker.set_priorities(&prio, &mut self.rng);
        self.after_have_changed(now, id);
    }
}
