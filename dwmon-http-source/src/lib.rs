#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! The public surface is [`HttpSource`] (with [`HttpSourceBuilder`]), the configuration
//! [`Error`] and the request spec's [`SpecError`]; fetch failures are
//! [`dwmon_core::SourceError`]s.

mod error;
mod link;
mod rows;
mod source;
mod spec;
mod template;

pub use error::{Error, Result};
pub use source::{HttpSource, HttpSourceBuilder};
pub use spec::{check_query, Method, SpecError, DEFAULT_MAX_PAGES, MAX_MAX_PAGES};

/// `text` with control characters escaped (`\n`, `\u{1b}`), so text echoed from a response or
/// a checker file cannot drive the reader's terminal.
pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// At most `max_chars` characters of `text`, escaped, with `...` when cut.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    let mut shown = escape(text.trim());
    if let Some((end, _)) = shown.char_indices().nth(max_chars) {
        shown.truncate(end);
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_are_cut_and_escaped() {
        assert_eq!(super::excerpt(" a\nb\u{7} ", 10), "a\\nb\\u{7}");
        assert_eq!(super::excerpt("abcdef", 3), "abc...");
        assert_eq!(super::excerpt("é€😀x", 3), "é€😀...");
    }
}
