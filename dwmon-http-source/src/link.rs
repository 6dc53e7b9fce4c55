//! The `rel="next"` target of RFC 8288 (formerly RFC 5988) `Link` headers, as GitHub and
//! many other list APIs send them:
//! `Link: <https://api.example/items?page=2>; rel="next", <...?page=9>; rel="last"`.

/// The first `rel="next"` (or unquoted `rel=next`, or `rel="next last"`) target among the
/// values of every `Link` header, as written (it may be relative).
pub(crate) fn next_target<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values.into_iter().find_map(next_in)
}

fn next_in(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let inner = rest.strip_prefix('<')?;
        let end = inner.find('>')?;
        let target = &inner[..end];
        rest = &inner[end + 1..];
        // Parameters up to the next link (a `,` outside a quoted string).
        let mut params = String::new();
        let mut quoted = false;
        let mut consumed = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    consumed = i;
                    break;
                }
                _ => {}
            }
            params.push(c);
        }
        rest = &rest[consumed..];
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_string());
        }
        if rest.is_empty() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let github = "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", \
                      <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"";
        assert_eq!(
            next_target([github]).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        let later = "<https://x/?a=1,2>; title=\"a, b; c\"; rel=\"prev\", </p3>; REL=next";
        assert_eq!(next_target([later]).as_deref(), Some("/p3"));
        assert_eq!(
            next_target([
                "<https://x/1>; rel=\"prev\"",
                "<https://x/3>; rel=\"last next\""
            ])
            .as_deref(),
            Some("https://x/3")
        );
        assert_eq!(next_target(["<https://x/1>; rel=\"prev\""]), None);
        assert_eq!(next_target(["garbage", "<unclosed; rel=next"]), None);
        assert_eq!(next_target(Vec::<&str>::new()), None);
        assert_eq!(next_target(["<a>; rel=nextpage"]), None);
    }
}
