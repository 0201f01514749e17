//! Certificates for keys regkit did not just generate: `sign` (a CSR made elsewhere, under
//! the same extension policy as `site`) and `renew` (the same subject and SANs with a new
//! validity, optionally a new key or more SANs, keeping the previous files as `*.bak`; by the
//! same CA unless a new issuer is asked for).

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, GeneralName};

use super::ca::LoadedCa;
use super::keys::{self, KeyType};
use super::leaf::{CaPaths, IssuedFiles, LEAF_DAYS, LeafPolicy, sign_leaf};
use super::verify::{Usage, ip_from_bytes};
use super::x509::{self, ForeignPublicKey};
use super::{Error, SanEntry};
use crate::files::{self, FileSet, MODE_PRIVATE, MODE_PUBLIC};

/// What `regkit certs sign` asks for.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The signing CA.
    pub ca: CaPaths,
    /// The CSR (PEM or DER).
    pub csr: PathBuf,
    /// Output certificate (default: the CSR path with `.crt`).
    pub out: Option<PathBuf>,
    /// SANs added to those in the CSR.
    pub extra_sans: Vec<SanEntry>,
    /// Lifetime in days.
    pub days: u32,
    /// Replace an existing output.
    pub force: bool,
}

/// What `regkit certs renew` asks for.
#[derive(Debug, Clone)]
pub struct RenewOptions {
    /// The signing CA.
    pub ca: CaPaths,
    /// The certificate to renew.
    pub cert: PathBuf,
    /// Its key (default: `site.crt` → `site.key`, `client.cert` → `client.key`).
    pub key: Option<PathBuf>,
    /// New lifetime in days (default: the old certificate's lifetime).
    pub days: Option<u32>,
    /// Generate a new key as well.
    pub new_key: bool,
    /// Type of the new key (default: the old key's type).
    pub key_type: Option<KeyType>,
    /// SANs to add to those of the old certificate.
    pub extra_sans: Vec<SanEntry>,
    /// Sign with `ca` even though it did not issue the old certificate.
    pub new_issuer: bool,
}

/// Signs a CSR under the site policy (serverAuth, SANs from the CSR plus `extra_sans`).
pub fn sign_csr(opts: &SignOptions) -> Result<IssuedFiles, Error> {
    let out = opts.out.clone().unwrap_or_else(|| opts.csr.with_extension("crt"));
    files::refuse_existing([out.as_path()], opts.force)?;
    let bad = |reason: String| Error::BadCsr { path: opts.csr.clone(), reason };
    let data = files::read(&opts.csr)?;
    let der = match CertificateSigningRequestDer::from_pem_slice(&data) {
        Ok(d) => d.as_ref().to_vec(),
        Err(_) if data.first() == Some(&0x30) => data.clone(),
        Err(_) => return Err(bad("no PEM certificate request found".into())),
    };
    let (_, csr) = X509CertificationRequest::from_der(&der).map_err(|e| bad(e.to_string()))?;
    csr.verify_signature().map_err(|_| bad("the request's signature does not verify".into()))?;
    let info = &csr.certification_request_info;
    let dn = x509::dn_from_x509(&info.subject).map_err(|e| bad(e.to_string()))?;
    let public_key = ForeignPublicKey::from_spki(&info.subject_pki).map_err(bad)?;
    let mut sans = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for g in &san.general_names {
                let entry = general_name_to_san(g).map_err(bad)?;
                if !sans.contains(&entry) {
                    sans.push(entry);
                }
            }
        }
    }
    for s in &opts.extra_sans {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    if sans.is_empty() {
        return Err(bad("it has no subjectAltName; add names with --san".into()));
    }
    let ca = opts.ca.load()?;
    let policy = LeafPolicy { usage: Usage::Server, rsa: public_key.is_rsa() };
    let signed = sign_leaf(&ca, dn, &sans, policy, None, opts.days, &public_key)?;
    files::write_atomic(&out, signed.pem.as_bytes(), MODE_PUBLIC)?;
    Ok(IssuedFiles {
        cert: out,
        sans: sans.iter().map(ToString::to_string).collect(),
        not_after: x509::rfc3339(signed.not_after),
        warnings: signed.warnings,
        ..Default::default()
    })
}

/// Re-issues `opts.cert` with the same subject, SANs (plus `extra_sans`) and usage and a new
/// validity, signed by the CA that issued it (another only with `new_issuer`). Renewing means
/// replacing, so no `--force` is needed: the certificate (and key with `new_key`, and the
/// `.fullchain.crt` beside it) are replaced, the old ones kept as `*.bak`, replacing any
/// older `*.bak`. Everything is written to temporary files first and then renamed into
/// place one by one, so a failure before the renames leaves every old file untouched.
pub fn renew(opts: &RenewOptions) -> Result<IssuedFiles, Error> {
    let old_der = x509::read_cert(&opts.cert)?;
    let old = x509::parse_cert(&opts.cert, &old_der)?;
    let bad = |reason: String| Error::BadCertificate { path: opts.cert.clone(), reason };
    if old.is_ca() {
        return Err(bad(
            "this is a CA certificate; create a new CA with `regkit certs ca --force`".into(),
        ));
    }
    let dn = x509::dn_from_x509(old.subject()).map_err(|e| bad(e.to_string()))?;
    let mut sans = Vec::new();
    if let Ok(Some(san)) = old.subject_alternative_name() {
        for g in &san.value.general_names {
            sans.push(general_name_to_san(g).map_err(bad)?);
        }
    }
    for s in &opts.extra_sans {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    let usage = match old.extended_key_usage() {
        Ok(Some(eku)) if eku.value.client_auth && !eku.value.server_auth => Usage::Client,
        _ => Usage::Server,
    };
    if usage == Usage::Server && sans.is_empty() {
        return Err(bad("it has no SAN to keep; add names with --san".into()));
    }
    let old_days = (old.validity().not_after.to_datetime()
        - old.validity().not_before.to_datetime())
    .whole_days();
    let days = opts.days.unwrap_or_else(|| u32::try_from(old_days).unwrap_or(LEAF_DAYS).max(1));
    let key_path = opts.key.clone().unwrap_or_else(|| default_key_path(&opts.cert));
    let old_public = ForeignPublicKey::from_spki(old.public_key()).map_err(bad)?;
    // The key must belong to the certificate, or the renewed pair would be useless too.
    let old_key = if key_path.exists() {
        let k = keys::load_key(&key_path)?;
        if !keys::key_matches(&k, &old.public_key().subject_public_key.data) {
            return Err(Error::KeyMismatch { key: key_path, cert: opts.cert.clone() });
        }
        Some(k)
    } else {
        None
    };
    if opts.new_key && old_key.is_none() {
        return Err(files::Error::io(
            "cannot read",
            &key_path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
        .into());
    }
    let ca = opts.ca.load()?;
    if !opts.new_issuer {
        check_issuer(&opts.cert, &old, &ca)?;
    }

    let mut set = FileSet::new();
    let mut backups = Vec::new();
    let backup = |set: &mut FileSet, path: &Path, mode: u32, backups: &mut Vec<PathBuf>| {
        let bak = bak_path(path);
        set.add(&bak, &files::read(path)?, mode)?;
        backups.push(bak);
        Ok::<(), Error>(())
    };
    backup(&mut set, &opts.cert, MODE_PUBLIC, &mut backups)?;
    let signed = if opts.new_key {
        let kt = opts.key_type.unwrap_or(if old_public.is_rsa() {
            KeyType::Rsa2048
        } else {
            KeyType::EcdsaP256
        });
        let key = kt.generate()?;
        let policy = LeafPolicy { usage, rsa: keys::is_rsa_key(&key) };
        let signed = sign_leaf(&ca, dn, &sans, policy, None, days, &key)?;
        backup(&mut set, &key_path, MODE_PRIVATE, &mut backups)?;
        set.add(&key_path, key.serialize_pem().as_bytes(), MODE_PRIVATE)?;
        signed
    } else {
        let policy = LeafPolicy { usage, rsa: old_public.is_rsa() };
        sign_leaf(&ca, dn, &sans, policy, None, days, &old_public)?
    };
    set.add(&opts.cert, signed.pem.as_bytes(), MODE_PUBLIC)?;
    let chain_path = fullchain_path(&opts.cert);
    let fullchain = if chain_path.exists() {
        backup(&mut set, &chain_path, MODE_PUBLIC, &mut backups)?;
        set.add(&chain_path, format!("{}{}", signed.pem, ca.cert_pem()).as_bytes(), MODE_PUBLIC)?;
        Some(chain_path)
    } else {
        None
    };
    set.commit()?;
    Ok(IssuedFiles {
        cert: opts.cert.clone(),
        key: opts.new_key.then_some(key_path),
        fullchain,
        p12: None,
        backups,
        sans: sans.iter().map(ToString::to_string).collect(),
        not_after: x509::rfc3339(signed.not_after),
        warnings: signed.warnings,
    })
}

/// Renewing under another CA would silently move the certificate to a CA its clients may not
/// trust: the old certificate's signature must verify with `ca`'s key and its issuer name must
/// be `ca`'s subject.
fn check_issuer(
    cert_path: &Path,
    old: &x509_parser::prelude::X509Certificate<'_>,
    ca: &LoadedCa,
) -> Result<(), Error> {
    let ca_cert = x509::parse_cert(&ca.cert_path, &ca.cert_der)?;
    let same_name = old.issuer().as_raw() == ca_cert.subject().as_raw();
    if same_name && old.verify_signature(Some(ca_cert.public_key())).is_ok() {
        return Ok(());
    }
    let mut ca_subject = ca_cert.subject().to_string();
    if same_name {
        ca_subject.push_str(", the same name but a different key");
    }
    Err(Error::OtherIssuer {
        cert: cert_path.to_path_buf(),
        issuer: old.issuer().to_string(),
        ca: ca.cert_path.clone(),
        ca_subject,
    })
}

fn general_name_to_san(g: &GeneralName<'_>) -> Result<SanEntry, String> {
    match g {
        GeneralName::DNSName(d) => SanEntry::parse(&format!("DNS:{d}")).map_err(|e| e.to_string()),
        GeneralName::IPAddress(b) => {
            ip_from_bytes(b).map(SanEntry::Ip).ok_or_else(|| "malformed IP SAN".to_string())
        }
        other => Err(format!("unsupported SAN {other} (regkit issues DNS and IP SANs only)")),
    }
}

fn default_key_path(cert: &Path) -> PathBuf {
    cert.with_extension("key")
}

fn fullchain_path(cert: &Path) -> PathBuf {
    let stem = cert.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    cert.with_file_name(format!("{stem}.fullchain.crt"))
}

fn bak_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".bak");
    path.with_file_name(name)
}
