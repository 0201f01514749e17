//! `storage.maintenance.uploadpurging` through `regkit serve`: with a one-second age and a
//! short interval, an abandoned upload is removed; `dryrun: true` only logs it; `enabled:
//! false` never touches it. Uploads are started and probed with curl over plain HTTP on
//! loopback; every wait is bounded by the server's own log lines, never by a clock.

use std::time::{Duration, Instant};

use super::support::{Server, curl};
use crate::harness::{Workspace, require_tool};

/// Starts `regkit serve` with `uploadpurging` set to `purging` (a YAML flow mapping).
fn serve(ws: &Workspace, purging: &str) -> Server {
    std::fs::write(
        ws.join("config.yml"),
        format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: ./data}}\n  \
             maintenance:\n    uploadpurging: {purging}\nhttp: {{addr: 127.0.0.1:0}}\n"
        ),
    )
    .unwrap();
    Server::start(ws, &["--config", "config.yml"], &[])
}

/// Starts an upload of `repo` and returns its path and its directory in the storage root.
fn start_upload(ws: &Workspace, server: &Server, repo: &str) -> (String, std::path::PathBuf) {
    let (code, out, err) =
        curl(ws, &["-X", "POST", &format!("{}/v2/{repo}/blobs/uploads/", server.url)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    let id = header(&out, "docker-upload-uuid");
    let dir = ws.join(format!("data/docker/registry/v2/repositories/{repo}/_uploads/{id}"));
    assert!(dir.join("startedat").is_file(), "{}", dir.display());
    (header(&out, "location"), dir)
}

/// `GET` of the upload: its status line.
fn upload_status(ws: &Workspace, server: &Server, location: &str) -> String {
    let (_, out, _) = curl(ws, &[&format!("{}{location}", server.url)]);
    out.lines().next().unwrap_or_default().trim().to_string()
}

fn header(response: &str, name: &str) -> String {
    response
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn serve_purges_stale_uploads_on_its_interval() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let mut server = serve(&ws, "{enabled: true, age: 1s, interval: 200ms, dryrun: false}");
    server.wait_log("upload purging enabled", Duration::from_secs(5));
    let line =
        server.log().lines().find(|l| l.contains("upload purging enabled")).unwrap().to_string();
    assert!(line.contains("age=1s") && line.contains("interval=200ms"), "{line}");
    let (location, dir) = start_upload(&ws, &server, "purge/me");
    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
    let purged = server.wait_log(&format!("upload={id}"), Duration::from_secs(20));
    assert!(purged.contains("purged stale upload") && purged.contains("repo=purge/me"), "{purged}");
    assert!(!dir.exists(), "the purged upload is still on disk");
    assert_eq!(upload_status(&ws, &server, &location), "HTTP/1.1 404 Not Found");
}

#[test]
fn serve_dry_run_purge_logs_and_keeps_the_upload() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let mut server = serve(&ws, "{age: 1s, interval: 200ms, dryrun: true}");
    let (location, dir) = start_upload(&ws, &server, "dry/run");
    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
    let line = server.wait_log(&format!("upload={id}"), Duration::from_secs(20));
    assert!(line.contains("would purge stale upload") && line.contains("repo=dry/run"), "{line}");
    // Reported on a later pass too, and still there and usable.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.log().matches(&format!("upload={id}")).count() < 2 {
        assert!(Instant::now() < deadline, "reported once only:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.join("startedat").is_file(), "a dry run removed the upload");
    assert_eq!(upload_status(&ws, &server, &location), "HTTP/1.1 204 No Content");
    assert!(!server.log().contains("purged stale upload"), "{}", server.log());
}

#[test]
fn serve_with_purging_disabled_keeps_stale_uploads() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let mut server = serve(&ws, "{enabled: false, age: 1s, interval: 100ms}");
    server.wait_log("upload purging is disabled", Duration::from_secs(5));
    let (location, dir) = start_upload(&ws, &server, "kept/forever");
    // Long enough for the upload to be stale and for a dozen passes, had purging been on.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(dir.join("startedat").is_file(), "a disabled purge removed the upload");
    assert_eq!(upload_status(&ws, &server, &location), "HTTP/1.1 204 No Content");
    let log = server.log();
    assert!(!log.contains("purge stale upload") && !log.contains("purged"), "{log}");
}
