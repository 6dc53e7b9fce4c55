//! End to end: the engine runs the seed's checker against the real PostgreSQL server through
//! [`PostgresSource`], stores into an [`SqliteStore`] file, and hands GOOD, BAD and ERROR to the
//! handler (README "How a cycle works").

mod support;

use dwmon_core::routing::RoutingSource;
use dwmon_core::testutil::RecordingHandler;
use dwmon_core::{parse_checker, Engine, Status};
use dwmon_postgres_source::PostgresSource;
use dwmon_sqlite::{SqliteSource, SqliteStore};
use std::error::Error;
use std::sync::Arc;
use support::TestSchema;

/// A minute (multiple of 60): 2023-11-14T22:13:00Z.
const M: i64 = 1_699_999_980;

/// The seed's `new_executions.dwmon`, reading this test's schema.
fn seed_checker(schema: &str) -> String {
    format!(
        "__QUERY__
SELECT
execution_id AS dwmon_unique_key,
ts AS dwmon_timestamp
FROM {schema}.model_executions
ORDER BY dwmon_timestamp DESC
LIMIT 10000
__REQUIREMENTS__
# This is a comment
CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180
__SOURCE__
AWS
__EXTRA__
{{\"some_extra_config\": [\"your\", \"arbitrary\", \"json\"], \"alert\": \"devops@nerds.com\"}}
"
    )
}

#[tokio::test]
async fn a_cycle_over_postgres_and_the_sqlite_store_judges_good_then_bad(
) -> Result<(), Box<dyn Error>> {
    // Six executions, 30 s apart, the last 20 s before M; one with no timestamp.
    let setup = format!(
        "CREATE TABLE model_executions (execution_id uuid PRIMARY KEY DEFAULT gen_random_uuid(), ts timestamptz);
         INSERT INTO model_executions (ts)
           SELECT to_timestamp({M} - 170 + 30 * i) FROM generate_series(0, 5) AS i;
         INSERT INTO model_executions (ts) VALUES (NULL);"
    );
    let Some(db) = TestSchema::create("e2e", &setup).await else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;

    // An organisation's sources: the warehouse on PostgreSQL, a local SQLite file.
    let local = dir.path().join("local.db");
    create_empty_database(&local)?;
    let sources = RoutingSource::new()
        .route(
            "AWS",
            PostgresSource::builder().source("AWS", &db.url)?.build()?,
        )
        .route_as("local", SqliteSource::new(&local), "default");

    let new_executions = parse_checker("new_executions.dwmon", &seed_checker(&db.name))?;
    let lost = parse_checker(
        "lost.dwmon",
        "__QUERY__\nSELECT 1 AS dwmon_unique_key, 1 AS dwmon_timestamp\n__SOURCE__\nnowhere\n\
         __REQUIREMENTS__\nCHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM0 MAXNUM1 LOOKBACKSECONDS60\n",
    )?;
    let store = SqliteStore::open(dir.path().join("dwmon.sqlite"))?;
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(Arc::new(sources), Arc::new(store), handler.clone())
        .with_checkers(vec![new_executions, lost]);

    // Minute M: window [M-180, M) holds all six executions -> GOOD.
    let report = engine.run_cycle(M + 5).await;
    let outcome = report.outcome("new_executions").ok_or("no outcome")?;
    assert_eq!(outcome.rows_fetched, 6);
    assert_eq!(outcome.rejected_rows, 1);
    let checks = handler.checks();
    assert_eq!(checks.len(), 1);
    assert_eq!(
        (checks[0].minute, checks[0].count, checks[0].status),
        (M, 6, Status::Good)
    );
    assert_eq!(checks[0].extra["alert"], "devops@nerds.com");

    // Errors are per checker: the NULL timestamp is reported, the unknown source fails only
    // the checker that names it.
    let errors = handler.errors();
    let rejected = errors
        .iter()
        .find(|e| e.checker == "new_executions")
        .ok_or("no rejected-rows event")?;
    assert!(
        rejected.error.contains("dwmon_timestamp is NULL"),
        "{}",
        rejected.error
    );
    let lost_error = errors
        .iter()
        .find(|e| e.checker == "lost")
        .ok_or("no unknown-source event")?;
    assert!(
        lost_error.error.contains("unknown source \"nowhere\""),
        "{}",
        lost_error.error
    );
    assert!(report.outcome("lost").is_some_and(|o| o.checks.is_empty()));

    // Minute M+60: window [M-120, M+60) holds four -> BAD (MINNUM5).
    handler.clear();
    engine.run_cycle(M + 65).await;
    let checks = handler.checks();
    assert_eq!(checks.len(), 1);
    assert_eq!(
        (checks[0].minute, checks[0].count, checks[0].status),
        (M + 60, 4, Status::Bad)
    );

    // The server drops every connection; the next cycle reconnects by itself: two new
    // executions bring minute M+120's window [M-60, M+120) to 2 + 2 = 4 -> still BAD, but
    // counted from fresh rows.
    db.terminate_backends().await;
    db.admin
        .batch_execute(&db.sql(&format!(
            "INSERT INTO {{s}}.model_executions (ts) VALUES (to_timestamp({})), (to_timestamp({}))",
            M + 70,
            M + 100
        )))
        .await?;
    handler.clear();
    engine.run_cycle(M + 125).await;
    let checks = handler.checks();
    assert_eq!(checks.len(), 1);
    assert_eq!(
        (checks[0].minute, checks[0].count, checks[0].status),
        (M + 120, 4, Status::Bad)
    );
    assert!(
        handler
            .errors()
            .iter()
            .all(|e| e.checker != "new_executions" || e.error.contains("dwmon_timestamp is NULL")),
        "{:?}",
        handler.errors()
    );
    db.drop().await;
    Ok(())
}

/// An empty SQLite file for the `local` route (SqliteSource never creates files).
fn create_empty_database(path: &std::path::Path) -> std::io::Result<()> {
    // A zero-byte file is a valid, empty SQLite database.
    std::fs::write(path, b"")
}
