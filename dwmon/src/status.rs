//! `dwmon status`: what the store knows about each checker, as a table or JSON lines.

use crate::args::local_rfc3339;
use chrono_tz::Tz;
use dwmon_alert::{AlertOverview, AlertPhase};
use dwmon_core::CheckerStatus;
use std::fmt::Write;

pub(crate) use crate::printer::one_line;

/// One JSON object for a checker's status; `last_minute_local` is in `zone`.
pub fn status_json(status: &CheckerStatus, zone: Tz) -> serde_json::Value {
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
        "last_minute_local": status.last_minute.map(|m| local_rfc3339(m, zone)),
        "requirements": requirements,
        "pending_deliveries": status.pending_deliveries,
        "last_error": status.last_error.as_ref().map(|(minute, message)| serde_json::json!({
            "minute": minute,
            "error": message,
        })),
        "stored_rows": status.stored_rows,
        "oldest_row": status.oldest_row,
        "oldest_row_local": status.oldest_row.map(|t| local_rfc3339(t, zone)),
        "oldest_check": status.oldest_check,
        "oldest_check_local": status.oldest_check.map(|m| local_rfc3339(m, zone)),
        "given_up_deliveries": status.given_up_deliveries,
        "last_give_up": status.last_give_up.as_ref().map(|(minute, message)| serde_json::json!({
            "minute": minute,
            "minute_local": local_rfc3339(*minute, zone),
            "error": message,
        })),
    })
}

/// `2026-11-25 14:04` in `zone`: the compact time of the history columns.
fn short_time(t: i64, zone: Tz) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// A table for people: one line per checker, times in `zone`.
pub fn status_table(statuses: &[CheckerStatus], zone: Tz) -> String {
    table(statuses, None, zone)
}

/// [`status_table`] with an ALERTS column (firing requirements, BAD streaks, source errors,
/// pauses, undelivered notifications) and, below it, one line per thing that needs
/// attention ([`AlertOverview::lines`] at `now`).
pub fn status_table_with_alerts(
    statuses: &[CheckerStatus],
    overview: &AlertOverview,
    now: i64,
    zone: Tz,
) -> String {
    let mut out = table(statuses, Some((overview, now)), zone);
    let lines = overview.lines(now);
    if !lines.is_empty() {
        out.push_str("\nalerts:\n");
        for line in lines {
            let _ = writeln!(out, "  {}", one_line(&line));
        }
    }
    out
}

fn table(statuses: &[CheckerStatus], alerts: Option<(&AlertOverview, i64)>, zone: Tz) -> String {
    if statuses.is_empty() {
        return "no checkers in this store yet\n".to_string();
    }
    let last_check = format!("LAST CHECK ({})", zone.name());
    let mut header = vec![
        "CHECKER",
        last_check.as_str(),
        "REQUIREMENTS",
        "PENDING",
        "ROWS",
        "ROWS FROM",
        "CHECKS FROM",
        "LAST ERROR",
    ];
    if alerts.is_some() {
        header.insert(7, "ALERTS");
    }
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let requirements = s
                .requirements
                .iter()
                .map(|r| {
                    if dwmon_core::monitor::is_monitor_record(&s.checker) {
                        // A monitor's record has no count of its own.
                        format!("#{}:{}", r.requirement_index, r.status)
                    } else {
                        format!("#{}:{}({})", r.requirement_index, r.status, r.count)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            let mut row = vec![
                s.checker.clone(),
                s.last_minute
                    .map(|m| local_rfc3339(m, zone))
                    .unwrap_or_else(|| "never".into()),
                if requirements.is_empty() {
                    "-".into()
                } else {
                    requirements
                },
                s.pending_deliveries.to_string(),
                s.stored_rows.to_string(),
                s.oldest_row
                    .map(|t| short_time(t, zone))
                    .unwrap_or_else(|| "-".into()),
                s.oldest_check
                    .map(|m| short_time(m, zone))
                    .unwrap_or_else(|| "-".into()),
                s.last_error
                    .as_ref()
                    .map(|(minute, message)| {
                        format!("{} {}", local_rfc3339(*minute, zone), one_line(message))
                    })
                    .unwrap_or_else(|| "-".into()),
            ];
            if let Some((overview, now)) = alerts {
                row.insert(7, alert_summary(overview, &s.checker, now));
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
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
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    let given_up: Vec<&CheckerStatus> = statuses
        .iter()
        .filter(|s| s.given_up_deliveries > 0)
        .collect();
    if !given_up.is_empty() {
        out.push_str("\ndeliveries given up:\n");
        for s in given_up {
            let last = s
                .last_give_up
                .as_ref()
                .map(|(minute, message)| {
                    format!(
                        ", last at {}: {}",
                        local_rfc3339(*minute, zone),
                        one_line(message)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(out, "  {}: {}{last}", s.checker, s.given_up_deliveries);
        }
    }
    out
}

/// The ALERTS cell of `checker`: `PAUSED`, `#i:FIRING(severity)`, `#i:NxBAD` (a BAD streak
/// not firing yet), `SOURCE-ERROR`, `N unsent`, or `-` when all is quiet.
pub fn alert_summary(overview: &AlertOverview, checker: &str, now: i64) -> String {
    let mut parts = Vec::new();
    if overview
        .pauses
        .iter()
        .any(|(c, p)| c == checker && p.is_active(now))
    {
        parts.push("PAUSED".to_string());
    }
    if overview
        .sources
        .iter()
        .any(|(c, s)| c == checker && s.failing)
    {
        parts.push("SOURCE-ERROR".to_string());
    }
    for entry in overview.alerts.iter().filter(|e| e.checker == checker) {
        let state = &entry.state;
        match state.phase {
            AlertPhase::Firing => parts.push(format!(
                "#{}:FIRING({})",
                entry.requirement_index, state.severity
            )),
            AlertPhase::Ok if state.consecutive_bad > 0 => parts.push(format!(
                "#{}:{}xBAD",
                entry.requirement_index, state.consecutive_bad
            )),
            AlertPhase::Ok => {}
        }
    }
    let unsent = overview
        .pending
        .iter()
        .filter(|p| p.notification.checker == checker)
        .count();
    if unsent > 0 {
        parts.push(format!("{unsent} unsent"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// The `"alerts"` object of `checker` in `status --json`: its pause (with `active` at
/// `now`), per requirement its alert state, its source state, and how many notifications are
/// not yet delivered.
pub fn alert_json(overview: &AlertOverview, checker: &str, now: i64) -> serde_json::Value {
    let pause = overview
        .pauses
        .iter()
        .find(|(c, _)| c == checker)
        .map(|(_, p)| {
            serde_json::json!({
                "since": p.since,
                "until": p.until,
                "comment": p.comment,
                "active": p.is_active(now),
            })
        });
    let requirements: Vec<serde_json::Value> = overview
        .alerts
        .iter()
        .filter(|e| e.checker == checker)
        .map(|e| {
            let s = &e.state;
            serde_json::json!({
                "requirement_index": e.requirement_index,
                "phase": s.phase,
                "severity": s.severity,
                "consecutive_bad": s.consecutive_bad,
                "consecutive_good": s.consecutive_good,
                "firing_since": s.firing_since,
                "announced": s.announced,
                "last_notified": s.last_notified,
            })
        })
        .collect();
    let source = overview
        .sources
        .iter()
        .find(|(c, _)| c == checker)
        .map(|(_, s)| {
            serde_json::json!({
                "failing": s.failing,
                "since": s.since,
                "last_error": s.last_error,
                "announced": s.announced,
            })
        });
    let unsent = overview
        .pending
        .iter()
        .filter(|p| p.notification.checker == checker)
        .count();
    serde_json::json!({
        "paused": pause,
        "requirements": requirements,
        "source": source,
        "undelivered_notifications": unsent,
    })
}

/// Adds an empty status for every checker the alert store knows (e.g. paused with
/// `--force` before its first run) but the dwmon store does not, keeping the order by name.
pub fn add_alert_only_checkers(statuses: &mut Vec<CheckerStatus>, overview: &AlertOverview) {
    let names = overview
        .pauses
        .iter()
        .map(|(c, _)| c)
        .chain(overview.sources.iter().map(|(c, _)| c))
        .chain(overview.alerts.iter().map(|e| &e.checker));
    let mut added = false;
    for name in names {
        if !statuses.iter().any(|s| &s.checker == name) {
            statuses.push(CheckerStatus {
                checker: name.clone(),
                ..CheckerStatus::default()
            });
            added = true;
        }
    }
    if added {
        statuses.sort_by(|a, b| a.checker.cmp(&b.checker));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::MAX_SHOWN_ERROR_CHARS;
    use dwmon_core::store::RequirementStatus;
    use dwmon_core::Status;

    #[test]
    fn one_line_joins_lines_and_cuts_runaway_text() {
        assert_eq!(
            one_line("near \";\": syntax error in SELECT a,\n  b\nFROM t"),
            "near \";\": syntax error in SELECT a, b FROM t"
        );
        let huge = format!("syntax error in SELECT {}", "x ".repeat(1_000_000));
        let shown = one_line(&huge);
        assert_eq!(
            shown.chars().count(),
            MAX_SHOWN_ERROR_CHARS + " [...]".len()
        );
        assert!(shown.ends_with(" [...]"), "{shown}");
        let wide = "é".repeat(2 * MAX_SHOWN_ERROR_CHARS);
        assert_eq!(one_line(&wide).chars().count(), MAX_SHOWN_ERROR_CHARS + 6);
    }

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
                oldest_row: Some(1_795_359_840 - 7 * 86_400 + 5),
                oldest_check: Some(1_795_359_840 - 86_400),
                ..CheckerStatus::default()
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
        let table = status_table(&sample(), chrono_tz::UTC);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("CHECKER"));
        assert!(lines[0].contains("LAST CHECK (UTC)"));
        assert!(lines[1].contains("2026-11-22T15:04:00+00:00"));
        assert!(lines[1].contains("#0:GOOD(7)"));
        assert!(
            lines[0].contains("ROWS FROM") && lines[0].contains("CHECKS FROM"),
            "{table}"
        );
        assert!(
            lines[1].contains("2026-11-15 15:04  2026-11-21 15:04"),
            "{table}"
        );
        assert!(lines[2].contains("never"));
        assert!(lines[2].ends_with("source \"x\": connection failed"));
    }

    #[test]
    fn the_table_shows_times_in_the_chosen_zone() {
        let table = status_table(&sample(), chrono_tz::America::New_York);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains("LAST CHECK (America/New_York)"),
            "{table}"
        );
        assert!(lines[1].contains("2026-11-22T10:04:00-05:00"), "{table}");
        assert!(
            lines[2].contains("2026-11-22T10:04:00-05:00 source"),
            "{table}"
        );
    }

    #[test]
    fn json_has_every_field() {
        let value = status_json(&sample()[0], chrono_tz::Asia::Tokyo);
        assert_eq!(value["checker"], "new_executions");
        assert_eq!(value["last_minute_utc"], "2026-11-22T15:04:00+00:00");
        assert_eq!(value["last_minute_local"], "2026-11-23T00:04:00+09:00");
        assert_eq!(value["last_minute"], 1_795_359_840);
        assert_eq!(value["requirements"][0]["status"], "GOOD");
        assert_eq!(value["pending_deliveries"], 0);
        assert!(value["last_error"].is_null());
        assert_eq!(value["oldest_check"], 1_795_359_840 - 86_400);
        assert_eq!(value["oldest_row_local"], "2026-11-16T00:04:05+09:00");
        assert_eq!(value["given_up_deliveries"], 0);
        assert!(value["last_give_up"].is_null());
    }

    #[test]
    fn given_up_deliveries_are_listed_below_the_table() {
        let mut statuses = sample();
        statuses[1].given_up_deliveries = 3;
        statuses[1].last_give_up = Some((
            1_795_359_840,
            "delivery given up for checker \"broken\": target \"alerts/webhook:ops\"".into(),
        ));
        let table = status_table(&statuses, chrono_tz::UTC);
        assert!(
            table.ends_with(
                "\ndeliveries given up:\n  broken: 3, last at 2026-11-22T15:04:00+00:00: \
                 delivery given up for checker \"broken\": target \"alerts/webhook:ops\"\n"
            ),
            "{table}"
        );
        let value = status_json(&statuses[1], chrono_tz::UTC);
        assert_eq!(value["given_up_deliveries"], 3);
        assert_eq!(value["last_give_up"]["minute"], 1_795_359_840);
    }
}
