//! Shared fixtures for dwmon benchmarks.
