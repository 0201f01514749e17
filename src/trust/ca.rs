//! `CaBundle`: the CA certificate(s) to distribute, read from PEM and checked before anything
//! is written. It refuses input holding a private key (a trust file is world-readable) and
//! re-encodes the certificates, so what lands on nodes is exactly the certificates and
//! nothing else. Equality is on DER, so an installed file is "ours" whatever its line endings.

use std::path::Path;

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Error;

/// One or more CA certificates, as DER, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    certs: Vec<Vec<u8>>,
    not_ca: Vec<String>,
}

impl CaBundle {
    /// Parses PEM text; `origin` names the input in errors.
    pub fn from_pem(pem: &[u8], origin: &Path) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Ca { path: origin.to_path_buf(), reason: reason.into() };
        if PrivateKeyDer::from_pem_slice(pem).is_ok() {
            return Err(bad(
                "contains a PRIVATE KEY; give the CA certificate only (e.g. ca.crt, not ca.key)",
            ));
        }
        let mut certs = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let der = item.map_err(|e| bad(&format!("is not valid PEM: {e}")))?;
            certs.push(der.as_ref().to_vec());
        }
        if certs.is_empty() {
            return Err(bad("holds no PEM CERTIFICATE block"));
        }
        let mut not_ca = Vec::new();
        for der in &certs {
            let (_, cert) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| bad(&format!("holds a certificate that does not parse: {e}")))?;
            if !cert.is_ca() {
                not_ca.push(cert.subject().to_string());
            }
        }
        Ok(CaBundle { certs, not_ca })
    }

    /// Reads and parses a PEM file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let pem = crate::files::read(path)?;
        Self::from_pem(&pem, path)
    }

    /// Subjects of certificates without `basicConstraints CA:TRUE` (clients will not accept
    /// them as trust anchors for a chain; worth a warning).
    pub fn not_ca_subjects(&self) -> &[String] {
        &self.not_ca
    }

    /// The certificates as PEM, 64-column base64, one block each.
    pub fn to_pem(&self) -> Vec<u8> {
        let mut out = String::new();
        for der in &self.certs {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            // The base64 alphabet is ASCII, so every 64-byte chunk is valid UTF-8.
            for line in b64.as_bytes().chunks(64) {
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out.into_bytes()
    }

    /// True when `pem` holds exactly these certificates (in any PEM formatting).
    pub fn same_as_pem(&self, pem: &[u8]) -> bool {
        let found: Result<Vec<Vec<u8>>, _> =
            CertificateDer::pem_slice_iter(pem).map(|c| c.map(|d| d.as_ref().to_vec())).collect();
        found.is_ok_and(|f| f == self.certs)
    }
}
