//! `regkit serve`: arguments and glue over [`crate::registry`]: resolve the configuration,
//! print the warnings the library finds in it (unsupported keys, plain HTTP, open access, a
//! readable key), set up logging, bind, print the listening address and run until
//! SIGTERM/SIGINT.
//!
//! The line `regkit: listening on <scheme>://<ip>:<port>` on stderr is stable: scripts and
//! tests start `regkit serve --addr 127.0.0.1:0` and read the real address from it.

use std::path::PathBuf;

use anyhow::Context;

use super::{Status, output};
use crate::registry::auth::htpasswd::HtpasswdAuth;
use crate::registry::config::{self, LogFormat, Overrides, ServeConfig};
use crate::registry::{self, server};

/// Arguments of `regkit serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  regkit serve          # ./data; TLS from ./pki/site.{crt,key} and auth from ./auth/htpasswd if present
  regkit serve --config /etc/docker/registry/config.yml
  regkit serve --addr :5443 --tls-cert pki/site.crt --tls-key pki/site.key --htpasswd auth/htpasswd
  REGISTRY_STORAGE_DELETE_ENABLED=true regkit serve config.yml
  regkit serve --config config.yml --check --json   # validate and print the effective settings

The configuration is the reference registry's config.yml schema; REGISTRY_* environment
variables override it (REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, ...) and
flags override both. Without TLS the server only binds loopback addresses unless
--insecure-http is given. On start-up it prints `regkit: listening on <url>` on stderr.
SIGHUP reloads the TLS certificate; SIGTERM/SIGINT drain and exit 0.")]
pub struct Args {
    /// config.yml in the reference registry's schema (default: the embedded default).
    #[arg(long, short = 'c', value_name = "FILE", env = "REGISTRY_CONFIGURATION_PATH")]
    config: Option<PathBuf>,
    /// The same as --config, for `regkit serve config.yml` as with `registry serve`.
    #[arg(value_name = "CONFIG", conflicts_with = "config")]
    config_file: Option<PathBuf>,
    /// Address to listen on (`:5000`, `127.0.0.1:5000`, `127.0.0.1:0` for any free port).
    #[arg(long, value_name = "ADDR")]
    addr: Option<String>,
    /// Storage root directory (storage.filesystem.rootdirectory).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// PEM certificate chain to serve (http.tls.certificate).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (http.tls.key).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// htpasswd file of bcrypt entries; enables HTTP Basic auth (auth.htpasswd.path).
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// Allow plain HTTP on an address other machines can reach.
    #[arg(long)]
    insecure_http: bool,
    /// Validate the configuration, print the effective settings and exit.
    #[arg(long)]
    check: bool,
    /// With --check: print the settings as JSON on stdout.
    #[arg(long, requires = "check")]
    json: bool,
}

/// Runs `regkit serve`.
pub fn run(args: Args) -> anyhow::Result<Status> {
    let overrides = Overrides {
        addr: args.addr,
        root: args.root,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        htpasswd: args.htpasswd,
        insecure_http: args.insecure_http,
    };
    let file = args.config.or(args.config_file);
    let cfg = config::load(file.as_deref(), std::env::vars(), &overrides)
        .context("invalid configuration")?;
    if args.check {
        report_warnings(&cfg);
        // Load what start-up would load, so a bad certificate or password file fails here.
        if let Some(tls) = &cfg.tls {
            crate::registry::tls::server_config(tls, cfg.http2)?;
        }
        if let Some(a) = &cfg.auth {
            HtpasswdAuth::open(&a.realm, &a.path)?;
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&cfg.summary())?);
        } else {
            print_summary(&cfg);
        }
        return Ok(Status::Ok);
    }
    init_logging(&cfg);
    report_warnings(&cfg);
    crate::files::create_dir_all(&cfg.storage.root)?;
    server::return_large_buffers_to_the_kernel();
    let state = registry::serve::state(&cfg)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = server::bind(&cfg).await?;
        let local = listener.local_addr().context("cannot read the bound address")?;
        output::note(&format!("regkit: listening on {}", server::base_url(&cfg, local)));
        registry::serve::run(&cfg, state, listener, server::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    output::note("regkit: stopped");
    Ok(Status::Ok)
}

/// Installs the log subscriber from `log.level`/`log.formatter` (`RUST_LOG` wins when set).
/// As with the reference registry, the access log does not depend on `log.level`.
fn init_logging(cfg: &ServeConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},regkit::access=info",
            cfg.log.level.as_str()
        ))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match cfg.log.formatter {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(output::color_enabled()).try_init(),
    };
}

/// Prints each start-up warning the configuration deserves.
fn report_warnings(cfg: &ServeConfig) {
    for w in config::warnings(cfg) {
        output::warn(&w.to_string());
    }
}

fn print_summary(cfg: &ServeConfig) {
    let s = cfg.summary();
    let tls = match &cfg.tls {
        Some(t) => format!("{} + {}", t.certificate.display(), t.key.display()),
        None => "off (plain HTTP)".into(),
    };
    let auth = match &cfg.auth {
        Some(a) => format!("htpasswd {} (realm {:?})", a.path.display(), a.realm),
        None => "none (open registry)".into(),
    };
    println!("configuration OK");
    println!("  addr:    {}", cfg.addr);
    println!("  tls:     {tls}");
    println!(
        "  storage: {} (delete {}, fsync {})",
        cfg.storage.root.display(),
        cfg.storage.delete_enabled,
        cfg.storage.fsync
    );
    println!("  auth:    {auth}");
    println!(
        "  log:     {} {}",
        s["log"]["level"].as_str().unwrap_or(""),
        s["log"]["formatter"].as_str().unwrap_or("")
    );
}
