//! Criterion benches for `metainfo` (being written).
fn main() {}
