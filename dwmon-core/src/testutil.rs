//! Test helpers: scripted RowGetter, recording CheckHandler.
