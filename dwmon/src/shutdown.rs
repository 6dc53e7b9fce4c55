//! Stopping the run loop: on SIGINT, SIGTERM, or when the program has done enough.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::warn;

/// The exit status after a second SIGINT/SIGTERM (128 + SIGINT, as shells report it).
pub const FORCED_EXIT: i32 = 130;

/// A future resolving on SIGINT, SIGTERM (Ctrl-C elsewhere) or when `enough` is notified.
///
/// The signal handlers are installed before this returns, so a signal arriving at any point
/// afterwards is caught (and does not kill the process): the run loop finishes the cycle in
/// flight and stops. The first signal is logged at WARN (visible by default: a cycle waiting
/// on a slow source may take a while). A second SIGINT or SIGTERM exits at once with status
/// 130, like an interrupted shell command; that is safe because the store is crash-safe (a
/// check recorded but not yet delivered is delivered on the next start).
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
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
                () = enough.notified() => return,
            };
            warn!("{name} received; finishing the cycle in flight (send it again to stop at once)");
            tokio::spawn(async move {
                let name = tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                };
                warn!("second {name}: stopping now; the next start delivers what is still owed");
                std::process::exit(FORCED_EXIT);
            });
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => warn!("Ctrl-C received; finishing the cycle in flight"),
                () = enough.notified() => {}
            }
        })
    }
}
