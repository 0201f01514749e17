//! Deployment folders: the descriptor (`regkit.yaml`), the templated files generated from it,
//! and `render`, which regenerates them in place.
//!
//! A deployment folder looks like this (see [`layout`]):
//!
//! ```text
//! regkit.yaml            the descriptor: every choice, no secrets        (init; user-edited)
//! README.md              what each file is, next steps                   (generated)
//! config.yml             registry configuration, distribution schema     (generated)
//! docker-compose.yml     runs the registry with docker-compose           (generated)
//! pki/ca.crt ca.key site.crt site.key                                   (init, via pki)
//! auth/htpasswd          users (bcrypt)                                  (init, via htpasswd)
//! auth/http-secret.env   REGISTRY_HTTP_SECRET=...                        (init)
//! data/                  image storage for docker-compose (filesystem)   (the registry)
//! k8s/*.yaml             manifests + kustomization.yaml                  (generated)
//! k8s/secret-*.yaml      TLS, htpasswd, http secret, pull secret         (init; render syncs)
//! trust/                 node trust bundle                               (init; render syncs)
//! ```
//!
//! Dependencies run one way: `render` calls `descriptor` (parse, via `located` and
//! `validate`), the renderer, which uses `escape`, and [`secrets::sync`], which rebuilds the
//! secret manifests and the trust bundle from what is already in the folder (never a new key
//! or password). [`init`] sits on top: it calls `pki` and `htpasswd` for the keys and users,
//! [`secrets`] for the manifests and bundle, the renderer for everything else, and `commit`
//! to move it all into place; [`choices`] turns `init`'s flags into a descriptor.

pub mod addresses;
pub mod choices;
mod commit;
pub mod descriptor;
pub mod escape;
pub mod init;
pub mod located;
mod render;
pub mod secrets;
pub mod validate;

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

pub use descriptor::Descriptor;
pub use init::{InitOptions, InitReport, init};
pub use render::{all_generated_paths, render_all};

/// Errors from deployment descriptors and rendering.
#[derive(Debug, Error)]
pub enum Error {
    /// The descriptor is not valid; names the file, line and key when known.
    #[error("{}", descriptor_message(path, *line, key.as_deref(), message))]
    Descriptor {
        /// The descriptor file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<u64>,
        /// Dotted key path (`storage.s3.bucket`), when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The folder has no descriptor.
    #[error("{} not found: this is not a deployment folder (create one with regkit init)", path.display())]
    NoDescriptor {
        /// The missing descriptor path.
        path: PathBuf,
    },
    /// A template failed to render (a bug in regkit's templates).
    #[error("template {name}: {message}")]
    Template {
        /// Template name.
        name: String,
        /// Handlebars' message.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] crate::files::Error),
    /// `init` found a deployment in the folder and was not asked to replace it.
    #[error("{} is already a deployment (pass --force to regenerate it)", dir.display())]
    AlreadyInitialised {
        /// The deployment folder.
        dir: PathBuf,
    },
    /// The CA in the folder cannot be reused.
    #[error("cannot reuse the CA in {}: {reason} (pass --force to replace it)", dir.display())]
    CaUnusable {
        /// The folder holding `ca.crt` and `ca.key`.
        dir: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A value given to `init` is not usable.
    #[error("{0}")]
    Invalid(String),
    /// Issuing certificates failed.
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    /// Writing the htpasswd file failed.
    #[error(transparent)]
    Htpasswd(#[from] crate::htpasswd::Error),
    /// Building a Kubernetes Secret failed.
    #[error(transparent)]
    K8s(#[from] crate::k8s::Error),
    /// Building the trust bundle failed.
    #[error(transparent)]
    Trust(#[from] crate::trust::Error),
}

fn descriptor_message(path: &Path, line: Option<u64>, key: Option<&str>, message: &str) -> String {
    let mut s = path.display().to_string();
    if let Some(l) = line {
        s.push_str(&format!(":{l}"));
    }
    s.push_str(": ");
    if let Some(k) = key {
        s.push_str(k);
        s.push_str(": ");
    }
    s.push_str(message);
    s
}

/// File and folder names inside a deployment folder.
pub mod layout {
    /// The descriptor.
    pub const DESCRIPTOR: &str = "regkit.yaml";
    /// The deployment's README.
    pub const README: &str = "README.md";
    /// Registry configuration.
    pub const CONFIG: &str = "config.yml";
    /// docker-compose file.
    pub const COMPOSE: &str = "docker-compose.yml";
    /// Kubernetes manifests.
    pub const K8S_DIR: &str = "k8s";
    /// The kustomization inside [`K8S_DIR`].
    pub const K8S_KUSTOMIZATION: &str = "kustomization.yaml";
    /// TLS Secret manifest inside [`K8S_DIR`] (written by init, never by render).
    pub const K8S_SECRET_TLS: &str = "secret-tls.yaml";
    /// htpasswd Secret manifest inside [`K8S_DIR`] (init).
    pub const K8S_SECRET_HTPASSWD: &str = "secret-htpasswd.yaml";
    /// `REGISTRY_HTTP_SECRET` Secret manifest inside [`K8S_DIR`] (init).
    pub const K8S_SECRET_HTTP: &str = "secret-http.yaml";
    /// Pull Secret (dockerconfigjson) manifest inside [`K8S_DIR`] (init).
    pub const K8S_SECRET_PULL: &str = "secret-pull.yaml";
    /// The secret manifests, in kustomization order.
    pub const K8S_SECRETS: [&str; 4] =
        [K8S_SECRET_TLS, K8S_SECRET_HTPASSWD, K8S_SECRET_HTTP, K8S_SECRET_PULL];
    /// Private key material and certificates.
    pub const PKI_DIR: &str = "pki";
    /// Users and the http secret.
    pub const AUTH_DIR: &str = "auth";
    /// Client trust bundle.
    pub const TRUST_DIR: &str = "trust";
    /// The node trust bundle inside [`TRUST_DIR`] (`regkit trust bundle`'s default name).
    pub const TRUST_BUNDLE: &str = "node-trust.tar.gz";
    /// docker-compose's image storage (filesystem driver).
    pub const DATA_DIR: &str = "data";
}

/// Paths inside the registry container, shared by config.yml, docker-compose and the
/// Deployment. `/etc/docker/registry/config.yml` is where `registry:2` looks by default.
pub mod container {
    /// Configuration file.
    pub const CONFIG: &str = "/etc/docker/registry/config.yml";
    /// Its folder (the ConfigMap mount).
    pub const CONFIG_DIR: &str = "/etc/docker/registry";
    /// Image storage.
    pub const DATA: &str = "/var/lib/registry";
    /// htpasswd file.
    pub const HTPASSWD: &str = "/auth/htpasswd";
    /// Its folder (the htpasswd Secret mount).
    pub const AUTH_DIR: &str = "/auth";
    /// TLS certificate (named like the key of a kubernetes.io/tls Secret).
    pub const CERTIFICATE: &str = "/certs/tls.crt";
    /// TLS key.
    pub const KEY: &str = "/certs/tls.key";
    /// Their folder (the TLS Secret mount).
    pub const CERTS_DIR: &str = "/certs";
}

/// Data keys inside the Secrets init writes.
pub mod secret_keys {
    /// Key of the htpasswd file in the htpasswd Secret (mounted as `/auth/htpasswd`).
    pub const HTPASSWD: &str = "htpasswd";
    /// Key of the http secret value in the http Secret.
    pub const HTTP_SECRET: &str = "http-secret";
    /// Name of the variable in the http secret env file.
    pub const HTTP_SECRET_ENV: &str = "REGISTRY_HTTP_SECRET";
}

/// The contents of the http secret env file (`http_secret_file`) for `secret`, as
/// docker-compose's `env_file` reads it.
pub fn http_secret_env_file(secret: &str) -> String {
    format!("{}={secret}\n", secret_keys::HTTP_SECRET_ENV)
}

/// Names of the Kubernetes objects, all derived from `kubernetes.name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct K8sNames {
    /// `app.kubernetes.io/instance` label value.
    pub instance: String,
    /// Deployment.
    pub deployment: String,
    /// Service (NodePort).
    pub service: String,
    /// ConfigMap with config.yml.
    pub config_map: String,
    /// PersistentVolumeClaim.
    pub pvc: String,
    /// ServiceAccount.
    pub service_account: String,
    /// Ingress.
    pub ingress: String,
    /// traefik Middleware limiting request bodies.
    pub middleware: String,
    /// kubernetes.io/tls Secret.
    pub secret_tls: String,
    /// Opaque Secret with the htpasswd file under [`secret_keys::HTPASSWD`].
    pub secret_htpasswd: String,
    /// Opaque Secret with the http secret under [`secret_keys::HTTP_SECRET`].
    pub secret_http: String,
    /// kubernetes.io/dockerconfigjson Secret.
    pub secret_pull: String,
    /// Optional user-made Secret with S3 credentials (`accesskey`, `secretkey`).
    pub secret_s3: String,
    /// Optional user-made Secret with upstream credentials (`username`, `password`).
    pub secret_proxy: String,
}

impl K8sNames {
    /// The names for base name `name`.
    pub fn new(name: &str) -> Self {
        K8sNames {
            instance: name.to_string(),
            deployment: name.to_string(),
            service: name.to_string(),
            config_map: format!("{name}-config"),
            pvc: format!("{name}-data"),
            service_account: name.to_string(),
            ingress: name.to_string(),
            middleware: format!("{name}-body"),
            secret_tls: format!("{name}-tls"),
            secret_htpasswd: format!("{name}-htpasswd"),
            secret_http: format!("{name}-http"),
            secret_pull: format!("{name}-pull"),
            secret_s3: format!("{name}-s3"),
            secret_proxy: format!("{name}-proxy"),
        }
    }
}

impl Descriptor {
    /// The Kubernetes object names of this deployment.
    pub fn k8s_names(&self) -> K8sNames {
        K8sNames::new(&self.kubernetes.name)
    }
}

/// First bytes of every manifest the templates generate.
const GENERATED_MARKER: &[u8] = b"# Rendered by regkit";

/// What [`render_dir`] did, paths relative to the folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenderReport {
    /// Files written because their contents changed (or were missing).
    pub changed: Vec<PathBuf>,
    /// Files already up to date, left untouched.
    pub unchanged: Vec<PathBuf>,
    /// Generated files the descriptor no longer produces (e.g. `k8s/pvc.yaml` after
    /// switching to S3), removed.
    pub removed: Vec<PathBuf>,
    /// Problems render cannot fix itself (e.g. a certificate that does not name a new host),
    /// each with the command that does.
    pub warnings: Vec<String>,
}

/// Re-renders every generated file of the deployment folder `dir` from `dir/regkit.yaml`,
/// and rebuilds the secret manifests and the trust bundle that no longer match it (see
/// [`secrets::sync`]: the pull secret and the bundle follow the pull addresses, with the
/// same user and password). Everything is rendered and staged first and then committed
/// together; files whose contents are unchanged are not rewritten; keys, certificates and
/// passwords are never created or changed.
pub fn render_dir(dir: &Path) -> Result<RenderReport, Error> {
    let desc_path = dir.join(layout::DESCRIPTOR);
    if !desc_path.is_file() {
        return Err(Error::NoDescriptor { path: desc_path });
    }
    let desc = descriptor::load(&desc_path)?;
    let files = render_all(&desc)?;
    let synced = secrets::sync(dir, &desc)?;
    let mut report = RenderReport { warnings: synced.warnings, ..RenderReport::default() };
    let mut set = crate::files::FileSet::new();
    for (rel, contents) in &files {
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(old) if &old == contents => report.unchanged.push(rel.clone()),
            _ => {
                set.add(&path, contents, crate::files::MODE_PUBLIC)?;
                report.changed.push(rel.clone());
            }
        }
    }
    for (rel, contents, mode) in &synced.files {
        set.add(&dir.join(rel), contents, *mode)?;
        report.changed.push(rel.clone());
    }
    let missing = secrets::uncovered_names(dir, &desc);
    if !missing.is_empty() {
        report.warnings.push(secrets::uncovered_warning(&desc, &missing));
    }
    set.commit()?;
    for rel in all_generated_paths() {
        let path = dir.join(&rel);
        let stale = !files.iter().any(|(p, _)| p == &rel);
        // Only files that carry the generated marker: never a file the user wrote.
        if stale && std::fs::read(&path).is_ok_and(|t| t.starts_with(GENERATED_MARKER)) {
            std::fs::remove_file(&path)
                .map_err(|e| crate::files::Error::io("cannot remove", &path, e))?;
            report.removed.push(rel);
        }
    }
    Ok(report)
}
