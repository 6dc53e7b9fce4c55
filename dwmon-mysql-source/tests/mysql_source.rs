//! `MysqlSource` against the real server (`DWMON_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`): conversions, NULLs, timeouts, refused connections,
//! writes that must fail, reconnecting, and passwords kept out of errors. Each test has its own
//! database.

mod support;

use dwmon_core::SourceError;
use dwmon_mysql_source::MysqlSource;
use mysql_async::prelude::Queryable;
use std::error::Error;
use std::time::{Duration, Instant};
use support::{fetch, TestDb};

/// 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000;

const CONVERSIONS: &str = "
    CREATE TABLE conv (
        k_int BIGINT, k_uint BIGINT UNSIGNED, k_str VARCHAR(20), k_dec DECIMAL(10,2),
        k_bin VARBINARY(10), k_float DOUBLE,
        dt DATETIME(3), ts TIMESTAMP(3) NULL, d DATE, epoch_i INT UNSIGNED,
        epoch_d DECIMAL(16,3), epoch_f DOUBLE, epoch_s VARCHAR(40), iso VARCHAR(40)
    );
    SET time_zone = '+05:00';
    INSERT INTO conv VALUES (
        -7, 18446744073709551615, 'order-1', 12.50,
        'bytes', 1.5,
        '2023-11-14 22:13:20.750', '2023-11-15 03:13:20.250', '2023-11-14', 1700000000,
        1700000000.999, 1700000000.9, '1700000000', '2023-11-14T23:13:20+01:00'
    );";

#[tokio::test]
async fn keys_and_timestamps_are_converted() -> Result<(), Box<dyn Error>> {
    let Some(db) = TestDb::create("conv", CONVERSIONS).await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    for (column, want) in [
        ("k_int", "-7"),
        ("k_uint", "18446744073709551615"),
        ("k_str", "order-1"),
        ("k_dec", "12.50"),
        ("k_bin", "bytes"),
        ("k_float", "1.5"),
        ("dt", "2023-11-14T22:13:20.750000Z"),
        ("d", "2023-11-14"),
    ] {
        let query =
            format!("SELECT {column} AS dwmon_unique_key, epoch_i AS dwmon_timestamp FROM conv");
        let fetched = fetch(&source, "default", &query).await?;
        assert_eq!(
            fetched.rejected, 0,
            "{column}: {:?}",
            fetched.rejected_samples
        );
        assert_eq!(fetched.rows.len(), 1, "{column}");
        assert_eq!(fetched.rows[0].key, want, "{column}");
        assert_eq!(fetched.rows[0].timestamp, T, "{column}");
    }
    for (column, want) in [
        // DATETIME is taken as UTC; fractions of a second are truncated.
        ("dt", T),
        // TIMESTAMP was written at +05:00 and is read in the session's +00:00.
        ("ts", T),
        ("d", T - T % 86_400),
        ("epoch_i", T),
        ("epoch_d", T),
        ("epoch_f", T),
        ("epoch_s", T),
        ("iso", T),
        ("'2023-11-14 22:13:20'", T),
        ("CAST(1700000000.5 AS DECIMAL(12,1))", T),
    ] {
        let query =
            format!("SELECT k_str AS dwmon_unique_key, {column} AS dwmon_timestamp FROM conv");
        let fetched = fetch(&source, "default", &query).await?;
        assert_eq!(
            fetched.rejected, 0,
            "{column}: {:?}",
            fetched.rejected_samples
        );
        assert_eq!(fetched.rows.len(), 1, "{column}");
        assert_eq!(fetched.rows[0].timestamp, want, "{column}");
    }
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn nulls_and_bad_values_are_rejected_and_counted() -> Result<(), Box<dyn Error>> {
    let setup = "
        CREATE TABLE events (id INT PRIMARY KEY, k VARCHAR(20), ts VARCHAR(40), b VARBINARY(4));
        INSERT INTO events VALUES
            (1, 'a', '1700000000', 'x'),
            (2, NULL, '1700000000', 'x'),
            (3, 'c', NULL, 'x'),
            (4, 'd', 'yesterday', 'x'),
            (5, 'e', '1700000000000', 'x'),
            (6, 'f', '-5', 'x'),
            (7, 'g', '1700000060', 'x'),
            (8, 'h', '1700000000', X'FFFE');";
    let Some(db) = TestDb::create("nulls", setup).await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    let fetched = fetch(
        &source,
        "default",
        "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM events ORDER BY id",
    )
    .await?;
    let rows: Vec<(&str, i64)> = fetched
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.timestamp))
        .collect();
    assert_eq!(rows, vec![("a", T), ("g", T + 60), ("h", T)]);
    assert_eq!(fetched.rejected, 5, "{:?}", fetched.rejected_samples);
    assert_eq!(
        fetched.rejected_samples,
        vec![
            "row 2: dwmon_unique_key is NULL".to_string(),
            "row 3: dwmon_timestamp is NULL".to_string(),
            "row 4: dwmon_timestamp 'yesterday' is not epoch seconds (integer or decimal) nor a UTC date-time like '2024-05-01 12:00:00'".to_string(),
            "row 5: dwmon_timestamp '1700000000000' is after the year 5000 as seconds: it looks like milliseconds; divide by 1000 in the query".to_string(),
            "row 6: dwmon_timestamp '-5' is negative (before 1970)".to_string(),
        ]
    );
    // A binary key that is not UTF-8 is rejected too.
    let fetched = fetch(
        &source,
        "default",
        "SELECT b AS dwmon_unique_key, ts AS dwmon_timestamp FROM events WHERE id IN (1, 8) ORDER BY id",
    )
    .await?;
    assert_eq!(fetched.rows.len(), 1);
    assert_eq!(fetched.rejected, 1);
    assert!(
        fetched.rejected_samples[0].starts_with("row 2: dwmon_unique_key is not valid UTF-8"),
        "{:?}",
        fetched.rejected_samples
    );
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn missing_and_unreadable_columns_fail_the_fetch() -> Result<(), Box<dyn Error>> {
    let Some(db) = TestDb::create("columns", "CREATE TABLE t (k INT, ts INT)").await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    // Checked from the result's metadata: an empty table is caught too.
    let error = fetch(
        &source,
        "default",
        "SELECT k AS dwmon_unique_key, ts FROM t",
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        SourceError::MissingColumns {
            checker: "orders".into(),
            found: vec!["dwmon_unique_key".into(), "ts".into()],
        }
    );
    let error = fetch(
        &source,
        "default",
        "SELECT 'a' AS dwmon_unique_key, CAST('10:00:00' AS TIME) AS dwmon_timestamp",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, SourceError::Query { message, .. } if message.contains("cast it in the query")),
        "{error:?}"
    );
    // An unknown table is the query's fault, with the server's words.
    let error = fetch(
        &source,
        "default",
        "SELECT 1 AS dwmon_unique_key, 1 AS dwmon_timestamp FROM nowhere",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, SourceError::Query { message, .. } if message.contains("1146")),
        "{error:?}"
    );
    let error = fetch(&source, "other", "SELECT 1").await.unwrap_err();
    assert!(
        matches!(error, SourceError::UnknownSource { .. }),
        "{error:?}"
    );
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn the_server_side_statement_timeout_stops_a_slow_query() -> Result<(), Box<dyn Error>> {
    let Some(db) = TestDb::create("stmt_timeout", "").await else {
        return Ok(());
    };
    let source = MysqlSource::builder()
        .source("default", &db.url)?
        .statement_timeout(Duration::from_millis(500))
        .client_timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    let error = fetch(
        &source,
        "default",
        "SELECT SLEEP(5) AS dwmon_unique_key, 1 AS dwmon_timestamp",
    )
    .await
    .unwrap_err();
    assert_eq!(error, SourceError::Timeout { millis: 500 });
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The connection is still good: the next fetch on the pool works.
    let fetched = fetch(
        &source,
        "default",
        "SELECT 'a' AS dwmon_unique_key, 5 AS dwmon_timestamp",
    )
    .await?;
    assert_eq!(fetched.rows.len(), 1);
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn the_client_side_timeout_gives_up_and_kills_the_query() -> Result<(), Box<dyn Error>> {
    let Some(mut db) = TestDb::create("client_timeout", "").await else {
        return Ok(());
    };
    let source = MysqlSource::builder()
        .source("default", &db.url)?
        // No server-side limit: only the client's bound applies.
        .statement_timeout(Duration::ZERO)
        .client_timeout(Duration::from_millis(500))
        .build()?;
    let started = Instant::now();
    let error = fetch(
        &source,
        "default",
        "SELECT SLEEP(30) AS dwmon_unique_key, 1 AS dwmon_timestamp",
    )
    .await
    .unwrap_err();
    assert_eq!(error, SourceError::Timeout { millis: 500 });
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The query is killed in the background, not left running for 30 s.
    let mut still_running = true;
    for _ in 0..50 {
        let connections = db.connections().await;
        still_running = connections
            .iter()
            .any(|(_, _, info)| info.as_deref().is_some_and(|i| i.contains("SLEEP(30)")));
        if !still_running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!still_running, "{:?}", db.connections().await);
    let fetched = fetch(
        &source,
        "default",
        "SELECT 'a' AS dwmon_unique_key, 5 AS dwmon_timestamp",
    )
    .await?;
    assert_eq!(fetched.rows.len(), 1);
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error_at_once() -> Result<(), Box<dyn Error>> {
    // Port 9 (discard) has no listener on the test machines: the connection is refused.
    let source = MysqlSource::builder()
        .source("warehouse", "mysql://root:hunter2@127.0.0.1:9/test")?
        .build()?;
    let started = Instant::now();
    let error = fetch(&source, "warehouse", "SELECT 1").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let SourceError::Connection {
        source_name,
        message,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(source_name, "warehouse");
    assert!(message.contains("refused"), "{message}");
    assert!(
        message.contains("mysql://root:***@127.0.0.1:9/test"),
        "{message}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{source:?}").contains("hunter2"));
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_never_shown() -> Result<(), Box<dyn Error>> {
    let Some(db) = TestDb::create("password", "").await else {
        return Ok(());
    };
    let (scheme, rest) = db.url.split_once("://").ok_or("no scheme")?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let url = format!("{scheme}://dwmon_nobody:hunter2@{host}");
    let source = MysqlSource::builder().source("default", &url)?.build()?;
    let error = fetch(&source, "default", "SELECT 1").await.unwrap_err();
    assert!(matches!(error, SourceError::Connection { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{error:?}").contains("hunter2"));
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn writes_fail_in_the_read_only_transaction() -> Result<(), Box<dyn Error>> {
    let Some(mut db) = TestDb::create("writes", "CREATE TABLE t (k INT)").await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    for write in [
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET k = 2",
        // DDL commits implicitly: the session's READ ONLY stops it all the same.
        "CREATE TABLE t2 (k INT)",
        "DROP TABLE t",
        // One statement only: no way out of the transaction.
        "SELECT 1 AS dwmon_unique_key, 1 AS dwmon_timestamp; INSERT INTO t VALUES (1)",
        "COMMIT; INSERT INTO t VALUES (1)",
    ] {
        let error = fetch(&source, "default", write).await.unwrap_err();
        assert!(
            matches!(error, SourceError::Query { .. }),
            "{write}: {error:?}"
        );
    }
    let error = fetch(&source, "default", "INSERT INTO t VALUES (1)")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("READ ONLY"), "{error}");
    let count: Option<i64> = db
        .admin
        .query_first(db.sql("SELECT COUNT(*) FROM {db}.t"))
        .await?;
    assert_eq!(count, Some(0));
    let tables: Vec<String> = db
        .admin
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (db.name.clone(),),
        )
        .await?;
    assert_eq!(tables, vec!["t".to_string()]);
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn a_fetch_after_the_server_dropped_every_connection_succeeds() -> Result<(), Box<dyn Error>>
{
    let setup = "CREATE TABLE t (k VARCHAR(10), ts BIGINT); INSERT INTO t VALUES ('a', 1700000000)";
    let Some(mut db) = TestDb::create("reconnect", setup).await else {
        return Ok(());
    };
    let source = MysqlSource::builder()
        .source("default", &db.url)?
        .pool_size(3)
        .build()?;
    let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t";
    // Three fetches at once leave three connections in the pool.
    let (a, b, c) = tokio::join!(
        fetch(&source, "default", query),
        fetch(&source, "default", query),
        fetch(&source, "default", query)
    );
    assert_eq!((a?.rows.len(), b?.rows.len(), c?.rows.len()), (1, 1, 1));
    // As a server restart does: every pooled connection is dropped by the server.
    assert_eq!(db.kill_connections().await, 3);
    let fetched = fetch(&source, "default", query).await?;
    assert_eq!(fetched.rows.len(), 1);
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn connections_are_pooled_and_reused() -> Result<(), Box<dyn Error>> {
    let Some(db) = TestDb::create("pooled", "").await else {
        return Ok(());
    };
    let source = MysqlSource::builder()
        .source("default", &db.url)?
        .pool_size(1)
        .build()?;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let fetched = fetch(
            &source,
            "default",
            "SELECT CONNECTION_ID() AS dwmon_unique_key, 1 AS dwmon_timestamp",
        )
        .await?;
        ids.push(fetched.rows[0].key.clone());
    }
    // One connection served every fetch (the session settings are re-applied each time).
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn ssl_mode_required_needs_a_server_offering_tls() -> Result<(), Box<dyn Error>> {
    let Some(mut db) = TestDb::create("tls", "").await else {
        return Ok(());
    };
    let have_ssl: Option<String> = db
        .admin
        .query_first("SELECT @@have_ssl")
        .await
        .ok()
        .flatten();
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let required = format!("{}{separator}ssl-mode=REQUIRED", db.url);
    let preferred = format!("{}{separator}ssl-mode=PREFERRED", db.url);
    let query = "SELECT 'a' AS dwmon_unique_key, 5 AS dwmon_timestamp";
    // PREFERRED works either way: TLS when offered, else plain.
    let fetched = fetch(&MysqlSource::new(&preferred)?, "default", query).await?;
    assert_eq!(fetched.rows.len(), 1);
    let result = fetch(&MysqlSource::new(&required)?, "default", query).await;
    if have_ssl.as_deref() == Some("YES") {
        assert_eq!(result?.rows.len(), 1);
    } else {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, SourceError::Connection { message, .. } if message.contains("does not offer TLS")),
            "{error:?}"
        );
    }
    db.drop().await;
    Ok(())
}
