//! `MysqlSource` runs the shared source conformance suite (`dwmon_core::conformance`) against
//! the real server (`DWMON_TEST_MYSQL_URL`, see `support::test_url`).

mod support;

use async_trait::async_trait;
use dwmon_core::conformance::{self, Fixture, Sample};
use dwmon_core::RowGetter;
use dwmon_mysql_source::MysqlSource;

struct Mysql(MysqlSource);

// Typed literals, so a one-row SELECT and a UNION ALL resolve to string / integer columns.
fn literal(value: &Sample) -> String {
    match value {
        Sample::Null => "NULL".to_string(),
        Sample::Int(n) => format!("CAST({n} AS SIGNED)"),
        Sample::Text(s) => format!(
            "CAST('{}' AS CHAR)",
            s.replace('\\', "\\\\").replace('\'', "''")
        ),
    }
}

#[async_trait]
impl Fixture for Mysql {
    fn getter(&self) -> &dyn RowGetter {
        &self.0
    }

    async fn query_for(&self, rows: &[(Sample, Sample)]) -> Result<String, String> {
        if rows.is_empty() {
            return Ok(
                "SELECT 'x' AS dwmon_unique_key, 0 AS dwmon_timestamp FROM DUAL WHERE FALSE".into(),
            );
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
async fn mysql_source_passes_the_conformance_suite() -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = support::test_url().await else {
        return Ok(());
    };
    let fixture = Mysql(MysqlSource::new(&url)?);
    conformance::run_all(&fixture).await?;
    Ok(())
}
