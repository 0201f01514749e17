//! `regkit bench` against the reference registry (Debian's `docker-registry`, distribution
//! 2.8) started here on loopback: plain HTTP, TLS with openssl-made certificates, htpasswd
//! auth, a read-only registry and wrong credentials. Asserts that every figure is reported
//! and positive, that nothing is left behind when deletion is enabled (API and disk after a
//! garbage collection), and that a rejected push aborts with a clear error. No timings are
//! asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{KillOnDrop, Workspace, free_port, require_tool, wait_for_port};

/// A running reference registry.
struct Reference {
    child: KillOnDrop,
    url: String,
    config: PathBuf,
    root: PathBuf,
}

#[derive(Default)]
struct Setup<'a> {
    tls: Option<(&'a Path, &'a Path)>,
    htpasswd: Option<&'a Path>,
    read_only: bool,
}

fn start_reference(ws: &Workspace, name: &str, setup: Setup<'_>) -> Reference {
    let port = free_port();
    let root = ws.join(format!("{name}-data"));
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  \
         filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
        root.display()
    );
    if setup.read_only {
        config += "  maintenance:\n    readonly:\n      enabled: true\n";
    }
    config += &format!("http:\n  addr: 127.0.0.1:{port}\n");
    if let Some((cert, key)) = setup.tls {
        config +=
            &format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display());
    }
    if let Some(path) = setup.htpasswd {
        config += &format!("auth:\n  htpasswd:\n    realm: bench\n    path: {}\n", path.display());
    }
    let config_path = ws.join(format!("{name}.yml"));
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(ws.join(format!("{name}.log"))).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start docker-registry");
    let child = KillOnDrop(child);
    wait_for_port(&format!("127.0.0.1:{port}"));
    let scheme = if setup.tls.is_some() { "https" } else { "http" };
    Reference { child, url: format!("{scheme}://127.0.0.1:{port}"), config: config_path, root }
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with the openssl CLI.
fn openssl_certs(ws: &Workspace, prefix: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| ws.join(format!("{prefix}{f}"));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    ws.tool("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-days", "2", "-subj", "/CN=regkit bench test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .ok();
    ws.tool("openssl")
        .arg("req")
        .args(ec)
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(p("site.key"))
        .arg("-out")
        .arg(p("site.csr"))
        .ok();
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ws.tool("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(p("site.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .args(["-CAcreateserial", "-out"])
        .arg(p("site.crt"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .ok();
    (p("ca.crt"), p("site.crt"), p("site.key"))
}

const SMALL: [&str; 8] =
    ["--size", "4MiB", "--chunk", "1MiB", "--concurrency", "2", "--duration", "1s"];

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn positive(report: &Value, pointer: &str) -> f64 {
    let v = report.pointer(pointer).and_then(Value::as_f64);
    let v = v.unwrap_or_else(|| panic!("{pointer} missing in\n{report:#}"));
    assert!(v > 0.0, "{pointer} = {v} is not > 0 in\n{report:#}");
    v
}

/// Every figure of the default workloads is present and positive.
fn assert_all_figures(report: &Value) {
    for figure in ["push_monolithic", "push_chunked", "pull"] {
        positive(report, &format!("/figures/{figure}/mib_per_s"));
        positive(report, &format!("/figures/{figure}/seconds"));
        assert_eq!(
            report.pointer(&format!("/figures/{figure}/bytes")),
            Some(&Value::from(4 << 20))
        );
    }
    assert_eq!(report.pointer("/figures/push_chunked/requests"), Some(&Value::from(6)));
    for figure in ["manifest_head", "manifest_get"] {
        for field in ["requests_per_s", "requests", "p50_ms", "p99_ms", "seconds"] {
            positive(report, &format!("/figures/{figure}/{field}"));
        }
        // Keep-alive held: one connection per worker.
        assert_eq!(
            report.pointer(&format!("/figures/{figure}/connections")),
            Some(&Value::from(2))
        );
    }
    for figure in ["catalog", "tags_list"] {
        for field in ["requests", "p50_ms", "p99_ms"] {
            positive(report, &format!("/figures/{figure}/{field}"));
        }
    }
}

/// Whatever the run pushed is gone: the API answers 404 and, after a garbage collection, no
/// blob data is left on disk.
fn assert_nothing_left(ws: &Workspace, registry: &Reference, report: &Value, curl_args: &[&str]) {
    let repo = report["repo"].as_str().unwrap();
    for (run, cleanup) in report["cleanup"].as_array().unwrap().iter().enumerate() {
        assert_eq!(cleanup["deleted"], Value::Bool(true), "{report:#}");
        let pushed = &report["pushed"][run];
        let mut paths = vec![format!("manifests/{}", pushed["manifest"].as_str().unwrap())];
        for blob in pushed["blobs"].as_array().unwrap() {
            paths.push(format!("blobs/{}", blob.as_str().unwrap()));
        }
        assert_eq!(paths.len(), 4, "manifest, config and two layers expected: {paths:?}");
        for path in paths {
            let url = format!("{}/v2/{repo}/{path}", registry.url);
            let ran = ws
                .tool("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
                .args(curl_args)
                .args(["-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
                .arg(&url)
                .ok();
            assert_eq!(ran.stdout, "404", "{url} still answers after cleanup");
        }
    }
    ws.tool("docker-registry").arg("garbage-collect").arg(&registry.config).ok();
    let left = blob_files(&registry.root);
    assert!(left.is_empty(), "blobs left on disk after garbage collection: {left:?}");
}

fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(blob_files(&path));
        } else if path.components().any(|c| c.as_os_str() == "blobs") {
            found.push(path);
        }
    }
    found
}

#[test]
fn plain_http_reports_every_figure_and_leaves_nothing() {
    if !require_tool("docker-registry") || !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let registry = start_reference(&ws, "plain", Setup::default());
    let pid = registry.child.0.id().to_string();
    let ran =
        ws.regkit().args(["bench", &registry.url, "--json", "--server-pid", &pid]).args(SMALL).ok();
    let report = json(&ran.stdout);
    assert_all_figures(&report);
    assert_eq!(report["tls"], Value::Bool(false));
    assert_eq!(report["auth"], Value::Bool(false));
    // The server's own CPU time and memory, read from /proc.
    // CPU time counts in 10 ms ticks, so a 4 MiB push may honestly read 0.
    let cpu =
        report.pointer("/figures/push_monolithic/server_cpu_s_per_gib").and_then(Value::as_f64);
    assert!(cpu.is_some_and(|c| c >= 0.0), "server CPU missing:\n{report:#}");
    positive(&report, "/server/after/peak_rss_kib");
    // The benchmark's own CPU time, to tell a client-bound figure from a server-bound one.
    let client = report.pointer("/figures/pull/client_cpu_s").and_then(Value::as_f64);
    assert!(client.is_some_and(|c| c >= 0.0), "client CPU missing:\n{report:#}");
    assert_nothing_left(&ws, &registry, &report, &[]);

    // Concurrent pushes (the peak-memory workload), and the human table.
    let ran = ws
        .regkit()
        .args(["bench", &registry.url, "--workloads", "parallel-push"])
        .args(["--size", "1MiB", "--concurrency", "3"])
        .ok();
    ran.stdout_has("3 pushes at once").stdout_has("MiB/s");
}

#[test]
fn tls_and_htpasswd_with_median_of_runs() {
    for tool in ["docker-registry", "openssl", "htpasswd", "curl"] {
        if !require_tool(tool) {
            return;
        }
    }
    let ws = Workspace::new();
    let (ca, cert, key) = openssl_certs(&ws, "");
    let htpasswd = ws.join("htpasswd");
    let line = ws.tool("htpasswd").args(["-Bbn", "-C", "5", "bench", "s3cret pw"]).ok();
    std::fs::write(&htpasswd, line.stdout.trim()).unwrap();

    // TLS alone.
    let tls = Setup { tls: Some((&cert, &key)), ..Setup::default() };
    let registry = start_reference(&ws, "tls", tls);
    let ran = ws.regkit().arg("bench").arg(&registry.url).arg("--ca").arg(&ca);
    let report = json(&ran.args(["--json"]).args(SMALL).ok().stdout);
    assert_all_figures(&report);
    assert_eq!(report["tls"], Value::Bool(true));
    let ca_text = ca.display().to_string();
    assert_nothing_left(&ws, &registry, &report, &["--cacert", &ca_text]);

    // A certificate from another CA is refused.
    let (other_ca, _, _) = openssl_certs(&ws, "other-");
    let ran = ws.regkit().arg("bench").arg(&registry.url).arg("--ca").arg(&other_ca).code(2);
    ran.stderr_has("TLS handshake");
    drop(registry);

    // TLS with htpasswd (bcrypt cost 5), password on stdin, median of two runs.
    let auth = Setup { tls: Some((&cert, &key)), htpasswd: Some(&htpasswd), ..Setup::default() };
    let registry = start_reference(&ws, "auth", auth);
    let bench = |password: &str| {
        ws.regkit()
            .arg("bench")
            .arg(&registry.url)
            .arg("--ca")
            .arg(&ca)
            .args(["--user", "bench", "--password-stdin", "--json", "--runs", "2"])
            .args(SMALL)
            .stdin(format!("{password}\n"))
    };
    let report = json(&bench("s3cret pw").ok().stdout);
    assert_all_figures(&report);
    assert_eq!(report["auth"], Value::Bool(true));
    assert_eq!(report["per_run"].as_array().map(Vec::len), Some(2));
    let curl_args = ["--cacert", &ca_text, "-u", "bench:s3cret pw"];
    assert_nothing_left(&ws, &registry, &report, &curl_args);

    // Wrong credentials abort before anything is pushed, with the status in the message.
    let ran = bench("wrong").code(2);
    ran.stderr_has("401").stderr_has("--user");
    assert!(ran.stdout.is_empty(), "no figures on failure:\n{ran}");
}

#[test]
fn read_only_registry_aborts_the_push() {
    if !require_tool("docker-registry") {
        return;
    }
    let ws = Workspace::new();
    let registry = start_reference(&ws, "ro", Setup { read_only: true, ..Setup::default() });
    let ran = ws.regkit().args(["bench", &registry.url, "--json"]).args(SMALL).code(2);
    ran.stderr_has("POST /v2/regkit-bench/blobs/uploads/").stderr_has("405");
    assert!(ran.stdout.is_empty(), "no figures on failure:\n{ran}");
}

#[test]
fn bad_options_are_refused_before_any_connection() {
    let ws = Workspace::new();
    // Port 9 (discard) on loopback: nothing listens, but these must fail before connecting.
    let url = "http://127.0.0.1:9";
    ws.regkit().args(["bench", url, "--size", "1.5GiB"]).code(2).stderr_has("invalid size");
    ws.regkit()
        .args(["bench", url, "--duration", "10 days"])
        .code(2)
        .stderr_has("invalid duration");
    ws.regkit().args(["bench", url, "--workloads", "push,fly"]).code(2).stderr_has("\"fly\"");
    ws.regkit().args(["bench", url, "--concurrency", "0"]).code(2).stderr_has("--concurrency");
    ws.regkit().args(["bench", url, "--repo", "Bad Name"]).code(2).stderr_has("--repo");
    ws.regkit().args(["bench", "ftp://h/"]).code(2).stderr_has("http:// or https://");
    ws.regkit().args(["bench", url, "--user", "u"]).code(2).stderr_has("--password-stdin");
    ws.regkit().args(["bench", url]).code(2).stderr_has("cannot connect to 127.0.0.1:9");
    ws.regkit().args(["bench", "--help"]).ok().stdout_has("Examples:");
}

#[test]
fn compare_script_runs_against_the_reference_alone() {
    for tool in ["bash", "docker-registry", "openssl", "htpasswd", "curl", "jq"] {
        if !require_tool(tool) {
            return;
        }
    }
    let ws = Workspace::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/compare.sh");
    ws.tool("bash").args(["-n", script]).ok();
    let out = ws.join("BENCHMARKS.md");
    // Small and quick: two modes, short openssl speed and write tests, few repositories.
    ws.tool("bash")
        .arg(script)
        .args(["--only", "reference", "--modes", "plain,tls-htpasswd5", "--size", "8MiB"])
        .args(["--duration", "1s", "--speed-seconds", "1", "--dd-mib", "16", "--repos", "30"])
        .args(["--parallel", "3", "--parallel-size", "4MiB", "--out"])
        .arg(&out)
        .env("REGKIT_BIN", env!("CARGO_BIN_EXE_regkit"))
        .env("BENCH_TMPDIR", ws.path())
        .ok();
    let md = std::fs::read_to_string(&out).unwrap();
    for heading in [
        "## This machine's limits",
        "## Plain HTTP",
        "## TLS + htpasswd (bcrypt cost 5)",
        "## Memory under 3 concurrent 4MiB pushes",
        "## `_catalog?n=100` with 30 repositories",
    ] {
        assert!(md.contains(heading), "{heading:?} missing in\n{md}");
    }
    // Every figure row has a positive number for the reference and no regkit figure.
    let rows: Vec<&str> =
        md.lines().filter(|l| l.starts_with("| ") && l.ends_with(" | — | — |")).collect();
    assert!(rows.len() >= 2 * 13 + 4 + 3, "too few figure rows in\n{md}");
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let value: f64 = cells[2].parse().unwrap_or_else(|_| panic!("no number in {row:?}\n{md}"));
        // CPU time counts in 10 ms ticks: a few MiB may honestly read 0.
        assert!(value > 0.0 || (row.contains("CPU") && value == 0.0), "{row:?}");
    }
    assert!(md.contains("MiB/s |") && md.contains("docker-registry"), "{md}");
    // The work directory (data, keys) is removed afterwards.
    let left: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("regkit-compare."))
        .collect();
    assert!(left.is_empty(), "work directory left behind");
}
