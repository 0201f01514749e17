//! Turning objects into manifest text and files: YAML (one document per object, separated by
//! `---`) or JSON (one object, or a `kind: List` holding several, as `kubectl -o json`
//! prints them), serialized with serde. Writing creates the file 0600 (it holds secrets),
//! replaces it with [`WriteMode::Replace`], or merges into it with [`WriteMode::Append`]: an
//! object with the same apiVersion, kind, namespace and name is replaced where it stands,
//! others are added at the end, so re-running a command does not duplicate anything.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{Error, Secret, ServiceAccount};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// YAML, documents separated by `---`.
    #[default]
    Yaml,
    /// Pretty JSON; several objects become a `v1` `List`.
    Json,
}

/// `metadata` of the objects regkit writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    /// Object name (an RFC 1123 subdomain).
    pub name: String,
    /// Namespace; omitted to use the one `kubectl apply` is pointed at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Any object regkit writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A Secret.
    Secret(Secret),
    /// A ServiceAccount.
    ServiceAccount(ServiceAccount),
}

impl From<Secret> for Object {
    fn from(s: Secret) -> Self {
        Object::Secret(s)
    }
}

impl From<ServiceAccount> for Object {
    fn from(s: ServiceAccount) -> Self {
        Object::ServiceAccount(s)
    }
}

impl Object {
    /// The object as a JSON value (keys sorted, as kubectl prints them).
    pub fn to_value(&self) -> Result<Value, Error> {
        let v = match self {
            Object::Secret(s) => serde_json::to_value(s),
            Object::ServiceAccount(s) => serde_json::to_value(s),
        };
        v.map_err(|e| Error::Render(e.to_string()))
    }

    /// `Kind namespace/name`, for messages.
    pub fn describe(&self) -> String {
        let (kind, meta) = match self {
            Object::Secret(s) => ("Secret", s.metadata()),
            Object::ServiceAccount(s) => ("ServiceAccount", s.metadata()),
        };
        match &meta.namespace {
            Some(ns) => format!("{kind} {ns}/{}", meta.name),
            None => format!("{kind} {}", meta.name),
        }
    }
}

/// Renders objects as one YAML stream or one JSON document.
pub fn render(objects: &[Object], format: Format) -> Result<String, Error> {
    let values = objects.iter().map(Object::to_value).collect::<Result<Vec<_>, _>>()?;
    render_values(&values, format)
}

/// How [`write`] treats an existing output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail if the file exists.
    Create,
    /// Overwrite the file.
    Replace,
    /// Merge the objects into the file (created when missing).
    Append,
}

/// What [`write`] did with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The object was added (`Kind ns/name`).
    Added(String),
    /// An object with the same identity was replaced in place.
    Replaced(String),
}

/// Writes `objects` to `path` (mode 0600, atomically) in `format` according to `mode`.
pub fn write(
    path: &Path,
    objects: &[Object],
    format: Format,
    mode: WriteMode,
) -> Result<Vec<Change>, Error> {
    let exists = path.exists();
    let mut values = match (mode, exists) {
        (WriteMode::Create, true) => return Err(Error::OutputExists { path: path.to_path_buf() }),
        (WriteMode::Append, true) => parse_existing(path, format)?,
        _ => Vec::new(),
    };
    let mut changes = Vec::with_capacity(objects.len());
    for object in objects {
        let value = object.to_value()?;
        let id = identity(&value);
        match values.iter().position(|v| identity(v) == id) {
            Some(i) => {
                values[i] = value;
                changes.push(Change::Replaced(object.describe()));
            }
            None => {
                values.push(value);
                changes.push(Change::Added(object.describe()));
            }
        }
    }
    let text = render_values(&values, format)?;
    crate::files::write_atomic(path, text.as_bytes(), crate::files::MODE_PRIVATE)?;
    Ok(changes)
}

fn render_values(values: &[Value], format: Format) -> Result<String, Error> {
    match format {
        Format::Yaml => {
            let mut out = String::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                // Plain scalars, as kubectl prints them: long base64 values on one line
                // rather than folded blocks.
                let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
                let doc = serde_saphyr::to_string_with_options(v, options)
                    .map_err(|e| Error::Render(e.to_string()))?;
                out.push_str(&doc);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Ok(out)
        }
        Format::Json => {
            let doc = match values {
                [one] => one.clone(),
                many => serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": many,
                    "metadata": {},
                }),
            };
            let mut out =
                serde_json::to_string_pretty(&doc).map_err(|e| Error::Render(e.to_string()))?;
            out.push('\n');
            Ok(out)
        }
    }
}

/// Reads an existing manifest file as a list of objects.
fn parse_existing(path: &Path, format: Format) -> Result<Vec<Value>, Error> {
    let text = crate::files::read_to_string(path)?;
    let bad = |why: String| Error::NotManifests { path: path.to_path_buf(), why };
    let docs: Vec<Value> = match format {
        Format::Yaml => {
            serde_saphyr::from_multiple(&text).map_err(|e| bad(format!("it is not YAML ({e})")))?
        }
        Format::Json if text.trim().is_empty() => Vec::new(),
        Format::Json => {
            let doc: Value = serde_json::from_str(&text)
                .map_err(|e| bad(format!("it is not JSON ({e}); use the same -o as before")))?;
            match doc.get("kind").and_then(Value::as_str) {
                Some("List") => match doc.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => return Err(bad("its List has no items array".into())),
                },
                _ => vec![doc],
            }
        }
    };
    for doc in &docs {
        if doc.get("kind").and_then(Value::as_str).is_none() {
            return Err(bad("a document in it has no kind, so it is not a manifest".into()));
        }
    }
    Ok(docs)
}

/// (apiVersion, kind, namespace, name) of a manifest value.
fn identity(v: &Value) -> [Option<&str>; 4] {
    let meta = v.get("metadata");
    [
        v.get("apiVersion").and_then(Value::as_str),
        v.get("kind").and_then(Value::as_str),
        meta.and_then(|m| m.get("namespace")).and_then(Value::as_str),
        meta.and_then(|m| m.get("name")).and_then(Value::as_str),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::{service_account, validate_name};

    fn sa(name: &str, secret: &str) -> Object {
        validate_name("n", name).unwrap();
        service_account(name, Some("apps"), &[secret]).unwrap().into()
    }

    #[test]
    fn yaml_stream_and_json_list() {
        let objs = [sa("a", "s1"), sa("b", "s2")];
        let yaml = render(&objs, Format::Yaml).unwrap();
        assert!(
            yaml.starts_with("apiVersion: v1\n") && yaml.contains("\n---\napiVersion"),
            "{yaml}"
        );
        let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["name"], "b");
        assert_eq!(docs[1]["imagePullSecrets"][0]["name"], "s2");
        let json: Value = serde_json::from_str(&render(&objs, Format::Json).unwrap()).unwrap();
        assert_eq!(json["kind"], "List");
        assert_eq!(json["items"][0]["kind"], "ServiceAccount");
        let one: Value = serde_json::from_str(&render(&objs[..1], Format::Json).unwrap()).unwrap();
        assert_eq!(one["kind"], "ServiceAccount");
    }

    #[test]
    fn append_replaces_same_identity_and_adds_others() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Yaml, Format::Json] {
            let path = dir.path().join(format!("{format:?}"));
            write(&path, &[sa("a", "s1")], format, WriteMode::Create).unwrap();
            assert_eq!(crate::files::mode_of(&path), Some(0o600));
            let err = write(&path, &[sa("a", "s1")], format, WriteMode::Create).unwrap_err();
            assert!(matches!(err, Error::OutputExists { .. }), "{err}");
            let ch = write(&path, &[sa("b", "s2"), sa("a", "s3")], format, WriteMode::Append);
            assert_eq!(
                ch.unwrap(),
                [
                    Change::Added("ServiceAccount apps/b".into()),
                    Change::Replaced("ServiceAccount apps/a".into())
                ]
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = parse_existing(&path, format).unwrap();
            assert_eq!(docs.len(), 2, "{text}");
            assert_eq!(docs[0]["imagePullSecrets"][0]["name"], "s3");
            assert_eq!(docs[1]["metadata"]["name"], "b");
        }
    }

    #[test]
    fn append_refuses_files_that_are_not_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, "just: [a, map\n").unwrap();
        let err = write(&path, &[sa("a", "s")], Format::Yaml, WriteMode::Append).unwrap_err();
        assert!(err.to_string().contains("cannot append to"), "{err}");
        std::fs::write(&path, "hello: world\n").unwrap();
        let err = write(&path, &[sa("a", "s")], Format::Yaml, WriteMode::Append).unwrap_err();
        assert!(err.to_string().contains("no kind"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello: world\n");
    }
}
