//! Streaming: [`Torrent::file_reader`], a reader of one file's bytes in order while the
//! torrent downloads, and sequential download ([`Torrent::set_sequential`]).
//!
//! A reader holds an engine reader (`bt_proto::engine::Session::open_reader`): the pieces
//! from its position on are fetched before anything else. What it may read is the engine's
//! to say ([`ReadStatus`]): only verified bytes, which it then reads from the file on the
//! runtime's blocking pool. When nothing at its position is verified yet it waits for the
//! torrent's next events (a piece passing, a state changing) and asks again; it never
//! polls on a timer. Its state machine is written once, here ([`FileReader`]); each runtime
//! crate wraps it in a type with that runtime's read and seek traits ([`ReaderRuntime`]).

use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bt_proto::engine::{ReadStatus, ReaderId, seek_target};
use bytes::{Buf, Bytes};

use crate::Error;
use crate::disk::Storage;
use crate::events::Events;
use crate::handle::Handle;
use crate::messages::{Command, OpenedReader, ReaderGuard, reply};
use crate::runtime::Runtime;
use crate::torrent::Torrent;

/// Bytes a reader takes from the file at a time (fewer if fewer are verified): 1 MiB, well
/// under a millisecond from the page cache, so that a reader reading small buffers does not
/// ask the driver and the blocking pool for each; it is also what a reader holds in memory
/// at most.
pub const READ_CHUNK: usize = 1024 * 1024;

/// A runtime whose file readers ([`Torrent::file_reader`]) implement its own async read and
/// seek traits: the runtime crate wraps the shared [`FileReader`] in
/// [`ReaderRuntime::FileReader`] and adapts the poll methods, nothing more.
pub trait ReaderRuntime: Runtime + Sized {
    /// The runtime's file reader; through `DerefMut` it has [`FileReader`]'s methods too.
    type FileReader: From<FileReader<Self>>
        + std::ops::DerefMut<Target = FileReader<Self>>
        + std::fmt::Debug
        + Send
        + Unpin
        + 'static;
}

/// The disk read or wait in flight for the bytes at a reader's position.
type Fill = Pin<Box<dyn Future<Output = Result<Bytes, Error>> + Send>>;

/// A reader of one file of a torrent, in order, while the torrent downloads: the state
/// machine the runtime crates' readers wrap (see [`ReaderRuntime`]). Its methods are
/// poll-style ([`FileReader::poll_fill_buf`], [`FileReader::consume`],
/// [`FileReader::poll_read`]) with [`FileReader::seek`] and an `async` [`FileReader::read`].
///
/// It returns only verified bytes, waiting for them when they are not yet; at the end of
/// the file a read returns 0. Errors come as [`io::Error`]s wrapping an [`Error`]
/// (`e.get_ref()` and `downcast_ref::<Error>()`): [`Error::Stopped`] if the torrent is
/// stopped while the reader waits, [`Error::NoSuchTorrent`] once it is removed,
/// [`Error::Storage`] if the file cannot be read or the torrent's storage failed. Dropping
/// it releases its engine reader.
pub struct FileReader<R: Runtime> {
    handle: Handle<R>,
    file: usize,
    len: u64,
    /// Where the next byte returned is, in bytes from the file's start.
    pos: u64,
    reader: ReaderId,
    /// Closes the engine reader when dropped; `None` only while the reader is dropped.
    guard: Option<ReaderGuard>,
    storage: Arc<Storage>,
    /// Verified bytes read at `pos` and not yet returned.
    buf: Bytes,
    fill: Option<Fill>,
}

impl<R: Runtime> std::fmt::Debug for FileReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("torrent", &self.handle.id)
            .field("file", &self.file)
            .field("position", &self.pos)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<R: ReaderRuntime> Torrent<R> {
    /// A reader of file `file` (in metainfo order, as [`Torrent::files`] lists them) that
    /// returns its bytes in order as they are downloaded and verified: the pieces from its
    /// position on are fetched before any other, and a seek moves that window. Several
    /// readers may be open at once, on one file or several. A file of priority 0 is wanted
    /// again. [`Error::NoSuchFile`] if there is no such file.
    /// On tokio, `bt_tokio::FileReader` is a `tokio::io::AsyncRead + AsyncSeek`; on smol,
    /// `bt_smol::FileReader` a `futures_io::AsyncRead + AsyncSeek` (their docs have examples).
    pub async fn file_reader(&self, file: usize) -> Result<R::FileReader, Error> {
        Ok(FileReader::open(self, file).await?.into())
    }
}

impl<R: Runtime> Torrent<R> {
    /// Picks the pieces to download in index order (`true`) or rarest first (`false`, the
    /// default); readers' pieces come first either way. See also
    /// [`crate::TorrentOptions::sequential`].
    pub async fn set_sequential(&self, on: bool) -> Result<(), Error> {
        let (handle, _) = self.parts();
        handle
            .query(move |s, id, now| s.set_sequential(now, id, on).then_some(()))
            .await
    }
}

impl<R: Runtime> FileReader<R> {
    async fn open(torrent: &Torrent<R>, file: usize) -> Result<Self, Error> {
        let (handle, meta) = torrent.parts();
        let map = meta.piece_map();
        let len = map.file_len(file).ok_or(Error::NoSuchFile {
            file,
            files: map.file_count(),
        })?;
        let (reply, rx) = reply();
        handle
            .send(Command::OpenReader {
                id: handle.id,
                file,
                reply,
            })
            .await?;
        let OpenedReader { guard, storage } =
            rx.recv().await.map_err(|_| Error::SessionClosed)??;
        Ok(FileReader {
            handle: handle.clone(),
            file,
            len,
            pos: 0,
            reader: guard.reader,
            guard: Some(guard),
            storage,
            buf: Bytes::new(),
            fill: None,
        })
    }

    /// The file's index in the torrent.
    pub fn file(&self) -> usize {
        self.file
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Where the next byte read comes from, in bytes from the file's start.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Verified bytes at the position, waiting for them if there are none yet; empty at the
    /// end of the file. [`FileReader::consume`] says how many were used.
    pub fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.buf.is_empty() && self.pos < self.len {
            let fill = self.fill.get_or_insert_with(|| {
                Box::pin(fill(
                    self.handle.clone(),
                    self.storage.clone(),
                    self.reader,
                    self.file,
                    self.pos,
                ))
            });
            let result = ready!(fill.as_mut().poll(cx));
            self.fill = None;
            self.buf = result.map_err(io::Error::other)?;
        }
        Poll::Ready(Ok(&self.buf))
    }

    /// `n` bytes of what [`FileReader::poll_fill_buf`] gave were used.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.pos += n as u64;
    }

    /// Reads into `out` what is verified at the position, waiting until something is: the
    /// number of bytes read, 0 at the end of the file (or if `out` is empty).
    pub fn poll_read(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = ready!(self.poll_fill_buf(cx))?;
        let n = data.len().min(out.len());
        if let (Some(to), Some(from)) = (out.get_mut(..n), data.get(..n)) {
            to.copy_from_slice(from);
        }
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// [`FileReader::poll_read`] as a future.
    pub async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, out)).await
    }

    /// Moves to `to` and returns the new position (past the end is allowed: reads there
    /// return 0; before the start is an [`io::ErrorKind::InvalidInput`] error). The engine's
    /// window moves with it, so the pieces there are fetched first.
    pub fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = seek_target(self.len, self.pos, to).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the file's start")
        })?;
        if pos == self.pos {
            return Ok(pos);
        }
        // Bytes already read stay good for a seek forward within them.
        match pos.checked_sub(self.pos) {
            Some(ahead) if ahead < self.buf.len() as u64 => self.buf.advance(ahead as usize),
            _ => self.buf.clear(),
        }
        self.fill = None;
        self.pos = pos;
        // At once, so the window moves before the next read asks; when the command queue is
        // full, the next read moves it.
        let reader = self.reader;
        let _ = self
            .handle
            .shared
            .commands
            .try_send(Command::Run(Box::new(move |s, now| {
                s.move_reader(now, reader, pos);
            })));
        Ok(pos)
    }
}

impl<R: Runtime> Drop for FileReader<R> {
    fn drop(&mut self) {
        // A drop cannot wait for room in the command queue: the guard leaves the id for the
        // driver, and then an empty command wakes it. When the queue is full, the commands
        // in it do.
        drop(self.guard.take());
        let _ = self
            .handle
            .shared
            .commands
            .try_send(Command::Run(Box::new(|_, _| {})));
    }
}

/// Waits until bytes at `pos` of `file` are verified, and reads them (at most
/// [`READ_CHUNK`]); moves the engine's reader there first.
async fn fill<R: Runtime>(
    handle: Handle<R>,
    storage: Arc<Storage>,
    reader: ReaderId,
    file: usize,
    pos: u64,
) -> Result<Bytes, Error> {
    // Subscribed once the bytes are not there, and before looking again: a piece passing
    // after that look wakes the wait. Only the latest event is kept: the wait looks again
    // whatever it was.
    let mut events: Option<Events> = None;
    loop {
        let status = handle
            .query(move |s, id, now| {
                s.move_reader(now, reader, pos);
                s.read_status(id, file, pos)
            })
            .await?;
        match status {
            ReadStatus::Ready(n) => {
                let len = usize::try_from(n).unwrap_or(usize::MAX).min(READ_CHUNK);
                let storage = storage.clone();
                return R::unblock(move || storage.read_file(file, pos, len))
                    .await
                    .ok_or(Error::SessionClosed)?
                    .map_err(Error::Storage);
            }
            ReadStatus::End => return Ok(Bytes::new()),
            ReadStatus::Stopped => return Err(Error::Stopped),
            ReadStatus::Failed(e) => return Err(Error::Storage(e)),
            ReadStatus::Wait => match &mut events {
                None => events = Some(handle.events.subscribe_latest()),
                Some(events) => changed(events).await?,
            },
        }
    }
}

/// Waits for the torrent's next event (the subscriber keeps only the latest, so none is
/// relied on: the caller looks at the state again whatever it says).
async fn changed(events: &mut Events) -> Result<(), Error> {
    events.next().await.map(drop).ok_or(Error::NoSuchTorrent)
}
