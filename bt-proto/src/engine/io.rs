//! What goes into the engine and what comes out: the whole contract with an adapter.

use std::net::SocketAddr;

use bytes::Bytes;

use super::violation::ProtocolViolation;
use crate::lsd::LsdGroup;
use crate::picker::Block;
use crate::resume::ResumeData;
use crate::tracker::{AnnounceError, AnnounceRequest, AnnounceResponse};
use crate::{ConnId, PeerId, PieceHash, PieceIndex};

// Part of this contract, defined with the rest of storage.
pub use crate::storage::StorageError;

/// The engine's name for one torrent of a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TorrentId(pub u32);

/// A torrent's run state; each variant says what the torrent does in it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum TorrentState {
    /// Connect, request, serve.
    #[default]
    Started,
    /// Connections made and accepted; no requests made or served.
    Paused,
    /// `stopped` sent to trackers, every connection closed, new ones refused, files closed.
    Stopped,
    /// Storage failed: a verified piece could not be written, or a block not read, and
    /// [`TorrentStats::error`](super::TorrentStats::error) says which file and why. The torrent
    /// does what `Paused` does (connections kept, no requests made or served) until another
    /// state is set; `Started` tries the disk again. Verified pieces stay verified. Only the
    /// engine enters it: asking for it (the engine's
    /// [`engine::Session::set_state`](crate::engine::Session::set_state) or
    /// [`AddTorrent::state`], an adapter's `Torrent::pause` and the like) is taken as `Paused`.
    Failed,
    /// Started, and waiting for a slot of the session's queue
    /// ([`super::Config::max_active_downloads`], [`super::Config::max_active_seeds`]): it
    /// does what `Stopped` does (no connections, nothing announced, files closed, its resume
    /// data kept) until the queue starts it. Only the engine enters it: asking for it is
    /// taken as `Started`, which the queue then decides.
    Queued,
}

impl TorrentState {
    /// The state a user's request for `self` means: `Failed` and `Queued` are the engine's
    /// to enter, so a request for `Failed` is one to pause, and for `Queued` one to start.
    pub(super) fn requested(self) -> TorrentState {
        match self {
            TorrentState::Failed => TorrentState::Paused,
            TorrentState::Queued => TorrentState::Started,
            other => other,
        }
    }

    /// Whether the torrent takes part in its swarm (connections, announces): every state
    /// but `Stopped` and `Queued`.
    pub fn in_swarm(self) -> bool {
        !matches!(self, TorrentState::Stopped | TorrentState::Queued)
    }
}

/// Which pieces a hashcheck covers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CheckScope {
    /// Every piece.
    All,
    /// These pieces.
    Pieces(Vec<PieceIndex>),
}

/// The result of a hashcheck, as the adapters' APIs report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashcheckReport {
    /// Pieces of the torrent verified once the check was done.
    pub verified: u32,
    /// Pieces in the torrent.
    pub total: u32,
}

impl HashcheckReport {
    /// The report of a check that found `verified` of `total` pieces good (the fields may
    /// grow, so a report is built through this outside bt-proto).
    pub fn new(verified: u32, total: u32) -> Self {
        HashcheckReport { verified, total }
    }
}

/// Something that happened, fed to [`crate::engine::Session::handle`].
#[derive(Clone, Debug)]
pub enum Input {
    /// An outbound connection asked for by [`Output::Connect`] is established.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes arrived on a connection.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes, in stream order.
        data: Bytes,
    },
    /// A connection closed, failed to connect, or failed while writing.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// The transport took `bytes` more of what [`Output::Send`] gave for a TCP connection, in
    /// order: the kernel socket accepted them (a real adapter), or the network took them into
    /// its queues (the simulator, whose sockets take 16 KiB at a time). Reports may be merged,
    /// and should come as bytes are taken, not once a whole [`Output::Send`] is.
    ///
    /// The engine serves a peer's requests only while what it handed over and the transport
    /// has not taken stays under a watermark that follows the connection's rate (see
    /// [`SEND_AHEAD`](super::SEND_AHEAD) and [`MIN_SEND_WATERMARK`](super::MIN_SEND_WATERMARK)):
    /// the other requests wait in the engine, where a CANCEL still removes them, instead of
    /// in a write queue the engine cannot call back. That is what lets a streaming reader's
    /// seek be served at once.
    ///
    /// Optional, and all or nothing per connection: until the first report for a connection
    /// the engine holds nothing back for it (it cannot know when bytes leave), so an adapter
    /// that never sends this works as before, with longer queues. Once an adapter reports for
    /// a connection, it must report every byte it takes, or the engine stops serving that
    /// peer when the unreported bytes reach the watermark.
    Written {
        /// The connection.
        conn: ConnId,
        /// How many bytes the transport took since the last report.
        bytes: usize,
    },
    /// A block asked for by [`Output::ReadBlock`] was read.
    BlockRead {
        /// The torrent.
        torrent: TorrentId,
        /// The connection that asked for it.
        conn: ConnId,
        /// The block.
        block: Block,
        /// Its bytes, or why they could not be read.
        data: Result<Bytes, StorageError>,
    },
    /// A piece given in [`Output::VerifyAndStore`] was hashed and, if it matched, written.
    PieceStored {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
        /// `Ok(true)`: hash matched and written; `Ok(false)`: hash mismatch, nothing written;
        /// `Err`: hash matched but writing failed.
        result: Result<bool, StorageError>,
    },
    /// A piece asked for by [`Output::CheckPiece`] was read and hashed.
    PieceChecked {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
        /// Whether the data on disk matched (missing or short files do not match).
        ok: bool,
    },
    /// A tracker answered an [`Output::Announce`], or could not be reached.
    Announced {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker URL announced to.
        url: String,
        /// The reply, or why there was none.
        result: Result<AnnounceResponse, AnnounceError>,
    },
    /// A datagram arrived on a local service discovery socket (BEP 14: port 6771, joined to
    /// the groups of [`crate::lsd::LsdGroup`]). Anything may arrive there; the engine checks
    /// it all.
    MulticastReceived {
        /// The sender: its IP is the announced peer's.
        from: SocketAddr,
        /// The datagram.
        data: Bytes,
    },
    /// A datagram arrived on the session's UDP socket (the port number of its listener). The
    /// engine tells DHT messages (bencoded dictionaries) from uTP packets, whose connections
    /// it carries itself ([`super::Config::transports`]), and drops anything else.
    Datagram {
        /// The sender.
        from: SocketAddr,
        /// The datagram.
        data: Bytes,
    },
}

/// Something the adapter must do, drained with [`crate::engine::Session::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection; answer with [`Input::Connected`] or [`Input::Closed`].
    Connect {
        /// The id the engine gave it.
        conn: ConnId,
        /// Where to.
        addr: SocketAddr,
    },
    /// Write these buffers, in order, to the connection (one vectored write is ideal). Only
    /// for TCP connections: the engine carries uTP ones itself, and neither this nor
    /// [`Output::Close`] ever names one.
    Send {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bufs: Vec<Bytes>,
    },
    /// Close the connection (after flushing what was sent). No [`Input::Closed`] is needed.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, for logs.
        reason: CloseReason,
    },
    /// Read a block from the torrent's files; answer with [`Input::BlockRead`].
    ReadBlock {
        /// The torrent.
        torrent: TorrentId,
        /// The connection that asked.
        conn: ConnId,
        /// The block.
        block: Block,
    },
    /// Hash a complete piece and, if it matches, write it; answer with [`Input::PieceStored`].
    /// The piece's bytes travel here so they are hashed once and written once.
    VerifyAndStore {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
        /// The expected SHA-1.
        hash: PieceHash,
        /// The piece's blocks in order; together exactly the piece's length.
        blocks: Vec<Bytes>,
    },
    /// Read a piece from disk and hash it; answer with [`Input::PieceChecked`].
    CheckPiece {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
        /// The expected SHA-1.
        hash: PieceHash,
    },
    /// Announce to a tracker; answer with [`Input::Announced`] (not needed for `stopped`).
    Announce {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker URL (`http://`, `https://` or `udp://`).
        url: String,
        /// What to announce.
        request: AnnounceRequest,
    },
    /// Write this resume data (with each file's stamp taken now), unless a snapshot with a
    /// higher generation was written already. Ignore it for a torrent without a resume file.
    SaveResume(ResumeSave),
    /// Close the torrent's open files (it was stopped or removed), syncing them, then write
    /// its resume data, if any, as [`Output::SaveResume`] does.
    CloseFiles {
        /// The torrent.
        torrent: TorrentId,
        /// Its resume data as it stopped; `None` while a hashcheck runs, so that the resume
        /// file already on disk keeps vouching for the pieces the check has not answered
        /// yet (a snapshot would leave them out). The check's end asks for a save.
        resume: Option<ResumeSave>,
    },
    /// The metadata of a torrent added by magnet link
    /// ([`crate::engine::Session::add_magnet`]) arrived and is valid: prepare its storage
    /// from [`crate::engine::Session::metainfo`] before carrying out any later output for it,
    /// and keep the metadata (its [`crate::metainfo::Metainfo::info_bytes`]) with its resume
    /// data, so that a restart adds it as a torrent and never fetches it again.
    MetadataReceived {
        /// The torrent.
        torrent: TorrentId,
    },
    /// Send a local service discovery announce to a multicast group (its address is
    /// [`LsdGroup::addr`]). If that family's socket could not be opened, drop it: nothing
    /// waits for an answer.
    SendMulticast {
        /// The group, and so the family and socket.
        group: LsdGroup,
        /// The datagram.
        data: Bytes,
    },
    /// Send a datagram from the session's UDP socket. Nothing waits for it to be sent: a
    /// datagram that cannot be is dropped, as the network may drop any.
    SendDatagram {
        /// Where to.
        to: SocketAddr,
        /// The datagram.
        data: Bytes,
    },
}

/// A torrent's resume data to save, numbered in the order the snapshots were taken so that a
/// slow write never replaces a newer one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeSave {
    /// The torrent.
    pub torrent: TorrentId,
    /// Its verified pieces and counters; the adapter fills in the file stamps.
    pub data: ResumeData,
    /// Higher for later snapshots, across all torrents of the session.
    pub generation: u64,
}

/// Why the engine closed a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer broke the protocol.
    Protocol(ProtocolViolation),
    /// The handshake named a torrent this session does not have (or has stopped).
    UnknownTorrent,
    /// We connected to ourselves.
    SelfConnection,
    /// Already connected to this peer.
    Duplicate,
    /// Nothing received for too long.
    Inactive,
    /// The peer sent data that failed hash checks too often.
    Banned,
    /// The torrent was stopped or removed.
    TorrentStopped,
    /// Both sides are seeds: nothing to trade.
    BothSeeds,
    /// The connection limit was reached.
    TooManyConnections,
    /// The message stream encryption handshake failed.
    Encryption(crate::mse::MseError),
    /// A plaintext connection where our policy requires encryption.
    EncryptionRequired,
    /// A TCP connection to a session whose [`super::Config::transports`] is uTP only.
    TransportDisabled,
}

/// What the application is told: the items of an adapter's event streams (`Torrent::events`,
/// `Session::events`), drained from the engine with
/// [`engine::Session::poll_event`](crate::engine::Session::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A piece passed its hash check and is stored.
    HashPassed {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
    },
    /// A piece failed its hash check; it will be downloaded again.
    HashFailed {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
        /// Addresses of the peers that sent blocks of it.
        peers: Vec<SocketAddr>,
    },
    /// A hashcheck of one piece finished.
    PieceChecked {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
        /// Whether it matched.
        ok: bool,
    },
    /// A hashcheck finished: this many pieces of the torrent are verified.
    HashcheckDone {
        /// The torrent.
        torrent: TorrentId,
        /// Pieces verified.
        verified: u32,
        /// Pieces in the torrent.
        total: u32,
    },
    /// The torrent's run state changed.
    StateChanged {
        /// The torrent.
        torrent: TorrentId,
        /// The new state.
        state: TorrentState,
    },
    /// A peer completed the handshake.
    PeerConnected {
        /// The torrent.
        torrent: TorrentId,
        /// The connection.
        conn: ConnId,
        /// The peer's address.
        addr: SocketAddr,
        /// The peer's id.
        peer_id: PeerId,
    },
    /// A peer left.
    PeerDisconnected {
        /// The torrent, if the handshake got that far.
        torrent: Option<TorrentId>,
        /// The connection.
        conn: ConnId,
        /// The peer's address.
        addr: SocketAddr,
        /// Why; `None` if the other side or the network closed it.
        reason: Option<CloseReason>,
    },
    /// A peer was banned for sending bad data.
    PeerBanned {
        /// The torrent.
        torrent: TorrentId,
        /// The peer's address.
        addr: SocketAddr,
    },
    /// A tracker answered.
    TrackerReply {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker.
        url: String,
        /// Peers it gave.
        peers: usize,
    },
    /// A tracker answered with a warning.
    TrackerWarning {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker.
        url: String,
        /// The warning.
        message: String,
    },
    /// A tracker failed or refused.
    TrackerError {
        /// The torrent.
        torrent: TorrentId,
        /// The tracker.
        url: String,
        /// What went wrong.
        error: AnnounceError,
    },
    /// Every wanted piece is verified.
    Complete {
        /// The torrent.
        torrent: TorrentId,
    },
    /// The metadata of a torrent added by magnet link arrived, matched the info-hash and is
    /// valid: from now on it downloads as a torrent added from a file does.
    MetadataReceived {
        /// The torrent.
        torrent: TorrentId,
    },
    /// Metadata assembled from peers did not match the info-hash. The peers that sent it
    /// got a strike (a ban when one peer sent it all), and it is fetched again.
    MetadataHashFailed {
        /// The torrent.
        torrent: TorrentId,
        /// The peers that sent pieces of it.
        peers: Vec<SocketAddr>,
    },
    /// The metadata matched the info-hash but is not a torrent this crate accepts (an unsafe
    /// path, say): the torrent is stopped, as it can never be downloaded.
    MetadataInvalid {
        /// The torrent.
        torrent: TorrentId,
        /// What is wrong with it.
        error: crate::metainfo::MetainfoError,
    },
    /// Storage failed; nothing verified was lost. A torrent started or paused enters
    /// [`TorrentState::Failed`] with the first such error ([`Event::StateChanged`] follows);
    /// a stopped one stays stopped.
    StorageFailed {
        /// The torrent.
        torrent: TorrentId,
        /// What failed.
        error: StorageError,
    },
}

impl Event {
    /// The torrent the event is about; `None` for a connection that closed before its
    /// handshake named one.
    pub fn torrent(&self) -> Option<TorrentId> {
        match self {
            Event::HashPassed { torrent, .. }
            | Event::HashFailed { torrent, .. }
            | Event::PieceChecked { torrent, .. }
            | Event::HashcheckDone { torrent, .. }
            | Event::StateChanged { torrent, .. }
            | Event::PeerConnected { torrent, .. }
            | Event::PeerBanned { torrent, .. }
            | Event::TrackerReply { torrent, .. }
            | Event::TrackerWarning { torrent, .. }
            | Event::TrackerError { torrent, .. }
            | Event::Complete { torrent }
            | Event::MetadataReceived { torrent }
            | Event::MetadataHashFailed { torrent, .. }
            | Event::MetadataInvalid { torrent, .. }
            | Event::StorageFailed { torrent, .. } => Some(*torrent),
            Event::PeerDisconnected { torrent, .. } => *torrent,
        }
    }
}

/// Options for [`crate::engine::Session::add_torrent`].
#[derive(Clone, Debug, Default)]
pub struct AddTorrent {
    /// The state to be in. With a `check`, a torrent to be started starts once the check is
    /// done (nothing is requested or announced before it found what is there); a
    /// [`crate::engine::Session::set_state`] meanwhile overrides that.
    pub state: TorrentState,
    /// Pieces to verify on disk once added.
    pub check: Option<CheckScope>,
    /// Pieces already verified (from trusted resume data), if any.
    pub have: Option<crate::Bitfield>,
    /// Priority per file (0 = skip); missing entries are 1.
    pub file_priorities: Vec<u8>,
    /// Bytes uploaded and downloaded in earlier runs.
    pub uploaded: u64,
    /// See `uploaded`.
    pub downloaded: u64,
    /// No peer exchange (BEP 11) for this torrent, whatever [`super::Config::pex`] says
    /// (default: `false`, the session's setting decides).
    pub no_pex: bool,
    /// Message stream encryption for this torrent's connections, instead of
    /// [`super::Config::encryption`] (default: `None`, the session's setting decides).
    pub encryption: Option<crate::mse::Encryption>,
    /// This torrent's own rate limits, under the session's ([`super::Config::rate_limits`]);
    /// none by default. Changed at run time with
    /// [`crate::engine::Session::set_torrent_rate_limits`].
    pub rate_limits: super::RateLimits,
    /// Fetch new pieces in index order rather than rarest first (a file played from the
    /// start while it downloads); see [`crate::engine::Session::set_sequential`]. Off by
    /// default: rarest first keeps a swarm healthy.
    pub sequential: bool,
}
