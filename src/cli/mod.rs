//! The command line: clap definitions and dispatch. Each area has one file here holding its
//! arguments and a thin `run` that calls the library; no logic a test would want lives here.

use std::io::IsTerminal;

use clap::{CommandFactory, Parser, Subcommand};

pub mod bench;
pub mod certs;
pub mod doctor;
pub mod htpasswd;
pub mod init;
pub mod k8s;
pub mod output;
pub mod password;
pub mod render;
pub mod serve;
pub mod trust;

pub use output::Status;

/// regkit: everything a private container registry needs, in one binary.
#[derive(Debug, Parser)]
#[command(name = "regkit", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Exit status: 0 success, 1 the check ran and found problems, 2 error.\n\
Set NO_COLOR to disable colour.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure a registry: pushes, pulls, manifest request rates, catalog latency.
    Bench(Box<bench::BenchArgs>),
    /// Create and check certificates: a CA, site and client certificates.
    #[command(subcommand)]
    Certs(certs::Command),
    /// Trust the registry's CA on nodes: Docker, containerd, Podman/CRI-O, k3s, system store.
    #[command(subcommand)]
    Trust(trust::Command),
    /// Manage the registry's htpasswd file (bcrypt users, as Apache's `htpasswd -B`).
    #[command(subcommand)]
    Htpasswd(htpasswd::Command),
    /// Write Kubernetes manifests: pull secrets, TLS and CA secrets, service accounts.
    #[command(subcommand)]
    K8s(k8s::Command),
    /// Create a deployment folder: certificates, users, config.yml, docker-compose, k8s/, trust.
    Init(init::InitArgs),
    /// Regenerate a deployment folder's config.yml, docker-compose.yml and k8s/ from regkit.yaml.
    Render(render::RenderArgs),
    /// Run the registry (OCI distribution / Docker Registry V2) with TLS and htpasswd auth.
    Serve(serve::Args),
    /// Check a registry the way Docker/containerd would, and say what fixes each problem.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  regkit completions bash > /etc/bash_completion.d/regkit")]
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if !matches!(cli.command, Command::Serve(_)) {
        restore_default_sigpipe();
    }
    // `serve` installs its own subscriber from log.level/log.formatter.
    if !matches!(cli.command, Command::Serve(_)) {
        output::init_tracing();
    }
    let result = match cli.command {
        Command::Bench(args) => bench::run(*args),
        Command::Certs(cmd) => certs::run(cmd),
        Command::Trust(cmd) => trust::run(cmd),
        Command::Htpasswd(cmd) => htpasswd::run(cmd),
        Command::K8s(cmd) => k8s::run(cmd),
        Command::Init(args) => init::run(args),
        Command::Render(args) => render::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "regkit", &mut std::io::stdout());
            Ok(Status::Ok)
        }
    };
    match result {
        Ok(status) => status.code(),
        Err(err) => {
            output::error(&format!("{err:#}"));
            2
        }
    }
}

/// Reports a command-line error. Help, version and help-on-missing-subcommand output stays
/// clap's own; every other error becomes one line on stderr,
/// `regkit: error: <what clap says, with its tip and possible values inline> (see regkit
/// <command> --help)`, and exit status 2.
fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return e.exit_code();
    }
    let args: Vec<String> = std::env::args().collect();
    let path = command_path(&args);
    output::error(&format!("{} (see {path} --help)", one_line(&e.render().to_string())));
    2
}

/// Folds clap's rendered error into one line: the message (with a list it introduces, such as
/// the missing arguments), then any `tip:` and `[possible values: ...]`; the usage and "for
/// more information" lines are dropped, the command path replaces them.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    let mut out = first.strip_prefix("error: ").unwrap_or(first).trim_end().to_string();
    let mut listed = Vec::new();
    let mut extras = Vec::new();
    let mut in_list = out.ends_with(':');
    for line in lines {
        let t = line.trim();
        if t.is_empty() {
            in_list = false;
        } else if t.starts_with("[possible values:") || t.starts_with("tip:") {
            extras.push(t.to_string());
        } else if in_list && line.starts_with(char::is_whitespace) {
            listed.push(t.to_string());
        }
    }
    if !listed.is_empty() {
        out.push(' ');
        out.push_str(&listed.join(", "));
    }
    for extra in extras {
        out.push_str(if extra.starts_with('[') { " " } else { "; " });
        out.push_str(&extra);
    }
    out
}

/// `regkit certs site` for `regkit certs site --out x`: the subcommands named on the command
/// line, as far as they exist.
fn command_path(args: &[String]) -> String {
    let mut cmd = Cli::command();
    let mut path = vec!["regkit".to_string()];
    for arg in args.iter().skip(1).filter(|a| !a.starts_with('-')) {
        let Some(sub) = cmd.find_subcommand(arg).cloned() else { break };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    path.join(" ")
}

/// True when standard input is an interactive terminal (prompts are allowed).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Lets a closed stdout (`regkit ... --json | head`) end the process quietly, as other Unix
/// tools do, instead of panicking in `println!`. Not for `serve`, which must survive peers
/// that hang up.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up before any thread is spawned; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
