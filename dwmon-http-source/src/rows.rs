//! JSON objects to [`Row`]s, with the conversion rules of `dwmon_core::convert`.

use crate::spec::Path;
use dwmon_core::convert::{self, ValueError};
use dwmon_core::{Fetched, Row};
use serde_json::Value;

/// Converts each element of a page's row array, appending to `fetched`. `numbered` is the
/// number of rows seen on earlier pages, so rejection reasons count rows across pages.
pub(crate) fn convert_page(
    items: &[Value],
    key: &Path,
    timestamp: &Path,
    numbered: &mut u64,
    fetched: &mut Fetched,
) {
    for item in items {
        *numbered += 1;
        match convert_item(*numbered, item, key, timestamp) {
            Ok(row) => fetched.rows.push(row),
            Err(reason) => fetched.reject(reason),
        }
    }
}

fn convert_item(number: u64, item: &Value, key: &Path, timestamp: &Path) -> Result<Row, String> {
    if !item.is_object() {
        return Err(format!("row {number}: is {}, not an object", kind(item)));
    }
    let field = |path: &Path| -> Result<&Value, String> {
        match path.get(item) {
            None => Err(format!("row {number}: {} is missing", path.as_written())),
            Some(Value::Null) => Err(format!("row {number}: {} is null", path.as_written())),
            Some(value) => Ok(value),
        }
    };
    let key_value = field(key)?;
    let key_text = match key_value {
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if !number.is_i64() && !number.is_u64() => convert::key_from_f64(float),
            _ => number.to_string(),
        },
        Value::Bool(flag) => flag.to_string(),
        other => {
            return Err(format!(
                "row {number}: {} is {}, which cannot be a key",
                key.as_written(),
                kind(other)
            ))
        }
    };
    let timestamp_value = field(timestamp)?;
    let seconds = match timestamp_value {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(seconds), _, _) => convert::epoch_from_i64(seconds),
            // Larger than i64::MAX: far beyond every unit hint.
            (None, Some(_), _) => Err(ValueError::TooFarInFuture),
            (None, None, Some(float)) => convert::epoch_from_f64(float),
            _ => Err(ValueError::NotFinite),
        },
        Value::String(text) => convert::epoch_from_text(text),
        other => Err(ValueError::WrongType(format!("JSON {}", noun(other)))),
    };
    match seconds {
        Ok(seconds) => Ok(Row::new(key_text, seconds)),
        Err(error) => {
            let shown = match timestamp_value {
                Value::String(text) => crate::escape(text),
                other => other.to_string(),
            };
            Err(convert::rejection(
                number,
                timestamp.as_written(),
                Some(&shown),
                &error,
            ))
        }
    }
}

/// `a string`, `an object`, ... for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn noun(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RequestSpec;
    use serde_json::json;

    fn convert(items: Value) -> Fetched {
        let spec = RequestSpec::parse("GET http://h\nkey: id\ntimestamp: at.time").unwrap();
        let mut fetched = Fetched::default();
        let mut numbered = 0;
        convert_page(
            items.as_array().unwrap(),
            &spec.key,
            &spec.timestamp,
            &mut numbered,
            &mut fetched,
        );
        fetched
    }

    #[test]
    fn keys_and_timestamps_of_every_json_kind() {
        let fetched = convert(json!([
            {"id": "a", "at": {"time": 1_700_000_000}},
            {"id": 42, "at": {"time": "1700000000"}},
            {"id": -7, "at": {"time": "2023-11-14T23:13:20+01:00"}},
            {"id": 1.5, "at": {"time": 1_700_000_000.9}},
            {"id": true, "at": {"time": "2023-11-14 22:13:20"}},
            {"id": 18_446_744_073_709_551_615_u64, "at": {"time": 0}},
        ]));
        let rows: Vec<(&str, i64)> = fetched
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.timestamp))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("a", 1_700_000_000),
                ("42", 1_700_000_000),
                ("-7", 1_700_000_000),
                ("1.5", 1_700_000_000),
                ("true", 1_700_000_000),
                ("18446744073709551615", 0),
            ]
        );
        assert_eq!(fetched.rejected, 0);
    }

    #[test]
    fn unusable_rows_are_rejected_with_reasons() {
        let fetched = convert(json!([
            {"at": {"time": 1}},
            {"id": null, "at": {"time": 1}},
            {"id": "a"},
            {"id": "b", "at": {"time": 1_700_000_000_000_i64}},
            "just a string",
            {"id": {"nested": 1}, "at": {"time": 1}},
            {"id": "c", "at": {"time": [1]}},
            {"id": "d", "at": {"time": "yesterday\u{1b}"}},
            {"id": "ok", "at": {"time": 3}},
        ]));
        assert_eq!(fetched.rows, vec![Row::new("ok", 3)]);
        assert_eq!(fetched.rejected, 8);
        assert_eq!(
            fetched.rejected_samples,
            vec![
                "row 1: id is missing".to_string(),
                "row 2: id is null".to_string(),
                "row 3: at.time is missing".to_string(),
                "row 4: at.time 1700000000000 is after the year 5000 as seconds: it looks like \
                 milliseconds; divide by 1000 in the query"
                    .to_string(),
                "row 5: is a string, not an object".to_string(),
            ]
        );
        let more = convert(json!([
            {"id": {"nested": 1}, "at": {"time": 1}},
            {"id": "c", "at": {"time": [1]}},
            {"id": "d", "at": {"time": "yesterday\u{1b}"}},
        ]));
        assert_eq!(
            more.rejected_samples[0],
            "row 1: id is an object, which cannot be a key"
        );
        assert_eq!(
            more.rejected_samples[1],
            "row 2: at.time [1] is a JSON array, which cannot be read as a timestamp"
        );
        assert!(
            more.rejected_samples[2].starts_with("row 3: at.time yesterday\\u{1b} is not"),
            "{:?}",
            more.rejected_samples
        );
    }
}
