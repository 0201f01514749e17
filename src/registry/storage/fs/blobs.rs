//! Blobs and uploads on disk. An upload streams into `_uploads/<id>/data` while a running
//! SHA-256 is kept in memory; on completion the digest is checked and only then is the
//! data file renamed into `blobs/` (atomic, so a crash leaves no blob or a complete one)
//! and linked into the repository. Concurrent uploads of the same blob are safe: each has
//! its own upload file and the renames put identical bytes at the same path.

use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::AsyncReadExt;

use super::{
    FsStorage, appender, create_dirs, exists, io_err, is_missing, parent, reader, remove_tree,
    sync_dir,
};
use crate::registry::api::names::{Algorithm, Digest, RepoName, UploadId};
use crate::registry::storage::{BlobBody, ByteStream, Error, Result};

/// Read size when re-hashing an upload or a sha512 blob.
const READ_CHUNK: usize = 256 * 1024;

/// The running hash of an upload and the number of bytes it covers.
#[derive(Clone)]
pub struct Hashing {
    pub(super) sha: Sha256,
    pub(super) size: u64,
}

impl FsStorage {
    pub(super) async fn blob_size_impl(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        if !exists(&self.layout.layer_link(repo, digest)).await {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        let data = self.layout.blob_data(digest);
        match tokio::fs::metadata(&data).await {
            Ok(m) => Ok(m.len()),
            Err(e) if is_missing(&e) => Err(Error::BlobUnknown(digest.clone())),
            Err(e) => Err(Error::Io { action: "cannot stat", path: data, source: e }),
        }
    }

    pub(super) async fn read_blob_impl(
        &self,
        repo: &RepoName,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<BlobBody> {
        if !exists(&self.layout.layer_link(repo, digest)).await {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        let data = self.layout.blob_data(digest);
        let path = data.clone();
        let opened =
            tokio::task::spawn_blocking(move || reader::open(&path)).await.map_err(|e| {
                Error::Io {
                    action: "cannot open",
                    path: data.clone(),
                    source: std::io::Error::other(e),
                }
            })?;
        let (file, direct) = match opened {
            Ok(files) => files,
            Err(e) if is_missing(&e) => return Err(Error::BlobUnknown(digest.clone())),
            Err(e) => return Err(Error::Io { action: "cannot open", path: data, source: e }),
        };
        Ok(BlobBody { len, stream: reader::stream(file, direct, start, len) })
    }

    pub(super) async fn unlink_blob_impl(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let link = self.layout.layer_link(repo, digest);
        if !remove_tree(parent(&link)).await? {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        Ok(())
    }

    pub(super) async fn mount_blob_impl(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        if let Some(from) = from {
            if !exists(&self.layout.layer_link(from, digest)).await {
                return Ok(false);
            }
        }
        if !exists(&self.layout.blob_data(digest)).await {
            return Ok(false);
        }
        self.write_link(&self.layout.layer_link(repo, digest), digest).await?;
        Ok(true)
    }

    pub(super) async fn start_upload_impl(&self, repo: &RepoName) -> Result<UploadId> {
        let id = UploadId::generate();
        let dir = self.layout.upload(repo, &id);
        create_dirs(&dir, false).await?;
        let data = dir.join("data");
        tokio::fs::File::create(&data).await.map_err(io_err("cannot create", &data))?;
        let started = dir.join("startedat");
        tokio::fs::write(&started, rfc3339(SystemTime::now()))
            .await
            .map_err(io_err("cannot write", &started))?;
        Ok(id)
    }

    pub(super) async fn upload_size_impl(&self, repo: &RepoName, id: &UploadId) -> Result<u64> {
        let dir = self.layout.upload(repo, id);
        let slot = self.upload_slot(&dir);
        let guard = slot.lock().await;
        if let Some(h) = guard.as_ref() {
            return Ok(h.size);
        }
        drop(guard);
        let data = dir.join("data");
        match tokio::fs::metadata(&data).await {
            Ok(m) => Ok(m.len()),
            Err(e) if is_missing(&e) => {
                self.forget_upload(&dir);
                Err(Error::UploadUnknown(id.clone()))
            }
            Err(e) => Err(Error::Io { action: "cannot stat", path: data, source: e }),
        }
    }

    pub(super) async fn append_upload_impl(
        &self,
        repo: &RepoName,
        id: &UploadId,
        start: Option<u64>,
        len: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        let dir = self.layout.upload(repo, id);
        let data = dir.join("data");
        let mut guard = self.upload_slot(&dir).lock_owned().await;
        let state = match guard.take() {
            Some(h) => h,
            None => self.rehash_upload(&dir, id).await?,
        };
        if let Some(start) = start {
            if start != state.size {
                let size = state.size;
                *guard = Some(state);
                return Err(Error::OutOfOrder { size, start });
            }
        }
        if len == Some(0) {
            // The empty PUT that ends most uploads: nothing to write.
            let size = state.size;
            *guard = Some(state);
            return Ok(size);
        }
        // The append runs as its own task holding the upload's lock, so a request dropped
        // mid-body (a reset HTTP/2 stream) still finishes or rolls back before the next
        // request on this upload may start.
        let task = tokio::spawn(async move {
            match appender::append(&data, &state, len, body).await {
                Ok(next) => {
                    let size = next.size;
                    *guard = Some(next);
                    Ok(size)
                }
                Err(e) => {
                    // Roll back to the previous end so the upload is exactly as it was. The
                    // first write of an append rewrites the file's partial last block, so
                    // after a failed write the bytes before the old end are not known to
                    // match the hash: then (or if truncating fails) leave the slot empty and
                    // let the next request re-hash the file.
                    let truncated = async {
                        let f = tokio::fs::OpenOptions::new().write(true).open(&data).await?;
                        f.set_len(state.size).await
                    };
                    let wrote_badly = matches!(e, Error::Io { .. });
                    if truncated.await.is_ok() && !wrote_badly {
                        *guard = Some(state);
                    }
                    Err(e)
                }
            }
        });
        task.await.map_err(|e| Error::Io {
            action: "cannot append to",
            path: dir.join("data"),
            source: std::io::Error::other(e),
        })?
    }

    pub(super) async fn finish_upload_impl(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<u64> {
        let dir = self.layout.upload(repo, id);
        let data = dir.join("data");
        let slot = self.upload_slot(&dir);
        let mut guard = slot.lock().await;
        let state = match guard.take() {
            Some(h) => h,
            None => self.rehash_upload(&dir, id).await?,
        };
        let actual = match digest.algorithm() {
            Algorithm::Sha256 => Digest::sha256_from_bytes(&state.sha.finalize()),
            Algorithm::Sha512 => hash_file_sha512(&data).await?,
        };
        if &actual != digest {
            self.discard_upload(&dir).await?;
            self.forget_upload(&dir);
            return Err(Error::DigestMismatch { claimed: digest.clone(), actual });
        }
        let blob = self.layout.blob_data(digest);
        if exists(&blob).await {
            // Already stored (content-addressed, so identical): keep the existing file.
            remove_tree(&dir).await?;
        } else {
            if self.fsync {
                let f = tokio::fs::File::open(&data).await.map_err(io_err("cannot open", &data))?;
                f.sync_all().await.map_err(io_err("cannot sync", &data))?;
            }
            create_dirs(parent(&blob), self.fsync).await?;
            tokio::fs::rename(&data, &blob).await.map_err(io_err("cannot rename into", &blob))?;
            if self.fsync {
                sync_dir(parent(&blob)).await?;
            }
            remove_tree(&dir).await?;
        }
        self.forget_upload(&dir);
        drop(guard);
        self.write_link(&self.layout.layer_link(repo, digest), digest).await?;
        Ok(state.size)
    }

    pub(super) async fn cancel_upload_impl(&self, repo: &RepoName, id: &UploadId) -> Result<()> {
        let dir = self.layout.upload(repo, id);
        let slot = self.upload_slot(&dir);
        let _guard = slot.lock().await;
        let removed = self.discard_upload(&dir).await?;
        self.forget_upload(&dir);
        if removed { Ok(()) } else { Err(Error::UploadUnknown(id.clone())) }
    }

    /// Rebuilds the running hash of an upload from its data file (after a restart).
    async fn rehash_upload(&self, dir: &Path, id: &UploadId) -> Result<Hashing> {
        let data = dir.join("data");
        let mut file = match tokio::fs::File::open(&data).await {
            Ok(f) => f,
            Err(e) if is_missing(&e) => {
                self.forget_upload(dir);
                return Err(Error::UploadUnknown(id.clone()));
            }
            Err(e) => return Err(Error::Io { action: "cannot open", path: data, source: e }),
        };
        let mut sha = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(io_err("cannot read", &data))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Hashing { sha, size })
    }
}

async fn hash_file_sha512(path: &Path) -> Result<Digest> {
    let mut file = tokio::fs::File::open(path).await.map_err(io_err("cannot open", path))?;
    let mut sha = Sha512::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = file.read(&mut buf).await.map_err(io_err("cannot read", path))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    let text = format!("sha512:{}", hex::encode(sha.finalize()));
    Digest::parse(&text)
        .map_err(|e| Error::Corrupt { path: path.to_path_buf(), detail: e.to_string() })
}

/// `2006-01-02T15:04:05Z`-style UTC timestamp, as distribution writes in `startedat`.
fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
