//! The session's UDP port, shared by the DHT and uTP (the engine tells their datagrams
//! apart): on the port number of the TCP listener, as libtorrent does, or on the configured
//! port when there is no TCP listener (uTP only).
//!
//! One task receives and one task sends. uTP moves a transfer in datagrams of 1,400 bytes,
//! over a hundred thousand a second at the speeds we want, so both sides work in batches:
//! - Receiving: after each datagram the task takes whatever else the socket already holds
//!   (up to [`RECV_BATCH`]) without waiting, and hands the lot to the driver in one message;
//!   the engine then sees them in one go and acknowledges them with one packet.
//! - Sending: the driver gathers the datagrams of one drain of the engine. It sends them
//!   itself while the socket takes them without waiting; what is left goes to the sender
//!   task in one message, and until that task has sent it all, later datagrams follow it
//!   there, so everything leaves in order (a task per datagram would cost a task each and
//!   let the runtime reorder them).
//!
//! On Linux both directions also use segmentation offload (see `udp_offload`): a run of
//! datagrams to one peer leaves in one system call, and datagrams from one peer arrive
//! coalesced in one.
//!
//! Datagrams are never buffered without bound: the kernel drops what arrives while the
//! driver's queue is full, and the driver drops what it would queue beyond
//! [`MAX_QUEUED_DATAGRAMS`], as a congested network would. uTP's congestion control reads
//! both as loss and slows down; the DHT retries.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use bytes::{Bytes, BytesMut};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::messages::Msg;
use crate::runtime::Runtime;
use crate::udp_offload::{self, MAX_SEGMENTS};

/// Receive buffer: the largest UDP payload, so no datagram is ever cut to a length that
/// might parse; the engine drops what is longer than a KRPC message or a uTP packet may be.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// Datagrams handed to the driver in one message at most: enough to amortise the channel
/// and the driver's wake-up over a burst of uTP packets, few enough that the first of them
/// (and the ack they call for) does not wait long for the last.
pub const RECV_BATCH: usize = 64;

/// Datagrams queued for the sender task and not yet sent, past which more are dropped: about
/// 5.6 MiB of full uTP packets, several connections' full windows (1 MiB each at most), so
/// only a sender that cannot keep up at all loses any.
pub const MAX_QUEUED_DATAGRAMS: usize = 4096;

/// Kernel socket buffers asked for, each way: 4 MiB, about 1,500 queued datagrams of uTP
/// (each counts with its overhead), so that a burst received while the receive task waits
/// for the driver is not dropped at once. The kernel caps it (`net.core.rmem_max`,
/// `wmem_max` on Linux).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Received datagrams are copied into arenas of this size, each datagram a slice: one
/// allocation per arena instead of one per datagram.
const RECV_ARENA: usize = 64 * 1024;

/// Wait after a receive error before the next receive, so that an error that repeats (the
/// interface went away) does not spin the task.
const RECV_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Datagrams to send, in order.
type Batch = Vec<(SocketAddr, Bytes)>;

/// Whether the port may send segmented (see `udp_offload`): on Linux until a segmented send
/// fails, never elsewhere.
struct Offload {
    gso: AtomicBool,
}

impl Offload {
    fn new() -> Self {
        Offload {
            gso: AtomicBool::new(cfg!(target_os = "linux")),
        }
    }

    /// Datagrams in one send at most.
    fn max_segments(&self) -> usize {
        if self.gso.load(Ordering::Relaxed) {
            MAX_SEGMENTS
        } else {
            1
        }
    }
}

/// The session's UDP socket and its two tasks.
pub(crate) struct UdpPort<R: Runtime> {
    port: u16,
    /// Whether the socket is IPv6 (dual stack): IPv4 destinations are then given mapped.
    v6: bool,
    /// The sender task's queue; `None` once closed.
    out: Option<Sender<Batch>>,
    /// Datagrams in `out` not yet sent.
    queued: Arc<AtomicUsize>,
    socket: Arc<R::Udp>,
    offload: Arc<Offload>,
    /// A segmented send's datagrams, end to end.
    scratch: Vec<u8>,
    /// Datagrams of the current drain, not yet handed to the sender.
    pending: Batch,
    /// Datagrams dropped because the sender was behind, logged once per flush.
    dropped: usize,
    receiver: Option<R::Task>,
}

impl<R: Runtime> UdpPort<R> {
    /// Opens the socket on `port` of `ip` (default: every address, IPv6 and IPv4) and
    /// starts its tasks; received datagrams go to `inputs`.
    pub fn open(ip: Option<IpAddr>, port: u16, inputs: &Sender<Msg<R>>) -> io::Result<Self> {
        let (socket, v6) = open_socket(ip, port)?;
        let port = socket.local_addr()?.port();
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            // Best effort: without it each datagram is received on its own.
            let gro = udp_offload::sys::enable_gro(socket.as_fd());
            tracing::debug!(gro, "UDP receive offload");
        }
        let socket = Arc::new(R::udp_from_std(socket)?);
        let offload = Arc::new(Offload::new());
        let (out, rx) = async_channel::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        // Detached: once the port is closed it sends what is queued (uTP's last packets),
        // then ends with its channel.
        let sender = send_loop::<R>(socket.clone(), offload.clone(), rx, queued.clone());
        R::detach(R::spawn(sender));
        let receiver = R::spawn(receive_loop::<R>(socket.clone(), inputs.clone()));
        Ok(UdpPort {
            port,
            v6,
            out: Some(out),
            queued,
            socket,
            offload,
            scratch: Vec::new(),
            pending: Vec::new(),
            dropped: 0,
            receiver: Some(receiver),
        })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queues `data` for `to`; it goes out at the next [`UdpPort::flush`].
    pub fn send(&mut self, to: SocketAddr, data: Bytes) {
        if self.out.is_none() {
            return;
        }
        if self.queued.load(Ordering::Relaxed) + self.pending.len() >= MAX_QUEUED_DATAGRAMS {
            self.dropped += 1;
            return;
        }
        let to = match to {
            SocketAddr::V4(a) if self.v6 => {
                SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port())
            }
            to => to,
        };
        self.pending.push((to, data));
    }

    /// Sends the datagrams queued since the last flush: at once, from the driver, as long as
    /// the sender task has nothing queued (so the order holds) and the socket takes them
    /// without waiting; the rest through the sender task. In the common case this saves a
    /// wake-up of another thread per drain (measured on a loaded machine: a uTP seeder's CPU
    /// a few percent lower, the transfer no slower).
    pub async fn send_now(&mut self) {
        if self.queued.load(Ordering::Acquire) == 0 {
            let mut sent = 0;
            for run in udp_offload::runs(&self.pending, self.offload.max_segments()) {
                let end = run.end;
                let run = self.pending.get(run).unwrap_or_default();
                let send = send_run::<R>(&self.socket, &self.offload, run, &mut self.scratch);
                if futures_lite::future::poll_once(send).await.is_none() {
                    break;
                }
                sent = end;
            }
            self.pending.drain(..sent);
        }
        self.flush();
    }

    /// Hands the datagrams queued since the last flush to the sender task.
    pub fn flush(&mut self) {
        if self.dropped > 0 {
            tracing::debug!(
                dropped = self.dropped,
                "UDP sender behind; datagrams dropped"
            );
            self.dropped = 0;
        }
        let (Some(out), false) = (&self.out, self.pending.is_empty()) else {
            return;
        };
        let batch = std::mem::take(&mut self.pending);
        self.queued.fetch_add(batch.len(), Ordering::Relaxed);
        // Unbounded: `queued` bounds it, in datagrams.
        let _ = out.try_send(batch);
    }

    /// Stops receiving; what was flushed is still sent, then the socket closes.
    pub fn close(&mut self) {
        self.flush();
        if let Some(t) = self.receiver.take() {
            R::abort(t);
        }
        self.out = None;
    }
}

impl<R: Runtime> Drop for UdpPort<R> {
    fn drop(&mut self) {
        if let Some(t) = self.receiver.take() {
            R::abort(t);
        }
    }
}

/// Sends every batch in order until the port is closed and its queue empty.
async fn send_loop<R: Runtime>(
    socket: Arc<R::Udp>,
    offload: Arc<Offload>,
    rx: Receiver<Batch>,
    queued: Arc<AtomicUsize>,
) {
    let mut scratch = Vec::new();
    while let Ok(batch) = rx.recv().await {
        for run in udp_offload::runs(&batch, offload.max_segments()) {
            let run = batch.get(run).unwrap_or_default();
            send_run::<R>(&socket, &offload, run, &mut scratch).await;
        }
        queued.fetch_sub(batch.len(), Ordering::Release);
    }
}

/// Sends `run` (one of [`udp_offload::runs`]): in one segmented send where it can, else
/// one datagram at a time. A datagram that cannot go (no route, ICMP errors reported late)
/// is lost, as the network may lose any.
async fn send_run<R: Runtime>(
    socket: &R::Udp,
    offload: &Offload,
    run: &[(SocketAddr, Bytes)],
    scratch: &mut Vec<u8>,
) {
    #[cfg(target_os = "linux")]
    if let [(to, first), _, ..] = run
        && let Ok(segment) = u16::try_from(first.len())
    {
        scratch.clear();
        for (_, data) in run {
            scratch.extend_from_slice(data);
        }
        let send = |fd: std::os::fd::BorrowedFd<'_>| {
            udp_offload::sys::send_segments(fd, *to, scratch, segment)
        };
        match R::udp_io(socket, true, send).await {
            Ok(()) => return,
            // The kernel, the device or the route cannot segment: every datagram on its
            // own from now on, these first.
            Err(e) if udp_offload::sys::offload_refused(&e) => {
                tracing::debug!(%to, "UDP segmentation offload off: {e}");
                offload.gso.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::trace!(%to, "UDP send: {e}");
                return;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (offload, scratch);
    for (to, data) in run {
        if let Err(e) = R::udp_send_to(socket, data, *to).await {
            tracing::trace!(%to, "UDP send: {e}");
        }
    }
}

/// Feeds the datagrams of `socket` to the driver in batches, until the driver is gone.
async fn receive_loop<R: Runtime>(socket: Arc<R::Udp>, inputs: Sender<Msg<R>>) {
    let mut scratch = vec![0u8; MAX_DATAGRAM];
    let mut arena = BytesMut::new();
    loop {
        let first = receive::<R>(&socket, &mut scratch).await;
        let mut batch = Vec::new();
        match first {
            Ok(got) => split(&mut batch, take(&mut arena, &scratch, got.0), got),
            Err(e) => {
                // Linux also reports here an ICMP "port unreachable" of an earlier send.
                tracing::debug!("UDP receive: {e}");
                R::sleep_until(R::now() + RECV_ERROR_PAUSE).await;
                continue;
            }
        }
        // What else is there already, without waiting: a receive polled once either has a
        // datagram or registers for the next and is dropped.
        while batch.len() < RECV_BATCH {
            let more = futures_lite::future::poll_once(receive::<R>(&socket, &mut scratch));
            match more.await {
                Some(Ok(got)) => split(&mut batch, take(&mut arena, &scratch, got.0), got),
                _ => break,
            }
        }
        if inputs.send(Msg::Datagrams(batch)).await.is_err() {
            return;
        }
    }
}

/// What one receive got: its length, the sender, and the length of each datagram in it when
/// the kernel coalesced several.
type Received = (usize, SocketAddr, Option<usize>);

/// Receives into `scratch`: datagrams coalesced by the kernel on Linux, one elsewhere.
async fn receive<R: Runtime>(socket: &R::Udp, scratch: &mut [u8]) -> io::Result<Received> {
    #[cfg(target_os = "linux")]
    return R::udp_io(socket, false, |fd| udp_offload::sys::recv(fd, scratch)).await;
    #[cfg(not(target_os = "linux"))]
    R::udp_recv_from(socket, scratch)
        .await
        .map(|(n, from)| (n, from, None))
}

/// Appends the datagrams of `data`, one receive's bytes, to `batch`.
fn split(batch: &mut Batch, mut data: Bytes, (_, from, stride): Received) {
    if let Some(stride) = stride.filter(|&s| s > 0) {
        while data.len() > stride {
            batch.push((from, data.split_to(stride)));
        }
    }
    batch.push((from, data));
}

/// The first `n` bytes of `scratch`, copied into `arena` (a new one when it is full).
fn take(arena: &mut BytesMut, scratch: &[u8], n: usize) -> Bytes {
    let data = scratch.get(..n).unwrap_or_default();
    if arena.capacity() < data.len() {
        *arena = BytesMut::with_capacity(RECV_ARENA.max(data.len()));
    }
    arena.extend_from_slice(data);
    arena.split().freeze()
}

/// A non-blocking UDP socket on `port` of `ip`, or with no `ip` on the IPv6 wildcard taking
/// IPv4 too (falling back to the IPv4 wildcard on a host without IPv6); the flag says
/// whether it is IPv6.
fn open_socket(ip: Option<IpAddr>, port: u16) -> io::Result<(UdpSocket, bool)> {
    let bind = |addr: SocketAddr, dual: bool| -> io::Result<UdpSocket> {
        let domain = if addr.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if dual {
            // Explicitly: the system's default (`bindv6only`) may say otherwise.
            socket.set_only_v6(false)?;
        }
        // Best effort: a smaller buffer only drops more under bursts.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&SockAddr::from(addr))?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    match ip {
        Some(ip) => Ok((bind(SocketAddr::new(ip, port), false)?, ip.is_ipv6())),
        None => match bind((Ipv6Addr::UNSPECIFIED, port).into(), true) {
            Ok(s) => Ok((s, true)),
            Err(_) => Ok((bind((Ipv4Addr::UNSPECIFIED, port).into(), false)?, false)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_datagrams_share_arenas_and_keep_their_bytes() {
        let mut arena = BytesMut::new();
        let scratch: Vec<u8> = (0..=255u8).cycle().take(MAX_DATAGRAM).collect();
        let a = take(&mut arena, &scratch, 1400);
        let b = take(&mut arena, &scratch[1..], 1400);
        assert_eq!(&a[..], &scratch[..1400]);
        assert_eq!(&b[..], &scratch[1..1401]);
        // The largest datagram still fits, in an arena of its own.
        let c = take(&mut arena, &scratch, MAX_DATAGRAM);
        assert_eq!(c.len(), MAX_DATAGRAM);
        assert_eq!(&a[..], &scratch[..1400], "earlier slices are untouched");
    }

    #[test]
    fn a_coalesced_receive_splits_into_its_datagrams() {
        let from = SocketAddr::from(([127, 0, 0, 1], 6881));
        let data = Bytes::from((0..3000u16).map(|i| i as u8).collect::<Vec<_>>());
        let mut batch = Vec::new();
        split(&mut batch, data.clone(), (3000, from, Some(1400)));
        let lens: Vec<usize> = batch.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(lens, [1400, 1400, 200]);
        assert!(batch.iter().all(|(f, _)| *f == from));
        let joined: Vec<u8> = batch.iter().flat_map(|(_, d)| d.to_vec()).collect();
        assert_eq!(joined, data);
        // One datagram, or a stride the kernel never gives: as received.
        let mut one = Vec::new();
        split(&mut one, data.clone(), (3000, from, None));
        split(&mut one, data, (3000, from, Some(0)));
        assert_eq!(one.len(), 2);
    }
}
