//! `regkit trust bundle`: one `.tar.gz` a node unpacks and runs without regkit. It holds
//! `install.sh` (POSIX sh, idempotent, with `--root`, `--dry-run`, `--force`, `--uninstall`),
//! the CA as `ca.crt`, and under `files/` every whole file `trust install` would write, byte
//! for byte (built by the same code), so the script only copies and compares. k3s's
//! `registries.yaml` is the one file merged in place: the script runs `k3s_edit.awk`, the
//! same line-by-line editor as regkit's own ([`super::k3s_text`]), so the result is the same
//! on a file both accept. Unlike regkit, the script does not parse the file as YAML: it edits
//! (and writes) a file that is not valid YAML or whose edit would change other settings,
//! where regkit refuses (see [`super::k3s_text`]).
//! Its `--uninstall` removes directories by the same rule as `regkit trust uninstall`
//! ([`super::prune`]; with `--dry-run` it names the same ones, judged from what is on disk), and it prints containerd's `config_path` advice in regkit's words.
//!
//! One bundle may cover several addresses of the same registry (`reg.lan:5000`, a NodePort
//! `10.0.0.5:30500`, an Ingress host `reg.lan`): the files of every address are shipped, and
//! the script adds one k3s entry per address.
//!
//! `regkit init` calls [`write`] to put the bundle into its deployment folder.

use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::plan::{desired_files, unique};
use super::{CaBundle, Client, Error, RegistryHost, Selection, containerd, k3s, prune};
use crate::files::{self, MODE_PUBLIC};

const SCRIPT: &str = include_str!("install.sh");
/// The in-place editor for k3s's `registries.yaml` that `install.sh` runs (the awk twin of
/// [`super::k3s_text`]).
const K3S_EDIT: &str = include_str!("k3s_edit.awk");

/// What [`write`] produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The archive written.
    pub path: PathBuf,
    /// The top directory inside the archive (`regkit-trust-<host_port>`, the first address).
    pub top_dir: String,
    /// Every address the bundle trusts the CA for (`host[:port]`).
    pub registries: Vec<String>,
    /// Every entry, relative to the top directory.
    pub entries: Vec<String>,
}

/// Writes the bundle for every address in `registries` (at least one; repeats dropped) to
/// `out` (atomically, mode 0644; an existing file is refused unless `force`).
pub fn write(
    ca: &CaBundle,
    registries: &[RegistryHost],
    selection: Selection,
    out: &Path,
    force: bool,
) -> Result<Summary, Error> {
    files::refuse_existing([out], force)?;
    let (bytes, top_dir, entries) = archive(ca, registries, selection)?;
    files::write_atomic(out, &bytes, MODE_PUBLIC)?;
    let registries = unique(registries).iter().map(RegistryHost::authority).collect();
    Ok(Summary { path: out.to_path_buf(), top_dir, registries, entries })
}

/// The gzip'd tar bytes, the top directory name and the entry list.
pub fn archive(
    ca: &CaBundle,
    registries: &[RegistryHost],
    selection: Selection,
) -> Result<(Vec<u8>, String, Vec<String>), Error> {
    if selection.clients().is_empty() {
        return Err(Error::NothingSelected);
    }
    let registries = unique(registries);
    let Some(first) = registries.first() else {
        return Err(Error::NoRegistry);
    };
    let top = format!("regkit-trust-{}", first.flat());
    let desired = desired_files(ca, &registries, selection);
    let rels: Vec<PathBuf> = desired.iter().map(|d| d.rel.clone()).collect();
    let script = install_script(&registries, selection, &rels);

    let mut entries: Vec<(String, Vec<u8>, u32)> = vec![
        ("install.sh".into(), script.into_bytes(), 0o755),
        ("ca.crt".into(), ca.to_pem(), 0o644),
    ];
    if selection.has(Client::K3s) {
        entries.push(("k3s_edit.awk".into(), K3S_EDIT.as_bytes().to_vec(), 0o644));
    }
    for d in desired {
        entries.push((format!("files/{}", d.rel.display()), d.contents, 0o644));
    }

    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut dirs: Vec<String> = Vec::new();
    let io = |e| files::Error::io("cannot build archive for", Path::new(&top), e);
    for (name, data, mode) in &entries {
        // Directory entries first, so extraction gives them 0755 whatever the umask.
        let mut parents: Vec<String> = Path::new(name)
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.display().to_string())
            .collect();
        parents.push(String::new());
        for dir in parents.into_iter().rev() {
            let full = if dir.is_empty() { top.clone() } else { format!("{top}/{dir}") };
            if !dirs.contains(&full) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
                tar.append_data(&mut h, format!("{full}/"), std::io::empty()).map_err(io)?;
                dirs.push(full);
            }
        }
        let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64, mtime);
        tar.append_data(&mut h, format!("{top}/{name}"), data.as_slice()).map_err(io)?;
    }
    let gz = tar.into_inner().map_err(io)?;
    let bytes = gz.finish().map_err(io)?;
    Ok((bytes, top, entries.into_iter().map(|(n, _, _)| n).collect()))
}

/// The `install.sh` text for these addresses and files (paths relative to the root, also
/// under `files/`).
pub fn install_script(
    registries: &[RegistryHost],
    selection: Selection,
    rels: &[PathBuf],
) -> String {
    // Every value below comes from a parsed RegistryHost or a fixed path, so it holds only
    // [A-Za-z0-9.:_/[]-] and is safe inside the script's single quotes (and has no space,
    // which separates an address from its k3s ca_file).
    let files: Vec<String> = rels.iter().map(|r| r.display().to_string()).collect();
    let clients: Vec<&str> = selection.clients().iter().map(|c| c.name()).collect();
    let names: Vec<String> = registries.iter().map(RegistryHost::authority).collect();
    let k3s: Vec<String> = if selection.has(Client::K3s) {
        registries.iter().map(|r| format!("{} {}", r.authority(), k3s::ca_file(r))).collect()
    } else {
        Vec::new()
    };
    let (none, one, two) = if selection.has(Client::Containerd) {
        (containerd::note_without_config(), containerd::note_for(1), containerd::note_for(2))
    } else {
        Default::default()
    };
    SCRIPT
        .replace("@REGISTRIES@", &names.join(" "))
        .replace("@CLIENTS@", &clients.join(", "))
        .replace("@FILES@", &files.join("\n"))
        .replace("@K3S_ENTRIES@", &k3s.join("\n"))
        .replace("@KEEP_DIRS@", &prune::KEEP.join("\n"))
        .replace("@CONTAINERD_NOTE_NONE@", &single_quoted(&none))
        .replace("@CONTAINERD_NOTE_1@", &single_quoted(&one))
        .replace("@CONTAINERD_NOTE_2@", &single_quoted(&two))
}

/// `text` made safe inside the script's single quotes (each `'` closes, escapes, reopens).
fn single_quoted(text: &str) -> String {
    text.replace('\'', "'\\''")
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}
