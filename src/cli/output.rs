//! Terminal output for the CLI: notes, warnings and errors on stderr, colour only when
//! stderr is a terminal and `NO_COLOR` is unset, and the meaning of exit codes.

use std::io::IsTerminal;

/// The outcome of a command that ran to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything checked out (exit 0).
    Ok,
    /// The command ran but found problems, e.g. a certificate that does not verify (exit 1).
    Problems,
}

impl Status {
    /// The process exit code for this status.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Problems => 1,
        }
    }
}

/// True when colour may be used on stderr.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

fn paint(code: &str, label: &str) -> String {
    if color_enabled() { format!("\x1b[{code}m{label}\x1b[0m") } else { label.to_string() }
}

/// Prints `regkit: error: MSG` on stderr.
pub fn error(msg: &str) {
    eprintln!("regkit: {} {msg}", paint("1;31", "error:"));
}

/// Prints `regkit: warning: MSG` on stderr.
pub fn warn(msg: &str) {
    eprintln!("regkit: {} {msg}", paint("1;33", "warning:"));
}

/// Prints an informational line on stderr (stdout stays for data and `--json`).
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

/// Installs the tracing subscriber (level from `RUST_LOG`, default `info`) on stderr.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color_enabled())
        .try_init();
}
