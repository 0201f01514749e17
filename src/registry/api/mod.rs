//! The HTTP API of the registry (OCI distribution spec v1.1 and Docker Registry HTTP API
//! V2): [`dispatch`] parses each `/v2/...` path into a repository name and endpoint and
//! calls one handler module per endpoint family. Handlers call storage and nothing else;
//! errors go through the one table in [`error`].

pub mod blobs;
pub mod catalog;
pub mod dispatch;
pub mod error;
pub mod manifest_doc;
pub mod manifests;
pub mod names;
pub mod referrers;
pub mod tags;
pub mod uploads;

use axum::http::HeaderValue;
use axum::http::request::Parts;

use error::{ApiError, ErrorCode};

/// `Docker-Content-Digest`.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
/// `Docker-Upload-UUID`.
pub const DOCKER_UPLOAD_UUID: &str = "docker-upload-uuid";
/// `Docker-Distribution-API-Version`.
pub const API_VERSION: &str = "docker-distribution-api-version";

/// The query parameters of a request, in order (repeated keys kept).
pub(crate) fn query(parts: &Parts) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The first value of query parameter `key`.
pub(crate) fn query_param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `Content-Length` as a number; a malformed value is a client error.
pub(crate) fn content_length(parts: &Parts) -> Result<Option<u64>, ApiError> {
    match parts.headers.get(axum::http::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::detail(ErrorCode::SizeInvalid, "malformed Content-Length")),
    }
}

/// The `Location` of `path` (which starts with `/v2/`): absolute when the registry has an
/// external URL (`http.host`), the path itself otherwise.
pub(crate) fn location(state: &crate::registry::AppState, path: &str) -> String {
    match &state.options.location_base {
        Some(base) => format!("{base}{path}"),
        None => path.to_string(),
    }
}

/// A header value from text this module built (digests, ids, numbers: always valid).
pub(crate) fn hv(s: impl AsRef<str>) -> HeaderValue {
    HeaderValue::from_str(s.as_ref()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `n` for paginated listings: absent is `None`; anything but a non-negative integer is
/// refused (the spec has no dedicated code; SIZE_INVALID names the bad number).
pub(crate) fn page_size(q: &[(String, String)]) -> Result<Option<usize>, ApiError> {
    match query_param(q, "n") {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::detail(
                ErrorCode::SizeInvalid,
                format!("n={v:?} is not a non-negative integer"),
            )
        }),
    }
}
