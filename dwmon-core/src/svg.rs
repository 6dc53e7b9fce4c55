//! A small SVG writer shared by every chart dwmon draws (the histogram heat map, the backtest
//! band chart, the status page's charts), so they all start the same way and escape text the
//! same way.
//!
//! ```
//! use dwmon_core::svg::{Anchor, Svg};
//! use std::fmt::Write;
//!
//! let mut svg = Svg::new(200.0, 100.0);
//! svg.heading(10.0, "orders <eu>", "rows per minute");
//! svg.text(100.0, 60.0, Anchor::Middle, "a & b");
//! let _ = writeln!(svg, r##"<rect x="10" y="70" width="5" height="5" fill="#d62728"/>"##);
//! let out = svg.finish();
//! assert!(out.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
//! assert!(out.contains("orders &lt;eu&gt;"));
//! assert!(out.contains("a &amp; b"));
//! assert!(out.trim_end().ends_with("</svg>"));
//! ```
//!
//! The document is self-contained: no scripts, no external references, a white background,
//! `sans-serif` at 11 px unless an element says otherwise.

use std::fmt::{self, Write};

/// Escapes `text` for XML character data and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Horizontal alignment of a [`Svg::text`] (`text-anchor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Text starts at `x`.
    Start,
    /// Text is centred on `x`.
    Middle,
    /// Text ends at `x`.
    End,
}

impl Anchor {
    fn attribute(self) -> &'static str {
        match self {
            Anchor::Start => "",
            Anchor::Middle => r#" text-anchor="middle""#,
            Anchor::End => r#" text-anchor="end""#,
        }
    }
}

/// An SVG document being written. Elements are appended with the helpers or, for anything
/// else, with `write!`/`writeln!` (the caller escapes text it writes that way with
/// [`escape`]); [`Svg::finish`] closes the document.
#[derive(Debug, Clone)]
pub struct Svg {
    out: String,
}

impl Svg {
    /// Starts a `width` x `height` document (pixels) with a white background.
    pub fn new(width: f64, height: f64) -> Svg {
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        Svg { out }
    }

    /// The chart's title (bold, 14 px, baseline 20) and a subtitle line under it (baseline
    /// 38; omitted when empty), both starting at `x`.
    pub fn heading(&mut self, x: f64, title: &str, subtitle: &str) {
        let _ = writeln!(
            self.out,
            r#"<text x="{x}" y="20" font-size="14" font-weight="bold">{}</text>"#,
            escape(title)
        );
        if !subtitle.is_empty() {
            self.text(x, 38.0, Anchor::Start, subtitle);
        }
    }

    /// A line of text at `(x, y)` (baseline), escaped.
    pub fn text(&mut self, x: f64, y: f64, anchor: Anchor, text: &str) {
        let _ = writeln!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}"{}>{}</text>"#,
            anchor.attribute(),
            escape(text)
        );
    }

    /// Closes the document and returns it.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

impl Write for Svg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom's & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/a&gt;"
        );
        assert_eq!(escape("plain ■ text"), "plain ■ text");
    }

    #[test]
    fn a_document_has_one_root_a_background_and_escaped_headings() {
        let mut svg = Svg::new(120.0, 40.5);
        svg.heading(8.0, "a<b", "");
        svg.text(60.0, 30.0, Anchor::End, "\"q\"");
        let out = svg.finish();
        assert!(out.starts_with(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40.5" viewBox="0 0 120 40.5""#
        ));
        assert_eq!(out.matches("<svg").count(), 1);
        assert_eq!(out.matches("</svg>").count(), 1);
        assert!(out.contains(r#"<rect width="100%" height="100%" fill="white"/>"#));
        assert!(out.contains(">a&lt;b</text>"));
        // No subtitle line when it is empty.
        assert_eq!(out.matches("<text").count(), 2);
        assert!(out.contains(r#"<text x="60.0" y="30.0" text-anchor="end">&quot;q&quot;</text>"#));
    }
}
