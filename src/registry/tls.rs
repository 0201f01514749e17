//! TLS for `regkit serve`: a rustls server configuration (TLS 1.2 and 1.3 only, aws-lc-rs,
//! ALPN `h2` and `http/1.1`) whose certificate and key are reloaded from disk while running.
//!
//! [`CertReloader`] is the certificate resolver: every handshake takes the current
//! certificate, and [`CertReloader::reload_if_changed`] swaps in a new one when the files'
//! identity, size or modification time change. A bad new pair (unreadable, unparsable, or a
//! key that does not match the certificate) keeps the old one and reports an error, so a
//! rotation done in two steps (certificate, then key) is picked up once both are in place.
//! Open connections are never touched. [`watch`] drives the reloading from a timer and SIGHUP.
//! Client-certificate verification comes from `http.tls.clientcas`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

use super::config::{ClientAuth, TlsSettings, TlsVersion};

/// Errors building the TLS configuration or loading certificates.
#[derive(Debug, Error)]
pub enum Error {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{}: {message}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The private key does not belong to the certificate, or rustls refused it.
    #[error("{} with {}: {message}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The client CA bundle cannot be used.
    #[error("http.tls.clientcas: {0}")]
    ClientCas(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider regkit uses everywhere: aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the server configuration for `settings`. `http2` adds `h2` to ALPN.
pub fn server_config(
    settings: &TlsSettings,
    http2: bool,
) -> Result<(Arc<ServerConfig>, Arc<CertReloader>), Error> {
    let provider = provider();
    let reloader =
        Arc::new(CertReloader::new(&settings.certificate, &settings.key, provider.clone())?);
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    let builder = if settings.client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for path in &settings.client_cas {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| {
                    Error::ClientCas(format!(
                        "{}: not a usable CA certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = match settings.client_auth {
            ClientAuth::Require => verifier,
            ClientAuth::IfGiven => verifier.allow_unauthenticated(),
        };
        builder.with_client_cert_verifier(
            verifier.build().map_err(|e| Error::ClientCas(e.to_string()))?,
        )
    };
    let mut config = builder.with_cert_resolver(reloader.clone());
    config.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok((Arc::new(config), reloader))
}

/// Reads every certificate in a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = |message: String| Error::Pem { path: path.to_path_buf(), message };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Loads a certificate chain and its key, checking that they belong together.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let chain = read_certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Pem {
        path: key.to_path_buf(),
        message: format!("no usable private key: {e}"),
    })?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| Error::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message: e.to_string(),
    })
}

/// The serving certificate, swapped in place when its files change.
#[derive(Debug)]
pub struct CertReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// Stamps of the files as last looked at (successfully loaded or not).
    seen: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

impl CertReloader {
    /// Loads the pair now; fails if it is not usable.
    pub fn new(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, Error> {
        let seen = (stamp(cert), stamp(key));
        let ck = load_certified_key(cert, key, &provider)?;
        Ok(CertReloader {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(ck)),
            seen: Mutex::new(seen),
        })
    }

    /// The certificate chain being served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // Invariant: writers only assign a new Arc, so a poisoned lock still holds a valid one.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads when either file changed since last looked at. Returns `Ok(true)` when a new
    /// certificate is being served, `Ok(false)` when nothing changed, and the load error (the
    /// old certificate stays) when the new files are not usable.
    pub fn reload_if_changed(&self) -> Result<bool, Error> {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        self.reload().map(|()| true)
    }

    /// Reloads unconditionally (SIGHUP).
    pub fn reload(&self) -> Result<(), Error> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
            (stamp(&self.cert_path), stamp(&self.key_path));
        let ck = load_certified_key(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ck);
        Ok(())
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Keeps `reloader` current until the task is dropped: polls the files every `interval`
/// (never when zero) and reloads unconditionally on SIGHUP. Outcomes are logged.
pub async fn watch(reloader: Arc<CertReloader>, interval: Duration) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP, certificate reload on signal is off: {e}");
            None
        }
    };
    loop {
        let sighup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let forced = tokio::select! {
            _ = sighup => true,
            _ = tick(interval) => false,
        };
        let r = reloader.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            if forced { r.reload().map(|()| true) } else { r.reload_if_changed() }
        })
        .await;
        match outcome {
            Ok(Ok(true)) => tracing::info!(
                certificate = %reloader.cert_path.display(),
                reason = if forced { "SIGHUP" } else { "files changed" },
                "TLS certificate reloaded"
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::error!("TLS certificate not reloaded, still serving the previous one: {e}")
            }
            Err(e) => tracing::error!("TLS certificate reload task failed: {e}"),
        }
    }
}

async fn tick(interval: Duration) {
    if interval.is_zero() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(interval).await;
}
