//! The scheme mix-ups: plain HTTP where a client expects TLS, and the three ways a TLS server
//! answers a plain HTTP client (Go's 400, rustls's alert record, OpenSSL's hang-up).

use std::fs;
use std::process::{Command, Stdio};

use super::{OpensslCa, doctor, finding, skopeo_error, start_registry, text, tools};
use crate::harness::{KillOnDrop, Workspace, free_port, require_tool, wait_for_port};

#[test]
fn plain_http_where_tls_was_expected() {
    if !tools() || !require_tool("buildah") {
        return;
    }
    let ws = Workspace::new();
    let reg = start_registry(&ws, None, &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &url, &[], 1);
    let f = finding(&report, "tls.handshake");
    assert_eq!(f["status"], "fail");
    let expected = format!(
        "Get \"https://127.0.0.1:{}/v2/\": http: server gave HTTP response to HTTPS client",
        reg.port
    );
    assert_eq!(text(f, "client_message"), expected);
    assert!(text(f, "fix").contains("regkit certs site --san 127.0.0.1"), "{f:#}");
    assert!(
        text(f, "fix").contains(&format!("regkit doctor http://127.0.0.1:{}", reg.port)),
        "{f:#}"
    );
    assert!(f["details"][0].as_str().unwrap().contains("127.0.0.0/8"), "{f:#}");
    assert_eq!(report["ok"], false);
    // A real Go client prints exactly that.
    let empty = ws.join("empty-certs");
    fs::create_dir_all(&empty).unwrap();
    let err = skopeo_error(&ws, reg.port, &empty);
    assert!(err.contains(&expected.replace('"', "\\\"")), "skopeo said: {err}");

    // The same registry over http://: dockerd's defaults hold 127.0.0.0/8 as insecure, so
    // `docker` here pulls over plain HTTP (tests/registry_api/docker.rs pushes and pulls that
    // way with a real dockerd): a warning and exit 0, noting that other machines do not.
    let http = format!("http://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &http, &[], 0);
    let f = finding(&report, "http.scheme");
    assert_eq!(f["status"], "warn", "{f:#}");
    assert!(text(f, "summary").ends_with("which docker here is set up to use"), "{f:#}");
    let details = f["details"].to_string();
    assert!(
        details.contains("dockerd treats 127.0.0.1 as an insecure registry by default"),
        "{f:#}"
    );
    assert!(details.contains("other machines (nodes pulling by another address)"), "{f:#}");
    assert!(details.contains("containerd: no hosts.toml for it"), "{f:#}");
    // A daemon.json dockerd cannot read keeps it from starting at all; then no client here is
    // told the registry is insecure, so each would use HTTPS and fail as above. The HTTP
    // checks still run.
    let daemon = ws.join("root/etc/docker/daemon.json");
    fs::create_dir_all(daemon.parent().unwrap()).unwrap();
    fs::write(&daemon, "{\"insecure-registries\": [\n").unwrap();
    if require_tool("dockerd") {
        let data = ws.join("dockerd-data");
        ws.tool("dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--config-file"])
            .arg(&daemon)
            .arg(format!("--data-root={}", data.display()))
            .arg(format!("--exec-root={}", ws.join("dockerd-exec").display()))
            .arg(format!("--pidfile={}", ws.join("dockerd.pid").display()))
            .arg(format!("-H=unix://{}", ws.join("dockerd.sock").display()))
            .fails()
            .stderr_has("unable to configure the Docker daemon with file");
    }
    let report = doctor(&ws, &http, &[], 1);
    let f = finding(&report, "http.scheme");
    assert_eq!(f["status"], "fail");
    assert!(f["details"].to_string().contains("dockerd does not start"), "{f:#}");
    assert_eq!(text(f, "client_message"), expected);
    assert!(text(f, "fix").contains("insecure-registries"), "{f:#}");
    assert!(text(f, "fix").contains("--assume-trusted"), "{f:#}");
    assert_eq!(finding(&report, "http.v2")["status"], "ok");
    assert_eq!(
        finding(&report, "http.api_version")["summary"],
        "Docker-Distribution-API-Version: registry/2.0"
    );
    let report = doctor(&ws, &http, &["--assume-trusted"], 0);
    assert_eq!(finding(&report, "http.scheme")["status"], "warn");

    // Podman's way, read as containers/image reads it: buildah (same library, private store)
    // given the same registries.conf gets past the scheme, to the missing image, exactly when
    // the doctor says a client would.
    let authority = format!("127.0.0.1:{}", reg.port);
    let conf = ws.join("root/etc/containers/registries.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let pull = |conf: &std::path::Path| {
        ws.tool("buildah")
            .args(crate::harness::image::STORE)
            .arg("--registries-conf")
            .arg(conf)
            .args(["pull", &format!("docker://{authority}/doctor/probe:latest")])
            .fails()
            .stderr
    };
    fs::write(&conf, format!("[[registry]]\nlocation = \"{authority}\"\ninsecure = false\n"))
        .unwrap();
    assert!(pull(&conf).contains("server gave HTTP response to HTTPS client"));
    doctor(&ws, &http, &[], 1);
    fs::write(&conf, format!("[[registry]]\nlocation = \"{authority}\"\ninsecure = true\n"))
        .unwrap();
    let err = pull(&conf);
    assert!(
        !err.contains("HTTP response to HTTPS client") && err.contains("manifest unknown"),
        "{err}"
    );
    let report = doctor(&ws, &http, &[], 0);
    let f = finding(&report, "http.scheme");
    assert_eq!(
        text(f, "summary"),
        "the registry speaks plain HTTP, which podman here is set up to use"
    );
    fs::remove_file(&conf).unwrap();

    // Docker's: insecure-registries in daemon.json, here as a CIDR.
    fs::write(&daemon, r#"{"insecure-registries": ["127.0.0.0/8"]}"#).unwrap();
    let report = doctor(&ws, &http, &[], 0);
    let f = finding(&report, "http.scheme");
    assert!(text(f, "summary").ends_with("which docker here is set up to use"), "{f:#}");
}

#[test]
fn tls_where_plain_http_was_expected() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("site", "IP:127.0.0.1", None);
    let reg = start_registry(&ws, Some(&site), &[]);
    let report = doctor(&ws, &format!("http://127.0.0.1:{}", reg.port), &[], 1);
    let f = finding(&report, "http.scheme");
    assert_eq!(f["status"], "fail");
    assert_eq!(
        text(f, "client_message"),
        "error parsing HTTP 400 response body: invalid character 'C' looking for beginning of \
         value: \"Client sent an HTTP request to an HTTPS server.\\n\""
    );
    assert!(
        text(f, "fix").contains(&format!("regkit doctor https://127.0.0.1:{}", reg.port)),
        "{f:#}"
    );
    // A TLS server that just hangs up on plain HTTP (OpenSSL's s_server) is recognised by a
    // follow-up handshake.
    let port = free_port();
    let mut s_server = Command::new("openssl");
    s_server
        .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}"), "-cert"])
        .arg(&site.0)
        .arg("-key")
        .arg(&site.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = KillOnDrop(s_server.spawn().unwrap());
    wait_for_port(&format!("127.0.0.1:{port}"));
    let report = doctor(&ws, &format!("http://127.0.0.1:{port}"), &[], 1);
    let f = finding(&report, "http.scheme");
    assert_eq!(text(f, "client_message"), format!("Get \"http://127.0.0.1:{port}/v2/\": EOF"));
    assert!(text(f, "summary").contains("it speaks TLS"), "{f:#}");
}

#[test]
fn tls_alert_where_plain_http_was_expected() {
    // rustls, the TLS stack of regkit's own server, answers a plain HTTP request with a TLS
    // alert record, which Go's HTTP client reports as a malformed HTTP response.
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let (crt, key) = ca.site("site", "IP:127.0.0.1", None);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&crt).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut tls = rustls::ServerConnection::new(config).unwrap();
        while tls.read_tls(&mut sock).unwrap() > 0 {
            if tls.process_new_packets().is_err() {
                let _ = tls.write_tls(&mut sock);
                break;
            }
        }
    });
    let report = doctor(&ws, &format!("http://127.0.0.1:{port}"), &[], 1);
    server.join().unwrap();
    let f = finding(&report, "http.scheme");
    assert_eq!(f["status"], "fail");
    assert!(text(f, "summary").contains("TLS alert"), "{f:#}");
    // Alert record, TLS 1.2, length 2, fatal, decode_error (0x32 = '2', so Go prints it as is).
    assert_eq!(
        text(f, "client_message"),
        format!(
            "Get \"http://127.0.0.1:{port}/v2/\": net/http: HTTP/1.x transport connection broken: \
             malformed HTTP response \"\\x15\\x03\\x03\\x00\\x02\\x022\""
        )
    );
    assert_eq!(f["details"][1], "TLS alert: fatal decode_error");
}
