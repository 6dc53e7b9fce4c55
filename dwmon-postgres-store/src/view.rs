//! [`StoreView`] for [`PostgresStore`]: each view is one read-only, repeatable-read
//! transaction (one snapshot, never holding up a runner's writes).

use crate::check_log::parse_record;
use crate::error::ResultExt;
use crate::store::{to_u64, PostgresStore};
use async_trait::async_trait;
use dwmon_core::store::{RequirementStatus, StoreView};
use dwmon_core::{CheckRecord, CheckerStatus, OutboxSummary, Status, StoreError};
use std::collections::HashMap;
use tokio_postgres::types::Type;

fn parse_status(location: &str, text: &str) -> Result<Status, StoreError> {
    text.parse()
        .map_err(|error: String| StoreError::backend(format!("{location}: {error}")))
}

fn index(value: i64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl PostgresStore {
    /// The statuses of the checkers named in `names` (all when `None`), by name.
    async fn statuses(&self, names: Option<&[String]>) -> Result<Vec<CheckerStatus>, StoreError> {
        let location = self.location();
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let checkers = tx
            .query_typed(
                "SELECT c.id, c.name, c.stored_rows, c.last_minute, c.last_error_minute,
                        c.last_error, c.given_up, c.last_give_up_minute, c.last_give_up,
                        (SELECT min(ts) FROM dwmon_rows r WHERE r.checker_id = c.id),
                        (SELECT min(minute) FROM dwmon_checks k WHERE k.checker_id = c.id),
                        (SELECT count(*) FROM dwmon_outbox o WHERE o.checker_id = c.id)
                 FROM dwmon_checkers c
                 WHERE $1::text[] IS NULL OR c.name = ANY($1)
                 ORDER BY c.name",
                &[(&names, Type::TEXT_ARRAY)],
            )
            .await
            .store_err(location)?;
        let ids: Vec<i64> = checkers
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .store_err(location)?;
        let latest = tx
            .query_typed(
                "SELECT DISTINCT ON (checker_id, requirement_index)
                        checker_id, requirement_index, minute, count, status
                 FROM dwmon_checks WHERE checker_id = ANY($1)
                 ORDER BY checker_id, requirement_index, minute DESC",
                &[(&ids, Type::INT8_ARRAY)],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        let mut requirements: HashMap<i64, Vec<RequirementStatus>> = HashMap::new();
        for row in &latest {
            let id: i64 = row.try_get(0).store_err(location)?;
            let status: String = row.try_get(4).store_err(location)?;
            requirements.entry(id).or_default().push(RequirementStatus {
                requirement_index: index(row.try_get(1).store_err(location)?),
                minute: row.try_get(2).store_err(location)?,
                count: to_u64(row.try_get(3).store_err(location)?, "count")?,
                status: parse_status(location, &status)?,
            });
        }
        let mut out = Vec::with_capacity(checkers.len());
        for row in &checkers {
            let id: i64 = row.try_get(0).store_err(location)?;
            let error_minute: Option<i64> = row.try_get(4).store_err(location)?;
            let error: Option<String> = row.try_get(5).store_err(location)?;
            let give_up_minute: Option<i64> = row.try_get(7).store_err(location)?;
            let give_up: Option<String> = row.try_get(8).store_err(location)?;
            out.push(CheckerStatus {
                checker: row.try_get(1).store_err(location)?,
                stored_rows: to_u64(row.try_get(2).store_err(location)?, "stored rows")?,
                last_minute: row.try_get(3).store_err(location)?,
                last_error: error_minute.zip(error),
                given_up_deliveries: to_u64(
                    row.try_get(6).store_err(location)?,
                    "given-up deliveries",
                )?,
                last_give_up: give_up_minute.zip(give_up),
                oldest_row: row.try_get(9).store_err(location)?,
                oldest_check: row.try_get(10).store_err(location)?,
                pending_deliveries: to_u64(
                    row.try_get(11).store_err(location)?,
                    "pending deliveries",
                )?,
                requirements: requirements.remove(&id).unwrap_or_default(),
            });
        }
        Ok(dwmon_core::ping::fold_series(out))
    }
}

#[async_trait]
impl StoreView for PostgresStore {
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        self.statuses(None).await
    }

    async fn checker_status(&self, checker: &str) -> Result<Option<CheckerStatus>, StoreError> {
        // The checker and its ping-kind series, folded as `status` folds them.
        let mut names: Vec<String> = dwmon_core::ping::PingKind::ALL
            .iter()
            .map(|kind| dwmon_core::ping::series(checker, *kind))
            .collect();
        names.push(checker.to_owned());
        names.sort();
        names.dedup();
        Ok(self
            .statuses(Some(&names))
            .await?
            .into_iter()
            .find(|s| s.checker == checker))
    }

    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let location = self.location();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (minute, index) = (before.0, i64::try_from(before.1).unwrap_or(i64::MAX));
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(Vec::new());
        };
        let rows = tx
            .query_typed(
                "SELECT requirement_index, minute, record FROM dwmon_checks
                 WHERE checker_id = $1 AND (minute, requirement_index) < ($3, $4)
                 ORDER BY minute DESC, requirement_index DESC LIMIT $2",
                &[
                    (&id, Type::INT8),
                    (&limit, Type::INT8),
                    (&minute, Type::INT8),
                    (&index, Type::INT8),
                ],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        rows.iter()
            .map(|row| {
                let index: i64 = row.try_get(0).store_err(location)?;
                let minute: i64 = row.try_get(1).store_err(location)?;
                let json: String = row.try_get(2).store_err(location)?;
                parse_record(location, &format!("{checker}/{index}/{minute}"), &json)
            })
            .collect()
    }

    async fn recent_statuses(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<(usize, i64, Status)>, StoreError> {
        let location = self.location();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(Vec::new());
        };
        let rows = tx
            .query_typed(
                "SELECT requirement_index, minute, status FROM dwmon_checks
                 WHERE checker_id = $1
                 ORDER BY minute DESC, requirement_index DESC LIMIT $2",
                &[(&id, Type::INT8), (&limit, Type::INT8)],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(2).store_err(location)?;
                Ok((
                    index(row.try_get(0).store_err(location)?),
                    row.try_get(1).store_err(location)?,
                    parse_status(location, &status)?,
                ))
            })
            .collect()
    }

    async fn status_counts(
        &self,
        checker: &str,
        since: &[i64],
    ) -> Result<Vec<(usize, Status, Vec<u64>)>, StoreError> {
        let location = self.location();
        let Some(&oldest) = since.iter().min() else {
            return Ok(Vec::new());
        };
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(Vec::new());
        };
        let since = since.to_vec();
        // One pass over the range of the oldest `since`; a count per entry of `since`.
        let sums: Vec<String> = (0..since.len())
            .map(|i| format!("count(*) FILTER (WHERE minute >= ($3::int8[])[{}])", i + 1))
            .collect();
        let sql = format!(
            "SELECT requirement_index, status, ARRAY[{}]::int8[] FROM dwmon_checks
             WHERE checker_id = $1 AND minute >= $2
             GROUP BY requirement_index, status ORDER BY requirement_index, status",
            sums.join(", ")
        );
        let rows = tx
            .query_typed(
                &sql,
                &[
                    (&id, Type::INT8),
                    (&oldest, Type::INT8),
                    (&since, Type::INT8_ARRAY),
                ],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(1).store_err(location)?;
                let counts: Vec<i64> = row.try_get(2).store_err(location)?;
                Ok((
                    index(row.try_get(0).store_err(location)?),
                    parse_status(location, &status)?,
                    counts
                        .into_iter()
                        .map(|n| u64::try_from(n).unwrap_or(0))
                        .collect(),
                ))
            })
            .collect()
    }

    async fn last_good_minutes(
        &self,
        checkers: &[String],
    ) -> Result<Vec<(String, usize, i64)>, StoreError> {
        let location = self.location();
        let names = checkers.to_vec();
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        // In one statement, in the order asked: each checker's lines found by skipping along
        // the primary key (one seek per line, never a scan of the check log), then per line
        // the newest GOOD check, read backwards from its newest check.
        let rows = tx
            .query_typed(
                "WITH RECURSIVE lines(id, name, pos, line) AS (
                     SELECT c.id, c.name, a.pos,
                            (SELECT min(k.requirement_index) FROM dwmon_checks k
                             WHERE k.checker_id = c.id)
                     FROM unnest($1::text[]) WITH ORDINALITY AS a(name, pos)
                     JOIN dwmon_checkers c ON c.name = a.name
                     UNION ALL
                     SELECT l.id, l.name, l.pos,
                            (SELECT min(k.requirement_index) FROM dwmon_checks k
                             WHERE k.checker_id = l.id AND k.requirement_index > l.line)
                     FROM lines l WHERE l.line IS NOT NULL
                 )
                 SELECT l.name, l.line, g.minute FROM lines l
                 CROSS JOIN LATERAL (
                     SELECT k.minute FROM dwmon_checks k
                     WHERE k.checker_id = l.id AND k.requirement_index = l.line
                       AND k.status = $2
                     ORDER BY k.minute DESC LIMIT 1
                 ) g
                 WHERE l.line IS NOT NULL
                 ORDER BY l.pos, l.line",
                &[
                    (&names, Type::TEXT_ARRAY),
                    (&Status::Good.as_str(), Type::TEXT),
                ],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0).store_err(location)?,
                    index(row.try_get(1).store_err(location)?),
                    row.try_get(2).store_err(location)?,
                ))
            })
            .collect()
    }

    async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        let location = self.location();
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let row = tx
            .query_typed_one("SELECT count(*), min(minute) FROM dwmon_outbox", &[])
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        Ok(OutboxSummary {
            pending: to_u64(row.try_get(0).store_err(location)?, "pending deliveries")?,
            oldest_minute: row.try_get(1).store_err(location)?,
        })
    }
}
