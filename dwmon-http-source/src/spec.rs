//! [`RequestSpec`]: the `__QUERY__` of a checker that reads an HTTP JSON API.
//!
//! ```text
//! GET https://api.github.com/repos/OWNER/REPO/issues?state=all&sort=created&per_page=100
//! Accept: application/vnd.github+json
//! Authorization: Bearer ${GITHUB_TOKEN}
//!
//! rows: $
//! key: id
//! timestamp: created_at
//! next: link-header
//! max-pages: 3
//! ```
//!
//! Line 1 is the request line. Each later line is blank, a `#` comment, a directive (one of
//! the lower-case names below, then `:`), or else a header `Name: value`. `body:` ends the
//! spec: the rest of the text is the request body.

use crate::template::{Template, TemplateError};

/// The HTTP method of a request spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` (e.g. a search API taking a JSON body).
    Post,
}

/// A dotted path of object fields (or array indices, for all-digit segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    segments: Vec<String>,
    written: String,
}

impl Path {
    /// The value at this path under `value`, `None` when a segment is missing.
    pub(crate) fn get<'v>(&self, value: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        self.segments
            .iter()
            .try_fold(value, |value, segment| match value {
                serde_json::Value::Object(map) => map.get(segment),
                serde_json::Value::Array(items) => {
                    segment.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            })
    }

    /// As written in the spec (`$.items`, `created_at`).
    pub(crate) fn as_written(&self) -> &str {
        &self.written
    }
}

/// How the URL of the next page is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// One page only.
    None,
    /// A string at this path of the page's JSON (`next: $.links.next`).
    Field(Path),
    /// The `Link: <URL>; rel="next"` response header (`next: link-header`).
    LinkHeader,
}

/// A parsed request spec; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestSpec {
    pub(crate) method: Method,
    pub(crate) url: Template,
    /// `(name, value, line)`.
    pub(crate) headers: Vec<(reqwest::header::HeaderName, Template, usize)>,
    /// `(body, line of body:)`.
    pub(crate) body: Option<(Template, usize)>,
    pub(crate) rows: Path,
    pub(crate) key: Path,
    pub(crate) timestamp: Path,
    pub(crate) next: Next,
    pub(crate) max_pages: u32,
}

/// The default `max-pages`.
pub const DEFAULT_MAX_PAGES: u32 = 10;
/// The largest `max-pages` accepted.
pub const MAX_MAX_PAGES: u32 = 1000;

/// A mistake in a request spec, at a 1-based line (and character column) of the `__QUERY__`
/// text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("__QUERY__ line {line}, column {column}: {message}")]
pub struct SpecError {
    /// 1-based line within the `__QUERY__` text (its first non-blank line is line 1).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong and what is expected.
    pub message: String,
}

const DIRECTIVES: [&str; 6] = ["rows", "key", "timestamp", "next", "max-pages", "body"];

impl RequestSpec {
    /// Parses a `__QUERY__` text.
    pub(crate) fn parse(text: &str) -> Result<RequestSpec, SpecError> {
        let mut lines = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line));
        let (method, url) = request_line(lines.next().unwrap_or_default())?;
        let mut spec = RequestSpec {
            method,
            url,
            headers: Vec::new(),
            body: None,
            rows: root_path("$", 1, 1)?,
            key: field_path(dwmon_core::convert::KEY_COLUMN, 1, 1)?,
            timestamp: field_path(dwmon_core::convert::TIMESTAMP_COLUMN, 1, 1)?,
            next: Next::None,
            max_pages: DEFAULT_MAX_PAGES,
        };
        let mut seen: Vec<(&str, usize)> = Vec::new();
        let mut max_pages_line = None;
        let mut number = 1;
        while let Some(line) = lines.next() {
            number += 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.chars().count() - line.trim_start().chars().count();
            let Some((name, value)) = trimmed.split_once(':') else {
                return Err(error(
                    number,
                    indent + 1,
                    format!(
                        "expected `Header: value` or a directive ({}), got `{}`",
                        DIRECTIVES.join(", "),
                        crate::escape(trimmed)
                    ),
                ));
            };
            // Column of the value's first character.
            let value_column = indent + name.chars().count() + 2 + leading(value);
            let value = value.trim();
            let Some(&directive) = DIRECTIVES.iter().find(|d| **d == name.trim_end()) else {
                spec.headers
                    .push(header(name, value, number, indent + 1, value_column)?);
                continue;
            };
            if let Some((_, first)) = seen.iter().find(|(d, _)| *d == directive) {
                return Err(error(
                    number,
                    indent + 1,
                    format!("`{directive}:` given twice (first on line {first})"),
                ));
            }
            seen.push((directive, number));
            match directive {
                "rows" => spec.rows = root_path(value, number, value_column)?,
                "key" => spec.key = field_path(value, number, value_column)?,
                "timestamp" => spec.timestamp = field_path(value, number, value_column)?,
                "next" => {
                    spec.next = if value == "link-header" {
                        Next::LinkHeader
                    } else if value.starts_with('$') {
                        Next::Field(root_path(value, number, value_column)?)
                    } else {
                        return Err(error(
                            number,
                            value_column,
                            format!(
                                "`next:` expects `link-header` or a path like `$.links.next`, \
                                 got `{}`",
                                crate::escape(value)
                            ),
                        ));
                    }
                }
                "max-pages" => {
                    spec.max_pages = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_MAX_PAGES).contains(n))
                        .ok_or_else(|| {
                            error(
                                number,
                                value_column,
                                format!(
                                    "`max-pages:` expects a number from 1 to {MAX_MAX_PAGES}, \
                                     got `{}`",
                                    crate::escape(value)
                                ),
                            )
                        })?;
                    max_pages_line = Some(number);
                }
                _ => {
                    // `body:` takes the rest of its line and every line after it.
                    let rest: Vec<&str> = lines.by_ref().collect();
                    let mut body = value.to_string();
                    if !rest.is_empty() {
                        body.push('\n');
                        body.push_str(&rest.join("\n"));
                    }
                    let body = body.trim();
                    if body.is_empty() {
                        return Err(error(number, indent + 1, "`body:` is empty".into()));
                    }
                    if spec.method == Method::Get {
                        return Err(error(
                            number,
                            indent + 1,
                            "a GET request has no body; use POST".into(),
                        ));
                    }
                    let template = Template::parse(body, 1).map_err(|e| at(number, e))?;
                    spec.body = Some((template, number));
                }
            }
        }
        if let (Some(line), Next::None) = (max_pages_line, &spec.next) {
            return Err(error(
                line,
                1,
                "`max-pages:` without `next:`; say how to find the next page (`next: \
                 link-header` or `next: $.path.to.url`)"
                    .into(),
            ));
        }
        Ok(spec)
    }
}

/// Checks that `query` is a valid request spec, without sending anything (what `dwmon check`
/// reports for checkers read by an HTTP source). Variables are not looked up: an unset one is
/// only an error at fetch time.
///
/// ```
/// let error = dwmon_http_source::check_query("GET https://api.example.com/x\nnext: soon")
///     .unwrap_err();
/// assert_eq!((error.line, error.column), (2, 7));
/// assert!(dwmon_http_source::check_query("GET https://api.example.com/x").is_ok());
/// ```
///
/// # Errors
/// The first [`SpecError`], with its line and column in the `__QUERY__` text.
pub fn check_query(query: &str) -> Result<(), SpecError> {
    RequestSpec::parse(query).map(|_| ())
}

fn error(line: usize, column: usize, message: String) -> SpecError {
    SpecError {
        line,
        column,
        message,
    }
}

fn at(line: usize, e: TemplateError) -> SpecError {
    error(line, e.column, e.message)
}

fn leading(text: &str) -> usize {
    text.chars().count() - text.trim_start().chars().count()
}

fn request_line(line: &str) -> Result<(Method, Template), SpecError> {
    let trimmed = line.trim();
    let mut words = trimmed.split_whitespace();
    let method = match words.next() {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        other => {
            return Err(error(
                1,
                1,
                format!(
                    "the first line must be `GET URL` or `POST URL`, got `{}`",
                    crate::escape(other.unwrap_or_default())
                ),
            ))
        }
    };
    let (Some(url), None) = (words.next(), words.next()) else {
        return Err(error(
            1,
            1,
            "the first line must be `GET URL` or `POST URL` (one URL, no spaces; write a \
             space in a URL as %20)"
                .into(),
        ));
    };
    let column = line.find(url).map_or(1, |i| line[..i].chars().count() + 1);
    let url = Template::parse(url, column).map_err(|e| at(1, e))?;
    Ok((method, url))
}

fn header(
    name: &str,
    value: &str,
    line: usize,
    column: usize,
    value_column: usize,
) -> Result<(reqwest::header::HeaderName, Template, usize), SpecError> {
    let name = name.trim_end();
    let header_name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        error(
            line,
            column,
            format!(
                "`{}` is not a header name nor a directive ({})",
                crate::escape(name),
                DIRECTIVES.join(", ")
            ),
        )
    })?;
    let template = Template::parse(value, value_column).map_err(|e| at(line, e))?;
    Ok((header_name, template, line))
}

/// `$`, `$.items`, `$.data.0.items`: a path from the top of the response.
fn root_path(value: &str, line: usize, column: usize) -> Result<Path, SpecError> {
    let bad = || {
        error(
            line,
            column,
            format!(
                "expected a path from the top of the response like `$.items` or `$` (the top \
                 level itself), got `{}`",
                crate::escape(value)
            ),
        )
    };
    if value == "$" {
        return Ok(Path {
            segments: Vec::new(),
            written: value.to_string(),
        });
    }
    let rest = value.strip_prefix("$.").ok_or_else(bad)?;
    let segments = segments(rest).ok_or_else(bad)?;
    Ok(Path {
        segments,
        written: value.to_string(),
    })
}

/// `id`, `commit.author.date`: a path inside each row object.
fn field_path(value: &str, line: usize, column: usize) -> Result<Path, SpecError> {
    let segments = segments(value).filter(|_| !value.starts_with('$'));
    let segments = segments.ok_or_else(|| {
        error(
            line,
            column,
            format!(
                "expected a field of each row like `id` or `commit.author.date` (without \
                 `$`), got `{}`",
                crate::escape(value)
            ),
        )
    })?;
    Ok(Path {
        segments,
        written: value.to_string(),
    })
}

fn segments(text: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = text.split('.').map(str::to_string).collect();
    let valid = segments
        .iter()
        .all(|s| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()));
    valid.then_some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_github_style_spec() -> Result<(), SpecError> {
        let spec = RequestSpec::parse(
            "GET https://api.github.com/repos/o/r/issues?per_page=100\n\
             Accept: application/vnd.github+json\r\n\
             Authorization: Bearer ${GITHUB_TOKEN}\n\
             \n\
             # GitHub paginates with Link headers.\n\
             rows: $\n\
             key: id\n\
             timestamp: created_at\n\
             next: link-header\n\
             max-pages: 3\n",
        )?;
        assert_eq!(spec.method, Method::Get);
        assert_eq!(
            spec.url.as_written(),
            "https://api.github.com/repos/o/r/issues?per_page=100"
        );
        let headers: Vec<(String, String, usize)> = spec
            .headers
            .iter()
            .map(|(n, v, l)| (n.to_string(), v.as_written(), *l))
            .collect();
        assert_eq!(
            headers,
            vec![
                ("accept".into(), "application/vnd.github+json".into(), 2),
                ("authorization".into(), "Bearer ${GITHUB_TOKEN}".into(), 3),
            ]
        );
        assert_eq!(spec.rows.as_written(), "$");
        assert_eq!(spec.key.as_written(), "id");
        assert_eq!(spec.next, Next::LinkHeader);
        assert_eq!(spec.max_pages, 3);
        assert_eq!(spec.body, None);
        Ok(())
    }

    #[test]
    fn defaults_are_the_column_names_and_one_page() -> Result<(), SpecError> {
        let spec = RequestSpec::parse("GET http://h/x")?;
        assert_eq!(spec.rows.as_written(), "$");
        assert_eq!(spec.key.as_written(), "dwmon_unique_key");
        assert_eq!(spec.timestamp.as_written(), "dwmon_timestamp");
        assert_eq!(spec.next, Next::None);
        assert_eq!(spec.max_pages, DEFAULT_MAX_PAGES);
        Ok(())
    }

    #[test]
    fn a_post_with_a_body_and_a_next_field() -> Result<(), SpecError> {
        let spec = RequestSpec::parse(
            "POST https://search.example/runs\n\
             Content-Type: application/json\n\
             rows: $.data.items\n\
             key: run.id\n\
             timestamp: run.finished_at\n\
             next: $.links.next\n\
             body: {\"query\":\n  \"status:done\"}\n",
        )?;
        assert_eq!(spec.method, Method::Post);
        let (body, line) = spec.body.clone().unwrap();
        assert_eq!(body.as_written(), "{\"query\":\n  \"status:done\"}");
        assert_eq!(line, 7);
        let page = json!({"data": {"items": [1]}, "links": {"next": "/p2"}});
        assert_eq!(spec.rows.get(&page), Some(&json!([1])));
        let Next::Field(next) = &spec.next else {
            panic!("{:?}", spec.next)
        };
        assert_eq!(next.get(&page), Some(&json!("/p2")));
        let row = json!({"run": {"id": 7, "finished_at": "2023-11-14T22:13:20Z"}});
        assert_eq!(spec.key.get(&row), Some(&json!(7)));
        assert_eq!(spec.timestamp.get(&json!({"run": 1})), None);
        Ok(())
    }

    #[test]
    fn paths_index_arrays() -> Result<(), SpecError> {
        let path = root_path("$.pages.1.items", 1, 1)?;
        let page = json!({"pages": [{"items": []}, {"items": [2]}]});
        assert_eq!(path.get(&page), Some(&json!([2])));
        assert_eq!(root_path("$.pages.x", 1, 1)?.get(&page), None);
        Ok(())
    }

    #[test]
    fn mistakes_name_the_line_and_column() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("", 1, 1, "the first line must be"),
            ("SELECT 1", 1, 1, "the first line must be"),
            ("get http://h", 1, 1, "`GET URL`"),
            ("GET http://h extra", 1, 1, "one URL"),
            ("GET http://h/${X", 1, 14, "closing"),
            ("GET http://h\nrows: items", 2, 7, "path from the top"),
            ("GET http://h\nkey: $.id", 2, 6, "without `$`"),
            ("GET http://h\ntimestamp: a..b", 2, 12, "field of each row"),
            ("GET http://h\nnext: sometimes", 2, 7, "`link-header`"),
            (
                "GET http://h\nnext: link-header\nmax-pages: 0",
                3,
                12,
                "1 to 1000",
            ),
            ("GET http://h\nmax-pages: 2", 2, 1, "without `next:`"),
            (
                "GET http://h\nkey: a\n  key: b",
                3,
                3,
                "twice (first on line 2)",
            ),
            (
                "GET http://h\nnot a header",
                2,
                1,
                "expected `Header: value`",
            ),
            ("GET http://h\nBad Name: x", 2, 1, "not a header name"),
            ("GET http://h\nX-Token: ${1}", 2, 10, "not a variable name"),
            ("GET http://h\nbody: {}", 2, 1, "use POST"),
            ("POST http://h\nbody:\n\n", 2, 1, "empty"),
        ];
        for (text, line, column, message) in cases {
            let error = RequestSpec::parse(text).unwrap_err();
            assert_eq!(
                (error.line, error.column),
                (*line, *column),
                "{text:?}: {error}"
            );
            assert!(error.message.contains(message), "{text:?}: {error}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any text, and any text after a valid request line: an error or a spec, never a
            /// panic, and errors point inside the text.
            #[test]
            fn parsing_never_panics(text in any::<String>(), tail in r"(\PC|\n|\$|\{|\}|:|\.){0,80}") {
                for text in [text, format!("POST http://h/\n{tail}")] {
                    if let Err(error) = RequestSpec::parse(&text) {
                        prop_assert!(error.line >= 1 && error.line <= text.split('\n').count());
                        prop_assert!(error.column >= 1);
                    }
                }
            }

            #[test]
            fn link_headers_never_panic(value in r#"(\PC|<|>|;|,|"|=){0,80}"#) {
                let _ = crate::link::next_target([value.as_str()]);
            }
        }
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let error = RequestSpec::parse("GET http://h\nnext: \u{1b}[31m").unwrap_err();
        assert!(!error.to_string().contains('\u{1b}'), "{error}");
        assert!(error.to_string().contains("\\u{1b}"), "{error}");
    }
}
