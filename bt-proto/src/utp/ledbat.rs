//! LEDBAT congestion control (RFC 6817, as BEP 29 uses it): a window that grows while the
//! queueing delay we add is below a 100 ms target and shrinks when it is above.
//!
//! The peer measures each of our packets' one-way delay (its clock at receipt minus our
//! timestamp) and echoes it in `timestamp_difference`. The clocks' offset is unknown, so the
//! delay only means something against a base: the smallest measurement of the last two
//! minutes, kept as the minimum of each minute so that an old minimum (a route that changed)
//! ages out. Queueing delay = measurement − base.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::MAX_PAYLOAD;

/// RFC 6817's target queueing delay: 100 ms, the most a background transfer may add to
/// everyone's latency.
pub const TARGET: Duration = Duration::from_millis(100);

/// Each bucket of the base-delay history spans a minute (RFC 6817's `BASE_HISTORY` unit).
pub const BASE_BUCKET: Duration = Duration::from_secs(60);

/// Buckets of base-delay history: two minutes, long enough to see the empty queue between
/// bursts, short enough to follow a route change.
pub const BASE_BUCKETS: usize = 2;

/// The smallest window: two packets. With one, a delayed or lost ack stalls the connection
/// for a whole time-out; two keep acks flowing.
pub const MIN_CWND: usize = 2 * MAX_PAYLOAD;

/// The window a connection starts with, as RFC 6817's initial window of two packets.
pub const INITIAL_CWND: usize = 2 * MAX_PAYLOAD;

/// The largest window: the send buffer's size, beyond which nothing could be in flight anyway.
pub const MAX_CWND: usize = super::MAX_SEND_BUFFER;

/// Recent delay measurements whose minimum is the current queueing delay: 3. RFC 6817's
/// "current delay" filter: one late packet (a scheduling hiccup, a delayed ack) is not a
/// queue, three in a row are.
pub const DELAY_FILTER: usize = 3;

/// Queueing delay from which a loss counts as congestion whatever the loss rate: the
/// [`TARGET`] itself. There the queue is at least as long as LEDBAT allows, and a halving
/// leaves `(BDP + TARGET × rate) / 2` in flight, at least the bandwidth-delay product while
/// the base RTT is no longer than the target: the link stays full while the queue drains.
/// Below it, a halving would empty the link for random loss.
pub const CONGESTED_DELAY: Duration = TARGET;

/// The loss rate of a round trip above which its losses are congestion: 2 %, BBRv2's
/// `loss_thresh`. Random loss on healthy paths, wireless ones included (whose link layers
/// retransmit), stays below 1 %; a tail-drop queue we overflow drops everything past its
/// capacity, which soon passes 2 % of a round.
pub const LOSS_THRESHOLD: f64 = 0.02;

/// Standard deviations above [`LOSS_THRESHOLD`] a round's loss count must be to be believed:
/// 3, so that random loss below the threshold halves the window about once in a thousand
/// rounds at worst (and far less often for large windows), while a real excess of a few
/// packets per round is seen at once.
pub const LOSS_MARGIN: f64 = 3.0;

/// Fixed-point scale of the window (16 fractional bits), so that the small per-ack increases
/// of a large window add up instead of rounding to nothing.
const SCALE: u32 = 16;

/// The smallest one-way delay over the last [`BASE_BUCKETS`] minutes.
#[derive(Clone, Debug)]
struct BaseDelay {
    /// Minimum per minute, newest first; `None` for a minute without samples.
    buckets: [Option<u32>; BASE_BUCKETS],
    /// When the newest bucket started.
    started: Option<Instant>,
}

/// `a < b` for clock values that wrap: by the shorter way round.
fn earlier(a: u32, b: u32) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 0x8000_0000
}

impl BaseDelay {
    fn new() -> Self {
        BaseDelay {
            buckets: [None; BASE_BUCKETS],
            started: None,
        }
    }

    /// Records `sample` and returns the queueing delay it shows, in microseconds.
    fn add(&mut self, now: Instant, sample: u32) -> u32 {
        let started = *self.started.get_or_insert(now);
        let minutes = now.saturating_duration_since(started).as_secs() / BASE_BUCKET.as_secs();
        if minutes > 0 {
            let shift = usize::try_from(minutes)
                .unwrap_or(BASE_BUCKETS)
                .min(BASE_BUCKETS);
            self.buckets.rotate_right(shift);
            for b in self.buckets.iter_mut().take(shift) {
                *b = None;
            }
            self.started = Some(now);
        }
        if let Some(newest) = self.buckets.first_mut() {
            match newest {
                Some(min) if !earlier(sample, *min) => {}
                _ => *newest = Some(sample),
            }
        }
        let base = self
            .buckets
            .iter()
            .flatten()
            .copied()
            .reduce(|a, b| if earlier(b, a) { b } else { a })
            .unwrap_or(sample);
        if earlier(sample, base) {
            0
        } else {
            sample.wrapping_sub(base)
        }
    }
}

/// The congestion window and what decides it.
#[derive(Clone, Debug)]
pub struct Ledbat {
    /// Window in bytes, scaled by 2^[`SCALE`].
    cwnd: u64,
    base: BaseDelay,
    /// The last [`DELAY_FILTER`] queueing delays measured, newest last, in microseconds.
    recent: VecDeque<u32>,
    /// Their minimum: the current queueing delay.
    queuing: Duration,
}

impl Default for Ledbat {
    fn default() -> Self {
        Ledbat {
            cwnd: (INITIAL_CWND as u64) << SCALE,
            base: BaseDelay::new(),
            recent: VecDeque::with_capacity(DELAY_FILTER),
            queuing: Duration::ZERO,
        }
    }
}

impl Ledbat {
    /// The congestion window in bytes.
    pub fn window(&self) -> usize {
        usize::try_from(self.cwnd >> SCALE).unwrap_or(MAX_CWND)
    }

    /// The current queueing delay: the least of the last [`DELAY_FILTER`] measurements.
    pub fn queuing_delay(&self) -> Duration {
        self.queuing
    }

    /// `acked` bytes were acked by a packet whose `timestamp_difference` was `delay_us` (0:
    /// the peer had nothing to measure). `window_full` says whether the window limited what
    /// we sent: an application-limited sender does not grow it.
    ///
    /// The change is `off_target / TARGET × acked × MSS / cwnd`, with `off_target` clamped to
    /// ±`TARGET`: over a round trip, `acked` sums to `cwnd`, so the window moves by at most
    /// one packet per RTT either way.
    pub fn on_ack(&mut self, now: Instant, acked: usize, delay_us: u32, window_full: bool) {
        if delay_us != 0 {
            if self.recent.len() == DELAY_FILTER {
                self.recent.pop_front();
            }
            self.recent.push_back(self.base.add(now, delay_us));
            let current = self.recent.iter().copied().min().unwrap_or(0);
            self.queuing = Duration::from_micros(u64::from(current));
        }
        if acked == 0 {
            return;
        }
        let target = TARGET.as_micros() as i128;
        let off_target = (target - self.queuing.as_micros() as i128).clamp(-target, target);
        if off_target > 0 && !window_full {
            return;
        }
        let cwnd = i128::from(self.cwnd.max(1));
        let change = off_target * (acked as i128) * (MAX_PAYLOAD as i128) * (1i128 << (2 * SCALE))
            / (target * cwnd);
        let new = (i128::from(self.cwnd) + change)
            .clamp((MIN_CWND as i128) << SCALE, (MAX_CWND as i128) << SCALE);
        self.cwnd = u64::try_from(new).unwrap_or(self.cwnd);
    }

    /// Whether `losses` among a round trip's `packets` (the packets in flight when it began)
    /// are congestion rather than random loss: see the module docs.
    pub fn is_congestion(&self, losses: usize, packets: usize) -> bool {
        if losses == 0 {
            return false;
        }
        if self.queuing >= CONGESTED_DELAY {
            return true;
        }
        // One loss is an event, not a rate, even in a round of two packets.
        let expected = packets.max(1) as f64 * LOSS_THRESHOLD;
        losses > 1 && losses as f64 > expected + LOSS_MARGIN * expected.sqrt()
    }

    /// Congestion (a loss that [`Ledbat::is_congestion`] says is one): halve.
    pub fn on_congestion(&mut self) {
        self.cwnd = (self.cwnd / 2).max((MIN_CWND as u64) << SCALE);
    }

    /// A time-out: back to the minimum window.
    pub fn on_timeout(&mut self) {
        self.cwnd = (MIN_CWND as u64) << SCALE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_delay_is_the_two_minute_minimum() {
        let t0 = Instant::now();
        let mut b = BaseDelay::new();
        assert_eq!(b.add(t0, 50_000), 0);
        assert_eq!(b.add(t0 + Duration::from_secs(10), 80_000), 30_000);
        // A minute later the old minimum still counts...
        assert_eq!(b.add(t0 + Duration::from_secs(70), 90_000), 40_000);
        // ... two minutes later it has aged out; the newest minute's 90 ms is the base.
        assert_eq!(b.add(t0 + Duration::from_secs(140), 95_000), 5_000);
        // A long silence forgets everything.
        assert_eq!(b.add(t0 + Duration::from_secs(1000), 200_000), 0);
        // Clock values wrap.
        let mut w = BaseDelay::new();
        assert_eq!(w.add(t0, u32::MAX - 10), 0);
        assert_eq!(w.add(t0, 20), 31);
    }

    #[test]
    fn grows_at_most_one_packet_per_rtt_and_halves_on_congestion() {
        let t0 = Instant::now();
        let mut l = Ledbat::default();
        l.on_ack(t0, 0, 10_000, true);
        // One window's worth of acks with no queueing: one packet more.
        let w = l.window();
        let mut acked = 0;
        while acked < w {
            l.on_ack(t0, MAX_PAYLOAD, 10_000, true);
            acked += MAX_PAYLOAD;
        }
        assert!(l.window() <= w + MAX_PAYLOAD + 1, "{} {}", l.window(), w);
        assert!(l.window() > w + MAX_PAYLOAD / 2);
        // Application-limited: no growth.
        let w = l.window();
        l.on_ack(t0, MAX_PAYLOAD, 10_000, false);
        assert_eq!(l.window(), w);
        // 300 ms of queueing: shrinks, but never below the minimum.
        for _ in 0..1000 {
            l.on_ack(t0, MAX_PAYLOAD, 310_000, true);
        }
        assert_eq!(l.queuing_delay(), Duration::from_millis(300));
        assert_eq!(l.window(), MIN_CWND);
        for _ in 0..200 {
            l.on_ack(t0, MAX_PAYLOAD, 10_000, true);
        }
        // One late packet is not a queue.
        l.on_ack(t0, 0, 500_000, true);
        assert_eq!(l.queuing_delay(), Duration::ZERO);
        let w = l.window();
        l.on_congestion();
        assert_eq!(l.window(), (w / 2).max(MIN_CWND));
        l.on_timeout();
        assert_eq!(l.window(), MIN_CWND);
    }

    #[test]
    fn a_lone_loss_is_not_congestion_a_burst_past_the_threshold_is() {
        let t0 = Instant::now();
        let mut l = Ledbat::default();
        l.on_ack(t0, 0, 10_000, true);
        assert!(!l.is_congestion(0, 100));
        // One loss, whatever the round: random loss, repaired without a cut.
        for packets in [1, 2, 20, 100, 1000] {
            assert!(!l.is_congestion(1, packets), "{packets}");
        }
        // 1 % random loss, a few standard deviations up, is not congestion either.
        assert!(!l.is_congestion(3, 100));
        assert!(!l.is_congestion(18, 1000));
        // Past 2 % by the margin: congestion.
        assert!(l.is_congestion(7, 100));
        assert!(l.is_congestion(40, 1000));
        assert!(l.is_congestion(3, 20));
        assert!(l.is_congestion(2, 2));
        // The bar is 2 % plus three standard deviations of a 2 % loss count.
        for packets in [100usize, 1000, 10_000] {
            let expected = packets as f64 * LOSS_THRESHOLD;
            let bar = (expected + LOSS_MARGIN * expected.sqrt()).floor() as usize;
            assert!(!l.is_congestion(bar, packets), "{packets}");
            assert!(l.is_congestion(bar + 1, packets), "{packets}");
        }
        // Near the target, the queue is ours: a lone loss is its tail dropped.
        for _ in 0..DELAY_FILTER {
            l.on_ack(t0, 0, 10_000 + CONGESTED_DELAY.as_micros() as u32, true);
        }
        assert!(l.queuing_delay() >= CONGESTED_DELAY);
        assert!(l.is_congestion(1, 1000));
        assert!(!l.is_congestion(0, 1000));
    }
}
