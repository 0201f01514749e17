//! Manifest documents: the four media types the registry accepts (Docker schema 2 manifest
//! and manifest list, OCI image manifest and index, the latter two also carrying OCI
//! artifacts), validation of a pushed manifest, and the summary the referrers API and
//! `GET` need (media type, subject, artifact type, annotations). Docker schema 1 is refused.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use super::names::Digest;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-arch).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest (also used by artifacts).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<BTreeMap<String, String>>,
    fs_layers: Option<serde_json::Value>,
    signatures: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

/// A validated manifest: what it is and what it refers to.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Its media type (one of the four constants).
    pub media_type: &'static str,
    /// Blobs (config and layers) that must be in the repository.
    pub blobs: Vec<Digest>,
    /// Child manifests (of an index or list) that must be in the repository.
    pub children: Vec<Digest>,
    /// The `subject` digest, when present.
    pub subject: Option<Digest>,
}

/// What the referrers API and `GET` need to know about a stored manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The manifest's media type.
    pub media_type: &'static str,
    /// Its `subject`, when it has one.
    pub subject: Option<Digest>,
    /// `artifactType`, else (for an image manifest) the config's media type.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: Option<BTreeMap<String, String>>,
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::detail(ErrorCode::ManifestInvalid, detail)
}

fn known(media_type: &str) -> Option<&'static str> {
    [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX].into_iter().find(|m| *m == media_type)
}

/// The media type named by a `Content-Type` value, without parameters.
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Validates a pushed manifest against the request's `Content-Type`.
pub fn validate(bytes: &[u8], content_type: Option<&str>) -> Result<Validated, ApiError> {
    // A bare `application/json` says nothing about which manifest this is: infer it.
    let ct = content_type.map(essence).filter(|c| !c.is_empty() && *c != "application/json");
    let schema1 = || {
        invalid(
            "Docker schema 1 manifests are not supported (deprecated, unsigned content); push \
             with a Docker schema 2 or OCI media type (e.g. skopeo copy --format v2s2)",
        )
    };
    if ct.is_some_and(|c| SCHEMA1.contains(&c)) {
        return Err(schema1());
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON of the expected shape: {e}")))?;
    if raw.schema_version == Some(1) || raw.fs_layers.is_some() || raw.signatures.is_some() {
        return Err(schema1());
    }
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let media_type = resolve_media_type(&raw, ct)?;
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    if media_type == DOCKER_MANIFEST || media_type == OCI_MANIFEST {
        if raw.manifests.is_some() {
            return Err(invalid(format!("{media_type} must not have \"manifests\"")));
        }
        let config =
            raw.config.as_ref().ok_or_else(|| invalid(format!("{media_type} needs \"config\"")))?;
        blobs.push(descriptor_digest(config, "config")?);
        let layers =
            raw.layers.as_ref().ok_or_else(|| invalid(format!("{media_type} needs \"layers\"")))?;
        for layer in layers {
            let d = descriptor_digest(layer, "layer")?;
            // Foreign (non-distributable) layers live at their `urls`, not in this registry.
            if layer.urls.is_empty() {
                blobs.push(d);
            }
        }
    } else {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(invalid(format!("{media_type} must not have \"config\" or \"layers\"")));
        }
        let manifests = raw
            .manifests
            .as_ref()
            .ok_or_else(|| invalid(format!("{media_type} needs \"manifests\"")))?;
        for m in manifests {
            children.push(descriptor_digest(m, "manifests entry")?);
        }
    }
    let subject = match &raw.subject {
        Some(s) if media_type == OCI_MANIFEST || media_type == OCI_INDEX => {
            Some(descriptor_digest(s, "subject")?)
        }
        // Docker media types define no `subject`; like any unknown field it is ignored.
        Some(_) => None,
        None => None,
    };
    Ok(Validated { media_type, blobs, children, subject })
}

/// The media type from the document's `mediaType` and the request's `Content-Type`, which
/// must agree when both are present. OCI documents may omit `mediaType`; Docker ones may not.
fn resolve_media_type(raw: &Raw, ct: Option<&str>) -> Result<&'static str, ApiError> {
    let shape = if raw.manifests.is_some() { OCI_INDEX } else { OCI_MANIFEST };
    match (raw.media_type.as_deref(), ct) {
        (Some(declared), ct) => {
            let m = known(declared)
                .ok_or_else(|| invalid(format!("unsupported manifest mediaType {declared:?}")))?;
            match ct {
                Some(c) if c != m => Err(invalid(format!(
                    "Content-Type {c:?} does not match the manifest's mediaType {m:?}"
                ))),
                _ => Ok(m),
            }
        }
        (None, Some(c)) => match known(c) {
            Some(m) if m == shape => Ok(m),
            Some(m) if m == OCI_MANIFEST || m == OCI_INDEX => {
                Err(invalid(format!("document shape does not match Content-Type {c:?}")))
            }
            Some(_) => Err(invalid("Docker manifests must declare their mediaType")),
            None => Err(invalid(format!("unsupported manifest Content-Type {c:?}"))),
        },
        (None, None) => Ok(shape),
    }
}

fn descriptor_digest(d: &RawDescriptor, what: &str) -> Result<Digest, ApiError> {
    if d.size < 0 {
        return Err(invalid(format!("{what} {} has a negative size", d.digest)));
    }
    if d.media_type.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(format!("{what} {} has no mediaType", d.digest)));
    }
    Digest::parse(&d.digest).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Summarises stored bytes (validated on push, or written by another registry; anything
/// unparsable is described as an OCI manifest without subject).
pub fn summarize(bytes: &[u8]) -> Summary {
    let Ok(raw) = serde_json::from_slice::<Raw>(bytes) else {
        return Summary {
            media_type: OCI_MANIFEST,
            subject: None,
            artifact_type: None,
            annotations: None,
        };
    };
    let media_type = raw
        .media_type
        .as_deref()
        .and_then(known)
        .unwrap_or(if raw.manifests.is_some() { OCI_INDEX } else { OCI_MANIFEST });
    let subject = raw
        .subject
        .as_ref()
        .filter(|_| media_type == OCI_MANIFEST || media_type == OCI_INDEX)
        .and_then(|s| Digest::parse(&s.digest).ok());
    let artifact_type = raw
        .artifact_type
        .clone()
        .or_else(|| raw.config.as_ref().and_then(|c| c.media_type.clone()));
    Summary { media_type, subject, artifact_type, annotations: raw.annotations }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn oci(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,{extra}"config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D}","size":2}},"layers":[]}}"#
        )
    }

    #[test]
    fn media_type_rules() {
        let v = validate(oci("").as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(v.media_type, OCI_MANIFEST);
        assert_eq!(v.blobs.len(), 1);
        assert!(validate(oci("").as_bytes(), Some(OCI_INDEX)).is_err());
        assert!(validate(oci("").as_bytes(), Some(DOCKER_MANIFEST)).is_err());
        let docker = oci(&format!(r#""mediaType":"{DOCKER_MANIFEST}","#));
        assert!(validate(docker.as_bytes(), Some(DOCKER_MANIFEST)).is_ok());
        assert!(validate(docker.as_bytes(), Some(OCI_MANIFEST)).is_err());
        assert!(validate(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).is_err());
        assert!(validate(b"{not json", Some(OCI_MANIFEST)).is_err());
        let s = summarize(oci(r#""artifactType":"x/y","#).as_bytes());
        assert_eq!(s.artifact_type.as_deref(), Some("x/y"));
    }
}
