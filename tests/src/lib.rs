//! Cross-crate integration tests for dwmon live in `tests/`; this library holds what those
//! tests and their helper binaries share.

pub mod crash;
