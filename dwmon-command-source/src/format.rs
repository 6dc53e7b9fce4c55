//! [`Format`]: how a command's stdout becomes rows (CSV with a header, or JSON lines).

use dwmon_core::convert::{self, ValueError, KEY_COLUMN, TIMESTAMP_COLUMN};
use dwmon_core::{Fetched, Row, SourceError};
use serde_json::Value;

/// How a command prints its rows on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// CSV (RFC 4180) whose first record is a header naming the columns
    /// `dwmon_unique_key` and `dwmon_timestamp` (any order, other columns ignored). Fields
    /// may be quoted (`"a, b"`, `"say ""hi"""`, newlines inside quotes). An empty field or
    /// `\N` is NULL. Printed by `bq query --format=csv`, `clickhouse-client --format
    /// CSVWithNames`, `psql --csv`, `sqlite3 -csv -header`, `mysql --batch` is TSV (not this).
    #[default]
    Csv,
    /// One JSON object per line, `{"dwmon_unique_key": ..., "dwmon_timestamp": ...}`; other
    /// fields ignored, blank lines skipped. Printed by `jq -c`, `clickhouse-client --format
    /// JSONEachRow`.
    JsonLines,
}

impl Format {
    /// The name used in `command:FORMAT` URLs: `csv` or `jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }

    /// Parses a format name: `csv`, or `jsonl` (also `ndjson`, `json-lines`), ignoring case.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json-lines" | "jsonlines" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// Turns a command's stdout into rows; unusable lines are rejected and counted.
    ///
    /// # Errors
    /// [`SourceError::MissingColumns`] when a CSV header lacks either column.
    pub(crate) fn parse(self, checker: &str, stdout: &[u8]) -> Result<Fetched, SourceError> {
        match self {
            Format::Csv => parse_csv(checker, stdout),
            Format::JsonLines => Ok(parse_json_lines(stdout)),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rejection reason naming the stdout line as well as the row.
fn rejected_at(line: u64, reason: String) -> String {
    format!("stdout line {line}, {reason}")
}

/// A CSV field as a value: `None` for NULL (empty or `\N`).
fn csv_value(field: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if field.is_empty() || field == b"\\N" {
        None
    } else {
        Some(String::from_utf8_lossy(field))
    }
}

fn parse_csv(checker: &str, stdout: &[u8]) -> Result<Fetched, SourceError> {
    let stdout = stdout.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(stdout);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(stdout);
    let mut records = reader.byte_records();
    let Some(header) = records.next() else {
        // Nothing at all on stdout: no rows (some clients print no header for an empty result).
        return Ok(Fetched::default());
    };
    let header = header
        .map_err(|e| SourceError::Other(format!("stdout line 1: unreadable CSV header: {e}")))?;
    let names: Vec<String> = header
        .iter()
        .map(|name| String::from_utf8_lossy(name).trim().to_string())
        .collect();
    let Some((key_at, timestamp_at)) = convert::find_columns(&names) else {
        return Err(SourceError::MissingColumns {
            checker: checker.to_string(),
            found: names,
        });
    };
    let mut fetched = Fetched::default();
    let mut row = 0u64;
    for record in records {
        row += 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                fetched.reject(rejected_at(
                    line,
                    format!("row {row}: unreadable CSV: {error}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let (Some(key), Some(timestamp)) = (record.get(key_at), record.get(timestamp_at)) else {
            fetched.reject(rejected_at(
                line,
                format!(
                    "row {row}: has {} fields; the header has {}",
                    record.len(),
                    names.len()
                ),
            ));
            continue;
        };
        let Some(key) = csv_value(key) else {
            let reason = convert::rejection(row, KEY_COLUMN, None, &ValueError::Null);
            fetched.reject(rejected_at(line, reason));
            continue;
        };
        let timestamp = match csv_value(timestamp) {
            None => Err((None, ValueError::Null)),
            Some(text) => convert::epoch_from_text(&text).map_err(|e| (Some(text), e)),
        };
        match timestamp {
            Ok(timestamp) => fetched.rows.push(Row::new(key, timestamp)),
            Err((text, error)) => {
                let reason = convert::rejection(row, TIMESTAMP_COLUMN, text.as_deref(), &error);
                fetched.reject(rejected_at(line, reason));
            }
        }
    }
    Ok(fetched)
}

/// A JSON field, case-insensitively if no exact match (as SQL column names are found).
fn field<'v>(object: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "JSON null",
        Value::Bool(_) => "JSON boolean",
        Value::Number(_) => "JSON number",
        Value::String(_) => "JSON string",
        Value::Array(_) => "JSON array",
        Value::Object(_) => "JSON object",
    }
}

/// The key of a JSON row: strings as is, numbers and booleans in their JSON text.
fn json_key(value: Option<&Value>) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Err(ValueError::Null.to_string()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Number(number)) => Ok(number.to_string()),
        Some(Value::Bool(flag)) => Ok(flag.to_string()),
        Some(other) => Err(format!(
            "is a {}; use a string or a number",
            json_kind(other)
        )),
    }
}

/// The timestamp of a JSON row: numbers (floored) and strings as [`convert::epoch_from_text`].
fn json_timestamp(value: Option<&Value>) -> Result<i64, (Option<String>, ValueError)> {
    match value {
        None | Some(Value::Null) => Err((None, ValueError::Null)),
        Some(Value::Number(number)) => {
            let text = number.to_string();
            convert::epoch_from_text(&text).map_err(|e| (Some(text), e))
        }
        Some(Value::String(text)) => {
            convert::epoch_from_text(text).map_err(|e| (Some(text.clone()), e))
        }
        Some(other) => Err((None, ValueError::WrongType(json_kind(other).to_string()))),
    }
}

fn parse_json_lines(stdout: &[u8]) -> Fetched {
    let mut fetched = Fetched::default();
    let mut row = 0u64;
    for (index, line) in stdout.split(|&b| b == b'\n').enumerate() {
        let line_number = index as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        row += 1;
        let object = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(other) => {
                fetched.reject(rejected_at(
                    line_number,
                    format!("row {row}: is a {}, not an object", json_kind(&other)),
                ));
                continue;
            }
            Err(error) => {
                fetched.reject(rejected_at(
                    line_number,
                    format!("row {row}: invalid JSON: {error}"),
                ));
                continue;
            }
        };
        let key = match json_key(field(&object, KEY_COLUMN)) {
            Ok(key) => key,
            Err(why) => {
                fetched.reject(rejected_at(
                    line_number,
                    format!("row {row}: {KEY_COLUMN} {why}"),
                ));
                continue;
            }
        };
        match json_timestamp(field(&object, TIMESTAMP_COLUMN)) {
            Ok(timestamp) => fetched.rows.push(Row::new(key, timestamp)),
            Err((text, error)) => {
                let reason = convert::rejection(row, TIMESTAMP_COLUMN, text.as_deref(), &error);
                fetched.reject(rejected_at(line_number, reason));
            }
        }
    }
    fetched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(fetched: &Fetched) -> Vec<(&str, i64)> {
        fetched
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.timestamp))
            .collect()
    }

    #[test]
    fn csv_columns_are_found_by_header_name() -> Result<(), SourceError> {
        let out = b"other,DWMON_TIMESTAMP,dwmon_unique_key\r\nx,1700000000,a\r\ny,\"2023-11-14 22:13:20\",\"b, \"\"quoted\"\"\"\r\n";
        let fetched = Format::Csv.parse("c", out)?;
        assert_eq!(
            rows(&fetched),
            [("a", 1_700_000_000), ("b, \"quoted\"", 1_700_000_000)]
        );
        assert_eq!(fetched.rejected, 0);
        Ok(())
    }

    #[test]
    fn csv_quoted_newlines_and_bom() -> Result<(), SourceError> {
        let out = "\u{feff}dwmon_unique_key,dwmon_timestamp\n\"two\nlines\",5\n".as_bytes();
        let fetched = Format::Csv.parse("c", out)?;
        assert_eq!(rows(&fetched), [("two\nlines", 5)]);
        Ok(())
    }

    #[test]
    fn csv_bad_rows_are_rejected_with_their_line() -> Result<(), SourceError> {
        let out = b"dwmon_unique_key,dwmon_timestamp\na,1\n,2\nb,\nc,yesterday\nd\ne,\\N\nf,1700000000000\ng,3\n";
        let fetched = Format::Csv.parse("c", out)?;
        assert_eq!(rows(&fetched), [("a", 1), ("g", 3)]);
        assert_eq!(fetched.rejected, 6);
        let samples = &fetched.rejected_samples;
        assert_eq!(samples[0], "stdout line 3, row 2: dwmon_unique_key is NULL");
        assert_eq!(samples[1], "stdout line 4, row 3: dwmon_timestamp is NULL");
        assert!(
            samples[2].starts_with("stdout line 5, row 4: dwmon_timestamp yesterday is not"),
            "{samples:?}"
        );
        assert_eq!(
            samples[3],
            "stdout line 6, row 5: has 1 fields; the header has 2"
        );
        Ok(())
    }

    #[test]
    fn csv_without_the_columns_fails_the_fetch() {
        let error = Format::Csv
            .parse("orders", b"Error: table not found\n")
            .unwrap_err();
        assert_eq!(
            error,
            SourceError::MissingColumns {
                checker: "orders".into(),
                found: vec!["Error: table not found".into()]
            }
        );
    }

    #[test]
    fn empty_output_is_no_rows() -> Result<(), SourceError> {
        for format in [Format::Csv, Format::JsonLines] {
            assert_eq!(format.parse("c", b"")?, Fetched::default());
        }
        let header_only = Format::Csv.parse("c", b"dwmon_unique_key,dwmon_timestamp\n")?;
        assert_eq!(header_only, Fetched::default());
        Ok(())
    }

    #[test]
    fn json_lines_convert_like_sql_values() -> Result<(), SourceError> {
        let out = br#"{"dwmon_unique_key":"a","dwmon_timestamp":1700000000,"x":[1]}

{"DWMON_UNIQUE_KEY":42,"dwmon_timestamp":"2023-11-14T22:13:20Z"}
{"dwmon_unique_key":1.5,"dwmon_timestamp":1700000000.9}
{"dwmon_unique_key":true,"dwmon_timestamp":"1700000000"}
"#;
        let fetched = Format::JsonLines.parse("c", out)?;
        assert_eq!(
            rows(&fetched),
            [
                ("a", 1_700_000_000),
                ("42", 1_700_000_000),
                ("1.5", 1_700_000_000),
                ("true", 1_700_000_000)
            ]
        );
        Ok(())
    }

    #[test]
    fn json_bad_lines_are_rejected_with_their_line() -> Result<(), SourceError> {
        let out = br#"{"dwmon_unique_key":"a","dwmon_timestamp":1}
not json
[1,2]
{"dwmon_timestamp":2}
{"dwmon_unique_key":{"id":1},"dwmon_timestamp":2}
{"dwmon_unique_key":"b","dwmon_timestamp":true}
{"dwmon_unique_key":"c","dwmon_timestamp":1700000000000}
"#;
        let fetched = Format::JsonLines.parse("c", out)?;
        assert_eq!(rows(&fetched), [("a", 1)]);
        assert_eq!(fetched.rejected, 6);
        let samples = &fetched.rejected_samples;
        assert!(
            samples[0].starts_with("stdout line 2, row 2: invalid JSON"),
            "{samples:?}"
        );
        assert_eq!(
            samples[1],
            "stdout line 3, row 3: is a JSON array, not an object"
        );
        assert_eq!(samples[2], "stdout line 4, row 4: dwmon_unique_key is NULL");
        assert_eq!(
            samples[3],
            "stdout line 5, row 5: dwmon_unique_key is a JSON object; use a string or a number"
        );
        assert_eq!(
            samples[4],
            "stdout line 6, row 6: dwmon_timestamp is a JSON boolean, which cannot be read as a timestamp"
        );
        Ok(())
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::from_name("CSV"), Some(Format::Csv));
        assert_eq!(Format::from_name("ndjson"), Some(Format::JsonLines));
        assert_eq!(Format::from_name("xml"), None);
        assert_eq!(Format::JsonLines.to_string(), "jsonl");
    }
}
