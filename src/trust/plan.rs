//! Install and uninstall as a plan: every file a selection touches, what would happen to it
//! and why, computed before anything is written. `--dry-run` prints the plan; applying it
//! stages every write in one [`FileSet`] so a failure leaves nothing half-installed.
//! Conflicts (a destination holding something else) fail the plan before any write unless
//! `force` is given.
//!
//! One plan covers every address the registry is reached by (`reg.lan:5000`, a NodePort
//! `10.0.0.5:30500`, an Ingress host `reg.lan`): clients look trust up per exact
//! `host[:port]` directory, so each address gets its own files. The system store, which is
//! not keyed by address, gets one copy (named after the first address), and k3s's
//! `registries.yaml` one entry per address.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::k3s::{Merge, Unmerge};
use super::{CaBundle, Client, Error, RegistryHost, Selection};
use super::{containerd, containers, docker, k3s, prune, system};
use crate::files::{self, FileSet, MODE_PRIVATE, MODE_PUBLIC};

/// What happens (or happened) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Written where nothing was.
    Create,
    /// Overwritten (only with `force`).
    Replace,
    /// Merged into an existing file, or rewritten with regkit's key removed.
    Update,
    /// Already as wanted.
    Unchanged,
    /// Removed.
    Remove,
    /// Nothing to remove.
    Absent,
    /// Left alone by uninstall because it is not what install writes.
    Kept,
}

impl Change {
    fn verb(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Change::Create, false) => "created",
            (Change::Create, true) => "would create",
            (Change::Replace, false) => "replaced",
            (Change::Replace, true) => "would replace",
            (Change::Update, false) => "updated",
            (Change::Update, true) => "would update",
            (Change::Remove, false) => "removed",
            (Change::Remove, true) => "would remove",
            (Change::Unchanged, _) => "already in place",
            (Change::Absent, _) => "not present",
            (Change::Kept, _) => "left alone",
        }
    }
}

/// One file in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The client the file is for.
    pub client: Client,
    /// The path written, under the root.
    pub path: PathBuf,
    /// The same file's path on the node (the root taken as `/`).
    pub node_path: PathBuf,
    /// What happens to it.
    pub change: Change,
    /// Why, when it is not obvious (e.g. why a file was kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    contents: Option<Vec<u8>>,
    #[serde(skip)]
    mode: u32,
}

/// Whether the system store gets rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreUpdate {
    /// The system store is not involved or nothing changed.
    NotNeeded,
    /// `update-ca-certificates` runs (the root is `/`).
    Run,
    /// A staging root: the node has to run it after the tree is copied.
    LeftToNode,
}

/// Every step of an install or uninstall, computed before anything changes.
#[derive(Debug, Clone)]
pub struct Plan {
    root: PathBuf,
    registries: Vec<RegistryHost>,
    install: bool,
    steps: Vec<Step>,
    store: StoreUpdate,
    notes: Vec<String>,
    /// Directories (relative to the root) uninstall leaves empty and removes ([`prune`]).
    dirs: Vec<PathBuf>,
}

/// What a plan did (or would do), for people and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `install` or `uninstall`.
    pub command: &'static str,
    /// The first registry directory name (`host[:port]`).
    pub registry: String,
    /// Every registry directory name, the first one included.
    pub registries: Vec<String>,
    /// The root the paths are under.
    pub root: PathBuf,
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Every file considered.
    pub files: Vec<Step>,
    /// The system store update.
    pub system_store: StoreUpdate,
    /// Extra instructions (containerd's `config_path`, staging roots, ...).
    pub notes: Vec<String>,
    /// Directories uninstall removed (or would remove) because it left them empty.
    pub removed_dirs: Vec<PathBuf>,
}

impl Report {
    /// One line per file, e.g. `created /etc/docker/certs.d/reg:5000/ca.crt (docker)`.
    pub fn lines(&self) -> Vec<String> {
        let files = self.files.iter().map(|s| {
            let why = s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            format!(
                "{} {} ({}){why}",
                s.change.verb(self.dry_run),
                s.path.display(),
                s.client.name()
            )
        });
        let verb = Change::Remove.verb(self.dry_run);
        let dirs =
            self.removed_dirs.iter().map(|d| format!("{verb} empty directory {}", d.display()));
        files.chain(dirs).collect()
    }

    /// True when uninstall left a file because it was not regkit's.
    pub fn kept_any(&self) -> bool {
        self.files.iter().any(|s| s.change == Change::Kept)
    }
}

/// A file install writes whole, with how to tell an installed copy is the same.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The client.
    pub client: Client,
    /// The path relative to the root.
    pub rel: PathBuf,
    /// The contents.
    pub contents: Vec<u8>,
    /// True for CA files (compared as certificates), false for exact text.
    pub is_ca: bool,
}

/// The whole files `selection` installs for every address in `registries` (everything
/// except k3s's merged `registries.yaml`), address by address in the given order. The system
/// store is not keyed by address: it gets one file, named after the first address.
pub fn desired_files(
    ca: &CaBundle,
    registries: &[RegistryHost],
    selection: Selection,
) -> Vec<Desired> {
    let pem = ca.to_pem();
    let ca_file = |client, rel| Desired { client, rel, contents: pem.clone(), is_ca: true };
    let mut out = Vec::new();
    for (i, registry) in registries.iter().enumerate() {
        for client in selection.clients() {
            match client {
                Client::Docker => out.push(ca_file(client, docker::ca_path(registry))),
                Client::Containerd => {
                    out.push(ca_file(client, containerd::ca_path(registry)));
                    out.push(Desired {
                        client,
                        rel: containerd::hosts_path(registry),
                        contents: containerd::hosts_toml(registry).into_bytes(),
                        is_ca: false,
                    });
                }
                Client::Podman => out.push(ca_file(client, containers::ca_path(registry))),
                Client::K3s => out.push(ca_file(client, k3s::ca_path(registry))),
                Client::System if i == 0 => out.push(ca_file(client, system::ca_path(registry))),
                Client::System => {}
            }
        }
    }
    out
}

/// `registries` without repeats (same directory name), in their first order.
pub fn unique(registries: &[RegistryHost]) -> Vec<RegistryHost> {
    let mut out: Vec<RegistryHost> = Vec::new();
    for r in registries {
        if !out.iter().any(|o| o.authority() == r.authority()) {
            out.push(r.clone());
        }
    }
    out
}

impl Plan {
    /// Plans an install of `ca` for every address in `registries` (at least one; repeats
    /// are dropped) under `root`.
    pub fn install(
        ca: &CaBundle,
        registries: &[RegistryHost],
        selection: Selection,
        root: &Path,
        force: bool,
    ) -> Result<Plan, Error> {
        let mut plan = Plan::empty(registries, selection, root, true)?;
        let registries = plan.registries.clone();
        for d in desired_files(ca, &registries, selection) {
            let path = root.join(&d.rel);
            let change = match std::fs::read(&path) {
                Err(_) => Change::Create,
                Ok(have) if d.is_ca && ca.same_as_pem(&have) => Change::Unchanged,
                Ok(have) if !d.is_ca && have == d.contents => Change::Unchanged,
                Ok(_) if force => Change::Replace,
                Ok(_) => return Err(Error::Conflict { path, detail: String::new() }),
            };
            let mode = files::mode_of(&path).unwrap_or(MODE_PUBLIC);
            plan.push(d.client, &d.rel, change, Some(d.contents), mode, None);
        }
        if selection.k3s {
            let rel = PathBuf::from(k3s::YAML_PATH);
            let path = root.join(&rel);
            let existing = read_optional(&path)?;
            let mode = files::mode_of(&path).unwrap_or(MODE_PRIVATE);
            // One entry per address, merged one after the other into the same text.
            let mut text: Option<String> = None;
            for registry in &registries {
                let current = text.as_deref().or(existing.as_deref());
                match k3s::merge(current, registry, force).map_err(|e| at(e, &path))? {
                    Merge::Unchanged => {}
                    Merge::Write(t) => text = Some(t),
                    Merge::Conflict(other) => {
                        let detail = format!(
                            ", configs.\"{registry}\".tls.ca_file is {other:?}, not {:?}",
                            k3s::ca_file(registry)
                        );
                        return Err(Error::Conflict { path, detail });
                    }
                }
            }
            match text {
                None => plan.push(Client::K3s, &rel, Change::Unchanged, None, mode, None),
                Some(text) => {
                    let change = if existing.is_some() { Change::Update } else { Change::Create };
                    plan.push(Client::K3s, &rel, change, Some(text.into_bytes()), mode, None);
                    plan.notes.push(
                        "k3s reads registries.yaml at start: restart k3s (or k3s-agent)".into(),
                    );
                }
            }
        }
        if selection.containerd {
            plan.notes.extend(containerd::config_note(root));
        }
        plan.decide_store(Client::System);
        Ok(plan)
    }

    /// Plans the removal of what [`Plan::install`] writes for the same inputs.
    pub fn uninstall(
        ca: &CaBundle,
        registries: &[RegistryHost],
        selection: Selection,
        root: &Path,
    ) -> Result<Plan, Error> {
        let mut plan = Plan::empty(registries, selection, root, false)?;
        let registries = plan.registries.clone();
        for d in desired_files(ca, &registries, selection) {
            let path = root.join(&d.rel);
            let (change, reason) = match std::fs::read(&path) {
                Err(_) => (Change::Absent, None),
                Ok(have) if d.is_ca && ca.same_as_pem(&have) => (Change::Remove, None),
                Ok(have) if !d.is_ca && have == d.contents => (Change::Remove, None),
                Ok(_) if d.is_ca => (Change::Kept, Some("holds a different certificate".into())),
                Ok(_) => (Change::Kept, Some("edited since regkit wrote it".into())),
            };
            // A config file goes only with the CA beside it: if that CA is another one, this
            // install is not the one that wrote it.
            let ca_kept = plan.steps.iter().any(|s| {
                s.client == d.client && s.change == Change::Kept && s.path.parent() == path.parent()
            });
            let (change, reason) = match change {
                Change::Remove if !d.is_ca && ca_kept => {
                    (Change::Kept, Some("the CA beside it is a different certificate".into()))
                }
                other => (other, reason),
            };
            plan.push(d.client, &d.rel, change, None, MODE_PUBLIC, reason);
        }
        if selection.k3s {
            plan.uninstall_k3s(&registries, root)?;
        }
        let removed: Vec<PathBuf> = plan
            .steps
            .iter()
            .filter(|s| s.change == Change::Remove)
            .filter_map(|s| s.node_path.strip_prefix("/").ok().map(Path::to_path_buf))
            .collect();
        plan.dirs = prune::emptied(root, &removed);
        plan.decide_store(Client::System);
        Ok(plan)
    }

    /// Takes each address's key out of `registries.yaml`, one after the other. An address
    /// whose key is not regkit's (or whose CA copy holds another CA) is left, and reported
    /// as a second, kept step for the same file.
    fn uninstall_k3s(&mut self, registries: &[RegistryHost], root: &Path) -> Result<(), Error> {
        let rel = PathBuf::from(k3s::YAML_PATH);
        let path = root.join(&rel);
        let mode = files::mode_of(&path).unwrap_or(MODE_PRIVATE);
        let Some(existing) = read_optional(&path)? else {
            self.push(Client::K3s, &rel, Change::Absent, None, mode, None);
            return Ok(());
        };
        let mut text = existing;
        let (mut changed, mut gone) = (false, false);
        let mut kept = Vec::new();
        let mut not_editable = Vec::new();
        for registry in registries {
            // The key goes only with the CA copy it points at: if that copy holds another
            // CA, this install is not the one that wrote the key.
            let copy = root.join(k3s::ca_path(registry));
            let copy_kept = self
                .steps
                .iter()
                .any(|s| s.client == Client::K3s && s.change == Change::Kept && s.path == copy);
            match k3s::unmerge(&text, registry).map_err(|e| at(e, &path))? {
                Unmerge::NotPresent => {}
                Unmerge::Differs(other) => {
                    kept.push(format!("its ca_file for {registry} is {other:?}"))
                }
                Unmerge::NotEditable(why, what) => {
                    not_editable.push((why, what));
                    // The key stays, so the CA copy it points at stays too.
                    for s in self.steps.iter_mut().filter(|s| s.path == copy) {
                        if s.change == Change::Remove {
                            s.change = Change::Kept;
                            s.reason = Some("registries.yaml still points at it".into());
                        }
                    }
                }
                Unmerge::Write(_) | Unmerge::RemoveFile if copy_kept => {
                    kept.push(format!("{} holds a different certificate", k3s::ca_file(registry)))
                }
                Unmerge::Write(t) => (text, changed) = (t, true),
                Unmerge::RemoveFile => (text, changed, gone) = (String::new(), true, true),
            }
        }
        if !not_editable.is_empty() {
            kept.push(k3s::editing_hints(&not_editable));
        }
        match (changed, gone) {
            (true, true) => self.push(Client::K3s, &rel, Change::Remove, None, mode, None),
            (true, false) => {
                self.push(Client::K3s, &rel, Change::Update, Some(text.into_bytes()), mode, None)
            }
            (false, _) if kept.is_empty() => {
                self.push(Client::K3s, &rel, Change::Unchanged, None, mode, None)
            }
            (false, _) => {}
        }
        if !kept.is_empty() {
            self.push(Client::K3s, &rel, Change::Kept, None, mode, Some(kept.join("; ")));
        }
        Ok(())
    }

    /// The report of this plan without applying it (`--dry-run`).
    pub fn preview(&self) -> Report {
        self.report(true)
    }

    /// Applies the plan: all writes staged and committed together, then removals, then the
    /// directories that left empty ([`prune`]), then the system store update.
    pub fn apply(self) -> Result<Report, Error> {
        let mut set = FileSet::new();
        for s in &self.steps {
            if let (Some(contents), Change::Create | Change::Replace | Change::Update) =
                (&s.contents, s.change)
            {
                set.add(&s.path, contents, s.mode)?;
            }
        }
        set.commit()?;
        for s in self.steps.iter().filter(|s| s.change == Change::Remove) {
            std::fs::remove_file(&s.path)
                .map_err(|e| files::Error::io("cannot remove", &s.path, e))?;
        }
        // Only empty directories go: remove_dir refuses anything else, which is the point (a
        // certs.d directory may also hold the user's client.cert / client.key).
        let removed = prune::remove(&self.root, &self.dirs);
        let mut report = self.report(false);
        report.removed_dirs = removed.iter().map(|d| self.root.join(d)).collect();
        if self.store == StoreUpdate::Run {
            let summary = system::update_store(!self.install)?;
            report.notes.push(format!("{}: {summary}", system::UPDATE_COMMAND));
        }
        Ok(report)
    }

    fn empty(
        registries: &[RegistryHost],
        selection: Selection,
        root: &Path,
        install: bool,
    ) -> Result<Plan, Error> {
        if selection.clients().is_empty() {
            return Err(Error::NothingSelected);
        }
        let registries = unique(registries);
        if registries.is_empty() {
            return Err(Error::NoRegistry);
        }
        let mut notes = Vec::new();
        for registry in registries.iter().filter(|r| r.dropped_default_port()) {
            notes.push(format!(
                "port 443 is the HTTPS default: clients look in a directory named {registry} \
                 (no port), so that is where the files go"
            ));
        }
        Ok(Plan {
            root: root.to_path_buf(),
            registries,
            install,
            steps: Vec::new(),
            store: StoreUpdate::NotNeeded,
            notes,
            dirs: Vec::new(),
        })
    }

    fn push(
        &mut self,
        client: Client,
        rel: &Path,
        change: Change,
        contents: Option<Vec<u8>>,
        mode: u32,
        reason: Option<String>,
    ) {
        self.steps.push(Step {
            client,
            path: self.root.join(rel),
            node_path: Path::new("/").join(rel),
            change,
            reason,
            contents,
            mode,
        });
    }

    fn decide_store(&mut self, client: Client) {
        let changed = self.steps.iter().any(|s| {
            s.client == client
                && matches!(s.change, Change::Create | Change::Replace | Change::Remove)
        });
        if !changed {
            return;
        }
        if system::is_live_root(&self.root) {
            self.store = StoreUpdate::Run;
        } else {
            self.store = StoreUpdate::LeftToNode;
            self.notes.push(format!(
                "staging root: run {} on the node after copying the tree",
                system::UPDATE_COMMAND
            ));
        }
    }

    fn report(&self, dry_run: bool) -> Report {
        Report {
            command: if self.install { "install" } else { "uninstall" },
            // `empty` refuses an empty list, so there is a first address.
            registry: self.registries[0].authority(),
            registries: self.registries.iter().map(RegistryHost::authority).collect(),
            root: self.root.clone(),
            dry_run,
            files: self.steps.clone(),
            system_store: self.store,
            notes: self.notes.clone(),
            removed_dirs: self.dirs.iter().map(|d| self.root.join(d)).collect(),
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(files::Error::io("cannot read", path, e).into()),
    }
}

/// Names the real file (under the root) in a k3s parse error, which names the node path.
fn at(err: Error, path: &Path) -> Error {
    match err {
        Error::Config { reason, .. } => Error::Config { path: path.to_path_buf(), reason },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(dir: &Path) -> CaBundle {
        let made = crate::pki::create_ca(&crate::pki::CaOptions {
            dir: dir.join("pki"),
            ..crate::pki::CaOptions::default()
        })
        .unwrap();
        CaBundle::read(&made.cert).unwrap()
    }

    #[test]
    fn several_addresses_share_one_k3s_file_and_one_system_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let regs: Vec<RegistryHost> =
            ["reg.lan:5000", "reg.lan:30500", "reg.lan:443", "reg.lan:5000"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        let all =
            Selection { docker: true, containerd: true, podman: true, k3s: true, system: true };
        let report = Plan::install(&ca, &regs, all, &root, false).unwrap().apply().unwrap();
        assert_eq!(report.registries, ["reg.lan:5000", "reg.lan:30500", "reg.lan"]);
        let count = |c: Client| report.files.iter().filter(|s| s.client == c).count();
        // Per address: docker, podman, k3s copy, containerd ca + hosts.toml; then one
        // registries.yaml and one system file.
        assert_eq!(report.files.len(), 3 * 5 + 1 + 1);
        assert_eq!(count(Client::System), 1);
        assert!(report.notes.iter().any(|n| n.contains("directory named reg.lan (no port)")));

        // A k3s key changed by hand for one address: uninstall takes the others' keys out,
        // keeps that one and says so (exit 1 in the CLI).
        let path = root.join(k3s::YAML_PATH);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replace(&k3s::ca_file(&regs[1]), "/elsewhere.crt");
        std::fs::write(&path, edited).unwrap();
        let report = Plan::uninstall(&ca, &regs, all, &root).unwrap().apply().unwrap();
        assert!(report.kept_any());
        let k3s_steps: Vec<Change> =
            report.files.iter().filter(|s| s.path == path).map(|s| s.change).collect();
        assert_eq!(k3s_steps, [Change::Update, Change::Kept]);
        let left: crate::trust::yaml::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let configs = left.get("configs").unwrap();
        assert!(configs.get("reg.lan:30500").is_some());
        assert!(configs.get("reg.lan:5000").is_none() && configs.get("reg.lan").is_none());
    }
}
