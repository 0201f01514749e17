//! One integration-test binary for the whole crate (`autotests = false` in Cargo.toml), so the
//! suite links once. Each module tests one area through the real binary and real tools.

mod bench;
mod cli;
mod cli_pki;
mod deploy;
mod doctor;
mod harness;
mod htpasswd;
mod init;
mod init_addresses;
mod k8s_secret;
mod registry_api;
mod registry_clients;
mod registry_serve;
mod trust;
