//! The [`Runtime`] trait: the few things an async runtime must provide (tasks, the blocking
//! pool, a clock and a timer, TCP and UDP sockets (multicast ones made by the adapter), DNS).
//! Everything else an adapter does is written once, in this crate, over this trait; `bt-tokio` and `bt-smol` each implement it in a page.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;

/// An async runtime, seen as a set of primitive operations.
///
/// Every method is an associated function (there is no runtime value): the runtime is the
/// ambient one (tokio's current runtime, smol's global executor).
pub trait Runtime: Send + Sync + 'static {
    /// A spawned task that can be aborted.
    type Task: Send + 'static;
    /// A listening TCP socket.
    type Listener: Send + Sync + 'static;
    /// A connected TCP socket.
    type Stream: Send + 'static;
    /// The reading half of a [`Runtime::Stream`].
    type Reader: Send + 'static;
    /// The writing half of a [`Runtime::Stream`].
    type Writer: Send + 'static;
    /// A UDP socket: connected to one remote address (trackers), or not (local service
    /// discovery).
    type Udp: Send + Sync + 'static;

    /// Runs `f` as a task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) -> Self::Task;
    /// Lets the task run on without a handle.
    fn detach(task: Self::Task);
    /// Stops the task at its next await point.
    fn abort(task: Self::Task);
    /// Waits for the task to end.
    fn join(task: Self::Task) -> impl Future<Output = ()> + Send;
    /// Runs `f` on the blocking pool; `None` if it panicked.
    fn unblock<T, F>(f: F) -> impl Future<Output = Option<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;
    /// The runtime's clock: the time every deadline given to [`Runtime::sleep_until`] is
    /// measured against. The adapter reads no other clock, so a runtime with a virtual clock
    /// (tokio's paused time, in tests) moves the adapter's timeouts and timers with it.
    fn now() -> Instant;
    /// Completes at `deadline` (an instant of [`Runtime::now`]'s clock).
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;

    /// Binds a TCP listener.
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// The address a listener is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// Accepts one connection.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// Opens a TCP connection.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Resolves a host name (or parses an address literal).
    fn resolve(host: String, port: u16)
    -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
    /// Splits a stream into halves (with Nagle's algorithm off: small protocol messages such
    /// as requests must not wait).
    fn split(stream: Self::Stream) -> (Self::Reader, Self::Writer);
    /// Reads what is available into the spare capacity of `buf` (at least one byte of it);
    /// 0 at end of stream.
    fn read_buf(
        reader: &mut Self::Reader,
        buf: &mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes from the buffers in order; returns how many bytes were written.
    fn write_vectored(
        writer: &mut Self::Writer,
        bufs: &[IoSlice<'_>],
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes all of `data`.
    fn write_all(
        writer: &mut Self::Writer,
        data: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Flushes and shuts down the writing direction.
    fn shutdown(writer: &mut Self::Writer) -> impl Future<Output = io::Result<()>> + Send;

    /// A UDP socket bound to `local` and connected to `remote`.
    fn udp_connect(
        local: SocketAddr,
        remote: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Udp>> + Send;
    /// Sends one datagram.
    fn udp_send(socket: &Self::Udp, packet: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Receives one datagram; returns its length.
    fn udp_recv(
        socket: &Self::Udp,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Takes a UDP socket the adapter opened and set up itself (bound, options set, joined
    /// to multicast groups, for local service discovery), already non-blocking. Must be
    /// called on the runtime (inside it, for tokio).
    fn udp_from_std(socket: std::net::UdpSocket) -> io::Result<Self::Udp>;
    /// Sends one datagram to `to`.
    fn udp_send_to(
        socket: &Self::Udp,
        packet: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Receives one datagram; returns its length and sender.
    fn udp_recv_from(
        socket: &Self::Udp,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
    /// Runs `op` on the socket once it is ready to write (`write`) or to read, and again
    /// each time `op` fails with [`io::ErrorKind::WouldBlock`]. For system calls the
    /// runtimes' sockets do not offer: the UDP port's segmentation offload (Linux).
    #[cfg(unix)]
    fn udp_io<T: Send>(
        socket: &Self::Udp,
        write: bool,
        op: impl FnMut(std::os::fd::BorrowedFd<'_>) -> io::Result<T> + Send,
    ) -> impl Future<Output = io::Result<T>> + Send;
}

/// `f`, or `None` if `deadline` comes first.
pub async fn timeout_at<R: Runtime, T>(
    deadline: Instant,
    f: impl Future<Output = T> + Send,
) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        R::sleep_until(deadline).await;
        None
    })
    .await
}
