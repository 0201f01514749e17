//! Upload endpoints (spec end-4a/4b/5/6/11/13): `POST /v2/<name>/blobs/uploads/` starts an
//! upload (202), completes one in a single request with `?digest=` (201), or mounts a blob
//! from another repository with `?mount=&from=` (201, falling back to 202 and a normal
//! upload); `PATCH` appends a chunk (202; 416 when `Content-Range` does not start at the
//! current end); `GET` reports progress (204 + `Range`); `PUT ?digest=` completes (201,
//! DIGEST_INVALID on mismatch); `DELETE` cancels (204).

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;

use super::error::{ApiError, ErrorCode, range_header};
use super::names::{Digest, RepoName, UploadId};
use super::{
    DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, content_length, hv, location, query, query_param,
};
use crate::registry::AppState;
use crate::registry::storage::ByteStream;

/// `POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]`.
pub async fn start_upload(
    state: &AppState,
    parts: &Parts,
    repo: &RepoName,
    body: ByteStream,
) -> Result<Response, ApiError> {
    let q = query(parts);
    if let Some(mount) = query_param(&q, "mount") {
        let digest = Digest::parse(mount)?;
        let from = query_param(&q, "from").map(RepoName::parse).transpose()?;
        // Without `from`, any blob the registry holds is mounted (spec v1.1 allows it). That
        // is sound while access is all-or-nothing (htpasswd); a per-repository authorizer
        // must check read access to `from`, and refuse or restrict mounts without it.
        if state.storage.mount_blob(repo, &digest, from.as_ref()).await? {
            return blob_created(state, repo, &digest);
        }
        // Not mountable: the spec says to answer as for a plain POST (202 + upload).
    } else if let Some(d) = query_param(&q, "digest") {
        let digest = Digest::parse(d)?;
        let len = content_length(parts)?;
        let id = state.storage.start_upload(repo).await?;
        let done = async {
            state.storage.append_upload(repo, &id, None, len, body).await?;
            state.storage.finish_upload(repo, &id, &digest).await
        }
        .await;
        if let Err(e) = done {
            // Leave nothing behind (finish already removed it on a digest mismatch).
            let _ = state.storage.cancel_upload(repo, &id).await;
            return Err(e.into());
        }
        return blob_created(state, repo, &digest);
    }
    let id = state.storage.start_upload(repo).await?;
    let mut resp = upload_progress(state, StatusCode::ACCEPTED, repo, &id, 0)?;
    if let Some(min) = state.options.chunk_min_length {
        resp.headers_mut()
            .insert(HeaderName::from_static("oci-chunk-min-length"), hv(min.to_string()));
    }
    Ok(resp)
}

/// `GET /v2/<name>/blobs/uploads/<id>`: 204 with the received range.
pub async fn upload_status(
    state: &AppState,
    repo: &RepoName,
    id: &UploadId,
) -> Result<Response, ApiError> {
    let size = state.storage.upload_size(repo, id).await?;
    upload_progress(state, StatusCode::NO_CONTENT, repo, id, size)
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: appends a chunk (with `Content-Range`) or streams
/// the body (without).
pub async fn patch_upload(
    state: &AppState,
    parts: &Parts,
    repo: &RepoName,
    id: &UploadId,
    body: ByteStream,
) -> Result<Response, ApiError> {
    let (start, len) = chunk_bounds(parts)?;
    match state.storage.append_upload(repo, id, start, len, body).await {
        Ok(size) => upload_progress(state, StatusCode::ACCEPTED, repo, id, size),
        Err(e) => {
            // Tell the client where the upload is so it can resume (416 carries Range).
            Err(ApiError::from(e)
                .with_header(header::LOCATION, &location(state, &upload_path(repo, id)))
                .with_header(HeaderName::from_static(DOCKER_UPLOAD_UUID), id.as_str()))
        }
    }
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: appends the body, if any, and completes.
pub async fn put_upload(
    state: &AppState,
    parts: &Parts,
    repo: &RepoName,
    id: &UploadId,
    body: ByteStream,
) -> Result<Response, ApiError> {
    let q = query(parts);
    let digest = query_param(&q, "digest")
        .ok_or_else(|| {
            ApiError::detail(ErrorCode::DigestInvalid, "the digest parameter is required")
        })
        .and_then(|d| Digest::parse(d).map_err(ApiError::from))?;
    let (start, len) = chunk_bounds(parts)?;
    state.storage.append_upload(repo, id, start, len, body).await?;
    state.storage.finish_upload(repo, id, &digest).await?;
    blob_created(state, repo, &digest)
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`: 204.
pub async fn cancel_upload(
    state: &AppState,
    repo: &RepoName,
    id: &UploadId,
) -> Result<Response, ApiError> {
    state.storage.cancel_upload(repo, id).await?;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Where a chunk must start and how long it is, from `Content-Range` (`<start>-<end>`,
/// inclusive; `bytes ` / `bytes=` prefixes and a `/total` suffix tolerated) and
/// `Content-Length`, which must agree when both are sent.
fn chunk_bounds(parts: &Parts) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let length = content_length(parts)?;
    let Some(value) = parts.headers.get(header::CONTENT_RANGE) else {
        return Ok((None, length));
    };
    let bad = || {
        ApiError::detail(ErrorCode::BlobUploadInvalid, "Content-Range must be <start>-<end>")
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text.strip_prefix("bytes").map(|t| t.trim_start_matches([' ', '='])).unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    let range_len = end - start + 1;
    if let Some(l) = length {
        if l != range_len {
            return Err(ApiError::detail(
                ErrorCode::SizeInvalid,
                format!("Content-Range covers {range_len} bytes but Content-Length is {l}"),
            ));
        }
    }
    Ok((Some(start), Some(range_len)))
}

fn upload_path(repo: &RepoName, id: &UploadId) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// A 202/204 upload answer: `Location`, `Range`, `Docker-Upload-UUID`, empty body.
fn upload_progress(
    state: &AppState,
    status: StatusCode,
    repo: &RepoName,
    id: &UploadId,
    size: u64,
) -> Result<Response, ApiError> {
    Response::builder()
        .status(status)
        .header(header::LOCATION, hv(location(state, &upload_path(repo, id))))
        .header(header::RANGE, hv(range_header(size)))
        .header(DOCKER_UPLOAD_UUID, hv(id.as_str()))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// 201 for a blob now in the repository.
fn blob_created(state: &AppState, repo: &RepoName, digest: &Digest) -> Result<Response, ApiError> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, hv(location(state, &format!("/v2/{repo}/blobs/{digest}"))))
        .header(DOCKER_CONTENT_DIGEST, hv(digest.to_string()))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}
