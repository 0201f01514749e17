//! Routing of `/v2/...`: repository names contain `/`, so one wildcard route hands the
//! whole path here, where it is parsed from the right into `(RepoName, Endpoint)` and each
//! part is validated by its parser before any handler runs. Unknown paths get 404 and
//! known paths with an unsupported method get 405 UNSUPPORTED.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use super::error::{ApiError, ErrorCode};
use super::names::{Digest, NameError, Reference, RepoName, UploadId};
use super::{blobs, catalog, manifests, referrers, tags, uploads};
use crate::registry::AppState;
use crate::registry::storage::ByteStream;

/// What a `/v2/<name>/...` path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/blobs/<digest>`
    Blob(Digest),
    /// `/blobs/uploads/`
    UploadStart,
    /// `/blobs/uploads/<id>`
    Upload(UploadId),
    /// `/manifests/<reference>`
    Manifest(Reference),
    /// `/tags/list`
    Tags,
    /// `/referrers/<digest>`
    Referrers(Digest),
}

/// A parsed `/v2/` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/<endpoint>`
    Repo(RepoName, Endpoint),
}

/// Parses the part of the path after `/v2/`. `Ok(None)` when it addresses no endpoint.
pub fn parse_route(rest: &str) -> Result<Option<Route>, NameError> {
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name = |k: usize| RepoName::parse(&segs[..n - k].join("/"));
    if n < 3 {
        return Ok(None);
    }
    // The keyword right before the last segment decides; a name may itself contain
    // "blobs" or "tags" as components, which only ever appear further left.
    let endpoint = match (segs[n - 2], segs[n - 1]) {
        ("blobs", "uploads") => (2, Endpoint::UploadStart),
        ("blobs", d) => (2, Endpoint::Blob(Digest::parse(d)?)),
        ("manifests", r) => (2, Endpoint::Manifest(Reference::parse(r)?)),
        ("referrers", d) => (2, Endpoint::Referrers(Digest::parse(d)?)),
        ("tags", "list") => (2, Endpoint::Tags),
        ("uploads", id) if n >= 4 && segs[n - 3] == "blobs" => {
            if id.is_empty() {
                (3, Endpoint::UploadStart)
            } else {
                (3, Endpoint::Upload(UploadId::parse(id)?))
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(Route::Repo(name(endpoint.0)?, endpoint.1)))
}

/// `GET /v2/`: 200 with an empty JSON object (auth already passed in the layer).
pub async fn base() -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

/// Every `/v2/<...>` request other than the base.
pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let rest = parts.uri.path().strip_prefix("/v2/").unwrap_or("");
    let m = &parts.method;
    let route = match parse_route(rest) {
        Ok(Some(r)) => r,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        // No manifest can have a tag outside the grammar, so reading one finds nothing: the
        // spec's conformance suite expects 404 for `GET`/`HEAD` of `.INVALID_MANIFEST_NAME`.
        Err(e @ NameError::Tag(_)) if *m != Method::PUT => {
            return ApiError::detail(ErrorCode::ManifestUnknown, e.to_string()).into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let head = *m == Method::HEAD;
    let result = match route {
        Route::Catalog if *m == Method::GET => catalog::list(&state, &parts).await,
        Route::Catalog => Err(unsupported(m)),
        Route::Repo(repo, ep) => match ep {
            Endpoint::Blob(d) if *m == Method::GET || head => {
                blobs::get_blob(&state, &parts, &repo, &d, head).await
            }
            Endpoint::Blob(d) if *m == Method::DELETE => {
                blobs::delete_blob(&state, &repo, &d).await
            }
            Endpoint::UploadStart if *m == Method::POST => {
                uploads::start_upload(&state, &parts, &repo, stream(body)).await
            }
            Endpoint::Upload(id) if *m == Method::GET => {
                uploads::upload_status(&state, &repo, &id).await
            }
            Endpoint::Upload(id) if *m == Method::PATCH => {
                uploads::patch_upload(&state, &parts, &repo, &id, stream(body)).await
            }
            Endpoint::Upload(id) if *m == Method::PUT => {
                uploads::put_upload(&state, &parts, &repo, &id, stream(body)).await
            }
            Endpoint::Upload(id) if *m == Method::DELETE => {
                uploads::cancel_upload(&state, &repo, &id).await
            }
            Endpoint::Manifest(r) if *m == Method::GET || head => {
                manifests::get_manifest(&state, &repo, &r, head).await
            }
            Endpoint::Manifest(r) if *m == Method::PUT => {
                manifests::put_manifest(&state, &parts, &repo, &r, body).await
            }
            Endpoint::Manifest(r) if *m == Method::DELETE => {
                manifests::delete_manifest(&state, &repo, &r).await
            }
            Endpoint::Tags if *m == Method::GET => tags::list(&state, &parts, &repo).await,
            Endpoint::Referrers(d) if *m == Method::GET => {
                referrers::list(&state, &parts, &repo, &d).await
            }
            _ => Err(unsupported(m)),
        },
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn unsupported(m: &Method) -> ApiError {
    ApiError::detail(ErrorCode::Unsupported, format!("{m} is not supported on this endpoint"))
}

/// The request body as a byte stream.
fn stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_from_the_right() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = |s: &str| parse_route(s).unwrap().unwrap();
        let Route::Repo(name, Endpoint::Blob(_)) = r(&format!("a/blobs/blobs/{d}")) else {
            panic!()
        };
        assert_eq!(name.as_str(), "a/blobs");
        assert!(matches!(r("x/y/blobs/uploads/"), Route::Repo(_, Endpoint::UploadStart)));
        assert!(matches!(r("x/tags/list"), Route::Repo(_, Endpoint::Tags)));
        assert!(matches!(r("x/manifests/latest"), Route::Repo(_, Endpoint::Manifest(_))));
        assert!(parse_route("../etc/manifests/latest").is_err());
        assert!(parse_route("x/blobs/sha256:zz").is_err());
        assert!(parse_route("x/nothing/here").unwrap().is_none());
    }
}
