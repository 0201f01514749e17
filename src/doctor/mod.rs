//! `regkit doctor`: checks a registry address the way a Docker, containerd or Podman client
//! would, step by step, and for every problem says what the client would print, why, and which
//! regkit command fixes it.
//!
//! The steps run in the order a client meets them: TCP connect ([`transport`], which also
//! judges a plain HTTP registry against the clients' configuration read by [`insecure`]), the
//! TLS handshake and the certificate checks Go's `crypto/x509` makes ([`tls`], [`chain`],
//! [`verdict`], with the client trust stores read by [`stores`]), then `GET /v2/`, the auth
//! challenge and the credentials ([`http`], and [`token`] for Bearer token servers). Each step
//! appends [`Finding`]s to a [`Report`]; a step that cannot run because an earlier one failed is
//! not reported. The modules depend one way: `mod.rs` calls the step modules, which share
//! [`target`] and [`chain`]; [`report`] only formats. Nothing here writes files, and credentials
//! are only sent over a connection a client would accept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

pub mod chain;
pub mod http;
pub mod insecure;
pub mod report;
pub mod stores;
pub mod target;
pub mod tls;
pub mod token;
pub mod transport;
pub mod verdict;

pub use target::{Scheme, Target};

/// Errors that stop the doctor before it checks anything (bad input, unreadable files).
#[derive(Debug, Error)]
pub enum Error {
    /// The registry address cannot be parsed.
    #[error("invalid registry address {url:?}: {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `--ca` file cannot be read.
    #[error("cannot read CA file {}", path.display())]
    CaRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The `--ca` file holds no usable PEM certificate.
    #[error("{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)", path.display())]
    CaEmpty {
        /// The file.
        path: PathBuf,
    },
    /// `--assume-trusted` for an https address without `--ca`: nothing to assume.
    #[error(
        "--assume-trusted needs --ca for an https:// address: it judges as if the clients \
         trusted that CA"
    )]
    AssumeWithoutCa,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check passed.
    Ok,
    /// A client would fail here.
    Fail,
    /// Clients succeed, but something deserves attention (or some clients fail).
    Warn,
    /// The check could not run or does not apply.
    Skip,
}

/// One step of the diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable identifier for scripts, e.g. `tls.trust`.
    pub check: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// One line saying what was found.
    pub summary: String,
    /// The exact text a Go client (Docker, containerd, Podman) prints for this problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message: Option<String>,
    /// Why it happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The command (usually a regkit one) that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Supporting facts: directories looked at, certificates presented, headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Finding {
    /// A finding with only a status and a summary.
    pub fn new(check: &'static str, status: CheckStatus, summary: impl Into<String>) -> Self {
        Finding {
            check,
            status,
            summary: summary.into(),
            client_message: None,
            cause: None,
            fix: None,
            details: Vec::new(),
        }
    }
    /// Sets what the client prints.
    pub fn client(mut self, message: impl Into<String>) -> Self {
        self.client_message = Some(message.into());
        self
    }
    /// Sets the cause.
    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }
    /// Sets the fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
    /// Adds a detail line.
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

/// Everything the doctor found, in the order the checks ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The address diagnosed, normalised (`https://host:port`).
    pub target: String,
    /// True when a client would succeed (no finding failed).
    pub ok: bool,
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    fn new(target: &Target) -> Self {
        Report { target: target.to_string(), ok: true, findings: Vec::new() }
    }

    /// Appends a finding, keeping [`Report::ok`] up to date.
    pub fn push(&mut self, finding: Finding) {
        if finding.status == CheckStatus::Fail {
            self.ok = false;
        }
        self.findings.push(finding);
    }

    /// The finding for `check`, if that check ran.
    pub fn get(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }

    fn get_mut(&mut self, check: &str) -> Option<&mut Finding> {
        self.findings.iter_mut().find(|f| f.check == check)
    }
}

/// A user name and password to test against the registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (never printed; `Debug` redacts it).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

/// What to diagnose and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The registry address.
    pub target: Target,
    /// A CA certificate file the client is meant to trust (instead of looking it up).
    pub ca: Option<PathBuf>,
    /// Credentials to try, if any.
    pub credentials: Option<Credentials>,
    /// Where the clients' configuration lives (`/` normally; a staging tree in tests).
    pub root: PathBuf,
    /// Bound on connecting and on each read or write.
    pub timeout: Duration,
    /// Judge as if the clients were set up for this registry (trusting `ca`, or allowing plain
    /// HTTP for an `http://` address) instead of by this machine's client configuration:
    /// for checking the view of another node.
    pub assume_trusted: bool,
}

impl Options {
    /// Options for `target` with the defaults: no CA, no credentials, root `/`, 10 s timeout,
    /// judged by this machine's client configuration.
    pub fn new(target: Target) -> Self {
        Options {
            target,
            ca: None,
            credentials: None,
            root: PathBuf::from("/"),
            timeout: Duration::from_secs(10),
            assume_trusted: false,
        }
    }
}

/// Runs every check that applies and returns the report. Errors only for bad input (an
/// unreadable `--ca` file); a registry that misbehaves is a finding, not an error.
///
/// The verdict ([`Report::ok`]) is whether a client on this machine (its configuration read
/// under [`Options::root`]) would succeed: its certs.d trusts the chain (or the system roots
/// do), it is set up for plain HTTP when the registry speaks it, and, when the registry asks
/// for a login, the credentials given work. `--ca` alone is a hypothesis: it says which CA
/// the clients should trust, and the verdict still needs one of them to trust it, unless
/// [`Options::assume_trusted`] says to judge another node's view.
pub fn diagnose(opts: &Options) -> Result<Report, Error> {
    if opts.assume_trusted && opts.ca.is_none() && opts.target.scheme == Scheme::Https {
        return Err(Error::AssumeWithoutCa);
    }
    let given_ca = match &opts.ca {
        Some(path) => Some(load_ca_file(path)?),
        None => None,
    };
    let mut report = Report::new(&opts.target);
    let Some(tcp) = transport::connect(&opts.target, opts.timeout, &mut report) else {
        return Ok(report);
    };
    let ctx = tls::TrustContext::load(opts, given_ca);
    let first = match opts.target.scheme {
        Scheme::Https => match tls::check(opts, &ctx, tcp, &mut report) {
            Some(first) => first,
            None => return Ok(report),
        },
        Scheme::Http => match transport::check_plain(opts, tcp, &mut report) {
            Some(first) => first,
            None => return Ok(report),
        },
    };
    if let Some(date) = first.response.header("date").and_then(http::parse_http_date) {
        annotate_clock(&mut report, date);
    }
    http::check(opts, &first, &ctx, &mut report);
    Ok(report)
}

/// Reads a PEM file of CA certificates as `--ca` gives it.
pub fn load_ca_file(path: &Path) -> Result<Vec<stores::Anchor>, Error> {
    let pem =
        std::fs::read(path).map_err(|source| Error::CaRead { path: path.to_path_buf(), source })?;
    let anchors = stores::anchors_from_pem(&pem, &path.display().to_string());
    if anchors.is_empty() {
        return Err(Error::CaEmpty { path: path.to_path_buf() });
    }
    Ok(anchors)
}

/// Compares the registry's `Date` header with this machine's clock, and when a certificate
/// failed its validity check, says how much of that is clock skew.
fn annotate_clock(report: &mut Report, server_date: i64) {
    let skew = chain::now_unix() - server_date;
    let human = chain::human_duration(skew.unsigned_abs());
    let direction = if skew >= 0 { "ahead of" } else { "behind" };
    let line =
        format!("clock skew: this machine is {human} {direction} the registry's Date header");
    if let Some(validity) = report.get_mut("tls.validity") {
        if validity.status == CheckStatus::Fail {
            validity.details.push(line.clone());
        }
    }
    // HTTP dates have one-second resolution and the request takes time: only flag real skew.
    if skew.abs() > 60 {
        report.push(
            Finding::new("clock", CheckStatus::Warn, line)
                .cause(
                    "certificate validity is judged by the client's clock; a skewed clock makes a \
                     valid certificate look expired or not yet valid",
                )
                .fix(
                    "synchronise the clocks (timedatectl set-ntp true, or chrony/ntpd) on this \
                     machine and the registry host",
                ),
        );
    } else {
        report.push(Finding::new("clock", CheckStatus::Ok, line));
    }
}
