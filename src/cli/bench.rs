//! `regkit bench`: arguments and glue over [`crate::bench`]. Parses sizes and durations,
//! reads the password, decides whether progress bars are drawn, runs the benchmark on a tokio
//! runtime and prints the table or the JSON.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{Status, output};
use crate::bench::{self, Options, Trust, Workload};

/// Arguments of `regkit bench`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  regkit bench http://127.0.0.1:5000
  regkit bench https://registry.example:5000 --ca ca.pem --user alice --password-stdin < pw
  regkit bench https://127.0.0.1:5000 --ca ca.pem --size 256MiB --duration 5s --runs 3 --json
  regkit bench http://127.0.0.1:5000 --workloads parallel-push --size 256MiB --concurrency 16

Every upload must be acknowledged with the digest the client computed, every pulled blob is
re-hashed and the manifest must round-trip byte for byte; the run stops at the first wrong
answer (exit 2). What was pushed is deleted at the end when the registry allows deletion.")]
pub struct BenchArgs {
    /// Registry URL: http://HOST:PORT or https://HOST:PORT.
    url: String,
    /// PEM file of the CA that signed the registry's certificate (default: the system CAs).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Do not verify the registry's certificate at all.
    #[arg(long)]
    insecure: bool,
    /// User name for HTTP Basic authentication.
    #[arg(long, short = 'u', value_name = "USER")]
    user: Option<String>,
    /// Read the password from the first line of standard input (otherwise it is prompted for).
    #[arg(long, requires = "user")]
    password_stdin: bool,
    /// Size of each pushed and pulled blob (e.g. 1GiB, 256MiB).
    #[arg(long, default_value = "1GiB", value_parser = size)]
    size: u64,
    /// Chunk size for the chunked push.
    #[arg(long, default_value = "16MiB", value_parser = size)]
    chunk: u64,
    /// Connections for the manifest request-rate workloads (and pushes for parallel-push).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long each request-rate or latency workload runs (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = duration)]
    duration: Duration,
    /// Repeat everything N times and report the median of each figure.
    #[arg(long, default_value_t = 1, value_name = "N")]
    runs: u32,
    /// Repository to push into (what is pushed is deleted afterwards; the name may stay listed).
    #[arg(long, default_value = "regkit-bench", value_name = "NAME")]
    repo: String,
    /// Comma-separated workloads: push, chunked, pull, parallel-push, head, get, catalog, tags.
    #[arg(long, default_value = Workload::DEFAULT, value_name = "LIST")]
    workloads: String,
    /// PID of the registry process when it runs on this machine: report its CPU seconds per
    /// workload and its memory (from /proc).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Print the results as JSON on stdout (no progress bars).
    #[arg(long)]
    json: bool,
}

fn size(text: &str) -> Result<u64, String> {
    bench::parse_size(text).map_err(|e| e.to_string())
}

fn duration(text: &str) -> Result<Duration, String> {
    bench::parse_duration(text).map_err(|e| e.to_string())
}

/// Runs `regkit bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<Status> {
    let workloads = Workload::parse_list(&args.workloads)?;
    let trust = match (args.insecure, args.ca) {
        (true, _) => {
            output::warn("--insecure: the registry's certificate is not verified");
            Trust::Insecure
        }
        (false, Some(path)) => Trust::CaFile(path),
        (false, None) => Trust::System,
    };
    let credentials = match args.user {
        None => None,
        Some(user) => Some((user.clone(), password(&user, args.password_stdin)?)),
    };
    let options = Options {
        url: args.url,
        trust,
        credentials,
        size: args.size,
        chunk: args.chunk,
        concurrency: args.concurrency,
        duration: args.duration,
        runs: args.runs,
        repo: args.repo,
        workloads,
        server_pid: args.server_pid,
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(bench::run(&options)).context("benchmark aborted")?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("cannot encode the JSON")? + "\n"
    } else {
        report.table()
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        // A reader that went away (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write the results to stdout");
        }
        _ => {}
    }
    for cleanup in &report.cleanup {
        if let Some(note) = &cleanup.note {
            output::note(&format!("note: {note}"));
        }
    }
    Ok(Status::Ok)
}

fn password(user: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if super::stdin_is_terminal() {
        rpassword::prompt_password(format!("password for {user}: "))
            .context("cannot read the password from the terminal")?
    } else {
        anyhow::bail!("--user needs --password-stdin when standard input is not a terminal");
    };
    if password.is_empty() {
        anyhow::bail!("the password for {user:?} is empty");
    }
    Ok(password)
}
