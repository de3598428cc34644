//! Per-source limits on the queries a node answers, so that it cannot be made an amplifier
//! (answers are bigger than queries) or kept busy by one host.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Queries one host may send in a burst. A client bootstrapping or looking up asks a node
/// a few times; twenty is generous for honest use.
pub const BURST: u32 = 20;

/// Queries per second one host may keep up: what a busy honest client sends one node.
pub const PER_SECOND: u32 = 5;

/// Hosts tracked at once. Beyond it, hosts whose budget is full (idle) are forgotten; if
/// none is, new hosts wait: a flood from many addresses cannot grow the map.
pub const MAX_SOURCES: usize = 4096;

/// A token bucket per host.
#[derive(Clone, Debug, Default)]
pub struct RateLimit {
    hosts: BTreeMap<IpAddr, (u32, Instant)>,
}

impl RateLimit {
    /// Whether a query from `ip` at `now` is within its budget (and takes from it).
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        if !self.hosts.contains_key(&ip) && self.hosts.len() >= MAX_SOURCES {
            self.hosts
                .retain(|_, (tokens, at)| refill(*tokens, *at, now).0 < BURST);
            if self.hosts.len() >= MAX_SOURCES {
                return false;
            }
        }
        let (tokens, at) = self.hosts.get(&ip).copied().unwrap_or((BURST, now));
        let (tokens, at) = refill(tokens, at, now);
        if tokens == 0 {
            self.hosts.insert(ip, (0, at));
            return false;
        }
        self.hosts.insert(ip, (tokens - 1, at));
        true
    }
}

/// `tokens` last counted at `at`, refilled to `now`, with the time the count holds for
/// (whole tokens only: the remainder of a second is kept).
fn refill(tokens: u32, at: Instant, now: Instant) -> (u32, Instant) {
    let per = Duration::from_secs(1) / PER_SECOND;
    let elapsed = now.saturating_duration_since(at);
    let earned = (elapsed.as_nanos() / per.as_nanos().max(1)).min(u128::from(BURST)) as u32;
    if earned == 0 {
        return (tokens, at);
    }
    ((tokens + earned).min(BURST), at + per * earned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let now = Instant::now();
        let mut r = RateLimit::default();
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let other: IpAddr = "198.51.100.2".parse().unwrap();
        assert_eq!(
            (0..100).filter(|_| r.allow(now, ip)).count(),
            BURST as usize
        );
        assert!(r.allow(now, other), "another host has its own budget");
        let later = now + Duration::from_secs(2);
        assert_eq!(
            (0..100).filter(|_| r.allow(later, ip)).count(),
            2 * PER_SECOND as usize
        );
    }

    #[test]
    fn many_sources_are_bounded() {
        let now = Instant::now();
        let mut r = RateLimit::default();
        for i in 0..(MAX_SOURCES as u32 + 50) {
            r.allow(now, IpAddr::from(i.to_be_bytes()));
        }
        assert!(r.hosts.len() <= MAX_SOURCES);
        let later = now + Duration::from_secs(10);
        assert!(
            r.allow(later, "203.0.113.1".parse().unwrap()),
            "idle hosts make room"
        );
    }
}
