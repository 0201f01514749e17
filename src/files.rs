//! Atomic file output shared by every area that writes to disk.
//!
//! Every write goes to a temporary file in the destination directory, created with its final
//! mode (so a private key is never readable by others, not even for an instant), is synced,
//! and then renamed over the destination. [`FileSet`] stages several files and commits them
//! together, so a command that fails half-way leaves nothing behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Mode for public files (certificates, configuration).
pub const MODE_PUBLIC: u32 = 0o644;
/// Mode for private keys and password material.
pub const MODE_PRIVATE: u32 = 0o600;

/// Errors from file output.
#[derive(Debug, Error)]
pub enum Error {
    /// An output file exists and overwriting was not requested.
    #[error("{} already exists (pass --force to replace it)", path.display())]
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// An I/O operation failed on a path.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done ("cannot write", "cannot create directory", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io { action, path: path.to_path_buf(), source }
    }
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|e| Error::io("cannot read", path, e))
}

/// Reads a whole UTF-8 file, naming it in the error.
pub fn read_to_string(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
}

/// Creates `dir` and its parents if missing.
pub fn create_dir_all(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))
}

/// Writes `contents` to `path` atomically with `mode` (temp file in the same directory,
/// fsync, rename, directory fsync). Parents are created as needed.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let staged = stage(path, contents, mode)?;
    staged.commit()
}

/// Fails with [`Error::Exists`] for the first of `paths` that exists, unless `force`.
pub fn refuse_existing<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
    force: bool,
) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    for p in paths {
        if p.exists() {
            return Err(Error::Exists { path: p.to_path_buf() });
        }
    }
    Ok(())
}

/// A file written to a temporary name beside its destination, not yet renamed into place.
#[derive(Debug)]
pub struct Staged {
    temp: tempfile::TempPath,
    dest: PathBuf,
}

impl Staged {
    /// Renames the staged file over its destination and syncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        let dest = self.dest;
        self.temp.persist(&dest).map_err(|e| Error::io("cannot rename into", &dest, e.error))?;
        sync_parent(&dest);
        Ok(())
    }

    /// The final destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary file, e.g. to set its owner before [`Staged::commit`].
    pub fn path(&self) -> &Path {
        &self.temp
    }
}

/// Writes `contents` to a temporary file beside `path`, created with `mode`, and syncs it.
pub fn stage(path: &Path, contents: &[u8], mode: u32) -> Result<Staged, Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir_all(&dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".regkit-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file =
        builder.tempfile_in(&dir).map_err(|e| Error::io("cannot create a file in", &dir, e))?;
    // The umask may have narrowed the mode at creation; set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(file.path(), fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("cannot set mode on", path, e))?;
    }
    file.write_all(contents).map_err(|e| Error::io("cannot write", path, e))?;
    file.as_file().sync_all().map_err(|e| Error::io("cannot sync", path, e))?;
    Ok(Staged { temp: file.into_temp_path(), dest: path.to_path_buf() })
}

/// Several files staged together and committed together: if staging any of them fails,
/// none is written.
#[derive(Debug, Default)]
pub struct FileSet {
    staged: Vec<Staged>,
}

impl FileSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages one file.
    pub fn add(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
        self.staged.push(stage(path, contents, mode)?);
        Ok(())
    }

    /// Destinations of the staged files, in the order they were added.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.staged.iter().map(Staged::dest)
    }

    /// Renames every staged file into place.
    pub fn commit(self) -> Result<Vec<PathBuf>, Error> {
        let mut done = Vec::with_capacity(self.staged.len());
        for s in self.staged {
            let dest = s.dest.clone();
            s.commit()?;
            done.push(dest);
        }
        Ok(done)
    }
}

fn sync_parent(path: &Path) {
    // Best effort: a directory fsync makes the rename durable; some filesystems refuse it.
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The Unix permission bits of `path`, or `None` when it cannot be read.
pub fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_file_gets_0600_and_set_commits_all() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sub/key.pem");
        let crt = dir.path().join("sub/cert.pem");
        let mut set = FileSet::new();
        set.add(&key, b"secret", MODE_PRIVATE).unwrap();
        set.add(&crt, b"public", MODE_PUBLIC).unwrap();
        assert!(!key.exists(), "nothing visible before commit");
        set.commit().unwrap();
        assert_eq!(mode_of(&key), Some(0o600));
        assert_eq!(mode_of(&crt), Some(0o644));
        assert_eq!(fs::read(&key).unwrap(), b"secret");
    }

    #[test]
    fn dropped_set_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut set = FileSet::new();
            set.add(&dir.path().join("a"), b"x", MODE_PUBLIC).unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuse_existing_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.key");
        fs::write(&p, b"k").unwrap();
        let err = refuse_existing([p.as_path()], false).unwrap_err();
        assert!(err.to_string().contains("ca.key already exists"), "{err}");
        refuse_existing([p.as_path()], true).unwrap();
    }
}
