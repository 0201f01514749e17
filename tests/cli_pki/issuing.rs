//! `regkit certs` for bad input, CSR signing, renewal, client certificates, PKCS#12 export,
//! name-constrained CAs and inspect output, each checked with openssl where it can be.

use regkit::files::mode_of;
use regkit::pki;

use super::{SITE_EXTENSIONS, ec_csr, extensions, names, openssl, serial};
use crate::harness::{Workspace, require_tool};

#[test]
fn bad_input_fails_with_one_clear_line_and_writes_nothing() {
    let ws = Workspace::new();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Caught by clap: one line, the tip inline, the command's help named.
        (
            vec!["certs", "ca", "--out", "x", "--key-type", "dsa-1024"],
            "regkit: error: invalid value 'dsa-1024' for '--key-type <TYPE>': unknown key type \
             \"dsa-1024\" (expected ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096) \
             (see regkit certs ca --help)",
        ),
        (
            vec!["certs", "site", "--out", "x"],
            "regkit: error: the following required arguments were not provided: --san <NAME> \
             (see regkit certs site --help)",
        ),
        (
            vec!["certs", "ca", "--out", "x", "--path-len", "300"],
            "regkit: error: invalid value '300' for '--path-len <N>': 300 is not in 0..=255 \
             (see regkit certs ca --help)",
        ),
        (
            vec!["certs", "ca", "--out", "x", "--forc"],
            "unexpected argument '--forc' found; tip: a similar argument exists: '--force' \
             (see regkit certs ca --help)",
        ),
        (vec!["certs", "sing"], "unrecognized subcommand 'sing'"),
        // Caught by regkit.
        (
            vec!["certs", "ca", "--out", "x", "--permit-ip", "10.0.0.0/40"],
            "malformed name constraint",
        ),
        (vec!["certs", "ca", "--out", "x", "--days", "0"], "--days must be at least 1"),
        (vec!["certs", "site", "--out", "x", "--san", "bad..name"], "malformed SAN \"bad..name\""),
        (vec!["certs", "site", "--out", "x", "--san", "IP:300.1.1.1"], "malformed SAN"),
        (
            vec!["certs", "site", "--out", "x", "--san", "a.lan"],
            "regkit: error: cannot read pki/ca.crt: No such file or directory (os error 2)",
        ),
        (vec!["certs", "client", "--out", "x", "--name", "../etc"], "bad --name"),
    ];
    for (args, needle) in cases {
        let r = ws.regkit().args(&args).code(2);
        r.stderr_has(needle);
        assert_eq!(r.stderr.lines().count(), 1, "one line\n{r}");
        assert!(!ws.join("x").exists(), "{args:?} wrote output");
    }
    // Help and version stay clap's own, on stdout.
    let help = ws.regkit().args(["certs", "ca", "--help"]).ok();
    help.stdout_has("Usage: regkit certs ca [OPTIONS]");
    assert!(help.stderr.is_empty(), "{help}");
    let version = ws.regkit().arg("--version").ok();
    assert_eq!(version.stdout, format!("regkit {}\n", env!("CARGO_PKG_VERSION")));

    // Unreadable inputs say why, once: missing, a directory (fails for root too), and
    // permission denied (only as a normal user: root reads a mode-000 file anyway).
    std::fs::create_dir(ws.join("dir.crt")).unwrap();
    let r = ws.regkit().args(["certs", "inspect", "missing.crt"]).code(2);
    assert_eq!(
        r.stderr,
        "regkit: error: cannot read missing.crt: No such file or directory (os error 2)\n"
    );
    let r = ws.regkit().args(["certs", "inspect", "dir.crt"]).code(2);
    assert_eq!(r.stderr, "regkit: error: cannot read dir.crt: Is a directory (os error 21)\n");
    std::fs::write(ws.join("locked.crt"), "x").unwrap();
    std::fs::set_permissions(
        ws.join("locked.crt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let r = ws.regkit().args(["certs", "inspect", "locked.crt"]).code(2);
        assert_eq!(
            r.stderr,
            "regkit: error: cannot read locked.crt: Permission denied (os error 13)\n"
        );
    }

    ws.regkit().args(["certs", "ca"]).ok();
    ws.regkit().args(["certs", "site", "--san", "a.lan"]).ok();
    let site_args = |ca_cert: &str, ca_key: &str| {
        vec![
            "certs".to_string(),
            "site".into(),
            "--out".into(),
            "x".into(),
            "--san".into(),
            "b.lan".into(),
            "--ca-cert".into(),
            ca_cert.into(),
            "--ca-key".into(),
            ca_key.into(),
        ]
    };
    ws.regkit()
        .args(site_args("pki/site.crt", "pki/site.key"))
        .code(2)
        .stderr_has("pki/site.crt is not a CA certificate");
    ws.regkit()
        .args(site_args("pki/ca.crt", "pki/site.key"))
        .code(2)
        .stderr_has("pki/site.key does not match the certificate pki/ca.crt");
    std::fs::write(ws.join("garbage.key"), "hello").unwrap();
    ws.regkit()
        .args(site_args("pki/ca.crt", "garbage.key"))
        .code(2)
        .stderr_has("garbage.key: cannot read private key: no PEM private key found");
    ws.regkit()
        .args(site_args("garbage.key", "pki/ca.key"))
        .code(2)
        .stderr_has("garbage.key: no PEM certificate found");

    // An expired CA (made through the library with a window in the past).
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(100);
    pki::create_ca(&pki::CaOptions {
        dir: ws.join("old-ca"),
        not_before: Some(past),
        days: 10,
        ..Default::default()
    })
    .unwrap();
    ws.regkit()
        .args(site_args("old-ca/ca.crt", "old-ca/ca.key"))
        .code(2)
        .stderr_has("old-ca/ca.crt expired on");
    assert!(!ws.join("x").exists());

    // --p12 without a terminal and without --p12-password-stdin: refuse, do not prompt.
    ws.regkit()
        .args(["certs", "site", "--out", "x", "--san", "b.lan", "--p12", "x.p12"])
        .code(2)
        .stderr_has(
            "cannot prompt for the PKCS#12 password for x.p12: pipe it in with \
             --p12-password-stdin",
        );
    assert!(!ws.join("x").exists() && !ws.join("x.p12").exists());
}

#[test]
fn sign_renew_client_and_p12_work_with_real_tools() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca", "--key-type", "rsa-3072", "--org", "Lab"]).ok();

    // A CSR made by openssl, signed under the site policy, with one extra SAN. It asks to be
    // a CA: the site policy overrides that.
    let asks = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"];
    ec_csr(&ws, "r", "/CN=registry.lan", &["subjectAltName=DNS:registry.lan", asks[0], asks[1]]);
    let (_, req) = openssl(&ws, &["req", "-in", "r.csr", "-noout", "-text"]);
    assert!(req.contains("CA:TRUE") && req.contains("Certificate Sign"), "{req}");
    ws.regkit().args(["certs", "sign", "--csr", "r.csr", "--san", "10.0.0.5"]).ok();
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "r.crt"]);
    assert!(ok, "{text}");
    let ext = extensions(&ws, "r.crt");
    assert_eq!(names(&ext), SITE_EXTENSIONS, "{ext:?}");
    assert_eq!(ext["Subject Alternative Name"].1, "DNS:registry.lan, IP Address:10.0.0.5");
    assert_eq!(ext["Basic Constraints"], (true, "CA:FALSE".into()));
    assert_eq!(ext["Key Usage"], (true, "Digital Signature".into()));
    assert_eq!(ext["Extended Key Usage"], (false, "TLS Web Server Authentication".into()));
    let ca_ext = extensions(&ws, "pki/ca.crt");
    let aki = ext["Authority Key Identifier"].1.trim_start_matches("keyid:").to_string();
    assert_eq!(aki, ca_ext["Subject Key Identifier"].1, "AKI is the CA's SKI");
    assert!(!ext["Subject Key Identifier"].0 && ext["Subject Key Identifier"].1.len() >= 59);
    assert_ne!(ext["Subject Key Identifier"].1, aki);
    // The CA: default lifetime 3650 days, --org in the subject.
    let r = ws.regkit().args(["certs", "inspect", "pki/ca.crt", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let at = |k: &str| {
        let rfc = &time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(v[0][k].as_str().unwrap(), rfc).unwrap()
    };
    assert_eq!((at("not_after") - at("not_before")).whole_days(), 3650, "{v}");
    let (_, subject) = openssl(&ws, &["x509", "-in", "pki/ca.crt", "-noout", "-subject"]);
    assert!(
        subject.starts_with("subject=CN = regkit private CA ") && subject.contains(", O = Lab")
    );
    let (_, m1) = openssl(&ws, &["x509", "-in", "r.crt", "-noout", "-pubkey"]);
    let (_, m2) = openssl(&ws, &["pkey", "-in", "r.key", "-pubout"]);
    assert_eq!(m1, m2, "the certificate carries the CSR's key");
    ws.regkit().args(["certs", "sign", "--csr", "r.csr"]).code(2).stderr_has("already exists");

    // Renew with a new key: same subject and SANs, backups kept, new key 0600.
    ws.regkit().args(["certs", "site", "--san", "reg.lan,192.168.1.102"]).ok();
    let old_key = std::fs::read(ws.join("pki/site.key")).unwrap();
    let old_serial = serial(&ws, "pki/site.crt");
    let r = ws.regkit().args(["certs", "renew", "pki/site.crt", "--new-key", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["sans"], serde_json::json!(["DNS:reg.lan", "IP:192.168.1.102"]));
    assert_eq!(std::fs::read(ws.join("pki/site.key.bak")).unwrap(), old_key);
    assert_ne!(std::fs::read(ws.join("pki/site.key")).unwrap(), old_key);
    assert_eq!(mode_of(&ws.join("pki/site.key")), Some(0o600));
    assert_eq!(mode_of(&ws.join("pki/site.key.bak")), Some(0o600));
    assert_ne!(serial(&ws, "pki/site.crt"), old_serial);
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "pki/site.crt"]);
    assert!(ok, "{text}");
    let (_, m1) = openssl(&ws, &["x509", "-in", "pki/site.crt", "-noout", "-pubkey"]);
    let (_, m2) = openssl(&ws, &["pkey", "-in", "pki/site.key", "-pubout"]);
    assert_eq!(m1, m2, "renewed certificate matches the new key");
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/site.fullchain.crt"])
        .args(["--host", "192.168.1.102"])
        .ok();

    // Client certificate with a PKCS#12 bundle whose password comes from stdin.
    ws.regkit()
        .args(["certs", "client", "--name", "alice", "--p12", "alice.p12"])
        .arg("--p12-password-stdin")
        .stdin("s3cret\n")
        .ok();
    let ext = extensions(&ws, "pki/clients/alice/client.cert");
    let no_san: Vec<&str> =
        SITE_EXTENSIONS.into_iter().filter(|e| *e != "Subject Alternative Name").collect();
    assert_eq!(names(&ext), no_san, "{ext:?}");
    assert_eq!(ext["Extended Key Usage"], (false, "TLS Web Client Authentication".into()));
    assert_eq!(ext["Key Usage"], (true, "Digital Signature".into()));
    assert_eq!(ext["Basic Constraints"], (true, "CA:FALSE".into()));
    assert_eq!(mode_of(&ws.join("pki/clients/alice/client.key")), Some(0o600));
    assert_eq!(mode_of(&ws.join("alice.p12")), Some(0o600));
    ws.regkit()
        .args(["certs", "verify", "--client", "--ca", "pki/ca.crt"])
        .arg("pki/clients/alice/client.cert")
        .ok();
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/clients/alice/client.cert"])
        .code(1)
        .stdout_has("does not allow TLS servers (serverAuth)");
    let (ok, text) =
        openssl(&ws, &["pkcs12", "-info", "-nokeys", "-in", "alice.p12", "-passin", "pass:s3cret"]);
    assert!(ok, "{text}");
    assert!(text.contains("subject=CN = alice") && text.contains("AES-256-CBC"), "{text}");
    let (ok, _) =
        openssl(&ws, &["pkcs12", "-info", "-nokeys", "-in", "alice.p12", "-passin", "pass:wrong"]);
    assert!(!ok, "a wrong password must fail");
}

#[test]
fn name_constrained_ca_and_inspect_output() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ws.regkit()
        .args([
            "certs",
            "ca",
            "--permit-dns",
            "lan",
            "--permit-ip",
            "10.0.0.0/8",
            "--path-len",
            "1",
        ])
        .ok();
    let ext = extensions(&ws, "pki/ca.crt");
    assert!(ext["Name Constraints"].0, "name constraints are critical: {ext:?}");
    assert_eq!(ext["Basic Constraints"].1, "CA:TRUE, pathlen:1");
    ws.regkit()
        .args(["certs", "site", "--san", "registry.example.com"])
        .code(2)
        .stderr_has("outside the CA's name constraints");
    assert!(!ws.join("pki/site.crt").exists());
    ws.regkit().args(["certs", "site", "--san", "registry.lan,10.1.2.3"]).ok();
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "pki/site.crt"]);
    assert!(ok, "{text}");

    let r = ws.regkit().args(["certs", "inspect", "pki/site.crt"]).ok();
    r.stdout_has("Subject:      CN=registry.lan");
    r.stdout_has("SANs:         DNS:registry.lan, IP:10.1.2.3");
    r.stdout_has("Ext. usage:   serverAuth");
    r.stdout_has("Basic constr: CA:FALSE (critical)");
    r.stdout_has("Key:          ECDSA P-256 256 bits");
    r.stdout_has("days left)");
    let (_, fp) =
        openssl(&ws, &["x509", "-in", "pki/site.crt", "-noout", "-fingerprint", "-sha256"]);
    let fp = fp.trim().rsplit('=').next().unwrap().to_string();
    r.stdout_has(&format!("SHA-256:      {fp}"));
    let (_, sn) = openssl(&ws, &["x509", "-in", "pki/site.crt", "-noout", "-serial"]);
    let r = ws.regkit().args(["certs", "inspect", "pki/site.fullchain.crt", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v[0]["serial"].as_str().unwrap().replace(':', ""),
        sn.trim().trim_start_matches("serial=")
    );
    assert_eq!(v[0]["days_left"], 824);
    assert_eq!(v[1]["basic_constraints"]["path_len"], 1);
    assert_eq!(v[1]["key_usage"][0], "critical");
    ws.regkit().args(["certs", "inspect", "nothing.pem"]).code(2).stderr_has("nothing.pem");
}

#[test]
fn openssl_ec_cas_with_sec1_and_pkcs8_keys_sign_wildcards() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    // SEC1 ("EC PRIVATE KEY") and PKCS#8 ("PRIVATE KEY") CA keys, as openssl writes them.
    let keygen: [(&str, &[&str]); 2] = [
        ("sec1", &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "sec1.key"]),
        (
            "pkcs8",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "pkcs8.key",
            ],
        ),
    ];
    for (name, args) in keygen {
        let (ok, text) = openssl(&ws, args);
        assert!(ok, "{text}");
        let key = format!("{name}.key");
        let crt = format!("{name}.crt");
        let (ok, text) = openssl(
            &ws,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-days",
                "30",
                "-subj",
                "/O=Lab/CN=Lab CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                &crt,
            ],
        );
        assert!(ok, "{text}");
        ws.regkit()
            .args(["certs", "site", "--ca-cert", &crt, "--ca-key", &key, "--out", name])
            .args(["--san", "*.reg.lan"])
            .ok()
            .stderr_has("validity shortened to the CA's expiry");
        let site = format!("{name}/site.crt");
        let (ok, text) = openssl(&ws, &["verify", "-CAfile", &crt, &site]);
        assert!(ok, "{name}: {text}");
        let verify = |host: &str| {
            ws.regkit().args(["certs", "verify", "--ca", &crt, &site, "--host", host]).run()
        };
        assert_eq!(verify("a.reg.lan").code, Some(0), "wildcard covers one label");
        let r = verify("reg.lan");
        assert_eq!(r.code, Some(1), "{r}");
        r.stdout_has("has no DNS SAN reg.lan");
    }
    let pem = std::fs::read_to_string(ws.join("sec1.key")).unwrap();
    assert!(pem.contains("EC PRIVATE KEY"), "the first CA really has a SEC1 key");
}
