//! Stopping the run loop: on SIGINT, SIGTERM, or when the program has done enough.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::info;

/// A future resolving on SIGINT, SIGTERM (Ctrl-C elsewhere) or when `enough` is notified.
///
/// The signal handlers are installed before this returns, so a signal arriving at any point
/// afterwards is caught (and does not kill the process): the run loop finishes the cycle in
/// flight and stops.
///
/// # Errors
/// When a signal handler cannot be installed.
pub fn on_signal_or(enough: Arc<Notify>) -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => info!("SIGINT received; finishing the cycle in flight"),
                _ = terminate.recv() => info!("SIGTERM received; finishing the cycle in flight"),
                () = enough.notified() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("Ctrl-C received; finishing the cycle in flight"),
                () = enough.notified() => {}
            }
        })
    }
}
