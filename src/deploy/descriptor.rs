//! The deployment descriptor, `regkit.yaml`: every choice behind a deployment folder, in one
//! file the user may edit. `regkit init` writes it (see [`to_yaml`]); `regkit render` reads
//! it ([`load`]) and regenerates every templated file from it.
//!
//! The descriptor holds names, never secrets: user names without passwords, and the *path* of
//! the file holding the registry's `http.secret`. Unknown keys are errors, and every error
//! names the key and the line it is on (see [`super::located`]). Semantic checks live in
//! [`super::validate`].

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
pub use super::addresses::{PullAddress, Route};
use super::located::Located;
use crate::pki::KeyType;

/// Schema version written into new descriptors.
pub const VERSION: u32 = 1;
/// Default registry port (inside the container and as published by docker-compose).
pub const DEFAULT_PORT: u16 = 5000;
/// Default Kubernetes NodePort.
pub const DEFAULT_NODE_PORT: u16 = 30500;
/// Default registry image.
pub const DEFAULT_IMAGE: &str = "registry:2";

/// The whole descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    /// Schema version; only [`VERSION`] is understood.
    #[serde(default = "default_version")]
    pub version: u32,
    /// DNS names the registry answers to (certificate SANs; the first is the main one).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// IP addresses the registry answers to (certificate SANs).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// When true, the certificate lacks `localhost`, `127.0.0.1` and `::1`.
    #[serde(default)]
    pub no_local_sans: bool,
    /// Key type of a CA and site certificate `init` generates (`ecdsa-p256`, `rsa-4096`, ...).
    #[serde(default, with = "key_type_name")]
    pub key_type: KeyType,
    /// TCP port the registry listens on (`http.addr`) and docker-compose publishes.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Registry user names (passwords live only in the htpasswd file).
    #[serde(default)]
    pub users: Vec<String>,
    /// Container image that runs the registry.
    #[serde(default = "default_image")]
    pub image: String,
    /// Registry log level (`error`, `warn`, `info` or `debug`).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Where the TLS files are, relative to the deployment folder.
    #[serde(default)]
    pub tls: TlsFiles,
    /// The htpasswd file, relative to the deployment folder.
    #[serde(default = "default_htpasswd")]
    pub htpasswd: String,
    /// The file holding `REGISTRY_HTTP_SECRET=...` (an env file), relative to the folder.
    #[serde(default = "default_http_secret_file")]
    pub http_secret_file: String,
    /// `http.host`: the one external URL (`https://reg.lan`) the registry puts into absolute
    /// `Location` headers; `None` lets it answer with the address each client used.
    #[serde(default)]
    pub http_host: Option<String>,
    /// Where images are stored.
    #[serde(default)]
    pub storage: Storage,
    /// Pull-through cache settings; `None` for an ordinary registry.
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// docker-compose settings.
    #[serde(default)]
    pub compose: Compose,
    /// Kubernetes settings.
    #[serde(default)]
    pub kubernetes: Kubernetes,
}

/// TLS file locations, relative to the deployment folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA certificate clients trust.
    #[serde(default = "default_ca")]
    pub ca: String,
    /// The site (server) certificate chain.
    #[serde(default = "default_certificate")]
    pub certificate: String,
    /// The site private key.
    #[serde(default = "default_key")]
    pub key: String,
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Which storage driver the registry uses.
    #[serde(default)]
    pub driver: Driver,
    /// `storage.delete.enabled`: whether manifests and blobs may be deleted.
    #[serde(default = "yes")]
    pub delete: bool,
    /// `storage.maintenance.uploadpurging`.
    #[serde(default)]
    pub upload_purging: UploadPurging,
    /// S3 settings; required when `driver` is `s3`, refused otherwise.
    #[serde(default)]
    pub s3: Option<S3>,
}

/// A storage driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Local files (a volume in docker-compose, a PersistentVolumeClaim in Kubernetes).
    #[default]
    Filesystem,
    /// An S3-compatible object store.
    S3,
}

/// Purging of abandoned uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadPurging {
    /// Whether old uploads are purged.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Uploads older than this are purged (Go duration, e.g. `168h`).
    #[serde(default = "default_purge_age")]
    pub age: String,
    /// How often to look (Go duration, e.g. `24h`).
    #[serde(default = "default_purge_interval")]
    pub interval: String,
}

/// S3 storage settings. Credentials are not kept here: the registry reads them from
/// `REGISTRY_STORAGE_S3_ACCESSKEY` / `REGISTRY_STORAGE_S3_SECRETKEY` or the instance role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// Bucket name.
    #[serde(default)]
    pub bucket: String,
    /// Region (any value the endpoint accepts, e.g. `us-east-1`).
    #[serde(default)]
    pub region: String,
    /// Endpoint URL for S3-compatible stores (MinIO, Ceph, ...); `None` for AWS.
    #[serde(default)]
    pub regionendpoint: Option<String>,
    /// Path prefix inside the bucket.
    #[serde(default)]
    pub rootdirectory: Option<String>,
    /// Use path-style bucket addressing (MinIO usually needs it).
    #[serde(default)]
    pub forcepathstyle: bool,
    /// Use HTTPS to talk to the store.
    #[serde(default = "yes")]
    pub secure: bool,
}

/// Pull-through cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// The upstream registry, e.g. `https://registry-1.docker.io`.
    pub remoteurl: String,
}

/// docker-compose settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compose {
    /// Restart policy: `no`, `always`, `on-failure` or `unless-stopped`.
    #[serde(default = "default_restart")]
    pub restart: String,
}

/// Kubernetes settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Base name of every object (Deployment, Service, Secrets get suffixes).
    #[serde(default = "default_name")]
    pub name: String,
    /// Namespace everything goes into.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// NodePort of the Service (30000-32767).
    #[serde(default = "default_node_port")]
    pub node_port: u16,
    /// Size of the PersistentVolumeClaim (filesystem storage only).
    #[serde(default = "default_storage_size")]
    pub storage_size: String,
    /// StorageClass of the claim; `None` uses the cluster default.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Ingress settings.
    #[serde(default)]
    pub ingress: Ingress,
    /// Container resources.
    #[serde(default)]
    pub resources: Resources,
}

/// Ingress settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    /// Whether an Ingress is generated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `spec.ingressClassName` (e.g. `nginx`, `traefik`).
    #[serde(default = "default_ingress_class")]
    pub class: String,
    /// Host the Ingress answers for; `None` uses the first of `hosts`.
    #[serde(default)]
    pub host: Option<String>,
    /// Largest request body (a quantity such as `5Gi`); `None`: no limit. nginx gets it as
    /// `proxy-body-size`; traefik through a Buffering middleware (generated only then).
    #[serde(default)]
    pub max_body_size: Option<String>,
}

/// Container resource requests and limits (Kubernetes quantities).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Requests.
    #[serde(default = "default_requests")]
    pub requests: Quantities,
    /// Limits.
    #[serde(default = "default_limits")]
    pub limits: Quantities,
}

/// CPU and memory quantities; `None` leaves one unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantities {
    /// CPU, e.g. `100m` or `1`.
    #[serde(default)]
    pub cpu: Option<String>,
    /// Memory, e.g. `256Mi`.
    #[serde(default)]
    pub memory: Option<String>,
}

impl Descriptor {
    /// A descriptor with every default and the given host names.
    pub fn new(hosts: Vec<String>) -> Self {
        Descriptor {
            version: VERSION,
            hosts,
            ips: Vec::new(),
            no_local_sans: false,
            key_type: KeyType::default(),
            port: DEFAULT_PORT,
            users: Vec::new(),
            image: default_image(),
            log_level: default_log_level(),
            tls: TlsFiles::default(),
            htpasswd: default_htpasswd(),
            http_secret_file: default_http_secret_file(),
            http_host: None,
            storage: Storage::default(),
            proxy: None,
            compose: Compose::default(),
            kubernetes: Kubernetes::default(),
        }
    }

    /// What in this descriptor `regkit serve` does not run, or `None` when it runs the
    /// generated config.yml (filesystem storage, no pull-through cache). The reference
    /// registry (`registry:2`, Debian's `docker-registry`) runs every descriptor.
    pub fn regkit_serve_blocker(&self) -> Option<&'static str> {
        if self.storage.driver == Driver::S3 {
            Some("S3 storage")
        } else if self.proxy.is_some() {
            Some("a pull-through cache (proxy)")
        } else {
            None
        }
    }
}

/// Parses a descriptor from YAML text and validates it. `origin` names the file in errors.
pub fn parse(text: &str, origin: &Path) -> Result<Descriptor, Error> {
    let located = Located::parse(text, origin)?;
    let desc: Descriptor = located.deserialize(text)?;
    let as_json = serde_json::to_value(&desc).map_err(|e| Error::Invalid(e.to_string()))?;
    located.check_types(&as_json)?;
    super::validate::validate(&desc).map_err(|v| located.invalid(v))?;
    Ok(desc)
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Descriptor, Error> {
    let text = crate::files::read_to_string(path)?;
    parse(&text, path)
}

/// The descriptor as `regkit.yaml` text, with a comment on every key, after validating it
/// (errors name the key). [`parse`] reads the text back to an equal descriptor.
pub fn to_yaml(desc: &Descriptor) -> Result<String, Error> {
    super::validate::validate(desc).map_err(|v| Error::Descriptor {
        path: super::layout::DESCRIPTOR.into(),
        line: None,
        key: Some(v.key),
        message: v.message,
    })?;
    super::render::render_descriptor(desc)
}

/// `key_type` as its command-line name (`ecdsa-p256`), the form `--key-type` takes.
mod key_type_name {
    use serde::{Deserialize, Deserializer, Serializer, de};

    use crate::pki::KeyType;

    pub fn serialize<S: Serializer>(k: &KeyType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyType, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

fn yes() -> bool {
    true
}
fn default_version() -> u32 {
    VERSION
}
fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_node_port() -> u16 {
    DEFAULT_NODE_PORT
}
fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_htpasswd() -> String {
    "auth/htpasswd".to_string()
}
fn default_http_secret_file() -> String {
    "auth/http-secret.env".to_string()
}
fn default_ca() -> String {
    "pki/ca.crt".to_string()
}
fn default_certificate() -> String {
    "pki/site.crt".to_string()
}
fn default_key() -> String {
    "pki/site.key".to_string()
}
fn default_purge_age() -> String {
    "168h".to_string()
}
fn default_purge_interval() -> String {
    "24h".to_string()
}
fn default_restart() -> String {
    "unless-stopped".to_string()
}
fn default_name() -> String {
    "registry".to_string()
}
fn default_namespace() -> String {
    "registry".to_string()
}
fn default_storage_size() -> String {
    "10Gi".to_string()
}
fn default_ingress_class() -> String {
    "nginx".to_string()
}
fn default_requests() -> Quantities {
    Quantities { cpu: Some("100m".to_string()), memory: Some("128Mi".to_string()) }
}
fn default_limits() -> Quantities {
    Quantities { cpu: None, memory: Some("1Gi".to_string()) }
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles { ca: default_ca(), certificate: default_certificate(), key: default_key() }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            driver: Driver::Filesystem,
            delete: true,
            upload_purging: UploadPurging::default(),
            s3: None,
        }
    }
}

impl Default for UploadPurging {
    fn default() -> Self {
        UploadPurging {
            enabled: true,
            age: default_purge_age(),
            interval: default_purge_interval(),
        }
    }
}

impl Default for Compose {
    fn default() -> Self {
        Compose { restart: default_restart() }
    }
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            name: default_name(),
            namespace: default_namespace(),
            node_port: DEFAULT_NODE_PORT,
            storage_size: default_storage_size(),
            storage_class: None,
            ingress: Ingress::default(),
            resources: Resources::default(),
        }
    }
}

impl Default for Ingress {
    fn default() -> Self {
        Ingress { enabled: true, class: default_ingress_class(), host: None, max_body_size: None }
    }
}

impl Default for Resources {
    fn default() -> Self {
        Resources { requests: default_requests(), limits: default_limits() }
    }
}
