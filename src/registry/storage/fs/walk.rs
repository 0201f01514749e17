//! Walks over `repositories/`: the catalog listing and the stale-upload purge.
//!
//! The catalog does not walk the whole tree per request. A repository is a directory that
//! holds `_manifests` (as in distribution); names are produced in path-component order
//! (`a` < `a/b` < `a-c`, distribution's order, so `last` from either server pages the same
//! way) by a depth-first walk over sorted directory listings that skips every subtree lying
//! wholly at or before `last` and stops as soon as `n` names are found. A page therefore
//! costs one directory listing per level on the path to `last` plus the directories it
//! returns, not a walk of every repository.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{FsStorage, is_missing, remove_tree};
use crate::registry::api::names::{RepoName, UploadId};
use crate::registry::storage::{Error, Result, StaleUpload};

/// Up to `n` repository names strictly after `last` (component order) under `root`.
pub fn repositories(root: &Path, last: Option<&str>, n: usize) -> Result<Vec<RepoName>> {
    let last: Option<Vec<&str>> = last.map(|l| l.split('/').collect());
    let mut out = Vec::new();
    if n > 0 {
        walk(root, &mut Vec::new(), last.as_deref(), n, &mut out)?;
    }
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    last: Option<&[&str]>,
    n: usize,
    out: &mut Vec<RepoName>,
) -> Result<()> {
    let (is_repo, mut children) = subdirs(dir)?;
    if is_repo && !prefix.is_empty() {
        let after_last = last.is_none_or(|l| cmp_names(prefix, l) == Ordering::Greater);
        if after_last {
            if let Ok(name) = RepoName::parse(&prefix.join("/")) {
                out.push(name);
                if out.len() >= n {
                    return Ok(());
                }
            }
        }
    }
    children.sort();
    for child in children {
        prefix.push(child);
        // Every name below starts with `prefix`: skip the subtree when that prefix sorts
        // before the same-length prefix of `last`.
        let skip = last.is_some_and(|l| {
            let k = prefix.len().min(l.len());
            cmp_names(&prefix[..k], &l[..k]) == Ordering::Less
        });
        if !skip {
            walk(&dir.join(&prefix[prefix.len() - 1]), prefix, last, n, out)?;
        }
        prefix.pop();
        if out.len() >= n {
            break;
        }
    }
    Ok(())
}

fn cmp_names(a: &[String], b: &[&str]) -> Ordering {
    a.iter().map(String::as_str).cmp(b.iter().copied())
}

/// Whether `dir` holds `_manifests`, and its subdirectories that can be name components.
fn subdirs(dir: &Path) -> Result<(bool, Vec<String>)> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if is_missing(&e) => return Ok((false, Vec::new())),
        Err(e) => return Err(Error::Io { action: "cannot list", path: dir.into(), source: e }),
    };
    let mut is_repo = false;
    let mut children = Vec::new();
    for entry in rd {
        let entry =
            entry.map_err(|e| Error::Io { action: "cannot list", path: dir.into(), source: e })?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if name == "_manifests" {
            is_repo = true;
        } else if !name.starts_with('_')
            && !name.starts_with('.')
            && entry.file_type().is_ok_and(|t| t.is_dir())
        {
            children.push(name);
        }
    }
    Ok((is_repo, children))
}

/// Every upload directory below `root`: (repository, id, age, directory).
fn find_uploads(root: &Path) -> Result<Vec<(RepoName, UploadId, Duration, PathBuf)>> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<String>::new())];
    let now = SystemTime::now();
    while let Some((dir, prefix)) = stack.pop() {
        let (_, children) = subdirs(&dir)?;
        for child in children {
            let mut p = prefix.clone();
            p.push(child.clone());
            stack.push((dir.join(&child), p));
        }
        let uploads = dir.join("_uploads");
        let Ok(rd) = fs::read_dir(&uploads) else { continue };
        let Ok(repo) = RepoName::parse(&prefix.join("/")) else { continue };
        for entry in rd.flatten() {
            let Some(id) = entry.file_name().to_str().and_then(|s| UploadId::parse(s).ok()) else {
                continue;
            };
            let path = entry.path();
            // Age from `startedat`'s mtime (written once at the start), else the directory's.
            let started = fs::metadata(path.join("startedat"))
                .or_else(|_| fs::metadata(&path))
                .and_then(|m| m.modified())
                .unwrap_or(now);
            let age = now.duration_since(started).unwrap_or_default();
            found.push((repo.clone(), id, age, path));
        }
    }
    Ok(found)
}

impl FsStorage {
    pub(super) async fn purge_uploads_impl(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> Result<Vec<StaleUpload>> {
        let root = self.layout.repositories();
        let found =
            tokio::task::spawn_blocking(move || find_uploads(&root)).await.map_err(|e| {
                Error::Io {
                    action: "cannot walk",
                    path: self.layout.repositories(),
                    source: std::io::Error::other(e),
                }
            })??;
        let mut stale = Vec::new();
        for (repo, id, age, dir) in found {
            if age < older_than {
                continue;
            }
            if !dry_run {
                let slot = self.upload_slot(&dir);
                let _guard = slot.lock().await;
                remove_tree(&dir).await?;
                self.forget_upload(&dir);
            }
            stale.push(StaleUpload { repo, id, age });
        }
        stale.sort_by(|a, b| (&a.repo, &a.id).cmp(&(&b.repo, &b.id)));
        Ok(stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_pages_in_component_order_without_full_walk() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "a/b", "a-c", "b/x/y", "c", "a/b/_uploads"] {
            fs::create_dir_all(dir.path().join(name).join("_manifests")).unwrap();
        }
        fs::create_dir_all(dir.path().join("ns/only/_layers")).unwrap();
        let all: Vec<String> = repositories(dir.path(), None, 100)
            .unwrap()
            .into_iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(all, ["a", "a/b", "a-c", "b/x/y", "c"]);
        let page: Vec<String> = repositories(dir.path(), Some("a/b"), 2)
            .unwrap()
            .into_iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(page, ["a-c", "b/x/y"]);
        assert!(repositories(dir.path(), Some("c"), 5).unwrap().is_empty());
        assert_eq!(repositories(dir.path(), Some("b"), 1).unwrap()[0].as_str(), "b/x/y");
    }
}
