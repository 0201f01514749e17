//! Describing certificates: from a PEM file, or every certificate a TLS server presents
//! (fetched WITHOUT trusting it: the handshake records the chain and accepts it, which is
//! safe because nothing is sent and the result is only displayed or verified afterwards).

use std::io::Write;
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::prelude::X509Certificate;
use x509_parser::public_key::PublicKey;

use super::verify::sans_of;
use super::{Error, x509};

/// Everything `regkit certs inspect` shows about one certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex with colons.
    pub serial: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Whole days until expiry (negative once expired).
    pub days_left: i64,
    /// Subject alternative names (`DNS:`/`IP:`).
    pub sans: Vec<String>,
    /// keyUsage bits by name, with `critical` when the extension is critical.
    pub key_usage: Vec<String>,
    /// extendedKeyUsage purposes by name.
    pub extended_key_usage: Vec<String>,
    /// basicConstraints: whether it is a CA, and the path length.
    pub basic_constraints: Option<BasicConstraintsInfo>,
    /// Key algorithm, e.g. `ECDSA P-256` or `RSA`.
    pub key_type: String,
    /// Key size in bits.
    pub key_bits: usize,
    /// SHA-256 fingerprint of the DER, hex with colons.
    pub sha256_fingerprint: String,
    /// Issuer equals subject.
    pub self_signed: bool,
}

/// basicConstraints as shown by inspect.
#[derive(Debug, Clone, Serialize)]
pub struct BasicConstraintsInfo {
    /// CA:TRUE.
    pub ca: bool,
    /// pathLenConstraint, if any.
    pub path_len: Option<u32>,
    /// The extension is marked critical.
    pub critical: bool,
}

/// Describes one DER certificate.
pub fn describe(der: &[u8]) -> Result<CertInfo, Error> {
    let cert = x509::parse_cert(Path::new("certificate"), der)?;
    Ok(describe_parsed(&cert, der))
}

/// Describes every certificate in a PEM file.
pub fn inspect_file(path: &Path) -> Result<Vec<CertInfo>, Error> {
    x509::read_certs(path)?
        .iter()
        .map(|der| x509::parse_cert(path, der).map(|c| describe_parsed(&c, der)))
        .collect()
}

/// Describes every certificate the server at `target` presents (`https://host:port`,
/// `host:port` or `host`; port 443 by default).
pub fn inspect_url(target: &str) -> Result<Vec<CertInfo>, Error> {
    fetch_chain(target, Duration::from_secs(10))?.iter().map(|der| describe(der)).collect()
}

/// Connects to `target` (`https://host:port`, `host:port`, `[v6]:port`) and returns the chain
/// the server presents, leaf first, without trusting it.
pub fn fetch_chain(target: &str, timeout: Duration) -> Result<Vec<CertificateDer<'static>>, Error> {
    let (host, port) = split_target(target)?;
    let fail = |reason: String| Error::Fetch { target: format!("{host}:{port}"), reason };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(super::ChainRecorder::new(provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let server_name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.clone()).map_err(|e| fail(e.to_string()))?,
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| fail("the name resolves to no address".into()))?;
    let mut sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(e.to_string()))?;
    sock.set_read_timeout(Some(timeout)).map_err(|e| fail(e.to_string()))?;
    sock.set_write_timeout(Some(timeout)).map_err(|e| fail(e.to_string()))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| fail(e.to_string()))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            // The chain may already be recorded even if the handshake fails later on.
            if recorder.seen().is_empty() {
                return Err(fail(format!("TLS handshake failed: {e} (is it an HTTPS port?)")));
            }
            break;
        }
    }
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    let _ = sock.flush();
    let chain = recorder.seen();
    if chain.is_empty() {
        return Err(fail("the server presented no certificate".into()));
    }
    Ok(chain)
}

fn split_target(target: &str) -> Result<(String, u16), Error> {
    let bad = |reason: &str| Error::Fetch { target: target.into(), reason: reason.into() };
    let rest = target.strip_prefix("https://").unwrap_or(target);
    if rest.starts_with("http://") {
        return Err(bad("plain http has no certificate; use https://"));
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '[' in address"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            _ => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        None => 443,
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host, port))
}

fn describe_parsed(cert: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let not_after = cert.validity().not_after.to_datetime();
    let (key_type, key_bits) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_string(), rsa.key_size()),
        Ok(PublicKey::EC(ec)) => {
            let curve = x509::curve_name(cert.public_key()).unwrap_or("unknown curve");
            (format!("ECDSA {curve}"), ec.key_size())
        }
        _ => (cert.public_key().algorithm.algorithm.to_id_string(), 0),
    };
    let mut key_usage = Vec::new();
    if let Ok(Some(ku)) = cert.key_usage() {
        key_usage = ku.value.to_string().split(", ").map(str::to_string).collect();
        if ku.critical {
            key_usage.insert(0, "critical".into());
        }
    }
    let mut extended_key_usage = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let e = eku.value;
        for (on, name) in [
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
            (e.any, "anyExtendedKeyUsage"),
        ] {
            if on {
                extended_key_usage.push(name.to_string());
            }
        }
        extended_key_usage.extend(e.other.iter().map(|o| o.to_id_string()));
    }
    let basic_constraints =
        cert.basic_constraints().ok().flatten().map(|bc| BasicConstraintsInfo {
            ca: bc.value.ca,
            path_len: bc.value.path_len_constraint,
            critical: bc.critical,
        });
    CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: colon_hex(cert.raw_serial()),
        not_before: x509::rfc3339(cert.validity().not_before.to_datetime()),
        not_after: x509::rfc3339(not_after),
        days_left: x509::days_left(not_after),
        sans: sans_of(cert),
        key_usage,
        extended_key_usage,
        basic_constraints,
        key_type,
        key_bits,
        sha256_fingerprint: colon_hex(&Sha256::digest(der)),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split() {
        assert_eq!(split_target("https://reg.lan:5000/v2/").unwrap(), ("reg.lan".into(), 5000));
        assert_eq!(split_target("reg.lan").unwrap(), ("reg.lan".into(), 443));
        assert_eq!(split_target("[::1]:8443").unwrap(), ("::1".into(), 8443));
        assert!(split_target("http://x").is_err());
        assert!(split_target("x:notaport").is_err());
    }
}
