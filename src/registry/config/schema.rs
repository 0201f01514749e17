//! The reference registry's `config.yml` schema, typed: every key regkit understands is read
//! here, keys that would change behaviour regkit cannot deliver (other storage drivers, token
//! auth, a URL prefix, ...) are errors, and everything else left over is collected for the
//! one start-up warning.

use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue};

use super::section::{Field, Section};
use super::value::Value;
use super::{
    ClientAuth, Error, HtpasswdSettings, LogFormat, LogLevel, LogSettings, ServeConfig,
    StorageSettings, TlsSettings, TlsVersion, UploadPurging,
};

/// The filesystem driver's root when `rootdirectory` is not given (the reference's default).
const FILESYSTEM_DEFAULT_ROOT: &str = "/var/lib/registry";

/// Types the tree. The address stays unset when the tree has none (the caller picks one).
pub(super) fn from_tree(tree: Value) -> Result<ServeConfig, Error> {
    let mut unsupported = Vec::new();
    let mut root = Section::root(tree)?;
    if let Some(f) = root.take("version") {
        let ok = matches!(&f.value, Value::Float(v) if (*v - 0.1).abs() < 1e-9)
            || matches!(&f.value, Value::Str(s) if s == "0.1");
        if !ok {
            return Err(Error::Invalid { key: f.path, message: "expected 0.1".into() });
        }
    }
    let log = log(root.section("log")?, &mut unsupported)?;
    let storage = storage(root.named_section("storage")?, &mut unsupported)?;
    let auth = auth(root.named_section("auth")?, &mut unsupported)?;
    let mut http = root.section("http")?;
    let addr = match http.take("addr") {
        Some(f) => Some(f.string()?).filter(|s| !s.is_empty()),
        None => None,
    };
    if let Some(f) = http.take("net") {
        let net = f.string()?;
        if net != "tcp" && !net.is_empty() {
            return Err(Error::Unsupported { key: f.path, what: format!("net {net:?}") });
        }
    }
    if let Some(f) = http.take("prefix") {
        let prefix = f.string()?;
        if !prefix.is_empty() && prefix != "/" {
            return Err(Error::Unsupported { key: f.path, what: "a URL prefix".into() });
        }
    }
    let host = opt(http.take("host"), external_url)?;
    // Upload state lives on the server's disk, so regkit has no use for the shared secret
    // the reference signs upload state with; accepting it keeps existing files working.
    let _ = http.take("secret");
    let relative_urls = opt(http.take("relativeurls"), Field::bool)?.unwrap_or(false);
    // regkit extension: the OCI-Chunk-Min-Length advertised when an upload starts.
    let chunk_min_length = opt(http.take("chunkminlength"), Field::u64)?.filter(|&n| n > 0);
    let draintimeout = opt(http.take("draintimeout"), Field::duration)?;
    let tls = tls(http.section("tls")?, &mut unsupported)?;
    let headers = headers(http.section("headers")?)?;
    let mut http2 = http.section("http2")?;
    let http2_enabled = !opt(http2.take("disabled"), Field::bool)?.unwrap_or(false);
    http2.finish(&mut unsupported);
    http.finish(&mut unsupported);
    let mut proxy = root.section("proxy")?;
    if let Some(f) = proxy.take("remoteurl") {
        // Without this check regkit would run as an ordinary registry that never asks the
        // upstream: every pull of an image not pushed here would fail.
        return Err(Error::Invalid {
            message: format!(
                "regkit cannot be a pull-through cache (of {:?}): it would run as an ordinary \
                 registry instead. Run registry:2 (distribution) for a pull-through cache, or \
                 remove the proxy section",
                f.string()?
            ),
            key: f.path,
        });
    }
    proxy.finish(&mut unsupported);
    let mut catalog = root.section("catalog")?;
    let catalog_max_entries = opt(catalog.take("maxentries"), Field::u64)?.unwrap_or(1000);
    catalog.finish(&mut unsupported);
    root.finish(&mut unsupported);

    Ok(ServeConfig {
        addr: addr.unwrap_or_default(),
        tls,
        http2: http2_enabled,
        headers,
        draintimeout: draintimeout.unwrap_or(super::DEFAULT_DRAIN_TIMEOUT),
        host,
        relative_urls,
        chunk_min_length,
        storage,
        auth,
        log,
        catalog_max_entries,
        manifest_max_bytes: super::DEFAULT_MANIFEST_MAX_BYTES,
        unsupported,
    })
}

/// `http.host`: an absolute `http://` or `https://` URL with no path (regkit serves at `/`,
/// so a prefix there would produce URLs it does not answer), kept without a trailing slash.
fn external_url(f: &Field) -> Result<String, Error> {
    let text = f.string()?;
    let bad = |why: &str| Error::Invalid {
        key: f.path.clone(),
        message: format!("{why}, e.g. https://registry.example.com:5000 (not {text:?})"),
    };
    let uri: axum::http::Uri = text.parse().map_err(|_| bad("expected a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(bad("expected an http:// or https:// URL with a host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("expected scheme and host only, without a path or query"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

fn opt<T>(f: Option<Field>, read: impl Fn(&Field) -> Result<T, Error>) -> Result<Option<T>, Error> {
    f.as_ref().map(read).transpose()
}

fn log(mut s: Section, unsupported: &mut Vec<String>) -> Result<LogSettings, Error> {
    let level = match s.take("level") {
        None => LogLevel::Info,
        Some(f) => match f.string()?.to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return Err(f.wrong_value("one of error, warn, info, debug, trace")),
        },
    };
    let formatter = match s.take("formatter") {
        None => LogFormat::Text,
        Some(f) => match f.string()?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            "logstash" => {
                return Err(Error::Unsupported { key: f.path, what: "logstash".into() });
            }
            _ => return Err(f.wrong_value("text or json")),
        },
    };
    let mut accesslog = s.section("accesslog")?;
    let access_log = !opt(accesslog.take("disabled"), Field::bool)?.unwrap_or(false);
    accesslog.finish(unsupported);
    s.finish(unsupported);
    Ok(LogSettings { level, formatter, access_log })
}

/// Storage sections that are not drivers.
const STORAGE_NON_DRIVERS: &[&str] = &["delete", "maintenance", "cache", "redirect", "tag"];

fn storage(mut s: Section, unsupported: &mut Vec<String>) -> Result<StorageSettings, Error> {
    let mut delete = s.section("delete")?;
    let delete_enabled = opt(delete.take("enabled"), Field::bool)?.unwrap_or(false);
    delete.finish(unsupported);
    let fsync_alias = opt(s.take("fsync"), Field::bool)?;

    let mut maintenance = s.section("maintenance")?;
    let mut purging = maintenance.section("uploadpurging")?;
    let defaults = UploadPurging::default();
    let upload_purging = UploadPurging {
        enabled: opt(purging.take("enabled"), Field::bool)?.unwrap_or(defaults.enabled),
        age: opt(purging.take("age"), Field::duration)?.unwrap_or(defaults.age),
        interval: opt(purging.take("interval"), Field::duration)?.unwrap_or(defaults.interval),
        dry_run: opt(purging.take("dryrun"), Field::bool)?.unwrap_or(defaults.dry_run),
    };
    purging.finish(unsupported);
    let mut readonly = maintenance.section("readonly")?;
    if let Some(f) = readonly.take("enabled")
        && f.bool()?
    {
        return Err(Error::Unsupported { key: f.path, what: "read-only mode".into() });
    }
    readonly.finish(unsupported);
    maintenance.finish(unsupported);

    let drivers: Vec<String> =
        s.keys().into_iter().filter(|k| !STORAGE_NON_DRIVERS.contains(&k.as_str())).collect();
    if let Some(other) = drivers.iter().find(|d| *d != "filesystem") {
        return Err(Error::Unsupported {
            key: format!("storage.{other}"),
            what: format!("the {other} storage driver (only filesystem is)"),
        });
    }
    let (root, fsync) = if drivers.is_empty() {
        (PathBuf::from(super::EMBEDDED_ROOT), fsync_alias)
    } else {
        let mut fs = s.section("filesystem")?;
        let root = opt(fs.take("rootdirectory"), Field::path_buf)?
            .unwrap_or_else(|| PathBuf::from(FILESYSTEM_DEFAULT_ROOT));
        let fsync = opt(fs.take("fsync"), Field::bool)?;
        fs.finish(unsupported);
        if let (Some(a), Some(b)) = (fsync, fsync_alias)
            && a != b
        {
            return Err(Error::Invalid {
                key: "storage.fsync".into(),
                message: "contradicts storage.filesystem.fsync".into(),
            });
        }
        (root, fsync.or(fsync_alias))
    };
    s.finish(unsupported);
    Ok(StorageSettings { root, delete_enabled, fsync: fsync.unwrap_or(true), upload_purging })
}

fn auth(mut s: Section, unsupported: &mut Vec<String>) -> Result<Option<HtpasswdSettings>, Error> {
    if let Some(other) = s.keys().into_iter().find(|k| k != "htpasswd") {
        return Err(Error::Unsupported {
            key: format!("auth.{other}"),
            what: format!("{other} authentication (only htpasswd is)"),
        });
    }
    let Some(f) = s.take("htpasswd") else {
        return Ok(None);
    };
    let mut h = f.into_section()?;
    let realm = opt(h.take("realm"), Field::string)?
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| super::DEFAULT_REALM.to_string());
    if realm.contains('"') || realm.chars().any(char::is_control) {
        return Err(Error::Invalid {
            key: format!("{}.realm", h.path()),
            message: "must not contain quotes or control characters".into(),
        });
    }
    let path = h.take("path").ok_or_else(|| Error::Invalid {
        key: format!("{}.path", h.path()),
        message: "required: the htpasswd file to check passwords against".into(),
    })?;
    let path = path.path_buf()?;
    h.finish(unsupported);
    Ok(Some(HtpasswdSettings { realm, path }))
}

fn tls(mut s: Section, unsupported: &mut Vec<String>) -> Result<Option<TlsSettings>, Error> {
    if let Some(f) = s.take("letsencrypt") {
        return Err(Error::Unsupported { key: f.path, what: "Let's Encrypt".into() });
    }
    let certificate = opt(s.take("certificate"), Field::path_buf)?;
    let key = opt(s.take("key"), Field::path_buf)?;
    let client_cas: Vec<PathBuf> = opt(s.take("clientcas"), Field::string_list)?
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    let client_auth = match s.take("clientauth") {
        None => ClientAuth::Require,
        Some(f) => match f.string()?.as_str() {
            "require-and-verify-client-cert" => ClientAuth::Require,
            "verify-client-cert-if-given" => ClientAuth::IfGiven,
            _ => {
                return Err(
                    f.wrong_value("require-and-verify-client-cert or verify-client-cert-if-given")
                );
            }
        },
    };
    let min_version = match s.take("minimumtls") {
        None => TlsVersion::Tls12,
        Some(f) => match f.string()?.as_str() {
            "tls1.2" => TlsVersion::Tls12,
            "tls1.3" => TlsVersion::Tls13,
            v @ ("tls1.0" | "tls1.1") => {
                return Err(Error::Invalid {
                    key: f.path,
                    message: format!("{v} is refused: regkit speaks TLS 1.2 and 1.3 only"),
                });
            }
            _ => return Err(f.wrong_value("tls1.2 or tls1.3")),
        },
    };
    let reload_interval =
        opt(s.take("reloadinterval"), Field::duration)?.unwrap_or(super::DEFAULT_RELOAD_INTERVAL);
    let path = s.path().to_string();
    s.finish(unsupported);
    match (certificate, key) {
        (None, None) if client_cas.is_empty() => Ok(None),
        (Some(certificate), Some(key)) => Ok(Some(TlsSettings {
            certificate,
            key,
            client_cas,
            client_auth,
            min_version,
            reload_interval,
        })),
        (_, None) => Err(Error::Invalid {
            key: format!("{path}.key"),
            message: "required with http.tls.certificate or clientcas".into(),
        }),
        (None, _) => Err(Error::Invalid {
            key: format!("{path}.certificate"),
            message: "required with http.tls.key or clientcas".into(),
        }),
    }
}

fn headers(mut s: Section) -> Result<Vec<(HeaderName, Vec<HeaderValue>)>, Error> {
    let mut out = Vec::new();
    for name in s.keys() {
        let Some(f) = s.take(&name) else { continue };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Invalid {
            key: f.path.clone(),
            message: "invalid header name".into(),
        })?;
        let values = f
            .string_list()?
            .into_iter()
            .map(|v| {
                HeaderValue::from_str(&v).map_err(|_| Error::Invalid {
                    key: f.path.clone(),
                    message: format!("invalid header value {v:?}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((header, values));
    }
    Ok(out)
}
