//! `/metrics`: the Prometheus text exposition format (version 0.0.4).
//!
//! Names follow Prometheus' conventions: the `dwmon_` prefix, base units (seconds), `_total`
//! only on counters, timestamps as `_timestamp_seconds`, one 0/1 series per state instead of
//! an enum-valued gauge, and label values only from configuration (checker names,
//! requirement indexes, source names, fixed words), never from rows or errors. README
//! "Metrics" lists every series.

use crate::stats::{StatsSnapshot, FETCH_BUCKETS, STATUSES};
use crate::ServerState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dwmon_alert::{AlertOverview, AlertPhase};
use dwmon_core::{CheckerStatus, OutboxSummary, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` route.
pub fn router() -> Router<ServerState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<ServerState>) -> Response {
    let snapshot = state.stats.as_ref().map(|s| s.snapshot());
    let now = snapshot
        .as_ref()
        .map_or_else(|| chrono::Utc::now().timestamp(), |s| s.now);
    let store = match (
        state.store.status().await,
        state.store.outbox_summary().await,
    ) {
        (Ok(statuses), Ok(outbox)) => Some((statuses, outbox)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "/metrics: cannot read the store");
            None
        }
    };
    // The last GOOD minutes as stored, so that they survive a restart: one batched read for
    // every checker the store or the runner knows.
    let last_good = match &store {
        Some((statuses, _)) => {
            let mut names: BTreeSet<&str> = statuses.iter().map(|s| s.checker.as_str()).collect();
            if let Some(stats) = &snapshot {
                names.extend(stats.checkers.iter().map(|c| c.name.as_str()));
            }
            let names: Vec<String> = names.into_iter().map(str::to_string).collect();
            match state.store.last_good_minutes(&names).await {
                Ok(minutes) => minutes,
                Err(e) => {
                    tracing::warn!(error = %e, "/metrics: cannot read the last GOOD minutes");
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    let overview = match &state.alerts {
        Some(alerts) => match alerts.overview().await {
            Ok(overview) => Some(overview),
            Err(e) => {
                tracing::warn!(error = %e, "/metrics: cannot read the alert states");
                None
            }
        },
        None => None,
    };
    let input = MetricsInput {
        now,
        stats: snapshot.as_ref(),
        store: store.as_ref().map(|(s, o)| (s.as_slice(), *o)),
        alerts: overview.as_ref(),
        last_good: &last_good,
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        render(&input),
    )
        .into_response()
}

/// What one scrape reads.
#[derive(Debug, Clone, Copy)]
pub struct MetricsInput<'a> {
    /// The runner clock now (timestamps and ages are measured against it).
    pub now: i64,
    /// What the runner published; `None` for a server without a runner.
    pub stats: Option<&'a StatsSnapshot>,
    /// The store's view; `None` when the store could not be read (`dwmon_store_up 0`).
    pub store: Option<(&'a [CheckerStatus], OutboxSummary)>,
    /// Alert states and pauses, when alerting is on.
    pub alerts: Option<&'a AlertOverview>,
    /// The latest GOOD minute of each requirement line as stored
    /// ([`StoreView::last_good_minutes`](dwmon_core::StoreView::last_good_minutes)); merged
    /// with the runner's own ([`StatsSnapshot::last_good`]), the later of the two wins.
    pub last_good: &'a [(String, usize, i64)],
}

/// A label value in the text format: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float sample value: integers without a fraction, `+Inf`/`NaN` spelled as Prometheus does.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The lowercase label value of a status.
fn status_label(status: Status) -> &'static str {
    match status {
        Status::Good => "good",
        Status::Bad => "bad",
        Status::Error => "error",
        Status::Missed => "missed",
    }
}

/// One requirement line as the metrics see it.
struct Line<'a> {
    checker: &'a str,
    index: usize,
    bounds: Option<(u64, u64)>,
    last: Option<&'a dwmon_core::store::RequirementStatus>,
}

/// Renders every series for `input`, in the text format.
pub fn render(input: &MetricsInput<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    family(
        &mut out,
        "dwmon_build_info",
        "gauge",
        "Always 1; the version of the dwmon serving these metrics.",
    );
    let _ = writeln!(
        out,
        "dwmon_build_info{{version=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION"))
    );
    family(
        &mut out,
        "dwmon_store_up",
        "gauge",
        "1 if the store could be read for this scrape, else 0.",
    );
    let _ = writeln!(out, "dwmon_store_up {}", u8::from(input.store.is_some()));
    requirement_series(&mut out, input);
    if let Some((_, outbox)) = input.store {
        family(
            &mut out,
            "dwmon_outbox_pending",
            "gauge",
            "Check records in the outbox not yet delivered to the handler.",
        );
        let _ = writeln!(out, "dwmon_outbox_pending {}", outbox.pending);
        family(
            &mut out,
            "dwmon_outbox_oldest_age_seconds",
            "gauge",
            "Seconds since the checked minute of the oldest undelivered record (0 when empty).",
        );
        let age = outbox
            .oldest_minute
            .map_or(0, |m| input.now.saturating_sub(m).max(0));
        let _ = writeln!(out, "dwmon_outbox_oldest_age_seconds {age}");
    }
    if let Some(stats) = input.stats {
        runner_series(&mut out, stats, input.now);
    }
    out
}

fn requirement_series(out: &mut String, input: &MetricsInput<'_>) {
    let statuses: BTreeMap<&str, &CheckerStatus> = input
        .store
        .map(|(s, _)| s.iter().map(|s| (s.checker.as_str(), s)).collect())
        .unwrap_or_default();
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut checkers: BTreeSet<&str> = BTreeSet::new();
    match input.stats {
        Some(stats) if !stats.checkers.is_empty() || input.store.is_none() => {
            for checker in stats.checkers.iter() {
                checkers.insert(&checker.name);
                let status = statuses.get(checker.name.as_str());
                for (index, requirement) in checker.requirements.iter().enumerate() {
                    lines.push(Line {
                        checker: &checker.name,
                        index,
                        bounds: Some((requirement.min, requirement.max)),
                        last: status.and_then(|s| {
                            s.requirements.iter().find(|r| r.requirement_index == index)
                        }),
                    });
                }
            }
            // Monitors are configured in the program, not in checker files.
            for (name, status) in &statuses {
                if dwmon_core::monitor::is_monitor_record(name) {
                    checkers.insert(name);
                    push_stored(&mut lines, name, status);
                }
            }
        }
        _ => {
            for (name, status) in &statuses {
                checkers.insert(name);
                push_stored(&mut lines, name, status);
            }
        }
    }
    lines.sort_by(|a, b| (a.checker, a.index).cmp(&(b.checker, b.index)));
    family(
        out,
        "dwmon_checkers",
        "gauge",
        "Checkers (and monitors) the metrics describe.",
    );
    let _ = writeln!(out, "dwmon_checkers {}", checkers.len());

    family(
        out,
        "dwmon_requirement_state",
        "gauge",
        "1 for the status of the requirement's last check (good, bad, error, missed), 0 for the others.",
    );
    for line in &lines {
        let Some(last) = line.last else { continue };
        for status in STATUSES {
            let _ = writeln!(
                out,
                "dwmon_requirement_state{{checker=\"{}\",requirement=\"{}\",state=\"{}\"}} {}",
                label(line.checker),
                line.index,
                status_label(status),
                u8::from(last.status == status)
            );
        }
    }
    let gauges: [(&str, &str); 4] = [
        (
            "dwmon_requirement_rows",
            "Rows counted by the requirement's last check.",
        ),
        (
            "dwmon_requirement_min",
            "MINNUM of the requirement: the lowest GOOD count.",
        ),
        (
            "dwmon_requirement_max",
            "MAXNUM of the requirement: the highest GOOD count.",
        ),
        (
            "dwmon_requirement_last_checked_timestamp_seconds",
            "The minute of the requirement's last check, as a Unix time.",
        ),
    ];
    for (i, (name, help)) in gauges.iter().enumerate() {
        family(out, name, "gauge", help);
        for line in &lines {
            let value = match i {
                0 => line.last.map(|l| l.count),
                1 => line.bounds.map(|b| b.0),
                2 => line.bounds.map(|b| b.1),
                _ => line.last.and_then(|l| u64::try_from(l.minute).ok()),
            };
            if let Some(value) = value {
                let _ = writeln!(
                    out,
                    "{name}{{checker=\"{}\",requirement=\"{}\"}} {value}",
                    label(line.checker),
                    line.index
                );
            }
        }
    }
    family(
        out,
        "dwmon_requirement_last_good_timestamp_seconds",
        "gauge",
        "The latest minute the requirement was judged GOOD, as a Unix time (absent until it is).",
    );
    let stored: HashMap<(&str, usize), i64> = input
        .last_good
        .iter()
        .map(|(checker, index, minute)| ((checker.as_str(), *index), *minute))
        .collect();
    for line in &lines {
        let recorded = stored.get(&(line.checker, line.index)).copied();
        let seen = input
            .stats
            .and_then(|s| s.last_good.get(&(line.checker.to_string(), line.index)))
            .copied();
        if let Some(minute) = recorded.max(seen) {
            let _ = writeln!(
                out,
                "dwmon_requirement_last_good_timestamp_seconds{{checker=\"{}\",requirement=\"{}\"}} {minute}",
                label(line.checker),
                line.index
            );
        }
    }
    if let Some(alerts) = input.alerts {
        family(
            out,
            "dwmon_requirement_firing",
            "gauge",
            "1 while the requirement's alert is FIRING, else 0.",
        );
        for line in &lines {
            let firing = alerts.alerts.iter().any(|e| {
                e.checker == line.checker
                    && e.requirement_index == line.index
                    && e.state.phase == AlertPhase::Firing
            });
            let _ = writeln!(
                out,
                "dwmon_requirement_firing{{checker=\"{}\",requirement=\"{}\"}} {}",
                label(line.checker),
                line.index,
                u8::from(firing)
            );
        }
        family(
            out,
            "dwmon_checker_paused",
            "gauge",
            "1 while the checker is paused (dwmon pause), else 0.",
        );
        for checker in &checkers {
            let paused = alerts
                .pauses
                .iter()
                .any(|(c, p)| c == checker && p.is_active(input.now));
            let _ = writeln!(
                out,
                "dwmon_checker_paused{{checker=\"{}\"}} {}",
                label(checker),
                u8::from(paused)
            );
        }
    }
}

fn push_stored<'a>(lines: &mut Vec<Line<'a>>, name: &'a str, status: &'a CheckerStatus) {
    for requirement in &status.requirements {
        lines.push(Line {
            checker: name,
            index: requirement.requirement_index,
            bounds: None,
            last: Some(requirement),
        });
    }
}

fn runner_series(out: &mut String, stats: &StatsSnapshot, now: i64) {
    family(
        out,
        "dwmon_checks_total",
        "counter",
        "Checks this runner recorded, by status (missed: due minutes that left the horizon unchecked).",
    );
    for (status, count) in STATUSES.iter().zip(stats.checks) {
        let _ = writeln!(
            out,
            "dwmon_checks_total{{status=\"{}\"}} {count}",
            status_label(*status)
        );
    }
    family(
        out,
        "dwmon_fetch_duration_seconds",
        "histogram",
        "How long fetching a checker's rows took, by __SOURCE__ name.",
    );
    for (source, fetch) in &stats.fetches {
        let source = label(source);
        let mut cumulative = 0;
        for (upper, n) in FETCH_BUCKETS.iter().zip(fetch.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "dwmon_fetch_duration_seconds_bucket{{source=\"{source}\",le=\"{}\"}} {cumulative}",
                number(*upper)
            );
        }
        let _ = writeln!(
            out,
            "dwmon_fetch_duration_seconds_bucket{{source=\"{source}\",le=\"+Inf\"}} {}",
            fetch.count
        );
        let _ = writeln!(
            out,
            "dwmon_fetch_duration_seconds_sum{{source=\"{source}\"}} {}",
            number(fetch.sum_seconds)
        );
        let _ = writeln!(
            out,
            "dwmon_fetch_duration_seconds_count{{source=\"{source}\"}} {}",
            fetch.count
        );
    }
    family(
        out,
        "dwmon_fetch_errors_total",
        "counter",
        "Fetches that failed (source down, query failed, timeout), by __SOURCE__ name.",
    );
    for (source, fetch) in &stats.fetches {
        let _ = writeln!(
            out,
            "dwmon_fetch_errors_total{{source=\"{}\"}} {}",
            label(source),
            fetch.errors
        );
    }
    family(
        out,
        "dwmon_deliveries_total",
        "counter",
        "Check record deliveries to the handler, by result (delivered, failed, given_up).",
    );
    let d = stats.deliveries;
    for (result, n) in [
        ("delivered", d.delivered),
        ("failed", d.failed),
        ("given_up", d.given_up),
    ] {
        let _ = writeln!(out, "dwmon_deliveries_total{{result=\"{result}\"}} {n}");
    }
    if !stats.notification_deliveries.is_empty() {
        family(
            out,
            "dwmon_notification_deliveries_total",
            "counter",
            "Alert notification deliveries, by channel and result (delivered, retry, gave_up).",
        );
        for (channel, counts) in &stats.notification_deliveries {
            for (result, n) in dwmon_alert::DeliveryResult::ALL.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "dwmon_notification_deliveries_total{{channel=\"{}\",result=\"{}\"}} {n}",
                    channel.as_str(),
                    result.as_str()
                );
            }
        }
    }
    if !stats.pings.is_empty() {
        family(
            out,
            "dwmon_pings_total",
            "counter",
            "Pings received by push checkers, by kind and answer.",
        );
        for ((kind, answer), n) in &stats.pings {
            let _ = writeln!(
                out,
                "dwmon_pings_total{{kind=\"{}\",answer=\"{}\"}} {n}",
                label(kind),
                label(answer)
            );
        }
    }
    family(
        out,
        "dwmon_cycles_total",
        "counter",
        "Cycles this runner finished.",
    );
    let _ = writeln!(out, "dwmon_cycles_total {}", stats.cycles);
    family(
        out,
        "dwmon_start_timestamp_seconds",
        "gauge",
        "When this runner started, as a Unix time.",
    );
    let _ = writeln!(out, "dwmon_start_timestamp_seconds {}", stats.started_at);
    if let Some(last) = stats.last_cycle {
        family(
            out,
            "dwmon_last_cycle_timestamp_seconds",
            "gauge",
            "When the last cycle finished, as a Unix time.",
        );
        let _ = writeln!(
            out,
            "dwmon_last_cycle_timestamp_seconds {}",
            last.finished_at
        );
        family(
            out,
            "dwmon_cycle_duration_seconds",
            "gauge",
            "How long the last cycle took.",
        );
        let _ = writeln!(
            out,
            "dwmon_cycle_duration_seconds {}",
            number(last.duration.as_secs_f64())
        );
    }
    family(
        out,
        "dwmon_cycle_lag_seconds",
        "gauge",
        "How far the runner is behind its clock: 0 while cycles keep up, growing while none finishes.",
    );
    let lag = stats.lag_at(now);
    let _ = writeln!(out, "dwmon_cycle_lag_seconds {lag}");
    if let Some(skew) = stats.clock_skew_seconds {
        family(
            out,
            "dwmon_clock_skew_seconds",
            "gauge",
            "The database's clock minus this host's, as last measured (a runner on a PostgreSQL store runs on the database's clock).",
        );
        let _ = writeln!(out, "dwmon_clock_skew_seconds {}", number(skew));
    }
}
