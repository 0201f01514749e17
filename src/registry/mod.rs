//! The registry server: configuration, TLS, the connection loop and htpasswd auth.
//!
//! Dependencies run one way: `server` serves any axum `Router` with the settings from
//! `config` and the TLS set-up from `tls`; `auth` checks credentials for the handlers and
//! knows nothing about the server.

pub mod auth;
pub mod config;
pub mod server;
pub mod tls;
