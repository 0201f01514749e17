//! `regkit bench`: how fast is a registry? Pushes (monolithic, chunked, many at once), pulls,
//! manifest HEAD/GET request rates and catalog/tags latency against any registry speaking the
//! OCI distribution / Docker Registry V2 API, every answer checked, then deletes what it pushed.
//!
//! Layout: [`client`] speaks HTTP/1.1 (TLS, Basic auth), [`data`] makes the random bytes,
//! [`transfers`] moves blobs, [`workloads`] runs the manifest, rate and latency workloads,
//! [`stats`] does percentiles and medians, [`server`] reads a local server's CPU time and
//! memory from /proc, [`report`] prints the table and the JSON. This module holds the options,
//! the error type and the run loop; it
//! calls the others, which never call back up.

pub mod client;
pub mod data;
pub mod report;
pub mod server;
pub mod stats;
pub mod transfers;
pub mod units;
pub mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

pub use client::Trust;
pub use report::{Figures, Report};
pub use units::{format_size, parse_duration, parse_size};

use client::Client;
use report::{LatencyFigure, RateFigure, TransferFigure};
use server::{CpuMeter, ServerProbe};
use workloads::{Cleanup, Pushed};

/// Errors that stop a benchmark. Each names the request or value involved.
#[derive(Debug, Error)]
pub enum Error {
    /// A size option could not be parsed.
    #[error("invalid size {value:?}: {reason}")]
    InvalidSize {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A duration option could not be parsed.
    #[error("invalid duration {value:?}: {reason}")]
    InvalidDuration {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry URL is unusable.
    #[error("invalid registry URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The options contradict each other or are out of range.
    #[error("{reason}")]
    Options {
        /// What is wrong.
        reason: String,
    },
    /// The CA file could not be read.
    #[error("cannot read the CA file {path}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("the CA file {path} is not usable: {reason}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {addr}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed (often: the certificate is not trusted; see `--ca`).
    #[error(
        "TLS handshake with {addr} failed (is --ca the CA that signed the registry's certificate?)"
    )]
    Tls {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP failed below the status line (connection reset, malformed answer).
    #[error("{what}: HTTP error")]
    Http {
        /// The request.
        what: String,
        /// Why.
        source: hyper::Error,
    },
    /// The registry answered with a status the workload does not accept.
    #[error("{what}: the registry answered {status}{hint}: {body}", hint = status_hint(*status))]
    Status {
        /// The request.
        what: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// A digest, length or body did not match what was sent.
    #[error("{what}: expected {expected}, got {got}")]
    Mismatch {
        /// The request.
        what: String,
        /// What should have come back.
        expected: String,
        /// What did.
        got: String,
    },
    /// The answer broke the protocol (missing header, bad Location, not JSON).
    #[error("{what}: {detail}")]
    Protocol {
        /// The request.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A request took longer than its bound.
    #[error("{what}: no answer within {seconds} s")]
    Timeout {
        /// The request.
        what: String,
        /// The bound.
        seconds: u64,
    },
    /// `--server-pid` could not be read from /proc.
    #[error("cannot read {path}: {reason} (is --server-pid a running process on this machine?)")]
    Proc {
        /// The /proc file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 => " (authentication failed: check --user and the password)",
        403 => " (access denied for this user)",
        405 => " (operation disabled: read-only registry, or deletion not enabled)",
        _ => "",
    }
}

/// One measured workload, selectable with `--workloads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `push`: monolithic blob push (POST + PUT with the body).
    Push,
    /// `chunked`: chunked blob push (POST, PATCH per chunk, PUT ?digest=).
    Chunked,
    /// `pull`: blob pull, re-hashed.
    Pull,
    /// `head`: manifest HEAD request rate.
    Head,
    /// `get`: manifest GET request rate.
    Get,
    /// `catalog`: `_catalog?n=100` latency, paging through the whole catalog by `Link`.
    Catalog,
    /// `tags`: `tags/list` latency.
    Tags,
    /// `parallel-push`: `--concurrency` monolithic pushes of `--size` at once.
    ParallelPush,
}

impl Workload {
    /// Every workload with its name, in run order.
    pub const ALL: [(&'static str, Workload); 8] = [
        ("push", Workload::Push),
        ("chunked", Workload::Chunked),
        ("pull", Workload::Pull),
        ("parallel-push", Workload::ParallelPush),
        ("head", Workload::Head),
        ("get", Workload::Get),
        ("catalog", Workload::Catalog),
        ("tags", Workload::Tags),
    ];
    /// The default selection: everything but `parallel-push`.
    pub const DEFAULT: &'static str = "push,chunked,pull,head,get,catalog,tags";

    /// Parses a comma-separated list of workload names.
    pub fn parse_list(text: &str) -> Result<Vec<Workload>, Error> {
        let mut list = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let found = Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, w)| *w);
            let workload = found.ok_or_else(|| Error::Options {
                reason: format!(
                    "unknown workload {name:?} (choose from {})",
                    Self::ALL.map(|(n, _)| n).join(", ")
                ),
            })?;
            if !list.contains(&workload) {
                list.push(workload);
            }
        }
        if list.is_empty() {
            return Err(Error::Options { reason: "no workload selected".into() });
        }
        Ok(list)
    }
}

/// Everything a benchmark run needs, resolved by the CLI.
#[derive(Debug, Clone)]
pub struct Options {
    /// Registry base URL, `http://` or `https://`.
    pub url: String,
    /// Which certificates to trust for https.
    pub trust: Trust,
    /// User name and password for HTTP Basic.
    pub credentials: Option<(String, String)>,
    /// Blob size for pushes and the pull.
    pub size: u64,
    /// Chunk size for the chunked push.
    pub chunk: u64,
    /// Connections for the request-rate workloads and pushes for `parallel-push`.
    pub concurrency: usize,
    /// How long each request-rate or latency workload runs.
    pub duration: Duration,
    /// Number of runs; figures are their medians.
    pub runs: u32,
    /// Repository to push into.
    pub repo: String,
    /// Workloads to run, in any order (run order is fixed).
    pub workloads: Vec<Workload>,
    /// A server process on this machine whose CPU time and memory to report.
    pub server_pid: Option<u32>,
    /// Draw progress bars on stderr (the CLI turns this off for `--json` or no terminal).
    pub progress: bool,
}

/// Runs the benchmark `options.runs` times and reports the median figures. On an error the
/// current run's pushes are deleted (best effort) before the error is returned.
pub async fn run(options: &Options) -> Result<Report, Error> {
    validate(options)?;
    let credentials = options.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let client = Client::new(&options.url, &options.trust, credentials)?;
    let probe = options.server_pid.map(ServerProbe::new).transpose()?;
    let memory_before = probe.as_ref().map(ServerProbe::memory).transpose()?;
    workloads::check_base(&client).await?;
    let base_seed: u64 = rand::random();
    let mut per_run = Vec::new();
    let mut pushed_runs = Vec::new();
    let mut cleanups: Vec<Cleanup> = Vec::new();
    for run in 0..options.runs {
        let mut pushed = Pushed::default();
        let seed = base_seed.wrapping_add(u64::from(run) << 32);
        let outcome = one_run(options, &client, probe.as_ref(), seed, &mut pushed).await;
        let cleanup = workloads::cleanup(&mut client.conn(), &client, &options.repo, &pushed).await;
        per_run.push(outcome?);
        cleanups.push(cleanup?);
        pushed_runs.push(pushed);
    }
    let memory_after = probe.as_ref().map(ServerProbe::memory).transpose()?;
    Ok(Report::new(
        options,
        &client,
        per_run,
        pushed_runs,
        cleanups,
        memory_before.zip(memory_after),
    ))
}

fn validate(options: &Options) -> Result<(), Error> {
    let bad = |reason: &str| Err(Error::Options { reason: reason.into() });
    if options.concurrency == 0 || options.concurrency > 1024 {
        return bad("--concurrency must be between 1 and 1024");
    }
    if options.runs == 0 || options.runs > 100 {
        return bad("--runs must be between 1 and 100");
    }
    if options.chunk == 0 {
        return bad("--chunk must be at least one byte");
    }
    if options.size / options.chunk > 100_000 {
        return bad("--size / --chunk gives more than 100,000 chunks: use a larger --chunk");
    }
    if options.repo.is_empty()
        || !options.repo.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
        })
    {
        return bad("--repo must be a repository name such as regkit-bench or team/bench");
    }
    Ok(())
}

/// One run of every selected workload, in a fixed order. Records what it pushed in `pushed`
/// as it goes, so the caller can delete it even when a later step fails.
async fn one_run(
    options: &Options,
    client: &Client,
    probe: Option<&ServerProbe>,
    seed: u64,
    pushed: &mut Pushed,
) -> Result<Figures, Error> {
    let selected = |w: Workload| options.workloads.contains(&w);
    let progress = Progress { enabled: options.progress };
    let (repo, size) = (options.repo.as_str(), options.size);
    let mut conn = client.conn();
    let mut figures = Figures::default();
    let mut layers: Vec<(String, u64)> = Vec::new();

    if selected(Workload::Push) || selected(Workload::Pull) {
        let digest =
            transfers::precompute_digest(seed ^ 1, size, progress.bytes("hashing test data", size))
                .await?;
        let bar = progress.bytes("push (monolithic)", size);
        let meter = CpuMeter::start(probe)?;
        let t = transfers::push_monolithic(&mut conn, client, repo, seed ^ 1, size, &digest, bar)
            .await?;
        let cpu = meter.stop()?;
        pushed.blobs.push(digest.clone());
        transfers::check_blob(&mut conn, client, repo, &digest, size).await?;
        if selected(Workload::Push) {
            figures.push_monolithic = Some(TransferFigure::new(&t, cpu));
        }
        if selected(Workload::Pull) {
            let bar = progress.bytes("pull (re-hashed)", size);
            let meter = CpuMeter::start(probe)?;
            let t = transfers::pull(&mut conn, client, repo, &digest, size, bar).await?;
            figures.pull = Some(TransferFigure::new(&t, meter.stop()?));
        }
        layers.push((digest, size));
    }
    if selected(Workload::Chunked) {
        let digest =
            transfers::precompute_digest(seed ^ 2, size, progress.bytes("hashing test data", size))
                .await?;
        let bar = progress.bytes("push (chunked)", size);
        let meter = CpuMeter::start(probe)?;
        let t = transfers::push_chunked(
            &mut conn,
            client,
            repo,
            seed ^ 2,
            size,
            options.chunk,
            &digest,
            bar,
        )
        .await?;
        let cpu = meter.stop()?;
        pushed.blobs.push(digest.clone());
        transfers::check_blob(&mut conn, client, repo, &digest, size).await?;
        figures.push_chunked = Some(TransferFigure::new(&t, cpu));
        layers.push((digest, size));
    }
    if selected(Workload::ParallelPush) {
        let n = options.concurrency as u64;
        let hashing = progress.bytes("hashing test data", size * n);
        let seeds: Vec<u64> = (0..n).map(|i| seed ^ (0x100 + i)).collect();
        let digests = futures_util::future::try_join_all(
            seeds.iter().map(|&s| transfers::precompute_digest(s, size, hashing.clone())),
        )
        .await?;
        let blobs: Vec<(u64, String)> = seeds.into_iter().zip(digests).collect();
        let bar = progress.bytes(&format!("{n} pushes at once"), size * n);
        let meter = CpuMeter::start(probe)?;
        let outcome = transfers::parallel_push(client, repo, &blobs, size, bar).await;
        let cpu = meter.stop()?;
        // Record every digest even on failure: cleanup of a blob that never landed only
        // happens on the error path, where cleanup errors are ignored.
        pushed.blobs.extend(blobs.iter().map(|(_, d)| d.clone()));
        let t = outcome?;
        for (_, digest) in &blobs {
            transfers::check_blob(&mut conn, client, repo, digest, size).await?;
        }
        figures.parallel_push = Some(TransferFigure::new(&t, cpu));
    }

    // The manifest the HEAD/GET/tags workloads read: a small config blob plus the layers
    // pushed above (or one small layer when no big blob was pushed).
    let config = Bytes::from(format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}},\
         \"config\":{{\"Labels\":{{\"regkit.bench.seed\":\"{seed:016x}\"}}}}}}"
    ));
    let config_size = config.len() as u64;
    let config_digest = transfers::push_small(&mut conn, client, repo, config).await?;
    pushed.blobs.push(config_digest.clone());
    if layers.is_empty() {
        let mut source = data::RandomSource::new(seed ^ 3);
        let small = source.take(4096);
        let digest = transfers::push_small(&mut conn, client, repo, small.clone()).await?;
        pushed.blobs.push(digest.clone());
        layers.push((digest, small.len() as u64));
    }
    let tag = format!("bench-{seed:016x}");
    let manifest = workloads::push_manifest(
        &mut conn,
        client,
        repo,
        &tag,
        (&config_digest, config_size),
        &layers,
    )
    .await?;
    pushed.manifest = Some(manifest.digest.clone());
    pushed.tag = Some(tag.clone());

    for (workload, get) in [(Workload::Head, false), (Workload::Get, true)] {
        if selected(workload) {
            let label =
                format!("manifest {} x{}", if get { "GET" } else { "HEAD" }, options.concurrency);
            let bar = progress.spinner(&label);
            let meter = CpuMeter::start(probe)?;
            let rate = workloads::manifest_rate(
                client,
                repo,
                &manifest,
                get,
                options.concurrency,
                options.duration,
            )
            .await?;
            let figure = Some(RateFigure::new(rate, meter.stop()?));
            bar.finish_and_clear();
            if get { figures.manifest_get = figure } else { figures.manifest_head = figure }
        }
    }
    if selected(Workload::Catalog) {
        // Every page in turn, following `Link` (as a client listing the registry does), then
        // from the start again: the cost of a page deep in the catalog counts, not only the
        // first one.
        let bar = progress.spinner("catalog ?n=100 pages");
        let target = client.path("/v2/_catalog?n=100");
        let meter = CpuMeter::start(probe)?;
        let latencies = workloads::latency(
            client,
            &target,
            options.duration,
            "GET /v2/_catalog?n=100 (following Link)",
            |response, json| {
                json.get("repositories")
                    .and_then(|r| r.as_array())
                    .ok_or_else(|| "the answer has no \"repositories\" list".to_string())?;
                Ok(workloads::next_link(response))
            },
        )
        .await?;
        figures.catalog = Some(LatencyFigure::new(latencies, meter.stop()?));
        bar.finish_and_clear();
    }
    if selected(Workload::Tags) {
        let bar = progress.spinner("tags/list");
        let target = client.path(&format!("/v2/{repo}/tags/list"));
        let what = format!("GET /v2/{repo}/tags/list");
        let meter = CpuMeter::start(probe)?;
        let latencies = workloads::latency(client, &target, options.duration, &what, |_, json| {
            let tags = json.get("tags").and_then(|t| t.as_array());
            match tags {
                Some(tags) if tags.iter().any(|t| t.as_str() == Some(tag.as_str())) => Ok(None),
                _ => Err(format!("the tag {tag:?} just pushed is not listed")),
            }
        })
        .await?;
        figures.tags_list = Some(LatencyFigure::new(latencies, meter.stop()?));
        bar.finish_and_clear();
    }
    Ok(figures)
}

/// Progress bars on stderr, or hidden ones that cost nothing.
struct Progress {
    enabled: bool,
}

impl Progress {
    fn bytes(&self, label: &str, total: u64) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(
            "{msg:22} {wide_bar} {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(total).with_style(style).with_message(label.to_string())
    }

    fn spinner(&self, label: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
