//! regkit: one tool for a private container registry.
//!
//! The module tree is a map of the product: one module per CLI area, plus the registry.
//! - [`pki`]: certificate authority, site and client certificates, inspection, verification.
//! - [`deploy`]: deployment folders: `init`, the `regkit.yaml` descriptor, templates, `render`.
//! - [`files`]: atomic writes and private-key file modes, shared by every area that writes.
//! - [`htpasswd`]: bcrypt password files compatible with Apache's `htpasswd -B`.
//! - [`trust`]: the CA on nodes: Docker, containerd, Podman/CRI-O, k3s, system store; bundles.
//! - [`k8s`]: Kubernetes Secrets and ServiceAccounts for pulling from and serving the registry.
//! - [`doctor`]: checks a registry address as a Docker/containerd client would.
//! - [`registry`]: the registry: API routes, auth, storage, config.yml, TLS and the server.
//! - [`bench`]: `regkit bench`, a checked benchmark client for any registry.
//! - [`cli`]: argument parsing and dispatch only; no logic a test would want to reach.
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod deploy;
pub mod doctor;
pub mod files;
pub mod htpasswd;
pub mod k8s;
pub mod pki;
pub mod registry;
pub mod trust;
