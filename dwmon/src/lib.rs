//! dwmon facade crate.
