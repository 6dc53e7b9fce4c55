//! [`AlertStateStore`] for [`PostgresStore`]: alert and source states, pauses, undelivered
//! notifications and the alert history in the store's `dwmon_alert_*` tables. Every write is
//! one transaction under a transaction-scoped lock of its checker.
//!
//! Several runners judge and send one checker's alerts without sending anything twice:
//!
//! - **Decided once.** [`AlertStateStore::apply_if_unchanged`] compares the stored states with
//!   those the update was decided from inside the locked transaction that writes it, so two
//!   runners judging the checker at once cannot both act on one old state. A notification's
//!   key is unique in the outbox, and a key already in the history (enqueued before, maybe
//!   sent and completed since) is not enqueued again.
//! - **Sent by one runner.** [`AlertStateStore::claim_pending`] leases a checker's pending
//!   notifications to one runner (owner, a fence per entry, a lease end on the database's
//!   clock, the store's lease long); `save_progress` writes only under the fence it leased
//!   with; the lease is released after the send. A runner that dies while sending is replaced
//!   once its lease ends: the next runner to handle the checker re-sends under the same key.

use crate::error::ResultExt;
use crate::store::{lock, PostgresStore};
use async_trait::async_trait;
use dwmon_core::alert_state::{
    pause_transition, transitions, AlertOverview, AlertState, AlertStateEntry, AlertStateStore,
    AlertStoreError, AlertTransition, AlertUpdate, DecidedFrom, Pause, PendingNotification,
    SourceState, HISTORY_PER_CHECKER,
};
use std::collections::BTreeMap;
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

type Result<T> = std::result::Result<T, AlertStoreError>;

/// The key of a pending notification's lease fence in the handle's fence map (shared with
/// the check outbox's keys, which never start with this).
fn fence_key(idempotency_key: &str) -> String {
    format!("alert\u{0}{idempotency_key}")
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| AlertStoreError::Backend(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    key: &str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| AlertStoreError::Corrupt {
        what,
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn index_to_sql(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

fn index_from_sql(index: i64, key: &str) -> Result<usize> {
    usize::try_from(index).map_err(|_| AlertStoreError::Corrupt {
        what: "requirement index",
        key: key.to_string(),
        message: format!("negative: {index}"),
    })
}

/// Driver results as alert store errors.
trait AlertExt<T> {
    fn alert_err(self, location: &str) -> Result<T>;
}

impl<T> AlertExt<T> for std::result::Result<T, tokio_postgres::Error> {
    fn alert_err(self, location: &str) -> Result<T> {
        self.store_err(location).map_err(AlertStoreError::Store)
    }
}

async fn states_of(
    l: &str,
    tx: &Transaction<'_>,
    checker: &str,
) -> Result<Vec<(usize, AlertState)>> {
    let rows = tx
        .query_typed(
            "SELECT requirement_index, state FROM dwmon_alert_state WHERE checker = $1
             ORDER BY requirement_index",
            &[(&checker, Type::TEXT)],
        )
        .await
        .alert_err(l)?;
    let mut states = Vec::with_capacity(rows.len());
    for row in &rows {
        let index: i64 = row.try_get(0).alert_err(l)?;
        let text: String = row.try_get(1).alert_err(l)?;
        let key = format!("{checker}/{index}");
        states.push((
            index_from_sql(index, &key)?,
            from_json("alert state", &key, &text)?,
        ));
    }
    Ok(states)
}

async fn alert_state_in(
    l: &str,
    tx: &Transaction<'_>,
    checker: &str,
    requirement_index: usize,
) -> Result<Option<AlertState>> {
    let index = index_to_sql(requirement_index);
    let row = tx
        .query_typed_opt(
            "SELECT state FROM dwmon_alert_state WHERE checker = $1 AND requirement_index = $2",
            &[(&checker, Type::TEXT), (&index, Type::INT8)],
        )
        .await
        .alert_err(l)?;
    let key = format!("{checker}/{requirement_index}");
    match row {
        Some(row) => Ok(Some(from_json(
            "alert state",
            &key,
            &row.try_get::<_, String>(0).alert_err(l)?,
        )?)),
        None => Ok(None),
    }
}

async fn source_state_in(
    l: &str,
    tx: &Transaction<'_>,
    checker: &str,
) -> Result<Option<SourceState>> {
    let row = tx
        .query_typed_opt(
            "SELECT state FROM dwmon_alert_source WHERE checker = $1",
            &[(&checker, Type::TEXT)],
        )
        .await
        .alert_err(l)?;
    match row {
        Some(row) => Ok(Some(from_json(
            "source state",
            checker,
            &row.try_get::<_, String>(0).alert_err(l)?,
        )?)),
        None => Ok(None),
    }
}

fn pause_of(l: &str, row: &tokio_postgres::Row, offset: usize) -> Result<Pause> {
    Ok(Pause {
        since: row.try_get(offset).alert_err(l)?,
        until: row.try_get(offset + 1).alert_err(l)?,
        comment: row.try_get(offset + 2).alert_err(l)?,
    })
}

async fn pause_in(l: &str, tx: &Transaction<'_>, checker: &str) -> Result<Option<Pause>> {
    let row = tx
        .query_typed_opt(
            "SELECT since, until, comment FROM dwmon_alert_pause WHERE checker = $1",
            &[(&checker, Type::TEXT)],
        )
        .await
        .alert_err(l)?;
    row.map(|row| pause_of(l, &row, 0)).transpose()
}

/// Appends `entries` to the history and trims each checker's to the newest
/// [`HISTORY_PER_CHECKER`].
async fn record_history(l: &str, tx: &Transaction<'_>, entries: &[AlertTransition]) -> Result<()> {
    for entry in entries {
        let json = to_json(entry)?;
        tx.query_typed(
            "INSERT INTO dwmon_alert_history (checker, at, idempotency_key, entry)
             VALUES ($1, $2, $3, $4)",
            &[
                (&entry.checker, Type::TEXT),
                (&entry.at, Type::INT8),
                (&entry.idempotency_key, Type::TEXT),
                (&json, Type::TEXT),
            ],
        )
        .await
        .alert_err(l)?;
    }
    let keep = i64::try_from(HISTORY_PER_CHECKER).unwrap_or(i64::MAX);
    let mut checkers: Vec<&str> = entries.iter().map(|e| e.checker.as_str()).collect();
    checkers.sort_unstable();
    checkers.dedup();
    for checker in checkers {
        tx.query_typed(
            "DELETE FROM dwmon_alert_history WHERE checker = $1 AND seq <= (
                 SELECT seq FROM dwmon_alert_history WHERE checker = $1
                 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
            &[(&checker, Type::TEXT), (&keep, Type::INT8)],
        )
        .await
        .alert_err(l)?;
    }
    Ok(())
}

/// Serialises the writers (and the senders, [`PostgresStore::claim_pending`]) of one
/// checker's alert state until the transaction ends.
async fn lock_checker(l: &str, tx: &Transaction<'_>, checker: &str) -> Result<()> {
    tx.query_typed(
        "SELECT pg_advisory_xact_lock(hashtext('dwmon alert ' || current_schema() || $1))",
        &[(&checker, Type::TEXT)],
    )
    .await
    .alert_err(l)?;
    Ok(())
}

/// Whether the stored states are still those `update` was decided from.
async fn unchanged(
    l: &str,
    tx: &Transaction<'_>,
    checker: &str,
    decided_from: &DecidedFrom,
) -> Result<bool> {
    if let Some((index, expected)) = &decided_from.alert {
        if alert_state_in(l, tx, checker, *index).await? != *expected {
            return Ok(false);
        }
    }
    if let Some(expected) = &decided_from.source {
        if source_state_in(l, tx, checker).await? != *expected {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes `update` (see [`AlertStateStore::apply`]); with `decided_from`, only if the stored
/// states are still those (answers whether it wrote). A notification whose key is already in
/// the history was enqueued before (and possibly sent and completed since): it is neither
/// recorded nor enqueued again, so a runner that decided it late sends nothing twice.
async fn apply_in(
    l: &str,
    tx: &Transaction<'_>,
    update: &AlertUpdate,
    decided_from: Option<&DecidedFrom>,
) -> Result<bool> {
    // One writer per checker at a time (two runners applying one checker's events).
    lock_checker(l, tx, &update.checker).await?;
    if let Some(decided_from) = decided_from {
        if !unchanged(l, tx, &update.checker, decided_from).await? {
            return Ok(false);
        }
    }
    let mut enqueue: Vec<&PendingNotification> = update.notifications.iter().collect();
    if update.at.is_some() {
        let alert_before = match &update.alert {
            Some((index, _)) => alert_state_in(l, tx, &update.checker, *index).await?,
            None => None,
        };
        let source_before = match &update.source {
            Some(_) => source_state_in(l, tx, &update.checker).await?,
            None => None,
        };
        // A notification already in the history (a replayed event) is not recorded twice.
        let mut fresh = update.clone();
        let mut kept = Vec::new();
        for pending in fresh.notifications {
            let key = &pending.notification.idempotency_key;
            let seen = tx
                .query_typed_opt(
                    "SELECT 1 FROM dwmon_alert_history WHERE idempotency_key = $1 LIMIT 1",
                    &[(key, Type::TEXT)],
                )
                .await
                .alert_err(l)?;
            if seen.is_none() {
                kept.push(pending);
            }
        }
        enqueue = update
            .notifications
            .iter()
            .filter(|n| kept.contains(n))
            .collect();
        fresh.notifications = kept;
        let entries = transitions(&fresh, alert_before.as_ref(), source_before.as_ref());
        record_history(l, tx, &entries).await?;
    }
    if let Some((index, state)) = &update.alert {
        let index = index_to_sql(*index);
        let json = to_json(state)?;
        tx.query_typed(
            "INSERT INTO dwmon_alert_state (checker, requirement_index, phase, state)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (checker, requirement_index)
             DO UPDATE SET phase = excluded.phase, state = excluded.state",
            &[
                (&update.checker, Type::TEXT),
                (&index, Type::INT8),
                (&state.phase.as_str(), Type::TEXT),
                (&json, Type::TEXT),
            ],
        )
        .await
        .alert_err(l)?;
    }
    if let Some(state) = &update.source {
        let json = to_json(state)?;
        tx.query_typed(
            "INSERT INTO dwmon_alert_source (checker, failing, state) VALUES ($1, $2, $3)
             ON CONFLICT (checker) DO UPDATE SET failing = excluded.failing, state = excluded.state",
            &[
                (&update.checker, Type::TEXT),
                (&state.failing, Type::BOOL),
                (&json, Type::TEXT),
            ],
        )
        .await
        .alert_err(l)?;
    }
    for entry in enqueue {
        let json = to_json(entry)?;
        tx.query_typed(
            "INSERT INTO dwmon_alert_outbox (idempotency_key, checker, entry) VALUES ($1, $2, $3)
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[
                (&entry.notification.idempotency_key, Type::TEXT),
                (&entry.notification.checker, Type::TEXT),
                (&json, Type::TEXT),
            ],
        )
        .await
        .alert_err(l)?;
    }
    Ok(true)
}

async fn pending_of(
    l: &str,
    tx: &Transaction<'_>,
    checker: Option<&str>,
) -> Result<Vec<PendingNotification>> {
    let rows = tx
        .query_typed(
            "SELECT idempotency_key, entry FROM dwmon_alert_outbox
             WHERE $1::text IS NULL OR checker = $1 ORDER BY seq",
            &[(&checker, Type::TEXT)],
        )
        .await
        .alert_err(l)?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let key: String = row.try_get(0).alert_err(l)?;
        let text: String = row.try_get(1).alert_err(l)?;
        entries.push(from_json("pending notification", &key, &text)?);
    }
    Ok(entries)
}

async fn overview_of(l: &str, tx: &Transaction<'_>) -> Result<AlertOverview> {
    let mut overview = AlertOverview::default();
    let rows = tx
        .query_typed(
            "SELECT checker, requirement_index, state FROM dwmon_alert_state
             ORDER BY checker, requirement_index",
            &[],
        )
        .await
        .alert_err(l)?;
    for row in &rows {
        let checker: String = row.try_get(0).alert_err(l)?;
        let index: i64 = row.try_get(1).alert_err(l)?;
        let text: String = row.try_get(2).alert_err(l)?;
        let key = format!("{checker}/{index}");
        overview.alerts.push(AlertStateEntry {
            state: from_json("alert state", &key, &text)?,
            requirement_index: index_from_sql(index, &key)?,
            checker,
        });
    }
    let rows = tx
        .query_typed(
            "SELECT checker, state FROM dwmon_alert_source ORDER BY checker",
            &[],
        )
        .await
        .alert_err(l)?;
    for row in &rows {
        let checker: String = row.try_get(0).alert_err(l)?;
        let text: String = row.try_get(1).alert_err(l)?;
        let state = from_json("source state", &checker, &text)?;
        overview.sources.push((checker, state));
    }
    let rows = tx
        .query_typed(
            "SELECT checker, since, until, comment FROM dwmon_alert_pause ORDER BY checker",
            &[],
        )
        .await
        .alert_err(l)?;
    for row in &rows {
        overview
            .pauses
            .push((row.try_get(0).alert_err(l)?, pause_of(l, row, 1)?));
    }
    overview.pending = pending_of(l, tx, None).await?;
    Ok(overview)
}

impl PostgresStore {
    async fn alert_client(&self) -> Result<deadpool_postgres::Object> {
        self.client().await.map_err(AlertStoreError::Store)
    }
}

macro_rules! read_tx {
    ($self:ident, |$l:ident, $tx:ident| $body:expr) => {{
        let mut client = $self.alert_client().await?;
        let $tx = $self
            .begin_read(&mut client)
            .await
            .map_err(AlertStoreError::Store)?;
        let $l = $self.location();
        let value = $body;
        $tx.commit().await.alert_err($l)?;
        Ok(value)
    }};
}

macro_rules! write_tx {
    ($self:ident, |$l:ident, $tx:ident| $body:expr) => {{
        let mut client = $self.alert_client().await?;
        let $tx = $self
            .begin(&mut client)
            .await
            .map_err(AlertStoreError::Store)?;
        let $l = $self.location();
        let value = $body;
        $tx.commit().await.alert_err($l)?;
        Ok(value)
    }};
}

#[async_trait]
impl AlertStateStore for PostgresStore {
    async fn alert_state(
        &self,
        checker: &str,
        requirement_index: usize,
    ) -> Result<Option<AlertState>> {
        read_tx!(self, |l, tx| alert_state_in(
            l,
            &tx,
            checker,
            requirement_index
        )
        .await?)
    }

    async fn alert_states(&self, checker: &str) -> Result<Vec<(usize, AlertState)>> {
        read_tx!(self, |l, tx| states_of(l, &tx, checker).await?)
    }

    async fn source_state(&self, checker: &str) -> Result<Option<SourceState>> {
        read_tx!(self, |l, tx| source_state_in(l, &tx, checker).await?)
    }

    async fn apply(&self, update: &AlertUpdate) -> Result<()> {
        write_tx!(self, |l, tx| {
            apply_in(l, &tx, update, None).await?;
        })
    }

    async fn apply_if_unchanged(
        &self,
        update: &AlertUpdate,
        decided_from: &DecidedFrom,
    ) -> Result<bool> {
        write_tx!(self, |l, tx| apply_in(l, &tx, update, Some(decided_from))
            .await?)
    }

    /// Leases all of `checker`'s pending notifications to this runner for the store's lease,
    /// on the database's clock, unless another runner holds a lease on any of them (then
    /// none: that runner sends them, or they are free again when its lease ends). Taken under
    /// the checker's lock, so two runners never lease one checker's notifications at once.
    async fn claim_pending(&self, checker: &str) -> Result<Vec<PendingNotification>> {
        let owner = self.owner();
        let lease = self.inner.lease_seconds;
        let leased: Result<Vec<(PendingNotification, i64)>> = write_tx!(self, |l, tx| {
            lock_checker(l, &tx, checker).await?;
            let rows = tx
                .query_typed(
                    "UPDATE dwmon_alert_outbox o
                     SET lease_owner = $2, lease_until = now() + make_interval(secs => $3),
                         lease_fence = o.lease_fence + 1
                     WHERE o.checker = $1 AND NOT EXISTS (
                         SELECT 1 FROM dwmon_alert_outbox p
                         WHERE p.checker = $1 AND p.lease_until > now()
                           AND p.lease_owner IS DISTINCT FROM $2)
                     RETURNING o.seq, o.idempotency_key, o.entry, o.lease_fence",
                    &[
                        (&checker, Type::TEXT),
                        (&owner, Type::TEXT),
                        (&lease, Type::FLOAT8),
                    ],
                )
                .await
                .alert_err(l)?;
            let mut leased = Vec::with_capacity(rows.len());
            for row in &rows {
                let seq: i64 = row.try_get(0).alert_err(l)?;
                let key: String = row.try_get(1).alert_err(l)?;
                let text: String = row.try_get(2).alert_err(l)?;
                let fence: i64 = row.try_get(3).alert_err(l)?;
                leased.push((seq, from_json("pending notification", &key, &text)?, fence));
            }
            leased.sort_by_key(|(seq, _, _)| *seq);
            leased
                .into_iter()
                .map(|(_, entry, fence)| (entry, fence))
                .collect()
        });
        let leased = leased?;
        let mut fences = lock(&self.inner.delivery_fences);
        Ok(leased
            .into_iter()
            .map(|(entry, fence)| {
                fences.insert(fence_key(&entry.notification.idempotency_key), fence);
                entry
            })
            .collect())
    }

    async fn release_pending(&self, checker: &str) -> Result<()> {
        let owner = self.owner();
        let released: Result<Vec<String>> = write_tx!(self, |l, tx| {
            let rows = tx
                .query_typed(
                    "UPDATE dwmon_alert_outbox SET lease_until = now(), lease_owner = NULL
                     WHERE checker = $1 AND lease_owner = $2
                     RETURNING idempotency_key",
                    &[(&checker, Type::TEXT), (&owner, Type::TEXT)],
                )
                .await
                .alert_err(l)?;
            rows.iter()
                .map(|row| row.try_get(0).alert_err(l))
                .collect::<Result<Vec<String>>>()?
        });
        let released = released?;
        let mut fences = lock(&self.inner.delivery_fences);
        for key in released {
            fences.remove(&fence_key(&key));
        }
        Ok(())
    }

    async fn pending(&self, checker: &str) -> Result<Vec<PendingNotification>> {
        read_tx!(self, |l, tx| pending_of(l, &tx, Some(checker)).await?)
    }

    /// Under the lease fence [`PostgresStore::claim_pending`] handed out (if this handle
    /// leased the entry): a runner that took the entry over since keeps its own progress.
    async fn save_progress(&self, pending: &PendingNotification) -> Result<()> {
        let text = to_json(pending)?;
        let key = &pending.notification.idempotency_key;
        let fence = lock(&self.inner.delivery_fences)
            .get(&fence_key(key))
            .copied();
        write_tx!(self, |l, tx| {
            tx.query_typed(
                "UPDATE dwmon_alert_outbox SET entry = $2
                 WHERE idempotency_key = $1 AND ($3::int8 IS NULL OR lease_fence = $3)",
                &[(key, Type::TEXT), (&text, Type::TEXT), (&fence, Type::INT8)],
            )
            .await
            .alert_err(l)?;
        })
    }

    /// Every target has it: gone, whoever holds the lease now.
    async fn complete(&self, idempotency_key: &str) -> Result<()> {
        let done: Result<()> = write_tx!(self, |l, tx| {
            tx.query_typed(
                "DELETE FROM dwmon_alert_outbox WHERE idempotency_key = $1",
                &[(&idempotency_key, Type::TEXT)],
            )
            .await
            .alert_err(l)?;
        });
        if done.is_ok() {
            lock(&self.inner.delivery_fences).remove(&fence_key(idempotency_key));
        }
        done
    }

    /// Entries still leased (never released) whose lease ended on the database's clock.
    async fn orphaned_pending(&self) -> Result<Vec<String>> {
        read_tx!(self, |l, tx| {
            let rows = tx
                .query_typed(
                    "SELECT DISTINCT checker FROM dwmon_alert_outbox
                     WHERE lease_owner IS NOT NULL AND lease_until <= now() ORDER BY checker",
                    &[],
                )
                .await
                .alert_err(l)?;
            rows.iter()
                .map(|row| row.try_get(0).alert_err(l))
                .collect::<Result<Vec<String>>>()?
        })
    }

    /// A row `maintenance/TASK` of `dwmon_claims` (no checker name has a `/`), taken like a
    /// checker's claim: granted when free (its lease ended on the database's clock) or already
    /// this runner's, which renews it for the store's lease and bumps its fence.
    async fn claim_maintenance(&self, task: &str) -> Result<bool> {
        let name = format!("maintenance/{task}");
        let owner = self.owner();
        let lease = self.inner.lease_seconds;
        write_tx!(self, |l, tx| {
            tx.query_typed(
                "INSERT INTO dwmon_claims (checker) VALUES ($1) ON CONFLICT DO NOTHING",
                &[(&name, Type::TEXT)],
            )
            .await
            .alert_err(l)?;
            // Of two runners asking at once, the second waits for the first's row lock and
            // then finds the claim taken.
            tx.query_typed_opt(
                "UPDATE dwmon_claims
                 SET owner = $2, fence = fence + 1, until = now() + make_interval(secs => $3)
                 WHERE checker = $1 AND (owner = $2 OR until <= now())
                 RETURNING fence",
                &[
                    (&name, Type::TEXT),
                    (&owner, Type::TEXT),
                    (&lease, Type::FLOAT8),
                ],
            )
            .await
            .alert_err(l)?
            .is_some()
        })
    }

    async fn pause(&self, checker: &str) -> Result<Option<Pause>> {
        read_tx!(self, |l, tx| pause_in(l, &tx, checker).await?)
    }

    async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<()> {
        write_tx!(self, |l, tx| {
            if let Some(after) = pause {
                let before = pause_in(l, &tx, checker).await?;
                let entry = pause_transition(checker, before.as_ref(), Some(after), after.since);
                record_history(l, &tx, &entry.into_iter().collect::<Vec<_>>()).await?;
                tx.query_typed(
                    "INSERT INTO dwmon_alert_pause (checker, since, until, comment)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (checker) DO UPDATE SET
                         since = excluded.since, until = excluded.until, comment = excluded.comment",
                    &[
                        (&checker, Type::TEXT),
                        (&after.since, Type::INT8),
                        (&after.until, Type::INT8),
                        (&after.comment, Type::TEXT),
                    ],
                )
                .await
                .alert_err(l)?;
            } else {
                tx.query_typed(
                    "DELETE FROM dwmon_alert_pause WHERE checker = $1",
                    &[(&checker, Type::TEXT)],
                )
                .await
                .alert_err(l)?;
            }
        })
    }

    async fn lift_pause(
        &self,
        checker: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<Option<Pause>> {
        write_tx!(self, |l, tx| {
            // Locked: of two people lifting one pause at once, one records the change.
            let row = tx
                .query_typed_opt(
                    "SELECT since, until, comment FROM dwmon_alert_pause WHERE checker = $1
                     FOR UPDATE",
                    &[(&checker, Type::TEXT)],
                )
                .await
                .alert_err(l)?;
            let lifted = row.map(|row| pause_of(l, &row, 0)).transpose()?;
            if let Some(mut entry) = pause_transition(checker, lifted.as_ref(), None, at) {
                entry.reason = reason.map(str::to_string);
                record_history(l, &tx, &[entry]).await?;
                tx.query_typed(
                    "DELETE FROM dwmon_alert_pause WHERE checker = $1",
                    &[(&checker, Type::TEXT)],
                )
                .await
                .alert_err(l)?;
            }
            lifted
        })
    }

    async fn overview(&self) -> Result<AlertOverview> {
        read_tx!(self, |l, tx| overview_of(l, &tx).await?)
    }

    async fn history(&self, checker: &str, limit: usize) -> Result<Vec<AlertTransition>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        read_tx!(self, |l, tx| {
            let rows = tx
                .query_typed(
                    "SELECT seq, entry FROM dwmon_alert_history WHERE checker = $1
                     ORDER BY seq DESC LIMIT $2",
                    &[(&checker, Type::TEXT), (&limit, Type::INT8)],
                )
                .await
                .alert_err(l)?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in &rows {
                let seq: i64 = row.try_get(0).alert_err(l)?;
                let text: String = row.try_get(1).alert_err(l)?;
                entries.push(from_json(
                    "alert history entry",
                    &format!("{checker}#{seq}"),
                    &text,
                )?);
            }
            entries
        })
    }

    async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64> {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        let counts: Vec<i64> = known.values().map(|n| index_to_sql(*n)).collect();
        write_tx!(self, |l, tx| {
            let removed = tx
                .execute_typed(
                    "DELETE FROM dwmon_alert_state s WHERE NOT EXISTS (
                         SELECT 1 FROM unnest($1::text[], $2::int8[]) AS k(checker, requirements)
                         WHERE k.checker = s.checker AND s.requirement_index < k.requirements)",
                    &[(&names, Type::TEXT_ARRAY), (&counts, Type::INT8_ARRAY)],
                )
                .await
                .alert_err(l)?;
            tx.query_typed(
                "DELETE FROM dwmon_alert_source WHERE checker <> ALL($1)",
                &[(&names, Type::TEXT_ARRAY)],
            )
            .await
            .alert_err(l)?;
            removed
        })
    }
}
