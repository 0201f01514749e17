//! `regkit init`: arguments, prompts and output over [`crate::deploy::init`]. This file turns
//! flags (or, on a terminal, answers to prompts) into a [`Descriptor`] and a password, names
//! the flag behind any invalid value, and prints the summary and next steps; the folder
//! itself is built by the library.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rand::Rng;

use super::{Status, output, password};
use crate::deploy::descriptor::{Descriptor, Driver, Proxy, S3};
use crate::deploy::init::{self, CaAction, InitOptions, InitReport};
use crate::deploy::{self, layout};
use crate::pki::KeyType;

/// Length of a `--generate-password` password (letters and digits: about 143 bits).
const GENERATED_PASSWORD_LEN: usize = 24;

/// Arguments of `regkit init`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Writes DIR (created when missing): pki/ (CA and site certificate), auth/htpasswd,
auth/http-secret.env, regkit.yaml, config.yml, docker-compose.yml, k8s/ (manifests and
secrets), trust/node-trust.tar.gz and README.md. Everything is built in a temporary folder
first and moved into place only when complete.

A CA already in DIR/pki is reused. Re-running init on a deployment changes nothing (edit
regkit.yaml and run `regkit render` instead). --force regenerates everything, the CA included
(nodes must then trust the new one), unless --keep-ca keeps a valid CA.

On a terminal, a missing host, user or password is prompted for; otherwise pass them.

Examples:
  regkit init /srv/registry --host registry.example.com --ip 192.168.1.10 --user admin
  printf '%s\\n' \"$PW\" | regkit init deploy --host reg.lan --user ci --password-stdin
  regkit init deploy --host reg.lan --user admin --generate-password --json
  regkit init deploy --host reg.lan --user admin --storage s3 --s3-bucket images \\
      --s3-region us-east-1 --s3-endpoint http://minio.lan:9000 --s3-force-path-style
  regkit init deploy --force --keep-ca --host reg.lan --host reg.example.com --user admin")]
pub struct InitArgs {
    /// The deployment folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// A DNS name of the registry (repeatable; the first is the main one). An IP address
    /// given here counts as --ip.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// An IP address of the registry (repeatable).
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<IpAddr>,
    /// Port the registry listens on and docker-compose publishes [default: 5000].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The first registry user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the user's password from the first line of standard input.
    #[arg(long, conflicts_with = "generate_password")]
    pub password_stdin: bool,
    /// Generate a random password and print it once (it is stored only as a bcrypt hash and
    /// inside the pull secret).
    #[arg(long)]
    pub generate_password: bool,
    /// Where images are stored [default: filesystem].
    #[arg(long, value_enum, value_name = "DRIVER")]
    pub storage: Option<StorageArg>,
    /// S3 bucket (with --storage s3).
    #[arg(long, value_name = "NAME")]
    pub s3_bucket: Option<String>,
    /// S3 region (with --storage s3).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Endpoint URL of an S3-compatible store such as MinIO (with --storage s3).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Path prefix inside the bucket, e.g. /registry (with --storage s3).
    #[arg(long, value_name = "PATH")]
    pub s3_root_directory: Option<String>,
    /// Use path-style bucket addressing (MinIO usually needs it).
    #[arg(long)]
    pub s3_force_path_style: bool,
    /// Talk to the S3 endpoint over plain HTTP.
    #[arg(long)]
    pub s3_insecure: bool,
    /// Make a pull-through cache of this upstream registry (e.g. https://registry-1.docker.io).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Kubernetes namespace [default: registry].
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Ingress class (spec.ingressClassName), e.g. nginx or traefik [default: nginx].
    #[arg(long, value_name = "CLASS")]
    pub ingress_class: Option<String>,
    /// Do not generate a Kubernetes Ingress.
    #[arg(long)]
    pub no_ingress: bool,
    /// NodePort of the Kubernetes Service, 30000-32767 [default: 30500].
    #[arg(long, value_name = "PORT")]
    pub node_port: Option<u16>,
    /// Registry container image for docker-compose and Kubernetes [default: registry:2].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Leave localhost, 127.0.0.1 and ::1 out of the site certificate.
    #[arg(long)]
    pub no_local_sans: bool,
    /// Key type of a new CA and of the site certificate: ecdsa-p256, ecdsa-p384, rsa-2048,
    /// rsa-3072 or rsa-4096.
    #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256", value_parser = parse_key_type)]
    pub key_type: KeyType,
    /// Regenerate an existing deployment and overwrite existing files, the CA included.
    #[arg(long)]
    pub force: bool,
    /// With --force: keep a valid CA already in DIR/pki.
    #[arg(long, requires = "force")]
    pub keep_ca: bool,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Storage driver choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageArg {
    /// Local files (a volume, or a PersistentVolumeClaim).
    Filesystem,
    /// An S3-compatible object store.
    S3,
}

/// Runs `regkit init`.
pub fn run(mut args: InitArgs) -> anyhow::Result<Status> {
    let interactive = super::stdin_is_terminal();
    if !args.force && args.dir.join(layout::DESCRIPTOR).exists() {
        return already_initialised(&args);
    }
    if args.hosts.is_empty() && args.ips.is_empty() {
        if !interactive {
            bail!("no registry address: pass --host NAME and/or --ip ADDR");
        }
        let answer = ask("Registry host name or IP address", &default_host())?;
        args.hosts.push(answer);
    }
    let user = match args.user.clone() {
        Some(u) => u,
        None if interactive => ask("First registry user", "admin")?,
        None => bail!("no registry user: pass --user NAME"),
    };
    args.user = Some(user.clone());
    let desc = apply(&args, &Descriptor::new(Vec::new()))?;
    if let Err(bad) = deploy::validate::validate(&desc) {
        bail!("{}: {}", flag_for(&bad.key), bad.message);
    }
    let (password, generated) = if args.generate_password {
        (generate_password(), true)
    } else if args.password_stdin {
        (password::read(password::Source::Stdin, "", false)?, false)
    } else if interactive {
        (password::read(password::Source::Prompt, &format!("password for {user}"), true)?, false)
    } else {
        bail!(
            "no password for {user}: pass --password-stdin (and pipe it in) or \
             --generate-password"
        );
    };
    if password.is_empty() {
        bail!(
            "the password for {user} is empty{}",
            if args.password_stdin { " (the first line of standard input)" } else { "" }
        );
    }
    let opts = InitOptions {
        dir: args.dir.clone(),
        descriptor: desc,
        password,
        key_type: args.key_type,
        force: args.force,
        keep_ca: args.keep_ca,
    };
    let report =
        init::init(&opts).with_context(|| format!("cannot initialise {}", args.dir.display()))?;
    for w in &report.warnings {
        output::warn(w);
    }
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["status"] = (if report.regenerated { "regenerated" } else { "created" }).into();
        if generated {
            v["generated_password"] = opts.password.clone().into();
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Status::Ok);
    }
    if generated {
        println!("Generated password for {user} (shown only now): {}", opts.password);
    }
    summary(&args.dir, &report, &user);
    Ok(Status::Ok)
}

/// The re-run without --force: nothing is written; say so, and name the options that
/// differ from the descriptor (they were not applied).
fn already_initialised(args: &InitArgs) -> anyhow::Result<Status> {
    let path = args.dir.join(layout::DESCRIPTOR);
    let current =
        init::existing(&args.dir)?.with_context(|| format!("{} vanished", path.display()))?;
    // Only what was given on the command line is compared; the rest stays as it is.
    let wanted = apply(args, &current)?;
    let differences = init::differences(&current, &wanted);
    if args.json {
        let v = serde_json::json!({
            "dir": args.dir,
            "status": "unchanged",
            "differences": differences,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(Status::Ok);
    }
    output::note(&format!("already initialised: {} exists; nothing was changed", path.display()));
    if !differences.is_empty() {
        output::warn(&format!(
            "these settings differ from {} and were NOT applied: {}. Edit regkit.yaml and run \
             `regkit render`, or re-run init with --force to regenerate everything (a new CA \
             unless --keep-ca)",
            path.display(),
            differences.join(", ")
        ));
    }
    Ok(Status::Ok)
}

/// `base` with every descriptor option that was given applied to it (hosts and ips replace
/// the base's lists when any is given).
fn apply(args: &InitArgs, base: &Descriptor) -> anyhow::Result<Descriptor> {
    let mut d = base.clone();
    if !args.hosts.is_empty() || !args.ips.is_empty() {
        d.hosts.clear();
        d.ips.clear();
        for h in &args.hosts {
            match h.parse::<IpAddr>() {
                Ok(ip) => d.ips.push(ip),
                Err(_) => d.hosts.push(h.to_ascii_lowercase()),
            }
        }
        d.ips.extend(args.ips.iter().copied());
    }
    if let Some(u) = &args.user {
        d.users = vec![u.clone()];
    }
    d.no_local_sans |= args.no_local_sans;
    set(&mut d.port, args.port);
    set(&mut d.image, args.image.clone());
    let s3_given = args.s3_bucket.is_some()
        || args.s3_region.is_some()
        || args.s3_endpoint.is_some()
        || args.s3_root_directory.is_some()
        || args.s3_force_path_style
        || args.s3_insecure;
    match args.storage {
        Some(StorageArg::Filesystem) if s3_given => bail!("--s3-* options need --storage s3"),
        Some(StorageArg::Filesystem) => {
            d.storage.driver = Driver::Filesystem;
            d.storage.s3 = None;
        }
        Some(StorageArg::S3) => d.storage.driver = Driver::S3,
        None if s3_given && d.storage.driver == Driver::Filesystem => {
            bail!("--s3-* options need --storage s3")
        }
        None => {}
    }
    if d.storage.driver == Driver::S3 {
        let s3 = d.storage.s3.get_or_insert_with(|| S3 {
            bucket: String::new(),
            region: String::new(),
            regionendpoint: None,
            rootdirectory: None,
            forcepathstyle: false,
            secure: true,
        });
        set(&mut s3.bucket, args.s3_bucket.clone());
        set(&mut s3.region, args.s3_region.clone());
        if args.s3_endpoint.is_some() {
            s3.regionendpoint = args.s3_endpoint.clone();
        }
        if args.s3_root_directory.is_some() {
            s3.rootdirectory = args.s3_root_directory.clone();
        }
        s3.forcepathstyle |= args.s3_force_path_style;
        s3.secure &= !args.s3_insecure;
    }
    if let Some(url) = &args.proxy {
        d.proxy = Some(Proxy { remoteurl: url.clone() });
    }
    set(&mut d.kubernetes.namespace, args.namespace.clone());
    set(&mut d.kubernetes.node_port, args.node_port);
    set(&mut d.kubernetes.ingress.class, args.ingress_class.clone());
    if args.no_ingress {
        d.kubernetes.ingress.enabled = false;
    }
    Ok(d)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The command-line flag that sets descriptor key `key` (`hosts[1]` -> `--host`).
fn flag_for(key: &str) -> String {
    let base = key.split('[').next().unwrap_or(key);
    let flag = match base {
        "hosts" => "--host",
        "ips" => "--ip",
        "port" => "--port",
        "users" => "--user",
        "image" => "--image",
        "storage.s3" | "storage.driver" => "--storage",
        "storage.s3.bucket" => "--s3-bucket",
        "storage.s3.region" => "--s3-region",
        "storage.s3.regionendpoint" => "--s3-endpoint",
        "storage.s3.rootdirectory" => "--s3-root-directory",
        "proxy.remoteurl" => "--proxy",
        "kubernetes.namespace" => "--namespace",
        "kubernetes.node_port" => "--node-port",
        "kubernetes.ingress.class" => "--ingress-class",
        _ => return key.to_string(),
    };
    flag.to_string()
}

fn summary(dir: &Path, r: &InitReport, user: &str) {
    let verb = if r.regenerated { "Regenerated" } else { "Created" };
    output::note(&format!(
        "{verb} the deployment in {} for the registry {} ({} files)",
        dir.display(),
        r.address,
        r.written.len()
    ));
    let ca = match r.ca {
        CaAction::Created => "new",
        CaAction::Reused => "reused",
        CaAction::Replaced => "new, replacing the old one",
    };
    output::note(&format!("  CA        pki/ca.crt ({ca}; expires {})", r.ca_not_after));
    output::note(&format!(
        "  site cert pki/site.crt for {} (expires {})",
        r.site_sans.join(", "),
        r.site_not_after
    ));
    output::note(&format!("  user      {user} in auth/htpasswd and k8s/secret-pull.yaml"));
    output::note(&format!(
        "  pulls     {} (pull secret, trust bundle and certificate cover each)",
        r.pull_addresses.join(", ")
    ));
    for p in &r.removed {
        output::note(&format!("  removed   {} (no longer generated)", p.display()));
    }
    let cd =
        if dir == Path::new(".") { String::new() } else { format!("cd {} && ", dir.display()) };
    output::note("Next steps (README.md explains every file):");
    output::note(&format!("  1. Start it:     {cd}docker-compose up -d"));
    output::note(
        "     (or without containers, `regkit serve config.yml`: README.md has the command)",
    );
    output::note(&format!(
        "  2. Trust the CA: copy {} to every node, there run\n       \
         tar xzf node-trust.tar.gz && sudo sh regkit-trust-*/install.sh",
        dir.join(&r.trust_bundle).display()
    ));
    output::note(&format!("  3. Log in:       docker login {} -u {user}", r.address));
    output::note(&format!("  4. Kubernetes:   kubectl apply -k {}", dir.join("k8s").display()));
}

/// Asks on the terminal, showing `default`, which an empty answer takes.
fn ask(question: &str, default: &str) -> anyhow::Result<String> {
    eprint!("{question} [{default}]: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the answer")?;
    let answer = line.trim();
    Ok(if answer.is_empty() { default.to_string() } else { answer.to_string() })
}

/// This machine's host name when it is a usable DNS name, else `localhost`.
fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .ok()
        .filter(|h| deploy::validate::check_host(h).is_ok())
        .unwrap_or_else(|| "localhost".to_string())
}

fn generate_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(GENERATED_PASSWORD_LEN)
        .map(char::from)
        .collect()
}

fn parse_key_type(s: &str) -> Result<KeyType, String> {
    s.parse().map_err(|e: crate::pki::Error| e.to_string())
}
