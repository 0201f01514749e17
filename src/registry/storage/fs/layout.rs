//! distribution's on-disk layout (registry/storage/paths.go), so regkit and registry:2 can
//! serve each other's root directories. Every path is built from parsed names only.
//!
//! ```text
//! <root>/docker/registry/v2/
//!   blobs/<alg>/<first 2 hex>/<hex>/data
//!   repositories/<name>/
//!     _layers/<alg>/<hex>/link                        (text: the digest)
//!     _manifests/revisions/<alg>/<hex>/link
//!     _manifests/tags/<tag>/current/link
//!     _manifests/tags/<tag>/index/<alg>/<hex>/link
//!     _uploads/<id>/data, startedat
//! ```

use std::path::{Path, PathBuf};

use crate::registry::api::names::{Digest, RepoName, Tag, UploadId};

/// Paths of every stored object under one root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    base: PathBuf,
}

impl Layout {
    /// The layout under `root` (distribution's `rootdirectory`).
    pub fn new(root: &Path) -> Self {
        Layout { root: root.to_path_buf(), base: root.join("docker/registry/v2") }
    }

    /// `<root>/docker/registry/v2`.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `<root>` itself (distribution's `rootdirectory`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding a blob's `data`.
    pub fn blob_dir(&self, d: &Digest) -> PathBuf {
        self.base.join("blobs").join(d.algorithm().as_str()).join(&d.hex()[..2]).join(d.hex())
    }

    /// A blob's content.
    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        self.blob_dir(d).join("data")
    }

    /// `repositories/`.
    pub fn repositories(&self) -> PathBuf {
        self.base.join("repositories")
    }

    /// A repository's directory (one level per name component).
    pub fn repo(&self, r: &RepoName) -> PathBuf {
        let mut p = self.repositories();
        for c in r.components() {
            p.push(c);
        }
        p
    }

    /// The link that makes a blob part of a repository.
    pub fn layer_link(&self, r: &RepoName, d: &Digest) -> PathBuf {
        self.repo(r).join("_layers").join(d.algorithm().as_str()).join(d.hex()).join("link")
    }

    /// `_manifests/revisions/`.
    pub fn revisions(&self, r: &RepoName) -> PathBuf {
        self.repo(r).join("_manifests/revisions")
    }

    /// The link that makes a manifest a revision of a repository.
    pub fn revision_link(&self, r: &RepoName, d: &Digest) -> PathBuf {
        self.revisions(r).join(d.algorithm().as_str()).join(d.hex()).join("link")
    }

    /// `_manifests/tags/`.
    pub fn tags(&self, r: &RepoName) -> PathBuf {
        self.repo(r).join("_manifests/tags")
    }

    /// A tag's directory.
    pub fn tag(&self, r: &RepoName, t: &Tag) -> PathBuf {
        self.tags(r).join(t.as_str())
    }

    /// The link holding the digest a tag points to now.
    pub fn tag_current(&self, r: &RepoName, t: &Tag) -> PathBuf {
        self.tag(r, t).join("current/link")
    }

    /// The tag's history entry for a digest.
    pub fn tag_index(&self, r: &RepoName, t: &Tag, d: &Digest) -> PathBuf {
        self.tag(r, t).join("index").join(d.algorithm().as_str()).join(d.hex()).join("link")
    }

    /// An upload session's directory.
    pub fn upload(&self, r: &RepoName, id: &UploadId) -> PathBuf {
        self.repo(r).join("_uploads").join(id.as_str())
    }
}
