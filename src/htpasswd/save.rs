//! Writing an htpasswd file back to disk: which mode it gets and who owns it.
//!
//! The registry process reads the file, usually through its group, so a new file is 0640.
//! An existing file keeps its mode when that is 0640 or stricter, and is narrowed to fit
//! inside 0640 otherwise (the caller warns). Because the write is a temp file renamed over
//! the old one, the old owner and group are copied onto the temp file first where the
//! system allows it, so a `root:registry 0640` file stays readable by the registry.

use std::path::Path;

use super::{Error, Htpasswd};

/// Mode of a newly created htpasswd file, and the widest mode an existing one keeps.
pub const MODE_NEW: u32 = 0o640;

/// What [`Htpasswd::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// The file did not exist before.
    pub created: bool,
    /// The mode the file has now.
    pub mode: u32,
    /// The previous mode, when it was wider than 0640 and had to be narrowed.
    pub narrowed_from: Option<u32>,
    /// False when the old owner or group could not be kept (not permitted for this user).
    pub owner_kept: bool,
}

/// The mode to write with, given the existing file's mode (`None` for a new file), and
/// whether that narrowed the existing mode.
pub fn mode_for(existing: Option<u32>) -> (u32, bool) {
    match existing {
        None => (MODE_NEW, false),
        Some(mode) => {
            let perms = mode & 0o777;
            let kept = perms & MODE_NEW;
            (kept, mode & 0o7777 != kept)
        }
    }
}

impl Htpasswd {
    /// Writes the file atomically, creating it (and its directory) when missing, with the
    /// mode from [`mode_for`] and, for an existing file, its owner and group.
    pub fn save(&self, path: &Path) -> Result<Saved, Error> {
        let meta = std::fs::metadata(path).ok();
        let existing_mode = meta.as_ref().and_then(|_| crate::files::mode_of(path));
        let (mode, narrowed) = mode_for(existing_mode);
        let staged = crate::files::stage(path, self.render().as_bytes(), mode)?;
        let owner_kept = match &meta {
            Some(meta) => keep_owner(staged.path(), meta),
            None => true,
        };
        staged.commit()?;
        Ok(Saved {
            created: meta.is_none(),
            mode,
            narrowed_from: if narrowed { existing_mode } else { None },
            owner_kept,
        })
    }
}

/// Gives `temp` the owner and group of the file it replaces; true when they match after.
#[cfg(unix)]
fn keep_owner(temp: &Path, old: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(new) = std::fs::metadata(temp) else { return false };
    if (new.uid(), new.gid()) == (old.uid(), old.gid()) {
        return true;
    }
    if std::os::unix::fs::chown(temp, Some(old.uid()), Some(old.gid())).is_ok() {
        return true;
    }
    // Not root: an owner change is refused, but the group may be one of ours.
    new.uid() == old.uid() && std::os::unix::fs::chown(temp, None, Some(old.gid())).is_ok()
}

#[cfg(not(unix))]
fn keep_owner(_temp: &Path, _old: &std::fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_are_0640_and_wider_modes_are_narrowed() {
        assert_eq!(mode_for(None), (0o640, false));
        assert_eq!(mode_for(Some(0o640)), (0o640, false));
        assert_eq!(mode_for(Some(0o600)), (0o600, false));
        assert_eq!(mode_for(Some(0o400)), (0o400, false));
        assert_eq!(mode_for(Some(0o644)), (0o640, true));
        assert_eq!(mode_for(Some(0o666)), (0o640, true));
        assert_eq!(mode_for(Some(0o4755)), (0o640, true));
    }

    #[test]
    fn save_creates_keeps_and_narrows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/htpasswd");
        let mut f = Htpasswd::default();
        f.set("a", "$2y$04$x".into()).unwrap();
        let saved = f.save(&path).unwrap();
        assert!(saved.created && saved.owner_kept);
        assert_eq!(crate::files::mode_of(&path), Some(0o640));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(f.save(&path).unwrap().narrowed_from, None);
            assert_eq!(crate::files::mode_of(&path), Some(0o600));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
            let saved = f.save(&path).unwrap();
            assert_eq!(
                (saved.mode, saved.narrowed_from, saved.created),
                (0o640, Some(0o664), false)
            );
            assert_eq!(crate::files::mode_of(&path), Some(0o640));
        }
        assert_eq!(Htpasswd::load(&path).unwrap(), f);
    }
}
