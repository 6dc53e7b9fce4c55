//! `SqliteSource` runs the shared source conformance suite (`dwmon_core::conformance`).

use async_trait::async_trait;
use dwmon_core::conformance::{self, Fixture, Sample};
use dwmon_core::RowGetter;
use dwmon_sqlite::SqliteSource;

struct Sqlite {
    _dir: tempfile::TempDir,
    source: SqliteSource,
}

fn literal(value: &Sample) -> String {
    match value {
        Sample::Null => "NULL".to_string(),
        Sample::Int(n) => n.to_string(),
        Sample::Text(s) => format!("'{}'", s.replace('\'', "''")),
    }
}

#[async_trait]
impl Fixture for Sqlite {
    fn getter(&self) -> &dyn RowGetter {
        &self.source
    }

    async fn query_for(&self, rows: &[(Sample, Sample)]) -> Result<String, String> {
        if rows.is_empty() {
            return Ok("SELECT 'x' AS dwmon_unique_key, 0 AS dwmon_timestamp WHERE 1 = 0".into());
        }
        Ok(rows
            .iter()
            .map(|(key, ts)| {
                format!(
                    "SELECT {} AS dwmon_unique_key, {} AS dwmon_timestamp",
                    literal(key),
                    literal(ts)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL "))
    }

    fn failing_query(&self) -> String {
        "SELEC nonsense".into()
    }
}

#[tokio::test]
async fn sqlite_source_passes_the_conformance_suite() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data.db");
    rusqlite::Connection::open(&path)?.execute_batch("CREATE TABLE t (x)")?;
    let fixture = Sqlite {
        source: SqliteSource::new(&path),
        _dir: dir,
    };
    conformance::run_all(&fixture).await?;
    Ok(())
}
