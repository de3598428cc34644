//! [`Tokio`]: the [`Runtime`] primitives on tokio (the current runtime, its blocking pool,
//! its timer, its sockets and resolver).

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Instant;

use bt_adapter::Runtime;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// The tokio runtime, as the adapter sees it. Sessions run on the runtime current where they
/// are started.
#[derive(Debug, Clone, Copy)]
pub enum Tokio {}

impl Runtime for Tokio {
    type Task = JoinHandle<()>;
    type Listener = TcpListener;
    type Stream = TcpStream;
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;
    type Udp = UdpSocket;

    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) -> Self::Task {
        tokio::spawn(f)
    }

    fn detach(task: Self::Task) {
        drop(task);
    }

    fn abort(task: Self::Task) {
        task.abort();
    }

    async fn join(task: Self::Task) {
        let _ = task.await;
    }

    async fn unblock<T, F>(f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        tokio::task::spawn_blocking(f).await.ok()
    }

    fn now() -> Instant {
        // tokio's clock, not the system's: under paused time (`start_paused`, tests) the two
        // differ, and deadlines must be read on the clock `sleep_until` sleeps on.
        tokio::time::Instant::now().into_std()
    }

    async fn sleep_until(deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await;
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
        Ok(tokio::net::lookup_host((host.as_str(), port))
            .await?
            .collect())
    }

    fn split(stream: Self::Stream) -> (Self::Reader, Self::Writer) {
        let _ = stream.set_nodelay(true);
        stream.into_split()
    }

    async fn read_buf(reader: &mut Self::Reader, buf: &mut BytesMut) -> io::Result<usize> {
        reader.read_buf(buf).await
    }

    async fn write_vectored(writer: &mut Self::Writer, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        writer.write_vectored(bufs).await
    }

    async fn write_all(writer: &mut Self::Writer, data: &[u8]) -> io::Result<()> {
        writer.write_all(data).await
    }

    async fn shutdown(writer: &mut Self::Writer) -> io::Result<()> {
        writer.shutdown().await
    }

    async fn udp_connect(local: SocketAddr, remote: SocketAddr) -> io::Result<Self::Udp> {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(remote).await?;
        Ok(socket)
    }

    async fn udp_send(socket: &Self::Udp, packet: &[u8]) -> io::Result<()> {
        socket.send(packet).await.map(drop)
    }

    async fn udp_recv(socket: &Self::Udp, buf: &mut [u8]) -> io::Result<usize> {
        socket.recv(buf).await
    }

    fn udp_from_std(socket: std::net::UdpSocket) -> io::Result<Self::Udp> {
        UdpSocket::from_std(socket)
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
        let interest = if write {
            tokio::io::Interest::WRITABLE
        } else {
            tokio::io::Interest::READABLE
        };
        socket.async_io(interest, || op(socket.as_fd())).await
    }
}
