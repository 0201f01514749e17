//! The operating-system trust store, Debian family: a `.crt` file in
//! `/usr/local/share/ca-certificates/` and `update-ca-certificates` to rebuild
//! `/etc/ssl/certs`. Used by curl, Go programs and anything else that reads the system store.
//! The command runs only when the root is `/`; for a staging tree it is left to the node.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Error, RegistryHost};

/// The command that rebuilds the system store.
pub const UPDATE_COMMAND: &str = "update-ca-certificates";

/// The CA file, relative to the root: `usr/local/share/ca-certificates/regkit-<flat>.crt`
/// (the tool only picks up names ending in `.crt`).
pub fn ca_path(registry: &RegistryHost) -> PathBuf {
    PathBuf::from("usr/local/share/ca-certificates").join(format!("regkit-{}.crt", registry.flat()))
}

/// True when `root` is the running system's root, where the store may be rebuilt.
pub fn is_live_root(root: &Path) -> bool {
    root.canonicalize().is_ok_and(|p| p == Path::new("/"))
}

/// Runs `update-ca-certificates` and returns its summary line (e.g. "1 added, 0 removed").
/// `fresh` (after a removal) rebuilds `/etc/ssl/certs` from scratch: a plain run leaves the
/// removed certificate's symlinks dangling and the certificate in the bundle.
pub fn update_store(fresh: bool) -> Result<String, Error> {
    let mut cmd = Command::new(UPDATE_COMMAND);
    if fresh {
        cmd.arg("--fresh");
    }
    let out = cmd.output().map_err(|e| Error::Command {
        command: UPDATE_COMMAND.into(),
        reason: format!("cannot run it ({e}); install the ca-certificates package"),
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Command {
            command: UPDATE_COMMAND.into(),
            reason: format!("failed ({}): {}", out.status, err.trim()),
        });
    }
    let summary = text.lines().find(|l| l.contains("added")).unwrap_or("done");
    Ok(summary.trim().to_string())
}
