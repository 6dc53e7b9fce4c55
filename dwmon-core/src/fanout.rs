//! [`FanoutHandler`]: one [`CheckHandler`] made of several, each a delivery target of its own.

use crate::handler::{CheckHandler, HandlerError};
use crate::record::Event;
use async_trait::async_trait;
use std::sync::Arc;

/// A [`CheckHandler`] that hands each event to several handlers (e.g. the CLI's JSON-lines
/// printer and an alert handler); all run, and the call fails if any failed.
///
/// When a check record fails in some handlers, the engine retries it from its outbox; the
/// retry goes only to the handlers that failed it (this process remembers which succeeded),
/// so a slow webhook does not make the printer print the same record again. After a restart
/// the memory is gone and a retried record reaches every handler again, through
/// [`CheckHandler::redeliver`] (at-least-once; a printer skips what it printed on the first
/// attempt).
///
/// ```
/// use std::sync::Arc;
/// use dwmon_core::FanoutHandler;
/// let printer = dwmon_core::handler_fn(|event| { println!("{}", event.status()); Ok(()) });
/// let both = FanoutHandler::new(vec![Arc::new(printer)]);
/// # let _: &dyn dwmon_core::CheckHandler = &both;
/// ```
///
/// Each handler is a delivery target of its own for the engine ([`CheckHandler::targets`]):
/// `NAME` (from [`FanoutHandler::named`]; the position for [`FanoutHandler::new`]), or
/// `NAME/TARGET` for the targets of a handler that has several. A target that fails holds
/// back neither the other handlers nor the other targets.
#[derive(Clone, Default)]
pub struct FanoutHandler {
    handlers: Vec<Arc<dyn CheckHandler>>,
    /// The target name of each handler.
    names: Vec<String>,
    /// Per event key of a partly failed check record: which handlers already succeeded.
    done: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<bool>>>>,
}

impl std::fmt::Debug for FanoutHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutHandler")
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

impl FanoutHandler {
    /// Most partly failed records remembered; beyond it the memory starts over (a retry
    /// then reaches every handler again).
    const MAX_REMEMBERED: usize = 10_000;

    /// Hands every event to each of `handlers`, in order; as delivery targets they are
    /// named by position (`0`, `1`, ...).
    pub fn new(handlers: Vec<Arc<dyn CheckHandler>>) -> Self {
        let names = (0..handlers.len()).map(|i| i.to_string()).collect();
        FanoutHandler {
            handlers,
            names,
            done: Arc::default(),
        }
    }

    /// Hands every event to each handler, in order; each is the delivery target `NAME`
    /// (names are stored in the outbox and shown in `status`: keep them stable, without
    /// `/` and without secrets).
    pub fn named(handlers: Vec<(String, Arc<dyn CheckHandler>)>) -> Self {
        let (names, handlers) = handlers.into_iter().unzip();
        FanoutHandler {
            handlers,
            names,
            done: Arc::default(),
        }
    }

    /// The handler a target name belongs to and the handler's own target name.
    fn route<'a>(&self, target: &'a str) -> Option<(&Arc<dyn CheckHandler>, &'a str)> {
        let (name, rest) = match target.split_once('/') {
            Some((name, rest)) => (name, rest),
            None => (target, ""),
        };
        let index = self.names.iter().position(|n| n == name)?;
        Some((&self.handlers[index], rest))
    }

    fn lock_done(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<bool>>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CheckHandler for FanoutHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.fan_out(event, None).await
    }

    async fn redeliver(&self, event: &Event, failed_attempts: u32) -> Result<(), HandlerError> {
        self.fan_out(event, Some(failed_attempts)).await
    }

    fn targets(&self, event: &Event) -> Vec<String> {
        let mut targets = Vec::new();
        for (name, handler) in self.names.iter().zip(&self.handlers) {
            let own = handler.targets(event);
            if own.is_empty() {
                targets.push(name.clone());
            } else {
                targets.extend(own.into_iter().map(|t| format!("{name}/{t}")));
            }
        }
        targets
    }

    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        match self.route(target) {
            Some((handler, own)) => handler.deliver_to(own, event, failed_attempts).await,
            // A target of an earlier configuration (a handler no longer here): nothing owed.
            None => Ok(()),
        }
    }

    async fn gave_up(&self, target: &str, event: &Event) {
        if let Some((handler, own)) = self.route(target) {
            handler.gave_up(own, event).await;
        }
    }
}

impl FanoutHandler {
    /// Hands `event` to every handler that has not succeeded with it yet (in this process);
    /// `redelivery` = the engine's count of failed attempts, passed on to
    /// [`CheckHandler::redeliver`].
    async fn fan_out(&self, event: &Event, redelivery: Option<u32>) -> Result<(), HandlerError> {
        // Only check records are retried by the engine; error events are sent once.
        let key = match event {
            Event::Check(record) => Some(record.idempotency_key()),
            Event::Error(_) => None,
        };
        let mut done = key
            .as_ref()
            .and_then(|k| self.lock_done().remove(k))
            .filter(|d| d.len() == self.handlers.len())
            .unwrap_or_else(|| vec![false; self.handlers.len()]);
        let mut errors = Vec::new();
        for (handler, done) in self.handlers.iter().zip(done.iter_mut()) {
            if *done {
                continue;
            }
            let result = match redelivery {
                None => handler.handle(event).await,
                Some(attempts) => handler.redeliver(event, attempts).await,
            };
            match result {
                Ok(()) => *done = true,
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        if let Some(key) = key {
            let mut remembered = self.lock_done();
            if remembered.len() >= Self::MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key, done);
        }
        Err(combined(errors))
    }
}

/// One error for the failures of several handlers: the messages (with their causes) joined;
/// the only failure's cause kept as the source; permanent when every failure is.
fn combined(mut errors: Vec<HandlerError>) -> HandlerError {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let text: Vec<String> = errors.iter().map(HandlerError::chain).collect();
    if errors.iter().all(HandlerError::is_permanent) {
        HandlerError::permanent(text.join("; "))
    } else {
        HandlerError::new(text.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::CheckRecord;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn record() -> Event {
        Event::Check(CheckRecord {
            checker: "orders".into(),
            requirement_index: 0,
            requirement:
                "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60".into(),
            minute: 60,
            minute_local: "1970-01-01T00:01:00+00:00".into(),
            timezone: "UTC".into(),
            lookback_seconds: 60,
            count: 0,
            min: 1,
            max: 9,
            status: crate::Status::Bad,
            extra: serde_json::json!({}),
            monitor: None,
            runs: None,
        })
    }

    #[tokio::test]
    async fn a_retry_reaches_only_the_handlers_that_failed() {
        let printed = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (p, a) = (Arc::clone(&printed), Arc::clone(&attempts));
        let printer = crate::handler_fn(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        // Fails the first two attempts.
        let flaky = crate::handler_fn(move |_| {
            if a.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(HandlerError::new("webhook down"))
            } else {
                Ok(())
            }
        });
        let fanout = FanoutHandler::new(vec![Arc::new(printer), Arc::new(flaky)]);
        let event = record();
        assert!(fanout.handle(&event).await.is_err());
        assert!(fanout.handle(&event).await.is_err());
        assert!(fanout.handle(&event).await.is_ok());
        assert_eq!(printed.load(Ordering::SeqCst), 1, "printed once");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        // Done: the next delivery of the same record is a new one for everybody.
        assert!(fanout.handle(&event).await.is_ok());
        assert_eq!(printed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_keep_their_causes_and_are_permanent_only_when_all_are() {
        let event = record();
        let pager = || crate::handler_fn(|_| Err(HandlerError::permanent("pager: 404")));
        let one = FanoutHandler::new(vec![Arc::new(pager())]);
        assert!(one.handle(&event).await.unwrap_err().is_permanent());
        let hook = crate::handler_fn(|_| {
            Err(HandlerError::new("hook").with_source(std::io::Error::other("refused")))
        });
        let both = FanoutHandler::new(vec![Arc::new(hook), Arc::new(pager())]);
        let error = both.handle(&event).await.unwrap_err();
        assert_eq!(error.message, "hook: refused; pager: 404");
        assert!(!error.is_permanent(), "a retry may still reach the hook");
    }
}
