//! A token bucket on virtual time: what a rate limit lets through.
//!
//! Tokens are bytes. They accrue at the limit's rate up to a small burst, and a transfer takes
//! them as it starts. A transfer may start whenever the bucket holds any token at all and
//! then leave it in debt: blocks are 16 KiB while a slow limit accrues less than that between
//! two checks, so waiting for a whole block's worth would make the rate lumpy, and the debt
//! is paid back before the next transfer starts, so over any span longer than a few blocks
//! the rate is exact. Time is an input, so the simulator checks the rates to the byte.

use std::time::{Duration, Instant};

/// The burst a limited bucket holds at most: 100 ms of its rate. Short enough that a limit
/// holds within a few percent over a second, long enough that a check every few
/// milliseconds does not lose tokens to rounding.
pub const BURST: Duration = Duration::from_millis(100);

/// The least burst, in bytes: one 16 KiB block, so that a slow limit still lets a whole
/// block start after a short wait rather than accruing forever towards it.
pub const MIN_BURST: u64 = 16 * 1024;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A rate limit in bytes per second; 0 is none.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bt_proto::token_bucket::TokenBucket;
/// let t0 = Instant::now(); // in the engine this comes from the caller, never the clock
/// let mut b = TokenBucket::new(100_000);
/// let mut sent = 0;
/// let mut now = t0;
/// while now < t0 + Duration::from_secs(10) {
///     if b.has_tokens(now) {
///         b.take(now, 16_384);
///         sent += 16_384;
///     }
///     now += Duration::from_millis(1);
/// }
/// // Ten seconds of the rate, plus at most the first burst and the block in debt at the end.
/// assert!((1_000_000..=1_000_000 + 2 * 16_384).contains(&sent), "{sent}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Bytes per second; 0 is unlimited.
    rate: u64,
    /// Tokens held; negative while a transfer that started is paid back.
    tokens: i128,
    /// When `tokens` was last brought up to date; `None` until the first use, which the
    /// bucket meets full.
    at: Option<Instant>,
}

impl TokenBucket {
    /// A bucket limiting to `rate` bytes per second (0: unlimited), full at its first use.
    pub fn new(rate: u64) -> Self {
        let mut b = TokenBucket {
            rate,
            tokens: 0,
            at: None,
        };
        b.tokens = b.burst();
        b
    }

    /// The limit in bytes per second; 0 is none.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether there is no limit.
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Sets the limit from `now` on: tokens accrued so far were at the old rate.
    pub fn set_rate(&mut self, now: Instant, rate: u64) {
        self.refill(now);
        self.rate = rate;
        self.tokens = self.tokens.min(self.burst());
    }

    fn burst(&self) -> i128 {
        let per_burst = u128::from(self.rate) * BURST.as_nanos() / NANOS_PER_SEC;
        i128::try_from(per_burst)
            .unwrap_or(i128::MAX)
            .max(i128::from(MIN_BURST))
    }

    fn refill(&mut self, now: Instant) {
        let Some(at) = self.at else {
            self.at = Some(now);
            return;
        };
        let Some(elapsed) = now.checked_duration_since(at) else {
            return;
        };
        self.at = Some(now);
        if self.rate == 0 {
            return;
        }
        let earned = u128::from(self.rate) * elapsed.as_nanos() / NANOS_PER_SEC;
        let earned = i128::try_from(earned).unwrap_or(i128::MAX);
        self.tokens = self.tokens.saturating_add(earned).min(self.burst());
    }

    /// Whether a transfer may start at `now`.
    pub fn has_tokens(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.rate == 0 || self.tokens > 0
    }

    /// Bytes that may start at `now` without debt (`u64::MAX` when unlimited).
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        if self.rate == 0 {
            return u64::MAX;
        }
        u64::try_from(self.tokens.max(0)).unwrap_or(u64::MAX)
    }

    /// A transfer of `bytes` started at `now`.
    pub fn take(&mut self, now: Instant, bytes: u64) {
        self.refill(now);
        if self.rate != 0 {
            self.tokens = self.tokens.saturating_sub(i128::from(bytes));
        }
    }

    /// When the bucket next holds a token: `now` if it does (unlimited buckets always do).
    pub fn ready_at(&self, now: Instant) -> Instant {
        let at = self.at.unwrap_or(now);
        if self.rate == 0 || self.tokens > 0 {
            return now.max(at);
        }
        // Tokens needed to get above zero, at the rate, rounded up to the nanosecond.
        let missing = u128::try_from(1 - self.tokens).unwrap_or(u128::MAX);
        let rate = u128::from(self.rate);
        let nanos = missing.saturating_mul(NANOS_PER_SEC).div_ceil(rate);
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        at.checked_add(wait).unwrap_or(at).max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_bucket_never_waits() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0);
        b.take(t0, u64::MAX);
        assert!(b.has_tokens(t0));
        assert_eq!(b.ready_at(t0), t0);
        assert_eq!(b.available(t0), u64::MAX);
    }

    #[test]
    fn debt_is_paid_back_before_the_next_transfer() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10_000);
        assert!(b.has_tokens(t0));
        b.take(t0, 16_384 + 16_384);
        assert!(!b.has_tokens(t0));
        // 16,384 tokens of debt at 10,000 a second: 1.6384 s, plus a nanosecond's token.
        let ready = b.ready_at(t0);
        assert!(ready > t0 + Duration::from_millis(1638), "{ready:?}");
        assert!(ready <= t0 + Duration::from_millis(1639), "{ready:?}");
        assert!(!b.has_tokens(ready - Duration::from_millis(1)));
        assert!(b.has_tokens(ready));
    }

    #[test]
    fn a_lower_rate_takes_effect_at_once_and_keeps_no_larger_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10_000_000);
        b.set_rate(t0, 20_000);
        // The burst shrank to the floor: one block may start, the next waits.
        assert_eq!(b.available(t0), MIN_BURST);
        b.take(t0, MIN_BURST);
        assert!(!b.has_tokens(t0));
        assert!(b.has_tokens(t0 + Duration::from_millis(1)));
    }

    #[test]
    fn the_rate_holds_over_a_minute_of_blocks() {
        let t0 = Instant::now();
        for rate in [5_000u64, 100_000, 3_000_000] {
            let mut b = TokenBucket::new(rate);
            let mut now = t0;
            let mut sent = 0u64;
            let end = t0 + Duration::from_secs(60);
            while now < end {
                if b.has_tokens(now) {
                    b.take(now, 16_384);
                    sent += 16_384;
                } else {
                    now = b.ready_at(now);
                }
            }
            // Within 2 %, or the first burst and one block for a limit that slow.
            let expected = rate * 60;
            let slack = (expected / 50).max(2 * MIN_BURST);
            assert!(
                sent.abs_diff(expected) <= slack,
                "{rate}: sent {sent}, expected {expected}"
            );
        }
    }
}
