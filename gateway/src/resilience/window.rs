//! A sliding window of time buckets, driven by an injected clock.

use std::time::{Duration, Instant};

/// A ring of `n` buckets of `width` each, covering the last `n * width`.
#[derive(Debug, Clone)]
pub(crate) struct Window<T> {
    epoch: Instant,
    width: Duration,
    slots: Vec<(u64, T)>,
}

impl<T: Default + Clone> Window<T> {
    /// A window of `buckets` buckets spanning `span` (at least 1 ms per bucket).
    pub(crate) fn new(span: Duration, buckets: u32, now: Instant) -> Self {
        let buckets = buckets.max(1);
        let width = (span / buckets).max(Duration::from_millis(1));
        Self {
            epoch: now,
            width,
            slots: vec![(u64::MAX, T::default()); buckets as usize],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        (since.as_nanos() / self.width.as_nanos().max(1)) as u64
    }

    /// The bucket for `now`, cleared if it held an older period.
    pub(crate) fn current(&mut self, now: Instant) -> &mut T {
        let idx = self.index(now);
        let n = self.slots.len() as u64;
        let slot = &mut self.slots[(idx % n) as usize];
        if slot.0 != idx {
            *slot = (idx, T::default());
        }
        &mut slot.1
    }

    /// The live buckets (those within the window at `now`).
    pub(crate) fn live(&self, now: Instant) -> impl Iterator<Item = &T> {
        let idx = self.index(now);
        let n = self.slots.len() as u64;
        self.slots
            .iter()
            .filter(move |(i, _)| *i != u64::MAX && *i <= idx && idx - *i < n)
            .map(|(_, t)| t)
    }
}
