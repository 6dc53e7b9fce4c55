//! [`CheckLog`] for [`PostgresStore`]: checker claims with fencing tokens, exactly-once
//! records and the delivery outbox, leased to one runner at a time.
//!
//! - **Claims.** `dwmon_claims(checker, owner, fence, until)`. A claim takes, with `FOR UPDATE
//!   SKIP LOCKED`, the asked checkers that are free (their lease ended on the database's clock)
//!   or already this runner's, at most this runner's share (the checkers divided by the
//!   runners seen within a lease, so several runners split the work); it sets the owner, bumps
//!   the fence and commits before anything is fetched. Checkers this runner held beyond its
//!   share it claims for this cycle without an owner: it checks them once more, and another
//!   runner claims them from its next claim on (so no minute waits for a cycle while the
//!   runners settle their shares; the fence refuses a record still in flight). The
//!   whole transaction is one pipeline, one round trip to the server however many checkers
//!   it claims (tests/round_trips.rs counts them).
//! - **Renewals.** `renew` extends the leases of a batch of claims in one statement, in a
//!   transaction that is one pipeline as a claim's: only rows whose owner and fence are still
//!   the claim's, and the fence stays, so the holder's own record is still accepted (a claim
//!   given away beyond the share is reported held, not renewed, while its fence stands). It never
//!   waits for a row lock (`SKIP LOCKED`: a row locked by this runner's record in flight, or by
//!   a claimer bumping its fence, is not renewed this time). It also beats this runner's
//!   heartbeat, so a runner busy with a long cycle still counts for the share.
//! - **Records.** The recording transaction locks the checker's claim row and compares its
//!   fence with the claim's: another runner's later claim makes it fail with
//!   [`StoreError::StaleClaim`] before anything is written. Check records (primary key
//!   `(checker, requirement_index, minute)`, `ON CONFLICT DO NOTHING`), their outbox entries and
//!   the checker's last minute are written in that one transaction.
//! - **Outbox.** `claim_deliveries` leases whole checkers' entries (so one runner delivers a
//!   checker's records, in order) under a transaction-scoped advisory lock, with a lease end
//!   on the database's clock and a fence per entry; `settle` of a retry writes its progress only
//!   under the fence it was leased with.

use crate::error::ResultExt;
use crate::store::{lock, retryable, to_i64, Access, PostgresStore, ATTEMPTS};
use async_trait::async_trait;
use dwmon_core::store::{CheckLog, CheckerClaim, Lease, Recorded, Settlement};
use dwmon_core::{CheckRecord, PendingDelivery, StoreError};
use std::collections::HashMap;
use tokio_postgres::types::{ToSql, Type};

/// How far past the database's clock a check's minute may be before `record` refuses it: a
/// runner whose clock runs ahead must not record minutes that have not happened.
const FUTURE_SLACK_SECONDS: i64 = 60;

pub(crate) fn record_json(record: &CheckRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| {
        StoreError::other(
            format!("cannot serialise check {}", record.idempotency_key()),
            e,
        )
    })
}

pub(crate) fn parse_record(
    location: &str,
    key: &str,
    json: &str,
) -> Result<CheckRecord, StoreError> {
    serde_json::from_str(json).map_err(|error| {
        StoreError::other(
            format!("{location}: stored check {key} has an unreadable record"),
            error,
        )
    })
}

/// The checks of one `record` call, their outbox entries and the checker's last minute,
/// written only if the claim row (locked by the statement before, in the same transaction)
/// still has the caller's fence and no check is of a minute ahead of the database's clock;
/// answers the `(requirement_index, minute)` of the checks inserted.
const RECORD: &str = "WITH allowed AS (
         SELECT 1 FROM dwmon_claims
         WHERE checker = $8 AND fence = $9 AND fence <> 0
           AND $10 <= floor(extract(epoch FROM now()))::bigint + $11
     ), input AS (
         SELECT * FROM unnest($2::text[], $3::int8[], $4::int8[], $5::int8[],
                              $6::text[], $7::text[])
             AS u(key, idx, minute, count, status, record)
         WHERE EXISTS (SELECT 1 FROM allowed)
     ), inserted AS (
         INSERT INTO dwmon_checks
             (checker_id, requirement_index, minute, count, status, record)
         SELECT $1, idx, minute, count, status, record FROM input
         ORDER BY idx, minute
         ON CONFLICT DO NOTHING
         RETURNING requirement_index, minute
     ), queued AS (
         INSERT INTO dwmon_outbox
             (key, checker, checker_id, requirement_index, minute, record,
              next_attempt_at)
         SELECT i.key, $8, $1, i.idx, i.minute, i.record, i.minute
         FROM input i JOIN inserted n
           ON n.requirement_index = i.idx AND n.minute = i.minute
         ON CONFLICT (key) DO NOTHING
     ), last AS (
         UPDATE dwmon_checkers
         SET last_minute = greatest(last_minute, (SELECT max(minute) FROM inserted))
         WHERE id = $1 AND EXISTS (SELECT 1 FROM inserted)
     )
     SELECT requirement_index, minute FROM inserted";

/// A runner's claim of its share of `$1` (owner `$2`, lease `$3` seconds, `$4` checkers):
/// the share is the checkers divided by the runners seen within a lease (the others counted
/// before this one's heartbeat, which the same statement writes). This runner claims all it
/// holds and free checkers up to its share; what it holds beyond the share it still checks
/// this cycle but gives away (no owner), so another runner claims it from its next claim on
/// (the fence then refuses this one's record if it is still in flight) and no minute waits
/// for a cycle. Answers each claim's checker, fence, lease end and the checker's rows epoch.
const CLAIM: &str = "WITH beat AS (
         INSERT INTO dwmon_runners (owner, seen) VALUES ($2, now())
         ON CONFLICT (owner) DO UPDATE SET seen = now()
     ), share AS (
         SELECT ($4 + count(*)) / (count(*) + 1) AS k FROM dwmon_runners
         WHERE owner <> $2 AND seen > now() - make_interval(secs => $3)
     ), mine AS (
         SELECT checker FROM dwmon_claims
         WHERE checker = ANY($1) AND owner = $2
         ORDER BY checker
         FOR UPDATE SKIP LOCKED
     ), free AS (
         SELECT checker FROM dwmon_claims
         WHERE checker = ANY($1) AND owner IS DISTINCT FROM $2
           AND (owner IS NULL OR until <= now())
         ORDER BY checker
         LIMIT greatest((SELECT k FROM share) - (SELECT count(*) FROM mine), 0)
         FOR UPDATE SKIP LOCKED
     ), picked AS (
         SELECT checker, row_number() OVER (ORDER BY checker)
                         <= (SELECT k FROM share) AS kept
         FROM mine
         UNION ALL
         SELECT checker, true FROM free
     )
     UPDATE dwmon_claims c
     SET owner = CASE WHEN picked.kept THEN $2 END, fence = c.fence + 1,
         until = now() + make_interval(secs => $3)
     FROM picked WHERE c.checker = picked.checker
     RETURNING c.checker, c.fence, floor(extract(epoch FROM c.until))::bigint,
               coalesce((SELECT k.rows_epoch FROM dwmon_checkers k
                         WHERE k.name = c.checker), 0)";

/// The renewal of the claims `$1` with fences `$2` of owner `$3` for `$4` seconds. It locks
/// only rows it can lock at once (SKIP LOCKED), so it never waits behind this runner's record
/// of a checker or another runner's claim; a row it skips is reported held (with its lease as
/// it was) if its owner and fence are still the claim's.
const RENEW: &str = "WITH asked AS (
         SELECT * FROM unnest($1::text[], $2::int8[]) AS u(checker, fence)
     ), mine AS (
         SELECT c.checker FROM dwmon_claims c
         JOIN asked a ON a.checker = c.checker AND a.fence = c.fence
         WHERE c.owner = $3
         ORDER BY c.checker
         FOR UPDATE OF c SKIP LOCKED
     ), renewed AS (
         UPDATE dwmon_claims c
         SET until = greatest(c.until, now() + make_interval(secs => $4))
         FROM mine WHERE c.checker = mine.checker
         RETURNING c.checker, c.until
     ), beat AS (
         UPDATE dwmon_runners SET seen = now()
         WHERE owner IN (SELECT owner FROM dwmon_runners WHERE owner = $3
                         FOR UPDATE SKIP LOCKED)
     )
     SELECT a.checker, floor(extract(epoch FROM coalesce(r.until, c.until)))::bigint
     FROM asked a
     JOIN dwmon_claims c ON c.checker = a.checker AND c.fence = a.fence
                        AND (c.owner = $3 OR c.owner IS NULL)
     LEFT JOIN renewed r ON r.checker = a.checker";

impl PostgresStore {
    /// One claim transaction, sent as one pipeline (one round trip to the server): `BEGIN`,
    /// the statement timeout, the claim rows of new checkers, then one statement that writes
    /// the heartbeat, claims this runner's share and gives away what it held beyond it, and
    /// `COMMIT` (which rolls back if a statement before it failed).
    async fn try_claim(&self, checkers: &[String]) -> Result<Vec<CheckerClaim>, StoreError> {
        let location = self.location();
        let owner = self.owner();
        let lease = self.inner.lease_seconds;
        let mut names: Vec<&str> = checkers.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        let count = to_i64(names.len(), "checker count")?;
        let insert_params: [(&(dyn ToSql + Sync), Type); 1] = [(&names, Type::TEXT_ARRAY)];
        let claim_params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&names, Type::TEXT_ARRAY),
            (&owner, Type::TEXT),
            (&lease, Type::FLOAT8),
            (&count, Type::INT8),
        ];
        let mut answers = self
            .pipelined_unprepared(
                Access::Write,
                &[
                    (
                        "INSERT INTO dwmon_claims (checker) SELECT unnest($1::text[]) ORDER BY 1
                         ON CONFLICT DO NOTHING",
                        &insert_params,
                    ),
                    (CLAIM, &claim_params),
                ],
            )
            .await?;
        let rows = answers.pop().unwrap_or_default();
        let mut claims = Vec::with_capacity(rows.len());
        let mut epochs = Vec::with_capacity(rows.len());
        for row in &rows {
            let fence: i64 = row.try_get(1).store_err(location)?;
            epochs.push((fence, row.try_get::<_, i64>(3).store_err(location)?));
            claims.push(CheckerClaim {
                checker: row.try_get(0).store_err(location)?,
                fence: u64::try_from(fence).unwrap_or(0),
                until: row.try_get(2).store_err(location)?,
            });
        }
        let tokens: HashMap<String, (i64, i64)> = claims
            .iter()
            .zip(epochs)
            .map(|(claim, tokens)| (claim.checker.clone(), tokens))
            .collect();
        claims.sort_by(|a, b| a.checker.cmp(&b.checker));
        if let Some(seen) = &self.inner.seen {
            for name in &names {
                match tokens.get(*name) {
                    Some(&(fence, epoch)) => seen.claimed(name, fence, epoch),
                    None => seen.not_claimed(name),
                }
            }
        }
        Ok(claims)
    }

    async fn try_renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        let location = self.location();
        let owner = self.owner();
        let lease = self.inner.lease_seconds;
        let names: Vec<&str> = claims.iter().map(|c| c.checker.as_str()).collect();
        let fences: Vec<i64> = claims
            .iter()
            .map(|c| i64::try_from(c.fence).unwrap_or(i64::MAX))
            .collect();
        let renew_params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&names, Type::TEXT_ARRAY),
            (&fences, Type::INT8_ARRAY),
            (&owner, Type::TEXT),
            (&lease, Type::FLOAT8),
        ];
        let rows = self
            .pipelined_unprepared(Access::Write, &[(RENEW, &renew_params)])
            .await?
            .pop()
            .unwrap_or_default();
        let mut until: HashMap<String, i64> = HashMap::with_capacity(rows.len());
        for row in &rows {
            until.insert(
                row.try_get(0).store_err(location)?,
                row.try_get(1).store_err(location)?,
            );
        }
        Ok(claims
            .iter()
            .filter_map(|claim| {
                until.get(&claim.checker).map(|&until| CheckerClaim {
                    until,
                    ..claim.clone()
                })
            })
            .collect())
    }

    /// Records `records` under `claim` in one transaction of one round trip: the claim row
    /// is locked and read, and the insert of the checks, their outbox entries and the last
    /// minute is guarded by the same condition the answer is then checked against (the
    /// fence is the claim's, no minute is ahead of the database's clock), so a stale claim
    /// writes nothing.
    async fn try_record(
        &self,
        id: i64,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        let location = self.location();
        let mut keys = Vec::with_capacity(records.len());
        let mut indexes = Vec::with_capacity(records.len());
        let mut minutes = Vec::with_capacity(records.len());
        let mut counts = Vec::with_capacity(records.len());
        let mut statuses = Vec::with_capacity(records.len());
        let mut jsons = Vec::with_capacity(records.len());
        for record in records {
            keys.push(record.idempotency_key());
            indexes.push(to_i64(record.requirement_index, "requirement_index")?);
            minutes.push(record.minute);
            counts.push(to_i64(record.count, "count")?);
            statuses.push(record.status.as_str());
            jsons.push(record_json(record)?);
        }
        let fence = to_i64(claim.fence, "fence")?;
        let newest = minutes.iter().copied().max().unwrap_or(i64::MIN);
        let lock_params: [(&(dyn ToSql + Sync), Type); 1] = [(&claim.checker, Type::TEXT)];
        let insert_params: [(&(dyn ToSql + Sync), Type); 11] = [
            (&id, Type::INT8),
            (&keys, Type::TEXT_ARRAY),
            (&indexes, Type::INT8_ARRAY),
            (&minutes, Type::INT8_ARRAY),
            (&counts, Type::INT8_ARRAY),
            (&statuses, Type::TEXT_ARRAY),
            (&jsons, Type::TEXT_ARRAY),
            (&claim.checker, Type::TEXT),
            (&fence, Type::INT8),
            (&newest, Type::INT8),
            (&FUTURE_SLACK_SECONDS, Type::INT8),
        ];
        let answers = self
            .pipelined(
                Access::Write,
                &[
                    (
                        "SELECT fence, floor(extract(epoch FROM now()))::bigint FROM dwmon_claims
                         WHERE checker = $1 FOR UPDATE",
                        &lock_params,
                    ),
                    (RECORD, &insert_params),
                ],
            )
            .await?;
        let (current, database_now) = match answers.first().and_then(|rows| rows.first()) {
            Some(row) => (
                row.try_get::<_, i64>(0).store_err(location)?,
                row.try_get::<_, i64>(1).store_err(location)?,
            ),
            None => (0, i64::MAX),
        };
        let current = u64::try_from(current).unwrap_or(0);
        if current != claim.fence || current == 0 {
            return Err(StoreError::StaleClaim {
                checker: claim.checker.clone(),
                fence: claim.fence,
                current,
            });
        }
        if let Some(ahead) = records
            .iter()
            .find(|r| r.minute > database_now.saturating_add(FUTURE_SLACK_SECONDS))
        {
            return Err(StoreError::backend(format!(
                "{location}: check {} is of minute {}, ahead of the database's clock ({}); \
                 is this runner's clock or --now in the future?",
                ahead.idempotency_key(),
                ahead.minute,
                database_now
            )));
        }
        let mut inserted = std::collections::HashSet::new();
        for row in answers.get(1).into_iter().flatten() {
            let index: i64 = row.try_get(0).store_err(location)?;
            let minute: i64 = row.try_get(1).store_err(location)?;
            inserted.insert((index, minute));
        }
        let mut stored: HashMap<(i64, i64), CheckRecord> = HashMap::new();
        if inserted.len() < records.len() {
            // Recorded before (by another runner, or an earlier cycle): their stored versions
            // (a check record is never changed once written).
            let rows = self
                .one_statement(
                    Access::Read,
                    "SELECT k.requirement_index, k.minute, k.record
                     FROM dwmon_checks k
                     JOIN unnest($2::int8[], $3::int8[]) AS u(idx, minute)
                       ON k.requirement_index = u.idx AND k.minute = u.minute
                     WHERE k.checker_id = $1",
                    &[
                        (&id, Type::INT8),
                        (&indexes, Type::INT8_ARRAY),
                        (&minutes, Type::INT8_ARRAY),
                    ],
                )
                .await?;
            for row in &rows {
                let index: i64 = row.try_get(0).store_err(location)?;
                let minute: i64 = row.try_get(1).store_err(location)?;
                let json: String = row.try_get(2).store_err(location)?;
                let key = format!("{}/{index}/{minute}", claim.checker);
                stored.insert((index, minute), parse_record(location, &key, &json)?);
            }
        }
        let mut recorded = Recorded::default();
        for (record, (&index, &minute)) in records.iter().zip(indexes.iter().zip(&minutes)) {
            if inserted.remove(&(index, minute)) {
                recorded.inserted.push(record.clone());
            } else if let Some(existing) = stored.remove(&(index, minute)) {
                recorded.existing.push(existing);
            }
        }
        Ok(recorded)
    }

    /// Writes one statement about `checker` (registered if new) in its own transaction.
    async fn update_checker(
        &self,
        checker: &str,
        sql: &str,
        params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)],
    ) -> Result<(), StoreError> {
        let id = self.checker_id_for_write(checker).await?;
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let mut all: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> =
            vec![(&id, Type::INT8)];
        all.extend(params.iter().cloned());
        tx.query_typed(sql, &all).await.store_err(self.location())?;
        tx.commit().await.store_err(self.location())
    }
}

#[async_trait]
impl CheckLog for PostgresStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        let rows = self
            .one_statement(
                Access::Read,
                "SELECT last_minute FROM dwmon_checkers WHERE name = $1",
                &[(&checker, Type::TEXT)],
            )
            .await?;
        match rows.first() {
            Some(row) => row.try_get(0).store_err(self.location()),
            None => Ok(None),
        }
    }

    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        let location = self.location();
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(Vec::new());
        };
        let rows = tx
            .query_typed(
                "SELECT requirement_index, max(minute) FROM dwmon_checks WHERE checker_id = $1
                 GROUP BY requirement_index ORDER BY requirement_index",
                &[(&id, Type::INT8)],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let index: i64 = row.try_get(0).store_err(location)?;
            let minute: i64 = row.try_get(1).store_err(location)?;
            if let Ok(index) = usize::try_from(index) {
                out.push((index, minute));
            }
        }
        Ok(out)
    }

    /// Claims at most this runner's share of `checkers` (see the module docs); `now` is not
    /// used: leases run on the database's clock.
    async fn claim(&self, checkers: &[String], _now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        if checkers.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            match self.try_claim(checkers).await {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => attempt += 1,
                Err(e) => {
                    // No claim this cycle: no cached key may be trusted until the next one.
                    if let Some(seen) = &self.inner.seen {
                        seen.invalidate();
                    }
                    return Err(e);
                }
                result => return result,
            }
        }
    }

    /// Extends the leases still this runner's under the claims' fences (see the module docs);
    /// the others are left out.
    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            match self.try_renew(claims).await {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => attempt += 1,
                result => return result,
            }
        }
    }

    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        if let Some(other) = records.iter().find(|r| r.checker != claim.checker) {
            return Err(StoreError::backend(format!(
                "record {} passed to record for checker {:?}",
                other.idempotency_key(),
                claim.checker
            )));
        }
        let id = self.checker_id_for_write(&claim.checker).await?;
        if records.is_empty() {
            // Still refuse a stale claim.
            let mut client = self.client().await?;
            let tx = self.begin_read(&mut client).await?;
            let row = tx
                .query_typed_opt(
                    "SELECT fence FROM dwmon_claims WHERE checker = $1",
                    &[(&claim.checker, Type::TEXT)],
                )
                .await
                .store_err(self.location())?;
            tx.commit().await.store_err(self.location())?;
            let current = match row {
                Some(row) => row.try_get::<_, i64>(0).store_err(self.location())?,
                None => 0,
            };
            let current = u64::try_from(current).unwrap_or(0);
            if current != claim.fence || current == 0 {
                return Err(StoreError::StaleClaim {
                    checker: claim.checker.clone(),
                    fence: claim.fence,
                    current,
                });
            }
            return Ok(Recorded::default());
        }
        let mut attempt = 1;
        loop {
            match self.try_record(id, claim, records).await {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => attempt += 1,
                result => return result,
            }
        }
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let location = self.location();
        let owner = self.owner();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let seconds = lease.until.saturating_sub(lease.now).max(0) as f64;
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        // One claimer at a time (released at commit), so each checker's entries go to one
        // runner whole and in order.
        tx.query_typed(
            "SELECT pg_advisory_xact_lock(hashtext('dwmon outbox ' || current_schema()))",
            &[],
        )
        .await
        .store_err(location)?;
        let rows = tx
            .query_typed(
                "WITH picked AS (
                     SELECT o.key FROM dwmon_outbox o
                     WHERE NOT EXISTS (
                         SELECT 1 FROM dwmon_outbox p
                         WHERE p.checker = o.checker AND p.lease_until > now()
                           AND p.lease_owner IS DISTINCT FROM $1)
                     ORDER BY o.checker, o.minute, o.requirement_index
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE dwmon_outbox o
                 SET lease_owner = $1, lease_until = now() + make_interval(secs => $3),
                     lease_fence = o.lease_fence + 1
                 FROM picked WHERE o.key = picked.key
                 RETURNING o.key, o.record, o.attempts, o.next_attempt_at, o.last_error,
                           o.delivered_to, o.first_attempt_at, o.lease_fence,
                           o.checker, o.minute, o.requirement_index",
                &[
                    (&owner, Type::TEXT),
                    (&limit, Type::INT8),
                    (&seconds, Type::FLOAT8),
                ],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut fences = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get(0).store_err(location)?;
            let json: String = row.try_get(1).store_err(location)?;
            let attempts: i64 = row.try_get(2).store_err(location)?;
            let delivered: Option<String> = row.try_get(5).store_err(location)?;
            let delivered_to = match delivered {
                None => Vec::new(),
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    StoreError::other(
                        format!("{location}: outbox entry {key}: unreadable delivered_to"),
                        e,
                    )
                })?,
            };
            let order: (String, i64, i64) = (
                row.try_get(8).store_err(location)?,
                row.try_get(9).store_err(location)?,
                row.try_get(10).store_err(location)?,
            );
            fences.push((key.clone(), row.try_get::<_, i64>(7).store_err(location)?));
            entries.push((
                order,
                PendingDelivery {
                    record: parse_record(location, &key, &json)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    next_attempt_at: row.try_get(3).store_err(location)?,
                    last_error: row.try_get(4).store_err(location)?,
                    delivered_to,
                    first_attempt_at: row.try_get(6).store_err(location)?,
                    key,
                },
            ));
        }
        lock(&self.inner.delivery_fences).extend(fences);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries.into_iter().map(|(_, entry)| entry).collect())
    }

    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
        let Settlement::RetryAt(retry) = settlement else {
            // Every target has it (or was given up): gone, whoever holds the lease now.
            self.one_statement(
                Access::Write,
                "DELETE FROM dwmon_outbox WHERE key = $1",
                &[(&key, Type::TEXT)],
            )
            .await?;
            lock(&self.inner.delivery_fences).remove(key);
            return Ok(());
        };
        // Progress only under the lease this handle was given: a runner that took the entry
        // over since keeps its own.
        let fence = lock(&self.inner.delivery_fences).get(key).copied();
        let delivered = serde_json::to_string(&retry.delivered_to)
            .map_err(|e| StoreError::other("cannot serialise delivered_to", e))?;
        self.one_statement(
            Access::Write,
            "UPDATE dwmon_outbox SET delivered_to = $2,
                 first_attempt_at = coalesce(first_attempt_at, $3),
                 attempts = attempts + CASE WHEN $5::text IS NULL THEN 0 ELSE 1 END,
                 last_error = coalesce($5, last_error),
                 next_attempt_at = $4
             WHERE key = $1 AND ($6::int8 IS NULL OR lease_fence = $6)",
            &[
                (&key, Type::TEXT),
                (&delivered, Type::TEXT),
                (&retry.first_attempt_at, Type::INT8),
                (&retry.at, Type::INT8),
                (&retry.error, Type::TEXT),
                (&fence, Type::INT8),
            ],
        )
        .await?;
        Ok(())
    }

    async fn record_give_up(
        &self,
        checker: &str,
        count: u64,
        minute: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        let count = to_i64(count, "given-up count")?;
        self.update_checker(
            checker,
            "UPDATE dwmon_checkers SET given_up = given_up + $2, last_give_up_minute = $3,
             last_give_up = $4 WHERE id = $1",
            &[
                (&count, Type::INT8),
                (&minute, Type::INT8),
                (&message, Type::TEXT),
            ],
        )
        .await
    }

    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        let (minute, text) = error.unzip();
        self.update_checker(
            checker,
            "UPDATE dwmon_checkers SET last_error_minute = $2, last_error = $3 WHERE id = $1",
            &[(&minute, Type::INT8), (&text, Type::TEXT)],
        )
        .await
    }

    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let location = self.location();
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(0);
        };
        // The newest record of each requirement stays: status views and the next cycle
        // start from it.
        let deleted = tx
            .execute_typed(
                "DELETE FROM dwmon_checks k
                 WHERE k.checker_id = $1 AND k.minute < $2
                   AND k.minute < (SELECT max(c.minute) FROM dwmon_checks c
                                   WHERE c.checker_id = k.checker_id
                                     AND c.requirement_index = k.requirement_index)",
                &[(&id, Type::INT8), (&older_than, Type::INT8)],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        Ok(deleted)
    }
}
