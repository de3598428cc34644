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

/// The longest selective-ack bitmask a packet with payload carries: 32 bytes, 256 packets
/// past the ack, as libtorrent's. Payload and bitmask share [`MAX_DATAGRAM`]; a connection
/// that sends data both ways names fewer early packets in its acks rather than sending
/// smaller packets. Bare acks carry more ([`MAX_STATE_SACK_BYTES`]).
pub const MAX_SACK_BYTES: usize = 32;

/// The longest selective-ack bitmask a packet without payload (an ack, a FIN) carries: 252
/// bytes, the most the one-byte extension length allows in multiples of 4, 2,016 packets
/// past the ack. While a lost packet is being resent, a full window of 100 Mbit/s over a
/// 100 ms round trip (about 1,000 packets, 2,000 with the queue LEDBAT allows) keeps
/// arriving behind it: acks that could name only 256 of them would stop reporting progress,
/// hide a resent packet lost again until a time-out, and a time-out collapses the window.
/// Acks have no payload to make room for, so they say it all (274 bytes at most).
pub const MAX_STATE_SACK_BYTES: usize = packet::MAX_SACK_LEN;

/// Payload bytes per DATA packet: what is left of [`MAX_DATAGRAM`] after the header and the
/// longest selective ack, so that every packet we send fits.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - packet::HEADER_LEN - 2 - MAX_SACK_BYTES;

/// Bytes a connection holds for sending, written but not yet acked: 4 MiB. The window can
/// never be larger. A full window of 100 Mbit/s over a 100 ms round trip is 1.25 MB, and
/// LEDBAT adds up to 100 ms of queue (another 1.25 MB); 4 MiB is also where Linux's TCP
/// send buffer autotuning stops (`tcp_wmem`). Memory is only taken by bytes written.
pub const MAX_SEND_BUFFER: usize = 4 << 20;

/// Bytes a connection holds on the receiving side, in order and early: 4 MiB, the window we
/// advertise when the application has read everything (as [`MAX_SEND_BUFFER`]). It must
/// exceed what [`MAX_PACKETS_IN_FLIGHT`] full packets hold, so that packets which arrived
/// early never fill it: the one packet that lets them all be read must always fit.
pub const RECV_BUFFER: usize = 4 << 20;

/// Packets numbered and not yet acked, on either side: 2,016, what the longest selective
/// ack ([`MAX_STATE_SACK_BYTES`]) can name past the first unacked packet. A packet beyond
/// what acks can name could neither be acked nor found lost until the hole before it is
/// filled, yet would count as in flight: with enough of them the windows close and only a
/// time-out ends the wait. 2,016 full packets are 2.7 MB, a window of 100 Mbit/s over a
/// 200 ms round trip; far below the 32,768 at which 16-bit sequence numbers stop comparing.
pub const MAX_PACKETS_IN_FLIGHT: u16 = (8 * MAX_STATE_SACK_BYTES) as u16;

// Packets that arrived early never fill the receive buffer (see [`RECV_BUFFER`]).
const _: () = assert!(MAX_PACKETS_IN_FLIGHT as usize * MAX_PAYLOAD < RECV_BUFFER);

/// Duplicate acks, or packets selectively acked past an unacked one, that mean it was lost:
/// 3, as TCP and BEP 29. Fewer would mistake reordering for loss.
pub const DUP_ACK_LIMIT: usize = 3;
