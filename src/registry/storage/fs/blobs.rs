//! Blobs and uploads on disk. An upload streams into `_uploads/<id>/data` while a running
//! SHA-256 is kept in memory; on completion the digest is checked and only then is the
//! data file renamed into `blobs/` (atomic, so a crash leaves no blob or a complete one)
//! and linked into the repository. Concurrent uploads of the same blob are safe: each has
//! its own upload file and the renames put identical bytes at the same path.

use std::io::SeekFrom;
use std::path::Path;
use std::time::SystemTime;

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256, Sha512};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{FsStorage, create_dirs, exists, io_err, is_missing, parent, remove_tree, sync_dir};
use crate::registry::api::names::{Algorithm, Digest, RepoName, UploadId};
use crate::registry::storage::{BlobBody, ByteStream, Error, Result};

/// Read size when streaming a blob out or re-hashing one.
const READ_CHUNK: usize = 256 * 1024;

/// Buffer between request frames and the upload file.
const WRITE_BUFFER: usize = 1024 * 1024;

/// The running hash of an upload and the number of bytes it covers.
#[derive(Clone)]
pub struct Hashing {
    sha: Sha256,
    size: u64,
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
        let mut file = match tokio::fs::File::open(&data).await {
            Ok(f) => f,
            Err(e) if is_missing(&e) => return Err(Error::BlobUnknown(digest.clone())),
            Err(e) => return Err(Error::Io { action: "cannot open", path: data, source: e }),
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await.map_err(io_err("cannot seek", &data))?;
        }
        Ok(BlobBody { len, stream: file_stream(file, len) })
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
        mut body: ByteStream,
    ) -> Result<u64> {
        let dir = self.layout.upload(repo, id);
        let data = dir.join("data");
        let slot = self.upload_slot(&dir);
        let mut guard = slot.lock().await;
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
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .await
            .map_err(io_err("cannot open", &data))?;
        file.seek(SeekFrom::Start(state.size)).await.map_err(io_err("cannot seek", &data))?;
        // Request bodies arrive in small frames; batch them into large writes.
        let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut sha = state.sha.clone();
        let mut got = 0u64;
        let written = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Error::Body)?;
                got += chunk.len() as u64;
                if let Some(expected) = len.filter(|&e| got > e) {
                    return Err(Error::SizeMismatch { expected, got });
                }
                sha.update(&chunk);
                file.write_all(&chunk).await.map_err(io_err("cannot write", &data))?;
            }
            if let Some(expected) = len.filter(|&e| got != e) {
                return Err(Error::SizeMismatch { expected, got });
            }
            file.flush().await.map_err(io_err("cannot write", &data))
        }
        .await;
        match written {
            Ok(()) => {
                let size = state.size + got;
                *guard = Some(Hashing { sha, size });
                Ok(size)
            }
            Err(e) => {
                // Roll back to the previous end so the upload is exactly as it was; if even
                // that fails, drop the in-memory hash so the next request re-hashes the file.
                let _ = file.flush().await;
                if file.get_mut().set_len(state.size).await.is_ok() {
                    *guard = Some(state);
                }
                Err(e)
            }
        }
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
            remove_tree(&dir).await?;
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
        let removed = remove_tree(&dir).await?;
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

/// Streams `len` bytes from the file's current position.
fn file_stream(file: tokio::fs::File, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = left.min(READ_CHUNK as u64) as usize;
        let mut buf = bytes::BytesMut::zeroed(want);
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than expected",
                )),
                (file, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf.freeze()), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    }))
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
