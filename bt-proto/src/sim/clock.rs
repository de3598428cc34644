//! Virtual time for the simulator: an `Instant` that only moves when told to.
//!
//! The simulator takes one real `Instant` at the start (the only clock reading in a whole
//! run) and advances a copy of it from event to event, so hours of swarm time pass in
//! milliseconds and a run replays exactly.

use std::time::{Duration, Instant};

/// A clock that starts at a given instant and moves forward only by explicit steps.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bt_proto::sim::clock::VirtualClock;
/// let base = Instant::now();
/// let mut clock = VirtualClock::new(base);
/// clock.advance_by(Duration::from_secs(5));
/// clock.advance_to(base + Duration::from_secs(2)); // the past: ignored
/// assert_eq!(clock.elapsed(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualClock {
    base: Instant,
    now: Instant,
}

impl VirtualClock {
    /// A clock reading `base`.
    pub fn new(base: Instant) -> Self {
        VirtualClock { base, now: base }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The instant the clock started at.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// Virtual time passed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.duration_since(self.base)
    }

    /// Moves to `t` if it is later than now; time never runs backwards. Returns the new now.
    pub fn advance_to(&mut self, t: Instant) -> Instant {
        self.now = self.now.max(t);
        self.now
    }

    /// Moves forward by `d`. A step past what `Instant` can represent leaves the clock where
    /// it is. Returns the new now.
    pub fn advance_by(&mut self, d: Duration) -> Instant {
        if let Some(t) = self.now.checked_add(d) {
            self.now = t;
        }
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_forward_only() {
        let base = Instant::now();
        let mut c = VirtualClock::new(base);
        assert_eq!(c.now(), base);
        assert_eq!(
            c.advance_by(Duration::from_millis(1500)),
            base + Duration::from_millis(1500)
        );
        assert_eq!(c.advance_to(base), base + Duration::from_millis(1500));
        assert_eq!(
            c.advance_to(base + Duration::from_secs(3)),
            base + Duration::from_secs(3)
        );
        assert_eq!(c.elapsed(), Duration::from_secs(3));
        assert_eq!(c.base(), base);
        assert_eq!(c.advance_by(Duration::MAX), base + Duration::from_secs(3));
    }
}
