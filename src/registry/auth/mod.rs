//! Authentication seam of the registry: the [`Authenticator`] trait the router consults
//! for every `/v2` request, and [`Open`], which allows everyone. Credential checking
//! (htpasswd, ...) implements the trait elsewhere; this module knows nothing about
//! passwords. The outcome of a request's check is recorded as an [`AuthenticatedUser`]
//! extension on the response so an access log can print who made it.
//! [`htpasswd`] implements the trait over an htpasswd file.

use std::future::Future;
use std::pin::Pin;

use axum::http::HeaderMap;

pub mod htpasswd;

/// The future an [`Authenticator`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = AuthOutcome> + Send + 'a>>;

/// The result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The request may proceed; `user` is the authenticated name, if any.
    Allowed {
        /// Who the request authenticated as (`None` for anonymous access).
        user: Option<String>,
    },
    /// Credentials are missing or wrong: answer 401 with a challenge.
    Challenge,
}

/// Decides whether a request may use the registry.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks the request's headers (typically `Authorization`). Called for every `/v2`
    /// request: slow work (a bcrypt comparison) belongs off the async worker threads, and
    /// successful verifications should be cached.
    fn authenticate<'a>(&'a self, headers: &'a HeaderMap) -> AuthFuture<'a>;

    /// The realm named in `WWW-Authenticate: Basic realm="..."` challenges.
    fn realm(&self) -> &str;
}

/// No authentication: every request is allowed anonymously.
#[derive(Debug, Clone, Copy, Default)]
pub struct Open;

impl Authenticator for Open {
    fn authenticate<'a>(&'a self, _headers: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(std::future::ready(AuthOutcome::Allowed { user: None }))
    }

    fn realm(&self) -> &str {
        "regkit"
    }
}

/// Who a request authenticated as, attached to the request and to its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub Option<String>);
