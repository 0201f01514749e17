//! `regkit certs` through the real binary, checked with real tools: openssl verify and
//! x509 -text for the extensions, openssl s_server/s_client and an in-process rustls client
//! for handshakes with hostname and IP verification, openssl pkcs12 for the .p12 export.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use regkit::files::mode_of;
use regkit::pki;

use crate::harness::{KillOnDrop, Workspace, free_port, require_tool, wait_for_port};

mod issuing;

/// Runs openssl with `args` in the workspace and returns (success, stdout + stderr).
fn openssl(ws: &Workspace, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The X509v3 extensions of a certificate as openssl prints them: name -> (critical, value).
fn extensions(ws: &Workspace, cert: &str) -> BTreeMap<String, (bool, String)> {
    let (ok, text) = openssl(ws, &["x509", "-in", cert, "-noout", "-text"]);
    assert!(ok, "{text}");
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("X509v3 ")
            && let Some((name, flag)) = rest.split_once(':')
            && name != "extensions"
        {
            let value = lines.get(i + 1).map(|v| v.trim().to_string()).unwrap_or_default();
            out.insert(name.to_string(), (flag.trim() == "critical", value));
        }
    }
    out
}

fn serial(ws: &Workspace, cert: &str) -> String {
    let (ok, text) = openssl(ws, &["x509", "-in", cert, "-noout", "-serial"]);
    assert!(ok, "{text}");
    text.trim().trim_start_matches("serial=").to_string()
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_file() {
                m.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    m
}

fn ca_and_site(ws: &Workspace, key_type: &str, sans: &str) {
    ws.regkit().args(["certs", "ca", "--key-type", key_type]).ok();
    ws.regkit().args(["certs", "site", "--key-type", key_type, "--san", sans]).ok();
}

#[test]
fn ca_and_site_have_exactly_the_documented_extensions() {
    if !require_tool("openssl") {
        return;
    }
    for (key_type, site_ku) in
        [("ecdsa-p256", "Digital Signature"), ("rsa-2048", "Digital Signature, Key Encipherment")]
    {
        let ws = Workspace::new();
        ca_and_site(&ws, key_type, "registry.lan,192.168.1.102,::1");
        let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "pki/site.crt"]);
        assert!(ok && text.contains("pki/site.crt: OK"), "{key_type}: {text}");

        let ca = extensions(&ws, "pki/ca.crt");
        let names: Vec<&str> = ca.keys().map(String::as_str).collect();
        assert_eq!(names, ["Basic Constraints", "Key Usage", "Subject Key Identifier"], "{ca:?}");
        assert_eq!(ca["Basic Constraints"], (true, "CA:TRUE, pathlen:0".into()));
        assert_eq!(ca["Key Usage"], (true, "Digital Signature, Certificate Sign, CRL Sign".into()));
        assert!(!ca["Subject Key Identifier"].0);

        let site = extensions(&ws, "pki/site.crt");
        let names: Vec<&str> = site.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "Authority Key Identifier",
                "Basic Constraints",
                "Extended Key Usage",
                "Key Usage",
                "Subject Alternative Name",
                "Subject Key Identifier"
            ],
            "{site:?}"
        );
        assert_eq!(site["Basic Constraints"], (true, "CA:FALSE".into()));
        assert_eq!(site["Key Usage"], (true, site_ku.into()), "{key_type}");
        assert_eq!(site["Extended Key Usage"], (false, "TLS Web Server Authentication".into()));
        assert_eq!(
            site["Subject Alternative Name"].1,
            "DNS:registry.lan, IP Address:192.168.1.102, IP Address:0:0:0:0:0:0:0:1"
        );
        let aki = site["Authority Key Identifier"].1.trim_start_matches("keyid:").to_string();
        assert_eq!(aki, ca["Subject Key Identifier"].1, "AKI must equal the CA's SKI");

        let (s1, s2) = (serial(&ws, "pki/ca.crt"), serial(&ws, "pki/site.crt"));
        assert!(s1.len() >= 32 && s2.len() >= 32, "serials of >=128 bits: {s1} {s2}");
        assert_ne!(s1, s2);
        let chain = std::fs::read_to_string(ws.join("pki/site.fullchain.crt")).unwrap();
        let leaf = std::fs::read_to_string(ws.join("pki/site.crt")).unwrap();
        let ca_pem = std::fs::read_to_string(ws.join("pki/ca.crt")).unwrap();
        assert_eq!(chain, format!("{leaf}{ca_pem}"));
    }
}

#[test]
fn key_files_are_private_and_reruns_without_force_change_nothing() {
    let ws = Workspace::new();
    ca_and_site(&ws, "ecdsa-p384", "registry.lan");
    for (f, mode) in [
        ("ca.key", 0o600),
        ("site.key", 0o600),
        ("ca.crt", 0o644),
        ("site.crt", 0o644),
        ("site.fullchain.crt", 0o644),
    ] {
        assert_eq!(mode_of(&ws.join("pki").join(f)), Some(mode), "{f}");
    }
    let before = snapshot(&ws.join("pki"));
    ws.regkit().args(["certs", "ca"]).code(2).stderr_has("pki/ca.crt already exists");
    ws.regkit()
        .args(["certs", "site", "--san", "other.lan"])
        .code(2)
        .stderr_has("already exists (pass --force");
    assert_eq!(before, snapshot(&ws.join("pki")), "files must be byte-identical");
    ws.regkit().args(["certs", "site", "--san", "other.lan", "--force"]).ok();
    assert_ne!(before["site.crt"], snapshot(&ws.join("pki"))["site.crt"]);
    assert_eq!(before["ca.key"], snapshot(&ws.join("pki"))["ca.key"]);
}

#[test]
fn openssl_s_client_verifies_dns_and_ip_sans_and_rejects_other_names() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ca_and_site(&ws, "ecdsa-p256", "registry.lan,127.0.0.1");
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let server = Command::new("openssl")
        .args(["s_server", "-accept", &accept, "-cert", "pki/site.crt", "-key", "pki/site.key"])
        .args(["-cert_chain", "pki/ca.crt", "-www", "-quiet"])
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = KillOnDrop(server);
    wait_for_port(&accept);
    let client = |check: &[&str]| {
        let mut args = vec!["s_client", "-connect", &accept, "-CAfile", "pki/ca.crt"];
        args.extend(["-verify_return_error", "-servername", "registry.lan"]);
        args.extend(check);
        openssl(&ws, &args)
    };
    let (ok, text) = client(&["-verify_hostname", "registry.lan"]);
    assert!(ok && text.contains("Verify return code: 0 (ok)"), "{text}");
    let (ok, text) = client(&["-verify_ip", "127.0.0.1"]);
    assert!(ok && text.contains("Verify return code: 0 (ok)"), "{text}");
    let (ok, text) = client(&["-verify_hostname", "evil.lan"]);
    assert!(!ok && text.contains("hostname mismatch"), "{text}");
    let (ok, text) = client(&["-verify_ip", "127.0.0.2"]);
    assert!(!ok && text.contains("IP address mismatch"), "{text}");

    // inspect by URL lists what the server presents, without trusting it.
    let r = ws.regkit().args(["certs", "inspect", &format!("https://{accept}"), "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{}", r.stdout);
    assert_eq!(v[0]["subject"], "CN=registry.lan");
    assert_eq!(v[1]["basic_constraints"]["ca"], true);
}

/// A one-shot rustls TLS server on 127.0.0.1 serving the site chain; returns its address.
fn rustls_server(ws: &Workspace) -> (String, std::thread::JoinHandle<()>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(ws.join("pki/site.fullchain.crt"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(ws.join("pki/site.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        // Three clients: DNS name, IP, wrong name.
        for _ in 0..3 {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut buf = [0u8; 5];
            let ok = (|| -> std::io::Result<()> {
                while conn.is_handshaking() {
                    conn.complete_io(&mut sock)?;
                }
                let mut s = rustls::Stream::new(&mut conn, &mut sock);
                s.read_exact(&mut buf)?;
                s.write_all(b"pong!")?;
                s.flush()
            })();
            let _ = ok;
        }
    });
    (addr, handle)
}

#[test]
fn rustls_client_accepts_dns_and_ip_sans_and_rejects_other_names() {
    let ws = Workspace::new();
    ca_and_site(&ws, "rsa-2048", "registry.lan,127.0.0.1");
    let (addr, server) = rustls_server(&ws);
    let mut roots = rustls::RootCertStore::empty();
    for c in regkit::pki::x509::read_certs(&ws.join("pki/ca.crt")).unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let talk = |name: &str| -> Result<Vec<u8>, String> {
        let server_name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(config.clone(), server_name).unwrap();
        let mut sock = TcpStream::connect(&addr).unwrap();
        let mut s = rustls::Stream::new(&mut conn, &mut sock);
        s.write_all(b"ping!").map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 5];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    };
    assert_eq!(talk("registry.lan").unwrap(), b"pong!");
    assert_eq!(talk("127.0.0.1").unwrap(), b"pong!");
    let err = talk("evil.lan").unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    server.join().unwrap();
}

#[test]
fn seed_001_openssl_ca_signs_through_regkit() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    // The recipe from seed 001: RSA 2048 root with pathlen:1, subject with C/ST/L/O/CN.
    let steps: [&[&str]; 3] = [
        &["genrsa", "-traditional", "-out", "root-ca.key", "2048"],
        &[
            "req",
            "-new",
            "-key",
            "root-ca.key",
            "-out",
            "root-ca.csr",
            "-sha256",
            "-subj",
            "/C=CN/ST=beijing/L=beijing/O=cmri/CN=cmri.cn",
        ],
        &[
            "x509",
            "-req",
            "-days",
            "3650",
            "-in",
            "root-ca.csr",
            "-signkey",
            "root-ca.key",
            "-sha256",
            "-out",
            "root-ca.crt",
            "-extfile",
            "root-ca.cnf",
            "-extensions",
            "root_ca",
        ],
    ];
    std::fs::write(
        ws.join("root-ca.cnf"),
        "[root_ca]\nbasicConstraints = critical,CA:TRUE,pathlen:1\n\
         keyUsage = critical, nonRepudiation, cRLSign, keyCertSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    for s in steps {
        let (ok, text) = openssl(&ws, s);
        assert!(ok, "{s:?}: {text}");
    }
    assert!(std::fs::read_to_string(ws.join("root-ca.key")).unwrap().contains("RSA PRIVATE KEY"));
    ws.regkit()
        .args(["certs", "site", "--ca-cert", "root-ca.crt", "--ca-key", "root-ca.key"])
        .args(["--san", "mds-repo.cmri.cn,IP:192.168.2.140", "--out", "ssl"])
        .ok();
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "root-ca.crt", "ssl/site.crt"]);
    assert!(ok, "{text}");
    ws.regkit()
        .args(["certs", "verify", "--ca", "root-ca.crt", "ssl/site.crt", "--host", "192.168.2.140"])
        .ok()
        .stdout_has("OK: ssl/site.crt is valid for 192.168.2.140");
    let (_, text) = openssl(&ws, &["x509", "-in", "ssl/site.crt", "-noout", "-issuer"]);
    assert!(text.contains("C = CN, ST = beijing, L = beijing, O = cmri, CN = cmri.cn"), "{text}");
}

#[test]
fn verify_explains_wrong_ca_missing_ip_and_expiry() {
    let ws = Workspace::new();
    ca_and_site(&ws, "ecdsa-p256", "registry.lan");
    ws.regkit().args(["certs", "ca", "--out", "other"]).ok();
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/site.crt", "--host", "registry.lan"])
        .ok();
    ws.regkit()
        .args(["certs", "verify", "--ca", "other/ca.crt", "pki/site.crt"])
        .code(1)
        .stdout_has("was not issued by the given CA");
    ws.regkit().args(["certs", "ca", "--out", "twin", "--cn", "Twin"]).ok();
    ws.regkit().args(["certs", "ca", "--out", "twin2", "--cn", "Twin"]).ok();
    ws.regkit()
        .args(["certs", "site", "--ca-cert", "twin/ca.crt", "--ca-key", "twin/ca.key"])
        .args(["--out", "twin", "--san", "t.lan"])
        .ok();
    ws.regkit()
        .args(["certs", "verify", "--ca", "twin2/ca.crt", "twin/site.crt"])
        .code(1)
        .stdout_has("its issuer has the same name (CN=Twin) but a different key");
    let r = ws
        .regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/site.crt", "--host", "192.168.1.102"])
        .code(1);
    r.stdout_has("the certificate has no IP SAN 192.168.1.102");
    r.stdout_has("regkit certs site --san registry.lan,192.168.1.102");
    let r = ws
        .regkit()
        .args([
            "certs",
            "verify",
            "--ca",
            "pki/ca.crt",
            "pki/site.crt",
            "--host",
            "x.lan",
            "--json",
        ])
        .code(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["kind"], "name-mismatch");

    // An expired certificate: issued through the library with a validity window in the past.
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    let opts = pki::SiteOptions {
        ca: pki::CaPaths { cert: ws.join("pki/ca.crt"), key: ws.join("pki/ca.key") },
        dir: ws.join("old"),
        sans: pki::SanEntry::parse_list(&["registry.lan"]).unwrap(),
        days: 30,
        not_before: Some(past),
        ..Default::default()
    };
    pki::issue_site(&opts).unwrap();
    let r = ws
        .regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "old/site.crt", "--host", "registry.lan"])
        .code(1);
    r.stdout_has("the certificate expired on");
    r.stdout_has("regkit certs renew old/site.crt");
    // Renewing it makes it valid again and keeps the old one as .bak.
    ws.regkit().args(["certs", "renew", "old/site.crt"]).ok();
    assert!(ws.join("old/site.crt.bak").exists());
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "old/site.crt", "--host", "registry.lan"])
        .ok();
    // A CA passed where a leaf is expected.
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/ca.crt"])
        .code(1)
        .stdout_has("this is a CA certificate");
    ws.regkit().args(["certs", "verify", "--ca", "pki/ca.crt", "missing.crt"]).code(2);
}
