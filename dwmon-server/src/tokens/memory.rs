//! [`MemoryTokenStore`]: tokens in memory (tests, and servers that mint tokens at start).

use super::{claimed_id, hash, matches, new_id, new_token, IssuedToken, Scope, TokenError};
use super::{TokenInfo, TokenStore};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Tokens kept in memory (hashes only, like the SQLite store); lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<Vec<(TokenInfo, [u8; 32])>>,
    /// Rotations and revocations so far.
    generation: AtomicU64,
}

impl MemoryTokenStore {
    /// An empty store: no token is valid.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(TokenInfo, [u8; 32])>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn create(&self, scope: Scope, label: &str, now: i64) -> Result<IssuedToken, TokenError> {
        let mut tokens = self.lock();
        let id = loop {
            let id = new_id();
            if !tokens.iter().any(|(t, _)| t.id == id) {
                break id;
            }
        };
        let token = new_token(&id);
        let info = TokenInfo {
            id,
            scope,
            label: label.to_string(),
            created_at: now,
            rotated_at: None,
        };
        tokens.push((info.clone(), hash(token.expose())));
        Ok(IssuedToken { info, token })
    }

    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.lock().iter().map(|(t, _)| t.clone()).collect())
    }

    async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError> {
        let mut tokens = self.lock();
        let (info, stored) = tokens
            .iter_mut()
            .find(|(t, _)| t.id == id)
            .ok_or_else(|| TokenError::UnknownId { id: id.to_string() })?;
        let token = new_token(id);
        *stored = hash(token.expose());
        info.rotated_at = Some(now);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(IssuedToken {
            info: info.clone(),
            token,
        })
    }

    async fn revoke(&self, id: &str) -> Result<(), TokenError> {
        let mut tokens = self.lock();
        let before = tokens.len();
        tokens.retain(|(t, _)| t.id != id);
        if tokens.len() == before {
            return Err(TokenError::UnknownId { id: id.to_string() });
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError> {
        let Some(id) = claimed_id(presented) else {
            return Ok(None);
        };
        Ok(self
            .lock()
            .iter()
            .find(|(t, stored)| t.id == id && matches(presented, stored))
            .map(|(t, _)| t.clone()))
    }

    async fn generation(&self) -> Result<Option<u64>, TokenError> {
        Ok(Some(self.generation.load(Ordering::Acquire)))
    }
}
