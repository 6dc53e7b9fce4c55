//! A conformance suite any [`RowGetter`] can run in its own tests (feature `test-suite`), so
//! every source honours the same contract: keys become text, integer / text-integer /
//! date-time timestamps become epoch seconds, NULLs and bad timestamps are rejected and counted
//! while the good rows are kept, an empty result is no error, and a failing query is an error,
//! never a panic. Every case runs twice: through [`RowGetter::get_rows`] and through
//! [`RowGetter::get_rows_batched`] with a sink asking for batches of [`BATCH_ROWS`] rows; the
//! batches must add up to the same result, and a source that hands over more than one batch
//! must keep each within the size asked for. A sink's error must come back unchanged.
//!
//! A source's test implements [`Fixture`]: how to make a query that yields given rows.
//!
//! See `dwmon-sqlite/tests/conformance.rs` for a complete fixture.

use crate::source::{FetchRequest, Fetched, RowGetter, RowSink, SourceError};
use async_trait::async_trait;

/// The batch size the suite's sink asks for.
pub const BATCH_ROWS: usize = 2;

/// Keeps every batch, refusing the one numbered `refuse` (0-based) if set.
#[derive(Default)]
struct Batches {
    batches: Vec<Fetched>,
    refuse: Option<usize>,
}

#[async_trait]
impl RowSink for Batches {
    fn batch_rows(&self) -> usize {
        BATCH_ROWS
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        if self.refuse == Some(self.batches.len()) {
            return Err(SourceError::Other(
                "conformance sink refused the batch".into(),
            ));
        }
        self.batches.push(batch);
        Ok(())
    }
}

/// One value a fixture must put in a result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// SQL NULL (or a missing field).
    Null,
    /// An integer value.
    Int(i64),
    /// A text value.
    Text(String),
}

/// What a source's test provides to run the suite.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The source under test.
    fn getter(&self) -> &dyn RowGetter;

    /// The `__SOURCE__` name to ask for.
    fn source_name(&self) -> &str {
        "default"
    }

    /// A `__QUERY__` whose result has exactly these `(dwmon_unique_key, dwmon_timestamp)` rows,
    /// in this order. Within one call every non-NULL key is of one kind and every non-NULL
    /// timestamp is of one kind, so typed languages (SQL `UNION ALL`) can render them.
    ///
    /// # Errors
    /// A description when the fixture cannot set the rows up.
    async fn query_for(&self, rows: &[(Sample, Sample)]) -> Result<String, String>;

    /// A `__QUERY__` that the source must fail on (a syntax error, a missing program, ...).
    fn failing_query(&self) -> String;
}

/// A contract the source broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conformance case {case:?}: {message}")]
pub struct Failure {
    /// The case's name.
    pub case: &'static str,
    /// What went wrong.
    pub message: String,
}

async fn fetch<F: Fixture + ?Sized>(
    fixture: &F,
    case: &'static str,
    rows: &[(Sample, Sample)],
) -> Result<Fetched, Failure> {
    let query = fixture
        .query_for(rows)
        .await
        .map_err(|message| Failure { case, message })?;
    let whole = run(fixture, case, &query).await.map_err(|e| Failure {
        case,
        message: format!("fetch failed: {e}"),
    })?;
    let mut sink = Batches::default();
    run_batched(fixture, case, &query, &mut sink)
        .await
        .map_err(|e| Failure {
            case,
            message: format!("batched fetch failed: {e}"),
        })?;
    let sizes: Vec<usize> = sink.batches.iter().map(|b| b.rows.len()).collect();
    if sizes.len() > 1 && sizes.iter().any(|&n| n > BATCH_ROWS) {
        return Err(Failure {
            case,
            message: format!("batches of {sizes:?} rows, asked for at most {BATCH_ROWS}"),
        });
    }
    let mut joined = Fetched::default();
    for batch in sink.batches {
        joined.append(batch);
    }
    if joined.rows != whole.rows || joined.rejected != whole.rejected {
        return Err(Failure {
            case,
            message: format!(
                "batches add up to {:?} and {} rejected, get_rows gave {:?} and {} rejected",
                joined.rows, joined.rejected, whole.rows, whole.rejected
            ),
        });
    }
    if !whole.rows.is_empty() {
        let mut refusing = Batches {
            refuse: Some(0),
            ..Batches::default()
        };
        match run_batched(fixture, case, &query, &mut refusing).await {
            Err(SourceError::Other(text)) if text == "conformance sink refused the batch" => {}
            other => {
                return Err(Failure {
                    case,
                    message: format!(
                        "a refusing sink's error must come back unchanged, got {other:?}"
                    ),
                })
            }
        }
    }
    Ok(whole)
}

async fn run_batched<F: Fixture + ?Sized>(
    fixture: &F,
    case: &'static str,
    query: &str,
    sink: &mut Batches,
) -> Result<(), SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: case,
        query,
        source: fixture.source_name(),
        extra: &extra,
    };
    fixture.getter().get_rows_batched(&request, sink).await
}

async fn run<F: Fixture + ?Sized>(
    fixture: &F,
    case: &'static str,
    query: &str,
) -> Result<Fetched, SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: case,
        query,
        source: fixture.source_name(),
        extra: &extra,
    };
    fixture.getter().get_rows(&request).await
}

fn expect(
    case: &'static str,
    fetched: &Fetched,
    rows: &[(&str, i64)],
    rejected: u64,
) -> Result<(), Failure> {
    let got: Vec<(&str, i64)> = fetched
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.timestamp))
        .collect();
    if got != rows || fetched.rejected != rejected {
        return Err(Failure {
            case,
            message: format!(
                "want rows {rows:?} and {rejected} rejected; got {got:?} and {} rejected ({:?})",
                fetched.rejected, fetched.rejected_samples
            ),
        });
    }
    Ok(())
}

fn text(s: &str) -> Sample {
    Sample::Text(s.to_string())
}

/// Runs every case; the first broken contract is returned.
///
/// # Errors
/// A [`Failure`] naming the case and what differed.
pub async fn run_all<F: Fixture + ?Sized>(fixture: &F) -> Result<(), Failure> {
    use Sample::{Int, Null};
    let case = "integer epochs";
    let fetched = fetch(
        fixture,
        case,
        &[
            (text("a"), Int(1_700_000_000)),
            (text("b"), Int(1_700_000_030)),
        ],
    )
    .await?;
    expect(
        case,
        &fetched,
        &[("a", 1_700_000_000), ("b", 1_700_000_030)],
        0,
    )?;

    let case = "duplicates kept";
    let fetched = fetch(fixture, case, &[(text("a"), Int(1)), (text("a"), Int(1))]).await?;
    expect(case, &fetched, &[("a", 1), ("a", 1)], 0)?;

    let case = "integer keys as text";
    let fetched = fetch(fixture, case, &[(Int(42), Int(5)), (Int(-7), Int(6))]).await?;
    expect(case, &fetched, &[("42", 5), ("-7", 6)], 0)?;

    let case = "text timestamps";
    let fetched = fetch(
        fixture,
        case,
        &[
            (text("a"), text("1700000000")),
            (text("b"), text("2023-11-14 22:13:20")),
            (text("c"), text("2023-11-14T22:13:20Z")),
        ],
    )
    .await?;
    expect(
        case,
        &fetched,
        &[
            ("a", 1_700_000_000),
            ("b", 1_700_000_000),
            ("c", 1_700_000_000),
        ],
        0,
    )?;

    let case = "NULLs rejected, good rows kept";
    let fetched = fetch(
        fixture,
        case,
        &[(Null, Int(1)), (text("a"), Int(2)), (text("b"), Null)],
    )
    .await?;
    expect(case, &fetched, &[("a", 2)], 2)?;

    let case = "bad timestamps rejected";
    let fetched = fetch(
        fixture,
        case,
        &[
            (text("a"), text("yesterday")),
            (text("b"), text("1700000000000")),
            (text("c"), text("3")),
        ],
    )
    .await?;
    expect(case, &fetched, &[("c", 3)], 2)?;
    if !fetched
        .rejected_samples
        .iter()
        .any(|s| s.contains("milliseconds"))
    {
        return Err(Failure {
            case,
            message: format!("no milliseconds hint in {:?}", fetched.rejected_samples),
        });
    }

    let case = "a result of several batches";
    let many: Vec<(Sample, Sample)> = (0..7)
        .map(|i| match i {
            3 => (Null, Int(i)),
            _ => (text(&format!("k{i}")), Int(1_700_000_000 + i)),
        })
        .collect();
    let fetched = fetch(fixture, case, &many).await?;
    expect(
        case,
        &fetched,
        &[
            ("k0", 1_700_000_000),
            ("k1", 1_700_000_001),
            ("k2", 1_700_000_002),
            ("k4", 1_700_000_004),
            ("k5", 1_700_000_005),
            ("k6", 1_700_000_006),
        ],
        1,
    )?;

    let case = "empty result";
    let fetched = fetch(fixture, case, &[]).await?;
    expect(case, &fetched, &[], 0)?;

    let case = "failing query";
    if let Ok(fetched) = run(fixture, case, &fixture.failing_query()).await {
        return Err(Failure {
            case,
            message: format!("want an error, got {fetched:?}"),
        });
    }
    let mut sink = Batches::default();
    if run_batched(fixture, case, &fixture.failing_query(), &mut sink)
        .await
        .is_ok()
    {
        return Err(Failure {
            case,
            message: "want an error from the batched fetch, got none".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that loses every row: the suite must notice.
    struct Empty;

    #[async_trait]
    impl RowGetter for Empty {
        async fn get_rows(&self, _: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
            Ok(Fetched::default())
        }
    }

    #[async_trait]
    impl Fixture for Empty {
        fn getter(&self) -> &dyn RowGetter {
            self
        }
        async fn query_for(&self, _: &[(Sample, Sample)]) -> Result<String, String> {
            Ok(String::new())
        }
        fn failing_query(&self) -> String {
            String::new()
        }
    }

    /// Rows through `get_rows`, but a batched fetch that loses them.
    struct LosesBatches;

    #[async_trait]
    impl RowGetter for LosesBatches {
        async fn get_rows(&self, _: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
            Ok(Fetched::from_rows(vec![
                crate::Row::new("a", 1_700_000_000),
                crate::Row::new("b", 1_700_000_030),
            ]))
        }

        async fn get_rows_batched(
            &self,
            _: &FetchRequest<'_>,
            _: &mut dyn RowSink,
        ) -> Result<(), SourceError> {
            Ok(())
        }
    }

    #[async_trait]
    impl Fixture for LosesBatches {
        fn getter(&self) -> &dyn RowGetter {
            self
        }
        async fn query_for(&self, _: &[(Sample, Sample)]) -> Result<String, String> {
            Ok(String::new())
        }
        fn failing_query(&self) -> String {
            String::new()
        }
    }

    #[tokio::test]
    async fn a_source_whose_batches_lose_rows_fails_the_suite() {
        let failure = run_all(&LosesBatches).await.unwrap_err();
        assert_eq!(failure.case, "integer epochs");
        assert!(
            failure.message.contains("batches add up to"),
            "{}",
            failure.message
        );
    }

    #[tokio::test]
    async fn a_source_that_loses_rows_fails_the_suite() {
        let failure = run_all(&Empty).await.unwrap_err();
        assert_eq!(failure.case, "integer epochs");
    }
}
