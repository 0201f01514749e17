//! The command line: clap definitions and dispatch. Each area has one file here holding its
//! arguments and a thin `run` that calls the library; no logic a test would want lives here.

use std::io::IsTerminal;

use clap::{CommandFactory, Parser, Subcommand};

pub mod bench;
pub mod certs;
pub mod output;

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
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  regkit completions bash > /etc/bash_completion.d/regkit")]
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    output::init_tracing();
    let result = match cli.command {
        Command::Bench(args) => bench::run(*args),
        Command::Certs(cmd) => certs::run(cmd),
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

/// True when standard input is an interactive terminal (prompts are allowed).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}
