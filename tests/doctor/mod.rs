//! `regkit doctor` against a real registry (Debian's `docker-registry`, distribution 2.8.2)
//! started per test, with certificates made by the `openssl` CLI (one helper, swappable for
//! `regkit certs` later). Each diagnosis is asserted (message, cause and fix), and where a real
//! Go client is at hand (skopeo) its error text is checked against the doctor's prediction.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{KillOnDrop, Workspace, free_port, require_tool, wait_for_port};

mod answers;
mod chains;
mod scheme;
mod selfsigned;
mod token;
mod verdict;

/// A test CA made with openssl, able to sign site certificates for any validity window.
struct OpensslCa {
    dir: PathBuf,
}

impl OpensslCa {
    fn new(ws: &Workspace, name: &str, cn: &str) -> Self {
        let ca = OpensslCa::empty(ws, name);
        let subject = format!("/CN={cn}");
        openssl(
            &ca.dir,
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "30",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        ca
    }

    /// The directory layout `openssl ca` needs, without a CA certificate yet.
    fn empty(ws: &Workspace, name: &str) -> Self {
        let dir = ws.join(name);
        fs::create_dir_all(dir.join("newcerts")).unwrap();
        fs::write(dir.join("index.txt"), "").unwrap();
        fs::write(dir.join("serial"), "1000\n").unwrap();
        fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = newcerts\n\
             serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n\
             [p]\ncommonName = supplied\n",
        )
        .unwrap();
        OpensslCa { dir }
    }

    /// An intermediate CA signed by this one, in `ws/name`.
    fn intermediate(&self, ws: &Workspace, name: &str, cn: &str) -> Self {
        let ext =
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
        let (crt, key) = self.issue(name, cn, ext, None);
        let ca = OpensslCa::empty(ws, name);
        fs::copy(crt, ca.ca_crt()).unwrap();
        fs::copy(key, ca.dir.join("ca.key")).unwrap();
        ca
    }

    fn ca_crt(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Signs a site certificate; `sans` in openssl form (`IP:127.0.0.1,DNS:x`); `window` is
    /// (notBefore, notAfter) as YYYYMMDDHHMMSSZ, default 30 days from now.
    fn site(&self, name: &str, sans: &str, window: Option<(&str, &str)>) -> (PathBuf, PathBuf) {
        let ext = format!(
            "subjectAltName={sans}\nbasicConstraints=critical,CA:FALSE\n\
             extendedKeyUsage=serverAuth\n"
        );
        self.issue(name, name, &ext, window)
    }

    /// A new P-256 key and a certificate for it signed by this CA with the given extensions.
    fn issue(
        &self,
        name: &str,
        cn: &str,
        ext: &str,
        window: Option<(&str, &str)>,
    ) -> (PathBuf, PathBuf) {
        let (crt, key, csr, ext_file) = (
            format!("{name}.crt"),
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
        );
        fs::write(self.dir.join(&ext_file), ext).unwrap();
        let subject = format!("/CN={cn}");
        openssl(
            &self.dir,
            &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
            &["-keyout", &key, "-out", &csr, "-subj", &subject],
        );
        let mut args = vec![
            "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", &csr, "-out",
            &crt, "-extfile", &ext_file,
        ];
        match window {
            Some((from, to)) => args.extend(["-startdate", from, "-enddate", to]),
            None => args.extend(["-days", "30"]),
        }
        openssl(&self.dir, &["ca", "-batch", "-notext"], &args);
        (self.dir.join(crt), self.dir.join(key))
    }
}

/// Runs openssl in `dir` with `command` then `args` (two slices keep call sites short).
fn openssl(dir: &Path, command: &[&str], args: &[&str]) {
    let out = Command::new("openssl").args(command).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A running `docker-registry`, killed on drop.
struct Registry {
    _child: KillOnDrop,
    port: u16,
}

fn start_registry(
    ws: &Workspace,
    tls: Option<&(PathBuf, PathBuf)>,
    env: &[(&str, &str)],
) -> Registry {
    let port = free_port();
    let config = ws.join(format!("registry-{port}.yml"));
    fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  \
             addr: 127.0.0.1:{port}\n  secret: doctor-test\n",
            ws.join(format!("data-{port}")).display()
        ),
    )
    .unwrap();
    let log = fs::File::create(ws.join(format!("registry-{port}.log"))).unwrap();
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(&config).stdout(log.try_clone().unwrap()).stderr(log).stdin(Stdio::null());
    if let Some((crt, key)) = tls {
        cmd.env("REGISTRY_HTTP_TLS_CERTIFICATE", crt).env("REGISTRY_HTTP_TLS_KEY", key);
    }
    cmd.envs(env.iter().copied());
    let child = KillOnDrop(cmd.spawn().expect("docker-registry"));
    wait_for_port(&format!("127.0.0.1:{port}"));
    Registry { _child: child, port }
}

fn tools() -> bool {
    require_tool("openssl") && require_tool("docker-registry") && require_tool("skopeo")
}

/// Runs `regkit doctor URL --json` with a staging root, asserts the exit code, returns the JSON.
fn doctor(ws: &Workspace, url: &str, extra: &[&str], code: i32) -> Value {
    let root = ws.join("root");
    fs::create_dir_all(&root).unwrap();
    let r = ws
        .regkit()
        .args(["doctor", url, "--json", "--timeout", "5", "--root"])
        .arg(&root)
        .args(extra)
        .code(code);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{r}"))
}

fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {report:#}"))
}

fn text<'a>(f: &'a Value, key: &str) -> &'a str {
    f[key].as_str().unwrap_or_else(|| panic!("no {key} in {f:#}"))
}

/// The error skopeo (a real Go client) prints for `inspect` against the registry.
fn skopeo_error(ws: &Workspace, port: u16, cert_dir: &Path) -> String {
    let r = ws
        .tool("skopeo")
        .args(["inspect", "--cert-dir"])
        .arg(cert_dir)
        .arg(format!("docker://127.0.0.1:{port}/doctor/probe:latest"))
        .fails();
    r.stderr
}

/// The x509 part of the doctor's client message (Go 1.20+ adds a TLS prefix that the skopeo
/// build on this machine predates).
fn x509_part(client_message: &str) -> &str {
    let at = client_message.find("x509: ").expect("an x509 message");
    &client_message[at..]
}

#[test]
fn ca_not_trusted_then_found_in_staging_certs_d() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("site", "IP:127.0.0.1,DNS:localhost", None);
    let reg = start_registry(&ws, Some(&site), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let authority = format!("127.0.0.1:{}", reg.port);

    let report = doctor(&ws, &url, &[], 1);
    let f = finding(&report, "tls.trust");
    assert_eq!(f["status"], "fail");
    assert_eq!(
        x509_part(text(f, "client_message")),
        "x509: certificate signed by unknown authority"
    );
    assert!(text(f, "cause").contains("Doctor Test CA"), "{f:#}");
    assert!(
        text(f, "fix")
            .contains(&format!("regkit trust install --ca ca.crt --registry {authority}")),
        "{f:#}"
    );
    let d = finding(&report, "tls.certs_d");
    let details = d["details"].to_string();
    assert!(details.contains(&format!("etc/docker/certs.d/{authority}/: missing")), "{d:#}");
    assert!(details.contains(&format!("etc/containerd/certs.d/{authority}/: missing")), "{d:#}");
    // Name, dates and the HTTP side are still checked, but no credentials would be sent.
    assert_eq!(finding(&report, "tls.name")["status"], "ok");
    assert_eq!(finding(&report, "http.v2")["status"], "ok");
    let empty = ws.join("empty-certs");
    fs::create_dir_all(&empty).unwrap();
    assert!(
        skopeo_error(&ws, reg.port, &empty)
            .contains("x509: certificate signed by unknown authority")
    );

    // The CA in Docker's certs.d for this exact host:port: trusted (Podman falls back to
    // Docker's directory), containerd still lacks it.
    let docker_dir = ws.join("root/etc/docker/certs.d").join(&authority);
    fs::create_dir_all(&docker_dir).unwrap();
    fs::copy(ca.ca_crt(), docker_dir.join("ca.crt")).unwrap();
    let report = doctor(&ws, &url, &[], 0);
    let f = finding(&report, "tls.trust");
    assert_eq!(f["status"], "ok");
    assert!(text(f, "summary").contains(&format!("certs.d/{authority}/ca.crt")), "{f:#}");
    let d = finding(&report, "tls.certs_d");
    assert_eq!(d["status"], "warn");
    assert_eq!(text(d, "summary"), "no CA for this exact host:port in the certs.d of: containerd");
    // containerd's hosts.toml `ca`, with an absolute path as on a node.
    let containerd_dir = ws.join("root/etc/containerd/certs.d").join(&authority);
    fs::create_dir_all(&containerd_dir).unwrap();
    fs::copy(ca.ca_crt(), containerd_dir.join("ca.crt")).unwrap();
    fs::write(
        containerd_dir.join("hosts.toml"),
        format!(
            "server = \"https://{authority}\"\n[host.\"https://{authority}\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n  \
             ca = \"/etc/containerd/certs.d/{authority}/ca.crt\"\n"
        ),
    )
    .unwrap();
    let report = doctor(&ws, &url, &[], 0);
    assert_eq!(finding(&report, "tls.certs_d")["status"], "ok");
    assert_eq!(report["ok"], true);
    // A different CA with the same name: Go's hint names the candidate it rejected.
    let other = OpensslCa::new(&ws, "other", "Doctor Test CA");
    let report = doctor(&ws, &url, &["--ca", other.ca_crt().to_str().unwrap()], 1);
    let f = finding(&report, "tls.trust");
    assert_eq!(
        x509_part(text(f, "client_message")),
        "x509: certificate signed by unknown authority (possibly because of \"x509: ECDSA \
         verification failure\" while trying to verify candidate authority certificate \
         \"Doctor Test CA\")"
    );
    assert!(text(f, "cause").contains("did not issue this certificate"), "{f:#}");
}

#[test]
fn certificate_without_the_ip_san() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("site", "DNS:registry.test", None);
    let reg = start_registry(&ws, Some(&site), &[]);
    let report = doctor(
        &ws,
        &format!("https://127.0.0.1:{}", reg.port),
        &["--ca", ca.ca_crt().to_str().unwrap()],
        1,
    );
    let f = finding(&report, "tls.name");
    assert_eq!(f["status"], "fail");
    let expected =
        "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs";
    assert_eq!(x509_part(text(f, "client_message")), expected);
    assert!(text(f, "cause").contains("SANs registry.test"), "{f:#}");
    assert!(
        text(f, "fix").contains("regkit certs site --san 127.0.0.1 --san registry.test"),
        "{f:#}"
    );
    assert_eq!(finding(&report, "tls.trust")["status"], "ok");
    let cert_dir = ws.join("cadir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(ca.ca_crt(), cert_dir.join("ca.crt")).unwrap();
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(err.contains(expected), "skopeo said: {err}");
}

#[test]
fn expired_certificate_with_clock_skew() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("old", "IP:127.0.0.1", Some(("20200101000000Z", "20210101000000Z")));
    let reg = start_registry(&ws, Some(&site), &[]);
    let report = doctor(
        &ws,
        &format!("https://127.0.0.1:{}", reg.port),
        &["--ca", ca.ca_crt().to_str().unwrap()],
        1,
    );
    let f = finding(&report, "tls.validity");
    assert_eq!(f["status"], "fail");
    let message = x509_part(text(f, "client_message"));
    assert!(
        message.starts_with("x509: certificate has expired or is not yet valid: current time "),
        "{f:#}"
    );
    assert!(message.ends_with(" is after 2021-01-01T00:00:00Z"), "{f:#}");
    assert!(text(f, "cause").starts_with("the server certificate expired "), "{f:#}");
    assert!(text(f, "fix").contains("regkit certs renew"), "{f:#}");
    assert!(f["details"][0].as_str().unwrap().starts_with("clock skew: this machine is "), "{f:#}");
    assert_eq!(finding(&report, "clock")["status"], "ok");
    let cert_dir = ws.join("cadir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(ca.ca_crt(), cert_dir.join("ca.crt")).unwrap();
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(
        err.contains("x509: certificate has expired or is not yet valid: current time "),
        "{err}"
    );
    assert!(err.contains(" is after 2021-01-01T00:00:00Z"), "{err}");

    // Not yet valid: the other half of Go's message, and the clock as the first suspect.
    let future = ca.site("future", "IP:127.0.0.1", Some(("20990101000000Z", "21000101000000Z")));
    let reg = start_registry(&ws, Some(&future), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &url, &["--ca", ca.ca_crt().to_str().unwrap()], 1);
    let f = finding(&report, "tls.validity");
    let message = x509_part(text(f, "client_message"));
    assert!(message.ends_with(" is before 2099-01-01T00:00:00Z"), "{f:#}");
    assert!(text(f, "cause").contains("this machine's clock is behind"), "{f:#}");
    assert!(text(f, "fix").starts_with("synchronise this machine's clock"), "{f:#}");
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(err.contains(" is before 2099-01-01T00:00:00Z"), "{err}");
}

#[test]
fn auth_with_good_and_bad_credentials_and_all_good() {
    if !(tools() && require_tool("htpasswd")) {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("site", "IP:127.0.0.1", None);
    let htpasswd = ws.join("htpasswd");
    ws.tool("htpasswd").args(["-Bbc"]).arg(&htpasswd).args(["alice", "s3cret"]).ok();
    let reg = start_registry(
        &ws,
        Some(&site),
        &[
            ("REGISTRY_AUTH", "htpasswd"),
            ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
            ("REGISTRY_AUTH_HTPASSWD_PATH", htpasswd.to_str().unwrap()),
        ],
    );
    let url = format!("https://127.0.0.1:{}", reg.port);
    let ca_arg = ca.ca_crt().to_str().unwrap().to_string();

    // No credentials: the challenge is reported, and since a client that has not logged in is
    // refused, and the doctor cannot tell whether a login would work, that is a failure.
    let report = doctor(&ws, &url, &["--ca", &ca_arg, "--assume-trusted"], 1);
    let f = finding(&report, "http.auth");
    assert_eq!(f["status"], "fail");
    assert!(text(f, "fix").contains("--user USER --password-stdin"), "{f:#}");
    assert_eq!(
        report["findings"].as_array().unwrap().iter().filter(|f| f["status"] == "fail").count(),
        1
    );
    assert_eq!(
        text(f, "summary"),
        "authentication required (Basic realm=\"Registry Realm\"); no credentials given to test"
    );
    assert_eq!(text(f, "client_message"), "no basic auth credentials");
    assert_eq!(finding(&report, "http.v2")["summary"], "GET /v2/ answered 401 Unauthorized");

    // Good credentials, once this machine's clients trust the CA (the fix the doctor names):
    // everything passes, also in the human report. Only the first line of stdin is the
    // password, as for every --password-stdin.
    let root = ws.join("root");
    let authority = format!("127.0.0.1:{}", reg.port);
    ws.regkit()
        .args(["trust", "install", "--ca", &ca_arg, "--registry", &authority, "--root"])
        .arg(&root)
        .ok();
    let r = ws
        .regkit()
        .args(["doctor", &url, "--ca", &ca_arg, "--user", "alice", "--password-stdin", "--root"])
        .arg(&root)
        .stdin("s3cret\nnot the password\n")
        .ok();
    r.stdout_has("✓ http.credentials")
        .stdout_has("user \"alice\" is accepted")
        .stdout_has("Result: a client would succeed.");
    assert!(!r.stdout.contains("s3cret") && !r.stderr.contains("s3cret"), "password leaked\n{r}");
    assert!(!r.stdout.contains('\x1b'), "colour despite NO_COLOR\n{r}");

    // Bad credentials: Docker's login message, and the htpasswd fix.
    let r = ws
        .regkit()
        .args([
            "doctor",
            &url,
            "--json",
            "--ca",
            &ca_arg,
            "-u",
            "alice",
            "--password-stdin",
            "--root",
        ])
        .arg(&root)
        .stdin("Wr0ngPass")
        .code(1);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let f = finding(&report, "http.credentials");
    assert_eq!(f["status"], "fail");
    assert_eq!(
        text(f, "client_message"),
        format!(
            "login attempt to https://127.0.0.1:{}/v2/ failed with status: 401 Unauthorized",
            reg.port
        )
    );
    assert!(text(f, "fix").contains("regkit htpasswd verify HTPASSWD_FILE alice"), "{f:#}");
    assert!(!r.stdout.contains("Wr0ngPass"), "password leaked\n{r}");

    // The real client agrees on both verdicts.
    let cert_dir = ws.join("cadir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(ca.ca_crt(), cert_dir.join("ca.crt")).unwrap();
    let login = |password: &str| {
        ws.tool("skopeo")
            .args(["login", "--authfile"])
            .arg(ws.join("auth.json"))
            .arg("--cert-dir")
            .arg(&cert_dir)
            .args(["-u", "alice", "-p", password, &format!("127.0.0.1:{}", reg.port)])
            .run()
    };
    assert_eq!(login("s3cret").code, Some(0));
    assert_ne!(login("Wr0ngPass").code, Some(0));

    // With an untrusted connection the credentials are never sent.
    let r = ws
        .regkit()
        .args(["doctor", &url, "--json", "-u", "alice", "--password-stdin", "--root"])
        .arg(ws.join("untrusting-root"))
        .stdin("s3cret")
        .code(1);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(finding(&report, "tls.trust")["status"], "fail");
    let f = finding(&report, "http.credentials");
    assert_eq!(f["status"], "skip");
    assert!(text(f, "summary").starts_with("credentials not sent"), "{f:#}");
}

#[test]
fn connection_refused_and_usage_errors() {
    let ws = Workspace::new();
    let port = free_port();
    let report = doctor(&ws, &format!("https://127.0.0.1:{port}"), &[], 1);
    let f = finding(&report, "tcp");
    assert_eq!(
        text(f, "client_message"),
        format!(
            "Get \"https://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: \
             connection refused"
        )
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);

    // A server that accepts but never speaks: bounded by --timeout, reported in Go's words.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // It holds the connection open until the doctor has given up: without the timeout the
    // doctor would see the server close instead (EOF), not a handshake timeout.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let silent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let _ = done_rx.recv();
        drop(conn);
    });
    let r = ws
        .regkit()
        .args(["doctor", &format!("https://127.0.0.1:{port}"), "--json", "--timeout", "1"])
        .code(1);
    drop(done_tx);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let f = finding(&report, "tls.handshake");
    assert!(text(f, "client_message").ends_with(": net/http: TLS handshake timeout"), "{f:#}");
    silent.join().unwrap();

    ws.regkit().args(["doctor", "ftp://x:1"]).code(2).stderr_has("unsupported scheme");
    ws.regkit()
        .args(["doctor", "https://h:5000", "--user", "u"])
        .code(2)
        .stderr_has("--password-stdin");
    ws.regkit()
        .args(["doctor", "https://h:5000", "--assume-trusted"])
        .code(2)
        .stderr_has("--assume-trusted needs --ca for an https:// address");
    ws.regkit()
        .args(["doctor", "https://h:5000", "--ca", "missing.crt"])
        .code(2)
        .stderr_has("missing.crt");
    fs::write(ws.join("empty.crt"), "not a certificate\n").unwrap();
    ws.regkit()
        .args(["doctor", "https://h:5000", "--ca", "empty.crt"])
        .code(2)
        .stderr_has("holds no PEM certificate");
    ws.regkit()
        .args(["doctor", "--help"])
        .ok()
        .stdout_has("Examples:")
        .stdout_has("--password-stdin");
}
