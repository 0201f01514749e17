//! The registry server as a library: [`router`] builds the axum `Router` for the OCI
//! distribution API over an [`AppState`]; serving it (listener, TLS, config, shutdown)
//! belongs to the caller.
//!
//! Layers, with dependencies running one way only:
//! - [`api`]: HTTP. Parses paths and headers into typed names, calls `auth` and `storage`,
//!   maps errors to the spec's error table. Nothing below knows about HTTP.
//! - [`auth`]: the [`auth::Authenticator`] seam consulted for every `/v2` request.
//! - [`storage`]: the [`storage::Storage`] trait and its filesystem backend
//!   (distribution's on-disk layout).
//!
//! Around the router, used by `regkit serve`: [`config`] reads distribution's `config.yml`
//! (and `REGISTRY_*` overrides) into a typed `ServeConfig`, [`tls`] builds the rustls
//! configuration with certificate reload, and [`server`] runs the accept loop, the access log
//! and graceful shutdown for any `Router`. [`serve`] joins them.
//!
//! The parsed name types in [`api::names`] (repository names, tags, digests, upload ids)
//! are plain values with no HTTP in them; they are the vocabulary of every layer, and the
//! only part of `api` that `storage` uses.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

pub mod api;
pub mod auth;
pub mod config;
pub mod serve;
pub mod server;
pub mod storage;
pub mod tls;

use api::error::{ApiError, ErrorCode, InternalError};
use auth::{AuthOutcome, AuthenticatedUser, Authenticator};
use storage::{Storage, StorageOptions};

/// Registry behaviour that is not storage (distribution config keys in brackets).
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Allow `DELETE` of blobs and manifests (`storage.delete.enabled`, default false).
    pub delete_enabled: bool,
    /// Largest manifest accepted, in bytes; larger ones get 413 (default 4 MiB, the spec's
    /// minimum and distribution's limit).
    pub manifest_max_bytes: usize,
    /// Most repositories one `_catalog` page returns (`catalog.maxentries`, default 1000).
    pub catalog_max_entries: usize,
    /// Advertised as `OCI-Chunk-Min-Length` on upload start, when set (default unset:
    /// chunks of any size are accepted).
    pub chunk_min_length: Option<u64>,
    /// Scheme and host (`https://reg.example.com:5000`) that make `Location` headers
    /// absolute; `None` (the default) sends paths (`http.host`, `http.relativeurls`).
    pub location_base: Option<String>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            delete_enabled: false,
            manifest_max_bytes: 4 * 1024 * 1024,
            catalog_max_entries: 1000,
            chunk_min_length: None,
            location_base: None,
        }
    }
}

/// Everything a request handler needs; cheap to clone (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub storage: Arc<dyn Storage>,
    /// Registry options.
    pub options: Arc<RegistryOptions>,
    /// Who may use the registry.
    pub auth: Arc<dyn Authenticator>,
    /// Manifest summaries by digest (for `GET` content types and referrers).
    pub summaries: Arc<api::referrers::Summaries>,
}

impl AppState {
    /// A state over any backend and authenticator.
    pub fn new(
        storage: Arc<dyn Storage>,
        options: RegistryOptions,
        auth: Arc<dyn Authenticator>,
    ) -> Self {
        AppState { storage, options: Arc::new(options), auth, summaries: Arc::default() }
    }

    /// A state over the filesystem backend with no authentication.
    pub fn filesystem(storage: StorageOptions, options: RegistryOptions) -> Self {
        Self::new(Arc::new(storage::fs::FsStorage::new(storage)), options, Arc::new(auth::Open))
    }
}

/// The registry's routes: `GET /` (200, for probes), `/v2/` and `/v2/<...>`, with the
/// authenticator consulted on every `/v2` request and
/// `Docker-Distribution-API-Version: registry/2.0` on every response.
pub fn router(state: AppState) -> Router {
    let v2 = Router::new()
        .route("/v2", any(api::dispatch::base))
        .route("/v2/", any(api::dispatch::base))
        .route("/v2/{*rest}", any(api::dispatch::dispatch))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/", get(|| async { StatusCode::OK }))
        .merge(v2)
        .layer(middleware::map_response(stamp))
        .with_state(state)
}

/// Runs the authenticator; 401 with a Basic challenge, or records the user on the request
/// and the response.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let outcome = state.auth.authenticate(req.headers()).await;
    match outcome {
        AuthOutcome::Allowed { user } => {
            let user = AuthenticatedUser(user);
            req.extensions_mut().insert(user.clone());
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(user);
            resp
        }
        AuthOutcome::Challenge => {
            let realm = state.auth.realm().replace(['"', '\\'], "");
            ApiError::new(ErrorCode::Unauthorized)
                .with_header(header::WWW_AUTHENTICATE, &format!("Basic realm=\"{realm}\""))
                .into_response()
        }
    }
}

/// Adds the API version header to every response and logs internal errors once.
async fn stamp(mut resp: Response) -> Response {
    if let Some(InternalError(cause)) = resp.extensions().get::<InternalError>() {
        tracing::error!(%cause, "registry request failed");
    }
    resp.headers_mut().insert(api::API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}
