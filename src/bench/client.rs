//! The benchmark's HTTP client: hyper 1 HTTP/1.1 connections over plain TCP or tokio-rustls,
//! one keep-alive connection per worker (reopened only when the server closes it), and HTTP
//! Basic authentication on every request. It owns the URL, the TLS trust and the credentials;
//! what to send and how to judge answers is left to the workloads.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Error;
use crate::pki::ChainRecorder;

/// The request body type every workload sends.
pub type Body = BoxBody<Bytes, Infallible>;

/// How long a small request (not a blob transfer) may take before the run is aborted.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest answer read whole (manifests, catalog and tags lists, error bodies).
pub const BODY_LIMIT: usize = 4 << 20;

/// Where the bundle of system CAs lives on Debian and its derivatives; used for https when no
/// `--ca` is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How the client decides whether to trust the registry's certificate.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The system CA bundle (`SSL_CERT_FILE`, or Debian's bundle).
    #[default]
    System,
    /// Only the certificates in this PEM file.
    CaFile(std::path::PathBuf),
    /// No verification at all (`--insecure`): handshake signatures are still checked.
    Insecure,
}

/// A registry endpoint: where to connect and how to authenticate. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    port: u16,
    /// `host:port` for the Host header.
    authority: HeaderValue,
    /// Path before `/v2/`, without a trailing slash (usually empty).
    prefix: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    authorization: Option<HeaderValue>,
    connections: AtomicU64,
}

impl Client {
    /// A client for `url` (`http://` or `https://`, optionally with a path prefix before
    /// `/v2/`). `credentials` are sent as HTTP Basic on every request.
    pub fn new(url: &str, trust: &Trust, credentials: Option<(&str, &str)>) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidUrl { url: url.to_string(), reason: reason.into() };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be http:// or https://")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if uri.query().is_some() {
            return Err(bad("a registry URL takes no query"));
        }
        let prefix = uri.path().trim_end_matches('/').trim_end_matches("/v2").to_string();
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.as_str();
        let authority = HeaderValue::from_str(authority).map_err(|_| bad("invalid host"))?;
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|_| bad("the host is not a valid DNS name or IP address"))?;
            Some((TlsConnector::from(Arc::new(tls_config(trust)?)), name))
        } else {
            None
        };
        let authorization = credentials
            .map(|(user, password)| {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let mut value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                    Error::Options { reason: "the user name is not valid in HTTP".into() }
                })?;
                value.set_sensitive(true);
                Ok::<_, Error>(value)
            })
            .transpose()?;
        Ok(Client {
            inner: Arc::new(Inner {
                host,
                port,
                authority,
                prefix,
                tls,
                authorization,
                connections: AtomicU64::new(0),
            }),
        })
    }

    /// True when the client speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.inner.tls.is_some()
    }

    /// True when requests carry credentials.
    pub fn has_credentials(&self) -> bool {
        self.inner.authorization.is_some()
    }

    /// The request path for `rest`, which starts with `/v2/`.
    pub fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.inner.prefix)
    }

    /// How many TCP (or TLS) connections have been opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// A new keep-alive connection handle; it connects on first use.
    pub fn conn(&self) -> Conn {
        Conn { client: self.clone(), sender: None }
    }

    /// Turns a `Location` header into a request target on this server: relative locations
    /// are used as they are, absolute ones must point at the same host and port.
    pub fn location_target(&self, location: &str) -> Result<String, Error> {
        if location.starts_with('/') {
            return Ok(location.to_string());
        }
        let uri: Uri = location.parse().map_err(|_| Error::Protocol {
            what: "upload Location".into(),
            detail: format!("{location:?} is not a URL"),
        })?;
        let same_host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            == Some(&self.inner.host);
        let default_port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
        if !same_host || uri.port_u16().unwrap_or(default_port) != self.inner.port {
            return Err(Error::Protocol {
                what: "upload Location".into(),
                detail: format!("{location:?} points at another server"),
            });
        }
        Ok(uri.path_and_query().map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string()))
    }

    async fn connect(&self) -> Result<SendRequest<Body>, Error> {
        let addr = format!("{}:{}", self.inner.host, self.inner.port);
        let tcp = TcpStream::connect((self.inner.host.as_str(), self.inner.port))
            .await
            .map_err(|source| Error::Connect { addr: addr.clone(), source })?;
        tcp.set_nodelay(true).map_err(|source| Error::Connect { addr: addr.clone(), source })?;
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        match &self.inner.tls {
            None => handshake(tcp, &addr).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| Error::Tls { addr: addr.clone(), source })?;
                handshake(tls, &addr).await
            }
        }
    }
}

/// One keep-alive connection, owned by one worker at a time.
pub struct Conn {
    client: Client,
    sender: Option<SendRequest<Body>>,
}

impl Conn {
    /// Sends one request for `target` (a path with query, already prefixed) and returns the
    /// response head; `what` names the request in errors. Reconnects first when the server
    /// has closed the previous connection.
    pub async fn send(
        &mut self,
        method: Method,
        target: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Body,
        what: &str,
    ) -> Result<Response<Incoming>, Error> {
        let reusable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        let mut sender = match self.sender.take() {
            Some(s) if reusable => s,
            _ => self.client.connect().await?,
        };
        let mut request = Request::builder().method(method).uri(target);
        if let Some(h) = request.headers_mut() {
            h.insert(header::HOST, self.client.inner.authority.clone());
            if let Some(auth) = &self.client.inner.authorization {
                h.insert(header::AUTHORIZATION, auth.clone());
            }
            for (name, value) in headers {
                h.insert(name.clone(), value.clone());
            }
        }
        let request = request.body(body).map_err(|e| Error::Protocol {
            what: what.to_string(),
            detail: format!("cannot build the request for {target:?}: {e}"),
        })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|source| Error::Http { what: what.to_string(), source })?;
        self.sender = Some(sender);
        Ok(response)
    }

    /// Sends a small request and reads the whole answer (bounded by `limit` bytes)
    /// within [`REQUEST_TIMEOUT`] and [`BODY_LIMIT`], requiring one of the `expected` statuses.
    pub async fn exchange(
        &mut self,
        method: Method,
        target: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
        expected: &[StatusCode],
        what: &str,
    ) -> Result<(Response<()>, Bytes), Error> {
        let work = async {
            let response = self.send(method, target, headers, full(body), what).await?;
            let response = expect(response, expected, what).await?;
            let (parts, incoming) = response.into_parts();
            let bytes = read_limited(incoming, BODY_LIMIT, what).await?;
            Ok((Response::from_parts(parts, ()), bytes))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work).await.map_err(|_| Error::Timeout {
            what: what.to_string(),
            seconds: REQUEST_TIMEOUT.as_secs(),
        })?
    }
}

/// A body holding `bytes` (empty bodies included).
pub fn full(bytes: Bytes) -> Body {
    if bytes.is_empty() { Empty::new().boxed() } else { Full::new(bytes).boxed() }
}

/// Passes `response` through when its status is one of `expected`; otherwise reads up to 4 KiB
/// of its body and turns it into [`Error::Status`], which aborts the run.
pub async fn expect(
    response: Response<Incoming>,
    expected: &[StatusCode],
    what: &str,
) -> Result<Response<Incoming>, Error> {
    if expected.contains(&response.status()) {
        return Ok(response);
    }
    let status = response.status();
    let body = match Limited::new(response.into_body(), 4096).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).trim().to_string(),
        Err(_) => "(body unreadable or longer than 4 KiB)".to_string(),
    };
    Err(Error::Status { what: what.to_string(), status: status.as_u16(), body })
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_limited(body: Incoming, limit: usize, what: &str) -> Result<Bytes, Error> {
    Limited::new(body, limit).collect().await.map(|c| c.to_bytes()).map_err(|e| Error::Protocol {
        what: what.to_string(),
        detail: format!("cannot read the answer: {e}"),
    })
}

/// The text of header `name`, if present and valid.
pub fn header_text<B>(response: &Response<B>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn handshake<IO>(io: IO, addr: &str) -> Result<SendRequest<Body>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        http1::Builder::new().max_buf_size(4 << 20).handshake(TokioIo::new(io)).await.map_err(
            |source| Error::Http { what: format!("HTTP handshake with {addr}"), source },
        )?;
    // The connection task ends when the server closes or the sender is dropped; its error,
    // if any, also surfaces on the next `send_request`, which reports it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn tls_config(trust: &Trust) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Options { reason: format!("TLS setup failed: {e}") })?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainRecorder::new(provider)))
            .with_no_client_auth(),
        Trust::CaFile(path) => builder.with_root_certificates(roots(path)?).with_no_client_auth(),
        Trust::System => {
            let path = std::env::var_os("SSL_CERT_FILE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
            builder.with_root_certificates(roots(&path)?).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn roots(path: &Path) -> Result<RootCertStore, Error> {
    let pem =
        std::fs::read(path).map_err(|source| Error::ReadCa { path: path.to_path_buf(), source })?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|e| Error::BadCa { path: path.to_path_buf(), reason: e.to_string() })?;
        store
            .add(cert)
            .map_err(|e| Error::BadCa { path: path.to_path_buf(), reason: e.to_string() })?;
    }
    if store.is_empty() {
        return Err(Error::BadCa {
            path: path.to_path_buf(),
            reason: "no certificate in it".into(),
        });
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Client::new("http://127.0.0.1:5000", &Trust::System, None).unwrap();
        assert!(!c.is_tls());
        assert_eq!(c.path("/v2/"), "/v2/");
        let c = Client::new("http://reg.example:5000/mirror/v2/", &Trust::System, None).unwrap();
        assert_eq!(c.path("/v2/x"), "/mirror/v2/x");
        assert_eq!(
            c.location_target("http://reg.example:5000/v2/x/blobs/uploads/u?_state=s").unwrap(),
            "/v2/x/blobs/uploads/u?_state=s"
        );
        assert_eq!(c.location_target("/v2/x/blobs/uploads/u").unwrap(), "/v2/x/blobs/uploads/u");
        assert!(c.location_target("http://elsewhere:5000/v2/x").is_err());
        for bad in ["ftp://h/", "127.0.0.1:5000", "http://h:5000/?q=1", "not a url"] {
            assert!(Client::new(bad, &Trust::System, None).is_err(), "{bad}");
        }
        let err = Client::new("https://h", &Trust::CaFile("/nonexistent/ca.pem".into()), None);
        assert!(err.err().unwrap().to_string().contains("/nonexistent/ca.pem"));
    }
}
