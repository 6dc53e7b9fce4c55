//! Cross-crate integration tests for dwmon live in `tests/`.
