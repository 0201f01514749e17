//! Reading certificates and CSRs, plus the pieces every issuing path shares: random serial
//! numbers, validity windows, a public key taken from a CSR or an existing certificate, and
//! the post-signing self-check that a new certificate really chains to its issuer.

use std::path::Path;

use rcgen::{DistinguishedName, DnType, DnValue, PublicKeyData, SerialNumber, SignatureAlgorithm};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::Error;
use crate::files;

/// Reads every certificate in a PEM file (a DER file with one certificate is accepted too).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let data = files::read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::BadCertificate { path: path.to_path_buf(), reason: e.to_string() })?;
    if !certs.is_empty() {
        return Ok(certs);
    }
    if data.first() == Some(&0x30) && parse_cert(path, &data).is_ok() {
        return Ok(vec![CertificateDer::from(data)]);
    }
    Err(Error::NoCertificate { path: path.to_path_buf() })
}

/// Reads the first certificate of a PEM file.
pub fn read_cert(path: &Path) -> Result<CertificateDer<'static>, Error> {
    let mut certs = read_certs(path)?;
    Ok(certs.swap_remove(0))
}

/// Parses DER bytes as an X.509 certificate, naming `path` in the error.
pub fn parse_cert<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::BadCertificate { path: path.to_path_buf(), reason: e.to_string() })
}

/// A random positive serial number with 158 random bits (RFC 5280 allows up to 20 octets;
/// CA/Browser Forum asks for at least 64 random bits). The top bit is cleared so the DER
/// INTEGER stays positive, and the next bit set so the length never shrinks.
pub fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 20] = rand::random();
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// The validity window for a new certificate: from `start` (default: now, less five minutes
/// for clock skew between machines) for `days` days.
pub fn validity(
    start: Option<OffsetDateTime>,
    days: u32,
) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
    if days == 0 {
        return Err(Error::Invalid("--days must be at least 1".into()));
    }
    if days > 36_500 {
        return Err(Error::Invalid("--days must be at most 36500 (100 years)".into()));
    }
    let start = start.unwrap_or_else(|| OffsetDateTime::now_utc() - Duration::minutes(5));
    let start = start.replace_nanosecond(0).unwrap_or(start);
    Ok((start, start + Duration::days(i64::from(days))))
}

/// A public key lifted from a CSR or certificate, usable as the subject key when signing.
#[derive(Debug, Clone)]
pub struct ForeignPublicKey {
    raw: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl ForeignPublicKey {
    /// Takes the public key of a SubjectPublicKeyInfo (RSA, EC P-256 or P-384).
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, String> {
        let alg = match spki.parsed() {
            Ok(PublicKey::RSA(_)) => &rcgen::PKCS_RSA_SHA256,
            Ok(PublicKey::EC(_)) => match curve_name(spki) {
                Some("P-256") => &rcgen::PKCS_ECDSA_P256_SHA256,
                Some("P-384") => &rcgen::PKCS_ECDSA_P384_SHA384,
                _ => return Err("unsupported elliptic curve (use P-256 or P-384)".into()),
            },
            _ => return Err("unsupported public key type (use RSA or ECDSA)".into()),
        };
        Ok(ForeignPublicKey { raw: spki.subject_public_key.data.to_vec(), alg })
    }

    /// True for an RSA key.
    pub fn is_rsa(&self) -> bool {
        self.alg == &rcgen::PKCS_RSA_SHA256
    }
}

impl PublicKeyData for ForeignPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// The NIST name of an EC key's curve, when it is one regkit knows.
pub fn curve_name(spki: &SubjectPublicKeyInfo<'_>) -> Option<&'static str> {
    let params = spki.algorithm.parameters.as_ref()?;
    let oid = params.as_oid().ok()?.to_id_string();
    match oid.as_str() {
        "1.2.840.10045.3.1.7" => Some("P-256"),
        "1.3.132.0.34" => Some("P-384"),
        "1.3.132.0.35" => Some("P-521"),
        _ => None,
    }
}

/// Checks a freshly signed certificate against its issuer: the issuer name must be the CA's
/// subject byte for byte (TLS clients compare bytes) and the signature must verify.
pub fn check_issued(issued: &[u8], ca_der: &[u8]) -> Result<(), Error> {
    let here = Path::new("<new certificate>");
    let leaf = parse_cert(here, issued)?;
    let ca = parse_cert(Path::new("<CA certificate>"), ca_der)?;
    if leaf.issuer().as_raw() != ca.subject().as_raw() {
        return Err(Error::Invalid(
            "the CA subject could not be reproduced exactly in the issuer field".into(),
        ));
    }
    leaf.verify_signature(Some(ca.public_key())).map_err(|e| {
        Error::Invalid(format!("the new certificate does not verify against the CA: {e}"))
    })
}

/// Copies a subject name into rcgen form, keeping each attribute's order and string type so
/// the re-encoded name matches the original (clients compare names byte for byte).
pub fn dn_from_x509(name: &X509Name<'_>) -> Result<DistinguishedName, String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        for attr in rdn.iter() {
            let oid: Vec<u64> =
                attr.attr_type().iter().ok_or("unsupported attribute type")?.collect();
            let data = attr.attr_value().data;
            let text = std::str::from_utf8(data).map_err(|_| "subject text is not UTF-8")?;
            let value = match attr.attr_value().header.tag() {
                Tag::PrintableString => DnValue::PrintableString(
                    text.try_into().map_err(|_| "bad PrintableString in subject")?,
                ),
                Tag::Ia5String => {
                    DnValue::Ia5String(text.try_into().map_err(|_| "bad IA5String in subject")?)
                }
                _ => DnValue::Utf8String(text.to_string()),
            };
            dn.push(DnType::from_oid(&oid), value);
        }
    }
    Ok(dn)
}

/// Formats a time as RFC 3339 (UTC).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Whole days from now until `t` (negative once past).
pub fn days_left(t: OffsetDateTime) -> i64 {
    (t - OffsetDateTime::now_utc()).whole_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_long_and_distinct() {
        let a = random_serial().to_bytes();
        let b = random_serial().to_bytes();
        assert_eq!(a.len(), 20);
        assert_eq!(a[0] & 0xc0, 0x40);
        assert_ne!(a, b);
    }

    #[test]
    fn validity_rejects_zero_days() {
        assert!(validity(None, 0).is_err());
        let (nb, na) = validity(None, 10).unwrap();
        assert_eq!((na - nb).whole_days(), 10);
    }
}
