//! Badges: an SVG per checker (`/badge/NAME.svg`) and for all checkers (`/badge.svg`), and
//! the same as [shields.io endpoint](https://shields.io/badges/endpoint-badge) JSON
//! (`/badge/NAME.json`, `/badge.json`). `Cache-Control: no-cache`, so README images follow the
//! state. They show a name and a state only, so they are served with public access.

use crate::auth::Access;
use crate::view::{self, State as CheckerState};
use crate::ServerState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dwmon_core::svg::escape;

/// The badge routes.
pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/badge.svg", get(all_svg))
        .route("/badge.json", get(all_json))
        .route("/badge/{file}", get(one))
}

/// The shields.io colour name and the SVG colour of a state.
fn colours(state: CheckerState) -> (&'static str, &'static str) {
    match state {
        CheckerState::Good => ("brightgreen", "#2da44e"),
        CheckerState::Bad | CheckerState::Firing => ("red", "#d62728"),
        CheckerState::Error => ("orange", "#e36209"),
        CheckerState::Missed | CheckerState::Pending => ("lightgrey", "#8a8f98"),
        CheckerState::Paused => ("blueviolet", "#6f42c1"),
    }
}

/// Width of `text` in the badge's 11 px font, roughly (Verdana-like averages).
fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ':' | '|' | '!' | '\'' => 3.5,
            'm' | 'w' | 'M' | 'W' => 10.0,
            c if c.is_ascii_uppercase() => 8.0,
            _ => 6.8,
        })
        .sum::<f64>()
        + 10.0
}

/// A flat two-part badge: `label | message`, the message on `colour`.
pub fn svg(label: &str, message: &str, colour: &str) -> String {
    let (lw, mw) = (text_width(label), text_width(message));
    let width = lw + mw;
    let (label, message) = (escape(label), escape(message));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><rect width="{lw:.0}" height="20" fill="#555"/><rect x="{lw:.0}" width="{mw:.0}" height="20" fill="{colour}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="{:.1}" y="14">{label}</text><text x="{:.1}" y="14">{message}</text></g></svg>"##,
        lw / 2.0,
        lw + mw / 2.0
    )
}

async fn state_of(
    state: &ServerState,
    headers: &HeaderMap,
    name: Option<&str>,
) -> Result<(String, CheckerState), Response> {
    if let Err(e) = crate::api::require(state, headers, true, Access::Public).await {
        return Err(e.into_response());
    }
    let unavailable = |e: dwmon_core::StoreError| {
        crate::api::ApiError::unavailable(format!("cannot read the store: {e}")).into_response()
    };
    match name {
        None => {
            let overview = view::load(state).await.map_err(unavailable)?;
            Ok(("dwmon".to_string(), overview.state()))
        }
        Some(name) => match view::load_one(state, name).await.map_err(unavailable)? {
            Some(c) => Ok((c.name, c.state)),
            None => Err(
                crate::api::ApiError::not_found(format!("no checker named {name:?}"))
                    .into_response(),
            ),
        },
    }
}

fn svg_answer(label: &str, state: CheckerState) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        svg(label, state.as_str(), colours(state).1),
    )
        .into_response()
}

fn json_answer(label: &str, state: CheckerState) -> Response {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Json(serde_json::json!({
            "schemaVersion": 1,
            "label": label,
            "message": state.as_str(),
            "color": colours(state).0,
        })),
    )
        .into_response()
}

async fn all_svg(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    match state_of(&state, &headers, None).await {
        Ok((label, s)) => svg_answer(&label, s),
        Err(answer) => answer,
    }
}

async fn all_json(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    match state_of(&state, &headers, None).await {
        Ok((label, s)) => json_answer(&label, s),
        Err(answer) => answer,
    }
}

async fn one(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let (name, svg) = if let Some(name) = file.strip_suffix(".svg") {
        (name, true)
    } else if let Some(name) = file.strip_suffix(".json") {
        (name, false)
    } else {
        return crate::api::ApiError::not_found("badges are /badge/NAME.svg or /badge/NAME.json")
            .into_response();
    };
    match state_of(&state, &headers, Some(name)).await {
        Ok((label, s)) if svg => svg_answer(&label, s),
        Ok((label, s)) => json_answer(&label, s),
        Err(answer) => answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_escapes_its_label() {
        let out = svg("\"><img onerror=alert(1)>", "BAD", "#d62728");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&quot;&gt;&lt;img onerror=alert(1)&gt;"));
        assert!(out.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    }
}
