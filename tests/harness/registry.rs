//! Debian's `docker-registry` (distribution 2.8), the reference registry, started from a
//! `config.yml` with `REGISTRY_*` environment overrides on a free loopback port, stopped when
//! the handle drops; and skopeo copies to and from it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::{KillOnDrop, Ran, Workspace, free_port, wait_for_port};

/// A running reference registry.
pub struct Reference {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
    _child: KillOnDrop,
}

impl Reference {
    /// Starts `docker-registry serve config` with `env` (plus `REGISTRY_HTTP_ADDR`) and
    /// waits until it accepts connections.
    pub fn start(ws: &Workspace, config: &Path, env: &[(&str, OsString)]) -> Reference {
        let mut cmd = std::process::Command::new("docker-registry");
        cmd.arg("serve").arg(config).current_dir(ws.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(ws, cmd)
    }

    /// Runs the shell command `script` (which must end up running the registry) in `cwd`
    /// through `sh -c 'exec ...'`, so the handle kills the registry itself.
    pub fn start_shell(ws: &Workspace, cwd: &Path, script: &str) -> Reference {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(format!("exec {script}")).current_dir(cwd);
        Self::spawn(ws, cmd)
    }

    fn spawn(ws: &Workspace, mut cmd: std::process::Command) -> Reference {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = ws.join("registry.log");
        cmd.env("REGISTRY_HTTP_ADDR", &addr);
        cmd.stdout(std::process::Stdio::null());
        cmd.stderr(fs::File::create(&log).unwrap());
        let child = KillOnDrop(cmd.spawn().expect("the registry starts"));
        wait_for_port(&addr);
        Reference { addr, log, _child: child }
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `skopeo copy` from `src` to `dest` using `cert_dir` for TLS on the registry side and
/// `creds` (`user:password`) when given. Does not assert.
pub fn skopeo_copy(
    ws: &Workspace,
    src: &str,
    dest: &str,
    cert_dir: &Path,
    creds: Option<&str>,
    push: bool,
) -> Ran {
    let (cert_flag, creds_flag) =
        if push { ("--dest-cert-dir", "--dest-creds") } else { ("--src-cert-dir", "--src-creds") };
    let mut cmd = ws.tool("skopeo").args(["copy", cert_flag]).arg(cert_dir);
    if let Some(c) = creds {
        cmd = cmd.args([creds_flag, c]);
    }
    cmd.args([src, dest]).run()
}
