//! The OCI error table: every error code the distribution spec defines, with its HTTP
//! status and message in one exhaustive match, and [`ApiError`], the one error type every
//! handler returns. Storage and name errors are mapped to wire codes here and nowhere else,
//! so this file decides what a client may see; an internal failure becomes a 500 with the
//! generic `UNKNOWN` error and no detail, its cause travelling as a response extension for
//! the logging layer only.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::names::NameError;
use crate::registry::storage;

/// The error codes of the OCI distribution spec (v1.1, "Error Codes" table), exactly, plus
/// `UNKNOWN` for internal failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// code-1: blob unknown to registry.
    BlobUnknown,
    /// code-2: blob upload invalid.
    BlobUploadInvalid,
    /// code-3: blob upload unknown to registry.
    BlobUploadUnknown,
    /// code-4: provided digest did not match uploaded content.
    DigestInvalid,
    /// code-5: blob unknown to registry (referenced by a manifest).
    ManifestBlobUnknown,
    /// code-6: manifest invalid.
    ManifestInvalid,
    /// code-7: manifest unknown.
    ManifestUnknown,
    /// code-8: invalid repository name.
    NameInvalid,
    /// code-9: repository name not known to registry.
    NameUnknown,
    /// code-10: provided length did not match content length.
    SizeInvalid,
    /// code-11: authentication required.
    Unauthorized,
    /// code-12: requested access to the resource is denied.
    Denied,
    /// code-13: the operation is unsupported.
    Unsupported,
    /// code-14: too many requests.
    TooManyRequests,
    /// Not in the spec's table: distribution's code for an internal failure, and what the
    /// Docker Registry API tells clients to treat any unknown code as.
    Unknown,
}

impl ErrorCode {
    /// The wire code, default HTTP status and message of each code.
    pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            BlobUnknown => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND, "blob unknown to registry"),
            BlobUploadInvalid => {
                ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST, "blob upload invalid")
            }
            BlobUploadUnknown => {
                ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND, "blob upload unknown to registry")
            }
            DigestInvalid => (
                "DIGEST_INVALID",
                StatusCode::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                StatusCode::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            ManifestInvalid => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST, "manifest invalid"),
            ManifestUnknown => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND, "manifest unknown"),
            NameInvalid => ("NAME_INVALID", StatusCode::BAD_REQUEST, "invalid repository name"),
            NameUnknown => {
                ("NAME_UNKNOWN", StatusCode::NOT_FOUND, "repository name not known to registry")
            }
            SizeInvalid => (
                "SIZE_INVALID",
                StatusCode::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Unauthorized => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED, "authentication required"),
            Denied => {
                ("DENIED", StatusCode::FORBIDDEN, "requested access to the resource is denied")
            }
            Unsupported => {
                ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED, "the operation is unsupported")
            }
            TooManyRequests => {
                ("TOOMANYREQUESTS", StatusCode::TOO_MANY_REQUESTS, "too many requests")
            }
            Unknown => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR, "unknown error"),
        }
    }
}

/// The cause of a 500, attached to the response for the logging layer (never sent).
#[derive(Debug, Clone)]
pub struct InternalError(pub String);

/// An error answer: a spec code with optional detail, status override and extra headers,
/// or an internal failure.
#[derive(Debug)]
pub struct ApiError {
    kind: Kind,
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug)]
enum Kind {
    Code { code: ErrorCode, detail: Option<serde_json::Value> },
    Internal(String),
}

impl ApiError {
    /// An error with the code's own status and message and no detail.
    pub fn new(code: ErrorCode) -> Self {
        ApiError { kind: Kind::Code { code, detail: None }, status: None, headers: Vec::new() }
    }

    /// An error with a human-readable detail string.
    pub fn detail(code: ErrorCode, detail: impl Into<String>) -> Self {
        let detail = Some(serde_json::Value::String(detail.into()));
        ApiError { kind: Kind::Code { code, detail }, status: None, headers: Vec::new() }
    }

    /// An internal failure: 500 `UNKNOWN` without detail to the client, `cause` logged.
    pub fn internal(cause: impl Into<String>) -> Self {
        ApiError { kind: Kind::Internal(cause.into()), status: None, headers: Vec::new() }
    }

    /// Overrides the HTTP status where the spec prescribes one that differs from the code's
    /// default (416 for an out-of-order chunk, 413 for an oversized manifest).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds a response header (e.g. `Range` on a 416 so the client can resume).
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// The spec code, when this is not an internal error.
    pub fn code(&self) -> Option<ErrorCode> {
        match &self.kind {
            Kind::Code { code, .. } => Some(*code),
            Kind::Internal(_) => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, detail, cause) = match self.kind {
            Kind::Code { code, detail } => (code, detail, None),
            // Paths and OS errors stay in the log: the client only learns that it failed.
            Kind::Internal(cause) => (ErrorCode::Unknown, None, Some(cause)),
        };
        let (name, status, message) = code.describe();
        let body = json!({"errors": [{
            "code": name,
            "message": message,
            "detail": detail.unwrap_or(serde_json::Value::Null),
        }]});
        let mut resp = (self.status.unwrap_or(status), body.to_string()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(cause) = cause {
            resp.extensions_mut().insert(InternalError(cause));
        }
        for (k, v) in self.headers {
            resp.headers_mut().append(k, v);
        }
        resp
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        let code = match e {
            NameError::Name(..) => ErrorCode::NameInvalid,
            // The spec's code MUST be one of its table, which dropped TAG_INVALID: a push to
            // (or `?tag=`) a tag outside the grammar is an invalid manifest push. Reads of such
            // a tag answer 404 MANIFEST_UNKNOWN instead (see `dispatch`).
            NameError::Tag(_) => ErrorCode::ManifestInvalid,
            NameError::Digest(..) => ErrorCode::DigestInvalid,
            NameError::Upload(_) => ErrorCode::BlobUploadUnknown,
        };
        ApiError::detail(code, e.to_string())
    }
}

impl From<storage::Error> for ApiError {
    fn from(e: storage::Error) -> Self {
        use storage::Error as E;
        let text = e.to_string();
        match e {
            E::BlobUnknown(_) => ApiError::detail(ErrorCode::BlobUnknown, text),
            E::ManifestUnknown(_) => ApiError::detail(ErrorCode::ManifestUnknown, text),
            E::NameUnknown(_) => ApiError::detail(ErrorCode::NameUnknown, text),
            E::UploadUnknown(_) => ApiError::detail(ErrorCode::BlobUploadUnknown, text),
            // Spec: "If a chunk is uploaded out of order, the registry MUST respond with a
            // 416 Requested Range Not Satisfiable code"; the Range header tells the client
            // where to resume.
            E::OutOfOrder { size, .. } => ApiError::detail(ErrorCode::BlobUploadInvalid, text)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header(header::RANGE, &range_header(size)),
            E::SizeMismatch { .. } => ApiError::detail(ErrorCode::SizeInvalid, text),
            E::DigestMismatch { .. } => ApiError::detail(ErrorCode::DigestInvalid, text),
            E::Body(_) => ApiError::detail(ErrorCode::BlobUploadInvalid, text),
            E::Io { .. } | E::Corrupt { .. } => ApiError::internal(text),
        }
    }
}

/// The `Range` value for an upload holding `size` bytes: `0-<last byte>`, and `0-0` when
/// empty (what distribution sends and Docker clients parse).
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}
