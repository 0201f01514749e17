//! Name-constrained CAs: a CA given only `--permit-dns` or only `--permit-ip` must not vouch
//! for names of the other kind. regkit refuses to sign such names; a certificate signed
//! anyway, straight with `openssl x509 -req -CA`, is rejected by `openssl verify`, by
//! `regkit certs verify` (webpki) and by Go's verifier (skopeo against Debian's
//! docker-registry serving that certificate). And an IP-only site certificate from a
//! constrained CA passes `openssl verify` (no IP-looking CN for OpenSSL to check as a DNS name).

use std::ffi::OsString;

use crate::harness::registry::Reference;
use crate::harness::{Ran, Workspace, require_tool};

use super::{ec_csr, extensions, openssl};

/// Signs `csr` with the CA in `ca_dir` straight through openssl, with the given SANs and a
/// serverAuth site profile, bypassing every check regkit makes.
fn openssl_sign(ws: &Workspace, ca_dir: &str, csr: &str, sans: &str, out: &str) {
    let ext = format!("{out}.cnf");
    std::fs::write(
        ws.join(&ext),
        format!(
            "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = {sans}\n"
        ),
    )
    .unwrap();
    let (ca, key) = (format!("{ca_dir}/ca.crt"), format!("{ca_dir}/ca.key"));
    let (ok, text) = openssl(
        ws,
        &[
            "x509", "-req", "-in", csr, "-CA", &ca, "-CAkey", &key, "-days", "30", "-extfile",
            &ext, "-out", out,
        ],
    );
    assert!(ok, "{text}");
}

/// Serves `cert` + `key` with docker-registry (TLS, no auth) and lists the tags of a missing
/// repository with skopeo at `host`, trusting only `ca`. With a chain Go accepts, the
/// registry answers 404 over TLS; otherwise the handshake fails with Go's x509 error.
fn skopeo_against(ws: &Workspace, cert: &str, key: &str, ca: &str, host: &str) -> (Ran, String) {
    let config = ws.join("registry.yml");
    std::fs::write(
        &config,
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: \
         ./registry-data\nhttp:\n  addr: 127.0.0.1:0\n",
    )
    .unwrap();
    let env: [(&str, OsString); 2] = [
        ("REGISTRY_HTTP_TLS_CERTIFICATE", ws.join(cert).into()),
        ("REGISTRY_HTTP_TLS_KEY", ws.join(key).into()),
    ];
    let server = Reference::start(ws, &config, &env);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let certs = ws.join("skopeo-certs");
    let _ = std::fs::remove_dir_all(&certs);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(ws.join(ca), certs.join("ca.crt")).unwrap();
    let r = ws
        .tool("skopeo")
        .args(["list-tags", "--cert-dir"])
        .arg(&certs)
        .arg(format!("docker://{host}:{port}/nothing-here"))
        .run();
    (r, server.log())
}

fn go_accepts(r: &Ran, log: &str) {
    assert!(
        r.stderr.contains("404 (Not Found)") && !r.stderr.contains("x509"),
        "Go must accept the chain (the registry then answers 404)\n{r}\nregistry log:\n{log}"
    );
}

/// skopeo logs Go's error quoted (`\"`); compare without the escapes.
fn go_rejects(r: &Ran, excluded: &str) {
    assert_ne!(r.code, Some(0), "{r}");
    let said = r.stderr.replace('\\', "");
    for needle in [
        "x509: a root or intermediate certificate is not authorized to sign for this name",
        excluded,
    ] {
        assert!(said.contains(needle), "Go's error lacks {needle:?}\n{r}");
    }
}

fn verify_fails_everywhere(ws: &Workspace, ca_dir: &str, cert: &str) {
    let ca = format!("{ca_dir}/ca.crt");
    let (ok, text) = openssl(ws, &["verify", "-CAfile", &ca, cert]);
    assert!(!ok && text.contains("excluded subtree violation"), "{text}");
    ws.regkit()
        .args(["certs", "verify", "--ca", &ca, cert])
        .code(1)
        .stdout_has("outside the CA's name constraints");
}

#[test]
fn one_kind_of_constraint_limits_the_other_kind_too() {
    let tools: Vec<bool> =
        ["openssl", "skopeo", "docker-registry"].iter().map(|t| require_tool(t)).collect();
    if !tools.iter().all(|&t| t) {
        return;
    }
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca", "--out", "dns-ca", "--permit-dns", "localhost"]).ok();
    ws.regkit().args(["certs", "ca", "--out", "ip-ca", "--permit-ip", "127.0.0.0/8"]).ok();
    let ext = extensions(&ws, "dns-ca/ca.crt");
    assert_eq!(
        ext["Name Constraints"],
        (
            true,
            "Permitted:\nDNS:localhost\nExcluded:\nIP:0.0.0.0/0.0.0.0\n\
             IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0"
                .into()
        )
    );
    let ext = extensions(&ws, "ip-ca/ca.crt");
    assert_eq!(
        ext["Name Constraints"],
        (true, "Permitted:\nIP:127.0.0.0/255.0.0.0\nExcluded:\nDNS:".into())
    );

    // regkit refuses, before signing anything, names of the kind the CA was not given.
    let site = |ca: &str, san: &str| {
        ws.regkit()
            .args(["certs", "site", "--ca-cert", &format!("{ca}/ca.crt")])
            .args(["--ca-key", &format!("{ca}/ca.key"), "--out", "refused", "--san", san])
            .code(2)
    };
    site("dns-ca", "localhost,IP:8.8.8.8").stderr_has(
        "IP:8.8.8.8 is outside the CA's name constraints (dns-ca/ca.crt permits DNS:localhost; \
         excludes IP:0.0.0.0/0, IP:::/0)",
    );
    site("dns-ca", "::1").stderr_has("IP:::1 is outside");
    site("ip-ca", "www.google.com").stderr_has(
        "DNS:www.google.com is outside the CA's name constraints (ip-ca/ca.crt permits \
         IP:127.0.0.0/8; excludes every DNS name)",
    );
    site("ip-ca", "127.0.0.1,localhost").stderr_has("DNS:localhost is outside");
    assert!(!ws.join("refused").exists(), "nothing written");

    // Certificates inside the constraints work with every verifier, Go included.
    for (ca, san) in [("dns-ca", "localhost"), ("ip-ca", "127.0.0.1")] {
        ws.regkit()
            .args(["certs", "site", "--ca-cert", &format!("{ca}/ca.crt")])
            .args(["--ca-key", &format!("{ca}/ca.key"), "--out", ca, "--san", san])
            .ok();
        let (ok, text) = openssl(
            &ws,
            &["verify", "-CAfile", &format!("{ca}/ca.crt"), &format!("{ca}/site.crt")],
        );
        assert!(ok, "{ca}: {text}");
        let (r, log) = skopeo_against(
            &ws,
            &format!("{ca}/site.crt"),
            &format!("{ca}/site.key"),
            &format!("{ca}/ca.crt"),
            san,
        );
        go_accepts(&r, &log);
    }

    // Signed anyway, straight with openssl: every verifier rejects the name of the other kind.
    ec_csr(&ws, "outsider", "/CN=outsider", &[]);
    let req = "outsider.csr";
    openssl_sign(&ws, "dns-ca", req, "DNS:localhost,IP:127.0.0.1", "dns-ca-ip.crt");
    verify_fails_everywhere(&ws, "dns-ca", "dns-ca-ip.crt");
    let (r, _) = skopeo_against(&ws, "dns-ca-ip.crt", "outsider.key", "dns-ca/ca.crt", "localhost");
    go_rejects(&r, "IP address \"127.0.0.1\" is excluded by constraint \"0.0.0.0/0\"");

    openssl_sign(&ws, "ip-ca", req, "IP:127.0.0.1,DNS:www.google.com", "ip-ca-dns.crt");
    verify_fails_everywhere(&ws, "ip-ca", "ip-ca-dns.crt");
    let (r, _) = skopeo_against(&ws, "ip-ca-dns.crt", "outsider.key", "ip-ca/ca.crt", "127.0.0.1");
    go_rejects(&r, "DNS name \"www.google.com\" is excluded by constraint \"\"");
}

#[test]
fn ip_only_site_from_a_constrained_ca_passes_openssl_verify() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca", "--permit-dns", "lan", "--permit-ip", "10.0.0.0/8"]).ok();
    ws.regkit().args(["certs", "site", "--san", "10.1.2.3"]).ok();
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "pki/site.crt"]);
    assert!(ok && text.contains("pki/site.crt: OK"), "{text}");
    // No CN (an IP-looking CN is what OpenSSL checks against the DNS constraints), so the
    // subject is empty and the SAN extension critical, as RFC 5280 requires.
    let (_, subject) = openssl(&ws, &["x509", "-in", "pki/site.crt", "-noout", "-subject"]);
    assert_eq!(subject.trim(), "subject=");
    assert_eq!(
        extensions(&ws, "pki/site.crt")["Subject Alternative Name"],
        (true, "IP Address:10.1.2.3".into())
    );
    ws.regkit()
        .args(["certs", "verify", "--ca", "pki/ca.crt", "pki/site.crt", "--host", "10.1.2.3"])
        .ok();

    // What the old default did, made with openssl: CN=10.1.2.3 and only an IP SAN fails.
    ec_csr(&ws, "old", "/CN=10.1.2.3", &[]);
    openssl_sign(&ws, "pki", "old.csr", "IP:10.1.2.3", "old.crt");
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "old.crt"]);
    assert!(!ok && text.contains("permitted subtree violation"), "{text}");
    // regkit refuses to make that certificate, and says why.
    ws.regkit()
        .args(["certs", "site", "--out", "x", "--san", "10.1.2.3", "--cn", "10.1.2.3"])
        .code(2)
        .stderr_has("the subject CN 10.1.2.3 is outside the CA's name constraints")
        .stderr_has("choose a --cn that is not a host name, or add a DNS SAN");
    assert!(!ws.join("x").exists());
    // With a DNS SAN anywhere in the list, the CN is the first DNS SAN.
    ws.regkit().args(["certs", "site", "--out", "both", "--san", "10.1.2.3,registry.lan"]).ok();
    let (_, subject) = openssl(&ws, &["x509", "-in", "both/site.crt", "-noout", "-subject"]);
    assert_eq!(subject.trim(), "subject=CN = registry.lan");
    let (ok, text) = openssl(&ws, &["verify", "-CAfile", "pki/ca.crt", "both/site.crt"]);
    assert!(ok, "{text}");
}
