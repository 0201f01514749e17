//! The certificate checks a Go client makes, in Go's order and with Go's wording: validity
//! period, host name or IP against the SANs, then a chain to a trusted root (`crypto/x509`
//! `Certificate.Verify`). Docker, containerd and Podman are Go programs, so matching Go here (and
//! not a stricter verifier) is what makes "exit 0 only when a client would succeed" true: Go, for
//! instance, trusts a self-signed `CA:TRUE` certificate used directly as the server certificate
//! when it is in the root pool, which rustls-webpki rejects.

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use super::stores::Anchor;
use super::target::Target;

/// A certificate outside its validity window, with Go's message.
#[derive(Debug, Clone)]
pub struct ValidityProblem {
    /// Position in the presented chain (0 is the server's own certificate).
    pub index: usize,
    /// The certificate's subject, for the report.
    pub subject: String,
    /// True when expired, false when not yet valid.
    pub expired: bool,
    /// How far outside the window `now` is, in seconds.
    pub off_by: u64,
    /// The relevant bound (notAfter when expired, notBefore otherwise), RFC 3339.
    pub bound: String,
    /// Go's message: `x509: certificate has expired or is not yet valid: current time ...`.
    pub message: String,
}

/// Checks the validity window of every presented certificate against `now` (Unix seconds).
pub fn validity(chain: &[CertificateDer<'_>], now: i64) -> Vec<ValidityProblem> {
    let mut problems = Vec::new();
    for (index, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { continue };
        if let Some(p) = validity_of(&cert, now) {
            problems.push(ValidityProblem { index, ..p });
        }
    }
    problems
}

fn validity_of(cert: &X509Certificate<'_>, now: i64) -> Option<ValidityProblem> {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let (expired, bound, relation, off_by) = if now < not_before {
        (false, not_before, "before", not_before - now)
    } else if now > not_after {
        (true, not_after, "after", now - not_after)
    } else {
        return None;
    };
    let bound = rfc3339(bound);
    let message = format!(
        "x509: certificate has expired or is not yet valid: current time {} is {relation} {bound}",
        rfc3339(now)
    );
    Some(ValidityProblem {
        index: 0,
        subject: cert.subject().to_string(),
        expired,
        off_by: off_by.unsigned_abs(),
        bound,
        message,
    })
}

/// The names a certificate is valid for.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// Whether a SAN extension exists at all.
    pub has_san: bool,
    /// The subject common name, if any.
    pub common_name: Option<String>,
}

/// Reads the SANs and CN of a certificate.
pub fn names(der: &CertificateDer<'_>) -> Names {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return Names::default() };
    let mut names = Names { common_name: common_name(&cert), ..Names::default() };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        names.has_san = true;
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.dns.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        names.ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        names.ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// Go's `VerifyHostname`: `Ok` when the certificate covers the target, else Go's message
/// (`x509: certificate is valid for a, b, not c`, `... doesn't contain any IP SANs`, ...).
pub fn verify_hostname(names: &Names, target: &Target) -> Result<(), String> {
    let host = target.host.as_str();
    if let Some(ip) = target.ip {
        if names.ips.contains(&ip) {
            return Ok(());
        }
    } else if names.dns.iter().any(|pattern| match_hostname(pattern, host)) {
        return Ok(());
    }
    // Go's HostnameError.Error(), case by case.
    if !names.has_san && names.common_name.as_deref().is_some_and(|cn| match_hostname(cn, host)) {
        return Err("x509: certificate relies on legacy Common Name field, use SANs instead".into());
    }
    let valid = if target.ip.is_some() {
        if names.ips.is_empty() {
            return Err(format!(
                "x509: cannot validate certificate for {host} because it doesn't contain any IP \
                 SANs"
            ));
        }
        names.ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    } else {
        names.dns.join(", ")
    };
    if valid.is_empty() {
        return Err(format!(
            "x509: certificate is not valid for any names, but wanted to match {host}"
        ));
    }
    Err(format!("x509: certificate is valid for {valid}, not {host}"))
}

/// Go's `matchHostnames`: case-insensitive, a `*` only as the whole leftmost label.
fn match_hostname(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter().zip(&h).enumerate().all(|(i, (p, h))| (i == 0 && *p == "*") || p == h)
}

/// A chain that reached a trusted root.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The anchor that ended the chain.
    pub anchor: Anchor,
    /// Subjects from the server certificate up to the anchor.
    pub path: Vec<String>,
}

/// Go's chain building: from the server certificate through the presented intermediates to one
/// of `anchors`. The error is Go's message (`x509: certificate signed by unknown authority`,
/// with Go's "possibly because of" hint when a candidate issuer was found but rejected).
pub fn verify_chain(
    presented: &[CertificateDer<'_>],
    anchors: &[Anchor],
    now: i64,
) -> Result<Trusted, String> {
    let parsed: Vec<X509Certificate<'_>> = presented
        .iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
        .collect();
    let roots: Vec<(X509Certificate<'_>, &Anchor)> = anchors
        .iter()
        .filter_map(|a| x509_parser::parse_x509_certificate(&a.der).ok().map(|(_, c)| (c, a)))
        .collect();
    let Some(leaf) = parsed.first() else {
        return Err("tls: server presented no certificate".into());
    };
    // Go: a certificate that is itself in the root pool is trusted as it is.
    if let Some((_, anchor)) = roots.iter().find(|(_, a)| a.der.as_ref() == presented[0].as_ref()) {
        return Ok(Trusted { anchor: (*anchor).clone(), path: vec![leaf.subject().to_string()] });
    }
    let mut search = Search { roots: &roots, intermediates: &parsed[1..], now, hint: None };
    let mut path = vec![leaf.subject().to_string()];
    if let Some(anchor) = search.build(leaf, &mut path, 0) {
        server_auth_usage(leaf)?;
        return Ok(Trusted { anchor: anchor.clone(), path });
    }
    let mut message = "x509: certificate signed by unknown authority".to_string();
    if let Some((err, name)) = search.hint {
        message.push_str(&format!(
            " (possibly because of {err:?} while trying to verify candidate authority \
             certificate {name:?})"
        ));
    }
    Err(message)
}

/// Go's `ConstraintViolationError`, for an issuer that is not a CA or may not sign certificates.
const CANNOT_SIGN: &str =
    "x509: invalid signature: parent certificate cannot sign this kind of certificate";

struct Search<'s, 'a> {
    roots: &'s [(X509Certificate<'a>, &'s Anchor)],
    intermediates: &'s [X509Certificate<'a>],
    now: i64,
    /// The first rejected candidate: (Go's error text, Go's name for the candidate).
    hint: Option<(String, String)>,
}

impl<'s, 'a> Search<'s, 'a> {
    fn build(
        &mut self,
        cert: &X509Certificate<'a>,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Option<&'s Anchor> {
        if depth > 8 {
            return None;
        }
        let issuer = cert.issuer().as_raw();
        for (root, anchor) in self.roots {
            if root.subject().as_raw() != issuer {
                continue;
            }
            match self.check_parent(cert, root) {
                Ok(()) => {
                    path.push(root.subject().to_string());
                    return Some(anchor);
                }
                Err(e) => self.remember(e, root),
            }
        }
        for inter in self.intermediates {
            if inter.subject().as_raw() != issuer || inter.as_raw() == cert.as_raw() {
                continue;
            }
            if let Err(e) = self.check_parent(cert, inter) {
                self.remember(e, inter);
                continue;
            }
            if let Some(p) = validity_of(inter, self.now) {
                self.remember(p.message, inter);
                continue;
            }
            path.push(inter.subject().to_string());
            if let Some(anchor) = self.build(inter, path, depth + 1) {
                return Some(anchor);
            }
            path.pop();
        }
        None
    }

    /// Go's `CheckSignatureFrom` (plus the validity check Go makes on every chain member).
    fn check_parent(
        &self,
        child: &X509Certificate<'_>,
        parent: &X509Certificate<'_>,
    ) -> Result<(), String> {
        let bc = parent.basic_constraints().ok().flatten();
        let v3 = parent.version().0 == 2;
        if (v3 && bc.is_none()) || bc.is_some_and(|b| !b.value.ca) {
            return Err(CANNOT_SIGN.into());
        }
        if let Ok(Some(ku)) = parent.key_usage() {
            if !ku.value.key_cert_sign() {
                return Err(CANNOT_SIGN.into());
            }
        }
        if child.verify_signature(Some(parent.public_key())).is_err() {
            return Err(match parent.public_key().parsed() {
                Ok(PublicKey::RSA(_)) => "crypto/rsa: verification error".into(),
                Ok(PublicKey::EC(_)) => "x509: ECDSA verification failure".into(),
                _ => "x509: signature verification failure".into(),
            });
        }
        if let Some(p) = validity_of(parent, self.now) {
            return Err(p.message);
        }
        Ok(())
    }

    fn remember(&mut self, err: String, candidate: &X509Certificate<'_>) {
        if self.hint.is_none() {
            self.hint = Some((err, go_cert_name(candidate)));
        }
    }
}

/// Go checks the server certificate's extended key usage after building the chain.
fn server_auth_usage(leaf: &X509Certificate<'_>) -> Result<(), String> {
    match leaf.extended_key_usage() {
        Ok(Some(eku)) if !eku.value.server_auth && !eku.value.any => {
            Err("x509: certificate specifies an incompatible key usage".into())
        }
        _ => Ok(()),
    }
}

/// How Go names a certificate in the unknown-authority hint: CN, else first O, else serial.
fn go_cert_name(cert: &X509Certificate<'_>) -> String {
    if let Some(cn) = common_name(cert).filter(|cn| !cn.is_empty()) {
        return cn;
    }
    if let Some(o) = cert.subject().iter_organization().next().and_then(|a| a.as_str().ok()) {
        return o.to_string();
    }
    format!("serial:{}", cert.serial)
}

fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string)
}

/// A certificate's subject and issuer, for the report.
pub fn describe(der: &CertificateDer<'_>) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => format!(
            "subject {:?}, issuer {:?}, valid {} to {}",
            c.subject().to_string(),
            c.issuer().to_string(),
            rfc3339(c.validity().not_before.timestamp()),
            rfc3339(c.validity().not_after.timestamp())
        ),
        Err(e) => format!("unparseable certificate ({e})"),
    }
}

/// True when a certificate names itself as its issuer (a self-signed root or leaf).
pub fn is_self_issued(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, c)| c.issuer().as_raw() == c.subject().as_raw())
}

/// The issuer name of a certificate (what CA a client needs).
pub fn issuer(der: &CertificateDer<'_>) -> String {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.issuer().to_string())
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats Unix seconds the way Go's `time.RFC3339` prints a UTC time: `2021-01-01T00:00:00Z`.
pub fn rfc3339(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => ts.to_string(),
    }
}

/// A duration in the two largest units: `3 days 4 hours`, `12 minutes 5 seconds`.
pub fn human_duration(secs: u64) -> String {
    let units = [("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (name, size) in units {
        let n = rest / size;
        if n > 0 || (parts.is_empty() && size == 1) {
            parts.push(format!("{n} {name}{}", if n == 1 { "" } else { "s" }));
            rest -= n * size;
        }
        if parts.len() == 2 || (!parts.is_empty() && rest == 0) {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn hostname_messages_match_go() {
        let ip_only =
            Names { ips: vec!["10.0.0.2".parse().unwrap()], has_san: true, ..Names::default() };
        assert_eq!(
            verify_hostname(&ip_only, &target("https://10.0.0.1:5000")).unwrap_err(),
            "x509: certificate is valid for 10.0.0.2, not 10.0.0.1"
        );
        let dns =
            Names { dns: vec!["a".into(), "b.example".into()], has_san: true, ..Names::default() };
        assert_eq!(
            verify_hostname(&dns, &target("https://10.0.0.1:5000")).unwrap_err(),
            "x509: cannot validate certificate for 10.0.0.1 because it doesn't contain any IP SANs"
        );
        assert_eq!(
            verify_hostname(&dns, &target("https://c.example")).unwrap_err(),
            "x509: certificate is valid for a, b.example, not c.example"
        );
        let cn = Names { common_name: Some("reg.example".into()), ..Names::default() };
        assert_eq!(
            verify_hostname(&cn, &target("reg.example:5000")).unwrap_err(),
            "x509: certificate relies on legacy Common Name field, use SANs instead"
        );
        let wild = Names { dns: vec!["*.example.com".into()], has_san: true, ..Names::default() };
        assert!(verify_hostname(&wild, &target("Reg.Example.com:5000")).is_ok());
        assert!(verify_hostname(&wild, &target("a.reg.example.com:5000")).is_err());
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(rfc3339(1_609_459_200), "2021-01-01T00:00:00Z");
        assert_eq!(human_duration(0), "0 seconds");
        assert_eq!(human_duration(90), "1 minute 30 seconds");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3_600 + 5), "3 days 4 hours");
        assert_eq!(human_duration(7_200), "2 hours");
    }
}
