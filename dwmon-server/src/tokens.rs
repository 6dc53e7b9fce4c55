//! Tokens: who may ping a push checker or use the API.
//!
//! A token is `dw_` + a public id (10 hex digits) + `_` + a secret of 128 random bits (32 hex
//! digits), e.g. `dw_3f9c0a12be_6b1d…`. Only the SHA-256 of the whole token is stored (the
//! token has 128 random bits, so a fast hash is enough: there is nothing to brute-force); a
//! presented token is looked up by its id and its hash compared in constant time. The token
//! itself is shown once, when it is created or rotated, and never logged: [`Secret`] prints
//! as `<redacted>`, and listings show [`TokenInfo::masked`].
//!
//! Every token has one [`Scope`]:
//!
//! | scope | text | may |
//! |---|---|---|
//! | [`Scope::Ping`] with a checker | `ping:NAME` | ping that push checker: `/ping/{token}[/...]` |
//! | [`Scope::Ping`] without one | `ping` | ping any push checker by name: `/ping/{token}/{checker}[/...]` (a "ping key") |
//! | [`Scope::Read`] | `read` | read the API (`Authorization: Bearer TOKEN`) |
//! | [`Scope::Write`] | `write` | read and write the API (pause, unpause, snooze) |
//!
//! Tokens live in a [`TokenStore`]: [`SqliteTokenStore`] (its own `token_*` tables in the
//! dwmon store file) or [`MemoryTokenStore`] (tests). [`CachedTokens`] keeps verified tokens
//! in memory in front of either (`dwmon serve` uses it: a ping reads no table); a revocation
//! through it takes effect at once, one by another process within 1 s (see its docs). [`StoredTokens`] makes a token store
//! the API's [`Authorizer`](crate::auth::Authorizer): `read` and `write` tokens grant that
//! access, ping tokens none.

mod cache;
mod memory;
mod sqlite;

pub use cache::{CachedTokens, DEFAULT_CAPACITY, DEFAULT_RECHECK};
pub use memory::MemoryTokenStore;
pub use sqlite::SqliteTokenStore;

use async_trait::async_trait;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// Ping push checkers: the one named (`ping:NAME`), or any by name (`ping`).
    Ping {
        /// The push checker this token pings; `None` for a ping key used with the checker's
        /// name in the URL.
        checker: Option<String>,
    },
    /// Read the API.
    Read,
    /// Read and write the API (pause, unpause, snooze).
    Write,
}

impl Scope {
    /// Parses `ping`, `ping:NAME`, `read` or `write`.
    ///
    /// # Errors
    /// [`TokenError::BadScope`] for anything else (a checker name must be a valid checker
    /// file stem: `[A-Za-z0-9_.-]+`, at most 100 characters).
    pub fn parse(text: &str) -> Result<Scope, TokenError> {
        let bad = || TokenError::BadScope {
            scope: text.to_string(),
        };
        match text {
            "ping" => Ok(Scope::Ping { checker: None }),
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            _ => {
                let name = text.strip_prefix("ping:").ok_or_else(bad)?;
                if name.is_empty()
                    || name.len() > 100
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                {
                    return Err(bad());
                }
                Ok(Scope::Ping {
                    checker: Some(name.to_string()),
                })
            }
        }
    }

    /// Whether a holder of this scope may do what `needed` allows (`write` includes `read`).
    pub fn allows(&self, needed: &Scope) -> bool {
        match (self, needed) {
            (Scope::Write, Scope::Read) => true,
            (have, needed) => have == needed,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Ping { checker: None } => f.write_str("ping"),
            Scope::Ping {
                checker: Some(name),
            } => write!(f, "ping:{name}"),
            Scope::Read => f.write_str("read"),
            Scope::Write => f.write_str("write"),
        }
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The public id (10 hex digits): names the token in `dwmon token rotate|revoke ID`.
    pub id: String,
    /// What it may do.
    pub scope: Scope,
    /// A free-text label given at creation (who uses it, for what).
    pub label: String,
    /// When it was created (epoch seconds).
    pub created_at: i64,
    /// When its secret was last replaced, if ever (epoch seconds).
    pub rotated_at: Option<i64>,
}

impl TokenInfo {
    /// The token as listings show it: `dw_ID_…` (the secret is never stored, so never shown).
    pub fn masked(&self) -> String {
        format!("dw_{}_…", self.id)
    }
}

/// A token in clear, as created or rotated: shown once to the user, then dropped.
/// `Debug` prints `<redacted>`, so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The token text, to show to the user once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A token just created or rotated: what is stored, and the token itself.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The stored part.
    pub info: TokenInfo,
    /// The token in clear (shown once).
    pub token: Secret,
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A scope text that is none of `ping`, `ping:NAME`, `read`, `write`.
    #[error("unknown token scope {scope:?}: expected ping, ping:CHECKER, read or write")]
    BadScope {
        /// The text given.
        scope: String,
    },
    /// No token has this id.
    #[error("no token with id {id:?} (see `dwmon token list`)")]
    UnknownId {
        /// The id given.
        id: String,
    },
    /// The token store cannot be opened (not a database, newer schema, ...).
    #[error("token store {path}: {message}")]
    Open {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A stored token row cannot be read back (edited by hand?).
    #[error("token store: token {id:?} is damaged: {message}")]
    Corrupt {
        /// The token's id.
        id: String,
        /// What is wrong with it.
        message: String,
    },
    /// The database failed.
    #[error("token store: {0}")]
    Backend(#[source] rusqlite::Error),
    /// The blocking task running the database call failed.
    #[error("token store: task failed: {0}")]
    Task(String),
}

/// Where tokens are kept. Only hashes are stored; see the module docs.
///
/// ```
/// use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let tokens = MemoryTokenStore::new();
/// let issued = tokens.create(Scope::parse("ping:backup")?, "nightly backup", 1_700_000_000).await?;
/// let found = tokens.verify(issued.token.expose()).await?.expect("a valid token");
/// assert_eq!(found.scope, Scope::parse("ping:backup")?);
/// assert!(tokens.verify("dw_0000000000_00000000000000000000000000000000").await?.is_none());
/// # Ok::<(), dwmon_server::tokens::TokenError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Creates a token with `scope` and `label` at `now`; the only time its secret is known.
    ///
    /// # Errors
    /// When the store cannot write.
    async fn create(&self, scope: Scope, label: &str, now: i64) -> Result<IssuedToken, TokenError>;

    /// Every token, oldest first, without secrets.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError>;

    /// Replaces the secret of token `id` (same id, scope and label); the old token stops
    /// working at once.
    ///
    /// # Errors
    /// [`TokenError::UnknownId`], or when the store cannot write.
    async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError>;

    /// Deletes token `id`.
    ///
    /// # Errors
    /// [`TokenError::UnknownId`], or when the store cannot write.
    async fn revoke(&self, id: &str) -> Result<(), TokenError>;

    /// The token `presented` is, if it is a valid one (`None` for any other text).
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError>;

    /// A number that changes whenever a token is rotated or revoked, by any process (for
    /// [`CachedTokens`]: an unchanged generation means cached verifications still hold).
    /// `Ok(None)` (the default): the store cannot tell, so caches forget everything at each
    /// recheck.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn generation(&self) -> Result<Option<u64>, TokenError> {
        Ok(None)
    }
}

macro_rules! forward_token_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: TokenStore + ?Sized> TokenStore for $ty {
            async fn create(&self, scope: Scope, label: &str, now: i64) -> Result<IssuedToken, TokenError> {
                (**self).create(scope, label, now).await
            }
            async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
                (**self).list().await
            }
            async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError> {
                (**self).rotate(id, now).await
            }
            async fn revoke(&self, id: &str) -> Result<(), TokenError> {
                (**self).revoke(id).await
            }
            async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError> {
                (**self).verify(presented).await
            }
            async fn generation(&self) -> Result<Option<u64>, TokenError> {
                (**self).generation().await
            }
        }
    )*};
}

forward_token_store!(Arc<T>, Box<T>, &T);

/// A [`TokenStore`] as the API's [`Authorizer`](crate::auth::Authorizer): `read` and `write`
/// tokens grant [`Access::Read`](crate::auth::Access::Read) and
/// [`Access::Write`](crate::auth::Access::Write); ping tokens and unknown tokens none.
#[derive(Clone)]
pub struct StoredTokens(pub Arc<dyn TokenStore>);

impl fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTokens").finish_non_exhaustive()
    }
}

#[async_trait]
impl crate::auth::Authorizer for StoredTokens {
    async fn check(
        &self,
        token: &str,
    ) -> Result<Option<crate::auth::Access>, crate::auth::AuthError> {
        use crate::auth::Access;
        let info = self
            .0
            .verify(token)
            .await
            .map_err(|e| crate::auth::AuthError(e.to_string()))?;
        Ok(info.and_then(|info| match info.scope {
            Scope::Read => Some(Access::Read),
            Scope::Write => Some(Access::Write),
            Scope::Ping { .. } => None,
        }))
    }
}

/// Random bytes from the thread's CSPRNG (ChaCha seeded by the OS).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A fresh public id: 40 random bits as 10 hex digits.
pub(crate) fn new_id() -> String {
    random_hex(5)
}

/// A fresh token for `id`: `dw_ID_SECRET` with 128 random bits of secret.
pub(crate) fn new_token(id: &str) -> Secret {
    Secret(format!("dw_{id}_{}", random_hex(16)))
}

/// The stored form of a token.
pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The id a presented token claims, if it has the token shape at all.
pub(crate) fn claimed_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix("dw_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 10) && hex_of(secret, 32)).then_some(id)
}

/// Whether `presented` hashes to `stored`, in time independent of where they differ.
pub(crate) fn matches(presented: &str, stored: &[u8]) -> bool {
    hash(presented).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() -> Result<(), TokenError> {
        for text in ["ping", "ping:backup", "ping:a.b-c_9", "read", "write"] {
            assert_eq!(Scope::parse(text)?.to_string(), text);
        }
        for bad in ["", "ping:", "ping:a/b", "admin", "READ", "ping:x y"] {
            assert!(
                matches!(Scope::parse(bad), Err(TokenError::BadScope { .. })),
                "{bad:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn write_includes_read_and_nothing_else_widens() -> Result<(), TokenError> {
        let write = Scope::Write;
        assert!(write.allows(&Scope::Read));
        assert!(write.allows(&Scope::Write));
        assert!(!Scope::Read.allows(&Scope::Write));
        let ping = Scope::parse("ping:a")?;
        assert!(!ping.allows(&Scope::Read));
        assert!(!Scope::parse("ping")?.allows(&ping));
        Ok(())
    }

    #[test]
    fn tokens_have_128_random_bits_and_the_id_shape() {
        let id = new_id();
        let token = new_token(&id);
        assert_eq!(claimed_id(token.expose()), Some(id.as_str()));
        assert_eq!(token.expose().len(), 3 + 10 + 1 + 32);
        assert_ne!(new_token(&id), token, "two secrets never repeat");
        assert_eq!(format!("{token:?}"), "<redacted>");
        for bad in [
            "",
            "dw_",
            "dw_abc_def",
            "xx_0123456789_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(claimed_id(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn stored_tokens_authorize_read_and_write_but_not_ping() -> Result<(), TokenError> {
        use crate::auth::{Access, Authorizer};
        let tokens = Arc::new(MemoryTokenStore::new());
        let read = tokens.create(Scope::Read, "", 1).await?;
        let write = tokens.create(Scope::Write, "", 1).await?;
        let ping = tokens.create(Scope::parse("ping:a")?, "", 1).await?;
        let authorizer = StoredTokens(tokens);
        let check = |t: &str| {
            let t = t.to_string();
            let authorizer = authorizer.clone();
            async move { authorizer.check(&t).await.unwrap() }
        };
        assert_eq!(check(read.token.expose()).await, Some(Access::Read));
        assert_eq!(check(write.token.expose()).await, Some(Access::Write));
        assert_eq!(check(ping.token.expose()).await, None);
        assert_eq!(check("nope").await, None);
        Ok(())
    }

    #[test]
    fn hashes_match_only_the_same_token() {
        let token = new_token(&new_id());
        let stored = hash(token.expose());
        assert!(matches(token.expose(), &stored));
        assert!(!matches(&format!("{}0", token.expose()), &stored));
        assert!(!matches(token.expose(), &stored[..31]));
    }
}
