//! `GET /v2/<name>/tags/list` (spec end-8a/8b): the repository's tags in lexical order,
//! `n` and `last` for pagination and `Link: <...>; rel="next"` when more remain; 404
//! NAME_UNKNOWN for a repository that does not exist.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::names::RepoName;
use super::{hv, page_size, query, query_param};
use crate::registry::AppState;

/// `GET /v2/<name>/tags/list[?n=&last=]`.
pub async fn list(state: &AppState, parts: &Parts, repo: &RepoName) -> Result<Response, ApiError> {
    let q = query(parts);
    let n = page_size(&q)?;
    let last = query_param(&q, "last");
    let all = state.storage.tags(repo).await?;
    let after: Vec<&str> =
        all.iter().map(|t| t.as_str()).filter(|t| last.is_none_or(|l| *t > l)).collect();
    let take = n.unwrap_or(after.len()).min(after.len());
    let page = &after[..take];
    let mut b =
        Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
    if let (true, Some(l)) = (take < after.len(), page.last()) {
        let link = format!("</v2/{repo}/tags/list?last={l}&n={take}>; rel=\"next\"");
        b = b.header(header::LINK, hv(link));
    }
    let body = json!({ "name": repo.as_str(), "tags": page });
    b.body(Body::from(body.to_string())).map_err(|e| ApiError::internal(e.to_string()))
}
