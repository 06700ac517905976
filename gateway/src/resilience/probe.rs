//! Active-probe state of one remote gateway: healthy/unhealthy thresholds
//! (as Envoy's health checker: a run of `unhealthy` failed probes marks it
//! failing, a run of `healthy` passed probes marks it back), and the
//! jittered wait between probes. Pure: the caller probes, sleeps and draws
//! the random number.

use std::num::NonZeroU32;
use std::time::Duration;

/// How many probes in a row change the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeThresholds {
    /// Passed probes in a row that mark a failing gateway healthy again.
    pub healthy: NonZeroU32,
    /// Failed probes in a row that mark a healthy gateway failing.
    pub unhealthy: NonZeroU32,
}

/// The state of one remote gateway. A gateway not yet probed is healthy
/// (nothing is known against it; connect failures still eject it through
/// outlier detection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeState {
    failing: bool,
    /// Probes in a row whose result contradicts the current state.
    against: u32,
}

impl ProbeState {
    /// Whether the gateway counts as failing.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// Feeds one probe result; returns the new state when it changed.
    pub fn observe(&mut self, passed: bool, t: ProbeThresholds) -> Option<bool> {
        if passed != self.failing {
            // Agrees with the current state: a run against it is broken.
            self.against = 0;
            return None;
        }
        self.against = self.against.saturating_add(1);
        let needed = if self.failing { t.healthy } else { t.unhealthy };
        if self.against < needed.get() {
            return None;
        }
        self.failing = !self.failing;
        self.against = 0;
        Some(self.failing)
    }
}

/// The wait before the next probe: `interval` plus up to `jitter_percent`
/// of it, by `unit` (a random number in `0.0..1.0`), so that gateways
/// started together do not probe their peers in lockstep.
pub fn next_probe_in(interval: Duration, jitter_percent: u8, unit: f64) -> Duration {
    let share = f64::from(jitter_percent.min(100)) / 100.0 * unit.clamp(0.0, 1.0);
    interval + interval.mul_f64(share)
}
