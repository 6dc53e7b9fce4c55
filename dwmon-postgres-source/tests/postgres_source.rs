//! `PostgresSource` against the real PostgreSQL server (`DWMON_TEST_POSTGRES_URL`, see
//! `support::test_url`). Each test works in its own schema, so they run in parallel.

mod support;

use dwmon_core::{Fetched, Row, SourceError};
use dwmon_postgres_source::PostgresSource;
use std::error::Error;
use std::io::Write;
use std::time::Duration;
use support::{fetch, TestSchema};

type TestResult = Result<(), Box<dyn Error>>;

/// 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000;

fn keys(fetched: &Fetched) -> Vec<&str> {
    fetched.rows.iter().map(|row| row.key.as_str()).collect()
}

mod conversions {
    use super::*;

    #[tokio::test]
    async fn keys_of_every_kind_become_text() -> TestResult {
        let Some(db) = TestSchema::create("keys", "").await else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let query = "SELECT k AS dwmon_unique_key, 1700000000 AS dwmon_timestamp FROM (VALUES \
            (1, 'text'::text), (2, 'varchar'::varchar), (3, 42::int2::text), (4, NULL)) v(n, k) \
            UNION ALL SELECT 'padded'::char(8)::text, 1700000000";
        let fetched = fetch(&source, "default", query).await?;
        assert_eq!(keys(&fetched), ["text", "varchar", "42", "padded"]);
        assert_eq!(fetched.rejected, 1);
        assert_eq!(
            fetched.rejected_samples,
            vec!["row 4: dwmon_unique_key is NULL".to_string()]
        );

        // One column of each native type, each read in its binary form.
        for (expression, expected) in [
            ("42::int2", "42"),
            ("-42::int4", "-42"),
            ("9007199254740993::int8", "9007199254740993"),
            (
                "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ),
            (
                "12345678901234567890.50::numeric",
                "12345678901234567890.50",
            ),
            ("0.000123::numeric", "0.000123"),
            ("true", "true"),
            ("1.5::float8", "1.5"),
            ("2::float4", "2"),
            ("'{\"a\": 1}'::jsonb", "{\"a\": 1}"),
            ("'\\x00ab'::bytea", "\\x00ab"),
            (
                "'2023-11-14 22:13:20+00'::timestamptz",
                "2023-11-14T22:13:20Z",
            ),
            ("'2023-11-14'::date", "2023-11-14"),
            ("'x'::name", "x"),
            ("1234::oid", "1234"),
        ] {
            let query = format!("SELECT {expression} AS dwmon_unique_key, 1 AS dwmon_timestamp");
            let fetched = fetch(&source, "default", &query).await?;
            assert_eq!(fetched.rows, vec![Row::new(expected, 1)], "{expression}");
        }
        db.drop().await;
        Ok(())
    }

    /// The binary `numeric` decoder against PostgreSQL's own text output, on 3,000
    /// deterministic pseudo-random values of every scale and sign (plus NaN and zeros).
    #[tokio::test]
    async fn numeric_keys_match_postgres_text_output() -> TestResult {
        let Some(db) = TestSchema::create(
            "numeric",
            "SELECT setseed(0.42); \
             CREATE TABLE n AS SELECT i, round(((random() - 0.5) * 10 ^ (i % 40 - 12))::numeric, i % 17) AS v \
             FROM generate_series(1, 3000) AS i; \
             INSERT INTO n VALUES (3001, 'NaN'), (3002, 0), (3003, 0.000), (3004, -0.0001), \
             (3005, 10000), (3006, 99999999999999999999999999999.999999999);",
        )
        .await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let query =
            db.sql("SELECT v AS dwmon_unique_key, 1 AS dwmon_timestamp FROM {s}.n ORDER BY i");
        let fetched = fetch(&source, "default", &query).await?;
        let expected: Vec<String> = db
            .admin
            .query(&db.sql("SELECT v::text FROM {s}.n ORDER BY i"), &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(expected.len(), 3006);
        assert_eq!(keys(&fetched), expected);
        db.drop().await;
        Ok(())
    }

    /// `timestamptz`, `timestamp` and `numeric` epochs against PostgreSQL's own flooring, on
    /// instants with microseconds, before and after 2000-01-01.
    #[tokio::test]
    async fn timestamps_match_postgres_flooring() -> TestResult {
        let Some(db) = TestSchema::create(
            "tsfloor",
            "SELECT setseed(0.17); \
             CREATE TABLE t AS SELECT i, to_timestamp(random() * 2000000000) AS at \
             FROM generate_series(1, 2000) AS i;",
        )
        .await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let expected: Vec<i64> = db
            .admin
            .query(
                &db.sql("SELECT floor(extract(epoch FROM at))::int8 FROM {s}.t ORDER BY i"),
                &[],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for column in ["at", "at AT TIME ZONE 'UTC'", "extract(epoch FROM at)"] {
            let query = db.sql(&format!(
                "SELECT i AS dwmon_unique_key, {column} AS dwmon_timestamp FROM {{s}}.t ORDER BY i"
            ));
            let fetched = fetch(&source, "default", &query).await?;
            let seconds: Vec<i64> = fetched.rows.iter().map(|row| row.timestamp).collect();
            assert_eq!(seconds, expected, "{column}");
        }
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn enum_and_domain_keys_use_their_text() -> TestResult {
        let Some(db) = TestSchema::create(
            "enumkey",
            "CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE DOMAIN code AS text;",
        )
        .await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let query = db.sql(
            "SELECT 'sad'::{s}.mood AS dwmon_unique_key, 1 AS dwmon_timestamp \
             UNION ALL SELECT 'ok'::{s}.mood, 2",
        );
        assert_eq!(
            keys(&fetch(&source, "default", &query).await?),
            ["sad", "ok"]
        );
        let query = db.sql("SELECT 'c1'::{s}.code AS dwmon_unique_key, 1 AS dwmon_timestamp");
        assert_eq!(keys(&fetch(&source, "default", &query).await?), ["c1"]);
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn timestamps_of_every_kind_become_epoch_seconds() -> TestResult {
        let Some(db) = TestSchema::create("ts", "").await else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        for (expression, expected) in [
            ("1700000000::int4", T),
            ("1700000000::int8", T),
            ("1700000000.9::float8", T),
            ("1700000000.5::float4", 1_700_000_000), // f32 rounds to 1700000000
            ("1700000000.999999::numeric", T),
            // The seed's `extract(epoch from ...)` returns numeric since PostgreSQL 14.
            (
                "extract(epoch from '2023-11-14 22:13:20.75+00'::timestamptz)",
                T,
            ),
            ("'1700000000'::text", T),
            ("'1700000000.5'::varchar", T),
            ("'2023-11-14 22:13:20'::text", T),
            ("'2023-11-14 23:13:20+01'::timestamptz", T),
            // Without a zone the value is taken as UTC, whatever the session's TimeZone.
            ("'2023-11-14 22:13:20.999'::timestamp", T),
            ("'2023-11-14'::date", 1_699_920_000),
            ("0", 0),
        ] {
            let query = format!("SELECT 'k' AS dwmon_unique_key, {expression} AS dwmon_timestamp");
            let fetched = fetch(&source, "default", &query).await?;
            assert_eq!(fetched.rows, vec![Row::new("k", expected)], "{expression}");
            assert_eq!(fetched.rejected, 0, "{expression}");
        }
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn timestamp_without_zone_ignores_the_session_zone() -> TestResult {
        let Some(db) = TestSchema::create("tz", "").await else {
            return Ok(());
        };
        // The server's zone for this source's sessions is New York; the value still means UTC.
        let url = format!("{}&options=-c%20TimeZone%3DAmerica%2FNew_York", db.url);
        let source = PostgresSource::new(&url)?;
        let query = "SELECT current_setting('TimeZone') AS dwmon_unique_key, \
                     '2023-11-14 22:13:20'::timestamp AS dwmon_timestamp";
        let fetched = fetch(&source, "default", query).await?;
        assert_eq!(fetched.rows, vec![Row::new("America/New_York", T)]);
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn bad_timestamps_are_rejected_and_counted() -> TestResult {
        let Some(db) = TestSchema::create(
            "badts",
            "CREATE TABLE e (n int, ts text); INSERT INTO e VALUES \
             (1, NULL), (2, 'yesterday'), (3, '-1'), (4, '1700000000000'), (5, '1700000000'), \
             (6, 'NaN'), (7, '1700000000000000');",
        )
        .await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let query =
            db.sql("SELECT n AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.e ORDER BY n");
        let fetched = fetch(&source, "default", &query).await?;
        assert_eq!(fetched.rows, vec![Row::new("5", T)]);
        assert_eq!(fetched.rejected, 6);
        let samples = &fetched.rejected_samples;
        assert_eq!(samples.len(), Fetched::MAX_SAMPLES);
        assert_eq!(samples[0], "row 1: dwmon_timestamp is NULL");
        assert!(samples[1].starts_with("row 2: dwmon_timestamp 'yesterday' is not epoch seconds"));
        assert_eq!(
            samples[2],
            "row 3: dwmon_timestamp '-1' is negative (before 1970)"
        );
        assert!(
            samples[3].starts_with("row 4: dwmon_timestamp '1700000000000' is after the year 5000")
        );
        assert!(samples[3].contains("looks like milliseconds"));
        assert_eq!(
            samples[4],
            "row 6: dwmon_timestamp 'NaN' is not a finite number"
        );

        // Native types: infinities, NaN, milliseconds in a bigint, pre-1970, float overflow.
        for (expression, reason) in [
            (
                "'infinity'::timestamptz",
                "dwmon_timestamp infinity is after the year 5000",
            ),
            (
                "'-infinity'::timestamp",
                "dwmon_timestamp -infinity is negative",
            ),
            (
                "'NaN'::numeric",
                "dwmon_timestamp NaN is not a finite number",
            ),
            (
                "'NaN'::float8",
                "dwmon_timestamp NaN is not a finite number",
            ),
            (
                "1700000000000::int8",
                "looks like milliseconds; divide by 1000",
            ),
            ("1700000000000.5::numeric", "looks like milliseconds"),
            (
                "'1969-12-31 23:59:59+00'::timestamptz",
                "is negative (before 1970)",
            ),
            (
                "'6000-01-01'::date",
                "dwmon_timestamp 6000-01-01 is after the year 5000",
            ),
            ("1e300::float8", "is after the year 5000"),
            ("-0.5::numeric", "dwmon_timestamp -0.5 is negative"),
        ] {
            let query = format!("SELECT 'k' AS dwmon_unique_key, {expression} AS dwmon_timestamp");
            let fetched = fetch(&source, "default", &query).await?;
            assert_eq!(
                (fetched.rows.len(), fetched.rejected),
                (0, 1),
                "{expression}"
            );
            assert!(
                fetched.rejected_samples[0].starts_with("row 1: ")
                    && fetched.rejected_samples[0].contains(reason),
                "{expression}: {:?}",
                fetched.rejected_samples
            );
        }
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn unreadable_column_types_fail_with_a_cast_hint() -> TestResult {
        let Some(db) = TestSchema::create("types", "").await else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let error = fetch(
            &source,
            "default",
            "SELECT 'k' AS dwmon_unique_key, interval '1 day' AS dwmon_timestamp",
        )
        .await
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("column dwmon_timestamp has type interval")
                && message.contains("dwmon_timestamp::timestamptz"),
            "{message}"
        );
        let error = fetch(
            &source,
            "default",
            "SELECT true AS dwmon_timestamp, point(1, 2) AS dwmon_unique_key",
        )
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("column dwmon_unique_key has type point"),
            "{error}"
        );
        db.drop().await;
        Ok(())
    }
}

mod contract {
    use super::*;

    #[tokio::test]
    async fn ten_thousand_rows() -> TestResult {
        let Some(db) = TestSchema::create(
            "bulk",
            "CREATE TABLE executions AS SELECT i AS id, 1700000000 + i AS ts \
             FROM generate_series(1, 10000) AS i;",
        )
        .await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let query = db.sql(
            "SELECT id AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.executions \
             ORDER BY dwmon_timestamp DESC LIMIT 10000",
        );
        let fetched = fetch(&source, "default", &query).await?;
        assert_eq!(fetched.rows.len(), 10_000);
        assert_eq!(fetched.rejected, 0);
        assert_eq!(fetched.rows[0], Row::new("10000", T + 10_000));
        assert_eq!(fetched.rows[9_999], Row::new("1", T + 1));
        let distinct: std::collections::HashSet<&str> = keys(&fetched).into_iter().collect();
        assert_eq!(distinct.len(), 10_000);
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn missing_columns_name_the_checker_and_list_the_columns() -> TestResult {
        let Some(db) = TestSchema::create("missing", "CREATE TABLE t (id int, ts int);").await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        // The table is empty: the columns are checked from the statement, not from rows.
        let query = db.sql("SELECT id AS dwmon_unique_key, ts FROM {s}.t");
        assert_eq!(
            fetch(&source, "default", &query).await.unwrap_err(),
            SourceError::MissingColumns {
                checker: "orders".into(),
                found: vec!["dwmon_unique_key".into(), "ts".into()],
            }
        );
        // Other columns are ignored.
        let query = "SELECT 'x' AS note, 'k' AS dwmon_unique_key, 5 AS dwmon_timestamp";
        assert_eq!(
            fetch(&source, "default", query).await?.rows,
            vec![Row::new("k", 5)]
        );
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn named_sources_pick_the_pool_and_unknown_names_fail() -> TestResult {
        let Some(db) = TestSchema::create("named", "").await else {
            return Ok(());
        };
        let source = PostgresSource::builder()
            .source("default", &db.url)?
            .source("AWS", &format!("{}_aws", db.url))?
            .build()?;
        let query =
            "SELECT current_setting('application_name') AS dwmon_unique_key, 1 AS dwmon_timestamp";
        assert_eq!(
            keys(&fetch(&source, "default", query).await?),
            [db.name.as_str()]
        );
        let aws = format!("{}_aws", db.name);
        assert_eq!(keys(&fetch(&source, "AWS", query).await?), [aws.as_str()]);
        assert_eq!(
            fetch(&source, "warehouse", query).await.unwrap_err(),
            SourceError::UnknownSource {
                source_name: "warehouse".into(),
                known: vec!["AWS".into(), "default".into()],
            }
        );
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn sql_errors_are_query_errors_and_writes_are_refused() -> TestResult {
        let Some(db) = TestSchema::create("errors", "CREATE TABLE t (k text, ts int);").await
        else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        match fetch(&source, "default", "SELECT * FROM no_such_table").await {
            Err(SourceError::Query {
                source_name,
                message,
            }) => {
                assert_eq!(source_name, "default");
                assert!(message.contains("42P01"), "{message}");
                assert!(message.contains("no_such_table"), "{message}");
            }
            other => panic!("expected a query error, got {other:?}"),
        }
        let insert = db.sql(
            "INSERT INTO {s}.t VALUES ('a', 1) RETURNING k AS dwmon_unique_key, ts AS dwmon_timestamp",
        );
        match fetch(&source, "default", &insert).await {
            Err(SourceError::Query { message, .. }) => {
                assert!(message.contains("read-only transaction"), "{message}");
            }
            other => panic!("expected a read-only error, got {other:?}"),
        }
        let count: i64 = db
            .admin
            .query_one(&db.sql("SELECT count(*) FROM {s}.t"), &[])
            .await?
            .get(0);
        assert_eq!(count, 0);
        db.drop().await;
        Ok(())
    }
}

mod timeouts {
    use super::*;
    use dwmon_postgres_source::PostgresSourceBuilder;

    const SLOW: &str = "SELECT 'k' AS dwmon_unique_key, 1 AS dwmon_timestamp FROM pg_sleep(30)";
    const QUICK: &str = "SELECT 'k' AS dwmon_unique_key, 1 AS dwmon_timestamp";

    /// A one-connection source configured by `configure`: the slow query fails with
    /// `Timeout { millis }`, then the next fetch succeeds. Returns the schema for more checks.
    async fn times_out_then_recovers(
        tag: &str,
        configure: impl FnOnce(PostgresSourceBuilder) -> PostgresSourceBuilder,
        millis: u64,
    ) -> Result<Option<TestSchema>, Box<dyn Error>> {
        let Some(db) = TestSchema::create(tag, "").await else {
            return Ok(None);
        };
        let builder = PostgresSource::builder()
            .source("default", &db.url)?
            .pool_size(1);
        let source = configure(builder).build()?;
        assert_eq!(
            fetch(&source, "default", SLOW).await.unwrap_err(),
            SourceError::Timeout { millis }
        );
        assert_eq!(
            fetch(&source, "default", QUICK).await?.rows,
            vec![Row::new("k", 1)]
        );
        Ok(Some(db))
    }

    #[tokio::test]
    async fn the_server_side_statement_timeout_is_hit() -> TestResult {
        // The same (only) connection serves the next fetch, its transaction rolled back.
        let configure = |b: PostgresSourceBuilder| b.statement_timeout(Duration::from_millis(100));
        if let Some(db) = times_out_then_recovers("stmt", configure, 100).await? {
            db.drop().await;
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_client_side_timeout_cancels_the_query_and_recovers() -> TestResult {
        let configure = |b: PostgresSourceBuilder| {
            b.statement_timeout(Duration::from_secs(60))
                .client_timeout(Duration::from_millis(300))
        };
        let Some(db) = times_out_then_recovers("client", configure, 300).await? else {
            return Ok(());
        };
        // The abandoned query was cancelled on the server (polled, bounded to 10 s).
        let still_running = || async {
            db.admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE application_name = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'",
                    &[&db.name],
                )
                .await
                .map(|row| row.get::<_, i64>(0))
        };
        let cancelled = tokio::time::timeout(Duration::from_secs(10), async {
            while still_running().await? > 0 {
                tokio::task::yield_now().await;
            }
            Ok::<_, tokio_postgres::Error>(())
        })
        .await;
        assert!(matches!(cancelled, Ok(Ok(()))), "{cancelled:?}");
        db.drop().await;
        Ok(())
    }
}

mod pool_waits {
    use super::*;

    const ONE_SECOND: &str =
        "SELECT 'k' AS dwmon_unique_key, 1 AS dwmon_timestamp FROM pg_sleep(1)";

    #[test]
    fn the_default_pool_matches_the_engines_per_source_concurrency() {
        assert_eq!(
            PostgresSource::DEFAULT_POOL_SIZE,
            dwmon_core::EngineConfig::default().max_concurrent_checkers
        );
    }

    /// Two 1 s queries on one connection with a 1.5 s client timeout: the second waits 1 s
    /// for the connection, and that wait must not eat its query's time.
    #[tokio::test]
    async fn waiting_for_a_connection_does_not_count_against_the_query_timeout() -> TestResult {
        let Some(db) = TestSchema::create("poolwait", "").await else {
            return Ok(());
        };
        let source = PostgresSource::builder()
            .source("default", &db.url)?
            .pool_size(1)
            .client_timeout(Duration::from_millis(1500))
            .build()?;
        let (a, b) = tokio::join!(
            fetch(&source, "default", ONE_SECOND),
            fetch(&source, "default", ONE_SECOND)
        );
        assert_eq!(a?.rows, vec![Row::new("k", 1)]);
        assert_eq!(b?.rows, vec![Row::new("k", 1)]);
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_long_wait_for_a_connection_is_reported_as_such_not_as_a_query_timeout() -> TestResult
    {
        let Some(db) = TestSchema::create("poolwait2", "").await else {
            return Ok(());
        };
        let source = PostgresSource::builder()
            .source("default", &db.url)?
            .pool_size(1)
            .pool_wait_timeout(Duration::from_millis(300))
            .build()?;
        let (a, b) = tokio::join!(fetch(&source, "default", ONE_SECOND), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            fetch(&source, "default", ONE_SECOND).await
        });
        assert_eq!(a?.rows, vec![Row::new("k", 1)]);
        let error = b.expect_err("no connection within 0.3 s");
        assert!(matches!(error, SourceError::Connection { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("waited 0.3 s for a connection") && text.contains("pool size 1"),
            "{text}"
        );
        db.drop().await;
        Ok(())
    }
}

mod reconnects {
    use super::*;

    const PID: &str = "SELECT pg_backend_pid() AS dwmon_unique_key, 1 AS dwmon_timestamp";

    /// A restart as the pool sees it: every backend it holds is terminated between cycles.
    #[tokio::test]
    async fn terminated_backends_are_replaced_by_the_next_fetch() -> TestResult {
        let Some(db) = TestSchema::create("restart", "").await else {
            return Ok(());
        };
        let source = PostgresSource::builder()
            .source("default", &db.url)?
            .pool_size(2)
            .build()?;
        let before = fetch(&source, "default", PID).await?.rows;
        assert!(db.terminate_backends().await >= 1);
        let after = fetch(&source, "default", PID).await?.rows;
        assert_eq!(after.len(), 1);
        assert_ne!(after, before, "a new backend serves the next fetch");
        // And it keeps working.
        assert_eq!(fetch(&source, "default", PID).await?.rows, after);
        db.drop().await;
        Ok(())
    }

    /// The server goes away in the middle of a query: that fetch fails with a connection
    /// error (the engine reports ERROR), the next one succeeds.
    #[tokio::test]
    async fn a_backend_killed_mid_query_fails_that_fetch_only() -> TestResult {
        let Some(db) = TestSchema::create("midquery", "").await else {
            return Ok(());
        };
        let source = PostgresSource::new(&db.url)?;
        let slow = "SELECT 'k' AS dwmon_unique_key, 1 AS dwmon_timestamp FROM pg_sleep(30)";
        let killer = async {
            // Wait (by polling the server, bounded) until the slow query runs, then kill it.
            for _ in 0..500 {
                let running: i64 = db
                    .admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE application_name = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'",
                        &[&db.name],
                    )
                    .await
                    .map(|row| row.get(0))
                    .unwrap_or(0);
                if running > 0 {
                    return db.terminate_backends().await;
                }
                tokio::task::yield_now().await;
            }
            0
        };
        let (result, killed) = tokio::join!(fetch(&source, "default", slow), killer);
        assert_eq!(killed, 1);
        match result {
            Err(SourceError::Connection {
                source_name,
                message,
            }) => {
                assert_eq!(source_name, "default");
                assert!(
                    message.contains("57P01") || message.contains("closed"),
                    "{message}"
                );
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
        assert_eq!(fetch(&source, "default", PID).await?.rows.len(), 1);
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connection_error() -> TestResult {
        // Port 1 on loopback: refused at once, nothing listens there.
        let source = PostgresSource::builder()
            .source("default", "postgres://postgres:secret@127.0.0.1:1/test")?
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        match fetch(&source, "default", PID).await {
            Err(SourceError::Connection {
                source_name,
                message,
            }) => {
                assert_eq!(source_name, "default");
                assert!(message.contains("127.0.0.1:1"), "{message}");
                assert!(!message.contains("secret"), "password leaked: {message}");
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
        Ok(())
    }
}

mod tls {
    use super::*;

    const SSL: &str = "SELECT coalesce((SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()), 'none') \
                       AS dwmon_unique_key, 1 AS dwmon_timestamp";

    /// Whether the test server offers TLS, and the path of its certificate if readable here.
    async fn server_tls(db: &TestSchema) -> Option<Option<String>> {
        let ssl: String = db.admin.query_one("SHOW ssl", &[]).await.ok()?.get(0);
        if ssl != "on" {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: TLS tests need a server with ssl = on"
            );
            return None;
        }
        let file: Option<String> = db
            .admin
            .query_one("SHOW ssl_cert_file", &[])
            .await
            .ok()
            .map(|row| row.get(0));
        Some(file.filter(|f| std::fs::File::open(f).is_ok()))
    }

    #[tokio::test]
    async fn sslmode_decides_encryption_and_verification() -> TestResult {
        let Some(db) = TestSchema::create("tls", "").await else {
            return Ok(());
        };
        let Some(cert_file) = server_tls(&db).await else {
            db.drop().await;
            return Ok(());
        };
        let with = |mode: &str| format!("{}&sslmode={mode}", db.url);
        for (mode, expected) in [
            ("require", "true"),
            ("prefer", "true"),
            ("disable", "false"),
        ] {
            let source = PostgresSource::new(&with(mode))?;
            assert_eq!(
                keys(&fetch(&source, "default", SSL).await?),
                [expected],
                "{mode}"
            );
        }
        // A self-signed test certificate is not trusted by Mozilla's roots.
        let source = PostgresSource::new(&with("verify-full"))?;
        match fetch(&source, "default", SSL).await {
            Err(SourceError::Connection { message, .. }) => {
                assert!(message.contains("certificate"), "{message}");
            }
            other => panic!("expected a certificate error, got {other:?}"),
        }
        if let Some(cert) = cert_file {
            // Trusting the server's own certificate: the chain verifies (verify-ca)...
            let url = format!("{}&sslrootcert={cert}", with("verify-ca"));
            let source = PostgresSource::new(&url)?;
            assert_eq!(keys(&fetch(&source, "default", SSL).await?), ["true"]);
        }
        db.drop().await;
        Ok(())
    }
}
