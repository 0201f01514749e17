//! The transport step: resolving and connecting over TCP with a timeout, and, for an
//! `http://` address, recognising a TLS server on the other end. What TLS servers answer to a
//! plain `GET /v2/` (measured): Go's (docker-registry 2.8.2) sends `HTTP/1.0 400 Bad Request` and
//! "Client sent an HTTP request to an HTTPS server."; rustls sends the alert record
//! `15 03 03 00 02 02 32` (fatal decode_error), which Go's client reports as
//! `malformed HTTP response "\x15\x03\x03\x00\x02\x022"`; OpenSSL 3.0's `s_server` hangs up
//! (Go: `EOF`). The seed's `"\x15\x03\x01\x00\x02\x02"` is an alert in a TLS 1.0 record whose
//! description byte, 0x0a (unexpected_message), is a newline, so Go's line read stops there.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::http::{self, ExchangeError, First};
use super::target::{Scheme, Target};
use super::{CheckStatus, Finding, Options, Report, insecure, tls};

/// A byte stream to the registry, plain or TLS.
pub trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Opens further connections to a registry the same way as the first one.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// Where to connect.
    pub target: Target,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// Whether to run TLS over the connection.
    pub tls: bool,
}

impl Dialer {
    /// A dialer for `opts.target`.
    pub fn new(opts: &Options, tls: bool) -> Self {
        Dialer { target: opts.target.clone(), timeout: opts.timeout, tls }
    }

    /// A TCP connection with read and write timeouts set.
    pub fn tcp(&self) -> io::Result<TcpStream> {
        let addrs = resolve(&self.target)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout))?;
                    s.set_write_timeout(Some(self.timeout))?;
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A connection ready for an HTTP request.
    pub fn open(&self) -> io::Result<Box<dyn Stream>> {
        if self.tls { Ok(Box::new(tls::connect(self)?)) } else { Ok(Box::new(self.tcp()?)) }
    }
}

fn resolve(target: &Target) -> io::Result<Vec<SocketAddr>> {
    Ok((target.host.as_str(), target.port).to_socket_addrs()?.collect())
}

/// The TCP step. Pushes a finding and returns the connection when it succeeds.
pub fn connect(target: &Target, timeout: Duration, report: &mut Report) -> Option<TcpStream> {
    let dialer = Dialer { target: target.clone(), timeout, tls: false };
    let authority = target.authority();
    let addrs = match resolve(target) {
        Ok(a) if !a.is_empty() => a,
        _ => {
            let host = &target.host;
            let (scheme, port) = (target.scheme.as_str(), target.port);
            report.push(
                Finding::new("tcp", CheckStatus::Fail, format!("cannot resolve {host}"))
                    .client(client_message(
                        target,
                        &format!("dial tcp: lookup {host}: no such host"),
                    ))
                    .cause("the name is not in DNS or /etc/hosts on this machine")
                    .fix(format!(
                        "add the registry to DNS or /etc/hosts, or use its IP address: `regkit \
                         doctor {scheme}://IP:{port}`"
                    )),
            );
            return None;
        }
    };
    let e = match dialer.tcp() {
        Ok(s) => {
            let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            report.push(Finding::new("tcp", CheckStatus::Ok, format!("connected to {peer}")));
            return Some(s);
        }
        Err(e) => e,
    };
    let addr = addrs[0];
    let (go, cause) = match e.kind() {
        io::ErrorKind::ConnectionRefused => (
            format!("dial tcp {addr}: connect: connection refused"),
            "nothing listens on this port (the registry is not running, or listens on another \
             address or port)",
        ),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => (
            format!("dial tcp {addr}: i/o timeout"),
            "no answer within the timeout: a firewall drops the packets, or the host is down",
        ),
        _ => (format!("dial tcp {addr}: {e}"), "the connection failed"),
    };
    report.push(
        Finding::new("tcp", CheckStatus::Fail, format!("cannot connect to {authority}: {e}"))
            .client(client_message(target, &go))
            .cause(cause)
            .fix(format!(
                "start the registry listening on {authority} (not only 127.0.0.1 when clients are \
                 remote) and open the port in the firewall"
            )),
    );
    None
}

/// The HTTP step for an `http://` address: the first `GET /v2/`, recognising a TLS server.
pub fn check_plain(opts: &Options, mut tcp: TcpStream, report: &mut Report) -> Option<First> {
    let target = &opts.target;
    let authority = target.authority();
    let https = target.with_scheme(Scheme::Https);
    let tls_fix = format!(
        "use https: `regkit doctor {https}`, and remove \"{authority}\" from insecure-registries \
         in /etc/docker/daemon.json if it is there (Docker then uses https)"
    );
    let tls_cause = "this port serves TLS (HTTPS), but the client speaks plain HTTP to it \
                     because the registry is configured as insecure / http";
    let response = match http::exchange(&mut tcp, target, "/v2/", None) {
        Ok(response) => response,
        Err(ExchangeError::Malformed { message, raw }) => {
            let is_tls = matches!(raw.first(), Some(0x14..=0x17)) && raw.get(1) == Some(&0x03);
            let (summary, cause, fix) = if is_tls {
                let summary = "the server answered with a TLS alert: it speaks TLS, not plain HTTP";
                (summary.to_string(), tls_cause.to_string(), tls_fix)
            } else {
                (
                    "the server's answer is not HTTP".to_string(),
                    format!("something other than a registry listens on {authority}"),
                    format!("check the registry's address and port ({authority})"),
                )
            };
            let go = format!("net/http: HTTP/1.x transport connection broken: {message}");
            let first_bytes = go_quote(&raw[..raw.len().min(16)]);
            let mut f = Finding::new("http.scheme", CheckStatus::Fail, summary)
                .client(client_message(target, &go))
                .cause(cause)
                .fix(fix)
                .detail(format!("first bytes received: {first_bytes}"));
            if let Some(alert) = describe_alert(&raw) {
                f = f.detail(alert);
            }
            report.push(f);
            return None;
        }
        Err(ExchangeError::Empty) => {
            let speaks_tls =
                Dialer::new(opts, false).tcp().map(|s| tls::speaks_tls(s, target)).unwrap_or(false);
            let summary = "the server closed the connection without answering";
            let f = Finding::new("http.scheme", CheckStatus::Fail, summary)
                .client(client_message(target, "EOF"));
            report.push(if speaks_tls {
                let mut f = f.cause(tls_cause).fix(tls_fix);
                f.summary.push_str("; it completes a TLS handshake, so it speaks TLS");
                f
            } else {
                f.cause("the server accepted the connection but sent nothing back")
                    .fix(format!("check the registry's logs and that {authority} is its address"))
            });
            return None;
        }
        Err(e) => {
            report.push(http::exchange_failure(target, e));
            return None;
        }
    };
    if response.status == 400
        && response.body_text().contains("Client sent an HTTP request to an HTTPS server")
    {
        let summary = "the server speaks TLS, not plain HTTP (Go's TLS server answered 400)";
        report.push(
            Finding::new("http.scheme", CheckStatus::Fail, summary)
                .client(format!(
                    "error parsing HTTP 400 response body: invalid character 'C' looking for \
                     beginning of value: {}",
                    go_quote(&response.body)
                ))
                .cause(tls_cause)
                .fix(tls_fix)
                .detail(
                    "the server closes right after this answer, so a client may instead report \
                     `read: connection reset by peer` (seen with Docker 20.10)",
                ),
        );
        return None;
    }
    report.push(plain_http_finding(opts));
    Some(First { response, verified: true, dialer: Dialer::new(opts, false) })
}

/// A registry that speaks plain HTTP: a warning when a client here is set up for it (dockerd
/// is, by default, for a loopback registry; or with `--assume-trusted`), a failure when none
/// is, since clients use HTTPS unless told otherwise.
fn plain_http_finding(opts: &Options) -> Finding {
    let target = &opts.target;
    let authority = target.authority();
    let plain = insecure::plain_http(&opts.root, target);
    let serve_tls = format!(
        "serve TLS instead: `regkit certs ca`, `regkit certs site --san {}`, restart the registry \
         with them and `regkit trust install --ca pki/ca.crt --registry {authority}`",
        target.host
    );
    let configure = format!(
        "to keep plain HTTP, tell each client: \"{authority}\" in insecure-registries in \
         /etc/docker/daemon.json (then restart dockerd); server = \"http://{authority}\" in \
         /etc/containerd/certs.d/{authority}/hosts.toml; a [[registry]] with location = \
         \"{authority}\" and insecure = true in /etc/containers/registries.conf"
    );
    let mut f = if plain.allowed.is_empty() && !opts.assume_trusted {
        let https = target.with_scheme(Scheme::Https);
        Finding::new(
            "http.scheme",
            CheckStatus::Fail,
            "the registry speaks plain HTTP, and no client on this machine is set up to use it",
        )
        .client(client_message(&https, "http: server gave HTTP response to HTTPS client"))
        .cause(
            "clients use HTTPS unless told that the registry is insecure; neither Docker, \
             containerd nor Podman is told so here",
        )
        .fix(format!(
            "{serve_tls}; or {configure}; or, to check how a node set up for plain HTTP sees it, \
             add --assume-trusted"
        ))
    } else {
        let summary = if plain.allowed.is_empty() {
            "the registry speaks plain HTTP; judged as if the clients were set up for it \
             (--assume-trusted)"
                .to_string()
        } else {
            format!(
                "the registry speaks plain HTTP, which {} here {} set up to use",
                plain.allowed.join(", "),
                if plain.allowed.len() == 1 { "is" } else { "are" }
            )
        };
        Finding::new("http.scheme", CheckStatus::Warn, summary)
            .cause(
                "images and passwords cross the network unencrypted, and every client must be \
                 told the registry is insecure",
            )
            .fix(format!("{serve_tls}; otherwise {configure}"))
    };
    f.details = plain.details;
    if target.docker_insecure_by_default() {
        f = f.detail(
            "note: Docker falls back to plain HTTP for 127.0.0.0/8 and localhost by itself, so \
             `docker` on this machine works; other machines (nodes pulling by another address), \
             containerd and Podman use HTTPS unless each is told otherwise",
        );
    }
    f
}

/// Names a TLS alert record (`15 03 0x 00 02 level description`), e.g. `fatal decode_error`.
fn describe_alert(raw: &[u8]) -> Option<String> {
    let [0x15, 0x03, _, 0x00, 0x02, level, description, ..] = raw else { return None };
    let level = if *level == 2 { "fatal" } else { "warning" };
    // RFC 8446 section 6 / RFC 5246 section 7.2: the alerts a server sends to a non-TLS peer.
    let name = match description {
        0 => "close_notify".to_string(),
        10 => "unexpected_message".to_string(),
        20 => "bad_record_mac".to_string(),
        22 => "record_overflow".to_string(),
        40 => "handshake_failure".to_string(),
        47 => "illegal_parameter".to_string(),
        50 => "decode_error".to_string(),
        70 => "protocol_version".to_string(),
        80 => "internal_error".to_string(),
        other => format!("alert {other}"),
    };
    Some(format!("TLS alert: {level} {name}"))
}

/// What a Go client prints for a failed request to the registry's `/v2/` endpoint.
pub fn client_message(target: &Target, error: &str) -> String {
    format!("Get \"{}\": {error}", target.v2_url())
}

/// Go's `%q` / `strconv.Quote` for bytes: printable text as is, escapes for the rest.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut rest = bytes;
    while !rest.is_empty() {
        let (chunk, valid) = match std::str::from_utf8(rest) {
            Ok(s) => (s, rest.len()),
            Err(e) => {
                (std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or(""), e.valid_up_to())
            }
        };
        for c in chunk.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                c if (c as u32) < 0x80 && (c.is_ascii_control()) => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        rest = &rest[valid..];
        if let Some((&bad, tail)) = rest.split_first() {
            out.push_str(&format!("\\x{bad:02x}"));
            rest = tail;
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_bytes_like_go() {
        assert_eq!(go_quote(b"\x15\x03\x01\x00\x02\x02"), r#""\x15\x03\x01\x00\x02\x02""#);
        assert_eq!(go_quote(b"Client sent.\n"), r#""Client sent.\n""#);
        assert_eq!(go_quote(b"a\"b\\\xff\x7f"), r#""a\"b\\\xff\x7f""#);
        assert_eq!(
            describe_alert(b"\x15\x03\x01\x00\x02\x02\x0a").unwrap(),
            "TLS alert: fatal unexpected_message"
        );
        assert_eq!(describe_alert(b"HTTP/1.1"), None);
    }
}
