//! The objects themselves: a `v1` Secret (any type, data kept decoded and base64-encoded only
//! when serialized) and a `v1` ServiceAccount, plus the builders for the three Secrets a
//! registry needs — `kubernetes.io/dockerconfigjson` with exactly kubectl's structure,
//! `Opaque` from files (`--from-file [KEY=]PATH`), and `kubernetes.io/tls` (built in the
//! sibling `tls.rs`, which checks that key and certificate belong together).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Serialize, Serializer};

use super::{Error, ObjectMeta, validate_data_key, validate_name, validate_namespace};

/// The server kubectl uses when `--docker-server` is not given (Docker Hub).
pub const DEFAULT_SERVER: &str = "https://index.docker.io/v1/";
/// Type of an image pull secret.
pub const TYPE_DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
/// Type of a TLS secret.
pub const TYPE_TLS: &str = "kubernetes.io/tls";
/// Type of a generic secret (what the API server assumes when none is given).
pub const TYPE_OPAQUE: &str = "Opaque";
/// The API server's limit on a Secret's data (`MaxSecretSize`).
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// A `v1` Secret. Build it with [`Secret::new`] or one of the builders, which check names,
/// keys and size, so every value of this type is one the API server accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    api_version: &'static str,
    #[serde(serialize_with = "base64_values")]
    data: BTreeMap<String, Vec<u8>>,
    kind: &'static str,
    metadata: ObjectMeta,
    #[serde(rename = "type")]
    secret_type: String,
}

impl Secret {
    /// A Secret of `secret_type` holding `data` (decoded bytes; keys must be unique).
    pub fn new(
        name: &str,
        namespace: Option<&str>,
        secret_type: &str,
        data: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, Error> {
        let metadata = meta("secret name", name, namespace)?;
        let mut map = BTreeMap::new();
        let mut size = 0;
        for (key, value) in data {
            validate_data_key(&key)?;
            size += value.len();
            if map.contains_key(&key) {
                return Err(Error::DuplicateKey { key });
            }
            map.insert(key, value);
        }
        if size > MAX_SECRET_BYTES {
            return Err(Error::TooLarge { name: name.to_string(), size });
        }
        Ok(Secret {
            api_version: "v1",
            data: map,
            kind: "Secret",
            metadata,
            secret_type: secret_type.to_string(),
        })
    }

    /// Name and namespace.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// The `type` field.
    pub fn secret_type(&self) -> &str {
        &self.secret_type
    }

    /// The data, decoded.
    pub fn data(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.data
    }
}

/// A `v1` ServiceAccount whose pods pull with the given secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    api_version: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    image_pull_secrets: Vec<LocalObjectReference>,
    kind: &'static str,
    metadata: ObjectMeta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct LocalObjectReference {
    name: String,
}

impl ServiceAccount {
    /// Name and namespace.
    pub fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Names of the referenced pull secrets, in order.
    pub fn pull_secrets(&self) -> impl Iterator<Item = &str> {
        self.image_pull_secrets.iter().map(|r| r.name.as_str())
    }
}

/// Credentials for one registry, as `kubectl create secret docker-registry` takes them.
#[derive(Debug, Clone, Copy)]
pub struct RegistryCredentials<'a> {
    /// Registry address as clients write it (`host:port`, or kubectl's default URL).
    pub server: &'a str,
    /// User name (no ':').
    pub username: &'a str,
    /// Password (not empty).
    pub password: &'a str,
    /// E-mail; omitted from the JSON when `None` or empty, as kubectl does.
    pub email: Option<&'a str>,
}

#[derive(Serialize)]
struct DockerConfig<'a> {
    auths: BTreeMap<&'a str, DockerConfigEntry<'a>>,
}

// Field order and omission follow kubectl's DockerConfigEntry.
#[derive(Serialize)]
struct DockerConfigEntry<'a> {
    username: &'a str,
    password: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    email: &'a str,
    auth: String,
}

/// The `.dockerconfigjson` document: `{"auths":{S:{"username","password","email","auth"}}}`
/// in compact JSON, `auth` being base64 of `username:password`.
pub fn docker_config_json(creds: &RegistryCredentials<'_>) -> Result<String, Error> {
    docker_config_json_all(std::slice::from_ref(creds))
}

/// The `.dockerconfigjson` document with one `auths` entry per credential (kubelet matches
/// the keys against image references by host and port, so a registry reached by several
/// addresses needs one entry for each). For a single credential this is exactly
/// [`docker_config_json`]; a server given twice is refused.
pub fn docker_config_json_all(all: &[RegistryCredentials<'_>]) -> Result<String, Error> {
    let bad = |field, why| Error::InvalidCredential { field, why };
    if all.is_empty() {
        return Err(bad("server", "at least one registry address is needed"));
    }
    let mut auths = BTreeMap::new();
    for creds in all {
        if creds.server.is_empty() || creds.server.chars().any(char::is_whitespace) {
            return Err(bad("server", "it must be a non-empty address without spaces"));
        }
        if creds.username.is_empty() {
            return Err(bad("username", "it is empty"));
        }
        if creds.username.contains(':') {
            return Err(bad(
                "username",
                "it contains ':', which splits user from password in auth",
            ));
        }
        if creds.password.is_empty() {
            return Err(bad("password", "it is empty"));
        }
        let entry = DockerConfigEntry {
            username: creds.username,
            password: creds.password,
            email: creds.email.unwrap_or(""),
            auth: BASE64.encode(format!("{}:{}", creds.username, creds.password)),
        };
        if auths.insert(creds.server, entry).is_some() {
            return Err(Error::DuplicateServer { server: creds.server.to_string() });
        }
    }
    let config = DockerConfig { auths };
    serde_json::to_string(&config).map_err(|e| Error::Render(e.to_string()))
}

/// A `kubernetes.io/dockerconfigjson` Secret, as `kubectl create secret docker-registry`.
pub fn docker_registry(
    name: &str,
    namespace: Option<&str>,
    creds: &RegistryCredentials<'_>,
) -> Result<Secret, Error> {
    docker_registry_all(name, namespace, std::slice::from_ref(creds))
}

/// A `kubernetes.io/dockerconfigjson` Secret with one `auths` entry per credential (see
/// [`docker_config_json_all`]).
pub fn docker_registry_all(
    name: &str,
    namespace: Option<&str>,
    all: &[RegistryCredentials<'_>],
) -> Result<Secret, Error> {
    let json = docker_config_json_all(all)?;
    Secret::new(
        name,
        namespace,
        TYPE_DOCKERCONFIGJSON,
        vec![(".dockerconfigjson".to_string(), json.into_bytes())],
    )
}

/// An `Opaque` Secret from `(key, contents)` pairs, as `kubectl create secret generic`.
pub fn generic(
    name: &str,
    namespace: Option<&str>,
    entries: Vec<(String, Vec<u8>)>,
) -> Result<Secret, Error> {
    Secret::new(name, namespace, TYPE_OPAQUE, entries)
}

/// A ServiceAccount carrying `pull_secrets` as imagePullSecrets (duplicates dropped).
pub fn service_account(
    name: &str,
    namespace: Option<&str>,
    pull_secrets: &[&str],
) -> Result<ServiceAccount, Error> {
    let metadata = meta("service account name", name, namespace)?;
    let mut refs: Vec<LocalObjectReference> = Vec::new();
    for s in pull_secrets {
        validate_name("pull secret name", s)?;
        if !refs.iter().any(|r| r.name == *s) {
            refs.push(LocalObjectReference { name: s.to_string() });
        }
    }
    Ok(ServiceAccount {
        api_version: "v1",
        image_pull_secrets: refs,
        kind: "ServiceAccount",
        metadata,
    })
}

/// Bytes read from a file, with the name to show in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Shown in messages (usually the path).
    pub label: String,
    /// The contents.
    pub bytes: Vec<u8>,
}

impl SourceFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, Error> {
        Ok(SourceFile { label: path.display().to_string(), bytes: crate::files::read(path)? })
    }
}

/// One `--from-file` argument: `PATH` (key = file name) or `KEY=PATH`. A directory adds
/// every regular file in it, keyed by file name, and takes no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The explicit key, if given.
    pub key: Option<String>,
    /// The file or directory.
    pub path: PathBuf,
}

impl FileSpec {
    /// Parses `[KEY=]PATH`. As in kubectl, at most one `=` may appear, so neither the key
    /// nor the path can contain one.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let bad = |why| Error::InvalidFileSpec { spec: spec.to_string(), why };
        if spec.matches('=').count() > 1 {
            return Err(bad("key names or file paths cannot contain '='"));
        }
        match spec.split_once('=') {
            None if spec.is_empty() => Err(bad("the path is empty")),
            None => Ok(FileSpec { key: None, path: PathBuf::from(spec) }),
            Some(("", _)) => Err(bad("the key before '=' is empty")),
            Some((_, "")) => Err(bad("the path after '=' is empty")),
            Some((key, path)) => {
                Ok(FileSpec { key: Some(key.to_string()), path: PathBuf::from(path) })
            }
        }
    }

    /// Reads the file(s) into `(key, contents)` pairs, checking each key.
    pub fn read(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let io = |e| crate::files::Error::io("cannot read", &self.path, e);
        let meta = std::fs::metadata(&self.path).map_err(io)?;
        if !meta.is_dir() {
            let key = match &self.key {
                Some(k) => k.clone(),
                None => base_name(&self.path)?,
            };
            validate_data_key(&key)?;
            return Ok(vec![(key, crate::files::read(&self.path)?)]);
        }
        if self.key.is_some() {
            return Err(Error::InvalidFileSpec {
                spec: format!("{}={}", self.key.as_deref().unwrap_or(""), self.path.display()),
                why: "a key cannot be given for a directory",
            });
        }
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                paths.push(path);
            }
        }
        paths.sort();
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let key = base_name(&path)?;
            validate_data_key(&key)?;
            out.push((key, crate::files::read(&path)?));
        }
        Ok(out)
    }
}

fn base_name(path: &Path) -> Result<String, Error> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_string).ok_or_else(|| {
        Error::InvalidFileSpec {
            spec: path.display().to_string(),
            why: "the path has no usable file name to use as key; give one as KEY=PATH",
        }
    })
}

pub(super) fn meta(
    what: &'static str,
    name: &str,
    namespace: Option<&str>,
) -> Result<ObjectMeta, Error> {
    validate_name(what, name)?;
    if let Some(ns) = namespace {
        validate_namespace(ns)?;
    }
    Ok(ObjectMeta { name: name.to_string(), namespace: namespace.map(str::to_string) })
}

fn base64_values<S: Serializer>(data: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(data.iter().map(|(k, v)| (k, BASE64.encode(v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds<'a>(email: Option<&'a str>) -> RegistryCredentials<'a> {
        RegistryCredentials { server: "reg.example:5000", username: "u", password: "p&<", email }
    }

    #[test]
    fn docker_config_has_kubectl_structure() {
        let json = docker_config_json(&creds(None)).unwrap();
        assert_eq!(
            json,
            r#"{"auths":{"reg.example:5000":{"username":"u","password":"p&<","auth":"dTpwJjw="}}}"#
        );
        let with = docker_config_json(&creds(Some("a@b"))).unwrap();
        assert!(with.contains(r#""password":"p&<","email":"a@b","auth""#), "{with}");
        let s = docker_registry("regcred", Some("apps"), &creds(None)).unwrap();
        assert_eq!(s.secret_type(), TYPE_DOCKERCONFIGJSON);
        assert_eq!(s.data()[".dockerconfigjson"], json.as_bytes());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["data"][".dockerconfigjson"], BASE64.encode(&json));
        assert_eq!(v["metadata"]["namespace"], "apps");
    }

    #[test]
    fn several_servers_get_one_entry_each_with_the_same_auth() {
        let c = creds(None);
        let all = [c, RegistryCredentials { server: "reg.example", ..c }];
        let json = docker_config_json_all(&all).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let auths = v["auths"].as_object().unwrap();
        assert_eq!(auths.keys().collect::<Vec<_>>(), ["reg.example", "reg.example:5000"]);
        assert_eq!(auths["reg.example"], auths["reg.example:5000"]);
        assert_eq!(auths["reg.example"]["auth"], "dTpwJjw=");
        let twice = docker_config_json_all(&[c, c]).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
        assert!(docker_config_json_all(&[]).is_err());
        let s = docker_registry_all("regcred", None, &all).unwrap();
        assert_eq!(s.data()[".dockerconfigjson"], json.as_bytes());
    }

    #[test]
    fn bad_credentials_are_refused() {
        for (server, user, pw) in
            [("", "u", "p"), ("a b", "u", "p"), ("s", "", "p"), ("s", "a:b", "p"), ("s", "u", "")]
        {
            let c = RegistryCredentials { server, username: user, password: pw, email: None };
            assert!(docker_config_json(&c).is_err(), "{server:?} {user:?} {pw:?}");
        }
    }

    #[test]
    fn secrets_check_keys_duplicates_and_size() {
        let e = generic("x", None, vec![("a".into(), vec![]), ("a".into(), vec![])]).unwrap_err();
        assert!(matches!(e, Error::DuplicateKey { .. }), "{e}");
        let e = generic("x", None, vec![("a b".into(), vec![])]).unwrap_err();
        assert!(matches!(e, Error::InvalidKey { .. }), "{e}");
        let e = generic("x", None, vec![("a".into(), vec![0; MAX_SECRET_BYTES + 1])]).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        let e = generic("X", None, vec![]).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e}");
        let e = generic("x", Some("a.b"), vec![]).unwrap_err();
        assert!(e.to_string().contains("invalid namespace"), "{e}");
    }

    #[test]
    fn file_specs_parse_like_kubectl() {
        assert_eq!(FileSpec::parse("ca.crt=/p/x").unwrap().key.as_deref(), Some("ca.crt"));
        assert_eq!(FileSpec::parse("ca.crt=/p/x").unwrap().path, PathBuf::from("/p/x"));
        assert_eq!(FileSpec::parse("/p/ca.crt").unwrap().key, None);
        for bad in ["", "=x", "k=", "k=/p/x=y"] {
            assert!(FileSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn service_account_lists_pull_secrets_once() {
        let sa = service_account("puller", None, &["a", "b", "a"]).unwrap();
        assert_eq!(sa.pull_secrets().collect::<Vec<_>>(), ["a", "b"]);
        assert!(service_account("puller", None, &["Bad"]).is_err());
    }
}
