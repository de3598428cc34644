//! The mainline DHT (BEP 5) as sans-IO parts: node ids and their distance ([`NodeId`], with
//! BEP 42), the KRPC messages ([`krpc`]), the routing table ([`routing`]), `announce_peer`
//! tokens ([`tokens`]) and the store of announced peers ([`peer_store`]). Like the engine,
//! nothing here does I/O or reads the clock: time and randomness are inputs.
//!
//! The node that drives lookups, answers queries and stores peers is being built on these
//! (see the project's DHT issue); the parts are usable, and tested, on their own.

mod id;
pub mod krpc;
pub mod peer_store;
pub mod routing;
pub mod tokens;

pub use id::{Distance, NodeId};
