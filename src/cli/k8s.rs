//! `regkit k8s`: arguments and glue over [`crate::k8s`].

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{Status, output, password};
use crate::k8s::{
    self, Change, FileSpec, Format, Object, RegistryCredentials, SourceFile, WriteMode,
};

/// Kubernetes subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write Secret (and ServiceAccount) manifests for a registry, like
    /// `kubectl create secret ... --dry-run=client -o yaml`, without a cluster.
    #[command(subcommand)]
    Secret(SecretCommand),
}

/// `regkit k8s secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// An image pull secret (type kubernetes.io/dockerconfigjson).
    #[command(after_help = "The password is read from a prompt, or from the first line of stdin \
with --password-stdin; it is never taken as an argument.

Examples:
  regkit k8s secret docker-registry regcred --server reg.example:5000 --username ci -n apps
  printf '%s\\n' \"$PW\" | regkit k8s secret docker-registry regcred \\
      --server reg.example:5000 --username ci --password-stdin --out k8s/secrets.yaml
  regkit k8s secret docker-registry regcred --server reg.lan:5000 --server reg.lan:30500 \\
      --server reg.lan --username ci   # one auths entry per address nodes pull through")]
    DockerRegistry {
        /// Secret name (lowercase RFC 1123 subdomain).
        name: String,
        /// Registry address as image references write it (host:port). Repeat it for every
        /// address nodes pull through: each gets its own `auths` entry, same credentials
        /// (one --server gives exactly kubectl's secret).
        #[arg(long, alias = "docker-server", default_value = k8s::DEFAULT_SERVER)]
        server: Vec<String>,
        /// Registry user name.
        #[arg(long, alias = "docker-username")]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// E-mail to record (omitted when not given, as kubectl does).
        #[arg(long, alias = "docker-email")]
        email: Option<String>,
        /// Namespace, format and destination.
        #[command(flatten)]
        out: OutputArgs,
    },
    /// A TLS secret (type kubernetes.io/tls) from a certificate and its key.
    #[command(after_help = "The key must belong to the first certificate in --cert (a chain may \
follow it).

Example:
  regkit k8s secret tls registry-tls --cert pki/site.crt --key pki/site.key -n registry")]
    Tls {
        /// Secret name (lowercase RFC 1123 subdomain).
        name: String,
        /// PEM certificate (server certificate first, then any chain).
        #[arg(long)]
        cert: PathBuf,
        /// PEM private key of that certificate (not encrypted).
        #[arg(long)]
        key: PathBuf,
        /// Namespace, format and destination.
        #[command(flatten)]
        out: OutputArgs,
    },
    /// An Opaque secret from files, e.g. the registry CA bundle.
    #[command(after_help = "Each --from-file is PATH (key = file name), KEY=PATH, or a directory \
(every regular file in it). Keys must match [-._a-zA-Z0-9]+.

Example:
  regkit k8s secret generic registry-ca --from-file ca.crt=pki/ca.crt -n apps")]
    Generic {
        /// Secret name (lowercase RFC 1123 subdomain).
        name: String,
        /// A file to store: [KEY=]PATH (repeatable).
        #[arg(long = "from-file", value_name = "[KEY=]PATH", required = true)]
        from_file: Vec<String>,
        /// Namespace, format and destination.
        #[command(flatten)]
        out: OutputArgs,
    },
    /// A ServiceAccount whose pods pull with the given secrets (imagePullSecrets).
    #[command(after_help = "Pods that set serviceAccountName to it pull with the secrets \
without naming them.

Example:
  regkit k8s secret service-account puller --pull-secret regcred -n apps \\
      --out k8s/secrets.yaml --append")]
    ServiceAccount {
        /// ServiceAccount name (lowercase RFC 1123 subdomain).
        name: String,
        /// A pull secret to reference (repeatable).
        #[arg(long = "pull-secret", value_name = "SECRET", required = true)]
        pull_secret: Vec<String>,
        /// Namespace, format and destination.
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Options shared by every manifest-writing command.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Namespace to put in the manifest (omitted: the namespace kubectl apply uses).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml)]
    output: OutputFormat,
    /// Write to FILE (mode 0600, atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Add to FILE, replacing an object with the same kind, namespace and name; this collects
    /// several objects into one multi-document file (re-rendered, so comments are dropped).
    #[arg(long, requires = "out", conflicts_with = "force")]
    append: bool,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "out")]
    force: bool,
}

/// Manifest format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// YAML (documents separated by ---).
    Yaml,
    /// JSON (a List when there are several objects).
    Json,
}

/// Runs a `k8s` subcommand.
pub fn run(cmd: Command) -> anyhow::Result<Status> {
    match cmd {
        Command::Secret(cmd) => run_secret(cmd),
    }
}

fn run_secret(cmd: SecretCommand) -> anyhow::Result<Status> {
    let (object, out): (Object, OutputArgs) = match cmd {
        SecretCommand::DockerRegistry { name, server, username, password_stdin, email, out } => {
            // Check everything that needs no password before asking for it.
            k8s::validate_name("secret name", &name)?;
            if let Some(ns) = &out.namespace {
                k8s::validate_namespace(ns)?;
            }
            let source = password::Source::from_flags(password_stdin, None);
            let servers = server.join(", ");
            let secret =
                password::read(source, &format!("password of {username} at {servers}"), true)?;
            let creds: Vec<RegistryCredentials<'_>> = server
                .iter()
                .map(|s| RegistryCredentials {
                    server: s,
                    username: &username,
                    password: &secret,
                    email: email.as_deref(),
                })
                .collect();
            (k8s::docker_registry_all(&name, out.namespace.as_deref(), &creds)?.into(), out)
        }
        SecretCommand::Tls { name, cert, key, out } => {
            let cert = SourceFile::read(&cert)?;
            let key = SourceFile::read(&key)?;
            (k8s::tls(&name, out.namespace.as_deref(), &cert, &key)?.into(), out)
        }
        SecretCommand::Generic { name, from_file, out } => {
            k8s::validate_name("secret name", &name)?;
            let mut entries = Vec::new();
            for spec in &from_file {
                entries.extend(FileSpec::parse(spec)?.read()?);
            }
            (k8s::generic(&name, out.namespace.as_deref(), entries)?.into(), out)
        }
        SecretCommand::ServiceAccount { name, pull_secret, out } => {
            let refs: Vec<&str> = pull_secret.iter().map(String::as_str).collect();
            (k8s::service_account(&name, out.namespace.as_deref(), &refs)?.into(), out)
        }
    };
    emit(&[object], &out)
}

fn emit(objects: &[Object], out: &OutputArgs) -> anyhow::Result<Status> {
    let format = match out.output {
        OutputFormat::Yaml => Format::Yaml,
        OutputFormat::Json => Format::Json,
    };
    let Some(path) = &out.out else {
        print!("{}", k8s::render(objects, format)?);
        return Ok(Status::Ok);
    };
    let mode = match (out.append, out.force) {
        (true, _) => WriteMode::Append,
        (false, true) => WriteMode::Replace,
        (false, false) => WriteMode::Create,
    };
    for change in k8s::write(path, objects, format, mode)? {
        match change {
            Change::Added(what) => output::note(&format!("wrote {what} to {}", path.display())),
            Change::Replaced(what) => {
                output::note(&format!("replaced {what} in {}", path.display()))
            }
        }
    }
    Ok(Status::Ok)
}
