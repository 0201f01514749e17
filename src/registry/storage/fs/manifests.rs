//! Manifests and tags on disk. A manifest's bytes are stored as a blob (content-addressed,
//! written atomically) and linked as a revision of the repository; a tag is a `current`
//! link plus an `index` history entry, written last so a tag never points at a manifest
//! that is not fully stored.

use bytes::Bytes;

use super::layout::Layout;
use super::{FsStorage, exists, io_err, is_missing, read_link, read_link_blocking, remove_tree};
use crate::registry::api::names::{Algorithm, Digest, Reference, RepoName, Tag};
use crate::registry::storage::{Error, Result, StoredManifest};

impl FsStorage {
    pub(super) async fn manifest_impl(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        // Four small lookups: one trip to the blocking pool for all of them, not one each
        // (on a manifest HEAD the trips cost more than the lookups).
        let (layout, repo, reference) = (self.layout.clone(), repo.clone(), reference.clone());
        let root = self.layout.repositories();
        tokio::task::spawn_blocking(move || lookup_manifest(&layout, &repo, &reference))
            .await
            .map_err(|e| Error::Io {
                action: "cannot read manifests in",
                path: root,
                source: std::io::Error::other(e),
            })?
    }

    pub(super) async fn put_manifest_impl(
        &self,
        repo: &RepoName,
        digest: &Digest,
        bytes: Bytes,
        tags: &[Tag],
    ) -> Result<()> {
        let blob = self.layout.blob_data(digest);
        if !exists(&blob).await {
            self.write_file(&blob, &bytes).await?;
        }
        self.write_link(&self.layout.revision_link(repo, digest), digest).await?;
        for tag in tags {
            self.write_link(&self.layout.tag_index(repo, tag, digest), digest).await?;
            self.write_link(&self.layout.tag_current(repo, tag), digest).await?;
        }
        Ok(())
    }

    pub(super) async fn delete_manifest_impl(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<()> {
        let link = self.layout.revision_link(repo, digest);
        if !exists(&link).await {
            return Err(Error::ManifestUnknown(digest.to_string()));
        }
        // Tags first: a crash in between leaves an untagged revision, never a dangling tag.
        for tag in self.tags_impl(repo).await.unwrap_or_default() {
            if read_link(&self.layout.tag_current(repo, &tag)).await?.as_ref() == Some(digest) {
                remove_tree(&self.layout.tag(repo, &tag)).await?;
            }
        }
        remove_tree(super::parent(&link)).await?;
        Ok(())
    }

    pub(super) async fn untag_impl(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        if !exists(&self.layout.tag_current(repo, tag)).await {
            return Err(Error::ManifestUnknown(tag.to_string()));
        }
        remove_tree(&self.layout.tag(repo, tag)).await?;
        Ok(())
    }

    pub(super) async fn tags_impl(&self, repo: &RepoName) -> Result<Vec<Tag>> {
        if !exists(&self.layout.repo(repo)).await {
            return Err(Error::NameUnknown(repo.clone()));
        }
        let dir = self.layout.tags(repo);
        let mut tags = Vec::new();
        for name in list_dir(&dir).await? {
            // Only tags with a `current` link exist; anything else is a leftover.
            if let Ok(tag) = Tag::parse(&name) {
                if exists(&self.layout.tag_current(repo, &tag)).await {
                    tags.push(tag);
                }
            }
        }
        tags.sort();
        Ok(tags)
    }

    pub(super) async fn revisions_impl(&self, repo: &RepoName) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.layout.revisions(repo).join(alg.as_str());
            for hex in list_dir(&dir).await? {
                if let Ok(d) = Digest::parse(&format!("{}:{hex}", alg.as_str())) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

/// Names of the entries of `dir`; empty when it does not exist.
pub(super) async fn list_dir(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io { action: "cannot list", path: dir.to_path_buf(), source: e });
        }
    };
    let mut names = Vec::new();
    while let Some(entry) = rd.next_entry().await.map_err(io_err("cannot list", dir))? {
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Finds and reads a manifest by tag or digest (blocking).
fn lookup_manifest(
    layout: &Layout,
    repo: &RepoName,
    reference: &Reference,
) -> Result<StoredManifest> {
    let found = |path: &std::path::Path| match std::fs::metadata(path) {
        Ok(_) => true,
        // As `exists`: only "missing" counts as absent.
        Err(e) => !is_missing(&e),
    };
    if !found(&layout.repo(repo)) {
        return Err(Error::NameUnknown(repo.clone()));
    }
    let unknown = || Error::ManifestUnknown(reference.to_string());
    let digest = match reference {
        Reference::Digest(d) => d.clone(),
        Reference::Tag(t) => {
            read_link_blocking(&layout.tag_current(repo, t))?.ok_or_else(unknown)?
        }
    };
    if !found(&layout.revision_link(repo, &digest)) {
        return Err(unknown());
    }
    let data = layout.blob_data(&digest);
    match std::fs::read(&data) {
        Ok(bytes) => Ok(StoredManifest { digest, bytes: Bytes::from(bytes) }),
        Err(e) if is_missing(&e) => Err(unknown()),
        Err(e) => Err(Error::Io { action: "cannot read", path: data, source: e }),
    }
}
