//! Leaf certificates: `site` (serverAuth, SANs required) and `client` (clientAuth, files
//! named for Docker's certs.d), and the one extension policy every leaf shares, also used by
//! [`super::reissue`] for `sign` and `renew`.

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PublicKeyData,
};
use serde::Serialize;
use time::OffsetDateTime;

use super::ca::{LoadedCa, load_ca, pem_cert};
use super::keys::{self, KeyType};
use super::verify::{self, ProblemKind, Usage};
use super::{Error, SanEntry, p12, x509};
use crate::files::{self, FileSet, MODE_PRIVATE, MODE_PUBLIC};

/// Default lifetime of a leaf certificate: 825 days, the longest Apple platforms accept.
pub const LEAF_DAYS: u32 = 825;

/// A PKCS#12 export request.
#[derive(Debug, Clone)]
pub struct P12Request {
    /// Output file.
    pub path: PathBuf,
    /// Password protecting the bundle.
    pub password: String,
}

/// Where the CA to sign with lives.
#[derive(Debug, Clone)]
pub struct CaPaths {
    /// CA certificate (PEM).
    pub cert: PathBuf,
    /// CA private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for CaPaths {
    fn default() -> Self {
        CaPaths { cert: PathBuf::from("pki/ca.crt"), key: PathBuf::from("pki/ca.key") }
    }
}

impl CaPaths {
    /// Loads and checks the CA.
    pub fn load(&self) -> Result<LoadedCa, Error> {
        load_ca(&self.cert, &self.key)
    }
}

/// What `regkit certs site` asks for.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// The signing CA.
    pub ca: CaPaths,
    /// Output directory for `site.crt`, `site.key`, `site.fullchain.crt`.
    pub dir: PathBuf,
    /// Subject alternative names (at least one).
    pub sans: Vec<SanEntry>,
    /// Subject CN (default: the first DNS SAN; none when there is no DNS SAN, see
    /// [`default_cn`]).
    pub cn: Option<String>,
    /// Subject organisation.
    pub org: Option<String>,
    /// Key algorithm.
    pub key_type: KeyType,
    /// Lifetime in days.
    pub days: u32,
    /// Replace existing files.
    pub force: bool,
    /// Optional PKCS#12 export.
    pub p12: Option<P12Request>,
    /// Start of validity (default: now); tests use it for expired certificates.
    pub not_before: Option<OffsetDateTime>,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            ca: CaPaths::default(),
            dir: PathBuf::from("pki"),
            sans: Vec::new(),
            cn: None,
            org: None,
            key_type: KeyType::default(),
            days: LEAF_DAYS,
            force: false,
            p12: None,
            not_before: None,
        }
    }
}

/// What `regkit certs client` asks for.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The signing CA.
    pub ca: CaPaths,
    /// Output directory for `client.cert` and `client.key`.
    pub dir: PathBuf,
    /// The user name (subject CN).
    pub name: String,
    /// Key algorithm.
    pub key_type: KeyType,
    /// Lifetime in days.
    pub days: u32,
    /// Replace existing files.
    pub force: bool,
    /// Optional PKCS#12 export.
    pub p12: Option<P12Request>,
}

/// The files a command wrote and what the certificate says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IssuedFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// The private key, when one was written.
    pub key: Option<PathBuf>,
    /// Leaf + CA, when written.
    pub fullchain: Option<PathBuf>,
    /// PKCS#12 bundle, when written.
    pub p12: Option<PathBuf>,
    /// Previous files kept as `*.bak` (renew).
    pub backups: Vec<PathBuf>,
    /// SANs in the certificate (`DNS:`/`IP:` form).
    pub sans: Vec<String>,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Things worth telling the user (e.g. validity shortened to the CA's).
    pub warnings: Vec<String>,
}

/// Issues a site (server) certificate.
pub fn issue_site(opts: &SiteOptions) -> Result<IssuedFiles, Error> {
    if opts.sans.is_empty() {
        return Err(Error::NoSan);
    }
    let cert_path = opts.dir.join("site.crt");
    let key_path = opts.dir.join("site.key");
    let chain_path = opts.dir.join("site.fullchain.crt");
    let mut outputs = vec![cert_path.as_path(), key_path.as_path(), chain_path.as_path()];
    if let Some(p) = &opts.p12 {
        outputs.push(p.path.as_path());
    }
    files::refuse_existing(outputs, opts.force)?;
    if let Some(p) = &opts.p12 {
        p12::check_password(&p.path, &p.password)?;
    }
    let ca = opts.ca.load()?;
    let key = opts.key_type.generate()?;
    let mut dn = DistinguishedName::new();
    if let Some(cn) = default_cn(opts.cn.as_deref(), &opts.sans) {
        dn.push(DnType::CommonName, cn);
    }
    if let Some(org) = opts.org.as_deref().filter(|o| !o.trim().is_empty()) {
        dn.push(DnType::OrganizationName, org.trim());
    }
    let policy = LeafPolicy { usage: Usage::Server, rsa: keys::is_rsa_key(&key) };
    let signed = sign_leaf(&ca, dn, &opts.sans, policy, opts.not_before, opts.days, &key)?;

    let mut set = FileSet::new();
    set.add(&key_path, key.serialize_pem().as_bytes(), MODE_PRIVATE)?;
    set.add(&cert_path, signed.pem.as_bytes(), MODE_PUBLIC)?;
    set.add(&chain_path, format!("{}{}", signed.pem, ca.cert_pem()).as_bytes(), MODE_PUBLIC)?;
    let p12 = add_p12(&mut set, opts.p12.as_ref(), &key, &signed.der, &ca, "site")?;
    set.commit()?;
    Ok(IssuedFiles {
        cert: cert_path,
        key: Some(key_path),
        fullchain: Some(chain_path),
        p12,
        backups: vec![],
        sans: opts.sans.iter().map(ToString::to_string).collect(),
        not_after: x509::rfc3339(signed.not_after),
        warnings: signed.warnings,
    })
}

/// Issues a client certificate (`client.cert`, `client.key`, as Docker's certs.d expects).
pub fn issue_client(opts: &ClientOptions) -> Result<IssuedFiles, Error> {
    check_user_name(&opts.name)?;
    let cert_path = opts.dir.join("client.cert");
    let key_path = opts.dir.join("client.key");
    let mut outputs = vec![cert_path.as_path(), key_path.as_path()];
    if let Some(p) = &opts.p12 {
        outputs.push(p.path.as_path());
    }
    files::refuse_existing(outputs, opts.force)?;
    if let Some(p) = &opts.p12 {
        p12::check_password(&p.path, &p.password)?;
    }
    let ca = opts.ca.load()?;
    let key = opts.key_type.generate()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, opts.name.as_str());
    let policy = LeafPolicy { usage: Usage::Client, rsa: keys::is_rsa_key(&key) };
    let signed = sign_leaf(&ca, dn, &[], policy, None, opts.days, &key)?;

    let mut set = FileSet::new();
    set.add(&key_path, key.serialize_pem().as_bytes(), MODE_PRIVATE)?;
    set.add(&cert_path, signed.pem.as_bytes(), MODE_PUBLIC)?;
    let p12 = add_p12(&mut set, opts.p12.as_ref(), &key, &signed.der, &ca, &opts.name)?;
    set.commit()?;
    Ok(IssuedFiles {
        cert: cert_path,
        key: Some(key_path),
        p12,
        not_after: x509::rfc3339(signed.not_after),
        warnings: signed.warnings,
        ..Default::default()
    })
}

/// The extension policy of a leaf certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeafPolicy {
    /// serverAuth or clientAuth.
    pub usage: Usage,
    /// RSA keys also get keyEncipherment (TLS 1.2 RSA key exchange).
    pub rsa: bool,
}

/// A signed leaf certificate.
pub(crate) struct SignedLeaf {
    pub der: Vec<u8>,
    pub pem: String,
    pub not_after: OffsetDateTime,
    pub warnings: Vec<String>,
}

/// Signs a leaf with `ca`: basicConstraints critical CA:FALSE; keyUsage critical
/// digitalSignature (+ keyEncipherment for RSA); EKU; SANs; authority and subject key
/// identifiers; random serial. The result is checked against the CA before it is returned.
pub(crate) fn sign_leaf(
    ca: &LoadedCa,
    dn: DistinguishedName,
    sans: &[SanEntry],
    policy: LeafPolicy,
    not_before: Option<OffsetDateTime>,
    days: u32,
    public_key: &impl PublicKeyData,
) -> Result<SignedLeaf, Error> {
    let (not_before, mut not_after) = x509::validity(not_before, days)?;
    let mut warnings = Vec::new();
    if not_after > ca.not_after {
        // Go checks every certificate of the chain, so a leaf outliving its CA gains nothing.
        not_after = ca.not_after;
        warnings.push(format!(
            "validity shortened to the CA's expiry ({})",
            x509::rfc3339(ca.not_after)
        ));
    }
    if let Some(c) = &ca.constraints {
        c.check_leaf(&ca.cert_path.display().to_string(), &dn, sans)?;
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.subject_alt_names = sans.iter().map(SanEntry::to_rcgen).collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if policy.rsa {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![match policy.usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    params.serial_number = Some(x509::random_serial());
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.signed_by(public_key, &ca.issuer()?)?;
    let der = cert.der().to_vec();
    x509::check_issued(&der, &ca.cert_der)?;
    // Belt and braces after the check above: webpki judges the signed certificate too (it
    // also covers constraint types regkit does not check itself, e.g. directory names).
    let chain = [rustls_pki_types::CertificateDer::from(der.clone())];
    let at = not_before.max(OffsetDateTime::now_utc().min(not_after));
    for p in verify::chain_problems(std::slice::from_ref(&ca.cert_der), &chain, policy.usage, at) {
        if p.kind == ProblemKind::NameConstraints {
            return Err(Error::Invalid(p.message));
        }
    }
    Ok(SignedLeaf { pem: pem_cert(&der), der, not_after, warnings })
}

/// The subject CN of a site certificate: `--cn` when given, else the first DNS SAN, else
/// none. An IP address is never the default CN: with no DNS SAN, OpenSSL checks a CN that looks
/// like a host name (`10.1.2.3` does) against the CA's DNS name constraints, so a
/// name-constrained CA's IP-only certificate would fail `openssl verify`. With no CN and no
/// `--org` the subject is empty and the SAN extension is marked critical (RFC 5280 4.2.1.6).
pub fn default_cn(cn: Option<&str>, sans: &[SanEntry]) -> Option<String> {
    if let Some(cn) = cn.map(str::trim).filter(|c| !c.is_empty()) {
        return Some(cn.to_string());
    }
    sans.iter().find_map(|s| match s {
        SanEntry::Dns(d) => Some(d.clone()),
        SanEntry::Ip(_) => None,
    })
}

fn add_p12(
    set: &mut FileSet,
    req: Option<&P12Request>,
    key: &KeyPair,
    cert_der: &[u8],
    ca: &LoadedCa,
    alias: &str,
) -> Result<Option<PathBuf>, Error> {
    let Some(req) = req else { return Ok(None) };
    let bytes = p12::build(&req.path, key, cert_der, &ca.cert_der, &req.password, alias)?;
    set.add(&req.path, &bytes, MODE_PRIVATE)?;
    Ok(Some(req.path.clone()))
}

fn check_user_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "bad --name {name:?}: use 1-64 letters, digits, '.', '_', '@' or '-'"
        )))
    }
}

/// The default output directory for a client certificate of `name`.
pub fn client_dir(base: &Path, name: &str) -> PathBuf {
    base.join("clients").join(name)
}
