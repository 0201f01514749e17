//! Re-issuing: `renew` keeps the issuing CA unless told otherwise, `renew --san` fixes a
//! certificate made by `sign` in place (which is what `verify` suggests for it), and the
//! PKCS#12 export of `site` opened with `openssl pkcs12`.

use regkit::files::mode_of;

use super::{ec_csr, openssl, snapshot};
use crate::harness::{Workspace, require_tool};

#[test]
fn renew_refuses_another_ca_unless_asked() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca", "--cn", "Lab CA"]).ok();
    ws.regkit().args(["certs", "site", "--san", "registry.lan"]).ok();
    ws.regkit().args(["certs", "ca", "--out", "other", "--cn", "Other CA"]).ok();
    ws.regkit().args(["certs", "ca", "--out", "twin", "--cn", "Lab CA"]).ok();
    let before = snapshot(&ws.join("pki"));
    let renew_with = |ca: &str| {
        ws.regkit()
            .args(["certs", "renew", "pki/site.crt", "--ca-cert", &format!("{ca}/ca.crt")])
            .args(["--ca-key", &format!("{ca}/ca.key")])
    };
    let r = renew_with("other").code(2);
    assert_eq!(
        r.stderr,
        "regkit: error: pki/site.crt was issued by CN=Lab CA, not by other/ca.crt (CN=Other CA): \
         pass its CA with --ca-cert and --ca-key, or add --new-issuer to re-issue it under \
         other/ca.crt\n"
    );
    renew_with("twin")
        .code(2)
        .stderr_has("not by twin/ca.crt (CN=Lab CA, the same name but a different key)");
    assert_eq!(before, snapshot(&ws.join("pki")), "nothing written, no .bak");

    // The issuing CA (the default pki/) renews; --new-issuer moves it on purpose.
    ws.regkit().args(["certs", "renew", "pki/site.crt"]).ok();
    renew_with("other").arg("--new-issuer").ok();
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "other/ca.crt", "pki/site.crt"]);
    assert!(ok, "{text}");
    let (ok, _) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "pki/site.crt"]);
    assert!(!ok, "no longer issued by the old CA");
    // The fullchain follows the new CA; the .bak is the previous renewal (an older .bak is
    // replaced).
    let chain = std::fs::read_to_string(ws.join("pki/site.fullchain.crt")).unwrap();
    assert!(chain.ends_with(&std::fs::read_to_string(ws.join("other/ca.crt")).unwrap()));
    let (ok, _) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "pki/site.crt.bak"]);
    assert!(ok, "site.crt.bak holds the certificate of the renewal before");
}

#[test]
fn verify_suggests_renew_for_a_signed_certificate_and_renew_san_fixes_it() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca"]).ok();
    ws.regkit().args(["certs", "ca", "--out", "other"]).ok();
    ec_csr(&ws, "r", "/CN=r.lan", &["subjectAltName=DNS:r.lan"]);
    ws.regkit().args(["certs", "sign", "--csr", "r.csr"]).ok();
    let r = ws
        .regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "r.crt", "--host", "10.0.0.9"])
        .code(1);
    r.stdout_has(
        "the certificate has no IP SAN 10.0.0.9 (it has: DNS:r.lan): add it with \
         `regkit certs renew r.crt --san 10.0.0.9`",
    );
    assert!(!r.stdout.contains("certs site"), "certs site would overwrite pki/site.*\n{r}");
    let r = ws.regkit().args(["certs", "verify", "--ca", "other/ca.crt", "r.crt"]).code(1);
    r.stdout_has("`regkit certs renew r.crt --ca-cert CA --ca-key KEY --new-issuer`");

    // Doing what it says: same key, one more SAN, the old certificate kept.
    let old = std::fs::read(ws.join("r.crt")).unwrap();
    ws.regkit().args(["certs", "renew", "r.crt", "--san", "10.0.0.9"]).ok();
    assert_eq!(std::fs::read(ws.join("r.crt.bak")).unwrap(), old);
    ws.regkit().args(["certs", "verify", "--ca", "pki/ca.crt", "r.crt", "--host", "10.0.0.9"]).ok();
    let (_, m1) = openssl(&ws, &["x509", "-in", "r.crt", "-noout", "-pubkey"]);
    let (_, m2) = openssl(&ws, &["pkey", "-in", "r.key", "-pubout"]);
    assert_eq!(m1, m2, "renew keeps the CSR's key");
    assert!(!ws.join("pki/site.crt").exists(), "pki/site.* untouched");
    ws.regkit()
        .args(["certs", "renew", "r.crt", "--ca-cert", "other/ca.crt", "--ca-key"])
        .args(["other/ca.key", "--new-issuer"])
        .ok();
    ws.regkit().args(["certs", "verify", "--ca", "other/ca.crt", "r.crt"]).ok();

    // For pki/site.crt the fix stays `certs site ... --force`.
    ws.regkit().args(["certs", "site", "--san", "registry.lan"]).ok();
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/site.crt", "--host", "10.0.0.9"])
        .code(1)
        .stdout_has("re-issue with `regkit certs site --san registry.lan,10.0.0.9 --force`");
}

#[test]
fn site_p12_round_trips_through_openssl_pkcs12() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca", "--key-type", "rsa-2048"]).ok();
    // An empty password is refused before anything is written.
    ws.regkit()
        .args(["certs", "site", "--san", "registry.lan", "--p12", "site.p12"])
        .arg("--p12-password-stdin")
        .stdin("\n")
        .code(2)
        .stderr_has("cannot build site.p12: the password must not be empty");
    assert!(!ws.join("site.p12").exists() && !ws.join("pki/site.crt").exists());

    ws.regkit()
        .args(["certs", "site", "--san", "registry.lan", "--p12", "site.p12"])
        .arg("--p12-password-stdin")
        .stdin("correct horse\n")
        .ok()
        .stderr_has("PKCS#12:    site.p12 (0600)");
    assert_eq!(mode_of(&ws.join("site.p12")), Some(0o600));
    let pkcs12 = |what: &[&str], pass: &str| {
        let mut args = vec!["pkcs12", "-in", "site.p12", "-passin", pass];
        args.extend(what);
        openssl(&ws, &args)
    };
    let pass = "pass:correct horse";
    let (ok, key) = pkcs12(&["-nocerts", "-nodes"], pass);
    assert!(ok, "{key}");
    std::fs::write(ws.join("from-p12.key"), &key).unwrap();
    let (_, m1) = openssl(&ws, &["pkey", "-in", "from-p12.key", "-pubout"]);
    let (_, m2) = openssl(&ws, &["pkey", "-in", "pki/site.key", "-pubout"]);
    assert!(m1.contains("BEGIN PUBLIC KEY") && m1 == m2, "the bundle holds site.key");
    let fingerprint = |file: &str| {
        let (ok, t) = openssl(&ws, &["x509", "-in", file, "-noout", "-fingerprint", "-sha256"]);
        assert!(ok, "{t}");
        t
    };
    let (ok, leaf) = pkcs12(&["-nokeys", "-clcerts"], pass);
    assert!(ok, "{leaf}");
    std::fs::write(ws.join("from-p12.crt"), &leaf).unwrap();
    assert_eq!(fingerprint("from-p12.crt"), fingerprint("pki/site.crt"));
    let (ok, ca) = pkcs12(&["-nokeys", "-cacerts"], pass);
    assert!(ok, "{ca}");
    std::fs::write(ws.join("from-p12-ca.crt"), &ca).unwrap();
    assert_eq!(fingerprint("from-p12-ca.crt"), fingerprint("pki/ca.crt"));
    let (ok, _) = pkcs12(&["-nokeys"], "pass:wrong");
    assert!(!ok, "a wrong password must fail");
}
