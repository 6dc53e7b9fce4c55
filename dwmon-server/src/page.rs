//! The status page: server-rendered HTML, no external assets, usable with JavaScript off
//! (a small same-origin script reloads it every 10 s), `Content-Security-Policy: default-src
//! 'self'`, readable at 360 px.
//!
//! - `/`: every checker and requirement line with its state, count against MINNUM..MAXNUM,
//!   last checked and next due minute (in the checker's zone), a bar of the last 90 checks,
//!   uptime over 24 h / 7 d / 30 d and the last error.
//! - `/checkers/{name}`: its lines, an SVG band chart, recent checks, alert states and their
//!   history (not in public mode), pings, and pause/unpause buttons for a read-write session.
//! - `/session` (`POST token=...`): signs in with a token (kept in an `HttpOnly`,
//!   `SameSite=Strict` cookie); `/session/end` signs out.
//!
//! Everything shown is HTML-escaped ([`escape`]). In public mode a request without a token
//! sees names and states only.

use crate::api::{self, local, PauseRequest};
use crate::auth::{self, Access};
use crate::view::{self, CheckerView, Overview, State as CheckerState};
use crate::ServerState;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dwmon_core::{CheckRecord, Status};
use std::fmt::Write;

/// The `Content-Security-Policy` of every page: nothing but this origin; no framing.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How many recent checks the overview's bar shows per requirement line.
pub const BAR_CHECKS: usize = 90;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    dwmon_core::svg::escape(text)
}

const CSS: &str = include_str!("page/dwmon.css");
const JS: &str = include_str!("page/dwmon.js");

/// The status page's routes.
pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/", get(overview))
        .route("/checkers/{name}", get(checker))
        .route("/checkers/{name}/pause", post(pause))
        .route("/checkers/{name}/unpause", post(unpause))
        .route("/session", post(sign_in))
        .route("/session/end", post(sign_out))
        .route("/static/dwmon.css", get(css))
        .route("/static/dwmon.js", get(js))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// An HTML answer with the page's security headers. `Referrer-Policy: same-origin`, not
/// `no-referrer`: with the latter browsers send `Origin: null` on the page's own form posts,
/// which [`same_origin`] must refuse.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><link rel=stylesheet href=/static/dwmon.css>\
         <script src=/static/dwmon.js defer></script></head><body>",
        escape(title)
    );
}

/// The header bar: title, the session (sign in / signed in as ... / sign out).
fn top(out: &mut String, access: Access, summary: &str) {
    let _ = write!(
        out,
        "<header><h1><a href=/>dwmon</a></h1><p class=sum>{}</p>",
        escape(summary)
    );
    match access {
        Access::Public => out.push_str(
            "<form class=who method=post action=/session><input type=password name=token \
             placeholder=token aria-label=token required><button>Sign in</button></form>",
        ),
        Access::Read | Access::Write => {
            let _ = write!(
                out,
                "<form class=who method=post action=/session/end><span>{} access</span> \
                 <button>Sign out</button></form>",
                access.as_str()
            );
        }
    }
    out.push_str("</header>");
}

/// The page asking for a token (no anonymous access, or a refused token).
fn sign_in_page(message: &str) -> Response {
    let mut out = String::new();
    head(&mut out, "dwmon: sign in");
    let _ = write!(
        out,
        "<header><h1>dwmon</h1></header><main><h2>Sign in</h2><p>{}</p>\
         <form method=post action=/session><input type=password name=token \
         placeholder=\"API token\" aria-label=token required autofocus> \
         <button>Sign in</button></form></main></body></html>",
        escape(message)
    );
    html(StatusCode::UNAUTHORIZED, out)
}

/// The access of a page request; `Err` is the answer to give instead.
async fn page_access(state: &ServerState, headers: &HeaderMap) -> Result<Access, Response> {
    match api::access(state, headers, true).await {
        Ok(Some(access)) => Ok(access),
        Ok(None) => Err(sign_in_page(
            "This dwmon needs a token to show its checkers (a read token, or a write token to \
             pause them).",
        )),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let mut answer = sign_in_page(&e.message);
            answer
                .headers_mut()
                .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
            Err(answer)
        }
        Err(e) => Err(html(
            e.status,
            format!("<!doctype html><p>{}", escape(&e.message)),
        )),
    }
}

const CLEAR_COOKIE: &str = "dwmon_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";

fn state_class(state: CheckerState) -> &'static str {
    match state {
        CheckerState::Good => "g",
        CheckerState::Bad | CheckerState::Firing => "b",
        CheckerState::Error => "e",
        CheckerState::Missed => "m",
        CheckerState::Paused => "p",
        CheckerState::Pending => "n",
    }
}

fn status_class(status: Status) -> &'static str {
    match status {
        Status::Good => "g",
        Status::Bad => "b",
        Status::Error => "e",
        Status::Missed => "m",
    }
}

/// `2026-11-23 09:00` in `zone`; today's minutes as `09:00` only.
fn short(t: i64, now: i64, zone: chrono_tz::Tz) -> String {
    let (Some(at), Some(today)) = (
        chrono::DateTime::from_timestamp(t, 0),
        chrono::DateTime::from_timestamp(now, 0),
    ) else {
        return t.to_string();
    };
    let (at, today) = (at.with_timezone(&zone), today.with_timezone(&zone));
    if at.date_naive() == today.date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The bar of the last checks (oldest left): one SVG with a run of equal statuses per path.
fn bar(out: &mut String, statuses: &[Status]) {
    let n = BAR_CHECKS;
    out.push_str("<svg class=bar viewBox=\"0 0 90 1\" preserveAspectRatio=none>");
    let offset = n.saturating_sub(statuses.len());
    let mut i = 0;
    while i < statuses.len() {
        let status = statuses[i];
        let start = i;
        while i < statuses.len() && statuses[i] == status {
            i += 1;
        }
        let _ = write!(
            out,
            "<path class={} d=\"M{} .5h{}\"/>",
            status_class(status),
            offset + start,
            i - start
        );
    }
    out.push_str("</svg>");
}

/// The overall summary line of `overview`.
fn summary(overview: &Overview) -> String {
    let mut counts: Vec<(CheckerState, usize)> = Vec::new();
    for c in &overview.checkers {
        match counts.iter_mut().find(|(s, _)| *s == c.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.state, 1)),
        }
    }
    counts.sort_by_key(|(s, _)| *s as u8);
    let parts: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    format!(
        "{}: {} checker{}{}{}",
        overview.state().as_str(),
        overview.checkers.len(),
        if overview.checkers.len() == 1 {
            ""
        } else {
            "s"
        },
        if parts.is_empty() { "" } else { ", " },
        parts.join(", ")
    )
}

fn runner_line(state: &ServerState, now: i64) -> String {
    let Some(stats) = &state.stats else {
        return String::new();
    };
    let snapshot = stats.snapshot();
    match snapshot.last_cycle {
        Some(last) => format!(
            " · last cycle {} ({:.2} s), lag {} s",
            short(last.finished_at, now, chrono_tz::UTC),
            last.duration.as_secs_f64(),
            snapshot.lag_at(now)
        ),
        None => " · no cycle yet".to_string(),
    }
}

async fn overview(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    let access = match page_access(&state, &headers).await {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let overview = match view::load(&state).await {
        Ok(overview) => overview,
        Err(e) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "<!doctype html><p>cannot read the store: {}",
                    escape(&e.to_string())
                ),
            )
        }
    };
    // The bars: the statuses of the last checks of every line of every checker, in one read.
    let names: Vec<String> = overview.checkers.iter().map(|c| c.name.clone()).collect();
    let bars = match state.store.status_histories(&names, BAR_CHECKS, &[]).await {
        Ok(histories) => histories,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the recent checks");
            Vec::new()
        }
    };
    let uptimes = crate::uptime::overview(&state, &overview).await;
    let now = overview.now;
    let summary = summary(&overview);
    let mut out = String::with_capacity(300 * overview.checkers.len() + 4096);
    head(&mut out, &format!("dwmon: {}", overview.state().as_str()));
    top(
        &mut out,
        access,
        &format!("{summary}{}", runner_line(&state, now)),
    );
    out.push_str(
        "<main><table class=ov><thead><tr><th>checker<th>state<th>count<th>MIN..MAX\
         <th>checked<th>next due<th>last 90 checks<th>24 h<th>7 d<th>30 d<th>last error\
         <tbody>",
    );
    if overview.checkers.is_empty() {
        out.push_str("<tr><td colspan=11>no checkers yet");
    }
    let no_history = dwmon_core::StatusHistory::default();
    for (i, c) in overview.checkers.iter().enumerate() {
        let history = bars.get(i).unwrap_or(&no_history);
        let public = access == Access::Public;
        let rows = c.requirements.len().max(1);
        for i in 0..rows {
            let r = c.requirements.get(i);
            let state = match r.and_then(|r| r.last.as_ref()) {
                _ if c.state == CheckerState::Paused => CheckerState::Paused,
                _ if r.is_some_and(|r| r.firing) => CheckerState::Firing,
                Some(last) => match last.status {
                    Status::Good => CheckerState::Good,
                    Status::Bad => CheckerState::Bad,
                    Status::Error => CheckerState::Error,
                    Status::Missed => CheckerState::Missed,
                },
                None if c.failing => CheckerState::Error,
                None => CheckerState::Pending,
            };
            let _ = write!(out, "<tr class={}>", state_class(state));
            if i == 0 {
                let _ = write!(
                    out,
                    "<td><a href=\"/checkers/{}\">{}</a>",
                    escape(&c.name),
                    escape(&c.name)
                );
            } else {
                out.push_str("<td>");
            }
            if rows > 1 {
                let _ = write!(out, " <small>#{i}</small>");
            }
            let _ = write!(out, "<td><b>{}</b>", state.as_str());
            let last = r.and_then(|r| r.last.as_ref());
            match last {
                Some(l) if !dwmon_core::monitor::is_monitor_record(&c.name) => {
                    let _ = write!(out, "<td>{}", l.count);
                }
                _ => out.push_str("<td>-"),
            }
            match r.and_then(|r| r.bounds) {
                Some((min, max)) => {
                    let _ = write!(out, "<td>{min}..{max}");
                }
                None => out.push_str("<td>"),
            }
            match last {
                Some(l) => {
                    let _ = write!(out, "<td>{}", short(l.minute, now, c.zone));
                }
                None => out.push_str("<td>never"),
            }
            match r.and_then(|r| r.next_due) {
                Some(due) => {
                    let _ = write!(out, "<td>{}", short(due, now, c.zone));
                }
                None => out.push_str("<td>"),
            }
            out.push_str("<td>");
            let index = r.map_or(0, |r| r.index);
            let mut line: Vec<Status> = history
                .recent
                .iter()
                .find(|(ri, _)| *ri == index)
                .map(|(_, checks)| checks.iter().map(|(_, s)| *s).collect())
                .unwrap_or_default();
            line.reverse();
            bar(&mut out, &line);
            for window in 0..3 {
                match uptimes
                    .get(&(c.name.clone(), index))
                    .and_then(|u| u[window])
                {
                    Some(percent) => {
                        let _ = write!(out, "<td>{}", format_percent(percent));
                    }
                    None => out.push_str("<td>"),
                }
            }
            out.push_str("<td>");
            if i == 0 && !public {
                if let Some((minute, error)) = c.last_error() {
                    let _ = write!(
                        out,
                        "<span class=err>{} {}</span>",
                        short(*minute, now, c.zone),
                        escape(&one_line(error, 160))
                    );
                }
            }
        }
    }
    out.push_str("</table>");
    let _ = write!(
        out,
        "<p class=foot>Times in each checker's zone. Uptime: GOOD checks among GOOD and BAD \
         ones{}. Updated {}.</p></main></body></html>",
        crate::uptime::NOTE,
        short(now, now, chrono_tz::UTC)
    );
    html(StatusCode::OK, out)
}

fn format_percent(p: f64) -> String {
    if p >= 100.0 {
        "100%".into()
    } else if p >= 99.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line
    }
}

/// The band chart of one requirement line's checks (oldest left): the count per checked
/// minute as dots joined by a line, the MINNUM..MAXNUM band shaded, BAD minutes in red.
pub fn band_chart(title: &str, records: &[&CheckRecord], zone: chrono_tz::Tz) -> String {
    use dwmon_core::svg::{Anchor, Svg};
    let (width, height) = (640.0, 220.0);
    let (left, right, top, bottom) = (44.0, 10.0, 30.0, 30.0);
    let mut svg = Svg::new(width, height);
    svg.text(left, 18.0, Anchor::Start, title);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    if records.is_empty() {
        svg.text(width / 2.0, height / 2.0, Anchor::Middle, "no checks yet");
        return svg.finish();
    }
    let top_value = records
        .iter()
        .map(|r| {
            r.count
                .max(r.max.min(r.count.saturating_mul(2).max(r.min)))
                .max(r.min)
        })
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let y = |v: u64| top + plot_h - (v as f64 / top_value).min(1.0) * plot_h;
    let n = records.len();
    let x = |i: usize| {
        if n == 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    // The band: one rectangle per run of equal bounds.
    let mut i = 0;
    while i < n {
        let (min, max) = (records[i].min, records[i].max);
        let start = i;
        while i < n && (records[i].min, records[i].max) == (min, max) {
            i += 1;
        }
        let x0 = if start == 0 {
            left
        } else {
            (x(start - 1) + x(start)) / 2.0
        };
        let x1 = if i == n {
            left + plot_w
        } else {
            (x(i - 1) + x(i)) / 2.0
        };
        let _ = writeln!(
            svg,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2ca02c" fill-opacity="0.15"/>"##,
            y(max),
            (x1 - x0).max(0.5),
            (y(min) - y(max)).max(0.5)
        );
    }
    let points: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(r.count)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##,
        points.join(" ")
    );
    for (i, r) in records.iter().enumerate() {
        let (fill, radius) = match r.status {
            Status::Good => ("#1f77b4", 2.0),
            Status::Bad => ("#d62728", 3.5),
            Status::Error => ("#ff7f0e", 3.5),
            Status::Missed => ("#7f7f7f", 2.5),
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{radius}" fill="{fill}"><title>{} {} {}</title></circle>"#,
            x(i),
            y(r.count),
            dwmon_core::svg::escape(&local(r.minute, zone)),
            r.status.as_str(),
            r.count
        );
    }
    // Axes: 0 and the top value; the first and last minute.
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/>"##,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    svg.text(left - 4.0, top + plot_h + 4.0, Anchor::End, "0");
    svg.text(
        left - 4.0,
        top + 4.0,
        Anchor::End,
        &format!("{}", top_value.round() as u64),
    );
    let first = records.first().map_or(0, |r| r.minute);
    let last = records.last().map_or(0, |r| r.minute);
    svg.text(
        left,
        height - 10.0,
        Anchor::Start,
        &short(first, last, zone),
    );
    svg.text(
        left + plot_w,
        height - 10.0,
        Anchor::End,
        &short(last, last, zone),
    );
    svg.finish()
}

async fn checker(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let access = match page_access(&state, &headers).await {
        Ok(access) => access,
        Err(answer) => return answer,
    };
    let found = match view::load_one(&state, &name).await {
        Ok(found) => found,
        Err(e) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "<!doctype html><p>cannot read the store: {}",
                    escape(&e.to_string())
                ),
            )
        }
    };
    let Some(c) = found else {
        let mut out = String::new();
        head(&mut out, "dwmon: no such checker");
        top(&mut out, access, "");
        let _ = write!(
            out,
            "<main><p>No checker named {}. <a href=/>All checkers</a></p></main></body></html>",
            escape(&name)
        );
        return html(StatusCode::NOT_FOUND, out);
    };
    let records = state
        .store
        .recent_checks(&name, 200)
        .await
        .unwrap_or_default();
    let now = view::now(&state);
    let uptime = crate::uptime::one(&state, &c, now).await;
    html(
        StatusCode::OK,
        checker_page(&state, access, &c, &records, &uptime, now).await,
    )
}

async fn checker_page(
    state: &ServerState,
    access: Access,
    c: &CheckerView,
    records: &[CheckRecord],
    uptime: &std::collections::HashMap<usize, [Option<f64>; 3]>,
    now: i64,
) -> String {
    let public = access == Access::Public;
    let zone = c.zone;
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, &format!("dwmon: {} {}", c.name, c.state.as_str()));
    top(
        &mut out,
        access,
        &format!("{}: {}", c.name, c.state.as_str()),
    );
    let _ = write!(
        out,
        "<main><p><a href=/>All checkers</a></p><h2 class={}>{} <b>{}</b></h2>",
        state_class(c.state),
        escape(&c.name),
        c.state.as_str()
    );
    if let Some(pause) = &c.pause {
        let until = pause.until.map_or("until unpaused".to_string(), |u| {
            format!("until {}", local(u, zone))
        });
        let _ = write!(
            out,
            "<p class=paused>Paused since {} {until}",
            local(pause.since, zone)
        );
        if let (false, Some(comment)) = (public, &pause.comment) {
            let _ = write!(out, ": <q>{}</q>", escape(comment));
        }
        out.push_str("</p>");
    }
    if access == Access::Write {
        if c.pause.is_some() {
            let _ = write!(
                out,
                "<form class=act method=post action=\"/checkers/{}/unpause\">\
                 <button>Unpause</button></form>",
                escape(&c.name)
            );
        } else {
            let _ = write!(
                out,
                "<form class=act method=post action=\"/checkers/{}/pause\">\
                 <label>for <input name=hours type=number min=0 step=any size=4 \
                 placeholder=\"∞\"> hours</label> \
                 <label>comment <input name=comment maxlength=500></label> \
                 <button>Pause</button></form>",
                escape(&c.name)
            );
        }
    }
    if !public {
        if let Some(checker) = &c.checker {
            let _ = write!(
                out,
                "<details><summary>Query, source and extra</summary><dl><dt>source<dd>{}\
                 <dt>zone<dd>{}<dt>query<dd><pre>{}</pre><dt>__EXTRA__<dd><pre>{}</pre></dl></details>",
                escape(&checker.source),
                escape(zone.name()),
                escape(&checker.query),
                escape(&serde_json::to_string_pretty(&checker.extra).unwrap_or_default())
            );
        }
        if let Some((minute, error)) = c.last_error() {
            let _ = write!(
                out,
                "<p class=err>Last error at {}: {}</p>",
                local(*minute, zone),
                escape(error)
            );
        }
    }
    out.push_str(
        "<h3>Requirement lines</h3><table><thead><tr><th>#<th>line<th>state<th>count\
         <th>MIN..MAX<th>checked<th>next due<th>24 h<th>7 d<th>30 d<tbody>",
    );
    for r in &c.requirements {
        let state = match (&r.last, r.firing) {
            (_, true) => CheckerState::Firing,
            (Some(l), false) => match l.status {
                Status::Good => CheckerState::Good,
                Status::Bad => CheckerState::Bad,
                Status::Error => CheckerState::Error,
                Status::Missed => CheckerState::Missed,
            },
            (None, false) => CheckerState::Pending,
        };
        let _ = write!(
            out,
            "<tr class={}><td>{}<td><code>{}</code><td><b>{}</b><td>{}<td>{}<td>{}<td>{}",
            state_class(state),
            r.index,
            escape(r.requirement.as_deref().unwrap_or("")),
            state.as_str(),
            r.last.as_ref().map_or("-".into(), |l| l.count.to_string()),
            r.bounds.map_or(String::new(), |(a, b)| format!("{a}..{b}")),
            r.last
                .as_ref()
                .map_or("never".into(), |l| local(l.minute, zone)),
            r.next_due.map_or(String::new(), |d| local(d, zone)),
        );
        for window in 0..3 {
            let value = uptime.get(&r.index).and_then(|u| u[window]);
            let _ = write!(out, "<td>{}", value.map(format_percent).unwrap_or_default());
        }
    }
    out.push_str("</table>");
    // One band chart per line, over its recent checks (oldest left).
    for r in &c.requirements {
        let mut line: Vec<&CheckRecord> = records
            .iter()
            .filter(|k| k.requirement_index == r.index)
            .take(120)
            .collect();
        line.reverse();
        let title = format!("#{} count per checked minute ({})", r.index, zone.name());
        let _ = write!(
            out,
            "<figure class=chart>{}</figure>",
            band_chart(&title, &line, zone)
        );
    }
    out.push_str(
        "<h3>Recent checks</h3><table><thead><tr><th>minute<th>#<th>status<th>count<th>MIN..MAX<tbody>",
    );
    for k in records.iter().take(30) {
        let _ = write!(
            out,
            "<tr class={}><td>{}<td>{}<td><b>{}</b><td>{}<td>{}..{}",
            status_class(k.status),
            escape(&k.minute_local),
            k.requirement_index,
            k.status.as_str(),
            k.count,
            k.min,
            k.max
        );
    }
    if records.is_empty() {
        out.push_str("<tr><td colspan=5>no checks yet");
    }
    out.push_str("</table>");
    alert_section(&mut out, state, c, now, public).await;
    ping_section(&mut out, state, c, public).await;
    out.push_str("</main></body></html>");
    out
}

/// How many recent pings a push checker's page shows.
pub const PAGE_PINGS: usize = 30;

/// The longest ping body shown on the page, in characters (the API has them whole).
const BODY_CHARS: usize = 2_000;

/// A push checker's recent pings, newest first; bodies (and who sent them) only outside
/// public mode, always escaped.
async fn ping_section(out: &mut String, state: &ServerState, c: &CheckerView, public: bool) {
    out.push_str("<h3>Recent pings</h3>");
    if !c.checker.as_ref().is_some_and(dwmon_core::Checker::is_push) {
        out.push_str("<p>No pings (only push checkers receive pings).</p>");
        return;
    }
    let pings = match api::recent_pings(state, &c.name, PAGE_PINGS).await {
        Ok(pings) => pings,
        Err(e) => {
            tracing::warn!(checker = %c.name, error = %e, "cannot read the pings");
            out.push_str("<p>The pings cannot be read right now.</p>");
            return;
        }
    };
    if pings.is_empty() {
        out.push_str("<p>No pings received yet.</p>");
        return;
    }
    out.push_str("<table class=pings><thead><tr><th>time<th>kind<th>exit<th>run time");
    if !public {
        out.push_str("<th>rid<th>from<th>body");
    }
    out.push_str("<tbody>");
    for p in &pings {
        let class = match p.kind {
            dwmon_core::ping::PingKind::Fail => "b",
            dwmon_core::ping::PingKind::Success => "g",
            _ => "n",
        };
        let _ = write!(
            out,
            "<tr class={class}><td>{}<td><b>{}</b><td>{}<td>{}",
            escape(&local(p.time, c.zone)),
            p.kind.as_str(),
            p.exit_status.map(|e| e.to_string()).unwrap_or_default(),
            p.duration_seconds
                .map(|d| format!("{d} s"))
                .unwrap_or_default(),
        );
        if !public {
            let from = [p.remote_addr.as_deref(), p.user_agent.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let body = if p.body.chars().count() > BODY_CHARS {
                format!("{}…", p.body.chars().take(BODY_CHARS).collect::<String>())
            } else {
                p.body.clone()
            };
            let _ = write!(
                out,
                "<td>{}<td>{}<td><pre>{}</pre>",
                escape(p.rid.as_deref().unwrap_or("")),
                escape(&from),
                escape(&body)
            );
        }
    }
    out.push_str("</table>");
}

async fn alert_section(
    out: &mut String,
    state: &ServerState,
    c: &CheckerView,
    now: i64,
    public: bool,
) {
    out.push_str("<h3>Alert states</h3>");
    let Some(alerts) = &state.alerts else {
        out.push_str("<p>Alerting is off.</p>");
        return;
    };
    let Ok(overview) = alerts.overview().await else {
        out.push_str("<p>The alert states cannot be read.</p>");
        return;
    };
    let entries: Vec<_> = overview
        .alerts
        .iter()
        .filter(|e| e.checker == c.name)
        .collect();
    if entries.is_empty() {
        out.push_str("<p>No alert state yet.</p>");
    } else {
        out.push_str(
            "<table><thead><tr><th>#<th>phase<th>severity<th>BAD in a row<th>BAD since<th>FIRING since<tbody>",
        );
        for e in entries {
            let s = &e.state;
            let firing = s.phase == dwmon_alert::AlertPhase::Firing;
            let _ = write!(
                out,
                "<tr class={}><td>{}<td><b>{}</b><td>{}<td>{}<td>{}<td>{}",
                if firing { "b" } else { "g" },
                e.requirement_index,
                if firing { "FIRING" } else { "OK" },
                s.severity.as_str(),
                s.consecutive_bad,
                s.bad_since.map_or(String::new(), |m| local(m, c.zone)),
                s.firing_since.map_or(String::new(), |m| local(m, c.zone)),
            );
        }
        out.push_str("</table>");
    }
    if let Some((_, source)) = overview.sources.iter().find(|(n, _)| *n == c.name) {
        if source.failing {
            let since = source.since.map_or(String::new(), |m| local(m, c.zone));
            let _ = write!(out, "<p class=err>Source failing since {since}");
            if let (false, Some(error)) = (public, &source.last_error) {
                let _ = write!(out, ": {}", escape(error));
            }
            out.push_str("</p>");
        }
    }
    let unsent = overview
        .pending
        .iter()
        .filter(|p| p.notification.checker == c.name)
        .count();
    if unsent > 0 {
        let _ = write!(out, "<p>{unsent} notification(s) not yet delivered.</p>");
    }
    let _ = now;
    if !public {
        history_section(out, state, c).await;
    }
}

/// How many alert history entries a checker's page shows (the API pages through all).
pub const PAGE_HISTORY: usize = 50;

/// The checker's alert state history, newest first: time in its zone, requirement line,
/// transition and reason, every text escaped. Not shown in public mode.
async fn history_section(out: &mut String, state: &ServerState, c: &CheckerView) {
    out.push_str("<h3>Alert history</h3>");
    let entries = match api::alert_history_page(state, &c.name, None, PAGE_HISTORY).await {
        Ok((entries, _)) => entries,
        Err(e) => {
            tracing::warn!(checker = %c.name, error = %e, "cannot read the alert history");
            out.push_str("<p>The alert history cannot be read right now.</p>");
            return;
        }
    };
    if entries.is_empty() {
        out.push_str("<p>No alert state changes yet.</p>");
        return;
    }
    out.push_str(
        "<table class=history><thead><tr><th>time<th>requirement<th>transition<th>reason<tbody>",
    );
    for e in &entries {
        use dwmon_alert::HistoryState as S;
        let class = match e.to {
            S::Firing | S::SourceError => "b",
            S::Pending | S::Paused => "n",
            S::Ok | S::SourceOk | S::Active => "g",
        };
        let requirement = match e.requirement_index {
            Some(index) => {
                let line = c
                    .requirements
                    .iter()
                    .find(|r| r.index == index)
                    .and_then(|r| r.requirement.as_deref());
                match line {
                    Some(line) => format!("#{index} <code>{}</code>", escape(line)),
                    None => format!("#{index}"),
                }
            }
            None if matches!(e.to, S::Active | S::Paused) => "pause".to_string(),
            None => "source".to_string(),
        };
        let mut reason: Vec<String> = Vec::new();
        if let Some(kind) = e.notification {
            reason.push(format!("{} notification", kind.as_str()));
        }
        if let Some(text) = &e.reason {
            reason.push(escape(text));
        }
        let _ = write!(
            out,
            "<tr class={class}><td>{}<td>{requirement}<td>{} → <b>{}</b><td>{}",
            escape(&local(e.at, c.zone)),
            e.from.as_str(),
            e.to.as_str(),
            reason.join("; ")
        );
    }
    out.push_str("</table>");
}

/// The form of `POST /session`.
#[derive(Debug, serde::Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(state): State<ServerState>, Form(form): Form<SignIn>) -> Response {
    let token = form.token.trim();
    let Some(authorizer) = &state.authorizer else {
        return sign_in_page("This server has no tokens configured.");
    };
    match authorizer.check(token).await {
        Ok(Some(_)) if valid_cookie_value(token) => {
            let cookie = format!(
                "{}={token}; Path=/; HttpOnly; SameSite=Strict",
                auth::SESSION_COOKIE
            );
            let mut answer = see_other("/");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                answer.headers_mut().insert(header::SET_COOKIE, value);
            }
            answer
        }
        Ok(_) => sign_in_page("Unknown or revoked token."),
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("<!doctype html><p>{}", escape(&e.to_string())),
        ),
    }
}

/// A token fits in a cookie as it is (no `;`, `,`, spaces, quotes or controls).
fn valid_cookie_value(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'))
}

async fn sign_out() -> Response {
    let mut answer = see_other("/");
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    answer
}

fn see_other(to: &str) -> Response {
    let mut answer = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        answer.headers_mut().insert(header::LOCATION, value);
    }
    answer
}

/// A form post from another site is refused: the session cookie is `SameSite=Strict`, and an
/// `Origin` header (sent by browsers on form posts) must name this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

/// The form of the page's pause button.
#[derive(Debug, serde::Deserialize)]
struct PauseForm {
    #[serde(default)]
    hours: String,
    #[serde(default)]
    comment: String,
}

async fn write_access(state: &ServerState, headers: &HeaderMap) -> Result<(), Response> {
    if !same_origin(headers) {
        return Err(html(
            StatusCode::FORBIDDEN,
            "<!doctype html><p>This form must be sent from this server's own page.".into(),
        ));
    }
    match page_access(state, headers).await? {
        Access::Write => Ok(()),
        access => Err(html(
            StatusCode::FORBIDDEN,
            format!(
                "<!doctype html><p>Pausing needs a write token; this session has {} access. \
                 <a href=/>Back</a>",
                access.as_str()
            ),
        )),
    }
}

fn error_page(e: api::ApiError) -> Response {
    html(
        e.status,
        format!(
            "<!doctype html><p>{} <a href=/>Back</a>",
            escape(&e.message)
        ),
    )
}

async fn pause(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<PauseForm>,
) -> Response {
    if let Err(answer) = write_access(&state, &headers).await {
        return answer;
    }
    let until = match form.hours.trim() {
        "" => None,
        hours => match hours.parse::<f64>() {
            Ok(h) if h.is_finite() && h > 0.0 && h <= 24.0 * 366.0 => {
                Some(view::now(&state).saturating_add((h * 3600.0).round() as i64))
            }
            _ => {
                return error_page(api::ApiError::bad_request(
                    "hours must be a number above 0 and at most a year, or empty",
                ))
            }
        },
    };
    let request = PauseRequest {
        until,
        comment: Some(form.comment),
    };
    match api::set_pause(&state, &name, request).await {
        Ok(_) => see_other(&format!("/checkers/{}", url_path(&name))),
        Err(e) => error_page(e),
    }
}

async fn unpause(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(answer) = write_access(&state, &headers).await {
        return answer;
    }
    match api::lift_pause(&state, &name, "unpaused from the status page").await {
        Ok(_) => see_other(&format!("/checkers/{}", url_path(&name))),
        Err(e) => error_page(e),
    }
}

/// `name` percent-encoded for a path segment.
fn url_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_script_and_attribute_breakouts() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(escape("it's"), "it&#39;s");
    }

    #[test]
    fn the_bar_merges_runs_and_right_aligns_short_histories() {
        let mut out = String::new();
        bar(&mut out, &[Status::Good, Status::Good, Status::Bad]);
        assert_eq!(
            out,
            "<svg class=bar viewBox=\"0 0 90 1\" preserveAspectRatio=none>\
             <path class=g d=\"M87 .5h2\"/><path class=b d=\"M89 .5h1\"/></svg>"
        );
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(
            same_origin(&headers),
            "no Origin: not a cross-site browser post"
        );
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&headers));
    }

    #[test]
    fn cookie_values_are_plain_tokens() {
        assert!(valid_cookie_value("abc-DEF_123.~"));
        for bad in ["", "a b", "a;b", "a\"b", "a,b", "é"] {
            assert!(!valid_cookie_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_band_chart_escapes_its_title_and_marks_bad_minutes() {
        let record = |minute: i64, count: u64, status: Status| CheckRecord {
            checker: "c".into(),
            requirement_index: 0,
            requirement: String::new(),
            minute,
            minute_local: String::new(),
            timezone: "UTC".into(),
            lookback_seconds: 60,
            count,
            min: 1,
            max: 10,
            status,
            extra: serde_json::json!({}),
            monitor: None,
            runs: None,
        };
        let records = [record(60, 5, Status::Good), record(120, 0, Status::Bad)];
        let refs: Vec<&CheckRecord> = records.iter().collect();
        let svg = band_chart("<script>x</script>", &refs, chrono_tz::UTC);
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!svg.contains("<script"));
        assert_eq!(
            svg.matches("fill=\"#d62728\"").count(),
            1,
            "one BAD dot: {svg}"
        );
        assert!(svg.contains("fill-opacity=\"0.15\""), "the band: {svg}");
    }
}
