//! The exit status says whether a client on this machine would succeed. `--ca` is a
//! hypothesis about which CA the clients should trust: when the chain verifies with it but no
//! client here has it for this host:port, a client here fails, and the fix the doctor names
//! (`regkit trust install ...`) is what makes it pass; `--assume-trusted` judges another
//! node's view instead.

use std::fs;

use super::{OpensslCa, doctor, finding, skopeo_error, start_registry, text, tools, x509_part};
use crate::harness::Workspace;

#[test]
fn a_ca_no_client_here_trusts_fails_until_the_named_fix_is_run() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("site", "IP:127.0.0.1", None);
    let reg = start_registry(&ws, Some(&site), &[]);
    let url = format!("https://127.0.0.1:{}", reg.port);
    let authority = format!("127.0.0.1:{}", reg.port);
    let ca_arg = ca.ca_crt().display().to_string();

    let report = doctor(&ws, &url, &["--ca", &ca_arg], 1);
    assert_eq!(finding(&report, "tls.trust")["status"], "ok");
    let f = finding(&report, "tls.certs_d");
    assert_eq!(f["status"], "fail");
    assert_eq!(
        text(f, "summary"),
        format!(
            "the chain verifies with {ca_arg}, but no client on this machine trusts that CA \
             for {authority}"
        )
    );
    // What the clients here print, as the real one does.
    assert_eq!(
        x509_part(text(f, "client_message")),
        "x509: certificate signed by unknown authority"
    );
    let empty = ws.join("empty-certs");
    fs::create_dir_all(&empty).unwrap();
    assert!(
        skopeo_error(&ws, reg.port, &empty).contains("certificate signed by unknown authority")
    );

    // Judged as another node that trusts it would see it: a warning only.
    let report = doctor(&ws, &url, &["--ca", &ca_arg, "--assume-trusted"], 0);
    assert_eq!(finding(&report, "tls.certs_d")["status"], "warn");
    assert_eq!(report["ok"], true);

    // The fix, run as the doctor words it, makes every client here trust the registry.
    let fix = text(f, "fix");
    let command = fix.split('`').nth(1).expect("a command in backticks");
    let root = ws.join("root");
    assert_eq!(
        command,
        format!(
            "regkit trust install --ca {ca_arg} --registry {authority} --root {}",
            root.display()
        )
    );
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    ws.regkit().args(&args).ok();
    let report = doctor(&ws, &url, &["--ca", &ca_arg], 0);
    assert_eq!(finding(&report, "tls.certs_d")["status"], "ok");
    let report = doctor(&ws, &url, &[], 0);
    assert_eq!(finding(&report, "tls.trust")["status"], "ok");
    let podman_dir = root.join("etc/containers/certs.d").join(&authority);
    let err = skopeo_error(&ws, reg.port, &podman_dir);
    assert!(!err.contains("x509") && err.contains("manifest unknown"), "skopeo said: {err}");
}
