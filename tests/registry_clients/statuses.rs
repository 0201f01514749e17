//! The refusals of the API over real sockets: `regkit serve` with TLS from `regkit certs` and
//! a password file from `regkit htpasswd`, spoken to with curl as a logged-in user. Each bad
//! request gets the spec's status and error code, and the storage tree, files and folders,
//! is exactly what it was before it (the in-process tests in `registry_api` check the same
//! rules on the router; these check that the server delivers them).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Http, OCI_MANIFEST, Target, push_blob, secrets, sha256, start_upload, with_query};
use crate::harness::{Workspace, require_tool, snapshot_tree};

/// Writes `data` to `body-<name>` in the workspace and returns curl's `@file` for it.
fn body(ws: &Workspace, name: &str, data: &[u8]) -> String {
    let file = ws.join(format!("body-{name}"));
    std::fs::write(&file, data).unwrap();
    format!("@{}", file.display())
}

/// The keys that differ between two storage snapshots (for failure messages).
fn changed(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| a.get(k) != b.get(k)).collect()
}

/// Sends one request that must be refused with `status` and the spec `code` (checked unless
/// it is a HEAD, which has no body) and asserts that storage did not change.
fn refused(
    ws: &Workspace,
    t: &Target,
    what: &str,
    (status, code): (u16, &str),
    method: &str,
    path: &str,
    extra: &[&str],
) -> Http {
    let before = snapshot_tree(&t.root);
    let r = t.curl(ws, method, path, extra);
    r.expect(status, what);
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0", "{what}");
    if method != "HEAD" {
        assert_eq!(r.error_code(), code, "{what}: {r}");
        assert_eq!(r.header("content-type"), "application/json", "{what}: {r}");
    }
    let after = snapshot_tree(&t.root);
    assert!(
        before == after,
        "{what}: storage changed: {:?}\n{}",
        changed(&before, &after),
        t.log()
    );
    r
}

/// An OCI manifest whose config and layer are pushed to `repo` first.
fn image(ws: &Workspace, t: &Target, repo: &str, layer: &[u8]) -> (Vec<u8>, String) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(ws, t, repo, config);
    let l = push_blob(ws, t, repo, layer);
    (manifest(&c, config.len(), &l, layer.len(), json!({})), l)
}

fn manifest(config: &str, config_size: usize, layer: &str, size: usize, notes: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": size}],
        "annotations": notes,
    }))
    .unwrap()
}

const OCTETS: [&str; 2] = ["-H", "Content-Type: application/octet-stream"];
const AS_OCI: &str = "Content-Type: application/vnd.oci.image.manifest.v1+json";

#[test]
fn serve_refuses_bad_requests_with_the_spec_codes_and_changes_nothing() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let t = Target::start(&ws, &s, super::Kind::Regkit, "data");
    let (m, layer) = image(&ws, &t, "st/app", b"layer one");
    let m_body = body(&ws, "m.json", &m);
    t.curl(&ws, "PUT", "/v2/st/app/manifests/v1", &["-H", AS_OCI, "--data-binary", &m_body])
        .expect(201, "the seed manifest");
    // Requests with a body go over HTTP/1.1: over HTTP/2 a refusal sent before the body is read
    // races curl's upload (see auth.rs).
    let h1 = "--http1.1";

    // Chunks out of order (a gap, an overlap): 416 with where to resume; nothing appended.
    let upload = start_upload(&ws, &t, "st/app");
    let five = body(&ws, "five", b"01234");
    let chunk = |range: &str| {
        vec![
            "-H".to_string(),
            format!("Content-Range: {range}"),
            "--data-binary".into(),
            five.clone(),
        ]
    };
    let first = chunk("0-4");
    let first: Vec<&str> = first.iter().map(String::as_str).chain(OCTETS).chain([h1]).collect();
    t.curl(&ws, "PATCH", &upload, &first).expect(202, "the first chunk");
    for range in ["10-14", "3-7"] {
        let args = chunk(range);
        let args: Vec<&str> = args.iter().map(String::as_str).chain(OCTETS).chain([h1]).collect();
        let what = format!("PATCH with Content-Range {range}");
        let r = refused(&ws, &t, &what, (416, "BLOB_UPLOAD_INVALID"), "PATCH", &upload, &args);
        assert_eq!(r.header("range"), "0-4", "{r}");
        assert_eq!(r.header("location"), upload.split('?').next().unwrap(), "{r}");
    }
    let status = t.curl(&ws, "GET", &upload, &[]);
    assert_eq!(status.expect(204, "upload status").header("range"), "0-4");
    t.curl(&ws, "DELETE", &upload, &[]).expect(204, "cancelling");

    // A 5 MiB manifest: 413, over the 4 MiB limit.
    let big = manifest(&layer, 9, &layer, 9, json!({"pad": "x".repeat(5 << 20)}));
    let big = body(&ws, "big.json", &big);
    let r = refused(
        &ws,
        &t,
        "a 5 MiB manifest",
        (413, "SIZE_INVALID"),
        "PUT",
        "/v2/st/app/manifests/big",
        &["-H", AS_OCI, "--data-binary", &big, h1],
    );
    assert!(
        r.json()["errors"][0]["detail"].as_str().unwrap().contains("over the size limit"),
        "{r}"
    );

    // A manifest whose layer was never pushed.
    let missing = sha256(b"never pushed");
    let orphan = body(&ws, "orphan.json", &manifest(&layer, 9, &missing, 12, json!({})));
    let r = refused(
        &ws,
        &t,
        "a manifest referring to a missing blob",
        (400, "MANIFEST_BLOB_UNKNOWN"),
        "PUT",
        "/v2/st/app/manifests/orphan",
        &["-H", AS_OCI, "--data-binary", &orphan, h1],
    );
    assert!(r.json()["errors"][0]["detail"].as_str().unwrap().contains(&missing), "{r}");

    // Docker schema 1, and bytes that are not JSON.
    let schema1 = br#"{"schemaVersion":1,"name":"st/app","tag":"old","fsLayers":[],"history":[]}"#;
    let schema1 = body(&ws, "schema1.json", schema1);
    let v1 = "Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws";
    for (what, ct, data) in [("schema 1", v1, &schema1), ("schema 1 sent as OCI", AS_OCI, &schema1)]
    {
        let args = ["-H", ct, "--data-binary", data.as_str(), h1];
        let r = refused(
            &ws,
            &t,
            what,
            (400, "MANIFEST_INVALID"),
            "PUT",
            "/v2/st/app/manifests/old",
            &args,
        );
        assert!(r.json()["errors"][0]["detail"].as_str().unwrap().contains("schema 1"), "{r}");
    }
    let junk = body(&ws, "junk.json", b"{\"schemaVersion\": 2, not json");
    let args = ["-H", AS_OCI, "--data-binary", junk.as_str(), h1];
    refused(
        &ws,
        &t,
        "invalid JSON",
        (400, "MANIFEST_INVALID"),
        "PUT",
        "/v2/st/app/manifests/j",
        &args,
    );

    // The digest does not match the bytes: of a manifest, of a monolithic blob, of an upload.
    let wrong = sha256(b"something else");
    let args = ["-H", AS_OCI, "--data-binary", m_body.as_str(), h1];
    let path = format!("/v2/st/app/manifests/{wrong}");
    refused(
        &ws,
        &t,
        "manifest PUT by a wrong digest",
        (400, "DIGEST_INVALID"),
        "PUT",
        &path,
        &args,
    );
    let data = body(&ws, "data", b"the real bytes");
    let args: Vec<&str> = OCTETS.into_iter().chain(["--data-binary", &data, h1]).collect();
    let path = format!("/v2/st/app/blobs/uploads/?digest={wrong}");
    refused(
        &ws,
        &t,
        "monolithic POST, wrong digest",
        (400, "DIGEST_INVALID"),
        "POST",
        &path,
        &args,
    );
    let before = snapshot_tree(&t.root);
    let upload = start_upload(&ws, &t, "st/app");
    let put = t.curl(&ws, "PUT", &with_query(&upload, &format!("digest={wrong}")), &args);
    put.expect(400, "upload PUT, wrong digest");
    assert_eq!(put.error_code(), "DIGEST_INVALID", "{put}");
    let after = snapshot_tree(&t.root);
    assert!(before == after, "the failed upload left {:?}", changed(&before, &after));
    refused(
        &ws,
        &t,
        "no such blob",
        (404, "BLOB_UNKNOWN"),
        "HEAD",
        &format!("/v2/st/app/blobs/{wrong}"),
        &[],
    );

    // Hostile names, sent exactly as written (curl would otherwise resolve `..`).
    let long = "a".repeat(300);
    for name in ["..", "../etc", "st/../../x", "%2e%2e/x", "UPPER/case", "st/App", long.as_str()] {
        for (method, endpoint, extra) in [
            ("POST", "blobs/uploads/", vec![]),
            ("GET", "manifests/v1", vec![]),
            ("PUT", "manifests/v1", vec!["-H", AS_OCI, "--data-binary", m_body.as_str(), h1]),
            ("GET", "tags/list", vec![]),
        ] {
            let mut args = vec!["--path-as-is"];
            args.extend(extra);
            let what = format!("{method} /v2/{name}/{endpoint}");
            let path = format!("/v2/{name}/{endpoint}");
            refused(&ws, &t, &what, (400, "NAME_INVALID"), method, &path, &args);
        }
    }
    assert!(!t.root.join("docker/registry/v2/repositories/UPPER").exists());

    // A tag outside the grammar: a read finds nothing, a push is an invalid manifest push.
    let path = "/v2/st/app/manifests/.INVALID_MANIFEST_NAME";
    refused(&ws, &t, "GET of an invalid tag", (404, "MANIFEST_UNKNOWN"), "GET", path, &[]);
    refused(&ws, &t, "HEAD of an invalid tag", (404, ""), "HEAD", path, &[]);
    let args = ["-H", AS_OCI, "--data-binary", m_body.as_str(), h1];
    refused(&ws, &t, "PUT to an invalid tag", (400, "MANIFEST_INVALID"), "PUT", path, &args);
}

#[test]
fn serve_mounts_from_another_repository_or_falls_back_to_an_upload() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let t = Target::start(&ws, &s, super::Kind::Regkit, "data");
    let layer = push_blob(&ws, &t, "mnt/src", b"a layer to share");
    let repos = "docker/registry/v2/repositories";

    let mount =
        t.curl(&ws, "POST", &format!("/v2/mnt/dst/blobs/uploads/?mount={layer}&from=mnt/src"), &[]);
    mount.expect(201, "mount from a repository holding the blob");
    assert_eq!(mount.header("location"), format!("/v2/mnt/dst/blobs/{layer}"));
    assert_eq!(mount.header("docker-content-digest"), layer);
    let link = t.root.join(format!("{repos}/mnt/dst/_layers/sha256/{}/link", &layer[7..]));
    assert_eq!(std::fs::read_to_string(link).unwrap(), layer);
    let head = t.curl(&ws, "HEAD", &format!("/v2/mnt/dst/blobs/{layer}"), &[]);
    head.expect(200, "the mounted blob");

    // Not mountable (`from` lacks it, or nobody has it): 202 and an ordinary upload, and the
    // only change is that upload.
    let unknown = sha256(b"nobody has this");
    for (query, what) in [
        (format!("mount={layer}&from=mnt/empty"), "from a repository without the blob"),
        (format!("mount={unknown}&from=mnt/src"), "an unknown blob"),
        (format!("mount={unknown}"), "an unknown blob without from"),
    ] {
        let before = snapshot_tree(&t.root);
        let r = t.curl(&ws, "POST", &format!("/v2/mnt/other/blobs/uploads/?{query}"), &[]);
        r.expect(202, what);
        let id = r.header("docker-upload-uuid");
        assert_eq!(r.header("location"), format!("/v2/mnt/other/blobs/uploads/{id}"), "{what}");
        assert_eq!(r.header("range"), "0-0", "{what}");
        let after = snapshot_tree(&t.root);
        let upload = format!("{repos}/mnt/other/_uploads/{id}/");
        let stray: Vec<String> = changed(&before, &after)
            .into_iter()
            .filter(|k| !k.starts_with(&upload) && !upload.starts_with(k.as_str()))
            .collect();
        assert!(stray.is_empty(), "{what}: {stray:?}");
        t.curl(&ws, "HEAD", &format!("/v2/mnt/other/blobs/{layer}"), &[]).expect(404, what);
        t.curl(&ws, "DELETE", &r.header("location"), &[]).expect(204, "cancel the upload");
    }
    // A `from` that is no repository name.
    let path = format!("/v2/mnt/dst/blobs/uploads/?mount={layer}&from=..%2Fetc");
    refused(&ws, &t, "mount from a bad name", (400, "NAME_INVALID"), "POST", &path, &[]);
}

#[test]
fn serve_with_deletes_off_answers_405_unsupported() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let env = [("REGISTRY_STORAGE_DELETE_ENABLED", "false")];
    let t = Target::regkit(&ws, &s, "data", "127.0.0.1:0", &env);
    let (m, layer) = image(&ws, &t, "keep/app", b"kept layer");
    let m_body = body(&ws, "m.json", &m);
    t.curl(&ws, "PUT", "/v2/keep/app/manifests/v1", &["-H", AS_OCI, "--data-binary", &m_body])
        .expect(201, "the manifest");
    let digest = sha256(&m);
    for path in [
        format!("/v2/keep/app/blobs/{layer}"),
        format!("/v2/keep/app/manifests/{digest}"),
        "/v2/keep/app/manifests/v1".to_string(),
    ] {
        let what = format!("DELETE {path}");
        let r = refused(&ws, &t, &what, (405, "UNSUPPORTED"), "DELETE", &path, &[]);
        assert!(r.json()["errors"][0]["detail"].as_str().unwrap().contains("disabled"), "{r}");
        t.curl(&ws, "GET", &path, &[]).expect(200, "still there");
    }
}

#[test]
fn serve_answers_unknown_for_an_internal_error_and_logs_the_cause() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    // A file where the repositories folder belongs: every write fails inside storage.
    let v2 = ws.join("broken/docker/registry/v2");
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::write(v2.join("repositories"), "not a folder").unwrap();
    let mut t = Target::start(&ws, &s, super::Kind::Regkit, "broken");
    let r = refused(
        &ws,
        &t,
        "an upload storage cannot start",
        (500, "UNKNOWN"),
        "POST",
        "/v2/x/blobs/uploads/",
        &[],
    );
    assert_eq!(
        r.json(),
        json!({"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": null}]}),
        "{r}"
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("broken"), "{r}");
    let line = t.server().wait_log("registry request failed", std::time::Duration::from_secs(10));
    assert!(line.contains("repositories"), "the log names the cause: {line}");
}

#[test]
fn serve_failed_uploads_to_a_new_repository_leave_no_folders() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let t = Target::start(&ws, &s, super::Kind::Regkit, "data");
    push_blob(&ws, &t, "seed/repo", b"so that the root exists");
    let wrong = sha256(b"not these bytes");
    let data = body(&ws, "data", b"some bytes");
    let args: Vec<&str> = OCTETS.into_iter().chain(["--data-binary", &data, "--http1.1"]).collect();
    let path = format!("/v2/fresh/one/blobs/uploads/?digest={wrong}");
    refused(
        &ws,
        &t,
        "monolithic POST to a new repository, wrong digest",
        (400, "DIGEST_INVALID"),
        "POST",
        &path,
        &args,
    );
    let before = snapshot_tree(&t.root);
    let upload = start_upload(&ws, &t, "fresh/two");
    let put = t.curl(&ws, "PUT", &with_query(&upload, &format!("digest={wrong}")), &args);
    put.expect(400, "upload PUT to a new repository, wrong digest");
    let after = snapshot_tree(&t.root);
    assert!(before == after, "the failed upload left {:?}", changed(&before, &after));
}
