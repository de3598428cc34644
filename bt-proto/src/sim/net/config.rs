//! How hosts answer and what the links between them do: the configuration of the
//! simulated network.

use std::time::Duration;

use super::MSS;

/// How a host answers incoming connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Listen {
    /// Accepts every connection.
    #[default]
    Accept,
    /// Answers with a reset: the initiator sees [`super::NetEventKind::Refused`].
    Refuse,
    /// Never answers (a firewall dropping SYNs, or a host that is gone).
    Silent,
}

/// A host's own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostConfig {
    /// Upload capacity in bytes per second shared by all the host's connections; `None` is
    /// unlimited. A cap of 0 is taken as 1 byte/s.
    pub upload: Option<u64>,
    /// Download capacity in bytes per second shared by all the host's connections; `None`
    /// is unlimited. A cap of 0 is taken as 1 byte/s. Bytes pass this queue after the
    /// sender's upload queue and the link's, before they travel the link's latency (as if the
    /// receiver's access line were a queue every path to it shares); each segment takes the
    /// first free span at or after the time it leaves the link's queue.
    pub download: Option<u64>,
    /// How incoming connections are answered.
    pub listen: Listen,
}

/// One direction of the path between two hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Bytes per second through this direction; `None` is unlimited. 0 is taken as 1.
    pub bandwidth: Option<u64>,
    /// Probability (0 to 1) that one transmission of a segment is lost.
    pub loss: f64,
    /// If set, every connection over this link is reset at a uniformly random time within
    /// this span after it is established (both directions' spans apply; the earlier wins).
    pub drop_within: Option<Duration>,
    /// Largest segment delivered at once; 1 delivers byte by byte (0 is taken as 1).
    pub mss: usize,
    /// Datagrams only: extra delay drawn for each one up to this much, so that datagrams
    /// sent close together may arrive out of order (a stream's segments never do).
    pub jitter: Duration,
    /// Datagrams only: probability (0 to 1) that one arrives twice.
    pub duplicate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig::new(Duration::ZERO)
    }
}

impl LinkConfig {
    /// A link with this one-way latency, no bandwidth cap, no loss, no drops.
    pub fn new(latency: Duration) -> Self {
        LinkConfig {
            latency,
            bandwidth: None,
            loss: 0.0,
            drop_within: None,
            mss: MSS,
            jitter: Duration::ZERO,
            duplicate: 0.0,
        }
    }

    /// The same link delaying each datagram by up to `jitter` more (reordering them).
    pub fn with_jitter(self, jitter: Duration) -> Self {
        LinkConfig { jitter, ..self }
    }

    /// The same link delivering each datagram twice with probability `duplicate`.
    pub fn with_duplicate(self, duplicate: f64) -> Self {
        LinkConfig { duplicate, ..self }
    }

    /// The same link capped at `bytes_per_sec`.
    pub fn with_bandwidth(self, bytes_per_sec: u64) -> Self {
        LinkConfig {
            bandwidth: Some(bytes_per_sec),
            ..self
        }
    }

    /// The same link losing each segment transmission with probability `loss`.
    pub fn with_loss(self, loss: f64) -> Self {
        LinkConfig { loss, ..self }
    }

    /// The same link resetting each connection at a random time within `span`.
    pub fn with_drop_within(self, span: Duration) -> Self {
        LinkConfig {
            drop_within: Some(span),
            ..self
        }
    }

    /// The same link delivering segments of at most `mss` bytes.
    pub fn with_mss(self, mss: usize) -> Self {
        LinkConfig { mss, ..self }
    }
}
