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

mod constraints;
mod issuing;
mod reissue;
mod seed;

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

/// Every extension of a certificate as `openssl x509 -text` prints it, whatever its name
/// (`X509v3 Key Usage`, `Authority Information Access`, `CT Precertificate SCTs`, a bare OID):
/// name (without the `X509v3 ` prefix) -> (critical, value lines joined with `\n`). A header is
/// a line indented one step below `X509v3 extensions:`; deeper lines are its value; the block
/// ends at the first line indented no deeper than that heading.
fn extensions(ws: &Workspace, cert: &str) -> BTreeMap<String, (bool, String)> {
    let (ok, text) = openssl(ws, &["x509", "-in", cert, "-noout", "-text"]);
    assert!(ok, "{text}");
    parse_extensions(&text)
}

fn parse_extensions(text: &str) -> BTreeMap<String, (bool, String)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut lines = text.lines().skip_while(|l| l.trim() != "X509v3 extensions:");
    let Some(heading) = lines.next() else { return BTreeMap::new() };
    let base = indent(heading);
    let mut out: BTreeMap<String, (bool, String)> = BTreeMap::new();
    let mut header_indent = None;
    let mut current: Option<String> = None;
    for line in lines.take_while(|l| !l.trim().is_empty() && indent(l) > base) {
        let depth = indent(line);
        if header_indent.is_none_or(|h| depth <= h) {
            header_indent = Some(depth);
            let (name, flag) = line.trim().rsplit_once(':').expect("an extension header");
            let name = name.strip_prefix("X509v3 ").unwrap_or(name).to_string();
            assert!(!out.contains_key(&name), "extension {name} twice:\n{text}");
            out.insert(name.clone(), (flag.trim() == "critical", String::new()));
            current = Some(name);
        } else if let Some(name) = &current {
            let value = &mut out.get_mut(name).unwrap().1;
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(line.trim());
        }
    }
    out
}

#[test]
fn extension_parser_sees_every_extension_openssl_prints() {
    let text = "        X509v3 extensions:
            X509v3 Basic Constraints: critical
                CA:FALSE
            Authority Information Access: 
                OCSP - URI:http://ocsp.example
            1.2.3.4.5: 
                ..hello
            X509v3 Name Constraints: critical
                Permitted:
                  DNS:lan
    Signature Algorithm: ecdsa-with-SHA256
    Signature Value:
        30:45
";
    let ext = parse_extensions(text);
    let names: Vec<&str> = ext.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["1.2.3.4.5", "Authority Information Access", "Basic Constraints", "Name Constraints"]
    );
    assert_eq!(ext["Basic Constraints"], (true, "CA:FALSE".into()));
    assert_eq!(
        ext["Authority Information Access"],
        (false, "OCSP - URI:http://ocsp.example".into())
    );
    assert_eq!(ext["Name Constraints"].1, "Permitted:\nDNS:lan");
}

/// The extensions of every site certificate, in the order [`extensions`] sorts them; a client
/// certificate has the same without the SAN.
const SITE_EXTENSIONS: [&str; 6] = [
    "Authority Key Identifier",
    "Basic Constraints",
    "Extended Key Usage",
    "Key Usage",
    "Subject Alternative Name",
    "Subject Key Identifier",
];

/// The names of [`extensions`]' result.
fn names(ext: &BTreeMap<String, (bool, String)>) -> Vec<&str> {
    ext.keys().map(String::as_str).collect()
}

/// An EC P-256 key `NAME.key` and a CSR `NAME.csr` for `subject`, made by `openssl req`, with
/// each of `addext` as an `-addext` (extensions the CSR asks for).
fn ec_csr(ws: &Workspace, name: &str, subject: &str, addext: &[&str]) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let mut args = vec!["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    args.extend(["-nodes", "-keyout", &key, "-subj", subject, "-out", &csr]);
    for ext in addext {
        args.extend(["-addext", ext]);
    }
    let (ok, text) = openssl(ws, &args);
    assert!(ok, "{text}");
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
        assert_eq!(
            names(&ca),
            ["Basic Constraints", "Key Usage", "Subject Key Identifier"],
            "{ca:?}"
        );
        assert_eq!(ca["Basic Constraints"], (true, "CA:TRUE, pathlen:0".into()));
        assert_eq!(ca["Key Usage"], (true, "Digital Signature, Certificate Sign, CRL Sign".into()));
        assert!(!ca["Subject Key Identifier"].0);

        let site = extensions(&ws, "pki/site.crt");
        assert_eq!(names(&site), SITE_EXTENSIONS, "{site:?}");
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

    // --force replaces the CA: a new key and a new certificate, still 0600 / 0644; the site
    // certificate of the old CA no longer chains to it.
    ws.regkit().args(["certs", "ca", "--force"]).ok();
    let after = snapshot(&ws.join("pki"));
    assert_ne!(before["ca.key"], after["ca.key"]);
    assert_ne!(before["ca.crt"], after["ca.crt"]);
    assert_eq!(mode_of(&ws.join("pki/ca.key")), Some(0o600));
    assert_eq!(mode_of(&ws.join("pki/ca.crt")), Some(0o644));
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/site.crt"])
        .code(1)
        .stdout_has("was not issued by the given CA");
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
