//! Registry storage: the [`Storage`] trait the API layer talks to, its error type, and the
//! filesystem backend ([`fs::FsStorage`]). The trait speaks in parsed names
//! ([`RepoName`], [`Digest`], ...) and byte streams, never in paths or HTTP, so that another
//! backend (S3-compatible object storage is next) can be added without touching `api`.
//!
//! Guarantees every backend must keep: a blob becomes visible only complete and verified
//! against its digest; a failed or partial write leaves storage as it was; manifests are
//! stored byte for byte.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;

use crate::registry::api::names::{Digest, Reference, RepoName, Tag, UploadId};

pub mod fs;

/// A request or response body as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, io::Error>> + Send>>;

/// Result of a storage operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Storage failures, each naming what was involved. `api::error` maps them to wire codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob is not linked into the repository (or its data is gone).
    #[error("blob {0} is unknown to this repository")]
    BlobUnknown(Digest),
    /// The manifest (tag or digest) does not exist in the repository.
    #[error("manifest {0} is unknown to this repository")]
    ManifestUnknown(String),
    /// The repository does not exist.
    #[error("repository {0} is unknown")]
    NameUnknown(RepoName),
    /// The upload session does not exist in the repository.
    #[error("upload {0} is unknown")]
    UploadUnknown(UploadId),
    /// A chunk did not start where the upload currently ends.
    #[error("chunk starts at byte {start} but the upload holds {size} bytes")]
    OutOfOrder {
        /// Bytes the upload holds.
        size: u64,
        /// Where the chunk claimed to start.
        start: u64,
    },
    /// The body was shorter or longer than announced.
    #[error("body has {got} bytes but {expected} were announced")]
    SizeMismatch {
        /// Announced length.
        expected: u64,
        /// Received length (possibly cut short when too long).
        got: u64,
    },
    /// The content does not hash to the claimed digest.
    #[error("content digest is {actual}, not the claimed {claimed}")]
    DigestMismatch {
        /// Digest the client claimed.
        claimed: Digest,
        /// Digest of what was received.
        actual: Digest,
    },
    /// Reading the client's body failed (connection cut, ...).
    #[error("reading the request body failed: {0}")]
    Body(io::Error),
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Stored data is not what it should be (e.g. a link file without a digest).
    #[error("corrupt storage at {}: {detail}", path.display())]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

/// A blob (or part of one) ready to stream.
pub struct BlobBody {
    /// Bytes the stream will yield.
    pub len: u64,
    /// The bytes.
    pub stream: ByteStream,
}

/// A stored manifest: its digest and exact bytes.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// The manifest's digest (the revision it was found under).
    pub digest: Digest,
    /// The bytes exactly as pushed.
    pub bytes: Bytes,
}

/// One upload found by [`Storage::purge_uploads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleUpload {
    /// The repository the upload belongs to.
    pub repo: RepoName,
    /// The upload id.
    pub id: UploadId,
    /// How long ago it started.
    pub age: Duration,
}

/// Options for the filesystem backend.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// The root directory (distribution's `storage.filesystem.rootdirectory`); data lives
    /// under `<root>/docker/registry/v2`.
    pub root: PathBuf,
    /// Sync file data and directories before acknowledging a write (`storage.fsync`,
    /// default on). Off trades crash durability for speed; atomicity is kept either way.
    pub fsync: bool,
}

impl StorageOptions {
    /// Options for `root` with the defaults (fsync on).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StorageOptions { root: root.into(), fsync: true }
    }
}

/// What the registry API needs from a storage backend.
///
/// Methods return boxed futures so the trait stays object-safe (`Arc<dyn Storage>`).
pub trait Storage: Send + Sync + 'static {
    /// Size of a blob linked into `repo`; [`Error::BlobUnknown`] otherwise.
    fn blob_size<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Streams `len` bytes of a linked blob from byte `start`.
    fn read_blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<BlobBody>>;

    /// Removes the blob's link from `repo` (the data stays for other repositories and
    /// garbage collection), like distribution.
    fn unlink_blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<()>>;

    /// Links an existing blob into `repo`: from `from` when given (which must hold it),
    /// otherwise whenever the registry holds the blob. Returns false when it cannot.
    fn mount_blob<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
        from: Option<&'a RepoName>,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Opens an empty upload session in `repo`.
    fn start_upload<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<UploadId>>;

    /// Bytes received so far by an upload.
    fn upload_size<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Appends `body` to an upload and returns the new size. `start`, when given, must
    /// equal the current size ([`Error::OutOfOrder`]); `len`, when given, must equal the
    /// body's length ([`Error::SizeMismatch`]). On any error the upload is left as it was.
    fn append_upload<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
        start: Option<u64>,
        len: Option<u64>,
        body: ByteStream,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Verifies the upload against `digest` and, only if it matches, makes it visible as a
    /// blob linked into `repo`; the upload session ends either way. Returns the blob size.
    fn finish_upload<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Abandons an upload and deletes its data.
    fn cancel_upload<'a>(
        &'a self,
        repo: &'a RepoName,
        id: &'a UploadId,
    ) -> BoxFuture<'a, Result<()>>;

    /// The manifest a tag points to or a digest names, with its exact bytes.
    fn manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<StoredManifest>>;

    /// True when `digest` is a manifest revision of `repo`.
    fn manifest_exists<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Stores a manifest's exact bytes under `digest` (already verified by the caller) and
    /// points each of `tags` at it.
    fn put_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
        bytes: Bytes,
        tags: &'a [Tag],
    ) -> BoxFuture<'a, Result<()>>;

    /// Deletes a manifest revision and every tag currently pointing at it.
    fn delete_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<()>>;

    /// Removes a tag only; the manifest stays reachable by digest.
    fn untag<'a>(&'a self, repo: &'a RepoName, tag: &'a Tag) -> BoxFuture<'a, Result<()>>;

    /// Every tag of `repo`, sorted; [`Error::NameUnknown`] when the repository does not exist.
    fn tags<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<Tag>>>;

    /// Every manifest revision of `repo` (any order); empty when the repository is unknown.
    fn revisions<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<Digest>>>;

    /// Up to `n` repositories that hold manifests, in path-component order, strictly after
    /// `last`.
    fn repositories<'a>(
        &'a self,
        last: Option<&'a str>,
        n: usize,
    ) -> BoxFuture<'a, Result<Vec<RepoName>>>;

    /// Finds uploads started longer than `older_than` ago and, unless `dry_run`, deletes
    /// them. Returns what was found.
    fn purge_uploads(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<Vec<StaleUpload>>>;
}
