//! `regkit certs`: arguments and glue over [`crate::pki`]. Parsing, password input and
//! printing live here; every decision about certificates lives in the library.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use time::OffsetDateTime;

use super::output::{note, warn};
use super::{Status, password};
use crate::pki::{self, KeyType, SanEntry};

/// Certificate subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a private CA: ca.crt (0644) and ca.key (0600).
    #[command(after_help = "Examples:\n  \
  regkit certs ca\n  \
  regkit certs ca --out /etc/regkit/pki --cn 'Lab CA' --key-type rsa-3072\n  \
  regkit certs ca --permit-dns registry.lan --permit-ip 10.0.0.0/8   # may only sign these")]
    Ca(CaArgs),
    /// Issue a site (server) certificate: site.crt, site.key (0600), site.fullchain.crt.
    #[command(after_help = "Examples:\n  \
  regkit certs site --san registry.lan,192.168.1.102\n  \
  regkit certs site --san DNS:registry.lan --san IP:10.0.0.5 --san ::1\n  \
  regkit certs site --san '*.lab.lan' --p12 site.p12 --p12-password-stdin < pw.txt\n  \
  regkit certs site --ca-cert root-ca.crt --ca-key root-ca.key --san reg.lan   # openssl CA")]
    Site(SiteArgs),
    /// Issue a client certificate (client.cert, client.key) for Docker's certs.d.
    #[command(after_help = "Examples:\n  \
  regkit certs client --name alice\n  \
  cp pki/clients/alice/client.* /etc/docker/certs.d/registry.lan:5000/")]
    Client(ClientArgs),
    /// Re-issue a certificate with the same subject and SANs and a new validity.
    #[command(after_help = "Examples:\n  \
  regkit certs renew pki/site.crt\n  \
  regkit certs renew pki/site.crt --new-key --days 365\n  \
  regkit certs renew r.crt --san 10.0.0.5          # also valid for 10.0.0.5\n\
Renewing replaces the files (no --force needed); the previous ones are kept as *.bak,\n\
replacing older *.bak files. The CA must be the one that issued CERT (see --new-issuer).")]
    Renew(RenewArgs),
    /// Sign a CSR made elsewhere (same extensions as `site`).
    #[command(after_help = "Examples:\n  \
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout r.key \\\n    \
  -subj /CN=registry.lan -addext subjectAltName=DNS:registry.lan -out r.csr\n  \
  regkit certs sign --csr r.csr --out r.crt\n  \
  regkit certs sign --csr r.csr --san 10.0.0.5     # add SANs the CSR lacks")]
    Sign(SignArgs),
    /// Show a certificate file, or every certificate a TLS server presents.
    #[command(after_help = "Examples:\n  \
  regkit certs inspect pki/site.crt\n  \
  regkit certs inspect https://registry.lan:5000 --json")]
    Inspect(InspectArgs),
    /// Verify a certificate as a TLS client does (exit 0 valid, 1 invalid, 2 error).
    #[command(after_help = "Examples:\n  \
  regkit certs verify --ca pki/ca.crt pki/site.crt --host registry.lan\n  \
  regkit certs verify --ca pki/ca.crt pki/site.fullchain.crt --host 192.168.1.102 --json")]
    Verify(VerifyArgs),
}

/// The CA to sign with.
#[derive(Debug, Args)]
pub struct CaSource {
    /// CA certificate (PEM).
    #[arg(long, value_name = "FILE", default_value = "pki/ca.crt")]
    ca_cert: PathBuf,
    /// CA private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", default_value = "pki/ca.key")]
    ca_key: PathBuf,
}

impl CaSource {
    fn paths(&self) -> pki::CaPaths {
        pki::CaPaths { cert: self.ca_cert.clone(), key: self.ca_key.clone() }
    }
}

/// Arguments of `certs ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "pki")]
    out: PathBuf,
    /// Key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096.
    #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// Subject common name (default: "regkit private CA" and a random tag).
    #[arg(long)]
    cn: Option<String>,
    /// Subject organisation.
    #[arg(long)]
    org: Option<String>,
    /// Lifetime in days.
    #[arg(long, default_value_t = 3650)]
    days: u32,
    /// Path length constraint (0: may sign only leaf certificates).
    #[arg(long, value_name = "N", default_value_t = 0)]
    path_len: u8,
    /// Name constraint: the CA may only sign names in this domain (repeatable, comma lists).
    #[arg(long, value_name = "DOMAIN")]
    permit_dns: Vec<String>,
    /// Name constraint: the CA may only sign IPs in this range (repeatable, CIDR).
    #[arg(long, value_name = "CIDR")]
    permit_ip: Vec<String>,
    /// Replace an existing CA.
    #[arg(long)]
    force: bool,
    /// Print the written paths as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// PKCS#12 export flags.
#[derive(Debug, Args)]
pub struct P12Args {
    /// Also write a PKCS#12 bundle (key + certificate + CA) to FILE (0600).
    #[arg(long, value_name = "FILE")]
    p12: Option<PathBuf>,
    /// Read the PKCS#12 password from the first line of stdin (otherwise: prompt).
    #[arg(long, requires = "p12")]
    p12_password_stdin: bool,
}

/// Arguments of `certs site`.
#[derive(Debug, Args)]
pub struct SiteArgs {
    #[command(flatten)]
    ca: CaSource,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "pki")]
    out: PathBuf,
    /// Subject alternative name: DNS name, *.wildcard, IPv4 or IPv6, also DNS:/IP: form
    /// (repeatable, comma lists). At least one is required.
    #[arg(long, value_name = "NAME", required = true)]
    san: Vec<String>,
    /// Subject common name (default: the first SAN).
    #[arg(long)]
    cn: Option<String>,
    /// Subject organisation.
    #[arg(long)]
    org: Option<String>,
    /// Key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096.
    #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// Lifetime in days (825 is the most Apple clients accept).
    #[arg(long, default_value_t = pki::leaf::LEAF_DAYS)]
    days: u32,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    p12: P12Args,
    /// Print the written paths as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `certs client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    ca: CaSource,
    /// The user the certificate identifies (subject CN).
    #[arg(long, value_name = "USER")]
    name: String,
    /// Output directory (default: pki/clients/USER).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Key type: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096.
    #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// Lifetime in days.
    #[arg(long, default_value_t = pki::leaf::LEAF_DAYS)]
    days: u32,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    p12: P12Args,
    /// Print the written paths as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `certs renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The certificate to renew.
    cert: PathBuf,
    /// Its private key (default: the certificate path with .key).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    #[command(flatten)]
    ca: CaSource,
    /// New lifetime in days (default: the old certificate's lifetime).
    #[arg(long)]
    days: Option<u32>,
    /// Generate a new private key too.
    #[arg(long)]
    new_key: bool,
    /// Type of the new key (default: same family as the old one).
    #[arg(long, value_name = "TYPE", requires = "new_key")]
    key_type: Option<KeyType>,
    /// SANs to add to the certificate's own (repeatable, comma lists).
    #[arg(long, value_name = "NAME")]
    san: Vec<String>,
    /// Sign with --ca-cert/--ca-key even though that CA did not issue the certificate.
    #[arg(long)]
    new_issuer: bool,
    /// Print the written paths as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `certs sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The certificate signing request (PEM or DER).
    #[arg(long, value_name = "FILE")]
    csr: PathBuf,
    /// Output certificate (default: the CSR path with .crt).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Extra SANs to add to those in the CSR (repeatable, comma lists).
    #[arg(long, value_name = "NAME")]
    san: Vec<String>,
    #[command(flatten)]
    ca: CaSource,
    /// Lifetime in days.
    #[arg(long, default_value_t = pki::leaf::LEAF_DAYS)]
    days: u32,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Print the written paths as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `certs inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A PEM/DER certificate file, or https://host:port of a TLS server.
    target: String,
    /// JSON output (an array, one object per certificate).
    #[arg(long)]
    json: bool,
}

/// Arguments of `certs verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The CA certificate(s) to trust (PEM).
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The certificate (PEM; leaf first, intermediates may follow).
    cert: PathBuf,
    /// The DNS name or IP address clients will connect to.
    #[arg(long, value_name = "NAME|IP")]
    host: Option<String>,
    /// Check a client certificate (clientAuth) instead of a server certificate.
    #[arg(long)]
    client: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Runs a `certs` subcommand.
pub fn run(cmd: Command) -> anyhow::Result<Status> {
    match cmd {
        Command::Ca(a) => run_ca(a),
        Command::Site(a) => run_site(a),
        Command::Client(a) => run_client(a),
        Command::Renew(a) => {
            let opts = pki::RenewOptions {
                ca: a.ca.paths(),
                cert: a.cert,
                key: a.key,
                days: a.days,
                new_key: a.new_key,
                key_type: a.key_type,
                extra_sans: SanEntry::parse_list(&a.san)?,
                new_issuer: a.new_issuer,
            };
            report(&pki::renew(&opts)?, a.json, "renewed")
        }
        Command::Sign(a) => {
            let opts = pki::SignOptions {
                ca: a.ca.paths(),
                csr: a.csr,
                out: a.out,
                extra_sans: SanEntry::parse_list(&a.san)?,
                days: a.days,
                force: a.force,
            };
            report(&pki::sign_csr(&opts)?, a.json, "signed")
        }
        Command::Inspect(a) => run_inspect(a),
        Command::Verify(a) => run_verify(a),
    }
}

fn run_ca(a: CaArgs) -> anyhow::Result<Status> {
    let opts = pki::CaOptions {
        dir: a.out,
        key_type: a.key_type,
        cn: a.cn,
        org: a.org,
        days: a.days,
        path_len: a.path_len,
        permit_dns: a.permit_dns,
        permit_ip: a.permit_ip,
        force: a.force,
        not_before: None,
    };
    let files = pki::create_ca(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&files)?);
    } else {
        note(&format!(
            "created CA {} and key {} (0600); expires {}",
            files.cert.display(),
            files.key.display(),
            files.not_after
        ));
    }
    Ok(Status::Ok)
}

fn run_site(a: SiteArgs) -> anyhow::Result<Status> {
    let sans = SanEntry::parse_list(&a.san)?;
    let p12 = p12_request(&a.p12)?;
    let opts = pki::SiteOptions {
        ca: a.ca.paths(),
        dir: a.out,
        sans,
        cn: a.cn,
        org: a.org,
        key_type: a.key_type,
        days: a.days,
        force: a.force,
        p12,
        not_before: None,
    };
    report(&pki::issue_site(&opts)?, a.json, "issued")
}

fn run_client(a: ClientArgs) -> anyhow::Result<Status> {
    let p12 = p12_request(&a.p12)?;
    let dir = a.out.unwrap_or_else(|| pki::leaf::client_dir(Path::new("pki"), &a.name));
    let opts = pki::ClientOptions {
        ca: a.ca.paths(),
        dir,
        name: a.name,
        key_type: a.key_type,
        days: a.days,
        force: a.force,
        p12,
    };
    report(&pki::issue_client(&opts)?, a.json, "issued")
}

fn p12_request(a: &P12Args) -> anyhow::Result<Option<pki::P12Request>> {
    let Some(path) = &a.p12 else { return Ok(None) };
    let source = password::Source::from_flags(a.p12_password_stdin, None);
    let what = format!("PKCS#12 password for {}", path.display());
    let password = password::read_with(source, &what, true, "--p12-password-stdin")?;
    Ok(Some(pki::P12Request { path: path.clone(), password }))
}

fn report(files: &pki::IssuedFiles, json: bool, verb: &str) -> anyhow::Result<Status> {
    for w in &files.warnings {
        warn(w);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(files)?);
        return Ok(Status::Ok);
    }
    let mut line = format!("{verb} {}", files.cert.display());
    if !files.sans.is_empty() {
        line.push_str(&format!(" for {}", files.sans.join(", ")));
    }
    line.push_str(&format!("; expires {}", files.not_after));
    note(&line);
    if let Some(k) = &files.key {
        note(&format!("  key:        {} (0600)", k.display()));
    }
    if let Some(c) = &files.fullchain {
        note(&format!("  full chain: {}", c.display()));
    }
    if let Some(p) = &files.p12 {
        note(&format!("  PKCS#12:    {} (0600)", p.display()));
    }
    for b in &files.backups {
        note(&format!("  previous:   {}", b.display()));
    }
    Ok(Status::Ok)
}

fn run_inspect(a: InspectArgs) -> anyhow::Result<Status> {
    let is_url = a.target.starts_with("https://") || a.target.starts_with("http://");
    let infos = if is_url {
        pki::inspect_url(&a.target)?
    } else {
        pki::inspect_file(Path::new(&a.target))?
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(Status::Ok);
    }
    for (i, c) in infos.iter().enumerate() {
        if infos.len() > 1 {
            println!("Certificate {} of {}:", i + 1, infos.len());
        }
        let left = if c.days_left < 0 {
            format!("EXPIRED {} days ago", -c.days_left)
        } else {
            format!("{} days left", c.days_left)
        };
        let subject =
            if c.subject.is_empty() { "(empty: the names are the SANs)" } else { &c.subject };
        println!("  Subject:      {subject}");
        println!(
            "  Issuer:       {}{}",
            c.issuer,
            if c.self_signed { " (self-signed)" } else { "" }
        );
        println!("  Serial:       {}", c.serial);
        println!("  Valid:        {} to {} ({left})", c.not_before, c.not_after);
        println!("  SANs:         {}", join_or_none(&c.sans));
        println!("  Key usage:    {}", join_or_none(&c.key_usage));
        println!("  Ext. usage:   {}", join_or_none(&c.extended_key_usage));
        let bc = match &c.basic_constraints {
            Some(b) if b.ca => format!(
                "CA:TRUE{}{}",
                b.path_len.map(|n| format!(", pathlen:{n}")).unwrap_or_default(),
                if b.critical { " (critical)" } else { "" }
            ),
            Some(b) => format!("CA:FALSE{}", if b.critical { " (critical)" } else { "" }),
            None => "none".into(),
        };
        println!("  Basic constr: {bc}");
        println!("  Key:          {} {} bits", c.key_type, c.key_bits);
        println!("  SHA-256:      {}", c.sha256_fingerprint);
    }
    Ok(Status::Ok)
}

fn join_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn run_verify(a: VerifyArgs) -> anyhow::Result<Status> {
    let usage = if a.client { pki::Usage::Client } else { pki::Usage::Server };
    let problems =
        pki::verify_files(&a.ca, &a.cert, a.host.as_deref(), usage, OffsetDateTime::now_utc())?;
    let valid = problems.is_empty();
    if a.json {
        let out = serde_json::json!({
            "cert": a.cert,
            "ca": a.ca,
            "host": a.host,
            "valid": valid,
            "problems": problems,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if valid {
        let what = a.host.map(|h| format!(" for {h}")).unwrap_or_default();
        println!("OK: {} is valid{what} (issued by {})", a.cert.display(), a.ca.display());
    } else {
        println!("INVALID: {}", a.cert.display());
        for p in &problems {
            println!("  - {p}");
        }
    }
    Ok(if valid { Status::Ok } else { Status::Problems })
}
