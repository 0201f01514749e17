//! Stale-upload purge (distribution's `storage.maintenance.uploadpurging`): finds upload
//! directories under `repositories/` older than an age and, unless it is a dry run,
//! deletes them. The server calls it on an interval.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::FsStorage;
use super::catalog::subdirs;
use crate::registry::api::names::{RepoName, UploadId};
use crate::registry::storage::{Error, Result, StaleUpload};

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
                self.discard_upload(&dir).await?;
                self.forget_upload(&dir);
            }
            stale.push(StaleUpload { repo, id, age });
        }
        stale.sort_by(|a, b| (&a.repo, &a.id).cmp(&(&b.repo, &b.id)));
        Ok(stale)
    }
}
