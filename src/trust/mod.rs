//! Client trust: put a private CA where each container client on a node looks for it, take it
//! away again, or pack it into a bundle a node installs without regkit.
//!
//! Layout: [`host`] parses `HOST[:PORT]`, [`ca`] reads the CA, one file per client says where
//! that client looks ([`docker`], [`containerd`], [`containers`] for Podman/CRI-O/skopeo,
//! [`k3s`] with its in-place editor [`k3s_text`], [`system`]), [`plan`] turns a selection
//! into steps and applies them ([`prune`] says which emptied directories go), and [`bundle`]
//! writes the node archive with its `install.sh`. Dependencies run one way: `plan` and
//! `bundle` call the client files, never the reverse. Files are written through
//! [`crate::files`], all-or-nothing.
//!
//! How uninstall knows what install wrote, without a state file: a CA file is removed only when
//! it holds exactly the given CA, `hosts.toml` only when it is byte-for-byte what install
//! writes, and from k3s's `registries.yaml` only the `ca_file` line install added (parents it
//! emptied go too; [`k3s_text`] edits the file in place, so comments stay). Anything else is
//! left in place and reported. Directories left empty go as far as [`prune`] allows.

use std::path::PathBuf;

use thiserror::Error;

pub mod bundle;
pub mod ca;
pub mod containerd;
pub mod containers;
pub mod docker;
pub mod host;
pub mod k3s;
pub mod k3s_text;
pub mod plan;
pub mod prune;
pub mod system;
pub mod yaml;

pub use bundle::write as write_bundle;
pub use ca::CaBundle;
pub use host::RegistryHost;
pub use plan::{Change, Plan, Report};

/// Errors from the trust area.
#[derive(Debug, Error)]
pub enum Error {
    /// `--registry` is not a usable `HOST[:PORT]`.
    #[error("--registry {value:?} {reason}")]
    Registry {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file cannot be used.
    #[error("CA file {}: {reason}", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A destination already holds something else; install does not overwrite it unasked.
    #[error("{} already exists with different content{detail} (pass --force to replace it)",
        path.display())]
    Conflict {
        /// The file in the way.
        path: PathBuf,
        /// Extra detail, starting with ", " when present.
        detail: String,
    },
    /// An existing configuration file cannot be parsed or merged.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No registry address was given.
    #[error("no registry given (--registry HOST[:PORT])")]
    NoRegistry,
    /// No client was selected.
    #[error("no client selected")]
    NothingSelected,
    /// A command such as `update-ca-certificates` failed or is missing.
    #[error("{command}: {reason}")]
    Command {
        /// The command line.
        command: String,
        /// What happened.
        reason: String,
    },
    /// File output failed.
    #[error(transparent)]
    Files(#[from] crate::files::Error),
}

/// A client whose trust files regkit manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Client {
    /// Docker Engine: `/etc/docker/certs.d/<host[:port]>/ca.crt`.
    Docker,
    /// containerd (and Kubernetes nodes using it): `/etc/containerd/certs.d/<host[:port]>/`.
    Containerd,
    /// Podman, CRI-O, Buildah and skopeo: `/etc/containers/certs.d/<host[:port]>/ca.crt`.
    Podman,
    /// k3s/RKE2 agents: `/etc/rancher/k3s/registries.yaml`.
    K3s,
    /// The operating system store (Debian family): `/usr/local/share/ca-certificates/`.
    System,
}

impl Client {
    /// Every client, in the order steps are planned.
    pub const ALL: [Client; 5] =
        [Client::Docker, Client::Containerd, Client::Podman, Client::K3s, Client::System];

    /// The lower-case name used in output and flags.
    pub fn name(self) -> &'static str {
        match self {
            Client::Docker => "docker",
            Client::Containerd => "containerd",
            Client::Podman => "podman",
            Client::K3s => "k3s",
            Client::System => "system",
        }
    }
}

/// Which clients to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Docker.
    pub docker: bool,
    /// containerd.
    pub containerd: bool,
    /// Podman / CRI-O / skopeo.
    pub podman: bool,
    /// k3s.
    pub k3s: bool,
    /// The system store.
    pub system: bool,
}

impl Selection {
    /// The default: every client except the system store.
    pub fn default_clients() -> Self {
        Selection { docker: true, containerd: true, podman: true, k3s: true, system: false }
    }

    /// True when `client` is selected.
    pub fn has(&self, client: Client) -> bool {
        match client {
            Client::Docker => self.docker,
            Client::Containerd => self.containerd,
            Client::Podman => self.podman,
            Client::K3s => self.k3s,
            Client::System => self.system,
        }
    }

    /// The selected clients in planning order.
    pub fn clients(&self) -> Vec<Client> {
        Client::ALL.into_iter().filter(|c| self.has(*c)).collect()
    }
}
