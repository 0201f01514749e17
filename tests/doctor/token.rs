//! Bearer token authentication: `docker-registry` configured with `auth: token`, and a small
//! token server in the test that checks a Basic password and issues an ES256 JWT carrying its
//! signing certificate in `x5c`, which the registry checks against its rootcertbundle.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use super::{OpensslCa, doctor, finding, openssl, start_registry, text, tools};
use crate::harness::Workspace;

const SERVICE: &str = "doctor-registry";
const ISSUER: &str = "doctor-issuer";

/// An ES256 JWT for `user`, signed by `dir/NAME.key` with `dir/NAME.crt` in `x5c`.
fn jwt(dir: &Path, name: &str, user: &str) -> String {
    let der = CertificateDer::from_pem_file(dir.join(format!("{name}.crt"))).unwrap();
    let header = json!({"alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(der.as_ref())]});
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 600,
        "nbf": now - 60, "iat": now - 60, "jti": format!("doctor-{user}"), "access": []});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join(format!("{name}.key")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(ecdsa_der_to_raw(&out.stdout)))
}

/// JWS wants ECDSA signatures as r || s (32 bytes each), openssl writes DER.
fn ecdsa_der_to_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[at], 0x02);
        let len = der[at + 1] as usize;
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}

/// Serves tokens on a background thread: alice/s3cret gets a token the registry accepts,
/// mallory/s3cret one signed by a key the registry does not know, anything else a 401.
fn token_server(good: String, rogue: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let basic = |user: &str| {
                format!("Authorization: Basic {}", STANDARD.encode(format!("{user}:s3cret")))
            };
            let wants_service = head.contains(&format!("service={SERVICE}"));
            let (status, body) = if wants_service
                && head.contains(&basic("alice"))
                && head.contains("account=alice")
            {
                ("200 OK", json!({"token": good}))
            } else if wants_service && head.contains(&basic("mallory")) {
                ("200 OK", json!({"access_token": rogue}))
            } else {
                (
                    "401 Unauthorized",
                    json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}),
                )
            };
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn login(ws: &Workspace, url: &str, ca: &Path, user: &str, password: &str, code: i32) -> Value {
    let r = ws
        .regkit()
        .args(["doctor", url, "--json", "--assume-trusted", "--ca"])
        .arg(ca)
        .args(["--user", user, "--password-stdin", "--root"])
        .arg(ws.join("root"))
        .stdin(password)
        .code(code);
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn bearer_token_login_good_bad_and_rogue_signer() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let ca = OpensslCa::new(&ws, "pki", "Doctor Test CA");
    let site = ca.site("site", "IP:127.0.0.1", None);
    let keys = ws.join("keys");
    fs::create_dir_all(&keys).unwrap();
    for name in ["signer", "rogue"] {
        let (key, crt, subject) =
            (format!("{name}.key"), format!("{name}.crt"), format!("/CN={name}"));
        openssl(
            &keys,
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
            &["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subject],
        );
    }
    let port = token_server(jwt(&keys, "signer", "alice"), jwt(&keys, "rogue", "mallory"));
    let realm = format!("http://127.0.0.1:{port}/token");
    let bundle = keys.join("signer.crt");
    let reg = start_registry(
        &ws,
        Some(&site),
        &[
            ("REGISTRY_AUTH", "token"),
            ("REGISTRY_AUTH_TOKEN_REALM", &realm),
            ("REGISTRY_AUTH_TOKEN_SERVICE", SERVICE),
            ("REGISTRY_AUTH_TOKEN_ISSUER", ISSUER),
            ("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE", bundle.to_str().unwrap()),
        ],
    );
    let url = format!("https://127.0.0.1:{}", reg.port);

    let report = doctor(&ws, &url, &["--ca", ca.ca_crt().to_str().unwrap(), "--assume-trusted"], 1);
    let f = finding(&report, "http.auth");
    assert_eq!(f["status"], "fail");
    assert_eq!(
        text(f, "summary"),
        format!(
            "authentication required (Bearer realm={realm:?} service=\"{SERVICE}\"); no \
             credentials given to test"
        )
    );

    let report = login(&ws, &url, &ca.ca_crt(), "alice", "s3cret", 0);
    let f = finding(&report, "http.credentials");
    assert_eq!(f["status"], "ok");
    assert!(text(f, "summary").contains("issued a token and the registry accepts it"), "{f:#}");

    let report = login(&ws, &url, &ca.ca_crt(), "alice", "nope", 1);
    let f = finding(&report, "http.credentials");
    assert_eq!(f["status"], "fail");
    assert_eq!(
        text(f, "client_message"),
        format!("Get \"{url}/v2/\": unauthorized: invalid credentials")
    );

    let report = login(&ws, &url, &ca.ca_crt(), "mallory", "s3cret", 1);
    let f = finding(&report, "http.credentials");
    assert!(
        text(f, "summary")
            .starts_with(&format!("the registry refuses the token from {realm} (401")),
        "{f:#}"
    );
    assert!(text(f, "fix").contains("REGISTRY_AUTH_TOKEN_ISSUER"), "{f:#}");
}
