//! Events over UDP (`dwmon serve --udp ADDR`, docs/SERVER.md, "Events over UDP"): each
//! datagram is a body of `POST /api/v1/events` (one JSON event or NDJSON lines), each event
//! carrying its ping token in a `"token"` field.
//!
//! UDP is lossy: nothing is acknowledged, so a datagram lost on the way, refused (a bad line,
//! a spent rate) or arriving while the store cannot commit is gone without the sender
//! knowing. Use it where dmon was used (metrics-like heartbeats that come again soon), and
//! HTTP where every event must be stored.

use crate::events::{Events, Origin, Refusal};
use std::future::Future;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The largest datagram read (the largest UDP payload over IPv4); longer ones are cut by the
/// kernel and refused as bad JSON.
pub const MAX_DATAGRAM: usize = 65_507;

/// Datagrams being committed at once at most; more are dropped (counted as
/// `dwmon_pings_total{kind="unknown",answer="unavailable"}`).
pub const MAX_IN_FLIGHT: usize = 1024;

/// Receives events on `socket` until `shutdown` resolves. Each datagram is judged and
/// committed like an HTTP body, in a task of its own (at most [`MAX_IN_FLIGHT`] at once), so
/// a slow commit never stops the socket from being read. Refused lines and bodies are
/// counted in the ping metrics and logged at debug level.
///
/// # Errors
/// When the socket fails for good.
pub async fn serve_udp(
    socket: UdpSocket,
    events: Arc<Events>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (n, from) = tokio::select! {
            () = &mut shutdown => break,
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                // An ICMP error of an earlier send, a datagram too large: read the next one.
                Err(e) if e.kind() != std::io::ErrorKind::NotConnected => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        dispatch(&events, &slots, &mut tasks, &buffer[..n], from);
    }
    // Datagrams already received when the shutdown came are handled too (at most
    // MAX_IN_FLIGHT more, so a flood cannot hold the shutdown), then committed.
    // (The std socket reads the kernel's queue directly; tokio's readiness may not know of
    // datagrams the loop never waited for.)
    let socket = socket.into_std()?;
    socket.set_nonblocking(true)?;
    for _ in 0..MAX_IN_FLIGHT {
        match socket.recv_from(&mut buffer) {
            Ok((n, from)) => dispatch(&events, &slots, &mut tasks, &buffer[..n], from),
            Err(_) => break,
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Hands one datagram to a task of its own, or drops it when [`MAX_IN_FLIGHT`] are busy.
fn dispatch(
    events: &Arc<Events>,
    slots: &Arc<tokio::sync::Semaphore>,
    tasks: &mut tokio::task::JoinSet<()>,
    body: &[u8],
    from: std::net::SocketAddr,
) {
    while tasks.try_join_next().is_some() {}
    let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
        events.stats().count_ping("unknown", "unavailable");
        return;
    };
    let body = body.to_vec();
    let events = Arc::clone(events);
    tasks.spawn(async move {
        let _slot = slot;
        let origin = Origin {
            token: None,
            remote_addr: Some(from.ip().to_string()),
            user_agent: None,
        };
        match events.submit(&body, &origin).await {
            Ok(outcome) => {
                for error in &outcome.errors {
                    events.stats().count_ping("unknown", "bad_request");
                    tracing::debug!(%from, line = error.line, error = %error.error, "UDP event refused");
                }
            }
            Err(refusal) => {
                let answer = match refusal {
                    Refusal::RateLimited(_) => "rate_limited",
                    Refusal::Unavailable(_) => "unavailable",
                };
                events.stats().count_ping("unknown", answer);
                tracing::debug!(%from, ?refusal, "UDP datagram refused");
            }
        }
    });
}
