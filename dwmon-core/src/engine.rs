//! The cycle engine (SPEC 5).

/// Engine.
pub struct Engine {}

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {}
