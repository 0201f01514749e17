//! regkit: one tool for a private container registry.
//!
//! The module tree is a map of the product: one module per CLI area, plus the registry.
//! - [`pki`]: certificate authority, site and client certificates, inspection, verification.
//! - [`files`]: atomic writes and private-key file modes, shared by every area that writes.
//! - [`htpasswd`]: bcrypt password files compatible with Apache's `htpasswd -B`.
//! - [`bench`]: `regkit bench`, a checked benchmark client for any registry.
//! - [`cli`]: argument parsing and dispatch only; no logic a test would want to reach.
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod files;
pub mod htpasswd;
pub mod pki;
