//! [`MemoryStore`]: an in-memory [`Store`](crate::Store) for tests and for users who want no
//! persistence.

/// In-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}
