//! `GET /v2/<name>/referrers/<digest>` (spec end-12a/12b): an OCI image index of the
//! manifests in the repository whose `subject` is `digest`, each with its `artifactType`
//! and annotations; `?artifactType=` filters and is echoed in `OCI-Filters-Applied`. An
//! unknown subject or repository gives an empty index, never 404.
//!
//! Index choice: no extra files. Each request lists the repository's manifest revisions
//! (one directory listing) and looks each one up in [`Summaries`], an in-memory cache of
//! what each manifest says (media type, subject, artifact type, annotations), keyed by
//! digest. A manifest's content never changes for a digest, so entries never go stale;
//! only a manifest seen for the first time is read and parsed. This keeps the on-disk
//! layout exactly distribution's, and manifests pushed by another server are found too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::manifest_doc::{OCI_INDEX, Summary, summarize};
use super::names::{Digest, Reference, RepoName};
use super::{query, query_param};
use crate::registry::AppState;
use crate::registry::storage::Error as StorageError;

/// Entries kept before the cache is cleared (each is a few hundred bytes).
const MAX_SUMMARIES: usize = 200_000;

/// Cache of manifest summaries by digest (content-addressed, so never invalidated).
#[derive(Debug, Default)]
pub struct Summaries {
    map: Mutex<HashMap<Digest, (Arc<Summary>, u64)>>,
}

impl Summaries {
    /// The summary of the manifest `bytes` stored under `digest`.
    pub fn get(&self, digest: &Digest, bytes: &[u8]) -> Arc<Summary> {
        if let Some(s) = self.cached(digest) {
            return s.0;
        }
        let s = Arc::new(summarize(bytes));
        self.insert(digest, s.clone(), bytes.len() as u64);
        s
    }

    fn cached(&self, digest: &Digest) -> Option<(Arc<Summary>, u64)> {
        // The map is only ever inserted into or cleared; a poisoned lock still holds a
        // consistent map.
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(digest).cloned()
    }

    fn insert(&self, digest: &Digest, s: Arc<Summary>, size: u64) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SUMMARIES {
            map.clear();
        }
        map.insert(digest.clone(), (s, size));
    }
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`.
pub async fn list(
    state: &AppState,
    parts: &Parts,
    repo: &RepoName,
    subject: &Digest,
) -> Result<Response, ApiError> {
    let q = query(parts);
    let filter = query_param(&q, "artifactType").filter(|f| !f.is_empty());
    let mut found = Vec::new();
    for digest in state.storage.revisions(repo).await? {
        let (summary, size) = match state.summaries.cached(&digest) {
            Some(hit) => hit,
            None => match state.storage.manifest(repo, &Reference::Digest(digest.clone())).await {
                Ok(m) => {
                    let s = Arc::new(summarize(&m.bytes));
                    state.summaries.insert(&digest, s.clone(), m.bytes.len() as u64);
                    (s, m.bytes.len() as u64)
                }
                // Deleted meanwhile: not a referrer any more.
                Err(StorageError::ManifestUnknown(_) | StorageError::NameUnknown(_)) => continue,
                Err(e) => return Err(e.into()),
            },
        };
        if summary.subject.as_ref() != Some(subject) {
            continue;
        }
        if filter.is_some_and(|f| summary.artifact_type.as_deref() != Some(f)) {
            continue;
        }
        let mut d = Map::new();
        d.insert("mediaType".into(), json!(summary.media_type));
        d.insert("digest".into(), json!(digest.to_string()));
        d.insert("size".into(), json!(size));
        if let Some(t) = &summary.artifact_type {
            d.insert("artifactType".into(), json!(t));
        }
        if let Some(a) = &summary.annotations {
            d.insert("annotations".into(), json!(a));
        }
        found.push((digest, Value::Object(d)));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let manifests: Vec<Value> = found.into_iter().map(|(_, v)| v).collect();
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut b = Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        b = b.header(HeaderName::from_static("oci-filters-applied"), "artifactType");
    }
    b.body(Body::from(body.to_string())).map_err(|e| ApiError::internal(e.to_string()))
}
