//! SPEC section tests (being written).
