//! What the user can ask of a session: torrents, their counters, files, peers and trackers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::info::{FileInfo, MemoryUse, PeerInfo, TorrentStats, TrackerInfo};
use super::{Session, TorrentId};
use crate::metainfo::Metainfo;
use crate::resume::{FileStamp, ResumeData};
use crate::{Bitfield, ConnId, InfoHash, PieceIndex};

impl Session {
    /// The torrent with this info-hash.
    pub fn torrent_by_info_hash(&self, info_hash: &InfoHash) -> Option<TorrentId> {
        self.by_info_hash.get(info_hash).copied()
    }

    /// The metainfo of a torrent.
    pub fn metainfo(&self, id: TorrentId) -> Option<&Metainfo> {
        self.torrents.get(&id).map(|t| &*t.meta)
    }

    /// Ids of every torrent, those fetching their metadata included, in the order added.
    pub fn torrent_ids(&self) -> Vec<TorrentId> {
        let mut ids: Vec<TorrentId> = self.torrents.keys().copied().collect();
        ids.extend(self.fetching.keys());
        ids.sort();
        ids
    }

    /// The info-hash of a torrent, whether or not its metadata is known.
    pub fn info_hash_of(&self, id: TorrentId) -> Option<InfoHash> {
        match self.torrents.get(&id) {
            Some(t) => Some(t.meta.info_hash()),
            None => self.fetching.get(&id).map(|f| f.info_hash),
        }
    }

    /// A torrent's name: from its metadata, or from its magnet link's `dn` while the
    /// metadata is fetched (`None` if the link had none).
    pub fn name_of(&self, id: TorrentId) -> Option<&str> {
        match self.torrents.get(&id) {
            Some(t) => Some(t.meta.name()),
            None => self.fetching.get(&id)?.display_name.as_deref(),
        }
    }

    /// Whether torrent `id` is one added by magnet link still fetching its metadata.
    pub fn is_fetching_metadata(&self, id: TorrentId) -> bool {
        self.fetching.contains_key(&id)
    }

    fn active_peers(&self, conns: &BTreeSet<ConnId>) -> usize {
        conns
            .iter()
            .filter(|c| self.peers.get(**c).is_some_and(|p| p.is_active()))
            .count()
    }

    /// Whether torrent `id` is in the session (with its metadata or still fetching it).
    pub fn has_torrent(&self, id: TorrentId) -> bool {
        self.torrents.contains_key(&id) || self.fetching.contains_key(&id)
    }

    /// Whether torrent `id` has every wanted piece verified: [`TorrentStats::complete`]
    /// without the rates and counters, cheap enough to ask after every input.
    pub fn is_complete(&self, id: TorrentId) -> bool {
        self.torrents.get(&id).is_some_and(|t| t.picker.is_done())
    }

    /// Counters, rates and flags of a torrent at `now`.
    pub fn stats(&self, id: TorrentId, now: Instant) -> Option<TorrentStats> {
        let (before_up, before_down) = self.run_base.get(&id).copied().unwrap_or((0, 0));
        let conns = match (self.torrents.get(&id), self.fetching.get(&id)) {
            (Some(t), _) => &t.conns,
            (None, Some(f)) => &f.conns,
            (None, None) => return None,
        };
        let active = conns
            .iter()
            .filter_map(|c| self.peers.get(*c))
            .filter(|p| p.is_active());
        let (download_rate, upload_rate) = active.fold((0u64, 0u64), |(d, u), p| {
            (
                d.saturating_add(p.down.rate(now)),
                u.saturating_add(p.up.rate(now)),
            )
        });
        let Some(t) = self.torrents.get(&id) else {
            let f = self.fetching.get(&id)?;
            return Some(TorrentStats {
                state: f.state,
                uploaded: f.uploaded,
                downloaded: f.downloaded,
                left: 0,
                pieces_have: 0,
                pieces_total: 0,
                complete: false,
                seed: false,
                peers: self.active_peers(&f.conns),
                error: None,
                has_metadata: false,
                download_rate,
                upload_rate,
                progress: 0.0,
                eta: None,
                session_downloaded: f.downloaded.saturating_sub(before_down),
                session_uploaded: f.uploaded.saturating_sub(before_up),
            });
        };
        let left = t.left();
        let wanted: u64 = (0..t.piece_count())
            .map(PieceIndex)
            .filter(|p| t.picker.priority(*p) > 0)
            .map(|p| u64::from(t.piece_len(p)))
            .sum();
        let progress = if wanted == 0 {
            1.0
        } else {
            (wanted - left.min(wanted)) as f64 / wanted as f64
        };
        let eta = match (left, download_rate) {
            (0, _) => Some(Duration::ZERO),
            (_, 0) => None,
            (l, r) => Some(Duration::from_secs(l.div_ceil(r))),
        };
        Some(TorrentStats {
            state: t.state,
            uploaded: t.uploaded,
            downloaded: t.downloaded,
            left,
            pieces_have: t.picker.have().count(),
            pieces_total: t.piece_count(),
            complete: t.picker.is_done(),
            seed: t.picker.have().is_full(),
            peers: self.active_peers(&t.conns),
            error: t.error.as_deref().cloned(),
            has_metadata: true,
            download_rate,
            upload_rate,
            progress,
            eta,
            session_downloaded: t.downloaded.saturating_sub(before_down),
            session_uploaded: t.uploaded.saturating_sub(before_up),
        })
    }

    /// Verified pieces.
    pub fn bitfield(&self, id: TorrentId) -> Option<&Bitfield> {
        self.torrents.get(&id).map(|t| t.picker.have())
    }

    /// Pieces wanted (touching a file of priority above 0).
    pub fn wanted(&self, id: TorrentId) -> Option<Bitfield> {
        let t = self.torrents.get(&id)?;
        let mut b = Bitfield::new(t.piece_count());
        for i in 0..t.piece_count() {
            b.set(PieceIndex(i), t.picker.priority(PieceIndex(i)) > 0);
        }
        Some(b)
    }

    /// Each file with its priority and the bytes of it in verified pieces.
    pub fn files(&self, id: TorrentId) -> Option<Vec<FileInfo>> {
        let t = self.torrents.get(&id)?;
        let have = t.picker.have();
        let mut out = Vec::new();
        for (i, f) in t.meta.files().iter().enumerate() {
            let done = t
                .meta
                .piece_map()
                .file_pieces(i)
                .map(|range| {
                    range
                        .iter()
                        .filter(|p| have.get(*p))
                        .map(|p| t.file_overlap(i, p))
                        .sum()
                })
                .unwrap_or(0);
            out.push(FileInfo {
                path: f.path.components().to_vec(),
                length: f.length,
                priority: t.file_priorities.get(i).copied().unwrap_or(1),
                done,
                padding: f.is_padding(),
            });
        }
        Some(out)
    }

    /// Connected peers of a torrent (handshake done).
    pub fn peers(&self, id: TorrentId, now: Instant) -> Vec<PeerInfo> {
        let conns = match (self.torrents.get(&id), self.fetching.get(&id)) {
            (Some(t), _) => &t.conns,
            (None, Some(f)) => &f.conns,
            (None, None) => return Vec::new(),
        };
        conns
            .iter()
            .filter_map(|c| self.peers.get(*c))
            .filter_map(|p| {
                let peer_id = p.peer_id?;
                Some(PeerInfo {
                    conn: p.conn,
                    addr: p.addr,
                    peer_id,
                    client: p.extensions.said.client.clone().unwrap_or_else(|| {
                        let c = crate::peer_id::identify(&peer_id);
                        format!("{} {}", c.name, c.version).trim().to_string()
                    }),
                    am_choking: p.choke.am_choking,
                    am_interested: p.choke.am_interested,
                    peer_choking: p.choke.peer_choking,
                    peer_interested: p.choke.peer_interested,
                    incoming: p.is_incoming(),
                    snubbed: p.snubbed,
                    download_rate: p.down.rate(now),
                    upload_rate: p.up.rate(now),
                    downloaded: p.downloaded,
                    uploaded: p.uploaded,
                    pieces: p.pieces.count(),
                    encryption: p.crypto.as_info(),
                    transport: p.transport,
                })
            })
            .collect()
    }

    /// What the session holds for its peers (see [`MemoryUse`]).
    pub fn memory_use(&self) -> MemoryUse {
        let held = |blocks: &mut dyn Iterator<Item = &bytes::Bytes>| -> u64 {
            blocks.map(|b| b.len() as u64).sum()
        };
        let block_bytes = self
            .torrents
            .values()
            .map(|t| {
                let partial = t
                    .in_flight()
                    .partial_pieces
                    .values()
                    .flat_map(|p| p.blocks.iter().flatten().map(|(b, _)| b));
                let verifying = t.in_flight().verifying.values().flatten().map(|(b, _)| b);
                held(&mut partial.chain(verifying))
            })
            .sum();
        let peers = self.peers.iter();
        MemoryUse {
            block_bytes,
            undecoded_bytes: peers.clone().map(|p| p.decoder.buffered() as u64).sum(),
            connections: peers.count(),
        }
    }

    /// Trackers of a torrent, by tier.
    pub fn trackers(&self, id: TorrentId) -> Vec<TrackerInfo> {
        let announcer = match (self.torrents.get(&id), self.fetching.get(&id)) {
            (Some(t), _) => &t.announcer,
            (None, Some(f)) => &f.announcer,
            (None, None) => return Vec::new(),
        };
        let mut out = Vec::new();
        for (tier, urls) in announcer.tiers.iter().enumerate() {
            for e in urls {
                out.push(TrackerInfo {
                    tier,
                    url: e.url.to_string(),
                    seeders: e.seeders,
                    leechers: e.leechers,
                    last_error: e.last_error.clone(),
                    next_announce: announcer.next_announce_of(&e.url),
                });
            }
        }
        out
    }

    /// Resume data for a torrent, given each file's stamp now (in metainfo order).
    pub fn resume_data(&self, id: TorrentId, files: Vec<Option<FileStamp>>) -> Option<ResumeData> {
        let t = self.torrents.get(&id)?;
        Some(ResumeData {
            info_hash: t.meta.info_hash(),
            pieces: t.picker.have().clone(),
            files,
            uploaded: t.uploaded,
            downloaded: t.downloaded,
        })
    }

    /// A multi-line description of a torrent's download state for diagnosing stalls: the
    /// picker's started pieces, the pieces being verified, and per peer its choke and
    /// interest state, requests in flight and how long ago it last sent a block.
    pub fn debug_state(&self, id: TorrentId, now: Instant) -> Option<String> {
        use std::fmt::Write;
        let t = self.torrents.get(&id)?;
        let ago = |at: Instant| now.saturating_duration_since(at).as_secs_f32();
        let mut s = String::new();
        let (partial, verifying) = t.picker.partial_progress();
        let _ = writeln!(
            s,
            "state {:?} have {}/{} endgame {} verifying {} (engine {:?}) checking {} \
             partial pieces {} next deadline in {:?} ({} set) choke round in {:?}",
            t.state,
            t.picker.have().count(),
            t.piece_count(),
            t.picker.in_endgame(),
            verifying,
            t.in_flight().verifying.keys().collect::<Vec<_>>(),
            t.in_flight().checking.len(),
            t.in_flight().partial_pieces.len(),
            self.timers.next().map(|n| n.saturating_duration_since(now)),
            self.timers.len(),
            t.choker.next_round(now).saturating_duration_since(now),
        );
        for (p, free, requested, received) in partial {
            let _ = writeln!(
                s,
                "  partial {p}: free {free} requested {requested} received {received} \
                 (availability {})",
                t.picker.availability(p)
            );
        }
        for p in t.conns.iter().filter_map(|c| self.peers.get(*c)) {
            let oldest = p.requests.front().map(|(_, at)| ago(*at));
            let _ = writeln!(
                s,
                "  peer {} {} {:?} fast {} {:?} snubbed {} has {} requests {} (oldest {:?}s) \
                 depth {} last block {:.1}s ago, last received {:.1}s ago, their requests {} \
                 reading {} down {} B/s up {} B/s",
                p.conn,
                p.addr,
                p.phase,
                p.fast,
                p.choke,
                p.snubbed,
                p.pieces.count(),
                p.requests.len(),
                oldest,
                p.queue_depth,
                ago(p.last_block),
                ago(p.last_received),
                p.their_requests.len(),
                p.reading.len(),
                p.down.rate(now),
                p.up.rate(now),
            );
        }
        for (piece, e) in &t.in_flight().exclusive {
            let _ = writeln!(
                s,
                "  failed piece {piece}: re-downloaded by {:?}, tried by {:?}",
                e.owner, e.tried
            );
        }
        for (addr, c) in t.candidates.iter() {
            let _ = writeln!(
                s,
                "  candidate {addr} connected {} failures {} closes {} next attempt in {:?}",
                c.connected,
                c.failures,
                c.closes,
                c.next_attempt.saturating_duration_since(now)
            );
        }
        Some(s)
    }
}
