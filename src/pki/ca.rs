//! The certificate authority: creating `ca.crt` + `ca.key`, reusing an existing pair (for
//! `regkit init`), and loading a CA made by regkit or by openssl for signing, with the checks
//! that make a bad CA fail early (not a CA, cannot sign, expired, key does not match).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;

use super::Error;
use super::constraints::{self, Constraints};
use super::keys::{self, KeyType};
use super::x509::{self, parse_cert};
use crate::files::{self, FileSet, MODE_PRIVATE, MODE_PUBLIC};

/// File name of the CA certificate inside the PKI directory.
pub const CA_CERT: &str = "ca.crt";
/// File name of the CA private key inside the PKI directory.
pub const CA_KEY: &str = "ca.key";

/// What `regkit certs ca` (or `regkit init`) asks for.
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// Directory that receives `ca.crt` and `ca.key`.
    pub dir: PathBuf,
    /// Key algorithm and size.
    pub key_type: KeyType,
    /// Subject common name (default: `regkit private CA` plus a random tag, so two regkit CAs
    /// never share a name in one trust store).
    pub cn: Option<String>,
    /// Subject organisation, if any.
    pub org: Option<String>,
    /// Lifetime in days.
    pub days: u32,
    /// basicConstraints pathLenConstraint (0: may sign only leaf certificates).
    pub path_len: u8,
    /// Permitted DNS subtrees (name constraints); empty for none.
    pub permit_dns: Vec<String>,
    /// Permitted IP ranges in CIDR form (name constraints); empty for none.
    pub permit_ip: Vec<String>,
    /// Replace an existing CA.
    pub force: bool,
    /// Start of validity (default: now); tests use it to make expired CAs.
    pub not_before: Option<OffsetDateTime>,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            dir: PathBuf::from("pki"),
            key_type: KeyType::default(),
            cn: None,
            org: None,
            days: 3650,
            path_len: 0,
            permit_dns: Vec::new(),
            permit_ip: Vec::new(),
            force: false,
            not_before: None,
        }
    }
}

/// Where a CA lives and when it expires.
#[derive(Debug, Clone, Serialize)]
pub struct CaFiles {
    /// The CA certificate (PEM).
    pub cert: PathBuf,
    /// The CA private key (PEM PKCS#8, 0600).
    pub key: PathBuf,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// False when an existing CA was reused.
    pub created: bool,
}

/// Creates a new CA in `opts.dir`. Fails if either file exists, unless `opts.force`.
pub fn create_ca(opts: &CaOptions) -> Result<CaFiles, Error> {
    let cert_path = opts.dir.join(CA_CERT);
    let key_path = opts.dir.join(CA_KEY);
    files::refuse_existing([cert_path.as_path(), key_path.as_path()], opts.force)?;
    let constraints = constraints::build(&opts.permit_dns, &opts.permit_ip)?;
    let cn = match &opts.cn {
        Some(cn) if cn.trim().is_empty() => {
            return Err(Error::Invalid("--cn must not be empty".into()));
        }
        Some(cn) => cn.trim().to_string(),
        None => format!("regkit private CA {}", hex::encode(rand::random::<[u8; 3]>())),
    };
    let (not_before, not_after) = x509::validity(opts.not_before, opts.days)?;

    let key = opts.key_type.generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(org) = opts.org.as_deref().filter(|o| !o.trim().is_empty()) {
        params.distinguished_name.push(DnType::OrganizationName, org.trim());
    }
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(opts.path_len));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.name_constraints = constraints;
    params.serial_number = Some(x509::random_serial());
    params.not_before = not_before;
    params.not_after = not_after;
    // SHA-1 style 160-bit identifiers from SHA-256 (RFC 7093 method 1).
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&key)?;

    let mut set = FileSet::new();
    set.add(&key_path, key.serialize_pem().as_bytes(), MODE_PRIVATE)?;
    set.add(&cert_path, cert.pem().as_bytes(), MODE_PUBLIC)?;
    set.commit()?;
    Ok(CaFiles {
        cert: cert_path,
        key: key_path,
        not_after: x509::rfc3339(not_after),
        created: true,
    })
}

/// Reuses the CA in `opts.dir` when both files exist and load cleanly (and `force` is off);
/// otherwise creates one. Fails when only one of the two files exists.
pub fn ensure_ca(opts: &CaOptions) -> Result<CaFiles, Error> {
    let cert_path = opts.dir.join(CA_CERT);
    let key_path = opts.dir.join(CA_KEY);
    if opts.force {
        return create_ca(opts);
    }
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let ca = load_ca(&cert_path, &key_path)?;
            Ok(CaFiles {
                cert: cert_path,
                key: key_path,
                not_after: x509::rfc3339(ca.not_after),
                created: false,
            })
        }
        (false, false) => create_ca(opts),
        (true, false) => Err(files::Error::Exists { path: cert_path }.into()),
        (false, true) => Err(files::Error::Exists { path: key_path }.into()),
    }
}

/// A CA ready to sign: its certificate, key and the checks already done.
#[derive(Debug)]
pub struct LoadedCa {
    /// Where the certificate came from.
    pub cert_path: PathBuf,
    /// The CA certificate (DER).
    pub cert_der: CertificateDer<'static>,
    /// The CA key.
    pub key: KeyPair,
    /// End of the CA's validity.
    pub not_after: OffsetDateTime,
    /// Its name constraints, checked before anything is signed.
    pub(crate) constraints: Option<Constraints>,
}

impl LoadedCa {
    /// An rcgen issuer borrowing this CA's key (issuer name and key identifier come from the
    /// certificate, so authorityKeyIdentifier equals the CA's subjectKeyIdentifier).
    pub fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, Error> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, &self.key)?)
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem_cert(&self.cert_der)
    }
}

/// Loads and checks a CA (made by regkit or openssl; RSA or EC; PKCS#1, PKCS#8 or SEC1 key).
pub fn load_ca(cert_path: &Path, key_path: &Path) -> Result<LoadedCa, Error> {
    let cert_der = x509::read_cert(cert_path)?;
    let cert = parse_cert(cert_path, &cert_der)?;
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| Error::BadCertificate { path: cert_path.into(), reason: e.to_string() })?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(Error::NotACa { path: cert_path.into() });
    }
    if let Ok(Some(ku)) = cert.key_usage()
        && !ku.value.key_cert_sign()
    {
        return Err(Error::CaCannotSign { path: cert_path.into() });
    }
    let not_after = cert.validity().not_after.to_datetime();
    if not_after <= OffsetDateTime::now_utc() {
        return Err(Error::CaExpired {
            path: cert_path.into(),
            not_after: x509::rfc3339(not_after),
        });
    }
    let key = keys::load_key(key_path)?;
    if !keys::key_matches(&key, &cert.public_key().subject_public_key.data) {
        return Err(Error::KeyMismatch { key: key_path.into(), cert: cert_path.into() });
    }
    let constraints = Constraints::of_cert(&cert)
        .map_err(|reason| Error::BadCertificate { path: cert_path.into(), reason })?;
    drop(cert);
    Ok(LoadedCa { cert_path: cert_path.into(), cert_der, key, not_after, constraints })
}

/// PEM-encodes one certificate.
pub fn pem_cert(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_then_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let opts = CaOptions { dir: dir.path().to_path_buf(), ..Default::default() };
        let made = create_ca(&opts).unwrap();
        assert!(made.created);
        let ca = load_ca(&made.cert, &made.key).unwrap();
        assert!(ca.not_after > OffsetDateTime::now_utc());
        assert!(create_ca(&opts).unwrap_err().to_string().contains("already exists"));
        assert!(!ensure_ca(&opts).unwrap().created);
    }
}
