//! A root, an intermediate and a site certificate: the registry serving the full chain is
//! trusted through the root alone; serving only its own certificate is the classic "missing
//! intermediate", which Go reports as an unknown authority.

use std::fs;

use super::{OpensslCa, doctor, finding, skopeo_error, start_registry, text, tools, x509_part};
use crate::harness::Workspace;

#[test]
fn intermediate_served_and_missing() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let root = OpensslCa::new(&ws, "root", "Doctor Root CA");
    let inter = root.intermediate(&ws, "inter", "Doctor Intermediate CA");
    let (leaf, key) = inter.site("site", "IP:127.0.0.1", None);
    let fullchain = ws.join("site.fullchain.crt");
    let pem = [fs::read(&leaf).unwrap(), fs::read(inter.ca_crt()).unwrap()].concat();
    fs::write(&fullchain, pem).unwrap();
    let root_crt = root.ca_crt();
    let cert_dir = ws.join("cadir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(&root_crt, cert_dir.join("ca.crt")).unwrap();

    let reg = start_registry(&ws, Some(&(fullchain, key.clone())), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &url, &["--ca", root_crt.to_str().unwrap(), "--assume-trusted"], 0);
    let f = finding(&report, "tls.trust");
    assert_eq!(f["status"], "ok");
    assert_eq!(f["details"][0], "chain: CN=site <- CN=Doctor Intermediate CA <- CN=Doctor Root CA");
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(!err.contains("x509"), "skopeo failed on TLS: {err}");

    let reg = start_registry(&ws, Some(&(leaf, key)), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let report = doctor(&ws, &url, &["--ca", root_crt.to_str().unwrap()], 1);
    let f = finding(&report, "tls.trust");
    let expected = "x509: certificate signed by unknown authority";
    assert_eq!(x509_part(text(f, "client_message")), expected);
    assert!(f["details"][0].as_str().unwrap().contains("only its own certificate"), "{f:#}");
    assert!(text(f, "fix").contains("serve the full chain"), "{f:#}");
    let err = skopeo_error(&ws, reg.port, &cert_dir);
    assert!(err.contains(expected), "skopeo said: {err}");
}
