//! Authentication for the registry API. Handlers ask an authenticator whether a request's
//! credentials are good; authenticators never call back into handlers or storage.

pub mod htpasswd;
