//! The seed's recipe: a self-signed certificate from `openssl req -x509` (CA:TRUE by default)
//! copied to the clients as `ca.crt`. Go accepts it when it has the right SAN, and with only a
//! CN it gives the legacy Common Name error; the doctor must agree with the real client.

use std::fs;

use super::{doctor, finding, openssl, skopeo_error, start_registry, text, tools, x509_part};
use crate::harness::Workspace;

#[test]
fn self_signed_certificate_as_its_own_ca_and_legacy_cn() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let dir = ws.join("certs");
    fs::create_dir_all(&dir).unwrap();
    let self_signed = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "365"];
    let subject = ["-subj", "/CN=127.0.0.1"];
    openssl(
        &dir,
        &self_signed,
        &[&subject[..], &["-keyout", "domain.key", "-out", "domain.crt"]].concat(),
    );
    let san = ["-addext", "subjectAltName=IP:127.0.0.1"];
    fs::rename(dir.join("domain.crt"), dir.join("cn.crt")).unwrap();
    fs::rename(dir.join("domain.key"), dir.join("cn.key")).unwrap();
    openssl(
        &dir,
        &self_signed,
        &[&subject[..], &san, &["-keyout", "domain.key", "-out", "domain.crt"]].concat(),
    );

    // With the IP SAN: trusted as its own CA, as Go does (rustls-webpki would refuse a CA
    // certificate as the server's), and the real client gets past TLS.
    let pair = (dir.join("domain.crt"), dir.join("domain.key"));
    let reg = start_registry(&ws, Some(&pair), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &url, &["--ca", pair.0.to_str().unwrap(), "--assume-trusted"], 0);
    assert_eq!(finding(&report, "tls.trust")["status"], "ok");
    assert_eq!(finding(&report, "tls.name")["status"], "ok");
    let cert_dir = ws.join("cadir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(&pair.0, cert_dir.join("ca.crt")).unwrap();
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(!err.contains("x509") && !err.contains("tls:"), "skopeo failed on TLS: {err}");

    // Only a CN: Go's legacy Common Name message.
    let pair = (dir.join("cn.crt"), dir.join("cn.key"));
    let reg = start_registry(&ws, Some(&pair), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &url, &["--ca", pair.0.to_str().unwrap()], 1);
    let f = finding(&report, "tls.name");
    let expected = "x509: certificate relies on legacy Common Name field, use SANs instead";
    assert_eq!(x509_part(text(f, "client_message")), expected);
    assert!(text(f, "fix").contains("regkit certs site --san 127.0.0.1"), "{f:#}");
    fs::copy(&pair.0, cert_dir.join("ca.crt")).unwrap();
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(err.contains(expected), "skopeo said: {err}");
}
