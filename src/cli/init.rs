//! `regkit init`: arguments, prompts and output over [`crate::deploy::init`]. Flags become
//! [`Choices`] (the library turns them into a descriptor and names the flag behind a bad
//! value); this file asks for missing values on a terminal, reads the password, and prints
//! the summary and next steps.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::{Status, output, password};
use crate::deploy::choices::{self, Choices};
use crate::deploy::descriptor::{Descriptor, Driver};
use crate::deploy::init::{self, CaAction, InitOptions, InitReport};
use crate::deploy::layout;
use crate::pki::KeyType;

/// Arguments of `regkit init`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Writes DIR (created when missing): pki/ (CA and site certificate), auth/htpasswd,
auth/http-secret.env, regkit.yaml, config.yml, docker-compose.yml, k8s/ (manifests and
secrets), trust/node-trust.tar.gz and README.md. Everything is built in a temporary folder
first and moved into place only when complete; if a move fails, what was moved is put back.

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
  regkit init deploy --host reg.lan --user admin --name hub --namespace images \\
      --storage-size 50Gi --storage-class fast-ssd --ingress-class traefik \\
      --max-body-size 5Gi --memory-limit 2Gi --cpu-limit none --restart always
  regkit init deploy --host reg.lan --user admin --no-ingress --http-host https://reg.lan:5000
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
    /// Registry log level (log.level) [default: info].
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug"])]
    pub log_level: Option<String>,
    /// The one external URL the registry writes into absolute Location headers (http.host),
    /// e.g. https://reg.lan (the Ingress) or https://reg.lan:5000; it must be one of the pull
    /// addresses. Unset (the default), each client is answered at the address it used.
    #[arg(long, value_name = "URL")]
    pub http_host: Option<String>,
    /// Make a pull-through cache of this upstream registry (e.g. https://registry-1.docker.io).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// docker-compose restart policy [default: unless-stopped].
    #[arg(long, value_name = "POLICY", value_parser = ["no", "always", "on-failure", "unless-stopped"])]
    pub restart: Option<String>,
    /// Registry container image for docker-compose and Kubernetes [default: registry:2].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Leave localhost, 127.0.0.1 and ::1 out of the site certificate.
    #[arg(long)]
    pub no_local_sans: bool,
    /// Key type of a new CA and of the site certificate: ecdsa-p256, ecdsa-p384, rsa-2048,
    /// rsa-3072 or rsa-4096 [default: ecdsa-p256]. Recorded in regkit.yaml.
    #[arg(long, value_name = "TYPE")]
    pub key_type: Option<KeyType>,
    /// Regenerate an existing deployment and overwrite existing files, the CA included.
    #[arg(long)]
    pub force: bool,
    /// With --force: keep a valid CA already in DIR/pki.
    #[arg(long, requires = "force")]
    pub keep_ca: bool,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    // Grouped (and boxed, to keep the command enum small) under their own help headings.
    #[allow(missing_docs)]
    #[command(flatten)]
    pub storage: Box<StorageArgs>,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub kubernetes: Box<KubernetesArgs>,
}

/// Storage options of `regkit init`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// Where images are stored [default: filesystem].
    #[arg(long = "storage", value_enum, value_name = "DRIVER")]
    pub driver: Option<StorageArg>,
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
    /// Refuse deleting manifests and blobs (storage.delete.enabled: false; default: allowed).
    #[arg(long)]
    pub no_delete: bool,
    /// Never purge abandoned uploads (storage.maintenance.uploadpurging.enabled: false).
    #[arg(long)]
    pub no_upload_purging: bool,
    /// Purge uploads older than this Go duration, e.g. 72h [default: 168h].
    #[arg(long, value_name = "DURATION")]
    pub upload_purging_age: Option<String>,
    /// Look for abandoned uploads this often, e.g. 12h [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub upload_purging_interval: Option<String>,
}

/// Kubernetes options of `regkit init`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubernetesArgs {
    /// Base name of the Kubernetes objects, e.g. hub (hub-tls, hub-pull, ...)
    /// [default: registry].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Kubernetes namespace [default: registry].
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// NodePort of the Kubernetes Service, 30000-32767 [default: 30500].
    #[arg(long, value_name = "PORT")]
    pub node_port: Option<u16>,
    /// Size of the PersistentVolumeClaim, e.g. 50Gi (filesystem storage) [default: 10Gi].
    #[arg(long, value_name = "SIZE")]
    pub storage_size: Option<String>,
    /// StorageClass of the claim, e.g. fast-ssd [default: the cluster's default class].
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Ingress class (spec.ingressClassName), e.g. nginx or traefik [default: nginx].
    #[arg(long, value_name = "CLASS")]
    pub ingress_class: Option<String>,
    /// Host the Ingress answers for, one of the --host names [default: the first --host].
    #[arg(long, value_name = "NAME")]
    pub ingress_host: Option<String>,
    /// Do not generate a Kubernetes Ingress.
    #[arg(long)]
    pub no_ingress: bool,
    /// Largest upload the Ingress lets through, e.g. 5Gi [default: no limit]. nginx gets it
    /// as proxy-body-size; with --ingress-class traefik a Buffering middleware is generated.
    #[arg(long, value_name = "SIZE")]
    pub max_body_size: Option<String>,
    /// CPU request of the registry container, e.g. 250m, or none [default: 100m].
    #[arg(long, value_name = "CPU")]
    pub cpu_request: Option<String>,
    /// Memory request, e.g. 256Mi, or none [default: 128Mi].
    #[arg(long, value_name = "MEMORY")]
    pub memory_request: Option<String>,
    /// CPU limit, e.g. 2, or none [default: none].
    #[arg(long, value_name = "CPU")]
    pub cpu_limit: Option<String>,
    /// Memory limit, e.g. 2Gi, or none [default: 1Gi].
    #[arg(long, value_name = "MEMORY")]
    pub memory_limit: Option<String>,
}

/// Storage driver choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageArg {
    /// Local files (a volume, or a PersistentVolumeClaim).
    Filesystem,
    /// An S3-compatible object store.
    S3,
}

impl InitArgs {
    /// The descriptor options given on the command line.
    fn choices(&self) -> Choices {
        let (st, k) = (&self.storage, &self.kubernetes);
        Choices {
            hosts: self.hosts.clone(),
            ips: self.ips.clone(),
            port: self.port,
            user: self.user.clone(),
            image: self.image.clone(),
            no_local_sans: self.no_local_sans,
            key_type: self.key_type,
            log_level: self.log_level.clone(),
            http_host: self.http_host.clone(),
            storage: st.driver.map(|s| match s {
                StorageArg::Filesystem => Driver::Filesystem,
                StorageArg::S3 => Driver::S3,
            }),
            s3_bucket: st.s3_bucket.clone(),
            s3_region: st.s3_region.clone(),
            s3_endpoint: st.s3_endpoint.clone(),
            s3_root_directory: st.s3_root_directory.clone(),
            s3_force_path_style: st.s3_force_path_style,
            s3_insecure: st.s3_insecure,
            no_delete: st.no_delete,
            no_upload_purging: st.no_upload_purging,
            upload_purging_age: st.upload_purging_age.clone(),
            upload_purging_interval: st.upload_purging_interval.clone(),
            proxy: self.proxy.clone(),
            restart: self.restart.clone(),
            name: k.name.clone(),
            namespace: k.namespace.clone(),
            node_port: k.node_port,
            storage_size: k.storage_size.clone(),
            storage_class: k.storage_class.clone(),
            ingress_class: k.ingress_class.clone(),
            ingress_host: k.ingress_host.clone(),
            no_ingress: k.no_ingress,
            max_body_size: k.max_body_size.clone(),
            cpu_request: k.cpu_request.clone(),
            memory_request: k.memory_request.clone(),
            cpu_limit: k.cpu_limit.clone(),
            memory_limit: k.memory_limit.clone(),
        }
    }
}

/// Runs `regkit init`.
pub fn run(mut args: InitArgs) -> anyhow::Result<Status> {
    let interactive = super::stdin_is_terminal();
    if !args.force
        && let Some(differences) = choices::rerun_differences(&args.dir, &args.choices())?
    {
        return already_initialised(&args, &differences);
    }
    if args.hosts.is_empty() && args.ips.is_empty() {
        if !interactive {
            bail!("no registry address: pass --host NAME and/or --ip ADDR");
        }
        let answer = ask("Registry host name or IP address", &choices::default_host())?;
        args.hosts.push(answer);
    }
    let user = match args.user.clone() {
        Some(u) => u,
        None if interactive => ask("First registry user", "admin")?,
        None => bail!("no registry user: pass --user NAME"),
    };
    args.user = Some(user.clone());
    let desc = args.choices().apply(&Descriptor::new(Vec::new()))?;
    choices::check(&desc)?;
    let (password, generated) = if args.generate_password {
        (choices::generate_password(), true)
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
fn already_initialised(args: &InitArgs, differences: &[String]) -> anyhow::Result<Status> {
    let path = args.dir.join(layout::DESCRIPTOR);
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
    let word = |p: &Path| crate::deploy::escape::shell_word(&p.display().to_string());
    let cd = if dir == Path::new(".") { String::new() } else { format!("cd {} && ", word(dir)) };
    output::note("Next steps (README.md explains every file):");
    output::note(&format!("  1. Start it:     {cd}docker-compose up -d"));
    match &r.regkit_serve_blocker {
        None => output::note(
            "     (or without containers, `regkit serve config.yml`: README.md has the command)",
        ),
        Some(why) => output::note(&format!(
            "     (or without containers, Debian's `docker-registry serve config.yml`: README.md \
             has the command; `regkit serve` does not run {why})"
        )),
    }
    output::note(&format!(
        "  2. Trust the CA: copy {} to every node, there run\n       \
         tar xzf node-trust.tar.gz && sudo sh regkit-trust-*/install.sh",
        dir.join(&r.trust_bundle).display()
    ));
    output::note(&format!(
        "  3. Log in:       docker login {} -u {}",
        r.address,
        crate::deploy::escape::shell_word(user)
    ));
    output::note(&format!("  4. Kubernetes:   kubectl apply -k {}", word(&dir.join("k8s"))));
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
