//! Process helpers shared by the Causeway binaries (the gateway and the
//! federation API server).

/// Resolves when the process that started this one has exited, if the
/// environment has `CAUSEWAY_EXIT_WITH_PARENT` (the test harness and
/// `causeway-local` set it, so that no server outlives a killed parent);
/// never otherwise.
pub async fn parent_exited() {
    #[cfg(unix)]
    if std::env::var_os("CAUSEWAY_EXIT_WITH_PARENT").is_some() {
        let parent = std::os::unix::process::parent_id();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                tracing::warn!("parent process exited; stopping");
                return;
            }
        }
    }
    std::future::pending::<()>().await
}
