//! Examples of organisation binaries built on dwmon; see `examples/`.
