//! Exponential back-off with full jitter (AWS architecture blog, "Exponential
//! Backoff And Jitter"): the n-th delay is uniform in `[0, min(cap, base * 2^n)]`,
//! so a hundred gateways reconnecting after an API restart spread out
//! instead of stampeding. Kept rather than `backon`, whose jitter only adds
//! up to one more delay on top (docs/libraries.md).

use std::time::Duration;

use rand::Rng;

/// Reconnect delays: exponential ceiling, full jitter, reset on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// A back-off whose ceiling starts at `base` and doubles up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base: base.max(Duration::from_millis(1)),
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The ceiling of the next delay.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay (uniform in `[0, ceiling]`), advancing the attempt.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let mut rng = StdRng::seed_from_u64(7);
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            ceilings.push(b.ceiling());
            let d = b.next_delay(&mut rng);
            assert!(d <= *ceilings.last().unwrap_or(&Duration::ZERO));
        }
        assert_eq!(ceilings[0], Duration::from_millis(100));
        assert_eq!(ceilings[1], Duration::from_millis(200));
        assert_eq!(ceilings[5], Duration::from_millis(3200));
        assert_eq!(ceilings[11], Duration::from_secs(30));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn full_jitter_spreads_a_hundred_reconnects() {
        // 100 gateways at their 6th attempt (ceiling 3.2 s): delays must be
        // spread over the window, not bunched at the ceiling.
        let mut rng = StdRng::seed_from_u64(42);
        let mut delays: Vec<Duration> = (0..100)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
                for _ in 0..5 {
                    b.next_delay(&mut rng);
                }
                b.next_delay(&mut rng)
            })
            .collect();
        delays.sort();
        let max = Duration::from_millis(3200);
        assert!(delays.iter().all(|d| *d <= max));
        // Every 320 ms bucket of the window receives some reconnects.
        for bucket in 0..10u32 {
            let lo = max * bucket / 10;
            let hi = max * (bucket + 1) / 10;
            assert!(
                delays.iter().any(|d| *d >= lo && *d < hi),
                "no reconnect in bucket {bucket}"
            );
        }
        // No 100 ms slice holds a quarter of them.
        for w in delays.windows(25) {
            assert!(w[24] - w[0] > Duration::from_millis(100));
        }
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            assert!(b.next_delay(&mut rng) <= Duration::from_secs(30));
        }
        assert_eq!(b.ceiling(), Duration::from_secs(30));
    }
}
