//! Docker Engine: the daemon reads every `*.crt` in `/etc/docker/certs.d/<host[:port]>/` as a
//! CA for that registry, where the directory name is the registry part of the image reference
//! exactly (so no `:443`, see [`RegistryHost`]). No restart is needed.

use std::path::PathBuf;

use super::RegistryHost;

/// The CA file, relative to the root: `etc/docker/certs.d/<host[:port]>/ca.crt`.
pub fn ca_path(registry: &RegistryHost) -> PathBuf {
    PathBuf::from("etc/docker/certs.d").join(registry.authority()).join("ca.crt")
}
