//! Local service discovery (BEP 14) sockets: one UDP socket per multicast group on port 6771,
//! a task per socket feeding what arrives to the engine, and the sends the engine asks for.
//! What to announce and what to believe is the engine's ([`bt_proto::lsd`]); this module only
//! moves datagrams.
//!
//! The sockets are made here, once for every runtime, with `socket2`: the standard library
//! cannot set `SO_REUSEADDR` before binding, and without it a second session on the host
//! (or libtorrent, Transmission, ...) could not bind port 6771 too. Every runtime then only
//! wraps the ready socket ([`Runtime::udp_from_std`]).
//!
//! A socket that cannot be opened (no multicast route, no IPv6, a firewall) is logged and
//! left out: the session works on without it, as it does without a tracker.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use bt_proto::engine::Input;
use bt_proto::lsd::{LSD_PORT, LsdGroup, MAX_LSD_MESSAGE_LEN};
use bytes::Bytes;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::messages::Msg;
use crate::runtime::Runtime;

/// Hops an announce may travel. BEP 14 notes that its groups are wider than one link
/// (organisation-local and site-local scope) and that senders may want more than the default
/// of 1; libtorrent uses 32. Routers that do not forward the scope stop it anyway.
pub const LSD_HOPS: u32 = 32;

/// Receive buffer: larger than [`MAX_LSD_MESSAGE_LEN`], so that a longer datagram arrives
/// longer than the limit (and is refused by the engine) instead of cut down to a length
/// that might parse.
const RECV_BUFFER: usize = 2 * MAX_LSD_MESSAGE_LEN;

/// Wait after a receive error before the next receive, so that an error that repeats
/// (the interface went away) does not spin the task.
const RECV_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Where to do local service discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LsdInterface {
    /// Both groups, each on the interface the system routes multicast through.
    #[default]
    Default,
    /// The IPv4 group only, on the interface with this address (`127.0.0.1` keeps it to
    /// this host: sessions of one machine, tests).
    V4(Ipv4Addr),
}

/// The open LSD sockets of a session and their receive tasks.
pub(crate) struct LsdSockets<R: Runtime> {
    sockets: Vec<(LsdGroup, Arc<R::Udp>)>,
    tasks: Vec<R::Task>,
}

impl<R: Runtime> Default for LsdSockets<R> {
    fn default() -> Self {
        LsdSockets {
            sockets: Vec::new(),
            tasks: Vec::new(),
        }
    }
}

impl<R: Runtime> LsdSockets<R> {
    /// Opens the sockets `interface` asks for, each one's receive task sending to `inputs`.
    /// One that fails is logged and left out.
    pub fn open(interface: LsdInterface, inputs: &Sender<Msg<R>>) -> Self {
        let mut out = LsdSockets::default();
        let wanted: &[LsdGroup] = match interface {
            LsdInterface::Default => &LsdGroup::ALL,
            LsdInterface::V4(_) => &[LsdGroup::V4],
        };
        for &group in wanted {
            let socket = open_socket(group, interface).and_then(R::udp_from_std);
            match socket {
                Ok(socket) => {
                    let socket = Arc::new(socket);
                    let task = R::spawn(receive_loop::<R>(
                        socket.clone(),
                        inputs.clone(),
                        RECV_BUFFER,
                        "local service discovery",
                        |from, data| Input::MulticastReceived { from, data },
                    ));
                    out.sockets.push((group, socket));
                    out.tasks.push(task);
                }
                Err(e) => tracing::warn!(
                    group = %group.addr(),
                    "local service discovery unavailable on this group: {e}"
                ),
            }
        }
        out
    }

    /// The groups joined.
    pub fn groups(&self) -> Vec<LsdGroup> {
        self.sockets.iter().map(|(g, _)| *g).collect()
    }

    /// Sends an announce to `group`, if its socket is open; nothing waits for it.
    pub fn send(&self, group: LsdGroup, data: Bytes) {
        let Some((_, socket)) = self.sockets.iter().find(|(g, _)| *g == group) else {
            return;
        };
        let socket = socket.clone();
        R::detach(R::spawn(async move {
            if let Err(e) = R::udp_send_to(&socket, &data, group.addr()).await {
                tracing::debug!(group = %group.addr(), "local service discovery send: {e}");
            }
        }));
    }

    /// Stops the receive tasks and closes the sockets.
    pub fn close(&mut self) {
        for t in self.tasks.drain(..) {
            R::abort(t);
        }
        self.sockets.clear();
    }
}

/// Feeds every datagram of `socket` to the driver, as the input `to_input` makes of it,
/// until the driver is gone; `buffer` bytes are read at most (a longer datagram is cut).
/// `what` names the socket in the log.
async fn receive_loop<R: Runtime>(
    socket: Arc<R::Udp>,
    inputs: Sender<Msg<R>>,
    buffer: usize,
    what: &'static str,
    to_input: fn(SocketAddr, Bytes) -> Input,
) {
    let mut buf = vec![0u8; buffer];
    loop {
        match R::udp_recv_from(&socket, &mut buf).await {
            Ok((n, from)) => {
                let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                if inputs.send(Msg::Input(to_input(from, data))).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Linux also reports here an ICMP "port unreachable" of an earlier send.
                tracing::debug!("{what} receive: {e}");
                R::sleep_until(R::now() + RECV_ERROR_PAUSE).await;
            }
        }
    }
}

/// A socket on port 6771 of `group`'s family, shared with other programs, joined to the group
/// on `interface`, with multicast loopback on (other sessions on this host hear us; our own
/// announces come back too, and the engine knows them by their cookie), non-blocking.
pub fn open_socket(group: LsdGroup, interface: LsdInterface) -> io::Result<UdpSocket> {
    let domain = match group {
        LsdGroup::V4 => Domain::IPV4,
        LsdGroup::V6 => Domain::IPV6,
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    // Bound to the wildcard address, as libtorrent does: binding to the group address
    // filters better on Linux but fails on Windows.
    let local: SocketAddr = match group {
        LsdGroup::V4 => (Ipv4Addr::UNSPECIFIED, LSD_PORT).into(),
        LsdGroup::V6 => {
            // Its own socket: the IPv4 one has the port for IPv4.
            socket.set_only_v6(true)?;
            (Ipv6Addr::UNSPECIFIED, LSD_PORT).into()
        }
    };
    socket.bind(&SockAddr::from(local))?;
    match group.addr() {
        SocketAddr::V4(g) => {
            let iface = match interface {
                LsdInterface::V4(ip) => ip,
                // The system's choice, by its routes.
                LsdInterface::Default => Ipv4Addr::UNSPECIFIED,
            };
            socket.join_multicast_v4(g.ip(), &iface)?;
            if !iface.is_unspecified() {
                socket.set_multicast_if_v4(&iface)?;
            }
            socket.set_multicast_loop_v4(true)?;
            socket.set_multicast_ttl_v4(LSD_HOPS)?;
        }
        SocketAddr::V6(g) => {
            // Interface 0: the system's choice.
            socket.join_multicast_v6(g.ip(), 0)?;
            socket.set_multicast_loop_v6(true)?;
            socket.set_multicast_hops_v6(LSD_HOPS)?;
        }
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
