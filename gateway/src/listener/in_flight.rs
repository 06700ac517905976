//! Counts a listener's live connections so a drain can wait for the last.

use std::sync::Arc;

use tokio::sync::watch;

/// The live connections of one listener.
#[derive(Debug, Clone)]
pub(crate) struct InFlight(Arc<watch::Sender<usize>>);

/// One live connection; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Entered(Arc<watch::Sender<usize>>);

impl InFlight {
    pub(crate) fn new() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }

    /// Counts a new connection until the guard drops.
    pub(crate) fn enter(&self) -> Entered {
        self.0.send_modify(|n| *n += 1);
        Entered(self.0.clone())
    }

    /// Returns once no connection is live.
    pub(crate) async fn idle(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_the_last_connection() {
        let f = InFlight::new();
        f.idle().await;
        let a = f.enter();
        let b = f.enter();
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), f.idle())
                .await
                .is_err()
        );
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), f.idle())
            .await
            .expect("idle after the last guard dropped");
    }
}
