//! `GET /v2/_catalog`: repository names in path-component order (distribution's), with
//! `n` (default 100, capped at the configured maximum; the spec lets a registry return
//! fewer) and `last`, and `Link: <...>; rel="next"` when more remain. Storage pages the
//! listing itself, so a request never walks every repository.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::{hv, page_size, query, query_param};
use crate::registry::AppState;

/// Page size when the client sends no `n` (distribution's default).
pub const DEFAULT_PAGE: usize = 100;

/// `GET /v2/_catalog[?n=&last=]`.
pub async fn list(state: &AppState, parts: &Parts) -> Result<Response, ApiError> {
    let q = query(parts);
    let n = page_size(&q)?.unwrap_or(DEFAULT_PAGE).min(state.options.catalog_max_entries);
    let last = query_param(&q, "last").filter(|l| !l.is_empty());
    // One extra name tells whether a next page exists.
    let mut names = state.storage.repositories(last, n.saturating_add(1)).await?;
    let more = names.len() > n;
    names.truncate(n);
    let mut b =
        Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
    if let (true, Some(l)) = (more, names.last()) {
        b = b.header(header::LINK, hv(format!("</v2/_catalog?last={l}&n={n}>; rel=\"next\"")));
    }
    let list: Vec<&str> = names.iter().map(|r| r.as_str()).collect();
    let body = json!({ "repositories": list });
    b.body(Body::from(body.to_string())).map_err(|e| ApiError::internal(e.to_string()))
}
