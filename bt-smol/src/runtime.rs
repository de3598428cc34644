//! [`Smol`]: the [`Runtime`] primitives on smol (its global executor, `smol::unblock`,
//! `smol::Timer`, `smol::net`).

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use bt_adapter::Runtime;
use bytes::BytesMut;
use smol::Async;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

/// Most bytes one read asks for: a busy connection's whole receive buffer
/// (`bt_adapter::net::READ_BUFFER`), so a fast download takes about as few reads as on
/// tokio; smaller caps took several times as many (PERF.md, "smol reads").
const MAX_READ: usize = 256 * 1024;

/// Fewest bytes one read asks for: a whole PIECE message (16 KiB and its header).
const MIN_READ: usize = 17 * 1024;

/// The reading half of a [`Smol`] stream. futures-io reads into initialised memory, so each
/// read zeroes the space it offers first; the reader offers about what the last reads
/// brought (twice it, doubling while reads fill what they are given), so a slow peer's
/// small reads do not each zero a 256 KiB buffer.
#[derive(Debug)]
pub struct SmolReader {
    stream: TcpStream,
    offer: usize,
}

/// The smol runtime, as the adapter sees it: tasks run on smol's global executor (its thread
/// count is set by `SMOL_THREADS`), blocking work on its blocking pool.
#[derive(Debug, Clone, Copy)]
pub enum Smol {}

impl Runtime for Smol {
    type Task = smol::Task<()>;
    type Listener = TcpListener;
    type Stream = TcpStream;
    // A smol stream is a shared handle: its halves are two clones.
    type Reader = SmolReader;
    type Writer = TcpStream;
    /// The std socket in smol's reactor, rather than `smol::net::UdpSocket`, which hides
    /// it: the UDP port's segmentation offload makes its own system calls on it.
    type Udp = Async<std::net::UdpSocket>;

    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) -> Self::Task {
        smol::spawn(f)
    }

    fn detach(task: Self::Task) {
        task.detach();
    }

    fn abort(task: Self::Task) {
        // A smol task is cancelled when its handle is dropped.
        drop(task);
    }

    async fn join(task: Self::Task) {
        task.await;
    }

    async fn unblock<T, F>(f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // smol's pool re-raises a job's panic in the awaiting task; the driver must survive it.
        smol::unblock(move || std::panic::catch_unwind(AssertUnwindSafe(f)).ok()).await
    }

    fn now() -> Instant {
        Instant::now()
    }

    async fn sleep_until(deadline: Instant) {
        smol::Timer::at(deadline).await;
    }

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        TcpListener::bind(addr).await
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        listener.accept().await
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        TcpStream::connect(addr).await
    }

    async fn resolve(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
        smol::net::resolve((host.as_str(), port)).await
    }

    fn split(stream: Self::Stream) -> (Self::Reader, Self::Writer) {
        let _ = stream.set_nodelay(true);
        let reader = SmolReader {
            stream: stream.clone(),
            offer: MIN_READ,
        };
        (reader, stream)
    }

    async fn read_buf(reader: &mut Self::Reader, buf: &mut BytesMut) -> io::Result<usize> {
        let start = buf.len();
        let space = (buf.capacity() - start).clamp(1, reader.offer);
        buf.resize(start + space, 0);
        let result = match buf.get_mut(start..) {
            Some(spare) => reader.stream.read(spare).await,
            None => Ok(0),
        };
        let n = result.as_ref().map_or(0, |n| *n);
        buf.truncate(start + n);
        reader.offer = if n == space {
            (reader.offer * 2).min(MAX_READ)
        } else {
            (n * 2).clamp(MIN_READ, MAX_READ)
        };
        result
    }

    async fn write_vectored(writer: &mut Self::Writer, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        writer.write_vectored(bufs).await
    }

    async fn write_all(writer: &mut Self::Writer, data: &[u8]) -> io::Result<()> {
        writer.write_all(data).await
    }

    async fn shutdown(writer: &mut Self::Writer) -> io::Result<()> {
        writer.flush().await?;
        writer.shutdown(Shutdown::Write)
    }

    async fn udp_connect(local: SocketAddr, remote: SocketAddr) -> io::Result<Self::Udp> {
        let socket = Async::<std::net::UdpSocket>::bind(local)?;
        // A UDP connect only sets the default peer: it does not block.
        socket.get_ref().connect(remote)?;
        Ok(socket)
    }

    async fn udp_send(socket: &Self::Udp, packet: &[u8]) -> io::Result<()> {
        socket.send(packet).await.map(drop)
    }

    async fn udp_recv(socket: &Self::Udp, buf: &mut [u8]) -> io::Result<usize> {
        socket.recv(buf).await
    }

    fn udp_from_std(socket: std::net::UdpSocket) -> io::Result<Self::Udp> {
        Async::new(socket)
    }

    async fn udp_send_to(socket: &Self::Udp, packet: &[u8], to: SocketAddr) -> io::Result<()> {
        socket.send_to(packet, to).await.map(drop)
    }

    async fn udp_recv_from(socket: &Self::Udp, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket.recv_from(buf).await
    }

    #[cfg(unix)]
    async fn udp_io<T: Send>(
        socket: &Self::Udp,
        write: bool,
        mut op: impl FnMut(std::os::fd::BorrowedFd<'_>) -> io::Result<T> + Send,
    ) -> io::Result<T> {
        use std::os::fd::AsFd;
        if write {
            socket.write_with(|s| op(s.as_fd())).await
        } else {
            socket.read_with(|s| op(s.as_fd())).await
        }
    }
}
