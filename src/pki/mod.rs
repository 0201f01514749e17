//! Certificates: a private CA, site (server) and client certificates, inspection and
//! verification as a TLS client does it.
//!
//! Layout: [`san`] parses subject alternative names, [`keys`] generates and loads private
//! keys, [`x509`] reads certificates and CSRs and holds the shared issuing helpers, [`ca`]
//! creates and loads a CA, [`leaf`] issues site and client certificates, [`reissue`] signs
//! CSRs and renews, [`p12`] exports PKCS#12 bundles, [`inspect`] describes certificates (from files or
//! a live TLS server) and [`verify`] checks a chain the way a TLS client does. Dependencies
//! run one way: `leaf` uses `ca`, both use `keys`, `san` and `x509`; `verify` and `inspect`
//! only read. Every file is written through [`crate::files`].

pub mod ca;
pub mod constraints;
pub mod inspect;
pub mod keys;
pub mod leaf;
pub mod p12;
pub mod recorder;
pub mod reissue;
pub mod san;
pub mod verify;
pub mod x509;

use std::path::PathBuf;

use thiserror::Error;

pub use ca::{CaFiles, CaOptions, LoadedCa, create_ca, ensure_ca, load_ca};
pub use inspect::{CertInfo, describe, fetch_chain, inspect_file, inspect_url};
pub use keys::KeyType;
pub use leaf::{
    CaPaths, ClientOptions, IssuedFiles, P12Request, SiteOptions, issue_client, issue_site,
};
pub use recorder::ChainRecorder;
pub use reissue::{RenewOptions, SignOptions, renew, sign_csr};
pub use san::SanEntry;
pub use verify::{Problem, ProblemKind, Usage, verify_chain, verify_chain_for, verify_files};

/// Errors from the PKI area. Each variant names the file or value involved.
#[derive(Debug, Error)]
pub enum Error {
    /// File output or input failed. The message names the action, the path and the OS error
    /// (missing, permission denied, a directory...); the error is not chained as a source, so
    /// anyhow's `{:#}` prints the OS error once.
    #[error("{}", file_message(.0))]
    File(crate::files::Error),
    /// A SAN value could not be parsed.
    #[error("malformed SAN {value:?}: {reason}")]
    BadSan {
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An unknown key type was requested.
    #[error(
        "unknown key type {0:?} (expected ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096)"
    )]
    UnknownKeyType(String),
    /// A name constraint value could not be parsed.
    #[error("malformed name constraint {value:?}: {reason}")]
    BadConstraint {
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A file holds no usable PEM certificate.
    #[error("{}: no PEM certificate found", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate could not be parsed.
    #[error("{}: cannot parse certificate: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// A private key could not be read.
    #[error("{}: cannot read private key: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A CSR could not be read or its signature is wrong.
    #[error("{}: cannot use CSR: {reason}", path.display())]
    BadCsr {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The CA certificate is not a CA.
    #[error("{} is not a CA certificate (basicConstraints CA:TRUE missing)", path.display())]
    NotACa {
        /// The CA certificate file.
        path: PathBuf,
    },
    /// The CA certificate may not sign certificates (keyUsage lacks keyCertSign).
    #[error("{}: the CA's keyUsage does not allow signing certificates (keyCertSign)", path.display())]
    CaCannotSign {
        /// The CA certificate file.
        path: PathBuf,
    },
    /// The CA certificate has expired.
    #[error("{} expired on {not_after}: create a new CA with `regkit certs ca --force`", path.display())]
    CaExpired {
        /// The CA certificate file.
        path: PathBuf,
        /// When it expired.
        not_after: String,
    },
    /// A private key does not belong to its certificate.
    #[error("{} does not match the certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A name of a new certificate lies outside the signing CA's name constraints.
    #[error("{name} is outside the CA's name constraints ({ca}): {fix}")]
    OutsideConstraints {
        /// The name (`DNS:x`, `IP:y` or the subject CN).
        name: String,
        /// The CA file and what its constraints permit and exclude.
        ca: String,
        /// What to do instead.
        fix: String,
    },
    /// `renew` was given a CA that did not issue the certificate.
    #[error(
        "{} was issued by {issuer}, not by {} ({ca_subject}): pass its CA with --ca-cert and \
         --ca-key, or add --new-issuer to re-issue it under {}",
        cert.display(), ca.display(), ca.display()
    )]
    OtherIssuer {
        /// The certificate being renewed.
        cert: PathBuf,
        /// Its issuer's name.
        issuer: String,
        /// The CA certificate given.
        ca: PathBuf,
        /// That CA's subject (and a note when only the key differs).
        ca_subject: String,
    },
    /// A leaf certificate needs at least one SAN.
    #[error("at least one --san is required (clients such as Go and Docker ignore the CN)")]
    NoSan,
    /// A bad numeric or textual option.
    #[error("{0}")]
    Invalid(String),
    /// Certificate generation failed inside rcgen.
    #[error("cannot build the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// PKCS#12 export failed.
    #[error("cannot build {}: {reason}", path.display())]
    P12 {
        /// The .p12 file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Fetching a chain from a server failed.
    #[error("cannot fetch the certificate chain from {target}: {reason}")]
    Fetch {
        /// host:port.
        target: String,
        /// What failed.
        reason: String,
    },
}

impl From<crate::files::Error> for Error {
    fn from(e: crate::files::Error) -> Self {
        Error::File(e)
    }
}

fn file_message(e: &crate::files::Error) -> String {
    match e {
        crate::files::Error::Io { source, .. } => format!("{e}: {source}"),
        other => other.to_string(),
    }
}

/// Result alias for the PKI area.
pub type Result<T, E = Error> = std::result::Result<T, E>;
