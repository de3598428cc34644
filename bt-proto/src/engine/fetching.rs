//! A torrent added by magnet link before its metadata arrived, and the swarm parts it shares
//! with a whole torrent: what dialling, announcing and the handshake work on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::announce::Announcer;
use super::dialing::Candidates;
use super::io::{AddTorrent, TorrentId, TorrentState};
use super::metadata_fetch::MetadataFetch;
use super::smart_ban::SmartBan;
use super::torrent::Torrent;
use crate::picker::Picker;
use crate::{ConnId, InfoHash};

/// A torrent known by its info-hash only, fetching its metadata from peers (BEP 9). It
/// connects and announces as a torrent does; when the metadata arrives it becomes a
/// [`Torrent`] with the same id and connections.
#[derive(Debug)]
pub(crate) struct Fetching {
    pub id: TorrentId,
    pub info_hash: InfoHash,
    /// The magnet link's `dn`, until the metadata names the torrent.
    pub display_name: Option<String>,
    /// The magnet link's `tr`, one tier each: the trackers the torrent will have.
    pub trackers: Vec<Vec<String>>,
    pub state: TorrentState,
    pub conns: BTreeSet<ConnId>,
    pub candidates: Candidates,
    pub smart_ban: SmartBan,
    pub announcer: Announcer,
    pub uploaded: u64,
    pub downloaded: u64,
    /// The options the torrent gets once it has its metadata (files, priorities, a check).
    pub opts: AddTorrent,
    pub fetch: MetadataFetch,
    /// Hash failures of assembled metadata each host took part in.
    pub strikes: BTreeMap<IpAddr, u32>,
}

/// The parts of a torrent, fetching or whole, that its connections, dials and announces use.
pub(crate) struct SwarmView<'a> {
    pub info_hash: InfoHash,
    pub state: &'a mut TorrentState,
    pub conns: &'a mut BTreeSet<ConnId>,
    pub candidates: &'a mut Candidates,
    pub smart_ban: &'a mut SmartBan,
    pub announcer: &'a mut Announcer,
    /// The picker of a whole torrent; `None` while the metadata is fetched.
    pub picker: Option<&'a Picker>,
}

/// What a fetching torrent tells trackers it has left: not 0, which would make it a seed to
/// them (some then list no seeds to it), and not a guess at the size either. libtorrent
/// sends the same one-block figure.
pub(crate) const LEFT_UNKNOWN: u64 = 16 * 1024;

impl SwarmView<'_> {
    /// Wanting pieces (or the metadata) while started, with no connection at all: the state
    /// in which the torrent asks its trackers early and dials what they list at once.
    pub fn has_no_peer_to_download_from(&self) -> bool {
        self.conns.is_empty()
            && *self.state == TorrentState::Started
            && self.picker.is_none_or(|p| !p.is_done())
    }

    /// Whether every wanted piece is verified (never, while fetching the metadata).
    pub fn is_done(&self) -> bool {
        self.picker.is_some_and(|p| p.is_done())
    }
}

/// The swarm parts of torrent `id`, whichever map holds it. A free function over the two
/// maps, so that the caller keeps the session's other fields to use alongside.
pub(crate) fn swarm_of<'a>(
    torrents: &'a mut BTreeMap<TorrentId, Box<Torrent>>,
    fetching: &'a mut BTreeMap<TorrentId, Fetching>,
    id: TorrentId,
) -> Option<SwarmView<'a>> {
    if let Some(t) = torrents.get_mut(&id) {
        return Some(SwarmView {
            info_hash: t.meta.info_hash(),
            state: &mut t.state,
            conns: &mut t.conns,
            candidates: &mut t.candidates,
            smart_ban: &mut t.smart_ban,
            announcer: &mut t.announcer,
            picker: Some(&t.picker),
        });
    }
    let f = fetching.get_mut(&id)?;
    Some(SwarmView {
        info_hash: f.info_hash,
        state: &mut f.state,
        conns: &mut f.conns,
        candidates: &mut f.candidates,
        smart_ban: &mut f.smart_ban,
        announcer: &mut f.announcer,
        picker: None,
    })
}
