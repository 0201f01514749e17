//! Nothing half-written in an existing folder: `init --force` checks every destination before
//! it moves anything, and when a move fails midway it puts back everything it had moved.

use std::fs;
use std::path::{Path, PathBuf};

use super::{PASSWORD, init, leftovers};
use crate::harness::{Workspace, snapshot};

fn force(ws: &Workspace) -> crate::harness::Ran {
    ws.regkit()
        .args(["init", "dep", "--host", "reg.example.com", "--user", "admin", "--password-stdin"])
        .args(["--force", "--keep-ca", "--node-port", "31000"])
        .stdin(format!("{PASSWORD}\n"))
        .code(2)
}

/// Everything under `dir` that `stat` reports, with mode, so a restored file is the original.
fn state(ws: &Workspace) -> (Vec<String>, std::collections::BTreeMap<String, Vec<u8>>, Vec<u32>) {
    let names = leftovers(ws);
    let modes = names
        .iter()
        .filter(|n| !n.ends_with('/'))
        .map(|n| regkit::files::mode_of(&ws.join(n)).unwrap())
        .collect();
    (names, snapshot(ws.path()), modes)
}

#[test]
fn a_folder_where_a_file_goes_is_found_before_anything_moves() {
    let ws = Workspace::new();
    init(&ws, &[]);
    // A non-empty folder where init writes k8s/service.yaml (sorted after many others).
    fs::remove_file(ws.join("dep/k8s/service.yaml")).unwrap();
    fs::create_dir_all(ws.join("dep/k8s/service.yaml/inside")).unwrap();
    fs::write(ws.join("dep/k8s/service.yaml/inside/f"), "x").unwrap();
    let before = state(&ws);
    force(&ws).stderr_has("dep/k8s/service.yaml is a folder: init writes a file there");
    assert_eq!(state(&ws), before, "the folder changed");

    // A file where init puts a folder.
    let ws = Workspace::new();
    init(&ws, &[]);
    fs::remove_dir_all(ws.join("dep/trust")).unwrap();
    fs::write(ws.join("dep/trust"), "not a folder").unwrap();
    let before = state(&ws);
    force(&ws).stderr_has("dep/trust is in the way: init puts a folder there");
    assert_eq!(state(&ws), before, "the folder changed");
}

/// Makes `dir` refuse new and removed entries, for root too (`chattr +i`), and undoes that
/// when dropped.
struct Frozen(PathBuf);

impl Frozen {
    fn new(ws: &Workspace, dir: &Path) -> Frozen {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        let frozen = Frozen(dir.to_path_buf());
        if fs::write(dir.join(".probe"), "").is_ok() {
            // Root ignores modes: make it immutable instead.
            fs::remove_file(dir.join(".probe")).unwrap();
            let r = ws.tool("chattr").arg("+i").arg(dir).run();
            assert_eq!(r.code, Some(0), "cannot make {} read-only for root\n{r}", dir.display());
            assert!(fs::write(dir.join(".probe"), "").is_err(), "{} still writable", dir.display());
        }
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).output();
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn a_move_that_fails_midway_puts_everything_back() {
    let ws = Workspace::new();
    init(&ws, &[]);
    let before = state(&ws);
    // trust/node-trust.tar.gz is the last file moved (paths are moved in sorted order), so
    // every other file has been replaced when its move fails.
    let trust = ws.join("dep/trust");
    let frozen = Frozen::new(&ws, &trust);
    let r = force(&ws);
    r.stderr_has("dep/trust/node-trust.tar.gz");
    drop(frozen);
    let after = state(&ws);
    assert_eq!(after.0, before.0, "files or folders appeared or went away\n{r}");
    for (path, contents) in &before.1 {
        assert_eq!(after.1.get(path), Some(contents), "{path} was not restored\n{r}");
    }
    assert_eq!(after.2, before.2, "modes changed");
    // The folder still works as it was: render finds nothing to do.
    ws.regkit().args(["render", "dep"]).ok().stderr_has("already up to date");
}
