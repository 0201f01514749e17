//! `regkit serve`'s configuration: the reference registry's `config.yml` schema, its
//! `REGISTRY_*` environment overrides, regkit's embedded default and the command-line flags,
//! resolved into one validated [`ServeConfig`].
//!
//! Order of precedence, lowest first: the file (or the embedded default), environment
//! overrides (applied to the untyped tree, as the reference does), then flags. Keys regkit
//! does not support are collected in [`ServeConfig::unsupported`] for one start-up warning;
//! keys whose absence would silently change behaviour (another storage driver, token auth,
//! Let's Encrypt, a URL prefix, read-only mode, a pull-through cache) are errors. This module
//! only reads settings and says what they mean ([`warnings`]); `registry::tls`,
//! `registry::server` and `registry::serve` act on them.
//!
//! regkit extensions to the schema, all in places where the reference registry ignores
//! unknown keys (so the same file still starts it): `storage.filesystem.fsync` (default true;
//! `storage.fsync` is accepted too, but the reference refuses a config that has it),
//! `http.tls.reloadinterval` (how often certificate files are checked; default 2s, 0 = only
//! on SIGHUP) and `http.chunkminlength` (bytes advertised as `OCI-Chunk-Min-Length` when an
//! upload starts; default unset).

mod duration;
mod schema;
mod section;
pub mod value;
mod warnings;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use thiserror::Error;

pub use duration::{format as format_duration, parse as parse_duration};
pub use warnings::{Warning, warnings};

/// Storage root of the embedded default.
pub const EMBEDDED_ROOT: &str = "./data";
/// Certificate the embedded default serves when it exists (what `regkit certs site` writes).
pub const EMBEDDED_TLS_CERT: &str = "./pki/site.crt";
/// Key the embedded default serves when it exists.
pub const EMBEDDED_TLS_KEY: &str = "./pki/site.key";
/// htpasswd file the embedded default uses when it exists (what `regkit init` writes).
pub const EMBEDDED_HTPASSWD: &str = "./auth/htpasswd";
/// Address when none is configured and TLS is off: loopback only.
pub const DEFAULT_PLAIN_ADDR: &str = "127.0.0.1:5000";
/// Address when none is configured and TLS is on.
pub const DEFAULT_TLS_ADDR: &str = ":5000";
/// `http.draintimeout` when not set.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// `http.tls.reloadinterval` when not set.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Largest manifest accepted (the reference's limit; the spec asks for at least 4 MB).
pub const DEFAULT_MANIFEST_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// `auth.htpasswd.realm` when not set.
pub const DEFAULT_REALM: &str = "regkit";

/// The embedded default configuration (used without `--config`).
pub const EMBEDDED_DEFAULT: &str = "\
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: ./data
http:
  headers:
    X-Content-Type-Options: [nosniff]
";

/// Errors from reading the configuration, each naming the file or key involved.
#[derive(Debug, Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{}: invalid YAML: {message}", path.display())]
    Yaml {
        /// The configuration file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has the wrong type.
    #[error("{key}: expected {expected}, found {found}")]
    Type {
        /// Key path, e.g. `http.draintimeout`.
        key: String,
        /// What the key must be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A key has a value regkit cannot use.
    #[error("{key}: {message}")]
    Invalid {
        /// Key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A key asks for something regkit does not do yet, and ignoring it would be unsafe.
    #[error("{key}: {what} is not supported yet")]
    Unsupported {
        /// Key path.
        key: String,
        /// The feature asked for.
        what: String,
    },
    /// The address cannot be used.
    #[error("http.addr {addr:?}: {message}")]
    Addr {
        /// The address as configured.
        addr: String,
        /// What is wrong.
        message: String,
    },
    /// Plain HTTP was configured on an address other machines can reach.
    #[error(
        "refusing plain HTTP on {addr}, which is not a loopback address: configure TLS \
         (http.tls or --tls-cert/--tls-key, certificates from `regkit certs site`) or pass \
         --insecure-http"
    )]
    PlainHttpRefused {
        /// The address.
        addr: String,
    },
}

/// Where the settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A `config.yml` file.
    File(PathBuf),
    /// The embedded default.
    Embedded,
}

/// The effective, validated settings of `regkit serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `http.addr` as configured (`:5000`, `127.0.0.1:5000`, `[::1]:5000`, `localhost:5000`).
    pub addr: String,
    /// TLS settings; `None` is plain HTTP.
    pub tls: Option<TlsSettings>,
    /// HTTP/2 offered via ALPN (`http.http2.disabled` turns it off).
    pub http2: bool,
    /// `http.headers`: added to every response that does not already set them.
    pub headers: Vec<(HeaderName, Vec<HeaderValue>)>,
    /// `http.draintimeout`: how long in-flight requests may finish after SIGTERM.
    pub draintimeout: Duration,
    /// `http.host`: the registry's external URL (`https://reg.example.com:5000`, no trailing
    /// slash), which makes `Location` headers absolute unless `relative_urls` is set.
    pub host: Option<String>,
    /// `http.relativeurls`: `Location` headers stay relative even when `host` is set.
    pub relative_urls: bool,
    /// `http.chunkminlength` (regkit extension): sent as `OCI-Chunk-Min-Length` when an
    /// upload starts; `None` sends no header.
    pub chunk_min_length: Option<u64>,
    /// Storage settings.
    pub storage: StorageSettings,
    /// `auth.htpasswd`; `None` means the registry is open.
    pub auth: Option<HtpasswdSettings>,
    /// Logging.
    pub log: LogSettings,
    /// `catalog.maxentries`: the most repositories one catalog page returns.
    pub catalog_max_entries: u64,
    /// Largest manifest accepted on `PUT`, in bytes.
    pub manifest_max_bytes: u64,
    /// Key paths present but not supported (and ignored), for one start-up warning.
    pub unsupported: Vec<String>,
}

/// `http.tls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// PEM CA bundles that client certificates must chain to; empty = no client certificates.
    pub client_cas: Vec<PathBuf>,
    /// Whether a client certificate is required when `client_cas` is set.
    pub client_auth: ClientAuth,
    /// Lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// How often the certificate files are checked for changes (zero: only on SIGHUP).
    pub reload_interval: Duration,
}

/// `http.tls.clientauth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `require-and-verify-client-cert` (the default).
    Require,
    /// `verify-client-cert-if-given`.
    IfGiven,
}

/// `http.tls.minimumtls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `tls1.2` (the default).
    Tls12,
    /// `tls1.3`.
    Tls13,
}

/// `storage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    /// `storage.filesystem.rootdirectory`.
    pub root: PathBuf,
    /// `storage.delete.enabled`.
    pub delete_enabled: bool,
    /// `storage.filesystem.fsync` (regkit extension): sync files and directories before
    /// answering a write.
    pub fsync: bool,
    /// `storage.maintenance.uploadpurging`.
    pub upload_purging: UploadPurging,
}

/// `storage.maintenance.uploadpurging`: removal of abandoned uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPurging {
    /// Whether purging runs.
    pub enabled: bool,
    /// Uploads older than this are removed.
    pub age: Duration,
    /// How often purging runs.
    pub interval: Duration,
    /// Only report what would be removed.
    pub dry_run: bool,
}

impl Default for UploadPurging {
    /// The reference's defaults: enabled, age 168h, interval 24h.
    fn default() -> Self {
        UploadPurging {
            enabled: true,
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(24 * 3600),
            dry_run: false,
        }
    }
}

/// `auth.htpasswd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdSettings {
    /// Realm in the `WWW-Authenticate` challenge.
    pub realm: String,
    /// The htpasswd file (bcrypt entries).
    pub path: PathBuf,
}

/// `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// `log.level`.
    pub level: LogLevel,
    /// `log.formatter`.
    pub formatter: LogFormat,
    /// Access log on (`log.accesslog.disabled` turns it off).
    pub access_log: bool,
}

/// `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `error` (also `panic`, `fatal`).
    Error,
    /// `warn`.
    Warn,
    /// `info` (the default).
    Info,
    /// `debug`.
    Debug,
    /// `trace`.
    Trace,
}

impl LogLevel {
    /// The level as a `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `log.formatter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command-line overrides; each replaces the corresponding setting.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--addr`.
    pub addr: Option<String>,
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--tls-cert` (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// `--htpasswd`.
    pub htpasswd: Option<PathBuf>,
    /// `--insecure-http`: allow plain HTTP on a non-loopback address.
    pub insecure_http: bool,
}

/// Reads `file` (or the embedded default), applies `REGISTRY_*` variables from `env`, then
/// `flags`, and validates the result. Relative paths are relative to the working directory,
/// as with the reference registry.
pub fn load<I>(file: Option<&Path>, env: I, flags: &Overrides) -> Result<ServeConfig, Error>
where
    I: IntoIterator<Item = (String, String)>,
{
    load_in(Path::new("."), file, env, flags)
}

/// [`load`] with the embedded default's files (`./pki/site.crt`, `./pki/site.key`,
/// `./auth/htpasswd`, `./data`) looked up in `dir` instead of the working directory.
pub fn load_in<I>(
    dir: &Path,
    file: Option<&Path>,
    env: I,
    flags: &Overrides,
) -> Result<ServeConfig, Error>
where
    I: IntoIterator<Item = (String, String)>,
{
    // `dir` itself for ".", so that the working directory's paths print as `./pki/site.crt`.
    let embedded = |rel: &str| {
        if dir == Path::new(".") { PathBuf::from(rel) } else { dir.join(rel) }
    };
    let (text, source) = match file {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|source| Error::Read { path: path.to_path_buf(), source })?,
            Source::File(path.to_path_buf()),
        ),
        None => (EMBEDDED_DEFAULT.to_string(), Source::Embedded),
    };
    let shown = file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("(embedded default)"));
    let mut tree = value::parse(&text)
        .map_err(|e| Error::Yaml { path: shown, message: e.to_string().replace('\n', " ") })?;
    value::apply_env(&mut tree, env);
    let mut cfg = schema::from_tree(tree)?;
    if source == Source::Embedded && cfg.storage.root == Path::new(EMBEDDED_ROOT) {
        cfg.storage.root = embedded(EMBEDDED_ROOT);
    }

    if let (Some(certificate), Some(key)) = (&flags.tls_cert, &flags.tls_key) {
        let mut tls = cfg.tls.take().unwrap_or_else(|| TlsSettings {
            certificate: PathBuf::new(),
            key: PathBuf::new(),
            client_cas: Vec::new(),
            client_auth: ClientAuth::Require,
            min_version: TlsVersion::Tls12,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        });
        tls.certificate = certificate.clone();
        tls.key = key.clone();
        cfg.tls = Some(tls);
    } else if flags.tls_cert.is_some() || flags.tls_key.is_some() {
        return Err(Error::Invalid {
            key: "--tls-cert/--tls-key".into(),
            message: "give both or neither".into(),
        });
    }
    let (cert, key) = (embedded(EMBEDDED_TLS_CERT), embedded(EMBEDDED_TLS_KEY));
    if cfg.tls.is_none() && source == Source::Embedded && cert.is_file() && key.is_file() {
        cfg.tls = Some(TlsSettings {
            certificate: cert,
            key,
            client_cas: Vec::new(),
            client_auth: ClientAuth::Require,
            min_version: TlsVersion::Tls12,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        });
    }
    let htpasswd = embedded(EMBEDDED_HTPASSWD);
    if cfg.auth.is_none() && source == Source::Embedded && htpasswd.is_file() {
        cfg.auth = Some(HtpasswdSettings { realm: DEFAULT_REALM.into(), path: htpasswd });
    }
    if let Some(root) = &flags.root {
        cfg.storage.root = root.clone();
    }
    if let Some(path) = &flags.htpasswd {
        let realm = cfg.auth.take().map(|a| a.realm).unwrap_or_else(|| DEFAULT_REALM.into());
        cfg.auth = Some(HtpasswdSettings { realm, path: path.clone() });
    }
    if let Some(addr) = &flags.addr {
        cfg.addr = addr.clone();
    }
    if cfg.addr.is_empty() {
        cfg.addr =
            if cfg.tls.is_some() { DEFAULT_TLS_ADDR } else { DEFAULT_PLAIN_ADDR }.to_string();
    }
    let loopback = is_loopback(&cfg.addr)?;
    if cfg.tls.is_none() && !loopback && !flags.insecure_http {
        return Err(Error::PlainHttpRefused { addr: cfg.addr.clone() });
    }
    Ok(cfg)
}

impl ServeConfig {
    /// True when the configured address only accepts connections from this machine.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.addr).unwrap_or(false)
    }

    /// The address to bind. `:5000` (the reference's "all interfaces") binds 0.0.0.0;
    /// host names are resolved and the first address is used.
    pub fn bind_addr(&self) -> Result<SocketAddr, Error> {
        let (host, port) = split_addr(&self.addr)?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        use std::net::ToSocketAddrs;
        (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::Addr { addr: self.addr.clone(), message: e.to_string() })?
            .next()
            .ok_or_else(|| Error::Addr {
                addr: self.addr.clone(),
                message: "the host name resolves to no address".into(),
            })
    }

    /// What `Location` headers start with: `http.host` unless `http.relativeurls` is set
    /// (then, and without a host, they are paths). distribution lets `host` win over
    /// `relativeurls: true`; regkit honours the explicit request for relative URLs.
    pub fn location_base(&self) -> Option<&str> {
        self.host.as_deref().filter(|_| !self.relative_urls)
    }

    /// The effective settings as JSON, for `regkit serve --check --json`.
    pub fn summary(&self) -> serde_json::Value {
        let p = |p: &Path| p.display().to_string();
        serde_json::json!({
            "addr": self.addr,
            "tls": self.tls.as_ref().map(|t| serde_json::json!({
                "certificate": p(&t.certificate),
                "key": p(&t.key),
                "clientcas": t.client_cas.iter().map(|c| p(c)).collect::<Vec<_>>(),
                "clientauth": match t.client_auth {
                    ClientAuth::Require => "require-and-verify-client-cert",
                    ClientAuth::IfGiven => "verify-client-cert-if-given",
                },
                "minimumtls": match t.min_version {
                    TlsVersion::Tls12 => "tls1.2",
                    TlsVersion::Tls13 => "tls1.3",
                },
                "reloadinterval": format_duration(t.reload_interval),
            })),
            "http2": self.http2,
            "headers": self.headers.iter().map(|(n, vs)| (n.as_str().to_string(),
                vs.iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect::<serde_json::Value>())).collect::<serde_json::Map<_, _>>(),
            "draintimeout": format_duration(self.draintimeout),
            "host": self.host,
            "relativeurls": self.relative_urls,
            "chunkminlength": self.chunk_min_length,
            "storage": {
                "rootdirectory": p(&self.storage.root),
                "delete": self.storage.delete_enabled,
                "fsync": self.storage.fsync,
                "uploadpurging": {
                    "enabled": self.storage.upload_purging.enabled,
                    "age": format_duration(self.storage.upload_purging.age),
                    "interval": format_duration(self.storage.upload_purging.interval),
                    "dryrun": self.storage.upload_purging.dry_run,
                },
            },
            "auth": self.auth.as_ref().map(|a| serde_json::json!({
                "htpasswd": { "realm": a.realm, "path": p(&a.path) }
            })),
            "log": {
                "level": self.log.level.as_str(),
                "formatter": match self.log.formatter { LogFormat::Text => "text", LogFormat::Json => "json" },
                "accesslog": self.log.access_log,
            },
            "catalog": { "maxentries": self.catalog_max_entries },
            "manifest_max_bytes": self.manifest_max_bytes,
            "unsupported": self.unsupported,
        })
    }
}

/// Splits `host:port`, `:port` or `[v6]:port`.
fn split_addr(addr: &str) -> Result<(&str, u16), Error> {
    let bad = |message: &str| Error::Addr { addr: addr.to_string(), message: message.into() };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("expected host:port or :port"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok((host, port))
}

/// True when `addr` names only this machine: a loopback IP or `localhost`.
fn is_loopback(addr: &str) -> Result<bool, Error> {
    let (host, _) = split_addr(addr)?;
    Ok(host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

#[cfg(test)]
mod tests;
