//! The one failure path of a cycle: a step that fails returns a [`Failure`], and
//! [`CycleContext::report`] turns it into an `ERROR` event and the checker's last error (what
//! `dwmon status` shows until a later cycle of the checker goes through without one).

use super::{load_error_checker, local_rfc3339, CheckerOutcome, CycleContext};
use crate::checker_file::{Checker, CheckerFileError};
use crate::record::{ErrorEvent, ErrorKind, Status};
use chrono_tz::Tz;
use futures::FutureExt;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use tracing::warn;

/// Why a step of a checker's cycle failed: the `ERROR` event's kind and text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub(super) kind: ErrorKind,
    pub(super) text: String,
}

impl Failure {
    pub(super) fn new(kind: ErrorKind, text: impl Into<String>) -> Self {
        Failure {
            kind,
            text: text.into(),
        }
    }

    /// A store call that failed: `store: {what}: {error}`.
    pub(super) fn store(what: impl std::fmt::Display, error: impl std::fmt::Display) -> Self {
        Failure::new(ErrorKind::Store, format!("store: {what}: {error}"))
    }
}

impl CycleContext {
    /// `result`'s value, or `None` after reporting its failure ([`CycleContext::report`]).
    pub(super) async fn ok_or_report<T>(
        &self,
        checker: &Checker,
        outcome: &mut CheckerOutcome,
        result: Result<T, Failure>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(failure) => {
                self.report(checker, outcome, failure).await;
                None
            }
        }
    }

    /// Reports a failure of `checker`: logged, remembered in the store as its last error, and
    /// queued as an `ERROR` event in `outcome` (delivered at the end of the checker's work).
    pub(super) async fn report(
        &self,
        checker: &Checker,
        outcome: &mut CheckerOutcome,
        failure: Failure,
    ) {
        let zone = checker.zone(self.config.default_zone);
        let event = self
            .failure_event(&checker.name, checker.extra.clone(), zone, failure)
            .await;
        outcome.errors.push(event);
    }

    /// The one place a failure becomes an `ERROR` event: logs it and stores it as the last
    /// error of `name` (the checker's name, a failing file's stem, or a monitor's record name).
    pub(super) async fn failure_event(
        &self,
        name: &str,
        extra: serde_json::Value,
        zone: Tz,
        failure: Failure,
    ) -> ErrorEvent {
        warn!(checker = %name, error = %failure.text, "checker error");
        self.remember_error(name, &failure.text).await;
        self.error_event(name, extra, zone, failure.kind, failure.text)
    }

    async fn remember_error(&self, name: &str, text: &str) {
        self.lock_clean().remove(name);
        if let Err(e) = self
            .store
            .set_last_error(name, Some((self.minute, text)))
            .await
        {
            warn!(checker = %name, error = %e, "cannot store the last error");
        }
    }

    /// Clears the stored last error of `name` after a cycle without failures.
    pub(super) async fn clear_error(&self, name: &str) {
        if self.lock_clean().contains(name) {
            return;
        }
        match self.store.set_last_error(name, None).await {
            Ok(()) => {
                self.lock_clean().insert(name.to_string());
            }
            Err(e) => warn!(checker = %name, error = %e, "cannot clear the last error"),
        }
    }

    fn lock_clean(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.clean.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An `ERROR` event of this cycle's minute. Only [`CycleContext::failure_event`] and the
    /// notices that are no failure of the checker (a duplicate name, a delivery given up)
    /// build one.
    pub(super) fn error_event(
        &self,
        checker: &str,
        extra: serde_json::Value,
        zone: Tz,
        kind: ErrorKind,
        error: String,
    ) -> ErrorEvent {
        ErrorEvent {
            kind,
            checker: checker.to_string(),
            minute: self.minute,
            minute_local: local_rfc3339(self.minute, zone),
            timezone: zone.name().to_string(),
            status: Status::Error,
            error,
            extra,
        }
    }

    /// A checker file that failed to load: one `ERROR` event per cycle until it is fixed,
    /// carrying `extra`, the checker's last good `__EXTRA__` in this process (`{}` if none).
    pub(super) async fn report_load_error(
        &self,
        error: &CheckerFileError,
        extra: serde_json::Value,
    ) -> CheckerOutcome {
        let name = load_error_checker(error);
        let text = format!("cannot load checker file: {error}");
        let failure = Failure::new(ErrorKind::CheckerFile, text);
        let zone = self.config.default_zone;
        let event = self.failure_event(&name, extra, zone, failure).await;
        self.deliver_error(&event).await;
        CheckerOutcome {
            checker: name,
            errors: vec![event],
            ..CheckerOutcome::default()
        }
    }

    /// A checker's (or monitor's) work that panicked: an `ERROR` event of `kind` without its
    /// `__EXTRA__` (the task's state is lost), delivered at once.
    pub(super) async fn report_panic(
        &self,
        name: String,
        kind: ErrorKind,
        text: &str,
    ) -> CheckerOutcome {
        let zone = self.config.default_zone;
        let failure = Failure::new(kind, text);
        let extra = serde_json::json!({});
        // The panic may have come from the store: if storing the last error panics too, the
        // event still goes out.
        let remembered = self.failure_event(&name, extra.clone(), zone, failure.clone());
        let event = match AssertUnwindSafe(remembered).catch_unwind().await {
            Ok(event) => event,
            Err(_) => self.error_event(&name, extra, zone, failure.kind, failure.text),
        };
        self.deliver_error(&event).await;
        CheckerOutcome {
            checker: name,
            errors: vec![event],
            ..CheckerOutcome::default()
        }
    }
}
