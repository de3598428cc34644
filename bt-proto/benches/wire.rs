//! Criterion benches for `wire` (being written).
fn main() {}
