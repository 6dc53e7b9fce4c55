//! `dwmon status`: what the store knows about each checker, as a table or JSON lines.

use crate::args::local_rfc3339;
use dwmon_core::CheckerStatus;
use std::fmt::Write;

/// One JSON object for a checker's status.
pub fn status_json(status: &CheckerStatus) -> serde_json::Value {
    let requirements: Vec<serde_json::Value> = status
        .requirements
        .iter()
        .map(|r| {
            serde_json::json!({
                "requirement_index": r.requirement_index,
                "minute": r.minute,
                "count": r.count,
                "status": r.status,
            })
        })
        .collect();
    serde_json::json!({
        "checker": status.checker,
        "last_minute": status.last_minute,
        "last_minute_utc": status.last_minute.map(|m| local_rfc3339(m, chrono_tz::UTC)),
        "requirements": requirements,
        "pending_deliveries": status.pending_deliveries,
        "last_error": status.last_error.as_ref().map(|(minute, message)| serde_json::json!({
            "minute": minute,
            "error": message,
        })),
        "stored_rows": status.stored_rows,
    })
}

/// A table for people: one line per checker.
pub fn status_table(statuses: &[CheckerStatus]) -> String {
    if statuses.is_empty() {
        return "no checkers in this store yet\n".to_string();
    }
    let header = [
        "CHECKER",
        "LAST CHECK (UTC)",
        "REQUIREMENTS",
        "PENDING",
        "ROWS",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 6]> = statuses
        .iter()
        .map(|s| {
            let requirements = s
                .requirements
                .iter()
                .map(|r| format!("#{}:{}({})", r.requirement_index, r.status, r.count))
                .collect::<Vec<_>>()
                .join(" ");
            [
                s.checker.clone(),
                s.last_minute
                    .map(|m| local_rfc3339(m, chrono_tz::UTC))
                    .unwrap_or_else(|| "never".into()),
                if requirements.is_empty() {
                    "-".into()
                } else {
                    requirements
                },
                s.pending_deliveries.to_string(),
                s.stored_rows.to_string(),
                s.last_error
                    .as_ref()
                    .map(|(minute, message)| {
                        format!(
                            "{} {}",
                            local_rfc3339(*minute, chrono_tz::UTC),
                            one_line(message)
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                let _ = write!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(out);
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwmon_core::store::RequirementStatus;
    use dwmon_core::Status;

    fn sample() -> Vec<CheckerStatus> {
        vec![
            CheckerStatus {
                checker: "new_executions".into(),
                last_minute: Some(1_795_359_840),
                requirements: vec![RequirementStatus {
                    requirement_index: 0,
                    minute: 1_795_359_840,
                    count: 7,
                    status: Status::Good,
                }],
                pending_deliveries: 0,
                last_error: None,
                stored_rows: 42,
            },
            CheckerStatus {
                checker: "broken".into(),
                last_error: Some((1_795_359_840, "source \"x\": connection\nfailed".into())),
                ..CheckerStatus::default()
            },
        ]
    }

    #[test]
    fn the_table_has_a_header_and_a_line_per_checker() {
        let table = status_table(&sample());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("CHECKER"));
        assert!(lines[1].contains("2026-11-22T15:04:00+00:00"));
        assert!(lines[1].contains("#0:GOOD(7)"));
        assert!(lines[2].contains("never"));
        assert!(lines[2].ends_with("source \"x\": connection failed"));
    }

    #[test]
    fn json_has_every_field() {
        let value = status_json(&sample()[0]);
        assert_eq!(value["checker"], "new_executions");
        assert_eq!(value["last_minute"], 1_795_359_840);
        assert_eq!(value["requirements"][0]["status"], "GOOD");
        assert_eq!(value["pending_deliveries"], 0);
        assert!(value["last_error"].is_null());
    }
}
