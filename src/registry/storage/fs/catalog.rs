//! The catalog: repository names under `repositories/`, paged without walking the tree.
//!
//! A repository is a directory that holds `_manifests` (as in distribution). Names come in
//! path-component order (`a` < `a/b` < `a-c`, distribution's order, so a `last` from
//! either server pages the same way) from a depth-first walk over sorted directory
//! listings that starts each level at `last` (binary search) and stops as soon as `n`
//! names are found. Listings are cached per directory and revalidated by one `stat` of its
//! mtime, so with 100,000 repositories a page costs about `n` stats, not a walk.
//! A listing is cached only once its mtime is a second old: directory mtimes can be
//! coarser than the interval between two changes, and a settled mtime cannot repeat.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::is_missing;
use crate::registry::api::names::RepoName;
use crate::registry::storage::{Error, Result};

/// Directories whose listing is kept (beyond this the cache starts over).
const MAX_CACHED_DIRS: usize = 1_000_000;
/// How old a directory's mtime must be before its listing is cached.
const SETTLE: Duration = Duration::from_secs(1);

/// One directory: whether it is a repository and its name-like subdirectories, sorted.
#[derive(Debug)]
struct Listing {
    mtime: Option<SystemTime>,
    is_repo: bool,
    children: Vec<String>,
}

/// Cached directory listings of `repositories/`, revalidated by mtime.
#[derive(Debug, Default)]
pub struct DirCache {
    map: Mutex<HashMap<PathBuf, Arc<Listing>>>,
}

impl DirCache {
    fn listing(&self, dir: &Path) -> Result<Arc<Listing>> {
        let mtime = match fs::metadata(dir) {
            Ok(m) => m.modified().ok(),
            Err(e) if is_missing(&e) => {
                return Ok(Arc::new(Listing { mtime: None, is_repo: false, children: Vec::new() }));
            }
            Err(e) => return Err(Error::Io { action: "cannot stat", path: dir.into(), source: e }),
        };
        // Insert/lookup/clear keep the map consistent even if a holder panicked.
        let map = || self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = map().get(dir).filter(|l| mtime.is_some() && l.mtime == mtime) {
            return Ok(hit.clone());
        }
        let (is_repo, mut children) = subdirs(dir)?;
        children.sort();
        let listing = Arc::new(Listing { mtime, is_repo, children });
        let settled = mtime
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= SETTLE);
        if settled {
            let mut map = map();
            if map.len() >= MAX_CACHED_DIRS {
                map.clear();
            }
            map.insert(dir.to_path_buf(), listing.clone());
        }
        Ok(listing)
    }
}

/// Up to `n` repository names strictly after `last` (component order) under `root`.
pub fn repositories(
    cache: &DirCache,
    root: &Path,
    last: Option<&str>,
    n: usize,
) -> Result<Vec<RepoName>> {
    let last: Option<Vec<&str>> = last.map(|l| l.split('/').collect());
    let mut out = Vec::new();
    if n > 0 {
        walk(cache, root, &mut Vec::new(), last.as_deref(), n, &mut out)?;
    }
    Ok(out)
}

fn walk(
    cache: &DirCache,
    dir: &Path,
    prefix: &mut Vec<String>,
    last: Option<&[&str]>,
    n: usize,
    out: &mut Vec<RepoName>,
) -> Result<()> {
    let listing = cache.listing(dir)?;
    if listing.is_repo && !prefix.is_empty() {
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
    // On the path to `last`, every child sorting before last's next component holds only
    // names before `last`: start at the first one that does not.
    let depth = prefix.len();
    let start = match last {
        Some(l) if l.len() > depth && cmp_names(prefix, &l[..depth]) == Ordering::Equal => {
            listing.children.partition_point(|c| c.as_str() < l[depth])
        }
        _ => 0,
    };
    for child in &listing.children[start..] {
        prefix.push(child.clone());
        walk(cache, &dir.join(child), prefix, last, n, out)?;
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
pub(super) fn subdirs(dir: &Path) -> Result<(bool, Vec<String>)> {
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
        let all: Vec<String> = repositories(&DirCache::default(), dir.path(), None, 100)
            .unwrap()
            .into_iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(all, ["a", "a/b", "a-c", "b/x/y", "c"]);
        let page: Vec<String> = repositories(&DirCache::default(), dir.path(), Some("a/b"), 2)
            .unwrap()
            .into_iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(page, ["a-c", "b/x/y"]);
        assert!(repositories(&DirCache::default(), dir.path(), Some("c"), 5).unwrap().is_empty());
        assert_eq!(
            repositories(&DirCache::default(), dir.path(), Some("b"), 1).unwrap()[0].as_str(),
            "b/x/y"
        );
    }

    #[test]
    fn cached_listings_follow_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            fs::create_dir_all(dir.path().join(name).join("_manifests")).unwrap();
        }
        // Make every directory look settled so its listing is cached.
        let old = SystemTime::now() - Duration::from_secs(60);
        for d in [dir.path().to_path_buf(), dir.path().join("a"), dir.path().join("b")] {
            fs::File::open(&d).unwrap().set_modified(old).unwrap();
        }
        let cache = DirCache::default();
        let names = |c: &DirCache| -> Vec<String> {
            repositories(c, dir.path(), None, 10).unwrap().iter().map(|r| r.to_string()).collect()
        };
        assert_eq!(names(&cache), ["a", "b"]);
        assert_eq!(cache.map.lock().unwrap().len(), 3, "settled listings are cached");
        fs::create_dir_all(dir.path().join("a0/_manifests")).unwrap();
        fs::create_dir_all(dir.path().join("a/z/_manifests")).unwrap();
        assert_eq!(names(&cache), ["a", "a/z", "a0", "b"]);
    }
}
