//! [`CachedTokens`]: verified tokens kept in memory, so a ping costs a SHA-256 and a hash map
//! lookup instead of a database read.
//!
//! How quickly a change takes effect:
//!
//! - a token revoked or rotated **through the cache** (the same [`CachedTokens`]) stops
//!   working at once: its entries are dropped before the call returns;
//! - a token revoked or rotated **anywhere else** (`dwmon token revoke` in another process on
//!   the same store file, or another handle on the same store) stops working within
//!   [`CachedTokens::recheck`] (default [`DEFAULT_RECHECK`], 1 s): the first verification
//!   after that interval reads the store's [`TokenStore::generation`] (one small query) and
//!   empties the cache if it moved; every verification waits for that read, so none is
//!   answered from a cache older than the interval. A store without a generation
//!   (`Ok(None)`) has its cache emptied every interval instead.
//!
//! Only valid tokens are cached (an unknown token is looked up every time, so a creation is
//! seen at once); the cache holds at most [`CachedTokens::capacity`] tokens and starts over
//! when full.

use super::{hash, IssuedToken, Scope, TokenError, TokenInfo, TokenStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How long a cached verification is trusted without asking the store whether tokens
/// changed elsewhere.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);

/// Tokens cached at most by default.
pub const DEFAULT_CAPACITY: usize = 10_000;

struct Checked {
    /// The store's generation when last read (`None`: the store has none).
    generation: Option<u64>,
}

/// A [`TokenStore`] that remembers verified tokens (by SHA-256) in memory; see the module
/// docs for when a revocation takes effect.
///
/// ```
/// use dwmon_server::tokens::{CachedTokens, MemoryTokenStore, Scope, TokenStore};
/// use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let tokens = CachedTokens::new(Arc::new(MemoryTokenStore::new()));
/// let issued = tokens.create(Scope::Read, "dashboard", 1_700_000_000).await?;
/// assert!(tokens.verify(issued.token.expose()).await?.is_some()); // read from the store
/// assert!(tokens.verify(issued.token.expose()).await?.is_some()); // from memory
/// tokens.revoke(&issued.info.id).await?;
/// assert!(tokens.verify(issued.token.expose()).await?.is_none()); // at once
/// # Ok::<(), dwmon_server::tokens::TokenError>(())
/// # }).unwrap();
/// ```
pub struct CachedTokens {
    inner: Arc<dyn TokenStore>,
    entries: Mutex<HashMap<[u8; 32], TokenInfo>>,
    /// Serializes generation reads; holds the last generation seen.
    checked: tokio::sync::Mutex<Checked>,
    /// Nanoseconds after `epoch` until which the cache is trusted without a generation read.
    trusted_until: AtomicU64,
    /// Bumped by every revoke and rotate through the cache: a lookup that raced one is not
    /// cached.
    changes: AtomicU64,
    epoch: Instant,
    recheck: Duration,
    capacity: usize,
}

impl std::fmt::Debug for CachedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTokens")
            .field("recheck", &self.recheck)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl CachedTokens {
    /// A cache over `inner` with [`DEFAULT_RECHECK`] and [`DEFAULT_CAPACITY`].
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        Self::with_limits(inner, DEFAULT_RECHECK, DEFAULT_CAPACITY)
    }

    /// A cache over `inner` trusting a verification for `recheck` and holding at most
    /// `capacity` tokens (at least 1).
    pub fn with_limits(inner: Arc<dyn TokenStore>, recheck: Duration, capacity: usize) -> Self {
        CachedTokens {
            inner,
            entries: Mutex::new(HashMap::new()),
            checked: tokio::sync::Mutex::new(Checked { generation: None }),
            // 0: the first verification reads the generation.
            trusted_until: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            epoch: Instant::now(),
            recheck,
            capacity: capacity.max(1),
        }
    }

    /// How long a verification is trusted before the store is asked whether tokens changed.
    pub fn recheck(&self) -> Duration {
        self.recheck
    }

    /// The most tokens kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Tokens cached now.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<[u8; 32], TokenInfo>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Makes sure the cache is no older than `recheck`: reads the store's generation when
    /// the interval has passed, emptying the cache if tokens changed.
    async fn refresh(&self) -> Result<(), TokenError> {
        if self.nanos_since_epoch(Instant::now()) < self.trusted_until.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut checked = self.checked.lock().await;
        // Another verification may have refreshed while this one waited.
        let started = Instant::now();
        if self.nanos_since_epoch(started) < self.trusted_until.load(Ordering::Acquire) {
            return Ok(());
        }
        let generation = self.inner.generation().await?;
        if generation.is_none() || generation != checked.generation {
            self.entries().clear();
            checked.generation = generation;
        }
        // Trusted from the moment of the read, not of its answer: a change committed while
        // the read ran is seen by the next one.
        let until = self.nanos_since_epoch(started + self.recheck);
        self.trusted_until.store(until, Ordering::Release);
        Ok(())
    }

    fn forget_id(&self, id: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.entries().retain(|_, info| info.id != id);
    }
}

#[async_trait]
impl TokenStore for CachedTokens {
    async fn create(&self, scope: Scope, label: &str, now: i64) -> Result<IssuedToken, TokenError> {
        self.inner.create(scope, label, now).await
    }

    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        self.inner.list().await
    }

    async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError> {
        let rotated = self.inner.rotate(id, now).await;
        self.forget_id(id);
        rotated
    }

    async fn revoke(&self, id: &str) -> Result<(), TokenError> {
        let revoked = self.inner.revoke(id).await;
        self.forget_id(id);
        revoked
    }

    async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError> {
        self.refresh().await?;
        let key = hash(presented);
        if let Some(info) = self.entries().get(&key) {
            return Ok(Some(info.clone()));
        }
        let changes = self.changes.load(Ordering::Acquire);
        let found = self.inner.verify(presented).await?;
        if let Some(info) = &found {
            let mut entries = self.entries();
            if self.changes.load(Ordering::Acquire) != changes {
                return Ok(found);
            }
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, info.clone());
        }
        Ok(found)
    }

    async fn generation(&self) -> Result<Option<u64>, TokenError> {
        self.inner.generation().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{MemoryTokenStore, SqliteTokenStore};

    /// Counts the verifications that reach the store.
    #[derive(Default)]
    struct Counting {
        tokens: MemoryTokenStore,
        verified: AtomicU64,
        generations: AtomicU64,
    }

    #[async_trait]
    impl TokenStore for Counting {
        async fn create(&self, s: Scope, l: &str, n: i64) -> Result<IssuedToken, TokenError> {
            self.tokens.create(s, l, n).await
        }
        async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
            self.tokens.list().await
        }
        async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError> {
            self.tokens.rotate(id, now).await
        }
        async fn revoke(&self, id: &str) -> Result<(), TokenError> {
            self.tokens.revoke(id).await
        }
        async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError> {
            self.verified.fetch_add(1, Ordering::Relaxed);
            self.tokens.verify(presented).await
        }
        async fn generation(&self) -> Result<Option<u64>, TokenError> {
            self.generations.fetch_add(1, Ordering::Relaxed);
            self.tokens.generation().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_valid_token_is_read_once_and_an_unknown_one_every_time() -> Result<(), TokenError> {
        let store = Arc::new(Counting::default());
        let cache = CachedTokens::new(Arc::clone(&store) as Arc<dyn TokenStore>);
        let issued = cache.create(Scope::parse("ping:a")?, "", 1).await?;
        for _ in 0..100 {
            assert!(cache.verify(issued.token.expose()).await?.is_some());
            assert!(cache.verify("dw_0000000000_nope").await?.is_none());
        }
        assert_eq!(store.verified.load(Ordering::Relaxed), 1 + 100);
        assert_eq!(store.generations.load(Ordering::Relaxed), 1);
        // A second later the generation is read again, once.
        tokio::time::advance(DEFAULT_RECHECK).await;
        for _ in 0..10 {
            assert!(cache.verify(issued.token.expose()).await?.is_some());
        }
        assert_eq!(store.generations.load(Ordering::Relaxed), 2);
        assert_eq!(store.verified.load(Ordering::Relaxed), 101, "still cached");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn revoke_and_rotate_through_the_cache_take_effect_at_once() -> Result<(), TokenError> {
        let cache = CachedTokens::new(Arc::new(MemoryTokenStore::new()));
        let first = cache.create(Scope::Write, "", 1).await?;
        let second = cache.create(Scope::Read, "", 1).await?;
        assert!(cache.verify(first.token.expose()).await?.is_some());
        assert!(cache.verify(second.token.expose()).await?.is_some());
        let rotated = cache.rotate(&first.info.id, 2).await?;
        assert_eq!(cache.verify(first.token.expose()).await?, None);
        assert!(cache.verify(rotated.token.expose()).await?.is_some());
        cache.revoke(&first.info.id).await?;
        assert_eq!(cache.verify(rotated.token.expose()).await?, None);
        assert!(
            cache.verify(second.token.expose()).await?.is_some(),
            "others stay"
        );
        Ok(())
    }

    /// Two connections on one file, as `dwmon serve` and `dwmon token revoke` are.
    #[tokio::test(start_paused = true)]
    async fn a_revocation_by_another_connection_takes_effect_within_the_recheck(
    ) -> Result<(), TokenError> {
        let dir = tempfile::tempdir().map_err(|e| TokenError::Task(e.to_string()))?;
        let path = dir.path().join("dwmon.sqlite");
        let served = CachedTokens::new(Arc::new(SqliteTokenStore::open(&path)?));
        let other = SqliteTokenStore::open(&path)?;
        let kept = other.create(Scope::parse("ping:a")?, "", 1).await?;
        let revoked = other.create(Scope::parse("ping:b")?, "", 1).await?;
        let rotated = other.create(Scope::parse("ping:c")?, "", 1).await?;
        for token in [&kept, &revoked, &rotated] {
            assert!(served.verify(token.token.expose()).await?.is_some());
        }
        other.revoke(&revoked.info.id).await?;
        let new = other.rotate(&rotated.info.id, 2).await?;
        // Inside the interval the cache still answers (this is the bound, not a wish).
        tokio::time::advance(DEFAULT_RECHECK - Duration::from_millis(1)).await;
        assert!(served.verify(revoked.token.expose()).await?.is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(served.verify(revoked.token.expose()).await?, None);
        assert_eq!(served.verify(rotated.token.expose()).await?, None);
        assert!(served.verify(new.token.expose()).await?.is_some());
        assert!(served.verify(kept.token.expose()).await?.is_some());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_without_a_generation_is_forgotten_every_interval() -> Result<(), TokenError> {
        struct NoGeneration(MemoryTokenStore);
        #[async_trait]
        impl TokenStore for NoGeneration {
            async fn create(&self, s: Scope, l: &str, n: i64) -> Result<IssuedToken, TokenError> {
                self.0.create(s, l, n).await
            }
            async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
                self.0.list().await
            }
            async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError> {
                self.0.rotate(id, now).await
            }
            async fn revoke(&self, id: &str) -> Result<(), TokenError> {
                self.0.revoke(id).await
            }
            async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError> {
                self.0.verify(presented).await
            }
        }
        let store = Arc::new(NoGeneration(MemoryTokenStore::new()));
        let cache = CachedTokens::new(Arc::clone(&store) as Arc<dyn TokenStore>);
        let issued = store.create(Scope::Read, "", 1).await?;
        assert!(cache.verify(issued.token.expose()).await?.is_some());
        assert_eq!(cache.len(), 1);
        store.revoke(&issued.info.id).await?;
        tokio::time::advance(DEFAULT_RECHECK).await;
        assert_eq!(cache.verify(issued.token.expose()).await?, None);
        assert!(cache.is_empty());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_never_holds_more_than_its_capacity() -> Result<(), TokenError> {
        let cache =
            CachedTokens::with_limits(Arc::new(MemoryTokenStore::new()), DEFAULT_RECHECK, 3);
        for _ in 0..10 {
            let issued = cache.create(Scope::Read, "", 1).await?;
            assert!(cache.verify(issued.token.expose()).await?.is_some());
            assert!(cache.len() <= 3);
        }
        Ok(())
    }
}
