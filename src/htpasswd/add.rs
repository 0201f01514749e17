//! `htpasswd add` as one sequence, in two steps around the password: [`PendingAdd::prepare`]
//! checks the user name and the cost and loads the file (so a bad name or an unreadable file
//! fails before anyone types a password), then [`PendingAdd::finish`] checks the password,
//! hashes it, sets the entry in place and saves the file. The caller asks for the password in
//! between (a prompt or standard input) and shows [`Added`]'s summary and warnings.

use std::path::{Path, PathBuf};

use super::{Error, Htpasswd, Saved};

/// A file loaded and a user checked, waiting for the password.
#[derive(Debug)]
pub struct PendingAdd {
    path: PathBuf,
    user: String,
    cost: u32,
    file: Htpasswd,
}

/// What [`PendingAdd::finish`] did.
#[derive(Debug, Clone)]
pub struct Added {
    /// The file written.
    pub path: PathBuf,
    /// The user added or changed.
    pub user: String,
    /// True when the user was there already (its password changed).
    pub existed: bool,
    /// How the file was saved (created, mode, owner).
    pub saved: Saved,
    /// Users whose entries are not bcrypt, which the registry ignores.
    pub non_bcrypt: Vec<String>,
}

impl PendingAdd {
    /// Checks `user` and `cost` and loads `path` (an empty file when it does not exist).
    pub fn prepare(path: &Path, user: &str, cost: u32) -> Result<PendingAdd, Error> {
        super::validate_user(user)?;
        super::validate_cost(cost)?;
        let file = Htpasswd::load_or_empty(path)?;
        Ok(PendingAdd { path: path.to_path_buf(), user: user.to_string(), cost, file })
    }

    /// Checks `password` (empty only with `allow_empty`), hashes it, sets the entry and saves.
    pub fn finish(mut self, password: &str, allow_empty: bool) -> Result<Added, Error> {
        super::check_password(password, allow_empty)?;
        let hash = super::hash_password(password, self.cost)?;
        let existed = self.file.set(&self.user, hash)?;
        let saved = self.file.save(&self.path)?;
        let non_bcrypt = self.file.non_bcrypt_users().iter().map(|u| u.to_string()).collect();
        Ok(Added { path: self.path, user: self.user, existed, saved, non_bcrypt })
    }
}

impl Added {
    /// One line saying what changed, e.g. `added alice to auth/htpasswd (new file, mode 0640)`.
    pub fn summary(&self) -> String {
        let (user, file) = (&self.user, self.path.display());
        if self.existed {
            format!("changed the password of {user} in {file}")
        } else if self.saved.created {
            format!("added {user} to {file} (new file, mode {:04o})", self.saved.mode)
        } else {
            format!("added {user} to {file}")
        }
    }

    /// What deserves a warning: a mode that had to be narrowed, an owner that could not be
    /// kept, entries the registry ignores.
    pub fn warnings(&self) -> Vec<String> {
        let file = self.path.display();
        let mut out = Vec::new();
        if let Some(old) = self.saved.narrowed_from {
            out.push(format!(
                "{file} had mode {old:04o}, readable beyond owner and group; it is now {:04o}",
                self.saved.mode
            ));
        }
        if !self.saved.owner_kept {
            out.push(format!(
                "could not keep the owner/group of {file} (run as its owner or root); check \
                 that the registry can still read it"
            ));
        }
        out.extend(non_bcrypt_warning(&self.path, &self.non_bcrypt));
        out
    }
}

/// The warning for entries that are not bcrypt (`users`), if there are any.
pub fn non_bcrypt_warning(path: &Path, users: &[impl AsRef<str>]) -> Option<String> {
    if users.is_empty() {
        return None;
    }
    let file = path.display();
    let users: Vec<&str> = users.iter().map(AsRef::as_ref).collect();
    Some(format!(
        "{file} has entries that are not bcrypt, which the registry ignores: {}; set them again \
         with `regkit htpasswd add {file} USER`",
        users.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_creates_changes_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth/htpasswd");
        // A bad name fails before the file is even read.
        assert!(matches!(PendingAdd::prepare(&path, "a:b", 4), Err(Error::InvalidUser { .. })));
        assert!(matches!(PendingAdd::prepare(&path, "a", 3), Err(Error::InvalidCost { .. })));

        let added =
            PendingAdd::prepare(&path, "alice", 4).unwrap().finish("s3cret", false).unwrap();
        assert!(!added.existed && added.saved.created);
        assert_eq!(
            added.summary(),
            format!("added alice to {} (new file, mode 0640)", path.display())
        );
        assert!(added.warnings().is_empty());
        assert!(Htpasswd::load(&path).unwrap().verify("alice", "s3cret"));

        // An empty password is refused and nothing is written.
        let before = std::fs::read(&path).unwrap();
        let pending = PendingAdd::prepare(&path, "bob", 4).unwrap();
        assert!(matches!(pending.finish("", false), Err(Error::EmptyPassword)));
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // Changing a password, in a file with an entry the registry ignores and a wide mode.
        std::fs::write(&path, format!("{}old:$apr1$x$y\n", String::from_utf8(before).unwrap()))
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let added = PendingAdd::prepare(&path, "alice", 4).unwrap().finish("new", false).unwrap();
        assert!(added.existed);
        assert_eq!(added.summary(), format!("changed the password of alice in {}", path.display()));
        let warnings = added.warnings();
        assert!(
            warnings.iter().any(|w| w.contains("not bcrypt") && w.contains(": old;")),
            "{warnings:?}"
        );
        #[cfg(unix)]
        assert!(warnings.iter().any(|w| w.contains("had mode 0644")), "{warnings:?}");
        let file = Htpasswd::load(&path).unwrap();
        assert!(file.verify("alice", "new") && !file.verify("alice", "s3cret"));
        assert_eq!(file.users().collect::<Vec<_>>(), ["alice", "old"]);
    }
}
