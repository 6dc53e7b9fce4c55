//! A conformance suite any [`RowGetter`] can run in its own tests (feature `test-suite`), so
//! every source honours the same contract: keys become text, integer / text-integer /
//! date-time timestamps become epoch seconds, NULLs and bad timestamps are rejected and counted
//! while the good rows are kept, an empty result is no error, and a failing query is an error,
//! never a panic.
//!
//! A source's test implements [`Fixture`]: how to make a query that yields given rows.
//!
//! See `dwmon-sqlite/tests/conformance.rs` for a complete fixture.

use crate::source::{FetchRequest, Fetched, RowGetter, SourceError};
use async_trait::async_trait;

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
    run(fixture, case, &query).await.map_err(|e| Failure {
        case,
        message: format!("fetch failed: {e}"),
    })
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

    #[tokio::test]
    async fn a_source_that_loses_rows_fails_the_suite() {
        let failure = run_all(&Empty).await.unwrap_err();
        assert_eq!(failure.case, "integer epochs");
    }
}
