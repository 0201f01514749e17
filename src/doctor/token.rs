//! Bearer token authentication as `docker login` performs it when `/v2/` answers
//! `WWW-Authenticate: Bearer realm="...",service="..."`: `GET realm?account=U&client_id=docker&
//! offline_token=true&service=S` with Basic credentials, then `GET /v2/` with the token from the
//! JSON answer (`token` or `access_token`). The token server's certificate is judged like the
//! registry's before the password goes to it. Separate from [`super::http`] because it talks to
//! a second server.

use super::http::{
    Challenge, ExchangeError, First, basic_authorization, exchange, exchange_failure,
};
use super::target::{Scheme, Target};
use super::tls::{self, TrustContext};
use super::transport::{Dialer, Stream, client_message};
use super::{CheckStatus, Credentials, Finding, chain};

const CHECK: &str = "http.credentials";

/// Logs in through the token server named by `challenge` and uses the token on `/v2/`.
pub fn check(
    first: &First,
    challenge: &Challenge,
    creds: &Credentials,
    target: &Target,
    ctx: &TrustContext,
) -> Finding {
    let Some(realm) = challenge.param("realm") else {
        let summary = "the Bearer challenge names no realm (token server)";
        return Finding::new(CHECK, CheckStatus::Fail, summary)
            .client(client_message(target, "unauthorized: authentication required"))
            .cause("clients fetch a token from the challenge's realm URL; without one they fail")
            .fix("set the registry's token realm (REGISTRY_AUTH_TOKEN_REALM)");
    };
    let (realm_target, path) = match split_url(realm) {
        Ok(parts) => parts,
        Err(reason) => {
            return Finding::new(
                CHECK,
                CheckStatus::Fail,
                format!("the token realm {realm:?} is not a usable URL: {reason}"),
            )
            .fix("set the registry's token realm to an absolute http(s) URL");
        }
    };
    let mut query =
        vec![("account", creds.user.as_str()), ("client_id", "docker"), ("offline_token", "true")];
    if let Some(service) = challenge.param("service") {
        query.push(("service", service));
    }
    let encoded: Vec<String> =
        query.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
    let sep = if path.contains('?') { '&' } else { '?' };
    let path_query = format!("{path}{sep}{}", encoded.join("&"));
    let dialer = Dialer {
        target: realm_target.clone(),
        timeout: first.dialer.timeout,
        tls: realm_target.scheme == Scheme::Https,
    };
    let mut stream = match open_trusted(&dialer, ctx) {
        Ok(s) => s,
        Err(f) => return *f,
    };
    let basic = basic_authorization(creds);
    let answer = exchange(&mut *stream, &realm_target, &path_query, Some(&basic));
    let token = match answer {
        Ok(r) if r.status == 200 => match token_from(&r.body) {
            Some(t) => t,
            None => {
                return Finding::new(
                    CHECK,
                    CheckStatus::Fail,
                    format!("the token server {realm} answered 200 without a token"),
                )
                .cause("the answer is not JSON with a \"token\" or \"access_token\" field")
                .fix("check the token server's configuration and logs");
            }
        },
        Ok(r) if r.status == 401 || r.status == 403 => {
            return Finding::new(
                CHECK,
                CheckStatus::Fail,
                format!(
                    "user {:?} is rejected by the token server {realm} ({} {})",
                    creds.user, r.status, r.reason
                ),
            )
            .client(client_message(target, &docker_error(&r.body)))
            .cause("the password is wrong, or the token server does not know this user")
            .fix("check the user in the token server's user store, then `docker login` again");
        }
        Ok(r) => {
            return Finding::new(
                CHECK,
                CheckStatus::Fail,
                format!("the token server {realm} answered {} {}", r.status, r.reason),
            )
            .cause("a token server answers 200 with a token, or 401 for bad credentials")
            .fix("check the token server's logs");
        }
        Err(e) => {
            let mut f = exchange_failure(&realm_target, e);
            f.check = CHECK;
            f.summary = format!("the token server {realm} gave no valid HTTP answer");
            return f;
        }
    };
    let bearer = format!("Bearer {token}");
    let result = first
        .dialer
        .open()
        .map_err(ExchangeError::Io)
        .and_then(|mut s| exchange(&mut *s, target, "/v2/", Some(&bearer)));
    match result {
        Ok(r) if r.status == 200 => {
            let summary = format!(
                "user {:?} is accepted: the token server {realm} issued a token and the registry \
                 accepts it",
                creds.user
            );
            let mut f = Finding::new(CHECK, CheckStatus::Ok, summary);
            if realm_target.scheme == Scheme::Http && !realm_target.is_loopback() {
                f = f.detail(
                    "warning: the token realm is plain HTTP, so passwords cross the network \
                     unencrypted",
                );
            }
            f
        }
        Ok(r) => {
            let summary =
                format!("the registry refuses the token from {realm} ({} {})", r.status, r.reason);
            Finding::new(CHECK, CheckStatus::Fail, summary)
                .client(client_message(target, &docker_error(&r.body)))
                .cause(
                    "the token server and the registry disagree: the registry's rootcertbundle \
                     does not hold the token signer's certificate, or its issuer or service \
                     differs from the token's",
                )
                .fix(
                    "make REGISTRY_AUTH_TOKEN_ISSUER, _SERVICE and _ROOTCERTBUNDLE match the \
                     token server's issuer, service and signing certificate",
                )
        }
        Err(e) => {
            let mut f = exchange_failure(target, e);
            f.check = CHECK;
            f
        }
    }
}

/// Connects to the token server; over TLS only when a client would trust its certificate.
fn open_trusted(dialer: &Dialer, ctx: &TrustContext) -> Result<Box<dyn Stream>, Box<Finding>> {
    let realm = &dialer.target;
    let failed = |what: String| {
        Box::new(Finding::new(
            CHECK,
            CheckStatus::Fail,
            format!("cannot reach the token server {realm}: {what}"),
        ))
    };
    let tcp = dialer.tcp().map_err(|e| {
        let f = failed(e.to_string());
        Box::new(f.fix(format!("make {} reachable from the clients", realm.authority())))
    })?;
    if !dialer.tls {
        return Ok(Box::new(tcp));
    }
    let (stream, presented) =
        tls::handshake(tcp, realm).map_err(|e| failed(format!("TLS handshake failed ({e:?})")))?;
    let now = chain::now_unix();
    let names = presented.first().map(chain::names).unwrap_or_default();
    let problem = chain::validity(&presented, now)
        .first()
        .map(|p| p.message.clone())
        .or_else(|| chain::verify_hostname(&names, realm).err())
        .or_else(|| chain::verify_chain(&presented, &ctx.pool(), now).err());
    let Some(message) = problem else { return Ok(Box::new(stream)) };
    let summary =
        format!("credentials not sent: a client would not trust the token server {realm}");
    let install = format!("regkit trust install --ca ca.crt --registry {}", realm.authority());
    Err(Box::new(
        Finding::new(CHECK, CheckStatus::Fail, summary)
            .client(format!("Get \"{realm}\": tls: failed to verify certificate: {message}"))
            .cause("the token server's certificate fails the checks a client makes")
            .fix(format!("give the clients the token server's CA: `{install}`")),
    ))
}

/// Splits `https://host:port/path?query` into the server and the request target.
fn split_url(url: &str) -> Result<(Target, String), String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let target: Target =
        format!("{scheme}://{authority}").parse().map_err(|e: super::Error| e.to_string())?;
    Ok((target, path))
}

fn token_from(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("token")
        .or_else(|| v.get("access_token"))?
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// How Docker's registry client renders a 401 body (distribution's `HandleErrorResponse`):
/// `code: message` from `{"errors":[...]}`, `unauthorized: details` from `{"details":...}`,
/// else `unauthorized: authentication required`.
fn docker_error(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
        let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("UNAUTHORIZED");
        let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
        return format!("{}: {message}", code.replace('_', " ").to_lowercase());
    }
    if let Some(details) = v.get("details").and_then(|d| d.as_str()) {
        return format!("unauthorized: {details}");
    }
    "unauthorized: authentication required".to_string()
}

fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_urls_and_error_bodies() {
        let (t, p) = split_url("https://auth.example:5001/token?x=1").unwrap();
        assert_eq!((t.authority(), p.as_str()), ("auth.example:5001".to_string(), "/token?x=1"));
        let (t, p) = split_url("http://10.0.0.1").unwrap();
        assert_eq!((t.port, p.as_str()), (80, "/"));
        assert!(split_url("auth.example/token").is_err());
        assert_eq!(percent_encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
        assert_eq!(
            docker_error(br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad creds"}]}"#),
            "unauthorized: bad creds"
        );
        assert_eq!(
            docker_error(br#"{"details":"incorrect username or password"}"#),
            "unauthorized: incorrect username or password"
        );
        assert_eq!(docker_error(b"nope"), "unauthorized: authentication required");
        assert_eq!(token_from(br#"{"access_token":"abc"}"#).as_deref(), Some("abc"));
    }
}
