//! Joins the layers for `regkit serve`: builds the [`AppState`] a [`ServeConfig`] describes
//! (filesystem storage, registry options, htpasswd or open access), the router over it, and
//! the background upload purge, then hands the router to [`server`](super::server).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use tokio::net::TcpListener;

use super::auth::htpasswd::{self, HtpasswdAuth};
use super::auth::{AuthFuture, AuthOutcome, Authenticator, Open};
use super::config::{ServeConfig, UploadPurging, format_duration};
use super::storage::{Storage, StorageOptions, fs::FsStorage};
use super::{AppState, RegistryOptions, router, server};

/// Errors building or running the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The htpasswd file could not be opened.
    #[error(transparent)]
    Auth(#[from] htpasswd::Error),
    /// The server failed (TLS set-up, accept loop).
    #[error(transparent)]
    Server(#[from] server::Error),
}

/// [`HtpasswdAuth`] as the router's [`Authenticator`]: bcrypt runs on the blocking pool
/// behind the verification cache.
#[derive(Debug, Clone)]
pub struct HtpasswdAuthenticator(pub Arc<HtpasswdAuth>);

impl Authenticator for HtpasswdAuthenticator {
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(async move {
            match self.0.check_async(headers).await {
                Ok(user) => AuthOutcome::Allowed { user: Some(user) },
                Err(_) => AuthOutcome::Challenge,
            }
        })
    }

    fn realm(&self) -> &str {
        self.0.realm()
    }
}

/// The application state `cfg` describes.
pub fn state(cfg: &ServeConfig) -> Result<AppState, Error> {
    let storage =
        FsStorage::new(StorageOptions { root: cfg.storage.root.clone(), fsync: cfg.storage.fsync });
    let options = RegistryOptions {
        delete_enabled: cfg.storage.delete_enabled,
        manifest_max_bytes: usize::try_from(cfg.manifest_max_bytes).unwrap_or(usize::MAX),
        catalog_max_entries: usize::try_from(cfg.catalog_max_entries).unwrap_or(usize::MAX),
        chunk_min_length: cfg.chunk_min_length,
        location_base: cfg.location_base().map(str::to_string),
    };
    let auth: Arc<dyn Authenticator> = match &cfg.auth {
        Some(a) => {
            Arc::new(HtpasswdAuthenticator(Arc::new(HtpasswdAuth::open(&a.realm, &a.path)?)))
        }
        None => Arc::new(Open),
    };
    Ok(AppState::new(Arc::new(storage), options, auth))
}

/// Serves `state` with the settings of `cfg` on `listener` until `shutdown` resolves,
/// purging stale uploads in the background when `storage.maintenance.uploadpurging` is
/// enabled. Build `state` with [`state`] before binding, so a bad htpasswd file fails first.
pub async fn run(
    cfg: &ServeConfig,
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let purge = tokio::spawn(purge_loop(state.storage.clone(), cfg.storage.upload_purging));
    let app: Router = router(state);
    let result = server::Server::new(cfg, app)?.serve(listener, shutdown).await;
    purge.abort();
    Ok(result?)
}

/// Every `interval` (starting now), removes uploads older than `age` (or only reports them in
/// dry-run). Says once at start what it will do, so an operator can see it is off.
async fn purge_loop(storage: Arc<dyn Storage>, p: UploadPurging) {
    if !p.enabled || p.interval.is_zero() {
        tracing::info!("upload purging is disabled: abandoned uploads are kept");
        return;
    }
    tracing::info!(
        age = %format_duration(p.age),
        interval = %format_duration(p.interval),
        dryrun = p.dry_run,
        "upload purging enabled"
    );
    let mut tick = tokio::time::interval(p.interval);
    loop {
        tick.tick().await;
        match storage.purge_uploads(p.age, p.dry_run).await {
            Ok(stale) if !stale.is_empty() => {
                let verb = if p.dry_run { "would purge" } else { "purged" };
                for s in &stale {
                    tracing::info!(repo = %s.repo, upload = %s.id, age_s = s.age.as_secs(), "{verb} stale upload");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "upload purge failed"),
        }
    }
}
