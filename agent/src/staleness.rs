//! How stale the catalog in use is: 0 while the federation watch is
//! connected, otherwise the time since it was last known in sync.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy)]
struct State {
    connected: bool,
    synced_at: Option<SystemTime>,
}

/// Tracks catalog staleness with times given by the caller (injected clock).
#[derive(Debug)]
pub struct Staleness {
    state: Mutex<State>,
}

impl Default for Staleness {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Staleness {
    /// Starts disconnected; `synced_at` is when the catalog in use was last
    /// known to be current (e.g. when the persisted snapshot was saved).
    pub fn new(synced_at: Option<SystemTime>) -> Self {
        Self {
            state: Mutex::new(State {
                connected: false,
                synced_at,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// The watch is connected and the catalog is in sync as of `now`.
    pub fn connected(&self, now: SystemTime) {
        self.with(|s| {
            s.connected = true;
            s.synced_at = Some(now);
        });
    }

    /// The watch broke at `now`; staleness grows from here.
    pub fn disconnected(&self, now: SystemTime) {
        self.with(|s| {
            if s.connected {
                s.synced_at = Some(now);
            }
            s.connected = false;
        });
    }

    /// Whether the watch is connected.
    pub fn is_connected(&self) -> bool {
        self.with(|s| s.connected)
    }

    /// Seconds of staleness at `now` (`None` when there was never a catalog).
    pub fn seconds(&self, now: SystemTime) -> Option<f64> {
        self.with(|s| {
            if s.connected {
                return Some(0.0);
            }
            s.synced_at.map(|t| {
                now.duration_since(t)
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn staleness_is_zero_while_connected_and_grows_after() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let s = Staleness::new(None);
        assert_eq!(s.seconds(t0), None);
        s.connected(t0);
        assert_eq!(s.seconds(t0 + Duration::from_secs(50)), Some(0.0));
        s.disconnected(t0 + Duration::from_secs(60));
        assert_eq!(s.seconds(t0 + Duration::from_secs(90)), Some(30.0));
        // A second disconnect (failed reconnect) does not reset the clock.
        s.disconnected(t0 + Duration::from_secs(95));
        assert_eq!(s.seconds(t0 + Duration::from_secs(100)), Some(40.0));
    }

    #[test]
    fn restored_snapshot_is_stale_since_it_was_saved() {
        let saved = UNIX_EPOCH + Duration::from_secs(500);
        let s = Staleness::new(Some(saved));
        assert_eq!(s.seconds(saved + Duration::from_secs(7)), Some(7.0));
    }
}
