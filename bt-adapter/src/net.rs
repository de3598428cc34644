//! Peer connections: the listener, outbound connects, and one task per connection that reads
//! into `Bytes` for the engine and writes the engine's buffers with vectored writes.
//!
//! Back-pressure, both ways, with bounded memory per connection:
//! - Reading: the driver's input queue is bounded; a reader waits for room before it reads
//!   again, so a fast peer cannot outrun the engine.
//! - Writing: the driver counts the bytes queued to each connection's writer. A peer that
//!   does not drain what it asked for, past [`MAX_WRITE_QUEUE_BYTES`], is disconnected (and the
//!   engine told it closed): a stalled peer must not hold the session's memory. The writer
//!   reports what the socket took ([`Input::Written`]), so the engine hands a connection
//!   only what its send watermark allows and keeps the rest of a peer's requests where a
//!   CANCEL still reaches them.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bt_proto::ConnId;
use bt_proto::engine::Input;
use bytes::{Buf, Bytes, BytesMut};
use tracing::Instrument;

use crate::messages::Msg;
use crate::runtime::{Runtime, timeout_at};

/// An outbound connection that is not established by then is given up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Receive buffer allocated at a time once a connection is busy; each read has at least
/// [`MIN_READ_SPACE`] free. Large reads amortise the syscall and the driver's per-input cost
/// at gigabit rates.
pub const READ_BUFFER: usize = 256 * 1024;

/// Receive buffer of a connection that has not yet filled one: a handshake and the small
/// messages of an idle peer fit, so a thousand idle connections hold 4 MiB, not 256 MiB.
/// A read that fills the free space marks the connection busy ([`READ_BUFFER`] from then on).
pub const FIRST_READ_BUFFER: usize = 4 * 1024;

/// Free space a read is given once busy (a new buffer is allocated below it).
pub const MIN_READ_SPACE: usize = 64 * 1024;

/// Full-size receive buffers handed on by connections and not known to be free yet: their
/// blocks live until the engine lets go of their piece (stored, or dropped). Above what a
/// download at the default in-flight limit holds (PERF.md, "Receive buffers"); past it the
/// oldest is forgotten, and its memory goes back to the allocator when its blocks are dropped.
pub const MAX_RETIRED_BUFFERS: usize = 128;

/// Free receive buffers kept however long they stay unused: one 4 MiB piece's worth of
/// [`READ_BUFFER`]s, so at most 4 MiB stays held once downloads stop.
pub const MAX_FREE_BUFFERS: usize = 16;

/// How long a free receive buffer beyond [`MAX_FREE_BUFFERS`] is kept. A download takes
/// one every fraction of a millisecond, and its working set swings by dozens of buffers
/// from one stored piece to the next, so only a buffer nobody took for this long is surplus.
pub const FREE_BUFFER_TTL: Duration = Duration::from_secs(1);

/// A buffer handed on by a connection, and since when it has been seen free.
#[derive(Debug)]
struct Retired {
    buf: BytesMut,
    free_since: Option<Instant>,
}

/// Receive buffers handed on by connections, to be taken again once their blocks are gone.
///
/// A connection takes a freed one before asking the allocator: buffers are filled on the
/// runtime's threads and freed wherever the engine runs, and the allocator's per-thread
/// arenas would each grow to the download's peak; reused, a few dozen buffers serve a whole
/// download (PERF.md, "Receive buffers").
#[derive(Debug)]
struct BufferPool {
    list: Mutex<VecDeque<Retired>>,
}

/// Whether nothing else uses `buf`'s memory any more; if so it is emptied and made the
/// whole [`READ_BUFFER`] again.
fn reclaim(buf: &mut BytesMut) -> bool {
    buf.clear();
    buf.try_reclaim(READ_BUFFER)
}

impl BufferPool {
    const fn new() -> Self {
        BufferPool {
            list: Mutex::new(VecDeque::new()),
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, VecDeque<Retired>> {
        // A list of buffers cannot be left inconsistent by a panic: poison is ignored.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `old` in and returns an empty [`READ_BUFFER`]: a freed one, else a new one.
    fn exchange(&self, old: BytesMut) -> BytesMut {
        let mut list = self.list();
        let free = list.iter_mut().position(|r| reclaim(&mut r.buf));
        let buf = free
            .and_then(|i| list.remove(i))
            .map_or_else(|| BytesMut::with_capacity(READ_BUFFER), |r| r.buf);
        if list.len() >= MAX_RETIRED_BUFFERS {
            list.pop_front();
        }
        list.push_back(Retired {
            buf: old,
            free_since: None,
        });
        buf
    }

    /// Lets go of the buffers free for [`FREE_BUFFER_TTL`], but [`MAX_FREE_BUFFERS`].
    fn release(&self, now: Instant) {
        let mut kept = 0;
        self.list().retain_mut(|r| {
            if !reclaim(&mut r.buf) {
                r.free_since = None;
                return true;
            }
            let since = *r.free_since.get_or_insert(now);
            if now.saturating_duration_since(since) < FREE_BUFFER_TTL {
                return true;
            }
            kept += 1;
            kept <= MAX_FREE_BUFFERS
        });
    }

    /// Buffers held, and how many of them are free.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let mut list = self.list();
        let free = list
            .iter_mut()
            .map(|r| reclaim(&mut r.buf))
            .filter(|&f| f)
            .count();
        (list.len(), free)
    }
}

/// The receive buffers of every connection of the process, so that a buffer freed by any
/// torrent serves any connection's next read.
static POOL: BufferPool = BufferPool::new();

/// Gives `buf` (empty) the capacity for a read of `size`: its own memory when nothing else
/// uses it any more, else for a full-size read a freed buffer, else a new one.
fn renew(buf: &mut BytesMut, size: usize) {
    if buf.try_reclaim(size) {
        return;
    }
    let old = std::mem::take(buf);
    *buf = if size == READ_BUFFER {
        POOL.exchange(old)
    } else {
        BytesMut::with_capacity(size)
    };
}

/// Lets go of receive buffers that downloads no longer need (see [`FREE_BUFFER_TTL`]). The
/// driver calls it every [`FREE_BUFFER_TTL`] while the pool holds buffers; true while it
/// still does.
pub(crate) fn release_free_buffers(now: Instant) -> bool {
    POOL.release(now);
    !POOL.list().is_empty()
}

/// Whether the pool holds buffers (so the driver should call [`release_free_buffers`]).
pub(crate) fn buffers_pooled() -> bool {
    !POOL.list().is_empty()
}

/// Reads of one connection handed to the driver and not yet handled by the engine. The
/// driver's queue is shared by every connection and bounded in messages; this bounds it in
/// bytes too (4 × [`READ_BUFFER`] = 1 MiB per connection), so a driver that falls behind
/// (a loaded machine) slows the readers instead of buffering hundreds of MiB.
pub const MAX_QUEUED_READS: usize = 4;

/// Bytes queued to one connection's writer before the peer is considered stalled and is
/// disconnected. Twice what a peer can legitimately have in flight: 500 queued requests of
/// 16 KiB each (`DEFAULT_MAX_PEER_REQUESTS`) is about 8 MiB.
pub const MAX_WRITE_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Buffers gathered into one vectored write: well under every platform's `IOV_MAX` (1024 on
/// Linux), large enough to send a few hundred KiB per syscall.
const MAX_IOV: usize = 64;

/// Pause after a failed accept (out of descriptors and the like): wait rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the driver tells a connection's writer.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// Write these buffers in order.
    Data(Vec<Bytes>),
    /// Flush what is queued, then close.
    Close,
}

/// The writer's queue as the driver sees it: messages plus a count of bytes not yet written.
#[derive(Debug)]
struct WriteQueue {
    tx: Sender<WriterMsg>,
    queued: Arc<AtomicUsize>,
}

impl WriteQueue {
    /// Queues buffers; `false` if the peer has stalled past [`MAX_WRITE_QUEUE_BYTES`].
    fn send(&self, bufs: Vec<Bytes>) -> bool {
        let n: usize = bufs.iter().map(Bytes::len).sum();
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > MAX_WRITE_QUEUE_BYTES {
            return false;
        }
        self.tx.try_send(WriterMsg::Data(bufs)).is_ok()
    }
}

/// What a connection's writer tells the driver of the bytes its socket took: a count, and one
/// [`Msg::Written`] while the count waits for the driver, however many writes add to it, so
/// that a fast connection does not send a message per write.
#[derive(Debug, Clone)]
pub(crate) struct WrittenCount(Arc<AtomicUsize>);

impl WrittenCount {
    fn new() -> Self {
        WrittenCount(Arc::new(AtomicUsize::new(0)))
    }

    /// Adds `n` bytes the socket took, sending `tell()` to the driver if it has taken the
    /// count since (so that one message waits at a time).
    async fn add<M>(&self, n: usize, inputs: &Sender<M>, tell: impl FnOnce() -> M) {
        if n > 0 && self.0.fetch_add(n, Ordering::AcqRel) == 0 {
            let _ = inputs.send(tell()).await;
        }
    }

    /// The bytes counted since the last call, for [`Input::Written`].
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::AcqRel)
    }
}

/// The driver's side of one connection.
pub(crate) struct ConnHandle<R: Runtime> {
    queue: WriteQueue,
    written: WrittenCount,
    task: R::Task,
}

impl<R: Runtime> ConnHandle<R> {
    /// The bytes its socket took since the last call ([`Msg::Written`] says there are some).
    pub(crate) fn take_written(&self) -> usize {
        self.written.take()
    }

    /// Queues buffers for writing; `false` if the peer has stalled past the limit (the caller
    /// then drops the connection).
    pub(crate) fn send(&self, bufs: Vec<Bytes>) -> bool {
        self.queue.send(bufs)
    }

    /// Flushes and closes the connection; the task ends by itself.
    pub(crate) fn close(self) {
        let _ = self.queue.tx.try_send(WriterMsg::Close);
        R::detach(self.task);
    }

    /// Drops the connection at once, without flushing.
    pub(crate) fn abort(self) {
        R::abort(self.task);
    }
}

/// Where a connection's socket comes from.
pub(crate) enum Origin<S> {
    /// Accepted by the listener.
    Accepted(S),
    /// To be opened by the task.
    Connect(SocketAddr),
}

/// Starts the task of one connection and returns the driver's handle to it.
pub(crate) fn spawn_conn<R: Runtime>(
    conn: ConnId,
    addr: SocketAddr,
    origin: Origin<R::Stream>,
    inputs: Sender<Msg<R>>,
) -> ConnHandle<R> {
    let (tx, rx) = async_channel::unbounded();
    let queued = Arc::new(AtomicUsize::new(0));
    let written = WrittenCount::new();
    let span = tracing::debug_span!("peer", %conn, %addr);
    let writer = Writer {
        rx,
        queued: queued.clone(),
        written: written.clone(),
    };
    let task = R::spawn(run_conn::<R>(conn, origin, inputs, writer).instrument(span));
    ConnHandle {
        queue: WriteQueue { tx, queued },
        written,
        task,
    }
}

/// The writer's side of a connection's write queue.
struct Writer {
    rx: Receiver<WriterMsg>,
    /// Bytes queued and not written, shared with the driver's [`WriteQueue`].
    queued: Arc<AtomicUsize>,
    written: WrittenCount,
}

async fn run_conn<R: Runtime>(
    conn: ConnId,
    origin: Origin<R::Stream>,
    inputs: Sender<Msg<R>>,
    writer: Writer,
) {
    let stream = match origin {
        Origin::Accepted(s) => s,
        Origin::Connect(addr) => {
            let deadline = R::now() + CONNECT_TIMEOUT;
            let result = timeout_at::<R, _>(deadline, R::connect(addr)).await;
            let input = match &result {
                Some(Ok(_)) => Input::Connected { conn },
                Some(Err(e)) => {
                    tracing::debug!("connect failed: {e}");
                    Input::Closed { conn }
                }
                None => {
                    tracing::debug!("connect timed out");
                    Input::Closed { conn }
                }
            };
            if inputs.send(Msg::Input(input)).await.is_err() {
                return;
            }
            match result {
                Some(Ok(s)) => s,
                _ => return,
            }
        }
    };
    let (rd, wr) = R::split(stream);
    let reading = read_loop::<R>(rd, conn, inputs.clone());
    let writing = async {
        if let Err(e) = write_loop::<R>(wr, writer, conn, &inputs).await {
            tracing::debug!("write failed: {e}");
            let _ = inputs.send(Msg::Input(Input::Closed { conn })).await;
        }
    };
    futures_lite::future::or(reading, writing).await;
    tracing::trace!("connection task ends");
}

async fn read_loop<R: Runtime>(mut rd: R::Reader, conn: ConnId, inputs: Sender<Msg<R>>) {
    let mut size = FIRST_READ_BUFFER;
    let mut buf = BytesMut::with_capacity(size);
    let credit = Arc::new(async_lock::Semaphore::new(MAX_QUEUED_READS));
    loop {
        if buf.capacity() - buf.len() < MIN_READ_SPACE.min(size) {
            // Every byte read so far was handed on (split off below): the buffer is empty.
            renew(&mut buf, size);
        }
        let space = buf.capacity() - buf.len();
        let permit = credit.acquire_arc().await;
        match R::read_buf(&mut rd, &mut buf).await {
            Ok(0) | Err(_) => {
                let _ = inputs.send(Msg::Input(Input::Closed { conn })).await;
                return;
            }
            Ok(n) => {
                if n >= space {
                    size = READ_BUFFER;
                }
                let data = buf.split().freeze();
                let input = Input::Received { conn, data };
                if inputs.send(Msg::Received(input, permit)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes queued buffers until told to close (`Ok`) or the socket fails (`Err`), telling the
/// driver what the socket took.
async fn write_loop<R: Runtime>(
    mut wr: R::Writer,
    writer: Writer,
    conn: ConnId,
    inputs: &Sender<Msg<R>>,
) -> io::Result<()> {
    let Writer {
        rx,
        queued,
        written,
    } = writer;
    let report = |n: usize| written.add(n, inputs, move || Msg::Written(conn));
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let Ok(first) = rx.recv().await else {
            // The driver forgot the connection.
            return Ok(());
        };
        let mut close = false;
        match first {
            WriterMsg::Data(b) => batch.extend(b),
            WriterMsg::Close => close = true,
        }
        while !close && batch.len() < MAX_IOV {
            match rx.try_recv() {
                Ok(WriterMsg::Data(b)) => batch.extend(b),
                Ok(WriterMsg::Close) => close = true,
                Err(_) => break,
            }
        }
        let n: usize = batch.iter().map(Bytes::len).sum();
        write_all_vectored::<R, _>(&mut wr, &mut batch, report).await?;
        queued.fetch_sub(n, Ordering::Relaxed);
        if close {
            R::shutdown(&mut wr).await?;
            return Ok(());
        }
    }
}

/// Drops the first `n` bytes of `bufs[*first..]`, advancing `first` past emptied buffers.
fn consume(bufs: &mut [Bytes], first: &mut usize, n: usize) {
    let mut left = n;
    while left > 0 {
        let Some(b) = bufs.get_mut(*first) else { break };
        if b.len() <= left {
            left -= b.len();
            *first += 1;
        } else {
            b.advance(left);
            left = 0;
        }
    }
    while bufs.get(*first).is_some_and(Bytes::is_empty) {
        *first += 1;
    }
}

/// Writes every buffer, in order, with as few syscalls as the socket allows; empties `bufs`.
/// `report` is told of each write's bytes as the socket takes them.
async fn write_all_vectored<R: Runtime, F: Future<Output = ()>>(
    wr: &mut R::Writer,
    bufs: &mut Vec<Bytes>,
    report: impl Fn(usize) -> F,
) -> io::Result<()> {
    let mut first = 0;
    consume(bufs, &mut first, 0);
    while first < bufs.len() {
        let n = {
            let slices: Vec<IoSlice<'_>> = bufs
                .iter()
                .skip(first)
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            R::write_vectored(wr, &slices).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        consume(bufs, &mut first, n);
        report(n).await;
    }
    bufs.clear();
    Ok(())
}

/// Accepts connections forever and hands them to the driver.
pub(crate) async fn accept_loop<R: Runtime>(listener: R::Listener, inputs: Sender<Msg<R>>) {
    loop {
        match R::accept(&listener).await {
            Ok((stream, addr)) => {
                // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; the engine
                // compares addresses, so give it the plain form.
                let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                if inputs.send(Msg::Accepted(stream, addr)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                R::sleep_until(R::now() + ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Binds the session's listening port: `[::]` (dual-stack where the system allows it) and
/// `0.0.0.0` on the same port where it does not; IPv4 alone if IPv6 is unavailable.
pub(crate) async fn bind<R: Runtime>(
    ip: Option<std::net::IpAddr>,
    port: u16,
) -> io::Result<Vec<R::Listener>> {
    if let Some(ip) = ip {
        return Ok(vec![R::bind((ip, port).into()).await?]);
    }
    match R::bind((std::net::Ipv6Addr::UNSPECIFIED, port).into()).await {
        Ok(v6) => {
            let port = R::local_addr(&v6)?.port();
            let mut out = vec![v6];
            // Fails with "address in use" when the IPv6 socket already takes IPv4.
            if let Ok(v4) = R::bind((std::net::Ipv4Addr::UNSPECIFIED, port).into()).await {
                out.push(v4);
            }
            Ok(out)
        }
        Err(_) => Ok(vec![
            R::bind((std::net::Ipv4Addr::UNSPECIFIED, port).into()).await?,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_buffers_are_reused_once_their_blocks_are_gone() {
        let pool = BufferPool::new();
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        buf.extend_from_slice(&[7; 1000]);
        let block = buf.split().freeze();
        let memory = block.as_ptr();
        let second = pool.exchange(buf);
        assert_ne!(second.as_ptr(), memory);
        assert_eq!(
            pool.counts(),
            (1, 0),
            "the block still uses the first buffer"
        );
        drop(block);
        assert_eq!(pool.counts(), (1, 1));
        let third = pool.exchange(second);
        assert_eq!(third.as_ptr(), memory, "the first buffer is taken back");
        assert!(third.is_empty() && third.capacity() >= READ_BUFFER);
    }

    #[test]
    fn free_receive_buffers_are_released_after_a_while() {
        let pool = BufferPool::new();
        let total = MAX_FREE_BUFFERS + 5;
        let mut blocks: Vec<Bytes> = (0..total)
            .map(|_| {
                let mut buf = BytesMut::with_capacity(READ_BUFFER);
                buf.extend_from_slice(b"x");
                let block = buf.split().freeze();
                drop(pool.exchange(buf));
                block
            })
            .collect();
        assert_eq!(pool.counts(), (total, 0));
        let block = blocks.pop();
        drop(blocks);
        let t = Instant::now();
        pool.release(t);
        assert_eq!(pool.counts(), (total, total - 1), "all kept while recent");
        pool.release(t + FREE_BUFFER_TTL / 2);
        assert_eq!(pool.counts().0, total);
        pool.release(t + FREE_BUFFER_TTL);
        assert_eq!(
            pool.counts(),
            (MAX_FREE_BUFFERS + 1, MAX_FREE_BUFFERS),
            "the surplus is let go; the buffer in use stays"
        );
        drop(block);
    }

    #[test]
    fn consume_advances_across_buffers() {
        let mut bufs: Vec<Bytes> = vec![
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ];
        let mut first = 0;
        consume(&mut bufs, &mut first, 2);
        assert_eq!((first, &bufs[0][..]), (0, &b"c"[..]));
        consume(&mut bufs, &mut first, 1);
        assert_eq!(first, 2, "the empty buffer is skipped");
        consume(&mut bufs, &mut first, 5);
        assert_eq!(first, 4);
    }

    #[test]
    fn written_bytes_wait_for_the_driver_behind_one_message() {
        let (tx, rx) = async_channel::unbounded();
        let count = WrittenCount::new();
        futures_lite::future::block_on(async {
            count.add(100, &tx, || 1).await;
            count.add(0, &tx, || 2).await;
            count.add(50, &tx, || 3).await;
        });
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(rx.try_recv().is_err(), "one message for both writes");
        assert_eq!(count.take(), 150);
        assert_eq!(count.take(), 0);
        futures_lite::future::block_on(count.add(7, &tx, || 4));
        assert_eq!(
            rx.try_recv(),
            Ok(4),
            "the driver took the count: a new message"
        );
        assert_eq!(count.take(), 7);
    }

    #[test]
    fn stalled_writer_queue_is_refused() {
        let (tx, _rx) = async_channel::unbounded();
        let q = WriteQueue {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        let block = Bytes::from(vec![0u8; 16 * 1024]);
        let mut accepted = 0;
        while q.send(vec![block.clone()]) {
            accepted += 1;
            assert!(accepted <= MAX_WRITE_QUEUE_BYTES / block.len());
        }
        assert_eq!(accepted, MAX_WRITE_QUEUE_BYTES / block.len());
    }
}
