//! The files of a deployment that are derived from its keys and passwords rather than
//! templated: the four Secret manifests in `k8s/` (serialized by [`crate::k8s`]) and the node
//! trust bundle (`trust/`, built by [`crate::trust::bundle`]).
//!
//! `init` writes them all ([`write_all`]). `render` keeps them in step with the descriptor
//! and the folder's files ([`sync`]): a manifest or bundle that no longer matches is rebuilt
//! from what is already there. The TLS Secret follows the certificate and key files, the
//! htpasswd Secret the htpasswd file, the http Secret the env file, the pull Secret the pull
//! addresses (with the same user and password, read back from the pull Secret itself, and
//! only while they still verify against the htpasswd file: a password changed since is left
//! for the user to put in, with a warning), and the bundle the CA and the pull addresses. Nothing here creates a password or a key, and a
//! file that is missing is left missing. Comparisons are by content (name, namespace, type,
//! decoded data; the bundle's entries), so a manifest made by kubectl with the same data is
//! left alone.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use super::descriptor::Descriptor;
use super::{Error, layout, secret_keys};
use crate::files::{MODE_PRIVATE, MODE_PUBLIC};
use crate::k8s::{self, Format, Object, RegistryCredentials, SourceFile};
use crate::trust::{self, CaBundle, RegistryHost, Selection};

/// `k8s/secret-*.yaml` and the trust bundle, relative to the deployment folder.
fn secret_path(file: &str) -> PathBuf {
    Path::new(layout::K8S_DIR).join(file)
}

/// The trust bundle, relative to the deployment folder.
pub fn trust_bundle_path() -> PathBuf {
    Path::new(layout::TRUST_DIR).join(layout::TRUST_BUNDLE)
}

/// A file to write: (path relative to the folder, contents, mode).
pub type Derived = (PathBuf, Vec<u8>, u32);

/// Writes the four secret manifests and the trust bundle into the fresh folder `root`, for
/// `user` with `password`, the http secret `http_secret`, and the CA at `ca` (which may lie
/// outside `root` when an existing CA is reused).
pub fn write_all(
    root: &Path,
    d: &Descriptor,
    user: &str,
    password: &str,
    http_secret: &str,
    ca: &Path,
) -> Result<(), Error> {
    let htpasswd = crate::files::read(&root.join(&d.htpasswd))?;
    let secrets = [
        (layout::K8S_SECRET_TLS, tls_secret(root, d)?),
        (layout::K8S_SECRET_HTPASSWD, htpasswd_secret(d, htpasswd)?),
        (layout::K8S_SECRET_HTTP, http_secret_manifest(d, http_secret)?),
        (layout::K8S_SECRET_PULL, pull_secret(d, user, password)?),
    ];
    for (file, secret) in secrets {
        crate::files::write_atomic(
            &root.join(secret_path(file)),
            secret_yaml(&secret)?.as_bytes(),
            MODE_PRIVATE,
        )?;
    }
    crate::files::write_atomic(
        &root.join(trust_bundle_path()),
        &bundle_bytes(d, ca)?,
        MODE_PUBLIC,
    )?;
    Ok(())
}

/// What [`sync`] found: files to write and things to tell the user.
#[derive(Debug, Default)]
pub struct Synced {
    /// Rebuilt files (path relative to the folder, contents, mode).
    pub files: Vec<Derived>,
    /// Problems worth a warning (nothing is written for them).
    pub warnings: Vec<String>,
}

/// Works out which derived files of the deployment in `dir` no longer match `d` and the
/// folder's files, and rebuilds them (in memory; the caller writes them with the rest).
pub fn sync(dir: &Path, d: &Descriptor) -> Result<Synced, Error> {
    let mut out = Synced::default();
    let names = d.k8s_names();
    // (file, the Secret the folder's files call for, or why it cannot be built)
    let mut wanted: Vec<(&str, Result<k8s::Secret, String>)> = Vec::new();
    if dir.join(&d.tls.certificate).is_file() && dir.join(&d.tls.key).is_file() {
        wanted.push((layout::K8S_SECRET_TLS, tls_secret(dir, d).map_err(|e| e.to_string())));
    }
    let htpasswd = std::fs::read(dir.join(&d.htpasswd)).ok();
    if let Some(bytes) = &htpasswd {
        let s = htpasswd_secret(d, bytes.clone()).map_err(|e| e.to_string());
        wanted.push((layout::K8S_SECRET_HTPASSWD, s));
    }
    if let Ok(env) = std::fs::read_to_string(dir.join(&d.http_secret_file)) {
        let s = match parse_http_secret_env(&env) {
            Some(v) => http_secret_manifest(d, v).map_err(|e| e.to_string()),
            None => Err(format!(
                "{} does not hold one {}=... line",
                d.http_secret_file,
                secret_keys::HTTP_SECRET_ENV
            )),
        };
        wanted.push((layout::K8S_SECRET_HTTP, s));
    }
    for (file, secret) in wanted {
        let rel = secret_path(file);
        let Some(existing) = read_manifest(dir, &rel)? else { continue };
        match secret {
            Ok(s) if !same_secret(&existing, &s)? => {
                out.files.push((rel, secret_yaml(&s)?.into_bytes(), MODE_PRIVATE));
            }
            Ok(_) => {}
            Err(why) => out.warnings.push(format!("{} left as it is: {why}", rel.display())),
        }
    }
    let rel = secret_path(layout::K8S_SECRET_PULL);
    if let Some(existing) = read_manifest(dir, &rel)? {
        let credentials = pull_credentials(&existing).and_then(|(user, password)| {
            match htpasswd.as_deref().map(|b| stale_password(d, b, &user, &password)) {
                Some(Some(why)) => Err(why),
                _ => Ok((user, password)),
            }
        });
        match credentials {
            Ok((user, password)) => {
                let s = pull_secret(d, &user, &password)?;
                if !same_secret(&existing, &s)? {
                    out.files.push((rel, secret_yaml(&s)?.into_bytes(), MODE_PRIVATE));
                }
            }
            Err(why) => out.warnings.push(format!(
                "{} left as it is ({why}); rebuild it for every pull address with `regkit k8s \
                 secret docker-registry {} -n {} --username USER {} --password-stdin --out {} \
                 --force`",
                rel.display(),
                names.secret_pull,
                d.kubernetes.namespace,
                server_flags(d),
                rel.display()
            )),
        }
    }
    let bundle = trust_bundle_path();
    if dir.join(&bundle).is_file() {
        if dir.join(&d.tls.ca).is_file() {
            let new = bundle_bytes(d, &dir.join(&d.tls.ca))?;
            let old = crate::files::read(&dir.join(&bundle))?;
            if tar_entries(&old).ok() != tar_entries(&new).ok() {
                out.files.push((bundle, new, MODE_PUBLIC));
            }
        } else {
            out.warnings.push(format!(
                "{} left as it is: the CA {} is missing",
                bundle.display(),
                d.tls.ca
            ));
        }
    }
    Ok(out)
}

/// Why the pull Secret's `user` and `password` no longer log in to the registry whose
/// htpasswd file holds `htpasswd` (after `regkit htpasswd add` or `htpasswd -B` changed the
/// password, or removed the user); `None` when they still do.
fn stale_password(d: &Descriptor, htpasswd: &[u8], user: &str, password: &str) -> Option<String> {
    let file = crate::htpasswd::Htpasswd::parse(&String::from_utf8_lossy(htpasswd));
    if file.verify(user, password) {
        return None;
    }
    Some(if file.hash_of(user).is_some() {
        format!("its password for {user:?} is not the one in {}", d.htpasswd)
    } else {
        format!("its user {user:?} is not in {}", d.htpasswd)
    })
}

/// `--server A --server B ...` for every pull address.
fn server_flags(d: &Descriptor) -> String {
    let all: Vec<String> =
        d.pull_addresses().into_iter().map(|a| format!("--server {}", a.address)).collect();
    all.join(" ")
}

fn tls_secret(root: &Path, d: &Descriptor) -> Result<k8s::Secret, Error> {
    let cert = SourceFile::read(&root.join(&d.tls.certificate))?;
    let key = SourceFile::read(&root.join(&d.tls.key))?;
    let ns = Some(d.kubernetes.namespace.as_str());
    Ok(k8s::tls(&d.k8s_names().secret_tls, ns, &cert, &key)?)
}

fn htpasswd_secret(d: &Descriptor, htpasswd: Vec<u8>) -> Result<k8s::Secret, Error> {
    let ns = Some(d.kubernetes.namespace.as_str());
    let data = vec![(secret_keys::HTPASSWD.to_string(), htpasswd)];
    Ok(k8s::generic(&d.k8s_names().secret_htpasswd, ns, data)?)
}

fn http_secret_manifest(d: &Descriptor, secret: &str) -> Result<k8s::Secret, Error> {
    let ns = Some(d.kubernetes.namespace.as_str());
    let data = vec![(secret_keys::HTTP_SECRET.to_string(), secret.as_bytes().to_vec())];
    Ok(k8s::generic(&d.k8s_names().secret_http, ns, data)?)
}

/// The pull Secret: one `auths` entry per pull address, all for `user` with `password`.
fn pull_secret(d: &Descriptor, user: &str, password: &str) -> Result<k8s::Secret, Error> {
    let addresses: Vec<String> = d.pull_addresses().into_iter().map(|a| a.address).collect();
    let creds: Vec<RegistryCredentials<'_>> = addresses
        .iter()
        .map(|server| RegistryCredentials { server, username: user, password, email: None })
        .collect();
    let ns = Some(d.kubernetes.namespace.as_str());
    Ok(k8s::docker_registry_all(&d.k8s_names().secret_pull, ns, &creds)?)
}

/// The trust bundle for every pull address of `d`, trusting the CA at `ca`.
fn bundle_bytes(d: &Descriptor, ca: &Path) -> Result<Vec<u8>, Error> {
    let registries = d
        .pull_addresses()
        .iter()
        .map(|a| a.address.parse())
        .collect::<Result<Vec<RegistryHost>, _>>()?;
    let ca = CaBundle::read(ca)?;
    let (bytes, _, _) = trust::bundle::archive(&ca, &registries, Selection::default_clients())?;
    Ok(bytes)
}

fn secret_yaml(secret: &k8s::Secret) -> Result<String, Error> {
    Ok(k8s::render(&[Object::from(secret.clone())], Format::Yaml)?)
}

/// The value of `REGISTRY_HTTP_SECRET=...` in the env file text (see
/// [`http_secret_env_file`]).
fn parse_http_secret_env(text: &str) -> Option<&str> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let value = lines.next()?.strip_prefix(secret_keys::HTTP_SECRET_ENV)?.strip_prefix('=')?;
    (lines.next().is_none() && !value.is_empty()).then_some(value)
}

/// The names `d` gives the registry (hosts, IPs and the local names unless `no_local_sans`)
/// that the site certificate in `dir` is not valid for; empty when it covers them all or
/// there is no certificate to look at.
pub fn uncovered_names(dir: &Path, d: &Descriptor) -> Vec<String> {
    let Ok(chain) = crate::pki::x509::read_certs(&dir.join(&d.tls.certificate)) else {
        return Vec::new();
    };
    let now = time::OffsetDateTime::now_utc();
    super::init::site_sans(d)
        .iter()
        .map(crate::pki::SanEntry::value)
        .filter(|name| {
            crate::pki::verify_chain(&[], &chain, Some(name), now)
                .iter()
                .any(|p| p.kind == crate::pki::ProblemKind::NameMismatch)
        })
        .collect()
}

/// The warning for [`uncovered_names`], with the command that fixes it.
pub fn uncovered_warning(d: &Descriptor, missing: &[String]) -> String {
    let sans: Vec<String> =
        super::init::site_sans(d).iter().map(crate::pki::SanEntry::value).collect();
    let cert = Path::new(&d.tls.certificate);
    let out = cert.parent().map_or(".".into(), |p| p.display().to_string());
    format!(
        "{} does not name {} (in regkit.yaml): clients using {} fail TLS. Issue a new one, \
         then render again to rebuild k8s/{}: regkit certs site --ca-cert {} --ca-key {} \
         --out {out} --san {} --key-type {} --force && regkit render",
        d.tls.certificate,
        missing.join(", "),
        if missing.len() == 1 { "it" } else { "them" },
        layout::K8S_SECRET_TLS,
        d.tls.ca,
        Path::new(&d.tls.ca).with_file_name(crate::pki::ca::CA_KEY).display(),
        sans.join(","),
        d.key_type.name()
    )
}

/// The manifest at `dir/rel` as JSON, or `None` when the file is missing.
fn read_manifest(dir: &Path, rel: &Path) -> Result<Option<Value>, Error> {
    let path = dir.join(rel);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::files::Error::io("cannot read", &path, e).into()),
    };
    // The error names the line only: a snippet of a Secret would show its data.
    serde_saphyr::from_str(&text).map(Some).map_err(|e| {
        let line = e.location().map(|l| format!(":{}", l.line())).unwrap_or_default();
        Error::Invalid(format!(
            "{}{line}: not a YAML Kubernetes manifest; fix or remove it",
            path.display()
        ))
    })
}

/// True when `existing` has the name, namespace, type and data of `wanted` (a Secret without
/// a type is `Opaque`, as the API server reads it and `kubectl create secret generic`
/// writes it).
fn same_secret(existing: &Value, wanted: &k8s::Secret) -> Result<bool, Error> {
    let wanted = serde_json::to_value(wanted).map_err(|e| Error::Invalid(e.to_string()))?;
    let part = |v: &Value, p: &str| match v.pointer(p) {
        None | Some(Value::Null) if p == "/type" => Value::from("Opaque"),
        found => found.cloned().unwrap_or(Value::Null),
    };
    Ok(["/metadata/name", "/metadata/namespace", "/type", "/data", "/kind"]
        .iter()
        .all(|p| part(existing, p) == part(&wanted, p)))
}

/// The one user and password of every `auths` entry of a dockerconfigjson Secret.
fn pull_credentials(secret: &Value) -> Result<(String, String), String> {
    let data = secret
        .pointer("/data/.dockerconfigjson")
        .and_then(Value::as_str)
        .ok_or("it has no .dockerconfigjson")?;
    let json = BASE64.decode(data).map_err(|_| "its .dockerconfigjson is not base64")?;
    let config: Value =
        serde_json::from_slice(&json).map_err(|_| "its .dockerconfigjson is not JSON")?;
    let auths = config.get("auths").and_then(Value::as_object).ok_or("it has no auths")?;
    let mut found: Option<(String, String)> = None;
    for entry in auths.values() {
        let pair = entry_credentials(entry).ok_or("an auths entry has no user and password")?;
        match &found {
            Some(f) if *f != pair => return Err("its auths entries have different users".into()),
            Some(_) => {}
            None => found = Some(pair),
        }
    }
    found.ok_or_else(|| "its auths are empty".to_string())
}

/// `username`/`password` of one auths entry, or its `auth` (`base64(user:password)`).
fn entry_credentials(entry: &Value) -> Option<(String, String)> {
    let field = |k: &str| entry.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let (Some(u), Some(p)) = (field("username"), field("password")) {
        return Some((u.to_string(), p.to_string()));
    }
    let auth = String::from_utf8(BASE64.decode(field("auth")?).ok()?).ok()?;
    let (u, p) = auth.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Every entry of a `.tar.gz` as (path, mode, contents), ignoring timestamps.
fn tar_entries(gz: &[u8]) -> std::io::Result<Vec<(String, u32, Vec<u8>)>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.display().to_string();
        let mode = entry.header().mode()?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.push((path, mode, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_credentials_come_back_from_either_form() {
        let json = r#"{"auths":{"a:5000":{"username":"u","password":"p:w","auth":"x"},
                       "b":{"auth":"dTpwOnc="}}}"#;
        let secret = serde_json::json!({ "data": { ".dockerconfigjson": BASE64.encode(json) } });
        assert_eq!(pull_credentials(&secret), Ok(("u".into(), "p:w".into())));
        let two = r#"{"auths":{"a":{"username":"u","password":"p"},"b":{"auth":"djpw"}}}"#;
        let secret = serde_json::json!({ "data": { ".dockerconfigjson": BASE64.encode(two) } });
        assert!(pull_credentials(&secret).unwrap_err().contains("different users"));
    }

    #[test]
    fn http_secret_env_is_read_strictly() {
        assert_eq!(parse_http_secret_env("REGISTRY_HTTP_SECRET=abc\n"), Some("abc"));
        assert_eq!(parse_http_secret_env("REGISTRY_HTTP_SECRET=abc\nX=1\n"), None);
        assert_eq!(parse_http_secret_env("OTHER=abc\n"), None);
    }
}
