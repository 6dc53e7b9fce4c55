//! [`CheckHandler`]: where check records and error events go.

use crate::record::Event;
use async_trait::async_trait;
use std::sync::Arc;

/// A handler failed to deliver an event. Check records are retried from the store's outbox
/// with backoff, unless the error is [permanent](HandlerError::permanent). The message is
/// shown to operators, so never put secrets in it.
///
/// The message says what failed; the cause goes in [`HandlerError::with_source`] (it is
/// [`std::error::Error::source`], and the engine shows it after the message: `message:
/// cause`).
///
/// ```
/// use dwmon_core::HandlerError;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let error = HandlerError::new("cannot reach the ticket system").with_source(io);
/// assert_eq!(error.to_string(), "cannot reach the ticket system");
/// assert_eq!(error.chain(), "cannot reach the ticket system: connection refused");
/// assert!(!error.is_permanent());
///
/// // Retrying cannot help (a rejected payload, a deleted project): give up at once.
/// assert!(HandlerError::permanent("project ACME was deleted").is_permanent());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong.
    pub message: String,
    /// What caused it.
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    /// Whether retrying cannot help.
    permanent: bool,
}

impl HandlerError {
    /// A handler error with a message: the engine retries the delivery later.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            source: None,
            permanent: false,
        }
    }

    /// A handler error that retrying cannot fix (the receiver rejected the event for good):
    /// the engine gives the delivery up at once instead of retrying it, as it does for a
    /// target failing longer than
    /// [`EngineConfig::delivery_give_up_seconds`](crate::EngineConfig) (the give-up is
    /// recorded, reported in an `ERROR` event of kind
    /// [`DeliveryGivenUp`](crate::ErrorKind::DeliveryGivenUp), and
    /// [`CheckHandler::gave_up`] is called). Error events are never retried anyway.
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            permanent: true,
            ..HandlerError::new(message)
        }
    }

    /// This error, caused by `source` (kept as [`std::error::Error::source`]).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Whether the error is permanent (see [`HandlerError::permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The message followed by its chain of causes, each after `": "` (what the engine logs
    /// and stores as a delivery's last error).
    pub fn chain(&self) -> String {
        let mut text = self.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

/// Equal when the messages, the permanence and the causes' messages are.
impl PartialEq for HandlerError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && self.permanent == other.permanent
            && self.source.as_ref().map(ToString::to_string)
                == other.source.as_ref().map(ToString::to_string)
    }
}

impl Eq for HandlerError {}

/// Receives every check record and every error event, in ascending `(minute, requirement)`
/// order per checker. Delivery is at least once: use [`Event::idempotency_key`] to deduplicate.
///
/// ```
/// use async_trait::async_trait;
/// use dwmon_core::{CheckHandler, Event, HandlerError, Status};
///
/// /// Prints only the checks that need attention.
/// struct PrintBad;
///
/// #[async_trait]
/// impl CheckHandler for PrintBad {
///     async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
///         if event.status() != Status::Good {
///             println!("{} needs attention ({})", event.checker(), event.idempotency_key());
///         }
///         Ok(())
///     }
/// }
///
/// // Or, for simple cases, a closure:
/// let handler = dwmon_core::handler_fn(|event: &Event| {
///     println!("{}", event.status());
///     Ok(())
/// });
/// # let _: &dyn CheckHandler = &handler;
/// ```
#[async_trait]
pub trait CheckHandler: Send + Sync {
    /// Handles one event.
    ///
    /// # Errors
    /// A [`HandlerError`] makes the engine keep the delivery pending and retry it later (or
    /// give it up at once, when [permanent](HandlerError::permanent)).
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;

    /// Handles a check record the engine delivers again from its outbox after
    /// `failed_attempts` (at least 1) failed deliveries, possibly by an earlier process.
    /// The default calls [`CheckHandler::handle`]. A handler with a side effect that must
    /// happen once per record and cannot fail (a printer) overrides it to skip that effect:
    /// it happened on the first attempt.
    ///
    /// # Errors
    /// As for [`CheckHandler::handle`].
    async fn redeliver(&self, event: &Event, failed_attempts: u32) -> Result<(), HandlerError> {
        let _ = failed_attempts;
        self.handle(event).await
    }

    /// The independent delivery targets of a check record (e.g. stdout and each alert
    /// channel), by stable name. The engine keeps each record's progress per target: a target
    /// that fails is retried on its own, later records of the checker still reach the other
    /// targets, and a target never receives a checker's records out of order. Empty (the
    /// default): the handler is one target, named `""`.
    ///
    /// Names are stored in the outbox and shown in `status` and `ERROR` events: never put
    /// secrets (tokens in URLs) in them, and keep them stable across restarts.
    fn targets(&self, event: &Event) -> Vec<String> {
        let _ = event;
        Vec::new()
    }

    /// Delivers a check record to one of its [`CheckHandler::targets`] (`""` for a handler
    /// without targets), after `failed_attempts` failed rounds of the record (0 on its first
    /// delivery). The default calls [`CheckHandler::handle`] (first delivery) or
    /// [`CheckHandler::redeliver`].
    ///
    /// # Errors
    /// The target did not take the record; the engine retries it later, with backoff (or
    /// gives it up at once, when [permanent](HandlerError::permanent)).
    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        let _ = target;
        if failed_attempts == 0 {
            self.handle(event).await
        } else {
            self.redeliver(event, failed_attempts).await
        }
    }

    /// The engine gave up delivering `event` (the oldest record of its checker that `target`
    /// was still owed) and every later record of the checker it owed `target` this cycle,
    /// after `target` kept failing for longer than
    /// [`EngineConfig::delivery_give_up_seconds`](crate::EngineConfig). A handler with its
    /// own queue for the target drops what it still owes it for that checker. The default
    /// does nothing.
    async fn gave_up(&self, target: &str, event: &Event) {
        let _ = (target, event);
    }
}

#[async_trait]
impl<T: CheckHandler + ?Sized> CheckHandler for &T {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        (**self).handle(event).await
    }
    async fn redeliver(&self, event: &Event, failed_attempts: u32) -> Result<(), HandlerError> {
        (**self).redeliver(event, failed_attempts).await
    }
    fn targets(&self, event: &Event) -> Vec<String> {
        (**self).targets(event)
    }
    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        (**self).deliver_to(target, event, failed_attempts).await
    }
    async fn gave_up(&self, target: &str, event: &Event) {
        (**self).gave_up(target, event).await
    }
}

#[async_trait]
impl<T: CheckHandler + ?Sized> CheckHandler for Box<T> {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        (**self).handle(event).await
    }
    async fn redeliver(&self, event: &Event, failed_attempts: u32) -> Result<(), HandlerError> {
        (**self).redeliver(event, failed_attempts).await
    }
    fn targets(&self, event: &Event) -> Vec<String> {
        (**self).targets(event)
    }
    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        (**self).deliver_to(target, event, failed_attempts).await
    }
    async fn gave_up(&self, target: &str, event: &Event) {
        (**self).gave_up(target, event).await
    }
}

#[async_trait]
impl<T: CheckHandler + ?Sized> CheckHandler for Arc<T> {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        (**self).handle(event).await
    }
    async fn redeliver(&self, event: &Event, failed_attempts: u32) -> Result<(), HandlerError> {
        (**self).redeliver(event, failed_attempts).await
    }
    fn targets(&self, event: &Event) -> Vec<String> {
        (**self).targets(event)
    }
    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        (**self).deliver_to(target, event, failed_attempts).await
    }
    async fn gave_up(&self, target: &str, event: &Event) {
        (**self).gave_up(target, event).await
    }
}

/// A [`CheckHandler`] made from a closure; see [`handler_fn`].
pub struct FnHandler<F, M = Ready>(pub F, std::marker::PhantomData<fn() -> M>);

impl<F: std::fmt::Debug, M> std::fmt::Debug for FnHandler<F, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FnHandler").field(&self.0).finish()
    }
}

impl<F: Clone, M> Clone for FnHandler<F, M> {
    fn clone(&self) -> Self {
        FnHandler(self.0.clone(), std::marker::PhantomData)
    }
}

/// Marks a [`handler_fn`] closure returning `Result<(), HandlerError>`.
#[derive(Debug)]
pub enum Ready {}

/// Marks a [`handler_fn`] closure returning a future of `Result<(), HandlerError>`.
#[derive(Debug)]
pub enum Pending {}

/// What a [`handler_fn`] closure may return: the result itself (marker [`Ready`]) or a
/// `Send + 'static` future of it (marker [`Pending`]).
pub trait HandlerOutput<M>: Send {
    /// The future the handler awaits.
    type Future: std::future::Future<Output = Result<(), HandlerError>> + Send;
    /// This output as a future.
    fn into_handler_future(self) -> Self::Future;
}

impl HandlerOutput<Ready> for Result<(), HandlerError> {
    type Future = std::future::Ready<Result<(), HandlerError>>;
    fn into_handler_future(self) -> Self::Future {
        std::future::ready(self)
    }
}

impl<T> HandlerOutput<Pending> for T
where
    T: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    type Future = T;
    fn into_handler_future(self) -> T {
        self
    }
}

/// Makes a [`CheckHandler`] from a closure taking the event: either a synchronous one,
/// `Fn(&Event) -> Result<(), HandlerError>`, or one returning a future of that result (an
/// `async move` block; it cannot borrow the event, so clone what it needs first):
///
/// ```
/// use dwmon_core::{handler_fn, CheckHandler, Event, HandlerError};
///
/// let print = handler_fn(|event: &Event| {
///     println!("{}", event.status());
///     Ok(())
/// });
/// let send = handler_fn(|event: &Event| {
///     let key = event.idempotency_key();
///     async move {
///         // e.g. client.post(url).json(&key).send().await
///         tokio::task::yield_now().await;
///         if key.is_empty() {
///             return Err(HandlerError::permanent("no key"));
///         }
///         Ok(())
///     }
/// });
/// # let _: [&dyn CheckHandler; 2] = [&print, &send];
/// ```
pub fn handler_fn<F, R, M>(f: F) -> FnHandler<F, M>
where
    F: Fn(&Event) -> R + Send + Sync,
    R: HandlerOutput<M>,
{
    FnHandler(f, std::marker::PhantomData)
}

#[async_trait]
impl<F, R, M> CheckHandler for FnHandler<F, M>
where
    F: Fn(&Event) -> R + Send + Sync,
    R: HandlerOutput<M>,
{
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        (self.0)(event).into_handler_future().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{checker, every_minute, ScriptedSource};
    use crate::{CheckRecord, Engine, MemoryStore, Row, StoreView};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// 2023-11-14T22:14:00Z, a minute.
    const T: i64 = 1_700_000_040;

    #[tokio::test]
    async fn an_async_closure_handler_receives_checks_and_its_errors_are_retried() {
        let received = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (sink, count) = (Arc::clone(&received), Arc::clone(&calls));
        let handler = handler_fn(move |event: &Event| {
            let (sink, event) = (Arc::clone(&sink), event.clone());
            let first = count.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                tokio::task::yield_now().await;
                if first {
                    let cause = std::io::Error::other("connection reset");
                    return Err(HandlerError::new("ticket API").with_source(cause));
                }
                sink.lock().unwrap().push(event);
                Ok(())
            }
        });
        let source = Arc::new(ScriptedSource::new());
        source.set_rows("orders", vec![Row::new("o1", T - 30)]);
        let store = Arc::new(MemoryStore::new());
        let engine = Engine::new(source, store.clone(), Arc::new(handler))
            .with_checkers(vec![checker("orders", vec![every_minute(0, 10, 60)])]);

        let report = engine.run_cycle(T + 5).await;
        assert_eq!(report.outcome("orders").unwrap().delivery_failures, 1);
        assert!(received.lock().unwrap().is_empty());
        let status = store.status().await.unwrap();
        assert_eq!(status[0].pending_deliveries, 1, "kept for a retry");

        // After the backoff the record is delivered again, before the next minute's.
        engine.run_cycle(T + 5 * 60 + 5).await;
        let minutes: Vec<i64> = received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Check(c) => Some(c.minute),
                Event::Error(_) => None,
            })
            .collect();
        assert_eq!(minutes[0], T);
        assert!(minutes.len() >= 2, "{minutes:?}");
        assert_eq!(store.status().await.unwrap()[0].pending_deliveries, 0);
    }

    #[tokio::test]
    async fn a_sync_closure_still_works_without_annotations() {
        let handler = handler_fn(|event| {
            if event.checker() == "bad" {
                Err(HandlerError::permanent("rejected"))
            } else {
                Ok(())
            }
        });
        let record = CheckRecord {
            checker: "bad".into(),
            requirement_index: 0,
            requirement: "CHECKHOURS* CHECKMINUTES* WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60"
                .into(),
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
        };
        let error = handler.handle(&Event::Check(record)).await;
        assert!(error.unwrap_err().is_permanent());
    }
}
