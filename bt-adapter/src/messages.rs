//! What the driver is told: the messages of the connection, disk and tracker tasks
//! ([`Msg`]), the API handles' commands ([`Command`]), and the one-shot replies they wait on.
//!
//! A leaf of the crate's imports: the driver, the connection tasks (`net`) and the disk queue
//! all speak these types, so none of them needs to import another to talk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Receiver, Sender};
use bt_proto::PieceIndex;
use bt_proto::engine::{self, AddTorrent, CheckScope, Input, ReaderId, TorrentId, TorrentState};
use bt_proto::magnet::Magnet;
use bt_proto::metainfo::Metainfo;
use bt_proto::resume::ResumeData;

use crate::disk::Storage;
use crate::events::Fanout;
use crate::runtime::Runtime;
use crate::{Error, HashcheckReport};

/// Where the driver puts a magnet torrent's metainfo once it has arrived and its storage is
/// laid out; every clone of its handle sees it.
pub(crate) type MetadataSlot = Arc<std::sync::OnceLock<Arc<Metainfo>>>;

/// A callback taking a piece index.
pub(crate) type PieceCallback = Arc<dyn Fn(PieceIndex) + Send + Sync>;

/// A job run on the engine by the driver, for the API's queries and simple commands.
pub(crate) type EngineJob = Box<dyn FnOnce(&mut engine::Session, Instant) + Send>;

/// The sending end of a one-shot answer (a channel of capacity 1).
pub(crate) type Reply<T> = Sender<T>;

/// A one-shot answer channel.
pub(crate) fn reply<T>() -> (Reply<T>, Receiver<T>) {
    async_channel::bounded(1)
}

/// What the connection, disk and tracker tasks send the driver.
pub(crate) enum Msg<R: Runtime> {
    /// Something for the engine.
    Input(Input),
    /// A connection's socket took bytes: the driver takes the count from its handle and
    /// tells the engine ([`Input::Written`]).
    Written(bt_proto::ConnId),
    /// Bytes a connection read, with its credit for one more queued read (released once the
    /// engine has handled them: see `net::MAX_QUEUED_READS`).
    Received(Input, async_lock::SemaphoreGuardArc),
    /// A disk job finished with this input for the engine.
    Disk(Input),
    /// A disk job finished with these inputs for the engine (a run of block reads).
    DiskMany(Vec<Input>),
    /// A disk job with nothing for the engine (closing files, saving resume data) finished.
    DiskDone,
    /// A `stopped` announce was sent (or gave up).
    StopSent,
    /// The listener accepted a connection.
    Accepted(R::Stream, SocketAddr),
    /// Datagrams that arrived on the session's UDP port, in order, with their senders.
    Datagrams(Vec<(SocketAddr, bytes::Bytes)>),
    /// Bootstrap the DHT node from these routers (a name resolved).
    DhtBootstrap(Vec<SocketAddr>),
    /// Time to save the DHT's routing table.
    DhtSave,
}

/// Everything the driver needs to add a torrent.
pub(crate) struct AddCmd {
    /// The handle's own, shared: the session holds a torrent's metainfo once.
    pub(crate) meta: Arc<Metainfo>,
    pub(crate) add: AddTorrent,
    pub(crate) storage: Arc<Storage>,
    pub(crate) resume_path: Option<Arc<Path>>,
    pub(crate) on_pass: Option<PieceCallback>,
    pub(crate) on_fail: Option<PieceCallback>,
    pub(crate) events: Arc<Fanout>,
    pub(crate) reply: Reply<Result<TorrentId, Error>>,
}

/// Everything the driver needs to add a torrent by magnet link: what it needs for a torrent,
/// but for the storage, which is laid out when the metadata arrives.
pub(crate) struct AddMagnetCmd {
    pub(crate) magnet: Magnet,
    pub(crate) add: AddTorrent,
    /// The base directory the files will go to.
    pub(crate) base: PathBuf,
    /// Whether the file system of `base` ignores case (asked of it at add time, so that the
    /// layout check when the metadata arrives does no I/O on the driver).
    pub(crate) ignores_case: bool,
    pub(crate) resume_path: Option<Arc<Path>>,
    /// Where to keep the metadata once it arrives.
    pub(crate) metadata_path: Option<PathBuf>,
    pub(crate) metadata: MetadataSlot,
    pub(crate) on_pass: Option<PieceCallback>,
    pub(crate) on_fail: Option<PieceCallback>,
    pub(crate) events: Arc<Fanout>,
    pub(crate) reply: Reply<Result<TorrentId, Error>>,
}

/// Streaming readers dropped whose engine readers the driver has yet to close: a reader is
/// dropped where it cannot wait for room in the command queue, so it leaves its id here.
pub(crate) type DroppedReaders = Arc<std::sync::Mutex<Vec<ReaderId>>>;

/// An engine reader that the driver closes once this is dropped (at its next command), on
/// whichever path: a reader dropped, or an open whose caller gave up before the answer.
pub(crate) struct ReaderGuard {
    pub(crate) reader: ReaderId,
    pub(crate) dropped: DroppedReaders,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        // The list stays valid whatever a panicking holder did: it only grows and is taken.
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.reader);
    }
}

/// What a streaming reader gets from the driver: its engine reader and the torrent's files.
pub(crate) struct OpenedReader {
    pub(crate) guard: ReaderGuard,
    pub(crate) storage: Arc<Storage>,
}

/// What the API handles ask the driver.
pub(crate) enum Command {
    Add(Box<AddCmd>),
    AddMagnet(Box<AddMagnetCmd>),
    /// Answer once the torrent's metadata is here and its storage laid out.
    WaitMetadata {
        id: TorrentId,
        reply: Reply<Result<Arc<Metainfo>, Error>>,
    },
    /// Open a streaming reader on file `file` of the torrent.
    OpenReader {
        id: TorrentId,
        file: usize,
        reply: Reply<Result<OpenedReader, Error>>,
    },
    /// Run a job on the engine (it replies itself).
    Run(EngineJob),
    SetState {
        id: TorrentId,
        state: TorrentState,
        reply: Reply<Result<(), Error>>,
    },
    Hashcheck {
        id: TorrentId,
        scope: CheckScope,
        reply: Reply<HashcheckReport>,
    },
    WaitComplete {
        id: TorrentId,
        reply: Reply<Result<(), Error>>,
    },
    Resume {
        id: TorrentId,
        save: bool,
        reply: Reply<Result<(ResumeData, Option<PathBuf>), Error>>,
    },
    Remove {
        id: TorrentId,
        reply: Reply<()>,
    },
    Shutdown {
        reply: Option<Reply<()>>,
    },
}
