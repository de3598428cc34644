//! Peer connections: the listener, outbound connects, and one task per connection that reads
//! into `Bytes` for the engine and writes the engine's buffers with vectored writes.
//!
//! Back-pressure, both ways, with bounded memory per connection:
//! - Reading: the driver's input queue is bounded; a reader waits for room before it reads
//!   again, so a fast peer cannot outrun the engine.
//! - Writing: the driver counts the bytes queued to each connection's writer. A peer that
//!   does not drain what it asked for, past [`MAX_WRITE_QUEUE_BYTES`], is disconnected (and the
//!   engine told it closed): a stalled peer must not hold the session's memory.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bt_proto::ConnId;
use bt_proto::engine::Input;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::driver::Msg;

/// An outbound connection that is not established by then is given up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Receive buffer allocated at a time; each read has at least [`MIN_READ_SPACE`] free. Large
/// reads amortise the syscall and the driver's per-input cost at gigabit rates.
pub const READ_BUFFER: usize = 256 * 1024;

/// Free space a read is given (a new buffer is allocated below it).
pub const MIN_READ_SPACE: usize = 64 * 1024;

/// Bytes queued to one connection's writer before the peer is considered stalled and is
/// disconnected. Twice what a peer can legitimately have in flight: 500 queued requests of
/// 16 KiB each (`DEFAULT_MAX_PEER_REQUESTS`) is about 8 MiB.
pub const MAX_WRITE_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Buffers gathered into one vectored write: well under every platform's `IOV_MAX` (1024 on
/// Linux), large enough to send a few hundred KiB per syscall.
const MAX_IOV: usize = 64;

/// What the driver tells a connection's writer.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// Write these buffers in order.
    Data(Vec<Bytes>),
    /// Flush what is queued, then close.
    Close,
}

/// The driver's side of one connection.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    tx: mpsc::UnboundedSender<WriterMsg>,
    queued: Arc<AtomicUsize>,
    task: AbortHandle,
}

impl ConnHandle {
    /// Queues buffers for writing; `false` if the peer has stalled past the limit (the caller
    /// then drops the connection).
    pub(crate) fn send(&self, bufs: Vec<Bytes>) -> bool {
        let n: usize = bufs.iter().map(Bytes::len).sum();
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > MAX_WRITE_QUEUE_BYTES {
            return false;
        }
        self.tx.send(WriterMsg::Data(bufs)).is_ok()
    }

    /// Flushes and closes the connection; the task ends by itself.
    pub(crate) fn close(self) {
        let _ = self.tx.send(WriterMsg::Close);
    }

    /// Drops the connection at once, without flushing.
    pub(crate) fn abort(self) {
        self.task.abort();
    }
}

/// Where a connection's socket comes from.
pub(crate) enum Origin {
    /// Accepted by the listener.
    Accepted(TcpStream),
    /// To be opened by the task.
    Connect(SocketAddr),
}

/// Starts the task of one connection and returns the driver's handle to it.
pub(crate) fn spawn_conn(
    conn: ConnId,
    addr: SocketAddr,
    origin: Origin,
    inputs: mpsc::Sender<Msg>,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let span = tracing::debug_span!("peer", %conn, %addr);
    let task =
        tokio::spawn(run_conn(conn, addr, origin, inputs, rx, queued.clone()).instrument(span));
    ConnHandle {
        tx,
        queued,
        task: task.abort_handle(),
    }
}

async fn run_conn(
    conn: ConnId,
    addr: SocketAddr,
    origin: Origin,
    inputs: mpsc::Sender<Msg>,
    rx: mpsc::UnboundedReceiver<WriterMsg>,
    queued: Arc<AtomicUsize>,
) {
    let stream = match origin {
        Origin::Accepted(s) => s,
        Origin::Connect(addr) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    if inputs
                        .send(Msg::Input(Input::Connected { conn }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    s
                }
                Ok(Err(e)) => {
                    tracing::debug!("connect failed: {e}");
                    let _ = inputs.send(Msg::Input(Input::Closed { conn })).await;
                    return;
                }
                Err(_) => {
                    tracing::debug!("connect timed out");
                    let _ = inputs.send(Msg::Input(Input::Closed { conn })).await;
                    return;
                }
            }
        }
    };
    // Small protocol messages (requests, haves) must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    tokio::select! {
        () = read_loop(rd, conn, inputs.clone()) => {}
        r = write_loop(wr, rx, queued) => {
            if let Err(e) = r {
                tracing::debug!("write failed: {e}");
                let _ = inputs.send(Msg::Input(Input::Closed { conn })).await;
            }
        }
    }
    tracing::trace!(%addr, "connection task ends");
}

async fn read_loop(mut rd: OwnedReadHalf, conn: ConnId, inputs: mpsc::Sender<Msg>) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        if buf.capacity() - buf.len() < MIN_READ_SPACE {
            buf.reserve(READ_BUFFER);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = inputs.send(Msg::Input(Input::Closed { conn })).await;
                return;
            }
            Ok(_) => {
                // The engine keeps slices of this (piece payloads) without copying.
                let data = buf.split().freeze();
                if inputs
                    .send(Msg::Input(Input::Received { conn, data }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Writes queued buffers until told to close (`Ok`) or the socket fails (`Err`).
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    queued: Arc<AtomicUsize>,
) -> io::Result<()> {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let Some(first) = rx.recv().await else {
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
        write_all_vectored(&mut wr, &mut batch).await?;
        queued.fetch_sub(n, Ordering::Relaxed);
        if close {
            wr.shutdown().await?;
            return Ok(());
        }
    }
}

/// Writes every buffer, in order, with as few syscalls as the socket allows; empties `bufs`.
async fn write_all_vectored(wr: &mut OwnedWriteHalf, bufs: &mut Vec<Bytes>) -> io::Result<()> {
    let mut first = 0;
    while first < bufs.len() {
        let n = {
            let slices: Vec<IoSlice<'_>> = bufs
                .iter()
                .skip(first)
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            wr.write_vectored(&slices).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut left = n;
        while left > 0 {
            let Some(b) = bufs.get_mut(first) else { break };
            if b.len() <= left {
                left -= b.len();
                first += 1;
            } else {
                b.advance(left);
                left = 0;
            }
        }
        while bufs.get(first).is_some_and(Bytes::is_empty) {
            first += 1;
        }
    }
    bufs.clear();
    Ok(())
}

/// Accepts connections forever and hands them to the driver.
pub(crate) async fn accept_loop(listener: TcpListener, inputs: mpsc::Sender<Msg>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; the engine
                // compares addresses, so give it the plain form.
                let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                if inputs.send(Msg::Accepted(stream, addr)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds the session's listening port: `[::]` (dual-stack where the system allows it) and
/// `0.0.0.0` on the same port where it does not; IPv4 alone if IPv6 is unavailable.
pub(crate) async fn bind(ip: Option<std::net::IpAddr>, port: u16) -> io::Result<Vec<TcpListener>> {
    if let Some(ip) = ip {
        return Ok(vec![TcpListener::bind((ip, port)).await?]);
    }
    match TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(v6) => {
            let port = v6.local_addr()?.port();
            let mut out = vec![v6];
            // Fails with "address in use" when the IPv6 socket already takes IPv4.
            if let Ok(v4) = TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await {
                out.push(v4);
            }
            Ok(out)
        }
        Err(_) => Ok(vec![
            TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await?,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vectored_writes_arrive_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let s = TcpStream::connect(addr).await.unwrap();
            let (_rd, mut wr) = s.into_split();
            let mut bufs: Vec<Bytes> = (0..300u32)
                .map(|i| Bytes::from(vec![(i % 251) as u8; 1000 + (i as usize % 7) * 3000]))
                .collect();
            bufs.insert(5, Bytes::new());
            let expect: Vec<u8> = bufs.concat();
            write_all_vectored(&mut wr, &mut bufs).await.unwrap();
            assert!(bufs.is_empty());
            wr.shutdown().await.unwrap();
            expect
        });
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, client.await.unwrap());
    }

    #[tokio::test]
    async fn stalled_writer_queue_is_refused() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async {});
        let h = ConnHandle {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            task: task.abort_handle(),
        };
        let block = Bytes::from(vec![0u8; 16 * 1024]);
        let mut accepted = 0;
        while h.send(vec![block.clone()]) {
            accepted += 1;
            assert!(accepted <= MAX_WRITE_QUEUE_BYTES / block.len());
        }
        assert_eq!(accepted, MAX_WRITE_QUEUE_BYTES / block.len());
    }
}
