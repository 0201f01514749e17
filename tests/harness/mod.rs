//! Shared test plumbing: a temp workspace per test, a builder for running the real `regkit`
//! binary, assertions that print everything on failure, and `require_tool`, which skips with
//! a note locally but fails loudly when `CI=true` so CI can never pass by skipping.

#![allow(dead_code)]

pub mod image;
pub mod pki;
pub mod registry;
pub mod serve;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary directory that lives as long as the test.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace { dir: tempfile::Builder::new().prefix("regkit-test-").tempdir().unwrap() }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }
    /// A `regkit` command running in this workspace.
    pub fn regkit(&self) -> Cmd {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regkit"));
        c.current_dir(self.path()).env("NO_COLOR", "1").env_remove("RUST_LOG");
        Cmd { cmd: c, stdin: None }
    }
    /// Any program, running in this workspace.
    pub fn tool(&self, program: &str) -> Cmd {
        let mut c = Command::new(program);
        c.current_dir(self.path());
        Cmd { cmd: c, stdin: None }
    }
}

/// A command builder whose run methods assert and explain.
pub struct Cmd {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// The finished command: status, stdout and stderr as text.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
    pub what: String,
}

impl Cmd {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }
    /// Runs to completion and returns what happened, without asserting.
    pub fn run(mut self) -> Ran {
        use std::io::Write;
        let what = format!("{:?}", self.cmd);
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = self.cmd.spawn().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        if let Some(data) = self.stdin.take() {
            let mut si = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = si.write_all(&data);
            });
        }
        let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
        Ran {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            raw_stdout: stdout,
            what,
        }
    }
    /// Runs and asserts exit status 0.
    pub fn ok(self) -> Ran {
        let r = self.run();
        assert_eq!(r.code, Some(0), "expected success\n{r}");
        r
    }
    /// Runs and asserts the given exit status.
    pub fn code(self, code: i32) -> Ran {
        let r = self.run();
        assert_eq!(r.code, Some(code), "expected exit {code}\n{r}");
        r
    }
    /// Runs and asserts a non-zero exit status.
    pub fn fails(self) -> Ran {
        let r = self.run();
        assert!(r.code.is_some_and(|c| c != 0), "expected failure\n{r}");
        r
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Ran {
    /// Asserts that stderr contains `needle`.
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n{self}");
        self
    }
    /// Asserts that stdout contains `needle`.
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}\n{self}");
        self
    }
}

/// True when the suite runs in CI, where a missing tool is a failure rather than a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns true when `program` is on PATH. When it is not: panics under `CI=true`, otherwise
/// prints a note and returns false so the caller can return early.
#[must_use]
pub fn require_tool(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        if in_ci() {
            panic!("required tool `{program}` is missing in CI (tests/run.sh installs it)");
        }
        eprintln!("SKIPPED: `{program}` is not installed; run tests/run.sh to install it");
    }
    found
}

/// A free TCP port on 127.0.0.1 (for servers that cannot report their own port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process that is killed when dropped, so a failing test never leaks a server.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts TCP connections on `addr` (bounded: 20 s).
pub fn wait_for_port(addr: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listening on {addr} after 20 s");
}

/// Path (relative) -> contents of every file under `dir`.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walk_tree(dir, false)
}

/// Like [`snapshot`], with every directory too, as `<path>/` with no content: a request
/// that leaves an empty directory behind changes this snapshot.
pub fn snapshot_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walk_tree(dir, true)
}

fn walk_tree(dir: &Path, dirs: bool) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if dirs {
                    out.insert(format!("{rel}/"), Vec::new());
                }
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
