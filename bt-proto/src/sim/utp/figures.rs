//! The figures uTP's issue asks for, on [`super::UtpNet`]: one flow's utilisation of a lossy,
//! reordering, duplicating link; two flows sharing a bottleneck; a flow next to a TCP-like
//! stream that keeps a queue past LEDBAT's target.
//!
//! Every sender sits on host [`SENDERS`], every receiver on host [`RECEIVERS`], and the path
//! between the two hosts is the bottleneck: all datagrams and streams between them queue in
//! its one FIFO per direction. Shares count payload bytes read by the application against
//! the link's capacity over the measured span, so headers and retransmissions count as lost
//! capacity.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::UtpNet;
use crate::sim::net::{HostConfig, LinkConfig, Network};

/// The host of the senders' sockets.
pub const SENDERS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(V4_SENDERS), 1);
/// The host of the receivers' sockets.
pub const RECEIVERS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(V4_RECEIVERS), 1);
const V4_SENDERS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 0, 1);
const V4_RECEIVERS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 0, 2);

/// The link and how long a figure runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Bottleneck bandwidth, bytes per second, each way.
    pub rate: u64,
    /// One-way latency.
    pub latency: Duration,
    /// Time before the measured span: LEDBAT grows one packet per round trip.
    pub warmup: Duration,
    /// The measured span.
    pub measure: Duration,
}

impl Scale {
    /// The link: 100 Mbit/s, 50 ms one way (100 ms round trip); two minutes to
    /// ramp (about 930 round trips to a 1.25 MB window), two minutes measured.
    pub fn full() -> Scale {
        Scale {
            rate: 12_500_000,
            latency: Duration::from_millis(50),
            warmup: Duration::from_secs(120),
            measure: Duration::from_secs(120),
        }
    }

    /// Small enough for a debug test: 10 Mbit/s, 10 ms one way, 10 s each.
    pub fn quick() -> Scale {
        Scale {
            rate: 1_250_000,
            latency: Duration::from_millis(10),
            warmup: Duration::from_secs(10),
            measure: Duration::from_secs(10),
        }
    }

    fn link(&self) -> LinkConfig {
        LinkConfig::new(self.latency).with_bandwidth(self.rate)
    }

    fn share(&self, bytes: u64) -> f64 {
        bytes as f64 / (self.rate as f64 * self.measure.as_secs_f64())
    }
}

fn sock(host: SocketAddr, port: u16) -> SocketAddr {
    SocketAddr::new(host.ip(), port)
}

fn setup(link: LinkConfig, seed: u64) -> UtpNet {
    let mut net = Network::new(seed);
    net.add_host(RECEIVERS, HostConfig::default());
    net.set_path(SENDERS, RECEIVERS, link);
    UtpNet::new(net, Instant::now())
}

/// One flow's share of the link.
#[derive(Clone, Copy, Debug)]
pub struct Utilisation {
    /// Payload delivered over the measured span, as a share of the link's capacity.
    pub share: f64,
    /// The sender's retransmissions and time-outs, over the whole run.
    pub retransmissions: u64,
    /// Retransmission time-outs.
    pub timeouts: u64,
    /// The sender's congestion window at the end, bytes.
    pub window: usize,
}

/// One uTP flow over the link with random `loss` and `duplicate` (probabilities per
/// datagram, both ways) and up to `jitter` of extra delay per datagram (reordering).
pub fn single_flow(
    scale: Scale,
    loss: f64,
    duplicate: f64,
    jitter: Duration,
    seed: u64,
) -> Utilisation {
    let link = scale
        .link()
        .with_loss(loss)
        .with_duplicate(duplicate)
        .with_jitter(jitter);
    let mut s = setup(link, seed);
    let a = s.add_node(sock(SENDERS, 6881), SENDERS, seed ^ 1);
    let b = s.add_node(sock(RECEIVERS, 6881), RECEIVERS, seed ^ 2);
    let flow = s.add_flow(a, b).unwrap_or(0);
    let start = s.now;
    s.run_until(start + scale.warmup);
    let before = s.flows.first().map_or(0, |f| f.delivered);
    s.run_until(start + scale.warmup + scale.measure);
    let after = s.flows.first().map_or(0, |f| f.delivered);
    let conn = s.sender(flow);
    Utilisation {
        share: scale.share(after - before),
        retransmissions: conn.map_or(0, |c| c.stats().retransmissions),
        timeouts: conn.map_or(0, |c| c.stats().timeouts),
        window: conn.map_or(0, |c| c.congestion_window()),
    }
}

/// Two flows' shares of one bottleneck.
#[derive(Clone, Copy, Debug)]
pub struct Fairness {
    /// Each flow's share of the link over the measured span.
    pub shares: [f64; 2],
    /// Jain's index of the two: 1 when equal, 0.5 when one has everything.
    pub jain: f64,
}

/// Two uTP flows from two sockets on the senders' host to two on the receivers' host,
/// started together (LEDBAT favours a latecomer, which takes the queue it finds for its
/// base delay: a known limit of RFC 6817, not measured here).
pub fn two_flows(scale: Scale, seed: u64) -> Fairness {
    let mut s = setup(scale.link(), seed);
    for port in [6881, 6882] {
        let a = s.add_node(sock(SENDERS, port), SENDERS, seed ^ u64::from(port));
        let b = s.add_node(
            sock(RECEIVERS, port),
            RECEIVERS,
            seed ^ u64::from(port) << 1,
        );
        s.add_flow(a, b);
    }
    let start = s.now;
    s.run_until(start + scale.warmup);
    let before: Vec<u64> = s.flows.iter().map(|f| f.delivered).collect();
    s.run_until(start + scale.warmup + scale.measure);
    let mut shares = [0.0; 2];
    for ((share, f), b) in shares.iter_mut().zip(&s.flows).zip(&before) {
        *share = scale.share(f.delivered - b);
    }
    let [x, y] = shares;
    let jain = (x + y) * (x + y) / (2.0 * (x * x + y * y)).max(f64::MIN_POSITIVE);
    Fairness { shares, jain }
}

/// A uTP flow's and a TCP-like stream's shares of one bottleneck.
#[derive(Clone, Copy, Debug)]
pub struct NextToTcp {
    /// uTP's share over the measured span.
    pub utp: f64,
    /// The stream's share.
    pub tcp: f64,
    /// The queueing delay uTP measured at the end.
    pub queuing: Duration,
    /// uTP's congestion window at the end, bytes.
    pub window: usize,
    /// uTP's share over the last second before the stream started.
    pub utp_alone: f64,
}

/// A uTP flow alone for `head_start`, then a TCP-like stream whose window is the path's
/// bandwidth-delay product plus `tcp_queue` of the bottleneck's rate, so that it keeps
/// that much queue standing. uTP starts first so that its base delay is the empty path's
/// (see [`two_flows`] on latecomers).
pub fn next_to_tcp(
    scale: Scale,
    head_start: Duration,
    tcp_queue: Duration,
    seed: u64,
) -> NextToTcp {
    let mut s = setup(scale.link(), seed);
    let a = s.add_node(sock(SENDERS, 6881), SENDERS, seed ^ 1);
    let b = s.add_node(sock(RECEIVERS, 6881), RECEIVERS, seed ^ 2);
    let flow = s.add_flow(a, b).unwrap_or(0);
    let start = s.now;
    let second = Duration::from_secs(1).min(head_start);
    s.run_until(start + head_start - second);
    let before = s.flows.first().map_or(0, |f| f.delivered);
    s.run_until(start + head_start);
    let alone = s.flows.first().map_or(0, |f| f.delivered) - before;
    let rtt = scale.latency * 2;
    let window = (scale.rate as f64 * (rtt + tcp_queue).as_secs_f64()) as u64;
    s.add_bulk(SENDERS, RECEIVERS, window);
    s.run_until(start + scale.warmup);
    let utp_before = s.flows.first().map_or(0, |f| f.delivered);
    let tcp_before = s.bulks.first().map_or(0, |b| b.delivered);
    s.run_until(start + scale.warmup + scale.measure);
    let utp = s.flows.first().map_or(0, |f| f.delivered) - utp_before;
    let tcp = s.bulks.first().map_or(0, |b| b.delivered) - tcp_before;
    let conn = s.sender(flow);
    NextToTcp {
        utp: scale.share(utp),
        tcp: scale.share(tcp),
        queuing: conn.map_or(Duration::ZERO, |c| c.queuing_delay()),
        window: conn.map_or(0, |c| c.congestion_window()),
        utp_alone: alone as f64 / (scale.rate as f64 * second.as_secs_f64().max(1e-9)),
    }
}
