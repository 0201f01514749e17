//! The TLS step: a rustls handshake whose verifier only records the chain the server presents
//! (and checks the handshake signature), so the doctor can then judge that chain the way Go
//! does ([`super::chain`]) against the trust the client would have: `--ca`, the certs.d stores
//! for this exact `host:port` ([`super::stores`]) and the system roots. It also recognises a
//! plain HTTP answer to the ClientHello, which Go reports as "server gave HTTP response to HTTPS
//! client".

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName};

use super::http::{self, First};
use super::stores::{self, Anchor, ClientStore, SystemRoots};
use super::target::Target;
use super::transport::{Dialer, client_message};
use super::{CheckStatus, Finding, Options, Report, chain, verdict};
use crate::pki::ChainRecorder;

/// Everything a client could trust for this registry.
#[derive(Debug, Clone)]
pub struct TrustContext {
    /// `--ca`, when given: the CA the client is meant to use.
    pub given: Option<(String, Vec<Anchor>)>,
    /// The system bundle.
    pub system: SystemRoots,
    /// Docker's, containerd's and Podman's certs.d entries for this registry.
    pub stores: Vec<ClientStore>,
}

impl TrustContext {
    /// Reads the stores under `opts.root`; `given` is the parsed `--ca` file.
    pub fn load(opts: &Options, given: Option<Vec<Anchor>>) -> Self {
        let given = given.zip(opts.ca.as_ref()).map(|(a, p)| (p.display().to_string(), a));
        TrustContext {
            given,
            system: stores::system_roots(&opts.root),
            stores: stores::client_stores(&opts.root, &opts.target),
        }
    }

    /// The pool that decides the verdict: system roots plus `--ca`, or, without `--ca`, plus
    /// every CA found in any client's certs.d entry for this registry.
    pub fn pool(&self) -> Vec<Anchor> {
        let mut pool = self.system.anchors.clone();
        match &self.given {
            Some((_, anchors)) => pool.extend(anchors.iter().cloned()),
            None => pool.extend(self.stores.iter().flat_map(|s| s.anchors.iter().cloned())),
        }
        pool
    }
}

/// How the handshake went wrong.
#[derive(Debug)]
pub enum HandshakeError {
    /// The server answered the ClientHello with an HTTP response (a plain HTTP port).
    PlainHttp,
    /// TLS failed; the text is rustls's.
    Tls(rustls::Error),
    /// The connection failed or timed out.
    Io(io::Error),
}

/// A TLS stream to the registry and the chain its server presented.
pub type TlsStream = StreamOwned<ClientConnection, Recording>;

/// Performs the handshake on `tcp`, returning the stream and the presented chain.
pub fn handshake(
    tcp: TcpStream,
    target: &Target,
) -> Result<(TlsStream, Vec<CertificateDer<'static>>), HandshakeError> {
    let recorder = Arc::new(ChainRecorder::with_default_provider());
    let config = client_config(recorder.clone());
    let name = server_name(target);
    let conn = ClientConnection::new(config, name).map_err(HandshakeError::Tls)?;
    let mut stream = StreamOwned::new(conn, Recording { inner: tcp, first: Vec::new() });
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            if stream.sock.first.starts_with(b"HTTP/") {
                return Err(HandshakeError::PlainHttp);
            }
            let tls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
            return Err(match tls_error {
                Some(t) => HandshakeError::Tls(t.clone()),
                None => HandshakeError::Io(e),
            });
        }
    }
    let chain = recorder.seen();
    Ok((stream, chain))
}

/// A stream for a later request: connect and handshake (the chain was judged already).
pub fn connect(dialer: &Dialer) -> io::Result<TlsStream> {
    let tcp = dialer.tcp()?;
    handshake(tcp, &dialer.target).map(|(s, _)| s).map_err(|e| match e {
        HandshakeError::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    })
}

/// Runs the TLS checks and, when a connection exists, the first `GET /v2/` over it.
pub fn check(
    opts: &Options,
    ctx: &TrustContext,
    tcp: TcpStream,
    report: &mut Report,
) -> Option<First> {
    let target = &opts.target;
    let (mut stream, presented) = match handshake(tcp, target) {
        Ok(ok) => ok,
        Err(e) => {
            report.push(handshake_failure(target, e));
            return None;
        }
    };
    let mut hs = Finding::new(
        "tls.handshake",
        CheckStatus::Ok,
        format!(
            "{} with {}; the server presented {} certificate(s)",
            describe_version(&stream.conn),
            stream
                .conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            presented.len()
        ),
    );
    for (i, der) in presented.iter().enumerate() {
        hs = hs.detail(format!("#{i}: {}", chain::describe(der)));
    }
    report.push(hs);
    let verified = verdict::judge(opts, ctx, &presented, report);
    let dialer = Dialer::new(opts, true);
    match http::exchange(&mut stream, target, "/v2/", None) {
        Ok(response) => Some(First { response, verified, dialer }),
        Err(e) => {
            report.push(http::exchange_failure(target, e));
            None
        }
    }
}

fn handshake_failure(target: &Target, e: HandshakeError) -> Finding {
    let authority = target.authority();
    match e {
        HandshakeError::PlainHttp => {
            let http_url = target.with_scheme(super::Scheme::Http);
            let summary = "the server answered in plain HTTP, not TLS";
            let go = "http: server gave HTTP response to HTTPS client";
            let mut f = Finding::new("tls.handshake", CheckStatus::Fail, summary)
                .client(client_message(target, go))
                .cause(
                    "the registry listens without TLS on this port (no certificate configured, \
                     e.g. REGISTRY_HTTP_TLS_CERTIFICATE unset), while clients use HTTPS unless \
                     told otherwise",
                )
                .fix(format!(
                    "serve TLS: `regkit certs ca`, `regkit certs site --san {}`, start the \
                     registry with the site certificate and key, then `regkit trust install --ca \
                     pki/ca.crt --registry {authority}`; to keep plain HTTP instead, list \
                     \"{authority}\" in insecure-registries in /etc/docker/daemon.json and check \
                     with `regkit doctor {http_url}`",
                    target.host
                ));
            if target.docker_insecure_by_default() {
                f = f.detail(
                    "note: Docker falls back to plain HTTP for 127.0.0.0/8 and localhost, so \
                     `docker` on this machine works; other machines, containerd and Podman do not",
                );
            }
            f
        }
        HandshakeError::Tls(rustls::Error::AlertReceived(alert)) => {
            let name = format!("{alert:?}");
            let go = format!("remote error: tls: {}", go_alert_name(&name));
            let f = Finding::new(
                "tls.handshake",
                CheckStatus::Fail,
                "the server aborted the TLS handshake",
            )
            .client(client_message(target, &go));
            use rustls::AlertDescription::{BadCertificate, CertificateRequired};
            if matches!(alert, BadCertificate | CertificateRequired) {
                f.cause("the registry requires a client certificate (mutual TLS)").fix(format!(
                    "`regkit certs client --name NAME` and put client.cert and client.key into \
                     /etc/docker/certs.d/{authority}/"
                ))
            } else {
                f.cause(format!("the server sent the alert {name}")).fix(
                    "check the registry's TLS configuration (protocol versions, cipher suites)",
                )
            }
        }
        HandshakeError::Tls(other) => Finding::new(
            "tls.handshake",
            CheckStatus::Fail,
            "the TLS handshake failed",
        )
        .client(client_message(target, &format!("tls: {other}")))
        .cause(format!("the TLS handshake failed: {other}"))
        .fix("check that this port serves TLS with a certificate and key that belong together"),
        HandshakeError::Io(e) => {
            // Go's wording for the same socket outcomes during its handshake.
            let go = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    "net/http: TLS handshake timeout".to_string()
                }
                io::ErrorKind::UnexpectedEof => "EOF".to_string(),
                io::ErrorKind::ConnectionReset => "read: connection reset by peer".to_string(),
                _ => e.to_string(),
            };
            let summary = format!("the connection failed during the TLS handshake: {e}");
            Finding::new("tls.handshake", CheckStatus::Fail, summary)
                .client(client_message(target, &go))
                .cause("the server accepted the connection but did not complete a TLS handshake")
                .fix(format!("check that {authority} is the registry's TLS port"))
        }
    }
}

/// Go's alert names are lower case with spaces (`bad certificate`).
fn go_alert_name(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn describe_version(conn: &ClientConnection) -> String {
    match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".into(),
        Some(v) => format!("{v:?}"),
        None => "TLS".into(),
    }
}

fn server_name(target: &Target) -> ServerName<'static> {
    match target.ip {
        Some(ip) => ServerName::IpAddress(ip.into()),
        // The host was validated as a DNS name when the target was parsed; fall back to the IP
        // form of "invalid" rather than panic if rustls disagrees.
        None => ServerName::try_from(target.host.clone())
            .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into())),
    }
}

fn client_config(verifier: Arc<ChainRecorder>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| ClientConfig::builder());
    let mut config =
        builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TCP stream that keeps the first bytes the server sent, to recognise an HTTP answer.
#[derive(Debug)]
pub struct Recording {
    inner: TcpStream,
    first: Vec<u8>,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = 16usize.saturating_sub(self.first.len()).min(n);
        self.first.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// True when `tcp` completes a TLS handshake (used to explain an odd answer on an http:// URL).
pub fn speaks_tls(tcp: TcpStream, target: &Target) -> bool {
    handshake(tcp, target).is_ok()
}
