//! `regkit trust`: arguments and glue over [`crate::trust`] (install, uninstall, bundle).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Status;
use super::output::{note, warn};
use crate::trust::{self, CaBundle, Plan, RegistryHost, Report, Selection};

/// Trust subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put the CA where Docker, containerd, Podman/CRI-O/skopeo, k3s (and the system store)
    /// look for it.
    #[command(after_help = "Examples:\n  \
        regkit trust install --ca pki/ca.crt --registry reg.example.com:5000\n  \
        regkit trust install --ca pki/ca.crt --registry 10.0.0.7:5000 --dry-run\n  \
        regkit trust install --ca pki/ca.crt --registry reg.example.com --podman --system\n  \
        regkit trust install --ca pki/ca.crt --registry '[fd00::7]:5000' --root ./stage --json\n  \
        regkit trust install --ca pki/ca.crt --registry reg.lan:5000 \\\n      \
        --registry 10.0.0.5:30500 --registry reg.lan   # every address nodes pull through\n\n\
        Files (HOST[:PORT] as in image names; port 443 is left out, as Docker does):\n  \
        docker      /etc/docker/certs.d/HOST[:PORT]/ca.crt\n  \
        containerd  /etc/containerd/certs.d/HOST[:PORT]/{hosts.toml,ca.crt}\n  \
        podman      /etc/containers/certs.d/HOST[:PORT]/ca.crt   (also CRI-O, skopeo, buildah)\n  \
        k3s         /etc/rancher/k3s/registries.yaml (merged) + /etc/rancher/k3s/registry-ca/\n  \
        system      /usr/local/share/ca-certificates/regkit-HOST_PORT.crt + update-ca-certificates\n\
        Running it again changes nothing.")]
    Install(InstallArgs),
    /// Remove what `install` wrote (only files that still hold this CA, only regkit's key in
    /// registries.yaml), then the directories that leaves empty.
    #[command(after_help = "Examples:\n  \
        regkit trust uninstall --ca pki/ca.crt --registry reg.example.com:5000\n  \
        regkit trust uninstall --ca pki/ca.crt --registry reg.example.com:5000 --dry-run\n\n\
        Directories left empty are removed too, walking up; these are never removed: /etc,\n\
        /usr, /usr/local, /usr/local/share, /usr/local/share/ca-certificates and the clients'\n\
        own /etc/docker, /etc/containerd, /etc/containers, /etc/rancher, /etc/rancher/k3s.\n\
        Exit status 1 when a file was left because it is not what install writes.")]
    Uninstall(UninstallArgs),
    /// Write a .tar.gz with the trust files and an install.sh a node runs without regkit.
    #[command(after_help = "Examples:\n  \
        regkit trust bundle --ca pki/ca.crt --registry reg.example.com:5000 --out node-trust.tar.gz\n  \
        regkit trust bundle --ca pki/ca.crt --registry reg.lan:5000 \\\n      \
        --registry reg.lan:30500 --registry reg.lan --out node-trust.tar.gz\n\n\
        On each node:\n  \
        tar xzf node-trust.tar.gz && sh regkit-trust-*/install.sh          (as root)\n  \
        sh regkit-trust-*/install.sh --dry-run | --root DIR | --uninstall")]
    Bundle(BundleArgs),
}

/// The CA and the registry every subcommand needs.
#[derive(Debug, Args)]
pub struct Target {
    /// The CA certificate (PEM; several certificates allowed, private keys refused).
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The registry as image names spell it: HOST, HOST:PORT, IP:PORT or [IPv6]:PORT.
    /// Repeat it for every address nodes pull through (NodePort, Ingress host, ...): clients
    /// look trust up per exact address.
    #[arg(long, value_name = "HOST[:PORT]", required = true)]
    registry: Vec<String>,
}

/// Client selection; none given means every client except the system store.
#[derive(Debug, Args)]
pub struct Clients {
    /// Docker Engine.
    #[arg(long)]
    docker: bool,
    /// containerd (hosts.toml).
    #[arg(long)]
    containerd: bool,
    /// Podman, CRI-O, Buildah and skopeo (/etc/containers/certs.d).
    #[arg(long)]
    podman: bool,
    /// k3s / RKE2 (registries.yaml).
    #[arg(long)]
    k3s: bool,
    /// The system store (Debian family; runs update-ca-certificates when --root is /).
    #[arg(long)]
    system: bool,
    /// Every client, the system store included.
    #[arg(long, conflicts_with_all = ["docker", "containerd", "podman", "k3s", "system"])]
    all: bool,
}

/// `trust install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    clients: Clients,
    /// Install under this directory instead of / (a staging tree).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace files that hold something else.
    #[arg(long)]
    force: bool,
    /// Print what was done as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `trust uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    clients: Clients,
    /// Work under this directory instead of /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print what was done as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `trust bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    clients: Clients,
    /// The archive to write.
    #[arg(long, value_name = "FILE", default_value = "node-trust.tar.gz")]
    out: PathBuf,
    /// Replace an existing archive.
    #[arg(long)]
    force: bool,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a `trust` subcommand.
pub fn run(cmd: Command) -> anyhow::Result<Status> {
    match cmd {
        Command::Install(a) => {
            let (ca, registry) = resolve(&a.target)?;
            check_root(&a.root)?;
            let plan = Plan::install(&ca, &registry, selection(&a.clients), &a.root, a.force)?;
            finish(plan, a.dry_run, a.json)
        }
        Command::Uninstall(a) => {
            let (ca, registry) = resolve(&a.target)?;
            check_root(&a.root)?;
            let plan = Plan::uninstall(&ca, &registry, selection(&a.clients), &a.root)?;
            finish(plan, a.dry_run, a.json)
        }
        Command::Bundle(a) => {
            let (ca, registry) = resolve(&a.target)?;
            let summary =
                trust::write_bundle(&ca, &registry, selection(&a.clients), &a.out, a.force)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "wrote {} ({} entries under {}/) for {}",
                    a.out.display(),
                    summary.entries.len(),
                    summary.top_dir,
                    summary.registries.join(", ")
                );
                note(&format!(
                    "on each node, as root: tar xzf {} && sh {}/install.sh",
                    a.out.file_name().map_or_else(
                        || a.out.display().to_string(),
                        |n| n.to_string_lossy().into_owned()
                    ),
                    summary.top_dir
                ));
            }
            Ok(Status::Ok)
        }
    }
}

fn resolve(t: &Target) -> anyhow::Result<(CaBundle, Vec<RegistryHost>)> {
    let registry =
        t.registry.iter().map(|r| r.parse()).collect::<Result<Vec<RegistryHost>, _>>()?;
    let ca = CaBundle::read(&t.ca)?;
    for subject in ca.not_ca_subjects() {
        warn(&format!(
            "{} holds {subject}, which is not a CA certificate (no basicConstraints CA:TRUE); \
             clients will not accept it as a trust anchor (make one with: regkit certs ca)",
            t.ca.display()
        ));
    }
    Ok((ca, registry))
}

fn check_root(root: &std::path::Path) -> anyhow::Result<()> {
    if !root.is_dir() {
        anyhow::bail!(
            "--root {} is not a directory (create it first for a staging tree)",
            root.display()
        );
    }
    Ok(())
}

fn selection(c: &Clients) -> Selection {
    if c.all {
        return Selection { docker: true, containerd: true, podman: true, k3s: true, system: true };
    }
    let picked = Selection {
        docker: c.docker,
        containerd: c.containerd,
        podman: c.podman,
        k3s: c.k3s,
        system: c.system,
    };
    if picked.clients().is_empty() { Selection::default_clients() } else { picked }
}

fn finish(plan: Plan, dry_run: bool, json: bool) -> anyhow::Result<Status> {
    let report: Report = if dry_run { plan.preview() } else { plan.apply()? };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in report.lines() {
            println!("{line}");
        }
        for n in &report.notes {
            note(&format!("note: {n}"));
        }
    }
    if report.kept_any() {
        warn(
            "some files were left in place because they are not what `regkit trust install` writes",
        );
        return Ok(Status::Problems);
    }
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The uninstall help names exactly the directories `prune::KEEP` keeps.
    #[test]
    fn uninstall_help_lists_the_kept_directories() {
        let mut cli = super::super::Cli::command();
        let help = cli
            .find_subcommand_mut("trust")
            .and_then(|t| t.find_subcommand_mut("uninstall"))
            .expect("regkit trust uninstall")
            .render_long_help()
            .to_string();
        let list = help
            .split_once("never removed:")
            .and_then(|(_, rest)| rest.split_once("Exit status"))
            .map(|(list, _)| list)
            .unwrap_or_else(|| panic!("no list of kept directories in:\n{help}"));
        let mut listed: Vec<&str> = list
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter_map(|w| w.trim_end_matches('.').strip_prefix('/'))
            .collect();
        let mut keep = crate::trust::prune::KEEP.to_vec();
        listed.sort_unstable();
        keep.sort_unstable();
        assert_eq!(listed, keep, "{help}");
    }
}
