//! The start-up warnings through the binary (the list itself is unit-tested in
//! `registry::config::warnings`): an open registry bound to every interface is warned about,
//! the same registry with a password file or on loopback is not. The server binds 0.0.0.0 but
//! is only ever spoken to through 127.0.0.1.

use super::support::{Server, curl};
use crate::harness::{Workspace, pki, require_tool};

const OPEN: &str = "no authentication is configured and 0.0.0.0:0 is reachable from other machines";

#[test]
fn serve_warns_about_an_open_registry_off_loopback() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    pki::make(&ws, "pki", "localhost,127.0.0.1");
    let tls = ["--tls-cert", "pki/site.crt", "--tls-key", "pki/site.key", "--root", "data"];
    let mut args = vec!["--addr", "0.0.0.0:0"];
    args.extend(tls);
    let server = Server::start(&ws, &args, &[]);
    let log = server.log();
    assert_eq!(log.matches(OPEN).count(), 1, "{log}");
    assert!(log.contains("Add auth.htpasswd or pass --htpasswd."), "{log}");
    assert!(!log.contains("PLAIN HTTP") && !log.contains("readable by other users"), "{log}");
    // It is serving all the same; reach it through loopback only.
    let port = server.addr.rsplit_once(':').unwrap().1;
    assert!(server.url.starts_with("https://0.0.0.0:"), "{}", server.url);
    let (code, out, err) =
        curl(&ws, &["--cacert", "pki/ca.crt", &format!("https://127.0.0.1:{port}/v2/")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    drop(server);

    // --check says the same, without serving.
    let r = ws.regkit().args(["serve", "--check"]).args(&args).ok();
    r.stderr_has(OPEN);

    // With a password file, or on loopback, there is nothing to warn about.
    ws.regkit()
        .args(["htpasswd", "add", "htpasswd", "alice", "--password-stdin", "--cost", "4"])
        .stdin("pw-for-alice\n")
        .ok();
    let mut with_auth = args.clone();
    with_auth.extend(["--htpasswd", "htpasswd"]);
    let server = Server::start(&ws, &with_auth, &[]);
    assert!(!server.log().contains("warning:"), "{}", server.log());
    drop(server);
    let mut on_loopback = vec!["--addr", "127.0.0.1:0"];
    on_loopback.extend(tls);
    let server = Server::start(&ws, &on_loopback, &[]);
    assert!(!server.log().contains("warning:"), "{}", server.log());
}
