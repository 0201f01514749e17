//! Kubernetes objects around a registry: the Secrets a cluster needs to pull from it or to
//! serve it (`kubernetes.io/dockerconfigjson`, `kubernetes.io/tls`, `Opaque` for a CA
//! bundle) and a ServiceAccount that carries the pull secret.
//!
//! [`secret`] builds the objects from credentials and files (checking them as kubectl and
//! the API server would; the TLS pair check is in `tls.rs`); [`manifest`] turns them into YAML or JSON with serde, several per
//! file, and writes or appends them. Nothing here prompts or prints: the command line lives
//! in `crate::cli::k8s`, and `regkit init` calls this module directly, e.g.
//!
//! ```no_run
//! use regkit::k8s::{self, Format, RegistryCredentials};
//! # fn main() -> Result<(), k8s::Error> {
//! let creds = RegistryCredentials {
//!     server: "registry.example:5000",
//!     username: "ci",
//!     password: "s3cret",
//!     email: None,
//! };
//! let pull = k8s::docker_registry("regcred", Some("apps"), &creds)?;
//! let sa = k8s::service_account("puller", Some("apps"), &["regcred"])?;
//! let yaml = k8s::render(&[pull.into(), sa.into()], Format::Yaml)?;
//! # let _ = yaml; Ok(()) }
//! ```

pub mod manifest;
mod names;
pub mod secret;
mod tls;

use std::path::PathBuf;

use thiserror::Error;

pub use manifest::{Change, Format, Object, ObjectMeta, WriteMode, render, write};
pub use names::{validate_data_key, validate_name, validate_namespace};
pub use secret::{
    DEFAULT_SERVER, FileSpec, RegistryCredentials, Secret, ServiceAccount, SourceFile,
    docker_config_json, docker_config_json_all, docker_registry, docker_registry_all, generic,
    service_account,
};
pub use tls::{check_pair, tls};

/// Errors from building and writing Kubernetes manifests.
#[derive(Debug, Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] crate::files::Error),
    /// An object name or namespace breaks the API server's rules.
    #[error("invalid {what} {value:?}: {why}")]
    InvalidName {
        /// What the value names ("secret name", "namespace", ...).
        what: &'static str,
        /// The rejected value.
        value: String,
        /// The rule it breaks.
        why: String,
    },
    /// A Secret data key breaks kubectl's rules.
    #[error("invalid secret key {key:?}: {why}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// Two data entries have the same key.
    #[error("cannot add key {key:?}: another key by that name already exists")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A `--from-file` argument is malformed.
    #[error("invalid --from-file {spec:?}: {why}")]
    InvalidFileSpec {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A docker-registry credential field is unusable.
    #[error("invalid {field}: {why}")]
    InvalidCredential {
        /// The field ("server", "username", "password").
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A pull secret names the same registry address twice.
    #[error("registry address {server:?} is given twice in one pull secret")]
    DuplicateServer {
        /// The address.
        server: String,
    },
    /// The certificate of a TLS secret cannot be used.
    #[error("{source_name}: {why}")]
    Certificate {
        /// Where the certificate came from (usually its path).
        source_name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The private key of a TLS secret cannot be used.
    #[error("{source_name}: {why}")]
    Key {
        /// Where the key came from (usually its path).
        source_name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key {key} does not match the certificate {cert}: {detail}")]
    KeyMismatch {
        /// The certificate's source.
        cert: String,
        /// The key's source.
        key: String,
        /// What was compared and any hint.
        detail: String,
    },
    /// The Secret is larger than Kubernetes stores.
    #[error("secret {name:?} holds {size} bytes of data; Kubernetes refuses secrets over 1 MiB")]
    TooLarge {
        /// The secret's name.
        name: String,
        /// Total data size in bytes.
        size: usize,
    },
    /// The output file exists and neither appending nor replacing was asked for.
    #[error("{} already exists (pass --append to add to it, or --force to replace it)", path.display())]
    OutputExists {
        /// The output file.
        path: PathBuf,
    },
    /// An existing manifest file to append to cannot be read as manifests.
    #[error("cannot append to {}: {why}", path.display())]
    NotManifests {
        /// The file.
        path: PathBuf,
        /// Why it could not be parsed.
        why: String,
    },
    /// Serializing to YAML or JSON failed.
    #[error("cannot render the manifest: {0}")]
    Render(String),
}
