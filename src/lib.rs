//! regkit: one tool for a private container registry.
//!
//! The module tree is a map of the product: one module per CLI area, plus the registry.
//! - [`pki`]: certificate authority, site and client certificates, inspection, verification.
//! - [`files`]: atomic writes and private-key file modes, shared by every area that writes.
//! - [`registry`]: the registry server as a library (API routes, auth seam, storage).
//! - [`cli`]: argument parsing and dispatch only; no logic a test would want to reach.
#![warn(missing_docs)]

pub mod cli;
pub mod files;
pub mod pki;
pub mod registry;
