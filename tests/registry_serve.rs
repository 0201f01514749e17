//! `regkit serve` through the real binary and real tools: TLS versions and ALPN with openssl
//! and curl, certificate rotation and SIGHUP, client certificates, graceful shutdown, the
//! config file / `REGISTRY_*` / flag layering, and htpasswd Basic auth whose credentials never
//! reach the log; the stale-upload purge ([`purge`]) and the start-up warnings ([`warnings`]).
//! Draining in-flight requests is tested in-process with a slow handler.

mod drain;
mod purge;
mod support;
mod warnings;

use std::time::Duration;

use support::{Server, curl, make_ca, make_leaf, replace_atomically};

use crate::harness::{Workspace, require_tool};

/// CA `ca`, site certificate `site` (serial 1001) in `ws/pki`.
fn site_pki(ws: &Workspace) {
    let pki = ws.join("pki");
    make_ca(&pki, "ca");
    make_leaf(&pki, "ca", "site", 1001, "serverAuth");
}

#[test]
fn serve_plain_http_default_is_loopback_with_a_loud_warning() {
    let ws = Workspace::new();
    let r = ws.regkit().args(["serve", "--check", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["addr"], "127.0.0.1:5000", "{r}");
    assert!(v["tls"].is_null(), "{r}");
    assert_eq!(v["storage"]["rootdirectory"], "./data");

    let mut server = Server::start(&ws, &["--addr", "127.0.0.1:0"], &[]);
    assert!(server.url.starts_with("http://127.0.0.1:"), "{}", server.url);
    assert!(
        server.log().contains("warning: serving PLAIN HTTP on 127.0.0.1:0"),
        "{}",
        server.log()
    );
    if require_tool("curl") {
        let (code, out, _) = curl(&ws, &[&format!("{}/v2/", server.url)]);
        assert_eq!(code, Some(0));
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.to_ascii_lowercase().contains("docker-distribution-api-version: registry/2.0"));
        // http.headers of the embedded default are on every response.
        assert!(out.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{out}");
        let (_, out, _) = curl(&ws, &[&format!("{}/", server.url)]);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        server.wait_log("path=/v2/ status=200", Duration::from_secs(5));
        // HEAD has no body to stream; it is logged all the same.
        let (_, out, _) = curl(&ws, &["-I", &format!("{}/", server.url)]);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        server.wait_log("method=HEAD path=/ status=200", Duration::from_secs(5));
    }
    if require_tool("kill") {
        // SIGHUP must not end a server that has no certificate to reload.
        server.signal("HUP");
        server.wait_log("SIGHUP received: no TLS certificate to reload", Duration::from_secs(5));
        assert!(server.child.0.try_wait().unwrap().is_none(), "{}", server.log());
    }
    assert!(ws.join("data").is_dir());

    // Secure by default: no plain HTTP on an address others can reach without the flag.
    let r = ws.regkit().args(["serve", "--addr", "0.0.0.0:0"]).code(2);
    r.stderr_has("refusing plain HTTP on 0.0.0.0:0").stderr_has("--insecure-http");
    ws.regkit().args(["serve", "--addr", ":5000", "--insecure-http", "--check"]).ok();
}

#[test]
fn serve_tls_speaks_1_2_and_1_3_refuses_1_1_and_negotiates_h2() {
    if !require_tool("openssl") || !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    site_pki(&ws);
    use std::os::unix::fs::PermissionsExt;
    let key = ws.join("pki/site.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    // --check loads the certificate too: a key that does not match it fails there.
    std::fs::copy(ws.join("pki/ca.key"), ws.join("pki/wrong.key")).unwrap();
    ws.regkit()
        .args(["serve", "--check", "--tls-cert", "pki/site.crt", "--tls-key", "pki/wrong.key"])
        .code(2)
        .stderr_has("pki/site.crt with pki/wrong.key");
    // The embedded default picks up ./pki/site.crt and ./pki/site.key.
    let server = Server::start(&ws, &["--addr", "127.0.0.1:0"], &[]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    assert!(!server.log().contains("PLAIN HTTP"), "{}", server.log());
    assert!(server.log().contains("readable by other users (mode 0644)"), "{}", server.log());
    for (flag, want) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let r = ws
            .tool("openssl")
            .args(["s_client", flag, "-connect", &server.addr, "-servername", "localhost"])
            .args(["-CAfile", "pki/ca.crt", "-verify_return_error"])
            .stdin("")
            .run();
        assert_eq!(r.code, Some(0), "{r}");
        assert!(
            r.stdout.contains(&format!("Protocol  : {want}"))
                || r.stdout.contains(&format!("New, {want}")),
            "{r}"
        );
        assert!(r.stdout.contains("Verify return code: 0 (ok)"), "{r}");
    }
    // SECLEVEL=0 lets the client offer TLS 1.1 at all, so the refusal is the server's.
    let r = ws
        .tool("openssl")
        .args(["s_client", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-connect", &server.addr])
        .stdin("")
        .run();
    assert_ne!(r.code, Some(0), "{r}");
    // The refusal is an alert sent by the server (rustls answers handshake_failure), not a
    // client that could not even offer TLS 1.1.
    assert!(r.stderr.contains("SSL alert number"), "{r}");
    assert!(!r.stdout.contains("Cipher is ECDHE") && r.stdout.contains("Cipher is (NONE)"), "{r}");

    let (code, out, err) =
        curl(&ws, &["-v", "--http2", "--cacert", "pki/ca.crt", &format!("{}/v2/", server.url)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("ALPN: server accepted h2"), "{err}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");

    // http.http2.disabled leaves only http/1.1 in ALPN.
    std::fs::write(
        ws.join("config.yml"),
        "version: 0.1\nstorage: {filesystem: {rootdirectory: ./data}}\nhttp:\n  addr: 127.0.0.1:0\n  \
         tls: {certificate: pki/site.crt, key: pki/site.key}\n  http2: {disabled: true}\n",
    )
    .unwrap();
    let server = Server::start(&ws, &["--config", "config.yml"], &[]);
    let (code, out, err) =
        curl(&ws, &["-v", "--http2", "--cacert", "pki/ca.crt", &format!("{}/v2/", server.url)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[test]
fn serve_rotates_the_certificate_without_restart_or_dropping_connections() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    site_pki(&ws);
    let pki = ws.join("pki");
    make_leaf(&pki, "ca", "next", 2002, "serverAuth");
    let mut server = Server::start(&ws, &["--addr", "127.0.0.1:0"], &[]);
    let ca = pki.join("ca.crt");
    let original = support::pem_leaf(&pki.join("site.crt"));
    let mut old_conn = support::tls_connect(&server.addr, &ca);
    assert_eq!(support::peer_leaf(&old_conn), original);
    assert_eq!(support::http_get(&mut old_conn, "/v2/").0, 200);

    // A broken certificate is refused and the old one stays.
    std::fs::write(ws.join("garbage.crt"), "not a certificate\n").unwrap();
    replace_atomically(&ws.join("garbage.crt"), &pki.join("site.crt"));
    server.wait_log("TLS certificate not reloaded", Duration::from_secs(10));
    let probe = support::tls_connect(&server.addr, &ca);
    assert_eq!(support::peer_leaf(&probe), original);

    replace_atomically(&pki.join("next.key"), &pki.join("site.key"));
    replace_atomically(&pki.join("next.crt"), &pki.join("site.crt"));
    server.wait_log("TLS certificate reloaded", Duration::from_secs(10));
    let mut new_conn = support::tls_connect(&server.addr, &ca);
    assert_eq!(support::peer_leaf(&new_conn), support::pem_leaf(&pki.join("next.crt")));
    assert_eq!(support::http_get(&mut new_conn, "/").0, 200);
    // The connection opened before the rotation is still served.
    assert_eq!(support::http_get(&mut old_conn, "/v2/").0, 200);
    assert_ne!(support::peer_leaf(&old_conn), support::peer_leaf(&new_conn));
}

#[test]
fn serve_reloads_the_certificate_on_sighup_and_exits_0_on_sigterm() {
    if !require_tool("openssl") || !require_tool("kill") {
        return;
    }
    let ws = Workspace::new();
    site_pki(&ws);
    let pki = ws.join("pki");
    make_leaf(&pki, "ca", "next", 2002, "serverAuth");
    // reloadinterval 0: no polling, so only SIGHUP can pick up the new files.
    std::fs::write(
        ws.join("config.yml"),
        "version: 0.1\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    certificate: pki/site.crt\n    \
         key: pki/site.key\n    reloadinterval: 0s\n",
    )
    .unwrap();
    let mut server = Server::start(&ws, &["--config", "config.yml", "--root", "store"], &[]);
    let ca = pki.join("ca.crt");
    let original = support::pem_leaf(&pki.join("site.crt"));
    replace_atomically(&pki.join("next.key"), &pki.join("site.key"));
    replace_atomically(&pki.join("next.crt"), &pki.join("site.crt"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(support::peer_leaf(&support::tls_connect(&server.addr, &ca)), original);
    server.signal("HUP");
    server.wait_log("TLS certificate reloaded", Duration::from_secs(10));
    assert!(server.log().contains("reason=\"SIGHUP\"") || server.log().contains("reason=SIGHUP"));
    let conn = support::tls_connect(&server.addr, &ca);
    assert_eq!(support::peer_leaf(&conn), support::pem_leaf(&pki.join("next.crt")));

    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0), "{}", server.log());
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("regkit: stopped"), "{log}");
    assert!(ws.join("store").is_dir(), "--root overrides the storage root");
}

#[test]
fn serve_config_warns_once_about_unsupported_keys_and_applies_env_overrides() {
    let ws = Workspace::new();
    std::fs::write(
        ws.join("config.yml"),
        "version: 0.1\nlog:\n  formatter: json\nstorage:\n  cache:\n    blobdescriptor: inmemory\n  \
         filesystem:\n    rootdirectory: /nonexistent/ignored\nhttp:\n  addr: :5000\n  \
         draintimeout: 5s\nnotifications:\n  endpoints:\n    - name: a\n      url: http://x\n    \
         - name: b\n      url: http://y\nproxy:\n  ttl: 1h\n",
    )
    .unwrap();
    let envroot = ws.join("envroot");
    let env = [
        ("REGISTRY_HTTP_ADDR", "127.0.0.1:0"),
        ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", envroot.to_str().unwrap()),
        ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
    ];
    let mut check = ws.regkit().args(["serve", "--config", "config.yml", "--check", "--json"]);
    for (k, v) in env {
        check = check.env(k, v);
    }
    let r = check.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["addr"], "127.0.0.1:0");
    assert_eq!(v["storage"]["rootdirectory"], envroot.to_str().unwrap());
    assert_eq!(v["storage"]["delete"], true);
    assert_eq!(v["draintimeout"], "5s");

    let server = Server::start(&ws, &["--config", "config.yml"], &env);
    let log = server.log();
    let warning = "configuration keys not supported by regkit are ignored: \
                   storage.cache.blobdescriptor, proxy.ttl, notifications.endpoints";
    assert_eq!(log.matches("not supported by regkit").count(), 1, "{log}");
    assert!(log.contains(warning), "{log}");
    assert!(envroot.is_dir(), "the env root is used: {log}");
    assert!(server.url.starts_with("http://127.0.0.1:"));
    drop(server);

    // Wrong types are errors naming the key, from the file or from the environment.
    std::fs::write(ws.join("bad.yml"), "version: 0.1\nhttp:\n  draintimeout: 10\n").unwrap();
    ws.regkit()
        .args(["serve", "--config", "bad.yml"])
        .code(2)
        .stderr_has("http.draintimeout: expected a duration like 10s");
    ws.regkit()
        .args(["serve", "--config", "config.yml"])
        .env("REGISTRY_STORAGE_DELETE_ENABLED", "sometimes")
        .code(2)
        .stderr_has("storage.delete.enabled: expected true or false");
    ws.regkit()
        .args(["serve", "--config", "config.yml"])
        .env("REGISTRY_STORAGE", "s3")
        .code(2)
        .stderr_has("storage.s3: the s3 storage driver");
    ws.regkit().args(["serve", "--config", "missing.yml"]).code(2).stderr_has("missing.yml");
    // A pull-through cache would silently become an ordinary registry: refused, with the way out.
    for args in
        [&["serve", "--config", "config.yml"][..], &["serve", "--config", "config.yml", "--check"]]
    {
        let r = ws
            .regkit()
            .args(args)
            .env("REGISTRY_PROXY_REMOTEURL", "https://registry-1.docker.io")
            .code(2);
        r.stderr_has("proxy.remoteurl: regkit cannot be a pull-through cache")
            .stderr_has("Run registry:2 (distribution) for a pull-through cache");
        assert!(!r.stderr.contains("listening on"), "{r}");
    }
}

#[test]
fn serve_htpasswd_challenges_and_never_logs_credentials() {
    if !require_tool("htpasswd") || !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    ws.tool("htpasswd").args(["-B", "-b", "-C", "5", "-c", "htpasswd", "alice", "S3cret-pw"]).ok();
    ws.regkit()
        .args(["serve", "--addr", "127.0.0.1:0", "--htpasswd", "nope"])
        .code(2)
        .stderr_has("auth.htpasswd.path nope");
    std::fs::write(ws.join("config.yml"), "version: 0.1\nlog: {formatter: json, level: error}\n")
        .unwrap();
    let env = [
        ("REGISTRY_AUTH", "htpasswd"),
        ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "htpasswd"),
        ("REGISTRY_HTTP_ADDR", "127.0.0.1:0"),
    ];
    let mut server = Server::start(&ws, &["--config", "config.yml"], &env);
    let v2 = format!("{}/v2/", server.url);
    let challenge = "www-authenticate: basic realm=\"registry realm\"";
    for creds in [None, Some("alice:wrong-pw"), Some("mallory:S3cret-pw")] {
        let mut args = vec![v2.as_str()];
        if let Some(c) = creds {
            args.extend(["-u", c]);
        }
        let (_, out, _) = curl(&ws, &args);
        assert!(out.starts_with("HTTP/1.1 401"), "{creds:?}: {out}");
        assert!(out.to_ascii_lowercase().contains(challenge), "{creds:?}: {out}");
        assert!(out.contains("\"UNAUTHORIZED\""), "{out}");
    }
    for _ in 0..2 {
        let (_, out, _) = curl(&ws, &["-u", "alice:S3cret-pw", &v2]);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
    server.wait_log("\"user\":\"alice\"", Duration::from_secs(5));
    let log = server.log();
    // JSON access log lines carry the fields and parse as JSON; like the reference's access
    // log they do not depend on log.level.
    let line = log.lines().find(|l| l.contains("\"user\":\"alice\"")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["path"], "/v2/");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["bytes"], 2);
    assert!(entry["duration_ms"].is_number());
    assert_eq!(log.matches("\"status\":401").count(), 3, "{log}");
    for secret in ["S3cret-pw", "wrong-pw", "YWxpY2U6UzNjcmV0LXB3", "Basic ", "uthorization"] {
        assert!(!log.contains(secret), "{secret:?} leaked into the log:\n{log}");
    }
}

#[test]
fn serve_requires_client_certificates_from_clientcas() {
    if !require_tool("openssl") || !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    site_pki(&ws);
    let pki = ws.join("pki");
    make_ca(&pki, "clients");
    make_leaf(&pki, "clients", "ci", 3003, "clientAuth");
    make_ca(&pki, "other");
    make_leaf(&pki, "other", "stranger", 4004, "clientAuth");
    std::fs::write(
        ws.join("config.yml"),
        "version: 0.1\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    certificate: pki/site.crt\n    \
         key: pki/site.key\n    clientcas:\n      - pki/clients.crt\n",
    )
    .unwrap();
    let server = Server::start(&ws, &["--config", "config.yml"], &[]);
    let v2 = format!("{}/v2/", server.url);
    let (code, out, err) = curl(&ws, &["--cacert", "pki/ca.crt", &v2]);
    assert_ne!(code, Some(0), "no client certificate must fail: {out}");
    assert!(!out.contains("200"), "{out} {err}");
    let (code, out, _) = curl(
        &ws,
        &["--cacert", "pki/ca.crt", "--cert", "pki/stranger.crt", "--key", "pki/stranger.key", &v2],
    );
    assert_ne!(code, Some(0), "a certificate from another CA must fail: {out}");
    let (code, out, err) =
        curl(&ws, &["--cacert", "pki/ca.crt", "--cert", "pki/ci.crt", "--key", "pki/ci.key", &v2]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(" 200"), "{out}");
}

#[test]
fn serve_extension_keys_keep_the_file_usable_by_the_reference_registry() {
    if !require_tool("docker-registry") || !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    site_pki(&ws);
    std::fs::write(
        ws.join("config.yml"),
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ./data\n    fsync: false\n  \
         delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  draintimeout: 2s\n  \
         chunkminlength: 1048576\n  tls:\n    certificate: pki/site.crt\n    key: pki/site.key\n    \
         reloadinterval: 5s\n",
    )
    .unwrap();
    let r = ws.regkit().args(["serve", "--config", "config.yml", "--check", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["storage"]["fsync"], false);
    assert_eq!(v["tls"]["reloadinterval"], "5s");
    assert_eq!(v["chunkminlength"], 1048576);
    assert!(!r.stderr.contains("not supported"), "{r}");
    let line = support::reference_start(&ws, "config.yml");
    assert!(line.contains("listening on 127.0.0.1:"), "{line}");
    // And regkit acts on the file: every upload start advertises the chunk size.
    if require_tool("curl") {
        let server = Server::start(&ws, &["--config", "config.yml"], &[]);
        let post = format!("{}/v2/ext/blobs/uploads/", server.url);
        let (code, out, err) = curl(&ws, &["--cacert", "pki/ca.crt", "-X", "POST", &post]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.starts_with("HTTP/2 202"), "{out}");
        assert!(
            out.to_ascii_lowercase().contains("\r\noci-chunk-min-length: 1048576\r\n"),
            "{out}"
        );
    }

    // `storage.fsync`, the other spelling regkit accepts, is refused by the reference.
    std::fs::write(
        ws.join("other.yml"),
        "version: 0.1\nstorage:\n  fsync: false\n  filesystem:\n    rootdirectory: ./data\nhttp:\n  \
         addr: 127.0.0.1:0\n",
    )
    .unwrap();
    let r = ws.regkit().args(["serve", "--config", "other.yml", "--check", "--json"]).ok();
    assert!(r.stdout.contains("\"fsync\": false"), "{r}");
    let line = support::reference_start(&ws, "other.yml");
    assert!(line.contains("configuration error"), "{line}");
}
