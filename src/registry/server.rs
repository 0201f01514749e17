//! The connection loop of `regkit serve`: accepts TCP connections, does the TLS handshake
//! when configured, serves HTTP/1.1 and HTTP/2 (hyper-util's auto connection) with any axum
//! [`Router`], and shuts down gracefully: stop accepting, let in-flight requests finish for at
//! most `http.draintimeout`, return.
//!
//! Around the router it adds what every response needs regardless of the handler: the
//! `http.headers` of the configuration and one structured access-log event per request
//! (target `regkit::access`: method, path, status, bytes, duration, user, remote address;
//! status 0 for a request dropped before the router answered it, such as a reset HTTP/2
//! stream).
//! The user comes from the [`AuthenticatedUser`] response extension a handler sets; request
//! headers are never logged, so neither are credentials. Routing, storage and auth decisions
//! belong to the router.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use thiserror::Error;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::auth::AuthenticatedUser;
use super::config::{self, ServeConfig};
use super::tls;

/// Largest HTTP/1.1 read buffer per connection (request heads must fit in it).
const HTTP1_READ_BUFFER: usize = 64 * 1024;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors starting the server.
#[derive(Debug, Error)]
pub enum Error {
    /// The configured address is unusable.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// The certificate, key or client CAs cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::Error),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Binds the configured address.
pub async fn bind(cfg: &ServeConfig) -> Result<TcpListener, Error> {
    let addr = cfg.bind_addr()?;
    TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })
}

/// The base URL clients use for a server listening on `local`: `https://127.0.0.1:5000`.
pub fn base_url(cfg: &ServeConfig, local: SocketAddr) -> String {
    format!("{}://{local}", if cfg.tls.is_some() { "https" } else { "http" })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// Makes the C allocator hand every allocation of 128 KiB or more (upload blocks, pull
/// chunks) straight to and from the kernel, for a server process to call once at start-up.
///
/// glibc starts with that threshold but raises it the first time such a block is freed;
/// from then on large blocks come from its per-thread arenas, and each arena keeps what was
/// freed in it. With the blocking pool's threads each touching an arena, a server stayed at
/// about 50 MiB resident after a few pushes instead of going back to about 16 MiB. A block
/// is allocated once per upload or pull, so mapping it costs nothing measurable.
pub fn return_large_buffers_to_the_kernel() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread
    // of the runtime exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Serves `app` on `listener` with the TLS, HTTP/2, header and logging settings of `cfg`
/// until `shutdown` resolves, then drains. Returns when every connection is closed or the
/// drain timeout has passed. TLS set-up errors are returned before anything is accepted.
/// The same as `Server::new(cfg, app)?.serve(listener, shutdown)`.
pub async fn run(
    cfg: &ServeConfig,
    app: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Server::new(cfg, app)?.serve(listener, shutdown).await
}

/// A server ready to accept: the certificate and client CAs are loaded, so set-up errors
/// surface before the address is bound or announced.
pub struct Server {
    cfg: ServeConfig,
    app: Router,
    tls: Option<(tokio_rustls::TlsAcceptor, Arc<tls::CertReloader>, Duration)>,
}

impl Server {
    /// Prepares `app` with the settings of `cfg` (loads TLS material when configured).
    pub fn new(cfg: &ServeConfig, app: Router) -> Result<Self, Error> {
        let tls = match &cfg.tls {
            Some(settings) => {
                let (server_config, reloader) = tls::server_config(settings, cfg.http2)?;
                // aws-lc seeds its random generator on first use, which costs tens of
                // milliseconds of CPU: pay it now rather than in the first handshake.
                let _ = server_config.crypto_provider().secure_random.fill(&mut [0u8; 32]);
                let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
                Some((acceptor, reloader, settings.reload_interval))
            }
            None => None,
        };
        Ok(Server { cfg: cfg.clone(), app, tls })
    }

    /// Accepts on `listener` until `shutdown` resolves, then drains (see [`run`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let Server { cfg, app, tls } = self;
        let cfg = &cfg;
        let (acceptor, watcher) = match tls {
            Some((acceptor, reloader, interval)) => {
                (Some(acceptor), tokio::spawn(tls::watch(reloader, interval)))
            }
            // Without a handler SIGHUP would end the process; operators send it out of habit.
            None => (None, tokio::spawn(hangup_without_tls())),
        };
        serve_loop(cfg, app, listener, shutdown, acceptor).await;
        watcher.abort();
        Ok(())
    }
}

/// Logs SIGHUP when there is no certificate to reload.
async fn hangup_without_tls() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: no TLS certificate to reload");
    }
}

async fn serve_loop(
    cfg: &ServeConfig,
    app: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    let app = wrap(app, cfg);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper grows each connection's read buffer up to 400 KiB by default; received body
    // frames are copied out at once (see storage's appender), so 64 KiB loses no speed and
    // saves most of a connection's memory under many concurrent pushes.
    builder.http1().timer(TokioTimer::new()).max_buf_size(HTTP1_READ_BUFFER);
    builder.http2().timer(TokioTimer::new());
    if acceptor.is_none() || !cfg.http2 {
        builder = builder.http1_only();
    }
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set only holds live ones.
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let service = app.clone().map_request(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let result = match acceptor {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                // Info, not debug: "unknown CA" alerts from clients that do
                                // not trust the certificate show up here first.
                                tracing::info!(remote = %peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(remote = %peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(remote = %peer, "connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        open_connections = open,
        draintimeout = %config::format_duration(cfg.draintimeout),
        "shutting down: no new connections, finishing requests in flight"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(cfg.draintimeout) => {
            tracing::warn!("drain timeout reached, closing the remaining connections");
            connections.abort_all();
        }
    }
}

/// What the outer layer needs from the configuration.
#[derive(Debug)]
struct Outer {
    headers: Vec<(HeaderName, Vec<HeaderValue>)>,
    access_log: bool,
}

/// Adds the configured response headers and the access log around `app`.
pub fn wrap(app: Router, cfg: &ServeConfig) -> Router {
    let outer = Arc::new(Outer { headers: cfg.headers.clone(), access_log: cfg.log.access_log });
    app.layer(middleware::from_fn_with_state(outer, observe))
}

async fn observe(State(outer): State<Arc<Outer>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let remote = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    // hyper drops this future when an HTTP/2 stream is reset before the router answers (the
    // client cancelled, or the body broke the protocol, e.g. shorter than its content-length):
    // such a request is still logged, with status 0 and complete=false.
    let mut unanswered = Unanswered(outer.access_log.then_some(AccessRecord {
        start,
        method,
        path,
        remote,
        status: 0,
        user: None,
        bodiless: false,
    }));
    let mut resp = next.run(req).await;
    for (name, values) in &outer.headers {
        if !resp.headers().contains_key(name) {
            for v in values {
                resp.headers_mut().append(name.clone(), v.clone());
            }
        }
    }
    let Some(mut record) = unanswered.0.take() else {
        return resp;
    };
    record.status = resp.status().as_u16();
    record.user = resp.extensions().get::<AuthenticatedUser>().and_then(|u| u.0.clone());
    // hyper never sends the body of a HEAD response; dropping it unread is completion.
    record.bodiless = record.method == Method::HEAD;
    let (parts, body) = resp.into_parts();
    let body = Body::new(LoggedBody { inner: body, bytes: 0, record: Some(record) });
    Response::from_parts(parts, body)
}

/// The record of a request the router has not answered yet; logged if dropped armed.
struct Unanswered(Option<AccessRecord>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(record) = self.0.take() {
            record.emit(0, false);
        }
    }
}

/// The facts of one request, logged once its response body is finished or dropped.
#[derive(Debug)]
struct AccessRecord {
    start: Instant,
    method: Method,
    path: String,
    remote: Option<SocketAddr>,
    /// 0 while no response exists.
    status: u16,
    user: Option<String>,
    /// The response has no body to send (HEAD).
    bodiless: bool,
}

impl AccessRecord {
    fn emit(self, bytes: u64, complete: bool) {
        let remote = self.remote.map(|r| r.to_string()).unwrap_or_default();
        tracing::info!(
            target: "regkit::access",
            method = %self.method,
            path = %self.path,
            status = self.status,
            bytes,
            duration_ms = self.start.elapsed().as_secs_f64() * 1000.0,
            user = self.user.as_deref().unwrap_or("-"),
            remote = %remote,
            complete,
            "request"
        );
    }
}

/// A response body that counts what is sent and logs the request when it ends.
struct LoggedBody {
    inner: Body,
    bytes: u64,
    record: Option<AccessRecord>,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl LoggedBody {
    fn finish(&mut self, complete: bool) {
        if let Some(record) = self.record.take() {
            record.emit(self.bytes, complete);
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // An empty body (204, ...) or the body of a HEAD response may be dropped without
        // being polled: that is complete. Anything else dropped early was cut off.
        let bodiless = self.record.as_ref().is_some_and(|r| r.bodiless);
        let complete = bodiless || self.inner.is_end_stream();
        self.finish(complete);
    }
}
