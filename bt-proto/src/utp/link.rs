//! A deterministic virtual link between two sockets, for the tests: latency, jitter (and so
//! reordering), loss, duplication, and optionally a bottleneck with a rate and a tail-drop
//! queue. Time is virtual: it jumps to the next delivery or to a socket's next time-out.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Socket, SocketConfig};
use crate::rng::Rng;

/// How the link treats datagrams (both directions alike).
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    pub latency: Duration,
    /// Extra delay, uniform in `0..=jitter`, per datagram: reorders them.
    pub jitter: Duration,
    /// Datagrams lost and duplicated, per thousand.
    pub loss_per_mille: u64,
    pub dup_per_mille: u64,
    /// Bottleneck rate in bytes per second, and its queue in bytes.
    pub rate: Option<(u64, usize)>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss_per_mille: 0,
            dup_per_mille: 0,
            rate: None,
        }
    }
}

/// A datagram on the wire: (arrival, order of sending, to b?, bytes).
type InFlight = (Instant, u64, bool, Vec<u8>);

/// Two sockets, `a` and `b`, and the datagrams between them.
pub struct Pair {
    pub now: Instant,
    pub a: Socket,
    pub b: Socket,
    pub addr_a: SocketAddr,
    pub addr_b: SocketAddr,
    pub cfg: LinkConfig,
    /// Whether each direction delivers anything at all (a dead peer: false).
    pub a_to_b_up: bool,
    pub b_to_a_up: bool,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    rng: Rng,
    /// When each direction's bottleneck is free again: [a→b, b→a].
    free_at: [Instant; 2],
    /// Datagrams each side sent: [a, b].
    pub sent: [u64; 2],
    /// Bytes delivered a→b.
    pub delivered_to_b: u64,
}

impl Pair {
    pub fn new(cfg: LinkConfig, seed: u64, max_incoming: usize) -> Pair {
        let now = Instant::now();
        let config = SocketConfig { max_incoming };
        Pair {
            now,
            a: Socket::new(now, config, seed),
            b: Socket::new(now, config, seed ^ 0x5555),
            addr_a: SocketAddr::from(([10, 0, 0, 1], 6881)),
            addr_b: SocketAddr::from(([10, 0, 0, 2], 6881)),
            cfg,
            a_to_b_up: true,
            b_to_a_up: true,
            queue: BinaryHeap::new(),
            order: 0,
            rng: Rng::seed_from_u64(seed.wrapping_mul(31)),
            free_at: [now; 2],
            sent: [0; 2],
            delivered_to_b: 0,
        }
    }

    fn schedule(&mut self, to_b: bool, data: Vec<u8>) {
        let up = if to_b { self.a_to_b_up } else { self.b_to_a_up };
        let lost = !up || self.rng.below(1000) < self.cfg.loss_per_mille;
        if std::env::var_os("UTP_TRACE").is_some() {
            let h = super::Packet::decode(&data).map(|p| p.header);
            println!(
                "{:?} {} {:?} lost={lost}",
                self.now,
                if to_b { "a->b" } else { "b->a" },
                h
            );
        }
        if lost {
            return;
        }
        let mut depart = self.now;
        if let Some((rate, queue)) = self.cfg.rate {
            let free = &mut self.free_at[usize::from(!to_b)];
            let start = (*free).max(self.now);
            let backlog = start.duration_since(self.now).as_secs_f64() * rate as f64;
            if backlog > queue as f64 {
                return;
            }
            *free = start + Duration::from_secs_f64(data.len() as f64 / rate as f64);
            depart = *free;
        }
        let copies = if self.rng.below(1000) < self.cfg.dup_per_mille {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter_ns = self.rng.below(self.cfg.jitter.as_nanos() as u64 + 1);
            let at = depart + self.cfg.latency + Duration::from_nanos(jitter_ns);
            self.order += 1;
            self.queue
                .push(Reverse((at, self.order, to_b, data.clone())));
        }
    }

    /// Sends what both sockets want sent.
    pub fn pump(&mut self) {
        while let Some((_, d)) = self.a.poll_transmit(self.now) {
            self.sent[0] += 1;
            self.schedule(true, d);
        }
        while let Some((_, d)) = self.b.poll_transmit(self.now) {
            self.sent[1] += 1;
            self.schedule(false, d);
        }
    }

    /// Advances to the next delivery or time-out and handles everything due then. False
    /// when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.pump();
        assert_eq!(self.a.next_timeout(), self.a.next_timeout_scan());
        assert_eq!(self.b.next_timeout(), self.b.next_timeout_scan());
        let next = [
            self.queue.peek().map(|Reverse((t, ..))| *t),
            self.a.next_timeout(),
            self.b.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(Reverse((t, ..))) = self.queue.peek() {
            if *t > self.now {
                break;
            }
            let Some(Reverse((_, _, to_b, d))) = self.queue.pop() else {
                break;
            };
            if to_b {
                self.delivered_to_b += d.len() as u64;
                self.b.handle(self.now, self.addr_a, &d);
            } else {
                self.a.handle(self.now, self.addr_b, &d);
            }
        }
        if self.a.next_timeout().is_some_and(|t| t <= self.now) {
            self.a.handle_timeout(self.now);
        }
        if self.b.next_timeout().is_some_and(|t| t <= self.now) {
            self.b.handle_timeout(self.now);
        }
        self.pump();
        true
    }

    /// Steps, calling `app` after each, until it returns true or `limit` of virtual time
    /// passed; returns whether `app` finished.
    pub fn run(&mut self, limit: Duration, mut app: impl FnMut(&mut Pair) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if app(self) {
                return true;
            }
            if self.now >= end || !self.step() {
                return app(self);
            }
        }
    }
}
