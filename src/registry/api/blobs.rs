//! Blob endpoints: `GET`/`HEAD /v2/<name>/blobs/<digest>` (end-2; 200, or 206 for a single
//! `Range`, 416 when it cannot be satisfied, 404 BLOB_UNKNOWN) and `DELETE` (end-10; 202,
//! or 405 UNSUPPORTED unless deletes are enabled). `GET` streams from storage; `HEAD`
//! answers from metadata alone.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::error::{ApiError, ErrorCode};
use super::names::{Digest, RepoName};
use super::{DOCKER_CONTENT_DIGEST, hv};
use crate::registry::AppState;

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`.
pub async fn get_blob(
    state: &AppState,
    parts: &Parts,
    repo: &RepoName,
    digest: &Digest,
    head: bool,
) -> Result<Response, ApiError> {
    let size = state.storage.blob_size(repo, digest).await?;
    let range = match parts.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size).map_err(|()| {
            ApiError::detail(ErrorCode::SizeInvalid, format!("range {r:?} is outside the blob"))
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header(header::CONTENT_RANGE, &format!("bytes */{size}"))
        })?,
        None => None,
    };
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, hv(format!("\"{digest}\"")))
        .header(DOCKER_CONTENT_DIGEST, hv(digest.to_string()));
    if let Some((s, e)) = range {
        b = b.header(header::CONTENT_RANGE, hv(format!("bytes {s}-{e}/{size}")));
    }
    let body = if head || len == 0 {
        Body::empty()
    } else {
        Body::from_stream(state.storage.read_blob(repo, digest, start, len).await?.stream)
    };
    b.body(body).map_err(|e| ApiError::internal(e.to_string()))
}

/// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository.
pub async fn delete_blob(
    state: &AppState,
    repo: &RepoName,
    digest: &Digest,
) -> Result<Response, ApiError> {
    if !state.options.delete_enabled {
        return Err(ApiError::detail(
            ErrorCode::Unsupported,
            "deletes are disabled on this registry",
        ));
    }
    state.storage.unlink_blob(repo, digest).await?;
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .header(DOCKER_CONTENT_DIGEST, hv(digest.to_string()))
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Parses a single `bytes=` range against `size` into inclusive `(start, end)`.
/// `Ok(None)` means "serve the whole blob" (several ranges or a syntax we ignore, as
/// RFC 9110 allows); `Err` means no byte of the range exists (416).
fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last `b` bytes.
        let Ok(n) = b.parse::<u64>() else { return Ok(None) };
        if n == 0 || size == 0 {
            return Err(());
        }
        return Ok(Some((size.saturating_sub(n), size - 1)));
    }
    let Ok(start) = a.parse::<u64>() else { return Ok(None) };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end.min(size - 1))))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }
}
