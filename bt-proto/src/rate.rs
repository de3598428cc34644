//! A transfer-rate meter on virtual time: bytes recorded at instants, a smoothed rate out.
//!
//! The choker ranks peers by rate and the application shows rates, so the meter must be cheap
//! (it is updated for every block), steady (a peer should not win or lose its slot because one
//! block landed a millisecond either side of a round) and deterministic (time is an input, so
//! the same instants give the same rates). It is a sliding window of [`WINDOW_BUCKETS`]
//! fixed-width buckets of [`BUCKET_WIDTH`]; the oldest bucket is weighted by how much of it
//! still lies inside the window, so the rate slides smoothly instead of stepping once a second.

use std::time::{Duration, Instant};

/// Width of one bucket. One second matches how rates are shown and is fine-grained enough for
/// a choking round every 10 s.
pub const BUCKET_WIDTH: Duration = Duration::from_secs(1);

/// Buckets in the window. Five one-second buckets (a 5 s window, as Mainline and libtorrent
/// roughly use) smooth the burstiness of 16 KiB blocks yet follow a peer that slows down
/// within one choking round.
pub const WINDOW_BUCKETS: usize = 5;

/// The span the rate is averaged over: [`WINDOW_BUCKETS`] × [`BUCKET_WIDTH`].
pub const WINDOW: Duration = Duration::from_secs(WINDOW_BUCKETS as u64);

/// One more slot than the window holds: the oldest, partly expired bucket is still needed.
const SLOTS: usize = WINDOW_BUCKETS + 1;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Measures bytes per second over a sliding window, plus the running total.
///
/// Memory is fixed at creation; nothing allocates afterwards. An instant earlier than one
/// already seen counts as no advance of time (bytes recorded then land in the newest bucket).
/// A meter younger than the window divides by its age (at least one bucket), so a fresh
/// connection's rate is not understated.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bt_proto::rate::RateMeter;
/// let t0 = Instant::now(); // in the engine this comes from the caller, never the clock
/// let mut m = RateMeter::new(t0);
/// for i in 0..100 {
///     m.record(t0 + Duration::from_millis(100 * i), 2_000);
/// }
/// let r = m.rate(t0 + Duration::from_secs(10));
/// assert!((19_000..=21_000).contains(&r), "{r}");
/// assert_eq!(m.total(), 200_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateMeter {
    origin: Instant,
    /// Time since `origin` of the latest instant seen: later instants never go below it.
    latest: Duration,
    /// Ring of byte counts; slot `b % SLOTS` holds bucket `b` for the last `SLOTS` buckets
    /// up to and including `bucket_of(latest)`.
    buckets: [u64; SLOTS],
    total: u64,
}

impl RateMeter {
    /// A meter that starts measuring at `now` (for a peer, when the connection opened).
    pub fn new(now: Instant) -> Self {
        RateMeter {
            origin: now,
            latest: Duration::ZERO,
            buckets: [0; SLOTS],
            total: 0,
        }
    }

    /// Counts `bytes` transferred at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        let elapsed = self.elapsed(now);
        let bucket = bucket_of(elapsed);
        let latest_bucket = bucket_of(self.latest);
        if bucket > latest_bucket {
            // Clear the slots of buckets skipped since the last record, at most a full ring.
            let skipped = (bucket - latest_bucket).min(SLOTS as u64);
            for step in 0..skipped {
                if let Some(slot) = self.buckets.get_mut(slot_of(bucket - step)) {
                    *slot = 0;
                }
            }
        }
        self.latest = elapsed;
        if let Some(slot) = self.buckets.get_mut(slot_of(bucket)) {
            *slot = slot.saturating_add(bytes);
        }
        self.total = self.total.saturating_add(bytes);
    }

    /// Bytes per second over the window ending at `now`.
    pub fn rate(&self, now: Instant) -> u64 {
        let elapsed = self.elapsed(now);
        let newest = bucket_of(elapsed);
        let latest_bucket = bucket_of(self.latest);
        let width = BUCKET_WIDTH.as_nanos();
        // Bucket `b` still holds data iff it was written no earlier than SLOTS buckets ago.
        let stored = |b: u64| -> u128 {
            if b <= latest_bucket && b + SLOTS as u64 > latest_bucket {
                self.buckets.get(slot_of(b)).copied().map_or(0, u128::from)
            } else {
                0
            }
        };
        let Some(start) = elapsed.checked_sub(WINDOW) else {
            // Younger than the window: everything recorded so far, over the meter's age.
            let sum: u128 = (0..=newest).map(stored).sum();
            let age = elapsed.max(BUCKET_WIDTH).as_nanos();
            return saturate(sum.saturating_mul(NANOS_PER_SEC) / age);
        };
        let oldest = bucket_of(start);
        // The part of the oldest bucket still inside the window, in nanoseconds.
        let inside = (u128::from(oldest) + 1) * width - start.as_nanos();
        let full: u128 = (oldest + 1..=newest).map(stored).sum();
        let scaled = full
            .saturating_mul(width)
            .saturating_add(stored(oldest).saturating_mul(inside));
        saturate(scaled.saturating_mul(NANOS_PER_SEC) / (width * WINDOW.as_nanos()))
    }

    /// All bytes recorded since creation (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        self.total
    }

    fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin).max(self.latest)
    }
}

fn bucket_of(elapsed: Duration) -> u64 {
    saturate(elapsed.as_nanos() / BUCKET_WIDTH.as_nanos())
}

fn slot_of(bucket: u64) -> usize {
    (bucket % SLOTS as u64) as usize
}

fn saturate(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steady_stream_reads_its_rate() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        // 1500 bytes every 10 ms = 150 000 B/s for 20 s.
        for i in 0..2000 {
            m.record(t0 + ms(10 * i), 1500);
        }
        for probe in [6_000, 12_345, 19_990] {
            let r = m.rate(t0 + ms(probe));
            assert!((148_000..=152_000).contains(&r), "at {probe} ms: {r}");
        }
        assert_eq!(m.total(), 3_000_000);
    }

    #[test]
    fn young_meter_divides_by_its_age_with_a_one_bucket_floor() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        m.record(t0 + ms(500), 4_000);
        assert_eq!(
            m.rate(t0 + ms(500)),
            4_000,
            "age below one bucket counts as one"
        );
        assert_eq!(m.rate(t0 + ms(2_000)), 2_000);
        assert_eq!(m.rate(t0 + ms(4_000)), 1_000);
        assert_eq!(RateMeter::new(t0).rate(t0), 0);
    }

    #[test]
    fn rate_decays_smoothly_then_reaches_zero() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        for i in 0..100 {
            m.record(t0 + ms(100 * i), 1_000); // 10 000 B/s for 10 s
        }
        let at = |s: u64| m.rate(t0 + ms(s));
        let steady = at(9_950);
        assert!((9_500..=10_500).contains(&steady), "{steady}");
        // Silence from 10 s on: the rate falls as the window slides off the data.
        assert!(at(12_500) < steady);
        assert!(at(14_000) < at(12_500));
        assert_eq!(at(16_000), 0);
        assert_eq!(at(1_000_000), 0);
    }

    #[test]
    fn window_slides_within_a_bucket() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        // 10 000 bytes in bucket 0 only.
        m.record(t0 + ms(100), 10_000);
        // At 5.5 s, half of bucket 0 is still inside the 5 s window: 5 000 bytes / 5 s.
        assert_eq!(m.rate(t0 + ms(5_500)), 1_000);
        assert_eq!(m.rate(t0 + ms(5_750)), 500);
        assert_eq!(m.rate(t0 + ms(6_000)), 0);
    }

    #[test]
    fn time_going_backwards_is_no_advance() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        m.record(t0 + ms(7_000), 5_000);
        let before = m.rate(t0 + ms(7_000));
        // An earlier instant reads as the latest one seen.
        assert_eq!(m.rate(t0 + ms(1_000)), before);
        assert_eq!(m.rate(t0), before);
        // A late record lands in the newest bucket instead of rewriting history.
        m.record(t0 + ms(2_000), 5_000);
        assert_eq!(m.rate(t0 + ms(7_000)), 2 * before);
        assert_eq!(m.total(), 10_000);
    }

    #[test]
    fn long_gap_clears_stale_buckets() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        for s in 0..6 {
            m.record(t0 + Duration::from_secs(s), 1_000_000);
        }
        // After a gap far longer than the ring, only the new record counts.
        m.record(t0 + Duration::from_secs(100), 5_000);
        assert_eq!(m.rate(t0 + Duration::from_secs(100)), 1_000);
        // A gap of exactly the ring size also clears every slot.
        let mut m = RateMeter::new(t0);
        for s in 0..6 {
            m.record(t0 + Duration::from_secs(10 + s), 1_000_000);
        }
        m.record(t0 + Duration::from_secs(21), 5_000);
        assert_eq!(m.rate(t0 + ms(21_000)), 1_000);
    }

    #[test]
    fn totals_and_rates_saturate() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        m.record(t0, u64::MAX);
        m.record(t0, u64::MAX);
        assert_eq!(m.total(), u64::MAX);
        assert_eq!(m.rate(t0), u64::MAX);
    }

    proptest! {
        #[test]
        fn arbitrary_histories_stay_bounded(
            steps in proptest::collection::vec((0u64..3_000, 0u64..1 << 40, any::<bool>()), 0..200),
            probe in 0u64..20_000,
        ) {
            let t0 = Instant::now();
            let mut m = RateMeter::new(t0);
            let mut t = 0u64;
            let mut sum = 0u64;
            let mut window_sum = Vec::new();
            for (dt, bytes, backwards) in steps {
                // Some steps go back in time, which must read as no advance.
                t = if backwards { t.saturating_sub(dt) } else { t + dt };
                m.record(t0 + ms(t), bytes);
                sum += bytes;
                window_sum.push((t, bytes));
            }
            prop_assert_eq!(m.total(), sum);
            let latest = window_sum.iter().map(|(t, _)| *t).max().unwrap_or(0);
            let now = latest + probe;
            let r = m.rate(t0 + ms(now));
            // Never more than everything recorded over the smallest divisor used (one bucket).
            prop_assert!(u128::from(r) <= u128::from(sum));
            // Nothing recorded within the last window plus a bucket: the rate is zero.
            if probe >= 6_000 {
                prop_assert_eq!(r, 0);
            }
            // Rates are a pure function of the state and the instant.
            prop_assert_eq!(r, m.clone().rate(t0 + ms(now)));
        }

        #[test]
        fn constant_rate_is_measured(per_tick in 1u64..1_000_000, tick_ms in 1u64..500) {
            let t0 = Instant::now();
            let mut m = RateMeter::new(t0);
            let mut t = 0;
            while t <= 12_000 {
                m.record(t0 + ms(t), per_tick);
                t += tick_ms;
            }
            let expected = u128::from(per_tick) * 1000 / u128::from(tick_ms);
            let r = u128::from(m.rate(t0 + ms(t - tick_ms)));
            // Within two ticks' worth of bytes over the window (window edge, oldest bucket).
            let slack = 2 * u128::from(per_tick) / 5 + 1;
            prop_assert!(r + slack >= expected && r <= expected + slack, "{r} vs {expected}");
        }
    }
}
