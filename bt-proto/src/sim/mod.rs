//! A deterministic swarm simulator: many engine sessions on one thread, on virtual time.
//!
//! Nothing here touches a socket, a file or the clock. [`clock`] keeps virtual time, [`net`]
//! models hosts and TCP-like stream connections (latency, bandwidth, loss as retransmission
//! delay, refusals and drops), [`disk`] keeps files in memory with injectable faults,
//! [`tracker`] remembers who announced, and [`swarm`] runs sessions over them; [`dht`] runs
//! bare DHT nodes on a datagram network of their own, and [`utp`] runs uTP sockets over
//! [`net`]'s datagrams to measure LEDBAT on a link. [`remote`] is
//! a scripted peer for the other end of a connection, over the simulated network or straight
//! into a session. Every random choice comes from a seeded [`crate::rng::Rng`], so a failing
//! seed replays exactly.

pub mod clock;
pub mod dht;
pub mod disk;
pub mod net;
pub mod remote;
pub mod swarm;
mod time_queue;
pub mod tracker;
pub mod utp;
