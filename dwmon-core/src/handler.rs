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

/// A [`CheckHandler`] made from a synchronous closure; see [`handler_fn`].
#[derive(Debug, Clone)]
pub struct FnHandler<F>(pub F);

/// Makes a [`CheckHandler`] from a closure `Fn(&Event) -> Result<(), HandlerError>`.
pub fn handler_fn<F>(f: F) -> FnHandler<F>
where
    F: Fn(&Event) -> Result<(), HandlerError> + Send + Sync,
{
    FnHandler(f)
}

#[async_trait]
impl<F> CheckHandler for FnHandler<F>
where
    F: Fn(&Event) -> Result<(), HandlerError> + Send + Sync,
{
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        (self.0)(event)
    }
}
