//! Which directories uninstall removes. Install creates what it needs (`certs.d/`, the
//! per-registry directories, k3s's `registry-ca/`, and in an empty staging tree every parent);
//! uninstall, after removing its files, removes each directory on the way from a removed file
//! up to the root while it is empty, and stops at the first directory that is not empty or is
//! one of [`KEEP`]. `KEEP` holds the directories that exist on every system or belong to a
//! package on a node: `etc`, `usr`, `usr/local`, `usr/local/share`,
//! `usr/local/share/ca-certificates` (the system store's, made by ca-certificates), and each
//! client's own configuration directory (`etc/docker`, `etc/containerd`, `etc/containers`,
//! `etc/rancher`, `etc/rancher/k3s`). The root itself is never removed. A directory holding
//! anything else (a client certificate, another registry) is never removed; an empty one
//! below `KEEP` goes even if it predates install, as there is no record of who made it.
//!
//! The bundle's `install.sh` gets the same list and applies the same rule.

use std::path::{Path, PathBuf};

/// Directories (relative to the root) never removed, even when empty.
pub const KEEP: &[&str] = &[
    "etc",
    "usr",
    "usr/local",
    "usr/local/share",
    "usr/local/share/ca-certificates",
    "etc/docker",
    "etc/containerd",
    "etc/containers",
    "etc/rancher",
    "etc/rancher/k3s",
];

/// True when `rel` (relative to the root) may be removed once empty.
pub fn removable(rel: &Path) -> bool {
    !rel.as_os_str().is_empty() && !KEEP.iter().any(|k| rel == Path::new(k))
}

/// The directories (relative to `root`, deepest first) that become empty and removable once
/// the files `removed` (relative to `root`) are gone, judged from what is on disk now.
pub fn emptied(root: &Path, removed: &[PathBuf]) -> Vec<PathBuf> {
    let mut gone: Vec<PathBuf> = removed.to_vec();
    let mut out: Vec<PathBuf> = Vec::new();
    for file in removed {
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| removable(d)) {
            let entries = match std::fs::read_dir(root.join(d)) {
                Ok(entries) => entries,
                Err(_) => break,
            };
            let empty = entries.filter_map(Result::ok).all(|e| {
                e.path().strip_prefix(root).is_ok_and(|rel| gone.iter().any(|g| g == rel))
            });
            if !empty {
                break;
            }
            if !out.iter().any(|o| o == d) {
                out.push(d.to_path_buf());
                gone.push(d.to_path_buf());
            }
            dir = d.parent();
        }
    }
    // A parent can be found before a child of another file's walk: deepest first.
    out.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    out
}

/// Removes `dirs` (relative to `root`, deepest first); one that is no longer empty stays.
pub fn remove(root: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter().filter(|d| std::fs::remove_dir(root.join(d)).is_ok()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_to_the_kept_directories_and_stops_at_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = |rel: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
            PathBuf::from(rel)
        };
        let ours = [
            file("etc/docker/certs.d/r:1/ca.crt"),
            file("etc/containers/certs.d/r:1/ca.crt"),
            file("etc/rancher/k3s/registry-ca/r_1.crt"),
            file("usr/local/share/ca-certificates/regkit-r_1.crt"),
        ];
        file("etc/containers/certs.d/r:1/client.cert");
        let dirs = emptied(root, &ours);
        let want: Vec<PathBuf> =
            ["etc/docker/certs.d/r:1", "etc/docker/certs.d", "etc/rancher/k3s/registry-ca"]
                .iter()
                .map(PathBuf::from)
                .collect();
        let mut sorted = dirs.clone();
        sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(sorted, want_sorted);
        for f in &ours {
            std::fs::remove_file(root.join(f)).unwrap();
        }
        assert_eq!(remove(root, &dirs).len(), 3);
        assert!(root.join("etc/docker").is_dir() && root.join("etc/rancher/k3s").is_dir());
        assert!(root.join("etc/containers/certs.d/r:1/client.cert").is_file());
        assert!(root.join("usr/local/share/ca-certificates").is_dir());
    }
}
