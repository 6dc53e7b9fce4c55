//! Conformance tests, one module per area of the format and semantics (the model is croner's `tests/ocps.rs`).
//! Each module is table-driven; the tables live in `tests/conformance/`.

#[path = "conformance/spec2_checker_files.rs"]
mod spec2_checker_files;

#[path = "conformance/spec3_requirements.rs"]
mod spec3_requirements;

#[path = "conformance/spec4_time.rs"]
mod spec4_time;
