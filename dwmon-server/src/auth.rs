//! Who may do what: the [`Access`] a request has, from an `Authorization: Bearer TOKEN`
//! header (API clients), the `dwmon_session` cookie of the status page (a token a person
//! entered), or the anonymous access the server grants (`--public`: names and states only).
//!
//! The tokens themselves are checked by an [`Authorizer`]; [`StaticTokens`] is one over a
//! fixed list (for programs and tests), the token store of `dwmon token` is another.

use async_trait::async_trait;
use axum::http::HeaderMap;

/// What a request may see and do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Names and states only: no query, source, `__EXTRA__`, error texts or ping bodies
    /// (the public status page and badges).
    Public,
    /// Everything, read-only.
    Read,
    /// Read, and pause/unpause.
    Write,
}

impl Access {
    /// `public`, `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// Checking a token failed for a reason other than the token (the token store is down).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot check the token: {0}")]
pub struct AuthError(pub String);

/// Tells which [`Access`] a bearer token grants.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// The access `token` grants: `Ok(None)` for an unknown (or revoked) token.
    ///
    /// # Errors
    /// When the tokens cannot be read; the request is answered 503 then.
    async fn check(&self, token: &str) -> Result<Option<Access>, AuthError>;
}

/// A fixed list of tokens, compared in constant time (every token is compared in full, so
/// the answer time does not tell how much of a guess was right).
///
/// ```
/// use dwmon_server::auth::{Access, Authorizer, StaticTokens};
/// # futures::executor::block_on(async {
/// let tokens = StaticTokens::new([("s3cret-read", Access::Read), ("s3cret-write", Access::Write)]);
/// assert_eq!(tokens.check("s3cret-write").await.unwrap(), Some(Access::Write));
/// assert_eq!(tokens.check("s3cret").await.unwrap(), None);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    tokens: Vec<(Vec<u8>, Access)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl StaticTokens {
    /// Tokens and the access each grants. Empty tokens are ignored.
    pub fn new<T: AsRef<str>>(tokens: impl IntoIterator<Item = (T, Access)>) -> Self {
        StaticTokens {
            tokens: tokens
                .into_iter()
                .filter(|(t, _)| !t.as_ref().is_empty())
                .map(|(t, a)| (t.as_ref().as_bytes().to_vec(), a))
                .collect(),
        }
    }
}

/// `a == b` without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

#[async_trait]
impl Authorizer for StaticTokens {
    async fn check(&self, token: &str) -> Result<Option<Access>, AuthError> {
        let mut found = None;
        for (known, access) in &self.tokens {
            if constant_time_eq(known, token.as_bytes()) {
                found = Some(*access);
            }
        }
        Ok(found)
    }
}

/// The name of the status page's session cookie (it holds the token a person entered).
pub const SESSION_COOKIE: &str = "dwmon_session";

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer ...`.
    Bearer,
    /// The status page's session cookie.
    Cookie,
}

/// The token of a request: the `Authorization: Bearer` header, else (when `cookies` is
/// true) the session cookie. `Err(())` for an `Authorization` header that is not a bearer
/// token (a malformed credential is refused, not ignored).
#[allow(clippy::result_unit_err)]
pub fn request_token(
    headers: &HeaderMap,
    cookies: bool,
) -> Result<Option<(String, TokenSource)>, ()> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ())?;
        let (scheme, token) = value.split_once(' ').ok_or(())?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(());
        }
        return Ok(Some((token.to_string(), TokenSource::Bearer)));
    }
    if !cookies {
        return Ok(None);
    }
    for value in headers.get_all(axum::http::header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=') {
                if name == SESSION_COOKIE && !token.is_empty() {
                    return Ok(Some((token.to_string(), TokenSource::Cookie)));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn the_bearer_header_wins_and_a_malformed_one_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=b; dwmon_session=tok2".parse().unwrap());
        assert_eq!(
            request_token(&headers, true),
            Ok(Some(("tok2".into(), TokenSource::Cookie)))
        );
        assert_eq!(request_token(&headers, false), Ok(None));
        headers.insert("authorization", "Bearer tok1".parse().unwrap());
        assert_eq!(
            request_token(&headers, true),
            Ok(Some(("tok1".into(), TokenSource::Bearer)))
        );
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "tok1"] {
            headers.insert("authorization", bad.parse().unwrap());
            assert_eq!(request_token(&headers, true), Err(()), "{bad}");
        }
    }

    #[tokio::test]
    async fn static_tokens_grant_their_access_and_ignore_empty_ones() {
        let tokens = StaticTokens::new([("r", Access::Read), ("", Access::Write)]);
        assert_eq!(tokens.check("r").await, Ok(Some(Access::Read)));
        assert_eq!(tokens.check("").await, Ok(None));
        assert_eq!(tokens.check("w").await, Ok(None));
    }
}
