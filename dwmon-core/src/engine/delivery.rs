//! Step 6b of a cycle: the outbox read, delivery of each record to every handler target in
//! order, retries with backoff, give-ups, and best-effort delivery of `ERROR` events.

use super::{local_rfc3339, CheckerOutcome, CycleContext};
use crate::record::{CheckRecord, ErrorEvent, ErrorKind, Event};
use crate::store::{Lease, PendingDelivery, Retry, Settlement};
use std::collections::{BTreeMap, HashSet};
use tracing::warn;

/// How long the outbox entries a cycle claims stay with it (a store shared by several
/// runners hides them from the others meanwhile): longer than any cycle's deliveries take.
const DELIVERY_LEASE_SECONDS: i64 = 600;

/// Which checkers may have outbox entries this cycle did not read (the read was truncated at
/// `outbox_batch_limit`, or failed). Their new records stay in the outbox, so that the
/// handler never sees a checker's checks out of order.
pub(super) enum OutboxView {
    Complete,
    /// Entries were read up to this checker (inclusive); it and later names may have more.
    TruncatedAt(String),
    Unknown,
}

impl OutboxView {
    pub(super) fn may_have_unseen(&self, checker: &str) -> bool {
        match self {
            OutboxView::Complete => false,
            OutboxView::TruncatedAt(last) => checker >= last.as_str(),
            OutboxView::Unknown => true,
        }
    }
}

/// What a cycle gave up for one target of one checker.
pub(super) struct GiveUp {
    /// When the oldest record given up was first tried.
    first_attempt_at: i64,
    /// The target's last error.
    error: String,
    /// Whether the handler called the error permanent (given up at the first failure).
    permanent: bool,
    records: u64,
    oldest_minute: i64,
    newest_minute: i64,
}

/// The targets of one checker's deliveries in a cycle.
#[derive(Default)]
struct TargetState {
    /// Targets that failed or are waiting for their backoff: later records wait.
    blocked: HashSet<String>,
    /// Targets given up this cycle: the records they still owe are settled too.
    given_up: BTreeMap<String, GiveUp>,
}

/// An outbox entry being delivered (its record is handed over as the event).
struct Tried {
    key: String,
    attempts: u32,
    next_attempt_at: i64,
    delivered_to: Vec<String>,
    first_attempt_at: Option<i64>,
}

/// What the targets made of one entry this cycle.
#[derive(Default)]
struct Attempt {
    /// Targets that took it now.
    delivered_to: Vec<String>,
    newly_delivered: usize,
    /// Targets given up (now or earlier this cycle): settled without a delivery.
    settled: usize,
    /// `target: error` of each target that failed.
    failures: Vec<String>,
}

/// A failed delivery to one target: the error with its causes, and whether the handler
/// called it [permanent](crate::HandlerError::permanent).
struct Failed {
    error: String,
    permanent: bool,
}

impl GiveUp {
    fn new(first_attempt_at: i64, error: String, permanent: bool) -> Self {
        GiveUp {
            first_attempt_at,
            error,
            permanent,
            records: 0,
            oldest_minute: i64::MAX,
            newest_minute: i64::MIN,
        }
    }

    fn add(&mut self, event: &Event) {
        if let Event::Check(record) = event {
            self.records += 1;
            self.oldest_minute = self.oldest_minute.min(record.minute);
            self.newest_minute = self.newest_minute.max(record.minute);
        }
    }
}

impl CycleContext {
    /// Claims every outbox entry (due or not, up to the batch limit), grouped by checker.
    pub(super) async fn read_outbox(&self) -> (BTreeMap<String, Vec<PendingDelivery>>, OutboxView) {
        let limit = self.config.outbox_batch_limit.max(1);
        let lease = Lease::new(self.now, DELIVERY_LEASE_SECONDS);
        match self.store.claim_deliveries(limit, lease).await {
            Ok(entries) => {
                let view = match entries.last() {
                    Some(last) if entries.len() >= limit => {
                        OutboxView::TruncatedAt(last.record.checker.clone())
                    }
                    _ => OutboxView::Complete,
                };
                let mut grouped: BTreeMap<String, Vec<PendingDelivery>> = BTreeMap::new();
                for entry in entries {
                    grouped
                        .entry(entry.record.checker.clone())
                        .or_default()
                        .push(entry);
                }
                (grouped, view)
            }
            Err(e) => {
                warn!(error = %e, "cannot read the delivery outbox; new checks stay queued");
                (BTreeMap::new(), OutboxView::Unknown)
            }
        }
    }

    /// Step 6b: earlier cycles' pending deliveries of this checker, then this cycle's records,
    /// in order, each to every handler target ([`CheckHandler::targets`](crate::CheckHandler::targets)) that does not have
    /// it yet. A target that fails, or whose entry is not due yet, is skipped for the rest of
    /// the checker's records this cycle, so it never receives them out of order; the other
    /// targets go on. A target failing past the give-up age is given up
    /// ([`CycleContext::report_give_ups`]).
    pub(super) async fn deliver_checks(
        &self,
        outcome: &mut CheckerOutcome,
        pending: Vec<PendingDelivery>,
        records: &[CheckRecord],
        may_have_unseen: bool,
    ) {
        let mut queue = pending;
        if !may_have_unseen {
            queue.extend(records.iter().cloned().map(PendingDelivery::new));
        }
        let mut targets = TargetState::default();
        for entry in queue {
            self.deliver_entry(outcome, entry, &mut targets).await;
        }
        if !targets.given_up.is_empty() {
            self.report_give_ups(outcome, targets.given_up).await;
        }
    }

    /// One outbox entry to every target that does not have it yet, then its progress saved
    /// (acknowledged once every target has it).
    async fn deliver_entry(
        &self,
        outcome: &mut CheckerOutcome,
        entry: PendingDelivery,
        targets: &mut TargetState,
    ) {
        let PendingDelivery {
            key,
            record,
            attempts,
            next_attempt_at,
            delivered_to,
            first_attempt_at,
            ..
        } = entry;
        let entry = Tried {
            key,
            attempts,
            next_attempt_at,
            delivered_to,
            first_attempt_at,
        };
        let event = Event::Check(record);
        let mut all = self.handler.targets(&event);
        if all.is_empty() {
            all.push(String::new());
        }
        let owed: Vec<String> = all
            .into_iter()
            .filter(|t| !entry.delivered_to.contains(t))
            .collect();
        if !owed.is_empty() && next_attempt_at > self.now {
            targets.blocked.extend(owed);
            return;
        }
        let first_attempt_at = entry.first_attempt_at.unwrap_or(self.now);
        let mut attempt = Attempt::default();
        for target in &owed {
            self.attempt(
                &event,
                &entry,
                first_attempt_at,
                target,
                targets,
                &mut attempt,
            )
            .await;
        }
        self.save_entry(outcome, entry, first_attempt_at, &owed, targets, attempt)
            .await;
    }

    /// One target's try at one entry: settled at once if the target was given up this
    /// cycle, skipped if it is blocked, else delivered, failed, or given up.
    async fn attempt(
        &self,
        event: &Event,
        entry: &Tried,
        first_attempt_at: i64,
        target: &str,
        targets: &mut TargetState,
        attempt: &mut Attempt,
    ) {
        if let Some(give_up) = targets.given_up.get_mut(target) {
            give_up.add(event);
            attempt.settled += 1;
            return;
        }
        if targets.blocked.contains(target) {
            return;
        }
        let Err(Failed { error, permanent }) = self.deliver_to(target, event, entry.attempts).await
        else {
            attempt.delivered_to.push(target.to_string());
            attempt.newly_delivered += 1;
            return;
        };
        let age = self.now.saturating_sub(first_attempt_at);
        let limit = self.config.delivery_give_up_seconds;
        if permanent || (limit > 0 && age >= limit) {
            self.handler.gave_up(target, event).await;
            let mut give_up = GiveUp::new(first_attempt_at, error, permanent);
            give_up.add(event);
            targets.given_up.insert(target.to_string(), give_up);
            attempt.settled += 1;
            return;
        }
        warn!(key = %entry.key, target = %target, attempts = entry.attempts + 1,
            error = %error, "delivery failed");
        targets.blocked.insert(target.to_string());
        attempt.failures.push(if target.is_empty() {
            error
        } else {
            format!("{target}: {error}")
        });
    }

    /// Acknowledges an entry every owed target now has, else saves its progress (the targets
    /// that have it, given-up ones included, and the retry time after a failure).
    async fn save_entry(
        &self,
        outcome: &mut CheckerOutcome,
        entry: Tried,
        first_attempt_at: i64,
        owed: &[String],
        targets: &TargetState,
        attempt: Attempt,
    ) {
        let key = entry.key;
        let done = attempt.newly_delivered + attempt.settled;
        if done == owed.len() {
            outcome.delivered += 1;
            let given_up = owed.iter().find_map(|t| targets.given_up.get(t));
            let settlement = match given_up {
                Some(give_up) if attempt.settled > 0 => Settlement::GaveUp(give_up.error.clone()),
                _ => Settlement::Delivered,
            };
            if let Err(e) = self.store.settle(&key, &settlement).await {
                // The targets have it; it will be delivered once more (at least once).
                warn!(key = %key, error = %e, "cannot acknowledge a delivery");
            }
            return;
        }
        let (at, error) = if attempt.failures.is_empty() {
            (entry.next_attempt_at, None)
        } else {
            outcome.delivery_failures += 1;
            let next = self
                .now
                .saturating_add(self.config.retry_delay(entry.attempts));
            (next, Some(attempt.failures.join("; ")))
        };
        let mut delivered_to = entry.delivered_to;
        delivered_to.extend(attempt.delivered_to);
        // A given-up target counts as having the record (it is never sent it again).
        let given_up: Vec<String> = owed
            .iter()
            .filter(|t| targets.given_up.contains_key(*t) && !delivered_to.contains(*t))
            .cloned()
            .collect();
        delivered_to.extend(given_up);
        if done == 0 && entry.first_attempt_at.is_some() && error.is_none() {
            return;
        }
        let retry = Retry {
            at,
            error,
            delivered_to,
            first_attempt_at,
        };
        if let Err(e) = self.store.settle(&key, &Settlement::RetryAt(retry)).await {
            warn!(key = %key, error = %e, "cannot save a delivery's progress");
        }
    }

    /// Hands one check to one target, under the delivery timeout.
    async fn deliver_to(&self, target: &str, event: &Event, attempts: u32) -> Result<(), Failed> {
        let handled = self.handler.deliver_to(target, event, attempts);
        match tokio::time::timeout(self.config.delivery_timeout, handled).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failed {
                error: e.chain(),
                permanent: e.is_permanent(),
            }),
            Err(_) => Err(Failed {
                error: format!(
                    "handler timed out after {} ms",
                    self.config.delivery_timeout.as_millis()
                ),
                permanent: false,
            }),
        }
    }

    /// Records this cycle's give-ups of a checker and reports them in one `ERROR` event of
    /// kind [`ErrorKind::DeliveryGivenUp`], without the checker's `__EXTRA__` so that it goes
    /// to the default route (delivered with the checker's other errors).
    pub(super) async fn report_give_ups(
        &self,
        outcome: &mut CheckerOutcome,
        given_up: BTreeMap<String, GiveUp>,
    ) {
        let checker = outcome.checker.clone();
        let count: u64 = given_up.values().map(|g| g.records).sum();
        let parts: Vec<String> = given_up
            .iter()
            .map(|(target, g)| {
                let target = if target.is_empty() {
                    "the handler".to_string()
                } else {
                    format!("target {target:?}")
                };
                if g.permanent {
                    return format!(
                        "{target}: {} checks of minutes {} to {} not delivered: permanent \
                         error: {}",
                        g.records,
                        local_rfc3339(g.oldest_minute, chrono_tz::UTC),
                        local_rfc3339(g.newest_minute, chrono_tz::UTC),
                        g.error
                    );
                }
                format!(
                    "{target}: {} checks of minutes {} to {} not delivered since {} \
                     (more than {} s); last error: {}",
                    g.records,
                    local_rfc3339(g.oldest_minute, chrono_tz::UTC),
                    local_rfc3339(g.newest_minute, chrono_tz::UTC),
                    local_rfc3339(g.first_attempt_at, chrono_tz::UTC),
                    self.config.delivery_give_up_seconds,
                    g.error
                )
            })
            .collect();
        let text = format!(
            "delivery given up for checker {checker:?}: {}",
            parts.join("; ")
        );
        tracing::error!(checker = %checker, given_up = count, error = %text, "delivery given up");
        outcome.given_up += count;
        if let Err(e) = self
            .store
            .record_give_up(&checker, count, self.minute, &text)
            .await
        {
            warn!(checker = %checker, error = %e, "cannot record a delivery give-up");
        }
        let event = self.error_event(
            &checker,
            serde_json::json!({}),
            chrono_tz::UTC,
            ErrorKind::DeliveryGivenUp,
            text,
        );
        outcome.errors.push(event);
    }

    /// The `ERROR` events of `outcome`, at the end of a checker's work.
    pub(super) async fn deliver_errors(&self, outcome: &CheckerOutcome) {
        for event in &outcome.errors {
            self.deliver_error(event).await;
        }
    }

    /// Error events are delivered once, best effort.
    pub(super) async fn deliver_error(&self, event: &ErrorEvent) {
        let event = Event::Error(event.clone());
        match tokio::time::timeout(self.config.delivery_timeout, self.handler.handle(&event)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(checker = %event.checker(), error = %e, "cannot deliver an error event")
            }
            Err(_) => warn!(checker = %event.checker(), "error event delivery timed out"),
        }
    }
}
