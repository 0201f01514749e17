//! The HTTP step: a small HTTP/1.1 client (one `GET` per connection, `Connection: close`) that
//! reads the status line the way Go's `net/http` does, so a non-HTTP answer yields Go's
//! "malformed HTTP response" text; then the registry checks a client makes on `/v2/`: the
//! status, the `Docker-Distribution-API-Version` header, the `WWW-Authenticate` challenge, and
//! whether the given credentials are accepted. Credentials are only sent over a connection
//! the client would trust.

use std::io::{self, Read};

use base64::Engine;

use super::target::Target;
use super::tls::TrustContext;
use super::transport::{Dialer, Stream, client_message};
use super::{CheckStatus, Finding, Options, Report};

/// Largest response read (the `/v2/` body is tiny; this bounds a misbehaving server).
const MAX_RESPONSE: usize = 1 << 20;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why an exchange produced no response.
#[derive(Debug)]
pub enum ExchangeError {
    /// The answer is not HTTP; `message` is Go's text, `raw` the first bytes received.
    Malformed {
        /// Go's error text, e.g. `malformed HTTP response "\x15\x03\x01\x00\x02\x02"`.
        message: String,
        /// What was received.
        raw: Vec<u8>,
    },
    /// The server closed the connection without sending anything.
    Empty,
    /// Writing or reading failed (including timeouts).
    Io(io::Error),
}

/// The first `/v2/` answer and how further requests reach the registry.
#[derive(Debug)]
pub struct First {
    /// The answer to `GET /v2/` without credentials.
    pub response: Response,
    /// True when a client would trust the connection (credentials may be sent).
    pub verified: bool,
    /// Opens further connections.
    pub dialer: Dialer,
}

/// Sends `GET path` and reads the response.
pub fn exchange<S: Stream + ?Sized>(
    stream: &mut S,
    target: &Target,
    path: &str,
    authorization: Option<&str>,
) -> Result<Response, ExchangeError> {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: regkit-doctor/{}\r\n\
         Accept: application/json\r\nConnection: close\r\n{auth}\r\n",
        target.authority(),
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).and_then(|_| stream.flush()).map_err(ExchangeError::Io)?;
    let raw = read_response(stream)?;
    parse(&raw)
}

fn read_response<S: Read + ?Sized>(stream: &mut S) -> Result<Vec<u8>, ExchangeError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A TLS peer that closes without close_notify still ends the response.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !buf.is_empty() => break,
            Err(e) => return Err(ExchangeError::Io(e)),
        }
        if buf.len() >= MAX_RESPONSE || complete(&buf) {
            break;
        }
    }
    if buf.is_empty() { Err(ExchangeError::Empty) } else { Ok(buf) }
}

/// True once the headers and a Content-Length body have arrived (else read to EOF).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&buf[..end]);
    let length = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|len| buf.len() >= end + 4 + len)
}

/// Parses a response as Go's `http.ReadResponse` does its status line.
fn parse(raw: &[u8]) -> Result<Response, ExchangeError> {
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = raw[..line_end].strip_suffix(b"\r").unwrap_or(&raw[..line_end]);
    let malformed = |what: &str, val: &[u8]| ExchangeError::Malformed {
        message: format!("{what} {}", super::transport::go_quote(val)),
        raw: raw.to_vec(),
    };
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return Err(malformed("malformed HTTP response", line));
    };
    let (proto, rest) = (&line[..space], &line[space + 1..]);
    let status_text = rest.trim_ascii_start();
    let code = status_text.split(|&b| b == b' ').next().unwrap_or_default();
    let status =
        std::str::from_utf8(code).ok().filter(|c| c.len() == 3).and_then(|c| c.parse::<u16>().ok());
    let Some(status) = status else { return Err(malformed("malformed HTTP status code", code)) };
    if !(proto.starts_with(b"HTTP/") && proto.len() == 8) {
        return Err(malformed("malformed HTTP version", proto));
    }
    let reason = String::from_utf8_lossy(status_text.get(4..).unwrap_or_default()).into_owned();
    let header_end = find(raw, b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[line_end.min(header_end)..header_end]);
    let headers: Vec<(String, String)> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[header_end..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response { status, reason, headers, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        let start = eol + 2;
        if size == 0 || start + size > data.len() {
            break;
        }
        out.extend_from_slice(&data[start..start + size]);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The finding for an exchange that produced no usable response.
pub fn exchange_failure(target: &Target, e: ExchangeError) -> Finding {
    let (go, cause) = match e {
        ExchangeError::Malformed { message, .. } => (
            format!("net/http: HTTP/1.x transport connection broken: {message}"),
            "the server's answer to GET /v2/ is not HTTP".to_string(),
        ),
        ExchangeError::Empty => {
            ("EOF".to_string(), "the server closed the connection without answering".to_string())
        }
        ExchangeError::Io(e)
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
        {
            (
                "net/http: timeout awaiting response headers".to_string(),
                "the server accepted the request but did not answer within the timeout".to_string(),
            )
        }
        ExchangeError::Io(e) => (e.to_string(), format!("the connection failed: {e}")),
    };
    Finding::new("http.v2", CheckStatus::Fail, "GET /v2/ got no valid HTTP answer")
        .client(client_message(target, &go))
        .cause(cause)
        .fix(format!(
            "check the registry's logs, and that {} is the registry itself",
            target.authority()
        ))
}

/// The registry checks on the first `/v2/` answer, then the credentials.
pub fn check(opts: &Options, first: &First, ctx: &TrustContext, report: &mut Report) {
    let target = &opts.target;
    let r = &first.response;
    let answered = format!("GET /v2/ answered {} {}", r.status, r.reason);
    if r.status != 200 && r.status != 401 {
        let url = target.v2_url();
        report.push(
            Finding::new("http.v2", CheckStatus::Fail, answered)
                .client(format!(
                    "unexpected status from GET request to {url}: {} {}",
                    r.status, r.reason
                ))
                .cause(
                    "a registry answers /v2/ with 200 (open) or 401 (login required); something \
                     else answers here (a web server, or a proxy not passing /v2/ through)",
                )
                .fix(format!(
                    "point clients at the registry itself, or make the proxy pass /v2/ to it; \
                     then `regkit doctor {target}`"
                )),
        );
        return;
    }
    report.push(Finding::new("http.v2", CheckStatus::Ok, answered));
    report.push(api_version(r));
    if r.status == 200 {
        let mut f = Finding::new(
            "http.auth",
            CheckStatus::Ok,
            "no authentication required: anyone who reaches it can pull and push",
        );
        if opts.credentials.is_some() {
            f = f.detail("the credentials given were not needed");
        }
        report.push(f);
        return;
    }
    let Some(challenge) = r.header("WWW-Authenticate").map(Challenge::parse) else {
        report.push(
            Finding::new(
                "http.auth",
                CheckStatus::Fail,
                "401 without a WWW-Authenticate challenge",
            )
            .client(client_message(target, "no basic auth credentials"))
            .cause(
                "clients learn how to log in from the WWW-Authenticate header; without it \
                     they cannot authenticate",
            )
            .fix(
                "make the registry (or the proxy in front) send its WWW-Authenticate header \
                     with 401 answers",
            ),
        );
        return;
    };
    let described = challenge.describe();
    let Some(creds) = &opts.credentials else {
        let client = if challenge.scheme.eq_ignore_ascii_case("basic") {
            "no basic auth credentials"
        } else {
            "unauthorized: authentication required"
        };
        let summary =
            format!("authentication required ({described}); no credentials given to test");
        report.push(
            Finding::new("http.auth", CheckStatus::Fail, summary)
                .client(client)
                .cause(
                    "clients that have not logged in are refused, and without --user the doctor \
                     cannot tell whether a login would work",
                )
                .fix(format!(
                    "check the credentials a client uses with `regkit doctor {target} --user USER \
                     --password-stdin`, then log in with them (`docker login {}`)",
                    target.authority()
                )),
        );
        return;
    };
    let summary = format!("authentication required ({described})");
    report.push(Finding::new("http.auth", CheckStatus::Ok, summary));
    report.push(check_credentials(first, &challenge, creds, target, ctx));
}

fn api_version(r: &Response) -> Finding {
    let summary = match r.header("Docker-Distribution-API-Version") {
        Some(v) if v.eq_ignore_ascii_case("registry/2.0") => {
            let summary = format!("Docker-Distribution-API-Version: {v}");
            return Finding::new("http.api_version", CheckStatus::Ok, summary);
        }
        Some(v) => format!("Docker-Distribution-API-Version is {v:?}, not \"registry/2.0\""),
        None => "the Docker-Distribution-API-Version header is missing".to_string(),
    };
    Finding::new("http.api_version", CheckStatus::Warn, summary)
        .cause("Docker uses this header to recognise a V2 registry; a proxy may be dropping it")
        .fix("make the proxy pass the registry's headers through unchanged")
}

fn check_credentials(
    first: &First,
    challenge: &Challenge,
    creds: &super::Credentials,
    target: &Target,
    ctx: &TrustContext,
) -> Finding {
    const CHECK: &str = "http.credentials";
    if !first.verified {
        let summary = "credentials not sent: a client would not trust this connection (fix the \
                       TLS findings first)";
        return Finding::new(CHECK, CheckStatus::Skip, summary);
    }
    if challenge.scheme.eq_ignore_ascii_case("bearer") {
        return super::token::check(first, challenge, creds, target, ctx);
    }
    if !challenge.scheme.eq_ignore_ascii_case("basic") {
        let summary = format!(
            "the registry asks for {:?} authentication, which Docker does not support",
            challenge.scheme
        );
        return Finding::new(CHECK, CheckStatus::Skip, summary);
    }
    let basic = basic_authorization(creds);
    let result = first
        .dialer
        .open()
        .map_err(ExchangeError::Io)
        .and_then(|mut s| exchange(&mut *s, target, "/v2/", Some(&basic)));
    let user = &creds.user;
    let url = target.v2_url();
    match result {
        Ok(r) if r.status == 200 => {
            Finding::new(CHECK, CheckStatus::Ok, format!("user {user:?} is accepted"))
        }
        Ok(r) if r.status == 401 => {
            Finding::new(CHECK, CheckStatus::Fail, format!("user {user:?} is rejected (401)"))
                .client(format!("login attempt to {url} failed with status: 401 Unauthorized"))
                .cause("the password is wrong, or the user is not in the registry's htpasswd file")
                .fix(format!(
                    "check the entry with `regkit htpasswd verify HTPASSWD_FILE {user}`; set it \
                     with `regkit htpasswd add HTPASSWD_FILE {user} --password-stdin` (restart \
                     the registry if it does not pick the change up)"
                ))
        }
        Ok(r) => {
            let status = format!("{} {}", r.status, r.reason);
            let summary = format!("GET /v2/ with credentials answered {status}");
            Finding::new(CHECK, CheckStatus::Fail, summary)
                .client(format!("login attempt to {url} failed with status: {status}"))
                .cause("the registry refused an authenticated request")
                .fix("check the registry's logs")
        }
        Err(e) => {
            let mut f = exchange_failure(target, e);
            f.check = CHECK;
            f
        }
    }
}

/// The `Authorization` header value for Basic authentication.
pub fn basic_authorization(creds: &super::Credentials) -> String {
    let pair = format!("{}:{}", creds.user, creds.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// `Basic` or `Bearer`.
    pub scheme: String,
    /// Its parameters (`realm`, `service`, `scope`).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Scheme k="v",k2="v2"`.
    pub fn parse(header: &str) -> Challenge {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let mut params = Vec::new();
        let mut rest = rest.trim();
        while let Some((key, after)) = rest.split_once('=') {
            let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (quoted[..end].to_string(), quoted.get(end + 1..).unwrap_or(""))
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.push((key, value));
            rest = tail.trim_start_matches([',', ' ']);
        }
        Challenge { scheme: scheme.to_string(), params }
    }

    /// A parameter's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `scheme realm="..." service="..."`, for the report.
    pub fn describe(&self) -> String {
        let mut s = self.scheme.clone();
        for key in ["realm", "service"] {
            if let Some(v) = self.param(key) {
                s.push_str(&format!(" {key}={v:?}"));
            }
        }
        s
    }
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
pub fn parse_http_date(value: &str) -> Option<i64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as u8 + 1;
    let mut hms = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let date = time::Date::from_calendar_date(
        year.parse().ok()?,
        time::Month::try_from(month).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(h, m, s).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_fail_like_go() {
        let err = |raw: &[u8]| match parse(raw) {
            Err(ExchangeError::Malformed { message, .. }) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(b"\x15\x03\x01\x00\x02\x02\x0a"),
            r#"malformed HTTP response "\x15\x03\x01\x00\x02\x02""#
        );
        assert_eq!(err(b"HTTP/1.1 2000 OK\r\n\r\n"), r#"malformed HTTP status code "2000""#);
        assert_eq!(err(b"SSH-2.0 200 x\r\n"), r#"malformed HTTP version "SSH-2.0""#);
        let raw = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"R\"\r\n\
                    Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let ok = parse(raw).unwrap();
        assert_eq!(
            (ok.status, ok.reason.as_str(), ok.body.as_slice()),
            (401, "Unauthorized", &b"abc"[..])
        );
        assert_eq!(ok.header("www-authenticate"), Some("Basic realm=\"R\""));
    }

    #[test]
    fn challenges_and_dates_parse() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="x""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(parse_http_date("Fri, 01 Jan 2021 00:00:00 GMT"), Some(1_609_459_200));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
