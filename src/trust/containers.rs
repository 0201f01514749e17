//! Podman, CRI-O, Buildah and skopeo (containers/image): they read `*.crt` in
//! `/etc/containers/certs.d/<host[:port]>/` as CAs for that registry (and fall back to Docker's
//! directory). The same directory works as skopeo's and podman's `--cert-dir`.

use std::path::PathBuf;

use super::RegistryHost;

/// The CA file, relative to the root: `etc/containers/certs.d/<host[:port]>/ca.crt`.
pub fn ca_path(registry: &RegistryHost) -> PathBuf {
    PathBuf::from("etc/containers/certs.d").join(registry.authority()).join("ca.crt")
}
