//! Verification as a TLS client does it: chain to the given CA with rustls-webpki, the SAN
//! match for a host name or IP, the extended key usage and the validity windows. Every
//! failure becomes a [`Problem`] in plain words with the regkit command that fixes it, so
//! `regkit certs verify` and `regkit doctor` say the same thing.

use std::net::IpAddr;
use std::path::Path;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{GeneralName, X509Certificate};

use super::constraints::Constraints;
use super::{Error, SanEntry, x509};

/// Placeholder for the certificate path inside [`Problem::fix`]; see
/// [`Problem::with_cert_path`].
pub const CERT_PLACEHOLDER: &str = "<cert>";

/// Which extended key usage the certificate must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Usage {
    /// TLS server (serverAuth).
    Server,
    /// TLS client (clientAuth).
    Client,
}

/// What kind of failure a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The certificate cannot be parsed.
    Unreadable,
    /// Not issued by (any of) the given CA certificates.
    WrongCa,
    /// The certificate's validity ended.
    Expired,
    /// The certificate's validity has not started.
    NotYetValid,
    /// The CA certificate's validity ended.
    CaExpired,
    /// The host name or IP is not among the SANs.
    NameMismatch,
    /// The certificate has no SAN at all.
    NoSan,
    /// The extended key usage does not allow this use.
    WrongUsage,
    /// A CA certificate was given where a leaf is expected.
    NotALeaf,
    /// A SAN lies outside the CA's name constraints.
    NameConstraints,
    /// Anything else webpki rejects.
    Other,
}

/// One reason a certificate would be rejected, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Machine-readable category.
    pub kind: ProblemKind,
    /// What is wrong.
    pub message: String,
    /// The regkit command (or step) that fixes it.
    pub fix: Option<String>,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>, fix: Option<String>) -> Self {
        Problem { kind, message: message.into(), fix }
    }

    /// Replaces [`CERT_PLACEHOLDER`] in the fix with the real certificate path.
    pub fn with_cert_path(mut self, path: &str) -> Self {
        self.fix = self.fix.map(|f| f.replace(CERT_PLACEHOLDER, path));
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fix {
            Some(fix) => write!(f, "{}: {fix}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Verifies `chain` (leaf first, then any intermediates) against `cas` as a TLS client would
/// for `name` (a DNS name or IP address; `None` skips the name check) at `time`, for a
/// server certificate. Returns every problem found; empty means valid.
pub fn verify_chain(
    cas: &[CertificateDer<'_>],
    chain: &[CertificateDer<'_>],
    name: Option<&str>,
    time: OffsetDateTime,
) -> Vec<Problem> {
    verify_chain_for(cas, chain, name, Usage::Server, time)
}

/// [`verify_chain`] with an explicit usage (server or client certificate).
pub fn verify_chain_for(
    cas: &[CertificateDer<'_>],
    chain: &[CertificateDer<'_>],
    name: Option<&str>,
    usage: Usage,
    time: OffsetDateTime,
) -> Vec<Problem> {
    let Some(leaf_der) = chain.first() else {
        return vec![Problem::new(ProblemKind::Unreadable, "no certificate to verify", None)];
    };
    let leaf = match x509::parse_cert(Path::new("certificate"), leaf_der) {
        Ok(c) => c,
        Err(e) => return vec![Problem::new(ProblemKind::Unreadable, e.to_string(), None)],
    };
    let mut problems = Vec::new();
    let renew = Some(format!("renew it with `regkit certs renew {CERT_PLACEHOLDER}`"));
    let nb = leaf.validity().not_before.to_datetime();
    let na = leaf.validity().not_after.to_datetime();
    if time > na {
        problems.push(Problem::new(
            ProblemKind::Expired,
            format!("the certificate expired on {}", x509::rfc3339(na)),
            renew.clone(),
        ));
    } else if time < nb {
        problems.push(Problem::new(
            ProblemKind::NotYetValid,
            format!(
                "the certificate is not valid until {} (check this machine's clock)",
                x509::rfc3339(nb)
            ),
            None,
        ));
    }
    for ca_der in cas {
        if let Ok(ca) = x509::parse_cert(Path::new("CA"), ca_der)
            && ca.subject().as_raw() == leaf.issuer().as_raw()
            && ca.validity().not_after.to_datetime() < time
        {
            problems.push(Problem::new(
                ProblemKind::CaExpired,
                format!(
                    "the CA certificate expired on {}",
                    x509::rfc3339(ca.validity().not_after.to_datetime())
                ),
                Some(
                    "create a new CA with `regkit certs ca --force`, then re-issue with \
                     `regkit certs site --force`"
                        .into(),
                ),
            ));
        }
    }
    // Check the chain at a moment inside the leaf's window, so an expired leaf does not hide
    // a wrong CA or a wrong usage (the expiry itself is reported above).
    let at = time.clamp(nb, na);
    problems.extend(chain_problems(cas, chain, usage, at));
    if let Some(name) = name {
        problems.extend(name_problem(leaf_der, &leaf, name));
    } else if sans_of(&leaf).is_empty() && usage == Usage::Server {
        problems.push(Problem::new(
            ProblemKind::NoSan,
            "the certificate has no subjectAltName (Go and Docker ignore the CN)",
            Some("re-issue with `regkit certs site --san NAME`".into()),
        ));
    }
    problems
}

/// Reads a CA file and a certificate file and verifies them with [`verify_chain_for`]; fix
/// commands name `cert_path`.
pub fn verify_files(
    ca_path: &Path,
    cert_path: &Path,
    name: Option<&str>,
    usage: Usage,
    time: OffsetDateTime,
) -> Result<Vec<Problem>, Error> {
    let cas = x509::read_certs(ca_path)?;
    let chain = x509::read_certs(cert_path)?;
    let shown = cert_path.display().to_string();
    let from_site = written_by_site(cert_path);
    Ok(verify_chain_for(&cas, &chain, name, usage, time)
        .into_iter()
        .map(|p| if from_site { p } else { p.with_renew_fix(name) })
        .map(|p| p.with_cert_path(&shown))
        .collect())
}

/// True for the files `regkit certs site` writes (`site.crt`, `site.fullchain.crt`), which a
/// new `certs site --force` replaces. Any other certificate (from `certs sign`, a client
/// certificate, one made elsewhere) is fixed with `certs renew`, which keeps its key and
/// does not touch `pki/site.*`.
fn written_by_site(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "site.crt" || n == "site.fullchain.crt")
}

impl Problem {
    /// Rewrites a fix that says `regkit certs site ...` into the `regkit certs renew` that fixes
    /// this certificate in place (`name`: the host that was checked).
    fn with_renew_fix(mut self, name: Option<&str>) -> Self {
        let renew = format!("regkit certs renew {CERT_PLACEHOLDER}");
        let host = name.map(|n| n.trim().trim_start_matches('[').trim_end_matches(']'));
        self.fix = match (self.kind, host) {
            (ProblemKind::NameMismatch, Some(h)) if self.fix.is_some() => {
                Some(format!("add it with `{renew} --san {h}`"))
            }
            (ProblemKind::NoSan, _) => Some(format!("add names with `{renew} --san NAME`")),
            (ProblemKind::WrongCa, _) => Some(format!(
                "verify with the CA that issued it, or re-issue it under this CA with \
                 `{renew} --ca-cert CA --ca-key KEY --new-issuer`"
            )),
            (ProblemKind::CaExpired, _) => Some(format!(
                "create a new CA with `regkit certs ca --force`, then re-issue with \
                 `{renew} --new-issuer`"
            )),
            _ => self.fix,
        };
        self
    }
}

/// Only the chain part (CA, signature, usage, constraints) at `time`, through webpki.
pub(crate) fn chain_problems(
    cas: &[CertificateDer<'_>],
    chain: &[CertificateDer<'_>],
    usage: Usage,
    time: OffsetDateTime,
) -> Vec<Problem> {
    let leaf = match EndEntityCert::try_from(&chain[0]) {
        Ok(l) => l,
        Err(e) => {
            return vec![Problem::new(
                ProblemKind::Unreadable,
                format!("webpki cannot read the certificate: {e}"),
                None,
            )];
        }
    };
    let mut anchors = Vec::new();
    for ca in cas {
        match webpki::anchor_from_trusted_cert(ca) {
            Ok(a) => anchors.push(a),
            Err(e) => {
                return vec![Problem::new(
                    ProblemKind::Unreadable,
                    format!("the CA certificate cannot be used as a trust anchor: {e}"),
                    None,
                )];
            }
        }
    }
    let secs = u64::try_from(time.unix_timestamp()).unwrap_or(0);
    let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let ku = match usage {
        Usage::Server => KeyUsage::server_auth(),
        Usage::Client => KeyUsage::client_auth(),
    };
    let intermediates = &chain[1..];
    let algs = webpki::ALL_VERIFICATION_ALGS;
    match leaf.verify_for_usage(algs, &anchors, intermediates, unix, ku, None, None) {
        Ok(_) => vec![],
        Err(e) => vec![map_webpki(e, usage, cas, &chain[0])],
    }
}

fn map_webpki(
    e: webpki::Error,
    usage: Usage,
    cas: &[CertificateDer<'_>],
    leaf: &CertificateDer<'_>,
) -> Problem {
    use webpki::Error as W;
    let reissue = Some("re-issue it with `regkit certs site --san ...`".to_string());
    match e {
        W::UnknownIssuer | W::InvalidSignatureForPublicKey => {
            let issuer = x509::parse_cert(Path::new("certificate"), leaf)
                .map(|c| c.issuer().to_string())
                .unwrap_or_default();
            let ca_names: Vec<String> = cas
                .iter()
                .filter_map(|c| x509::parse_cert(Path::new("CA"), c).ok())
                .map(|c| c.subject().to_string())
                .collect();
            let message = if ca_names.contains(&issuer) {
                format!(
                    "the certificate was not issued by the given CA: its issuer has the same \
                     name ({issuer}) but a different key"
                )
            } else {
                format!(
                    "the certificate was not issued by the given CA ({}); its issuer is {issuer}",
                    ca_names.join("; ")
                )
            };
            Problem::new(
                ProblemKind::WrongCa,
                message,
                Some(
                    "verify with the CA that issued it, or re-issue with `regkit certs site \
                     --ca-cert CA --ca-key KEY`"
                        .into(),
                ),
            )
        }
        #[allow(deprecated)]
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
            let (what, cmd) = match usage {
                Usage::Server => ("TLS servers (serverAuth)", "regkit certs site --san ..."),
                Usage::Client => ("TLS clients (clientAuth)", "regkit certs client --name ..."),
            };
            Problem::new(
                ProblemKind::WrongUsage,
                format!("the certificate's extendedKeyUsage does not allow {what}"),
                Some(format!("re-issue it with `{cmd}`")),
            )
        }
        W::CaUsedAsEndEntity => Problem::new(
            ProblemKind::NotALeaf,
            "this is a CA certificate, not a site certificate",
            Some("issue a site certificate with `regkit certs site --san ...`".into()),
        ),
        W::NameConstraintViolation => Problem::new(
            ProblemKind::NameConstraints,
            constraint_violation(cas, leaf).unwrap_or_else(|| {
                "a name in the certificate is outside the CA's name constraints".into()
            }),
            Some("use only names the CA permits, or create a CA that permits them".into()),
        ),
        W::CertExpired { not_after, .. } => Problem::new(
            ProblemKind::Expired,
            format!("a certificate in the chain expired at unix time {}", not_after.as_secs()),
            Some("renew the intermediate, or re-issue from a current CA".into()),
        ),
        other => Problem::new(
            ProblemKind::Other,
            format!("a TLS client rejects the chain: {other}"),
            reissue,
        ),
    }
}

/// Which name of `leaf` breaks which CA's constraints, in words (`DNS:x is outside the CA's
/// name constraints (the CA permits ...)`), when regkit's own check can tell.
fn constraint_violation(cas: &[CertificateDer<'_>], leaf: &CertificateDer<'_>) -> Option<String> {
    let leaf = x509::parse_cert(Path::new("certificate"), leaf).ok()?;
    let dn = x509::dn_from_x509(leaf.subject()).ok()?;
    let sans: Vec<SanEntry> =
        sans_of(&leaf).iter().filter_map(|s| SanEntry::parse(s).ok()).collect();
    cas.iter().find_map(|ca| {
        let ca = x509::parse_cert(Path::new("CA"), ca).ok()?;
        let constraints = Constraints::of_cert(&ca).ok()??;
        match constraints.check_leaf("the CA", &dn, &sans) {
            Err(Error::OutsideConstraints { name, ca, .. }) => {
                Some(format!("{name} is outside the CA's name constraints ({ca})"))
            }
            _ => None,
        }
    })
}

fn name_problem(
    leaf_der: &CertificateDer<'_>,
    leaf: &X509Certificate<'_>,
    name: &str,
) -> Option<Problem> {
    let name = name.trim().trim_start_matches('[').trim_end_matches(']');
    let server_name = match ServerName::try_from(name) {
        Ok(n) => n,
        Err(_) => {
            return Some(Problem::new(
                ProblemKind::NameMismatch,
                format!("{name:?} is neither a valid DNS name nor an IP address"),
                None,
            ));
        }
    };
    let ee = EndEntityCert::try_from(leaf_der).ok()?;
    if ee.verify_is_valid_for_subject_name(&server_name).is_ok() {
        return None;
    }
    let existing = sans_of(leaf);
    let kind_word = if name.parse::<IpAddr>().is_ok() { "IP" } else { "DNS" };
    let mut all: Vec<String> = existing
        .iter()
        .map(|s| s.split_once(':').map_or(s.clone(), |(_, v)| v.to_string()))
        .collect();
    all.push(name.to_string());
    let has = if existing.is_empty() { "none".to_string() } else { existing.join(", ") };
    Some(Problem::new(
        ProblemKind::NameMismatch,
        format!("the certificate has no {kind_word} SAN {name} (it has: {has})"),
        Some(format!("re-issue with `regkit certs site --san {} --force`", all.join(","))),
    ))
}

/// The DNS and IP SANs of a certificate, as `DNS:x` / `IP:y`.
pub fn sans_of(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else { return vec![] };
    san.value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(format!("DNS:{d}")),
            GeneralName::IPAddress(b) => ip_from_bytes(b).map(|ip| format!("IP:{ip}")),
            _ => None,
        })
        .collect()
}

/// Decodes a 4- or 16-byte IP SAN.
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::pki::{CaOptions, CaPaths, SanEntry, SiteOptions, create_ca, issue_site};

    fn kinds(p: &[Problem]) -> Vec<ProblemKind> {
        p.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn reports_time_name_and_ca_problems_together() {
        let dir = tempfile::tempdir().unwrap();
        let ca = create_ca(&CaOptions { dir: dir.path().into(), days: 100, ..Default::default() })
            .unwrap();
        let site = issue_site(&SiteOptions {
            ca: CaPaths { cert: ca.cert.clone(), key: ca.key.clone() },
            dir: dir.path().into(),
            sans: SanEntry::parse_list(&["reg.lan,::1"]).unwrap(),
            days: 30,
            ..Default::default()
        })
        .unwrap();
        let cas = x509::read_certs(&ca.cert).unwrap();
        let chain = x509::read_certs(&site.cert).unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(verify_chain(&cas, &chain, Some("reg.lan"), now).is_empty());
        assert!(verify_chain(&cas, &chain, Some("[::1]"), now).is_empty());

        let later = verify_chain(&cas, &chain, Some("10.0.0.1"), now + Duration::days(200));
        assert_eq!(
            kinds(&later),
            [ProblemKind::Expired, ProblemKind::CaExpired, ProblemKind::NameMismatch]
        );
        assert!(later[2].message.contains("no IP SAN 10.0.0.1"), "{}", later[2]);
        let fix = later[0].clone().with_cert_path("pki/site.crt").fix.unwrap();
        assert_eq!(fix, "renew it with `regkit certs renew pki/site.crt`");

        let early = verify_chain(&cas, &chain, None, now - Duration::days(1));
        assert_eq!(kinds(&early), [ProblemKind::NotYetValid]);
        assert_eq!(kinds(&verify_chain(&cas, &[], None, now)), [ProblemKind::Unreadable]);
        let client = verify_chain_for(&cas, &chain, None, Usage::Client, now);
        assert_eq!(kinds(&client), [ProblemKind::WrongUsage]);
    }
}
