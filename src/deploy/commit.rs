//! Moving a staged deployment into an existing folder, all or nothing.
//!
//! `init` builds every file in a staging folder first. For an existing `DIR` the files are
//! then renamed into place one by one, so [`commit_into`] makes that safe: every destination
//! is checked before anything moves (a folder where a file goes, a file where a folder goes,
//! an existing file without `overwrite`); each file that is replaced, and each stale file that
//! is removed, is first renamed into a backup folder inside `DIR`; and if any rename fails,
//! everything already moved is put back (new files removed, originals restored, folders this
//! step created removed again). The backups are deleted only once every move succeeded.
//! Renames stay inside `DIR`'s file system because the staging and backup folders are in it.

use std::path::{Path, PathBuf};

use super::Error;
use crate::files;

/// One step done, for undoing it.
struct Moved {
    dest: PathBuf,
    /// Where the original went, when there was one.
    backup: Option<PathBuf>,
    /// Whether the new file is in place at `dest` (false for a removal).
    placed: bool,
}

/// Renames `stage/REL` to `dir/REL` for every `place` path and removes every `remove` path
/// from `dir`, or changes nothing. Existing files are replaced only with `overwrite`.
pub fn commit_into(
    stage: &Path,
    dir: &Path,
    place: &[PathBuf],
    remove: &[PathBuf],
    overwrite: bool,
) -> Result<(), Error> {
    check_destinations(dir, place, overwrite)?;
    let backups = tempfile::Builder::new()
        .prefix(".regkit-backup-")
        .tempdir_in(dir)
        .map_err(|e| files::Error::io("cannot create a folder in", dir, e))?;
    let mut done: Vec<Moved> = Vec::new();
    let mut created: Vec<PathBuf> = Vec::new();
    let steps = place.iter().map(|r| (r, true)).chain(remove.iter().map(|r| (r, false)));
    for (i, (rel, is_place)) in steps.enumerate() {
        let result = step(
            stage,
            dir,
            rel,
            is_place,
            &backups.path().join(i.to_string()),
            &mut done,
            &mut created,
        );
        if let Err(e) = result {
            let undo_failures = undo(done, &created);
            if undo_failures.is_empty() {
                return Err(e);
            }
            // Keep the originals where the user can get them back by hand.
            let kept = backups.keep();
            return Err(Error::Invalid(format!(
                "{e}; putting the folder back failed too ({}): the original files are in {}",
                undo_failures.join("; "),
                kept.display()
            )));
        }
    }
    Ok(())
}

fn step(
    stage: &Path,
    dir: &Path,
    rel: &Path,
    is_place: bool,
    backup: &Path,
    done: &mut Vec<Moved>,
    created: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let dest = dir.join(rel);
    let exists = dest.symlink_metadata().is_ok();
    if !is_place && !exists {
        return Ok(());
    }
    if is_place {
        create_parents(dir, rel, created)?;
    }
    let backup = if exists {
        std::fs::rename(&dest, backup)
            .map_err(|e| files::Error::io("cannot move aside", &dest, e))?;
        Some(backup.to_path_buf())
    } else {
        None
    };
    done.push(Moved { dest: dest.clone(), backup, placed: false });
    if is_place {
        std::fs::rename(stage.join(rel), &dest)
            .map_err(|e| files::Error::io("cannot rename into", &dest, e))?;
        if let Some(last) = done.last_mut() {
            last.placed = true;
        }
    }
    Ok(())
}

/// Creates the missing folders between `dir` and `dir/rel`, recording each one created.
fn create_parents(dir: &Path, rel: &Path, created: &mut Vec<PathBuf>) -> Result<(), Error> {
    let mut parents: Vec<&Path> =
        rel.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
    parents.reverse();
    for p in parents {
        let path = dir.join(p);
        if !path.is_dir() {
            std::fs::create_dir(&path)
                .map_err(|e| files::Error::io("cannot create folder", &path, e))?;
            created.push(path);
        }
    }
    Ok(())
}

/// Undoes `done` in reverse order, then removes the folders in `created`; returns what could
/// not be undone.
fn undo(done: Vec<Moved>, created: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for m in done.into_iter().rev() {
        if m.placed
            && let Err(e) = std::fs::remove_file(&m.dest)
        {
            failures.push(format!("cannot remove {}: {e}", m.dest.display()));
            continue;
        }
        if let Some(b) = &m.backup
            && let Err(e) = std::fs::rename(b, &m.dest)
        {
            failures.push(format!("cannot restore {}: {e}", m.dest.display()));
        }
    }
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
    failures
}

/// Refuses before anything moves: a folder (or anything but a file) where a file goes, a
/// file where a folder goes, and without `overwrite` any existing file.
fn check_destinations(dir: &Path, place: &[PathBuf], overwrite: bool) -> Result<(), Error> {
    for rel in place {
        for parent in rel.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()) {
            let path = dir.join(parent);
            if path.symlink_metadata().is_ok() && !path.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} is in the way: init puts a folder there (nothing was changed)",
                    path.display()
                )));
            }
        }
        let dest = dir.join(rel);
        match dest.symlink_metadata() {
            Ok(m) if m.is_dir() => {
                return Err(Error::Invalid(format!(
                    "{} is a folder: init writes a file there (nothing was changed)",
                    dest.display()
                )));
            }
            Ok(_) if !overwrite => return Err(files::Error::Exists { path: dest }.into()),
            _ => {}
        }
    }
    Ok(())
}
