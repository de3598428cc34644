//! What the session's queries return: snapshots of torrents, files, peers and trackers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::io::{StorageError, TorrentState};
use crate::tracker::AnnounceError;
use crate::{ConnId, PeerId};

/// A whole torrent's view: what an adapter's `Torrent::stats` returns (bt-tokio, bt-smol),
/// from the engine's [`engine::Session::stats`](crate::engine::Session::stats).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TorrentStats {
    /// The run state.
    pub state: TorrentState,
    /// Bytes of blocks sent, over the torrent's life.
    pub uploaded: u64,
    /// Bytes of blocks received and accepted, over the torrent's life.
    pub downloaded: u64,
    /// Bytes of wanted pieces not yet verified.
    pub left: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub pieces_total: u32,
    /// Every wanted piece is verified.
    pub complete: bool,
    /// Every piece is verified.
    pub seed: bool,
    /// Connected peers (handshake done).
    pub peers: usize,
    /// Whether the metadata is known. False only for a torrent added by magnet link whose
    /// metadata has not arrived: its piece counts and `left` are 0 until it has.
    pub has_metadata: bool,
    /// Why the torrent is [`TorrentState::Failed`]: the storage error that put it there (the
    /// file and what the system said). `Some` exactly when the state is `Failed`.
    pub error: Option<StorageError>,
    /// Payload bytes per second from its peers now (the sum of their meters, over the last
    /// few seconds).
    pub download_rate: u64,
    /// Payload bytes per second to its peers now.
    pub upload_rate: u64,
    /// Share of the wanted bytes verified, from 0 to 1 (0 until the metadata is known; 1
    /// when nothing is wanted).
    pub progress: f64,
    /// Time to the last wanted byte at the current download rate: zero when complete,
    /// `None` while nothing comes.
    pub eta: Option<Duration>,
    /// Bytes of blocks received since the torrent was added to this session
    /// (`downloaded` also counts earlier runs, from resume data).
    pub session_downloaded: u64,
    /// Bytes of blocks sent since the torrent was added to this session.
    pub session_uploaded: u64,
}

/// One file's state, as an adapter's `Torrent::files` and the engine's
/// [`engine::Session::files`](crate::engine::Session::files) report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// Path components below the torrent's directory.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// Priority (0 = skip).
    pub priority: u8,
    /// Bytes of it in verified pieces.
    pub done: u64,
    /// A BEP 47 padding file: never written, not shown to users.
    pub padding: bool,
}

/// One peer's state, as an adapter's `Torrent::peers` and the engine's
/// [`engine::Session::peers`](crate::engine::Session::peers) report it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The connection.
    pub conn: ConnId,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The peer's id.
    pub peer_id: PeerId,
    /// Client name and version parsed from the id.
    pub client: String,
    /// We are choking them.
    pub am_choking: bool,
    /// We are interested in them.
    pub am_interested: bool,
    /// They are choking us.
    pub peer_choking: bool,
    /// They are interested in us.
    pub peer_interested: bool,
    /// They connected to us.
    pub incoming: bool,
    /// They have not sent a requested block for a long time.
    pub snubbed: bool,
    /// Bytes per second from them.
    pub download_rate: u64,
    /// Bytes per second to them.
    pub upload_rate: u64,
    /// Bytes of blocks received from them.
    pub downloaded: u64,
    /// Bytes of blocks sent to them.
    pub uploaded: u64,
    /// Pieces they have.
    pub pieces: u32,
    /// Whether the connection is encrypted ([`crate::mse`]).
    pub encryption: ConnEncryption,
    /// TCP or uTP.
    pub transport: super::Transport,
}

/// How a connection's bytes look on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnEncryption {
    /// Plain BitTorrent.
    Plaintext,
    /// An MSE handshake hid the BitTorrent handshake; the messages after it are plaintext.
    Obfuscated,
    /// MSE with RC4: every byte after the key exchange is encrypted.
    Rc4,
}

/// One tracker's state, as an adapter's `Torrent::trackers` and the engine's
/// [`engine::Session::trackers`](crate::engine::Session::trackers) report it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackerInfo {
    /// The tier (0 first).
    pub tier: usize,
    /// The URL.
    pub url: String,
    /// Seeders in its last reply.
    pub seeders: Option<u32>,
    /// Leechers in its last reply.
    pub leechers: Option<u32>,
    /// Its last error, if the last attempt failed.
    pub last_error: Option<AnnounceError>,
    /// When the next regular announce is due (for the tracker in use).
    pub next_announce: Option<Instant>,
}

/// What a session holds for its peers, from the engine's
/// [`engine::Session::memory_use`](crate::engine::Session::memory_use): the
/// figures its limits bound, for diagnostics and for tests of those limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemoryUse {
    /// Bytes of received blocks held: pieces being downloaded, and pieces handed over to be
    /// verified and stored (bounded by [`crate::engine::Config::max_inflight_bytes`], at
    /// least two pieces).
    pub block_bytes: u64,
    /// Bytes received from peers and not yet decoded: at most one unfinished message per
    /// connection.
    pub undecoded_bytes: u64,
    /// Connections, in any phase.
    pub connections: usize,
}
