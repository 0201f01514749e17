//! The benchmark's results: the figures of each run, their medians over `--runs N`, the JSON
//! shape scripts read (`--json`), and the table printed at the end for people.

use std::fmt::Write as _;

use serde::Serialize;

use super::Options;
use super::client::Client;
use super::server::{CpuUse, Memory};
use super::stats::{Latencies, median};
use super::transfers::Transfer;
use super::units::format_size;
use super::workloads::{Cleanup, Pushed, Rate};

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;

/// A blob transfer figure.
#[derive(Debug, Clone, Serialize)]
pub struct TransferFigure {
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Throughput in MiB/s.
    pub mib_per_s: f64,
    /// HTTP requests made.
    pub requests: u64,
    /// Server CPU seconds spent (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds per GiB moved (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s_per_gib: Option<f64>,
    /// CPU seconds spent by the benchmark itself (where /proc exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_s: Option<f64>,
}

impl TransferFigure {
    /// The figure for a finished transfer.
    pub fn new(t: &Transfer, cpu: CpuUse) -> Self {
        let server_cpu_s = cpu.server_s;
        let seconds = t.seconds.max(1e-9);
        TransferFigure {
            bytes: t.bytes,
            seconds: t.seconds,
            mib_per_s: t.bytes as f64 / MIB / seconds,
            requests: t.requests,
            server_cpu_s,
            server_cpu_s_per_gib: server_cpu_s.map(|c| c / (t.bytes as f64 / GIB)),
            client_cpu_s: cpu.client_s,
        }
    }
}

/// A request-rate figure.
#[derive(Debug, Clone, Serialize)]
pub struct RateFigure {
    /// Requests answered and checked.
    pub requests: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Connections opened (the concurrency when keep-alive held).
    pub connections: u64,
    /// Server CPU seconds spent (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    /// CPU seconds spent by the benchmark itself (where /proc exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_s: Option<f64>,
}

impl RateFigure {
    /// The figure for a finished rate workload.
    pub fn new(mut rate: Rate, cpu: CpuUse) -> Self {
        RateFigure {
            requests: rate.requests,
            seconds: rate.seconds,
            requests_per_s: rate.requests as f64 / rate.seconds.max(1e-9),
            p50_ms: rate.latencies.percentile_ms(50.0).unwrap_or(0.0),
            p99_ms: rate.latencies.percentile_ms(99.0).unwrap_or(0.0),
            connections: rate.connections,
            server_cpu_s: cpu.server_s,
            client_cpu_s: cpu.client_s,
        }
    }
}

/// A latency figure.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyFigure {
    /// Requests made (sequentially, one connection).
    pub requests: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Server CPU seconds spent (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    /// CPU seconds spent by the benchmark itself (where /proc exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu_s: Option<f64>,
}

impl LatencyFigure {
    /// The figure for finished latency samples.
    pub fn new(mut latencies: Latencies, cpu: CpuUse) -> Self {
        LatencyFigure {
            requests: latencies.len() as u64,
            p50_ms: latencies.percentile_ms(50.0).unwrap_or(0.0),
            p99_ms: latencies.percentile_ms(99.0).unwrap_or(0.0),
            server_cpu_s: cpu.server_s,
            client_cpu_s: cpu.client_s,
        }
    }
}

/// The figures of one run (or their medians); absent workloads are omitted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Monolithic blob push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_monolithic: Option<TransferFigure>,
    /// Chunked blob push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_chunked: Option<TransferFigure>,
    /// Blob pull.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<TransferFigure>,
    /// Concurrent monolithic pushes, all together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_push: Option<TransferFigure>,
    /// Manifest HEAD rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_head: Option<RateFigure>,
    /// Manifest GET rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_get: Option<RateFigure>,
    /// `_catalog?n=100` latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<LatencyFigure>,
    /// `tags/list` latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags_list: Option<LatencyFigure>,
}

/// Server memory before and after the benchmark (with `--server-pid`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerMemory {
    /// The process observed.
    pub pid: u32,
    /// Before the first workload.
    pub before: Memory,
    /// After the last.
    pub after: Memory,
}

/// Everything `regkit bench` found, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The registry URL.
    pub url: String,
    /// The repository pushed to.
    pub repo: String,
    /// True over https.
    pub tls: bool,
    /// True with Basic credentials.
    pub auth: bool,
    /// Blob size in bytes.
    pub size_bytes: u64,
    /// Chunk size in bytes.
    pub chunk_bytes: u64,
    /// Connections for rate workloads.
    pub concurrency: usize,
    /// Seconds each rate/latency workload ran for.
    pub duration_s: f64,
    /// Number of runs.
    pub runs: u32,
    /// Median of every figure over the runs.
    pub figures: Figures,
    /// Each run's figures.
    pub per_run: Vec<Figures>,
    /// What each run pushed (all deleted when `cleanup[i].deleted`).
    pub pushed: Vec<Pushed>,
    /// Each run's cleanup.
    pub cleanup: Vec<Cleanup>,
    /// Server memory (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerMemory>,
}

impl Report {
    /// Assembles the report; `figures` are the medians of `per_run`.
    pub fn new(
        options: &Options,
        client: &Client,
        per_run: Vec<Figures>,
        pushed: Vec<Pushed>,
        cleanup: Vec<Cleanup>,
        memory: Option<(Memory, Memory)>,
    ) -> Self {
        Report {
            url: options.url.clone(),
            repo: options.repo.clone(),
            tls: client.is_tls(),
            auth: client.has_credentials(),
            size_bytes: options.size,
            chunk_bytes: options.chunk,
            concurrency: options.concurrency,
            duration_s: options.duration.as_secs_f64(),
            runs: options.runs,
            figures: median_figures(&per_run),
            per_run,
            pushed,
            cleanup,
            server: options.server_pid.zip(memory).map(|(pid, (before, after))| ServerMemory {
                pid,
                before,
                after,
            }),
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mode = match (self.tls, self.auth) {
            (true, true) => "TLS, Basic auth",
            (true, false) => "TLS",
            (false, true) => "plain HTTP, Basic auth",
            (false, false) => "plain HTTP",
        };
        let runs =
            if self.runs > 1 { format!(", median of {} runs", self.runs) } else { String::new() };
        let _ = writeln!(out, "regkit bench {} ({mode}), repository {}{runs}", self.url, self.repo);
        let _ = writeln!(out, "{:<28} {:>14}  detail", "figure", "result");
        let mut line = |label: &str, result: String, detail: String| {
            let _ = writeln!(out, "{label:<28} {result:>14}  {detail}");
        };
        let transfer = |t: &TransferFigure| {
            let gib = t.bytes as f64 / GIB;
            let mut cpu = String::new();
            if let Some(c) = t.server_cpu_s_per_gib {
                cpu += &format!("; server {c:.2} CPU-s/GiB");
            }
            if let Some(c) = t.client_cpu_s {
                cpu += &format!("; client {:.2} CPU-s/GiB", c / gib);
            }
            let detail = format!(
                "{} in {:.2} s, {} requests{cpu}",
                format_size(t.bytes),
                t.seconds,
                t.requests
            );
            (format!("{:.1} MiB/s", t.mib_per_s), detail)
        };
        let rate = |r: &RateFigure| {
            let cpu = r.server_cpu_s.map(|c| format!("; server {c:.2} CPU-s")).unwrap_or_default();
            let detail = format!(
                "p50 {:.2} ms, p99 {:.2} ms, {} requests, {} connections{cpu}",
                r.p50_ms, r.p99_ms, r.requests, r.connections
            );
            (format!("{:.0} req/s", r.requests_per_s), detail)
        };
        let latency = |l: &LatencyFigure| {
            (
                format!("{:.2} ms p50", l.p50_ms),
                format!("p99 {:.2} ms, {} requests", l.p99_ms, l.requests),
            )
        };
        let f = &self.figures;
        let chunk = format_size(self.chunk_bytes);
        let c = self.concurrency;
        let transfers = [
            ("push, monolithic".to_string(), &f.push_monolithic),
            (format!("push, chunked ({chunk})"), &f.push_chunked),
            ("pull (re-hashed)".to_string(), &f.pull),
            (format!("{c} pushes at once"), &f.parallel_push),
        ];
        for (label, figure) in transfers {
            if let Some(t) = figure {
                let (result, detail) = transfer(t);
                line(&label, result, detail);
            }
        }
        for (label, figure) in [("HEAD", &f.manifest_head), ("GET", &f.manifest_get)] {
            if let Some(r) = figure {
                let (result, detail) = rate(r);
                line(&format!("manifest {label} ({c} conns)"), result, detail);
            }
        }
        for (label, figure) in [("catalog ?n=100", &f.catalog), ("tags list", &f.tags_list)] {
            if let Some(l) = figure {
                let (result, detail) = latency(l);
                line(label, result, detail);
            }
        }
        if let Some(s) = &self.server {
            let _ = writeln!(
                out,
                "server pid {}: RSS {} KiB before, {} KiB after, peak {} KiB",
                s.pid, s.before.rss_kib, s.after.rss_kib, s.after.peak_rss_kib
            );
        }
        out
    }
}

/// The median of each figure over the runs that have it.
pub fn median_figures(runs: &[Figures]) -> Figures {
    Figures {
        push_monolithic: median_transfer(runs.iter().filter_map(|f| f.push_monolithic.as_ref())),
        push_chunked: median_transfer(runs.iter().filter_map(|f| f.push_chunked.as_ref())),
        pull: median_transfer(runs.iter().filter_map(|f| f.pull.as_ref())),
        parallel_push: median_transfer(runs.iter().filter_map(|f| f.parallel_push.as_ref())),
        manifest_head: median_rate(runs.iter().filter_map(|f| f.manifest_head.as_ref())),
        manifest_get: median_rate(runs.iter().filter_map(|f| f.manifest_get.as_ref())),
        catalog: median_latency(runs.iter().filter_map(|f| f.catalog.as_ref())),
        tags_list: median_latency(runs.iter().filter_map(|f| f.tags_list.as_ref())),
    }
}

/// Median of `get` over `items` (which is non-empty where it is called).
fn med<T>(items: &[&T], get: impl Fn(&T) -> f64) -> f64 {
    median(&items.iter().map(|t| get(t)).collect::<Vec<_>>()).unwrap_or(0.0)
}

fn med_opt<T>(items: &[&T], get: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    let values: Option<Vec<f64>> = items.iter().map(|t| get(t)).collect();
    values.and_then(|v| median(&v))
}

fn median_transfer<'a>(items: impl Iterator<Item = &'a TransferFigure>) -> Option<TransferFigure> {
    let items: Vec<_> = items.collect();
    (!items.is_empty()).then(|| TransferFigure {
        bytes: items[0].bytes,
        seconds: med(&items, |t| t.seconds),
        mib_per_s: med(&items, |t| t.mib_per_s),
        requests: med(&items, |t| t.requests as f64).round() as u64,
        server_cpu_s: med_opt(&items, |t| t.server_cpu_s),
        server_cpu_s_per_gib: med_opt(&items, |t| t.server_cpu_s_per_gib),
        client_cpu_s: med_opt(&items, |t| t.client_cpu_s),
    })
}

fn median_rate<'a>(items: impl Iterator<Item = &'a RateFigure>) -> Option<RateFigure> {
    let items: Vec<_> = items.collect();
    (!items.is_empty()).then(|| RateFigure {
        requests: med(&items, |r| r.requests as f64).round() as u64,
        seconds: med(&items, |r| r.seconds),
        requests_per_s: med(&items, |r| r.requests_per_s),
        p50_ms: med(&items, |r| r.p50_ms),
        p99_ms: med(&items, |r| r.p99_ms),
        connections: med(&items, |r| r.connections as f64).round() as u64,
        server_cpu_s: med_opt(&items, |r| r.server_cpu_s),
        client_cpu_s: med_opt(&items, |r| r.client_cpu_s),
    })
}

fn median_latency<'a>(items: impl Iterator<Item = &'a LatencyFigure>) -> Option<LatencyFigure> {
    let items: Vec<_> = items.collect();
    (!items.is_empty()).then(|| LatencyFigure {
        requests: med(&items, |l| l.requests as f64).round() as u64,
        p50_ms: med(&items, |l| l.p50_ms),
        p99_ms: med(&items, |l| l.p99_ms),
        server_cpu_s: med_opt(&items, |l| l.server_cpu_s),
        client_cpu_s: med_opt(&items, |l| l.client_cpu_s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(mib_per_s: f64) -> Figures {
        Figures {
            push_monolithic: Some(TransferFigure {
                bytes: 1 << 30,
                seconds: 1024.0 / mib_per_s,
                mib_per_s,
                requests: 2,
                server_cpu_s: Some(mib_per_s / 100.0),
                server_cpu_s_per_gib: None,
                client_cpu_s: None,
            }),
            ..Figures::default()
        }
    }

    #[test]
    fn medians_per_field() {
        let runs = [transfer(100.0), transfer(300.0), transfer(200.0)];
        let m = median_figures(&runs).push_monolithic.unwrap();
        assert_eq!(m.mib_per_s, 200.0);
        assert_eq!(m.server_cpu_s, Some(2.0));
        assert_eq!(m.server_cpu_s_per_gib, None);
        assert!(median_figures(&runs).pull.is_none());
    }

    #[test]
    fn table_lists_each_figure() {
        let mut figures = transfer(150.0);
        figures.catalog = Some(LatencyFigure {
            requests: 10,
            p50_ms: 1.5,
            p99_ms: 9.0,
            server_cpu_s: None,
            client_cpu_s: None,
        });
        let report = Report {
            url: "https://r:5000".into(),
            repo: "regkit-bench".into(),
            tls: true,
            auth: false,
            size_bytes: 1 << 30,
            chunk_bytes: 16 << 20,
            concurrency: 16,
            duration_s: 10.0,
            runs: 3,
            figures: figures.clone(),
            per_run: vec![figures],
            pushed: Vec::new(),
            cleanup: Vec::new(),
            server: None,
        };
        let table = report.table();
        assert!(table.starts_with(
            "regkit bench https://r:5000 (TLS), repository regkit-bench, median of 3 runs\n"
        ));
        assert!(
            table.contains(
                "push, monolithic                150.0 MiB/s  1GiB in 6.83 s, 2 requests\n"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "catalog ?n=100                  1.50 ms p50  p99 9.00 ms, 10 requests\n"
            ),
            "{table}"
        );
        assert!(!table.contains("pull"));
    }

    #[test]
    fn transfer_arithmetic() {
        let t = Transfer { bytes: 512 << 20, seconds: 2.0, requests: 2 };
        let f = TransferFigure::new(&t, CpuUse { server_s: Some(3.0), client_s: Some(1.0) });
        assert_eq!(f.mib_per_s, 256.0);
        assert_eq!(f.server_cpu_s_per_gib, Some(6.0));
    }
}
