//! Manifest endpoints (spec end-3, end-7, end-9): `GET`/`HEAD /v2/<name>/manifests/<ref>`
//! (200, 404 MANIFEST_UNKNOWN), `PUT` (201 + `Location`, `Docker-Content-Digest`, and
//! `OCI-Subject` when the manifest has a subject; 400 MANIFEST_INVALID,
//! MANIFEST_BLOB_UNKNOWN or DIGEST_INVALID; 413 above the size limit) and `DELETE` (202;
//! by digest removes the manifest, by tag removes only the tag; 405 when deletes are off).
//!
//! Accept negotiation: the stored bytes are always served as pushed, with their own media
//! type, whatever `Accept` says. Converting would change the digest the client asked for
//! (containerd and Docker verify it), and the only conversion distribution ever did was to
//! schema 1, which is gone. Docker and containerd send every type they understand in
//! `Accept`; a client that cannot parse the stored type fails on the type it was told,
//! which explains more than distribution's 404 for an OCI manifest requested without the
//! OCI type in `Accept`.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;

use super::error::{ApiError, ErrorCode};
use super::manifest_doc;
use super::names::{Algorithm, Reference, RepoName, Tag};
use super::{DOCKER_CONTENT_DIGEST, content_length, hv, location, query};
use crate::registry::AppState;
use crate::registry::storage::Error as StorageError;

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
pub async fn get_manifest(
    state: &AppState,
    repo: &RepoName,
    reference: &Reference,
    head: bool,
) -> Result<Response, ApiError> {
    let stored = state.storage.manifest(repo, reference).await.map_err(|e| match e {
        // A manifest of an unknown repository is an unknown manifest to the client.
        StorageError::NameUnknown(_) => {
            ApiError::detail(ErrorCode::ManifestUnknown, format!("{repo}:{reference} is unknown"))
        }
        e => e.into(),
    })?;
    let summary = state.summaries.get(&stored.digest, &stored.bytes);
    let len = stored.bytes.len();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, summary.media_type)
        .header(header::CONTENT_LENGTH, len)
        .header(header::ETAG, hv(format!("\"{}\"", stored.digest)))
        .header(DOCKER_CONTENT_DIGEST, hv(stored.digest.to_string()))
        .body(if head { Body::empty() } else { Body::from(stored.bytes) })
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `PUT /v2/<name>/manifests/<reference>[?tag=...]`.
pub async fn put_manifest(
    state: &AppState,
    parts: &Parts,
    repo: &RepoName,
    reference: &Reference,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.options.manifest_max_bytes;
    // Spec: "respond to a request to push a manifest over this limit with a response code
    // 413 Payload Too Large". The code is the size one; the detail says which limit.
    let too_large = |size: String| {
        ApiError::detail(
            ErrorCode::SizeInvalid,
            format!("manifest is over the size limit: {size} bytes, limit {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let announced = content_length(parts)?;
    if let Some(n) = announced.filter(|&n| n > limit as u64) {
        return Err(too_large(n.to_string()));
    }
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(too_large(format!("more than {limit}")));
        }
        Err(e) => {
            return Err(ApiError::detail(ErrorCode::ManifestInvalid, format!("reading body: {e}")));
        }
    };
    if let Some(n) = announced.filter(|&n| n != bytes.len() as u64) {
        return Err(ApiError::detail(
            ErrorCode::SizeInvalid,
            format!("body has {} bytes but Content-Length is {n}", bytes.len()),
        ));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let doc = manifest_doc::validate(&bytes, content_type)?;
    let mut tags = Vec::new();
    let digest = match reference {
        Reference::Digest(claimed) => {
            let actual = claimed.algorithm().digest_of(&bytes);
            if &actual != claimed {
                return Err(ApiError::detail(
                    ErrorCode::DigestInvalid,
                    format!("manifest digest is {actual}, not {claimed}"),
                ));
            }
            // Newer spec: PUT by digest may tag it at the same time with `?tag=`.
            for (k, v) in query(parts) {
                if k == "tag" {
                    tags.push(Tag::parse(&v)?);
                }
            }
            actual
        }
        Reference::Tag(t) => {
            tags.push(t.clone());
            Algorithm::Sha256.digest_of(&bytes)
        }
    };
    for blob in &doc.blobs {
        match state.storage.blob_size(repo, blob).await {
            Ok(_) => {}
            Err(StorageError::BlobUnknown(_)) => {
                return Err(ApiError::detail(
                    ErrorCode::ManifestBlobUnknown,
                    format!("blob {blob} is not in {repo}"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    for child in &doc.children {
        if !state.storage.manifest_exists(repo, child).await? {
            return Err(ApiError::detail(
                ErrorCode::ManifestBlobUnknown,
                format!("manifest {child} is not in {repo}"),
            ));
        }
    }
    state.storage.put_manifest(repo, &digest, bytes, &tags).await?;
    let mut b = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, hv(location(state, &format!("/v2/{repo}/manifests/{digest}"))))
        .header(DOCKER_CONTENT_DIGEST, hv(digest.to_string()))
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = &doc.subject {
        b = b.header(HeaderName::from_static("oci-subject"), hv(subject.to_string()));
    }
    b.body(Body::empty()).map_err(|e| ApiError::internal(e.to_string()))
}

/// `DELETE /v2/<name>/manifests/<reference>`.
pub async fn delete_manifest(
    state: &AppState,
    repo: &RepoName,
    reference: &Reference,
) -> Result<Response, ApiError> {
    if !state.options.delete_enabled {
        return Err(ApiError::detail(
            ErrorCode::Unsupported,
            "deletes are disabled on this registry",
        ));
    }
    let result = match reference {
        Reference::Digest(d) => state.storage.delete_manifest(repo, d).await,
        Reference::Tag(t) => state.storage.untag(repo, t).await,
    };
    result.map_err(|e| match e {
        StorageError::NameUnknown(_) => {
            ApiError::detail(ErrorCode::ManifestUnknown, format!("{repo}:{reference} is unknown"))
        }
        e => e.into(),
    })?;
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}
