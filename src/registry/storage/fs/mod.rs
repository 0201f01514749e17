//! The filesystem backend: distribution's layout ([`layout`]) on a local disk. Blobs and
//! uploads live in [`blobs`], manifests and tags in [`manifests`], the repository listing
//! in [`catalog`] and the stale-upload purge in [`purge`]. This file holds the shared
//! plumbing (link files, directory syncs, error conversion) and the [`Storage`] impl,
//! which only delegates.
//!
//! Atomicity: every file becomes visible by `rename` from a temporary name in the same
//! directory, so readers and crashes see either the old state or the complete new one.
//! Durability: with `fsync` on, file data and the directories touched are synced before a
//! write returns.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use super::{
    BlobBody, ByteStream, Error, Result, StaleUpload, Storage, StorageOptions, StoredManifest,
};
use crate::registry::api::names::{Digest, Reference, RepoName, Tag, UploadId};

mod appender;
pub mod blobs;
mod cachestat;
pub mod catalog;
pub mod layout;
pub mod manifests;
pub mod purge;
mod reader;

/// Alignment of `O_DIRECT` offsets, lengths and buffers (covers 512-byte and 4 KiB logical
/// blocks).
const ALIGN: usize = 4096;

use layout::Layout;

/// The filesystem storage backend.
pub struct FsStorage {
    layout: Layout,
    fsync: bool,
    /// Running hash state of uploads in progress, keyed by upload directory. Each slot is
    /// locked for the whole of a PATCH/PUT so requests on one upload are serialised; a
    /// missing or empty slot is rebuilt by re-hashing the data on disk (after a restart).
    uploads: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Option<blobs::Hashing>>>>>,
    /// Directory listings for the catalog.
    dirs: Arc<catalog::DirCache>,
}

impl FsStorage {
    /// A backend over `options.root` (created on first write).
    pub fn new(options: StorageOptions) -> Self {
        FsStorage {
            layout: Layout::new(&options.root),
            fsync: options.fsync,
            uploads: Mutex::new(HashMap::new()),
            dirs: Arc::default(),
        }
    }

    /// The on-disk layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn upload_slot(&self, dir: &Path) -> Arc<tokio::sync::Mutex<Option<blobs::Hashing>>> {
        // A poisoned map only means another request panicked mid-insert; the map is still
        // consistent (insert/remove are single operations), so keep using it.
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(dir.to_path_buf()).or_default().clone()
    }

    fn forget_upload(&self, dir: &Path) {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(dir);
    }

    /// Deletes an upload's directory. When that leaves a repository that only the upload
    /// had created (nothing in it but an empty `_uploads`), the repository's directories go
    /// too, up to the storage root, so a refused upload to a new name leaves no repository
    /// behind (its tags list stays `NAME_UNKNOWN`). A repository that holds anything else
    /// keeps its `_uploads`, as with registry:2. `Ok(false)` when the upload did not exist.
    async fn discard_upload(&self, dir: &Path) -> Result<bool> {
        let removed = remove_tree(dir).await?;
        let repo = parent(parent(dir));
        if only_empty_uploads(repo).await {
            prune_empty(&repo.join("_uploads"), self.layout.root()).await;
        }
        Ok(removed)
    }

    /// Writes a link file (the digest as text) atomically.
    async fn write_link(&self, path: &Path, digest: &Digest) -> Result<()> {
        self.write_file(path, digest.to_string().as_bytes()).await
    }

    /// Writes `contents` to `path` via a temporary file and rename; syncs when enabled.
    async fn write_file(&self, path: &Path, contents: &[u8]) -> Result<()> {
        let dir = parent(path);
        create_dirs(dir, self.fsync).await?;
        let tmp = dir.join(format!(".tmp-{}", UploadId::generate()));
        let res = async {
            let mut f =
                tokio::fs::File::create(&tmp).await.map_err(io_err("cannot create", &tmp))?;
            f.write_all(contents).await.map_err(io_err("cannot write", &tmp))?;
            if self.fsync {
                f.sync_all().await.map_err(io_err("cannot sync", &tmp))?;
            }
            drop(f);
            tokio::fs::rename(&tmp, path).await.map_err(io_err("cannot rename into", path))
        }
        .await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        res?;
        if self.fsync {
            sync_dir(dir).await?;
        }
        Ok(())
    }
}

/// Reads a link file; `Ok(None)` when it does not exist.
async fn read_link(path: &Path) -> Result<Option<Digest>> {
    parse_link(path, tokio::fs::read_to_string(path).await)
}

/// [`read_link`] for code already on a blocking thread.
fn read_link_blocking(path: &Path) -> Result<Option<Digest>> {
    parse_link(path, std::fs::read_to_string(path))
}

fn parse_link(path: &Path, read: io::Result<String>) -> Result<Option<Digest>> {
    match read {
        Ok(text) => Digest::parse(text.trim())
            .map(Some)
            .map_err(|e| Error::Corrupt { path: path.to_path_buf(), detail: e.to_string() }),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(Error::Io { action: "cannot read", path: path.to_path_buf(), source: e }),
    }
}

/// True when `path` exists (any error other than "missing" counts as existing, so a
/// permission problem surfaces on the following read instead of passing as absent).
async fn exists(path: &Path) -> bool {
    match tokio::fs::metadata(path).await {
        Ok(_) => true,
        Err(e) => !is_missing(&e),
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Creates `dir` and missing parents; with `fsync`, syncs the parent of each directory
/// created so the new entries survive a crash.
async fn create_dirs(dir: &Path, fsync: bool) -> Result<()> {
    if tokio::fs::metadata(dir).await.is_ok() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while tokio::fs::metadata(cur).await.is_err() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    // A refused upload may be removing a new repository's empty directories at this very
    // moment (see `discard_upload`), taking a parent away between two `mkdir`s: try again
    // once, when they are gone.
    let created = match tokio::fs::create_dir_all(dir).await {
        Err(e) if is_missing(&e) => tokio::fs::create_dir_all(dir).await,
        other => other,
    };
    created.map_err(io_err("cannot create directory", dir))?;
    if fsync {
        for d in missing.iter().rev() {
            sync_dir(parent(d)).await?;
        }
    }
    Ok(())
}

/// fsyncs a directory so renames and new entries in it are durable.
async fn sync_dir(dir: &Path) -> Result<()> {
    let f = tokio::fs::File::open(dir).await.map_err(io_err("cannot open directory", dir))?;
    f.sync_all().await.map_err(io_err("cannot sync directory", dir))
}

/// Removes the directories from `dir` up to (not including) `stop` while they are empty. A
/// directory that holds anything, or that another request fills meanwhile, stops the walk.
async fn prune_empty(dir: &Path, stop: &Path) {
    let mut cur = dir;
    while cur != stop && cur.starts_with(stop) {
        if tokio::fs::remove_dir(cur).await.is_err() {
            return;
        }
        cur = parent(cur);
    }
}

/// True when `dir` holds nothing but an empty `_uploads` directory: a repository that only
/// an upload created.
async fn only_empty_uploads(dir: &Path) -> bool {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return false };
    let mut names = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        names.push(entry.file_name());
        if names.len() > 1 {
            return false;
        }
    }
    if names.len() != 1 || names[0] != "_uploads" {
        return false;
    }
    let Ok(mut uploads) = tokio::fs::read_dir(dir.join("_uploads")).await else { return false };
    matches!(uploads.next_entry().await, Ok(None))
}

/// Removes a directory tree; `Ok(false)` when it did not exist.
async fn remove_tree(dir: &Path) -> Result<bool> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(Error::Io { action: "cannot remove", path: dir.to_path_buf(), source: e }),
    }
}

impl Storage for FsStorage {
    fn blob_size<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.blob_size_impl(repo, digest))
    }

    fn read_blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<BlobBody>> {
        Box::pin(self.read_blob_impl(repo, digest, start, len))
    }

    fn unlink_blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.unlink_blob_impl(repo, digest))
    }

    fn mount_blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
        from: Option<&'a RepoName>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.mount_blob_impl(repo, digest, from))
    }

    fn start_upload<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<UploadId>> {
        Box::pin(self.start_upload_impl(repo))
    }

    fn upload_size<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.upload_size_impl(repo, id))
    }

    fn append_upload<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
        start: Option<u64>,
        len: Option<u64>,
        body: ByteStream,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.append_upload_impl(repo, id, start, len, body))
    }

    fn finish_upload<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.finish_upload_impl(repo, id, digest))
    }

    fn cancel_upload<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.cancel_upload_impl(repo, id))
    }

    fn manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<StoredManifest>> {
        Box::pin(self.manifest_impl(repo, reference))
    }

    fn manifest_exists<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { Ok(exists(&self.layout.revision_link(repo, digest)).await) })
    }

    fn put_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
        bytes: Bytes,
        tags: &'a [Tag],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_manifest_impl(repo, digest, bytes, tags))
    }

    fn delete_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.delete_manifest_impl(repo, digest))
    }

    fn untag<'a>(&'a self, repo: &'a RepoName, tag: &'a Tag) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.untag_impl(repo, tag))
    }

    fn tags<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<Tag>>> {
        Box::pin(self.tags_impl(repo))
    }

    fn revisions<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<Digest>>> {
        Box::pin(self.revisions_impl(repo))
    }

    fn repositories<'a>(
        &'a self,
        last: Option<&'a str>,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<RepoName>>> {
        let root = self.layout.repositories();
        let last = last.map(str::to_string);
        let dirs = self.dirs.clone();
        Box::pin(async move {
            let walk_root = root.clone();
            tokio::task::spawn_blocking(move || {
                catalog::repositories(&dirs, &walk_root, last.as_deref(), n)
            })
            .await
            .map_err(|e| Error::Io {
                action: "cannot list repositories in",
                path: root,
                source: io::Error::other(e),
            })?
        })
    }

    fn purge_uploads(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<Vec<StaleUpload>>> {
        Box::pin(self.purge_uploads_impl(older_than, dry_run))
    }
}
