//! `CommandSource` runs the shared source conformance suite (`dwmon_core::conformance`), in
//! both output formats: each query is a script, written to a temporary directory, printing the
//! suite's rows.

mod support;

use async_trait::async_trait;
use dwmon_command_source::{CommandSource, Format};
use dwmon_core::conformance::{self, Fixture, Sample};
use dwmon_core::RowGetter;
use support::{quoted, script, unique_name};

struct Scripts {
    source: CommandSource,
    dir: tempfile::TempDir,
}

fn csv_field(value: &Sample) -> String {
    match value {
        Sample::Null => String::new(),
        Sample::Int(n) => n.to_string(),
        Sample::Text(s) => format!("\"{}\"", s.replace('"', "\"\"")),
    }
}

fn json_field(value: &Sample) -> serde_json::Value {
    match value {
        Sample::Null => serde_json::Value::Null,
        Sample::Int(n) => (*n).into(),
        Sample::Text(s) => s.as_str().into(),
    }
}

#[async_trait]
impl Fixture for Scripts {
    fn getter(&self) -> &dyn RowGetter {
        &self.source
    }

    async fn query_for(&self, rows: &[(Sample, Sample)]) -> Result<String, String> {
        let mut output = String::new();
        if self.source.format() == Format::JsonLines {
            for (key, timestamp) in rows {
                let line = serde_json::json!({
                    "dwmon_unique_key": json_field(key),
                    "dwmon_timestamp": json_field(timestamp),
                });
                output.push_str(&format!("{line}\n"));
            }
        } else {
            output.push_str("dwmon_unique_key,dwmon_timestamp\n");
            for (key, timestamp) in rows {
                output.push_str(&format!("{},{}\n", csv_field(key), csv_field(timestamp)));
            }
        }
        let body = format!("cat <<'DWMON_END'\n{output}DWMON_END\n");
        let path =
            script(self.dir.path(), &unique_name("rows"), &body).map_err(|e| e.to_string())?;
        Ok(quoted(&path))
    }

    fn failing_query(&self) -> String {
        "/nonexistent/dwmon-conformance-program".into()
    }
}

#[tokio::test]
async fn csv_command_source_passes_the_conformance_suite() -> Result<(), Box<dyn std::error::Error>>
{
    let fixture = Scripts {
        source: CommandSource::new(Format::Csv),
        dir: tempfile::tempdir()?,
    };
    conformance::run_all(&fixture).await?;
    Ok(())
}

#[tokio::test]
async fn json_lines_command_source_passes_the_conformance_suite(
) -> Result<(), Box<dyn std::error::Error>> {
    let fixture = Scripts {
        source: CommandSource::new(Format::JsonLines),
        dir: tempfile::tempdir()?,
    };
    conformance::run_all(&fixture).await?;
    Ok(())
}
