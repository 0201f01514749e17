//! One integration-test binary for the whole crate (`autotests = false` in Cargo.toml), so the
//! suite links once. Each module tests one area through the real binary and real tools.

mod bench;
mod harness;
