//! HTTP-level tests of the registry API (`regkit::registry::router`) on a temporary root,
//! in-process via `oneshot`, plus real clients (skopeo, buildah) and the reference
//! registry (`docker-registry`) against the same on-disk layout.

mod blobs;
mod clients;
mod docker;
mod listing;
mod manifests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use bytes::Bytes;
use http_body_util::BodyExt;
use regkit::registry::api::names::Algorithm;
use regkit::registry::storage::StorageOptions;
use regkit::registry::storage::fs::FsStorage;
use regkit::registry::{AppState, RegistryOptions, auth, router};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A registry over a temporary root.
pub struct Reg {
    pub dir: tempfile::TempDir,
    pub state: AppState,
}

/// A finished response.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub extensions: axum::http::Extensions,
    what: String,
}

impl Reg {
    /// Deletes enabled, everything else default.
    pub fn new() -> Self {
        Self::with(RegistryOptions { delete_enabled: true, ..Default::default() })
    }

    pub fn with(options: RegistryOptions) -> Self {
        Self::with_storage(|s| s, options)
    }

    /// Storage options adjusted by `f` (the root is the temporary directory).
    pub fn with_storage(
        f: impl FnOnce(StorageOptions) -> StorageOptions,
        options: RegistryOptions,
    ) -> Self {
        let dir = tempfile::Builder::new().prefix("regkit-reg-").tempdir().unwrap();
        let state = AppState::filesystem(f(StorageOptions::new(dir.path())), options);
        Reg { dir, state }
    }

    /// The same root served by a fresh state (as after a restart: no in-memory hashes).
    pub fn restarted(&self, options: RegistryOptions) -> AppState {
        let storage = Arc::new(FsStorage::new(StorageOptions::new(self.dir.path())));
        AppState::new(storage, options, Arc::new(auth::Open))
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn v2(&self) -> PathBuf {
        self.root().join("docker/registry/v2")
    }

    pub async fn req(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        send(&self.state, method, uri, headers, body).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.req("GET", uri, &[], Body::empty()).await
    }

    /// Every file under the root with its content, and every directory (as `<path>/`).
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        crate::harness::snapshot_tree(self.root())
    }

    /// Pushes a blob monolithically and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let len = data.len().to_string();
        self.req(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[("content-length", &len)],
            data.to_vec(),
        )
        .await
        .expect(201);
        d
    }

    /// Pushes a config and one layer and returns an OCI manifest referring to them.
    pub async fn image(&self, repo: &str, layer: &[u8]) -> Vec<u8> {
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let c = self.push_blob(repo, config).await;
        let l = self.push_blob(repo, layer).await;
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}],
        }))
        .unwrap()
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, ct: &str, bytes: &[u8]) -> Resp {
        self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", ct)],
            bytes.to_vec(),
        )
        .await
    }
}

pub async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = router(state.clone()).oneshot(b.body(body.into()).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        extensions: parts.extensions,
        what: format!("{method} {uri}"),
    }
}

pub fn digest(data: &[u8]) -> String {
    Algorithm::Sha256.digest_of(data).to_string()
}

impl Resp {
    /// Asserts the status (printing the body on failure) and returns self.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "{}: body {}",
            self.what,
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("docker-distribution-api-version"), "registry/2.0");
        self
    }

    /// Asserts the status and the spec error code of the first error.
    #[track_caller]
    pub fn error(self, status: u16, code: &str) -> Self {
        let r = self.expect(status);
        assert_eq!(r.json()["errors"][0]["code"], code, "{}", String::from_utf8_lossy(&r.body));
        r
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn detail(&self) -> String {
        self.json()["errors"][0]["detail"].as_str().unwrap_or("").to_string()
    }
}
