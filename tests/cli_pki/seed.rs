//! The openssl recipe of seed 001, command for command: an RSA 2048 root with `pathlen:1`
//! (the key as OpenSSL 3's `genrsa` writes it, PKCS#8, and as OpenSSL 1.x did, PKCS#1), then
//! the seed's site key and CSR (no SAN, as the seed makes it), signed through regkit instead
//! of `openssl x509 -req`, and a site certificate issued by regkit from the same root.

use super::openssl;
use crate::harness::{Workspace, require_tool};

const SUBJECT: &str = "/C=CN/ST=beijing/L=beijing/O=cmri/CN=cmri.cn";

/// Steps 1-4 of the seed, with `genrsa_extra` added to step 1.
fn root_ca(ws: &Workspace, genrsa_extra: &[&str]) {
    std::fs::write(
        ws.join("root-ca.cnf"),
        "[root_ca]\nbasicConstraints = critical,CA:TRUE,pathlen:1\n\
         keyUsage = critical, nonRepudiation, cRLSign, keyCertSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    let genrsa: Vec<&str> = ["genrsa"]
        .into_iter()
        .chain(genrsa_extra.iter().copied())
        .chain(["-out", "root-ca.key", "2048"])
        .collect();
    let steps: [&[&str]; 3] = [
        &genrsa,
        &["req", "-new", "-key", "root-ca.key", "-out", "root-ca.csr", "-sha256", "-subj", SUBJECT],
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
    for s in steps {
        let (ok, text) = openssl(ws, s);
        assert!(ok, "{s:?}: {text}");
    }
}

#[test]
fn seed_001_recipe_ca_signs_through_regkit() {
    if !require_tool("openssl") {
        return;
    }
    for (genrsa_extra, pem_label) in
        [(&[][..], "-----BEGIN PRIVATE KEY-----"), (&["-traditional"][..], "RSA PRIVATE KEY")]
    {
        let ws = Workspace::new();
        root_ca(&ws, genrsa_extra);
        let key = std::fs::read_to_string(ws.join("root-ca.key")).unwrap();
        assert!(key.contains(pem_label), "genrsa {genrsa_extra:?} writes {pem_label}: {key}");

        // A site certificate issued by regkit from the seed's CA.
        ws.regkit()
            .args(["certs", "site", "--ca-cert", "root-ca.crt", "--ca-key", "root-ca.key"])
            .args(["--san", "mds-repo.cmri.cn,IP:192.168.2.140", "--out", "ssl"])
            .ok();
        let (ok, text) = openssl(&ws, &["verify", "-CAfile", "root-ca.crt", "ssl/site.crt"]);
        assert!(ok, "{genrsa_extra:?}: {text}");
        ws.regkit()
            .args(["certs", "verify", "--ca", "root-ca.crt", "ssl/site.crt"])
            .args(["--host", "192.168.2.140"])
            .ok()
            .stdout_has("OK: ssl/site.crt is valid for 192.168.2.140");
        let (_, text) = openssl(&ws, &["x509", "-in", "ssl/site.crt", "-noout", "-issuer"]);
        assert!(
            text.contains("C = CN, ST = beijing, L = beijing, O = cmri, CN = cmri.cn"),
            "{text}"
        );

        // Steps 5-6 of the seed (site key and CSR), step 8 done by regkit with the SANs the
        // seed puts in site.cnf.
        let steps: [&[&str]; 2] = [
            &["genrsa", "-out", "cmri.cn.key", "2048"],
            &[
                "req",
                "-new",
                "-key",
                "cmri.cn.key",
                "-out",
                "site.csr",
                "-sha256",
                "-subj",
                SUBJECT,
            ],
        ];
        for s in steps {
            let (ok, text) = openssl(&ws, s);
            assert!(ok, "{s:?}: {text}");
        }
        ws.regkit()
            .args(["certs", "sign", "--csr", "site.csr", "--out", "cmri.cn.crt"])
            .args(["--ca-cert", "root-ca.crt", "--ca-key", "root-ca.key"])
            .args(["--san", "IP:192.168.122.1,IP:127.0.0.1"])
            .ok();
        let (ok, text) = openssl(&ws, &["verify", "-CAfile", "root-ca.crt", "cmri.cn.crt"]);
        assert!(ok, "{genrsa_extra:?}: {text}");
        let ext = super::extensions(&ws, "cmri.cn.crt");
        assert_eq!(
            ext["Key Usage"],
            (true, "Digital Signature, Key Encipherment".into()),
            "an RSA key gets keyEncipherment, as the seed's site.cnf asks"
        );
        assert_eq!(
            ext["Subject Alternative Name"].1,
            "IP Address:192.168.122.1, IP Address:127.0.0.1"
        );
        let (_, m1) = openssl(&ws, &["x509", "-in", "cmri.cn.crt", "-noout", "-pubkey"]);
        let (_, m2) = openssl(&ws, &["pkey", "-in", "cmri.cn.key", "-pubout"]);
        assert_eq!(m1, m2, "the certificate carries the seed's site key");
    }
}
