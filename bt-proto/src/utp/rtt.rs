//! Round-trip time estimation and the retransmission time-out (BEP 29, as TCP's RFC 6298).
//!
//! Each ack of a packet sent once (Karn: a retransmitted packet's ack is ambiguous) gives a
//! sample. `rtt += (sample - rtt) / 8`, `rtt_var += (|rtt - sample| - rtt_var) / 4`, and the
//! time-out is `max(rtt + 4 rtt_var, 500 ms)`. Each time-out in a row doubles it.

use std::time::Duration;

/// The time-out before any sample: BEP 29's 1 s.
pub const INITIAL_RTO: Duration = Duration::from_millis(1000);

/// The time-out never goes below BEP 29's 500 ms: below it, a delayed ack or a scheduling
/// hiccup on the peer's side would already look like a loss.
pub const MIN_RTO: Duration = Duration::from_millis(500);

/// The time-out never goes above a minute (as libtorrent): beyond it a peer is as good as
/// gone, and backing off further only delays noticing that it came back.
pub const MAX_RTO: Duration = Duration::from_secs(60);

/// Back-off doublings counted at most: 2^7 × 500 ms is already past [`MAX_RTO`].
const MAX_BACKOFF: u32 = 7;

/// The estimator: smoothed RTT, its mean deviation, and the current back-off.
#[derive(Clone, Debug, Default)]
pub struct Rtt {
    /// Smoothed RTT and mean deviation, in microseconds, once there is a sample.
    estimate: Option<(u64, u64)>,
    backoff: u32,
}

impl Rtt {
    /// Takes one RTT sample and ends any back-off.
    pub fn sample(&mut self, rtt: Duration) {
        let s = u64::try_from(rtt.as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_RTO.as_micros() as u64);
        self.estimate = Some(match self.estimate {
            None => (s, s / 2),
            Some((srtt, var)) => {
                let delta = srtt.abs_diff(s);
                let var = if delta >= var {
                    var + (delta - var) / 4
                } else {
                    var - (var - delta) / 4
                };
                let srtt = if s >= srtt {
                    srtt + (s - srtt) / 8
                } else {
                    srtt - (srtt - s) / 8
                };
                (srtt, var)
            }
        });
        self.backoff = 0;
    }

    /// The smoothed RTT, once there is a sample.
    pub fn smoothed(&self) -> Option<Duration> {
        self.estimate.map(|(srtt, _)| Duration::from_micros(srtt))
    }

    /// Doubles the time-out (a time-out happened).
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
    }

    /// How long after it was sent again a packet is taken as lost again if acks keep
    /// coming: the smoothed RTT plus a quarter (RACK's reordering window, RFC 8985) plus
    /// four deviations, with no floor. The [`MIN_RTO`] floor guards against an idle or
    /// silent peer, not needed while the peer's acks show it is there; and waiting for the
    /// time-out instead would collapse the window. `None` before the first sample.
    pub fn resend_loss_delay(&self) -> Option<Duration> {
        let (srtt, var) = self.estimate?;
        let us = srtt
            .saturating_add(srtt / 4)
            .saturating_add(var.saturating_mul(4));
        Some(Duration::from_micros(us))
    }

    /// How long after it was sent a packet is given to arrive before selective acks of
    /// later packets mean it was lost: the smoothed RTT and two deviations, a reordering
    /// window as RACK's (RFC 8985) that follows how much delays vary. RACK's default of a
    /// quarter RTT would delay every repair by that much, and the packets that may be in
    /// flight ([`super::MAX_PACKETS_IN_FLIGHT`]) must cover a window plus the repair's
    /// time. Zero before the first sample.
    pub fn reorder_delay(&self) -> Duration {
        self.estimate.map_or(Duration::ZERO, |(srtt, var)| {
            Duration::from_micros(srtt.saturating_add(var.saturating_mul(2)))
        })
    }

    /// The current retransmission time-out, back-off included.
    pub fn rto(&self) -> Duration {
        let base = match self.estimate {
            None => INITIAL_RTO,
            Some((srtt, var)) => {
                Duration::from_micros(srtt.saturating_add(var.saturating_mul(4))).max(MIN_RTO)
            }
        };
        base.saturating_mul(1 << self.backoff).min(MAX_RTO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_bep_29() {
        let mut r = Rtt::default();
        assert_eq!(r.rto(), INITIAL_RTO);
        assert_eq!(r.resend_loss_delay(), None);
        r.sample(Duration::from_millis(200));
        // rtt 200, var 100: 200 + 400 = 600 ms; 50 ms more for a resent packet.
        assert_eq!(r.rto(), Duration::from_millis(600));
        assert_eq!(r.resend_loss_delay(), Some(Duration::from_millis(650)));
        assert_eq!(r.reorder_delay(), Duration::from_millis(400));
        for _ in 0..100 {
            r.sample(Duration::from_millis(20));
        }
        assert_eq!(r.rto(), MIN_RTO);
        assert!(r.smoothed().unwrap() < Duration::from_millis(25));
        assert!(
            r.resend_loss_delay().unwrap() < Duration::from_millis(100),
            "no floor"
        );
        r.back_off();
        assert_eq!(r.rto(), 2 * MIN_RTO);
        for _ in 0..20 {
            r.back_off();
        }
        assert_eq!(r.rto(), MAX_RTO);
        r.sample(Duration::from_millis(20));
        assert!(r.rto() < Duration::from_secs(1));
    }
}
