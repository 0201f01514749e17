//! `regkit doctor`: arguments and glue over [`crate::doctor`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Status, password};
use crate::doctor::{self, Credentials, Options, Target};

/// Arguments of `regkit doctor`.
#[derive(Debug, Args)]
#[command(after_help = "Checks what a Docker, containerd or Podman client checks, in order: TCP \
connect, TLS handshake, certificate validity, host name/IP against the SANs, trust (--ca, the \
certs.d directories for this exact host:port, the system roots), GET /v2/, the API version \
header, the auth challenge and, with --user, the credentials. Each failure shows what the \
client prints, the cause and the fix.

The verdict is for a client on this machine, as configured under --root: exit 0 only when \
one of Docker, containerd or Podman here would pull. So a chain that verifies with --ca still \
fails when no client here trusts that CA for this host:port (the fix is `regkit trust \
install`), an http:// registry fails unless a client here is set up for plain HTTP (dockerd \
is by default for 127.0.0.0/8 and localhost, as long as its daemon.json parses), and a \
registry that asks for a login fails unless --user is given and accepted. --assume-trusted \
judges as if the clients trusted --ca (or allowed plain HTTP), to check another node's view \
from here.

Examples:
  regkit doctor https://192.168.1.102:5000
  regkit doctor https://registry.example.com --ca pki/ca.crt
  regkit doctor https://registry.example.com --ca pki/ca.crt --assume-trusted
  printf '%s\\n' \"$PASS\" | regkit doctor https://10.0.0.5:5000 --user ci --password-stdin
  regkit doctor http://10.0.0.5:5000 --json

Exit status: 0 a client here would succeed, 1 a check failed, 2 usage error.")]
pub struct DoctorArgs {
    /// The registry: https://HOST:PORT, http://HOST:PORT, or HOST[:PORT] (https).
    pub url: String,
    /// A CA certificate (PEM) the clients are meant to trust, instead of looking it up.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A user whose credentials to test (password from --password-stdin).
    #[arg(long, short = 'u', requires = "password_stdin")]
    pub user: Option<String>,
    /// Read the password for --user from the first line of standard input.
    #[arg(long, requires = "user")]
    pub password_stdin: bool,
    /// Judge as if the clients trusted --ca (or, for http://, were set up for plain HTTP),
    /// instead of by this machine's certs.d and client configuration.
    #[arg(long)]
    pub assume_trusted: bool,
    /// Root of the filesystem whose certs.d directories and system roots are read.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Seconds to wait for connecting and for each read.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs the doctor and prints the report on stdout.
pub fn run(args: DoctorArgs) -> anyhow::Result<Status> {
    let target: Target = args.url.parse()?;
    if args.timeout == 0 {
        anyhow::bail!("--timeout must be at least 1 second");
    }
    let mut opts = Options::new(target);
    opts.ca = args.ca;
    opts.root = args.root;
    opts.timeout = Duration::from_secs(args.timeout);
    opts.assume_trusted = args.assume_trusted;
    if let Some(user) = args.user {
        let password = password::read(password::Source::Stdin, "password", false)?;
        if password.is_empty() {
            anyhow::bail!("--password-stdin: standard input held no password");
        }
        opts.credentials = Some(Credentials { user, password });
    }
    let report = doctor::diagnose(&opts)?;
    if args.json {
        println!("{}", doctor::report::render_json(&report));
    } else {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal();
        print!("{}", doctor::report::render_text(&report, color));
    }
    Ok(if report.ok { Status::Ok } else { Status::Problems })
}
