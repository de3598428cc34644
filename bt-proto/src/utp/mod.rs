//! uTP, the micro transport protocol (BEP 29), as a sans-IO machine.
//!
//! uTP carries a byte stream over UDP with its own sequence numbers, acks, selective acks and
//! time-outs, and a delay-based congestion control (LEDBAT) that yields to other traffic: a
//! BitTorrent transfer over uTP fills the idle capacity of a link without adding more than
//! 100 ms of queueing to it.
//!
//! Like the rest of the core, nothing here does I/O or reads a clock: every call that depends
//! on time takes `now`, datagrams go in as bytes and come out as bytes.
//!
//! ```text
//! let mut s = Socket::new(now, SocketConfig { max_incoming: 50 }, seed);
//! let id = s.connect(now, addr);                           // or Event::Incoming(id)
//! s.handle(now, from, &datagram);                          // every uTP datagram received
//! while let Some((to, bytes)) = s.poll_transmit(now) { send_to(to, bytes) }
//! while let Some(e) = s.poll_event() { ... }               // Incoming, Connected, Readable,
//!                                                          // Writable, Eof, Closed, Failed
//! s.write(id, data); s.read(id, &mut buf); s.close(id);    // the stream
//! sleep_until(s.next_timeout()); s.handle_timeout(now);
//! ```
//!
//! [`Connection`] is the machine for one connection, usable alone; [`Socket`] multiplexes
//! connections by (remote address, connection id) over one UDP port, bounds the incoming
//! ones, and answers packets for no connection with a single reset.
//!
//! Parts: [`packet`] (the codec), [`seq`] (16-bit wrap-around), [`rtt`] (time-outs),
//! [`ledbat`] (congestion control), the send and receive buffers, [`connection`], [`socket`].
//!
//! Every packet carries the current ack, so acks coalesce over the datagrams handled between
//! two drains of `poll_transmit`: an adapter that reads a batch of datagrams before draining
//! sends one ack per batch, as libtorrent defers its acks until the socket is drained.
//!
//! Not yet here: path MTU discovery (every datagram is at most [`MAX_DATAGRAM`]), the
//! close-reason extension, and keep-alives (an idle connection sends nothing; the peer wire's
//! keep-alives above it notice a peer that went away).

pub mod connection;
pub mod ledbat;
pub mod packet;
mod recv_buffer;
pub mod rtt;
mod send_buffer;
pub mod seq;
pub mod socket;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod link;
#[cfg(test)]
mod tests;

pub use connection::{Connection, ConnectionError, Event, State, Stats};
pub use packet::{Header, Packet, PacketError, PacketType, SelectiveAck, is_utp};
pub use socket::{Socket, SocketConfig, SocketEvent, StreamId};

/// The largest datagram we send: 1,400 bytes. Ethernet's 1,500-byte MTU leaves 1,472 bytes
/// of UDP payload over IPv4 and 1,452 over IPv6; 1,400 leaves room below that for PPPoE,
/// VPN and tunnel headers, so our packets are not fragmented (a lost fragment loses the
/// whole datagram). Path MTU discovery is left for later.
pub const MAX_DATAGRAM: usize = 1400;

/// The longest selective-ack bitmask we send: 32 bytes, 256 packets past the ack, enough to
/// describe the holes of any window we would have open at the loss rates uTP survives.
pub const MAX_SACK_BYTES: usize = 32;

/// Payload bytes per DATA packet: what is left of [`MAX_DATAGRAM`] after the header and the
/// longest selective ack, so that every packet we send fits.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - packet::HEADER_LEN - 2 - MAX_SACK_BYTES;

/// Bytes a connection holds for sending, written but not yet acked: 1 MiB. The window can
/// never be larger, and 1 MiB covers the bandwidth-delay product of 100 Mbit/s at 80 ms.
pub const MAX_SEND_BUFFER: usize = 1 << 20;

/// Bytes a connection holds on the receiving side, in order and early: 1 MiB, the window we
/// advertise when the application has read everything (as [`MAX_SEND_BUFFER`]).
pub const RECV_BUFFER: usize = 1 << 20;

/// Packets numbered and not yet acked, on either side: 1,024. A 1 MiB window of full packets
/// is 780 of them; small packets beyond 1,024 would only bloat the bookkeeping. Far below
/// the 32,768 at which 16-bit sequence numbers stop comparing.
pub const MAX_PACKETS_IN_FLIGHT: u16 = 1024;

/// Duplicate acks, or packets selectively acked past an unacked one, that mean it was lost:
/// 3, as TCP and BEP 29. Fewer would mistake reordering for loss.
pub const DUP_ACK_LIMIT: usize = 3;
