//! `regkit render`: arguments and glue over [`crate::deploy::render_dir`].

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::Status;
use super::output::{note, warn};

/// Arguments of `regkit render`.
#[derive(Debug, Args)]
#[command(after_help = "\
Regenerates config.yml, docker-compose.yml, README.md and the k8s/ manifests of a deployment
folder from its regkit.yaml, and keeps the k8s/secret-*.yaml files and the trust bundle in step:
when the pull addresses change (hosts, ips, port, node_port, ingress), the pull secret (same
user and password) and trust/node-trust.tar.gz are rebuilt for the new ones; the TLS, htpasswd
and http secrets follow their files. No key, certificate or password is created or changed;
a certificate that does not name a new host is reported with the command that fixes it.
Unchanged files are not rewritten; nothing is written unless every file renders.

Examples:
  regkit render                 # the deployment in the current folder
  regkit render /srv/registry   # another folder
  regkit render --json          # {\"changed\":[...],\"unchanged\":[...],\"removed\":[...],\"warnings\":[...]}")]
pub struct RenderArgs {
    /// The deployment folder (holding regkit.yaml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Print what changed as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `regkit render`.
pub fn run(args: RenderArgs) -> anyhow::Result<Status> {
    let report = crate::deploy::render_dir(&args.dir)
        .with_context(|| format!("cannot render {}", args.dir.display()))?;
    for w in &report.warnings {
        warn(w);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Status::Ok);
    }
    for p in &report.changed {
        note(&format!("updated   {}", args.dir.join(p).display()));
    }
    for p in &report.removed {
        note(&format!("removed   {}", args.dir.join(p).display()));
    }
    if report.changed.is_empty() && report.removed.is_empty() {
        note(&format!(
            "already up to date: {} generated files match regkit.yaml",
            report.unchanged.len()
        ));
    } else {
        note(&format!("{} files unchanged", report.unchanged.len()));
    }
    Ok(Status::Ok)
}
