//! Missing, wrong and unknown-user credentials on every endpoint family (base, blobs, uploads,
//! manifests, tags, catalog, referrers) over TLS: each answer is 401 `UNAUTHORIZED` with the
//! `WWW-Authenticate: Basic realm="..."` challenge, and the storage root (files and
//! directories) is byte-for-byte what it was before.

use super::{Kind, OCI_MANIFEST, PASSWORD, REALM, Target, USER, start_upload, with_query};
use crate::harness::{Workspace, snapshot_tree};

/// `manifest` is the digest of an OCI manifest stored in `repo` (so each request would
/// succeed, or change something, with the right credentials).
pub fn every_endpoint_family_refuses_bad_credentials(
    ws: &Workspace,
    t: &Target,
    repo: &str,
    manifest: &str,
) {
    // An upload in progress that the bad requests try to write to, read and cancel.
    let upload = start_upload(ws, t, repo);
    let body = ws.join("auth-body");
    std::fs::write(&body, b"{\"schemaVersion\":2}").unwrap();
    let data = format!("@{}", body.display());
    let content_type = format!("Content-Type: {OCI_MANIFEST}");
    let v2 = |p: &str| format!("/v2/{repo}/{p}");
    let mut requests: Vec<(&str, &str, String, Vec<&str>)> = vec![
        ("base", "GET", "/v2/".into(), vec![]),
        ("blobs", "GET", v2(&format!("blobs/{manifest}")), vec![]),
        ("blobs", "HEAD", v2(&format!("blobs/{manifest}")), vec![]),
        ("blobs", "DELETE", v2(&format!("blobs/{manifest}")), vec![]),
        ("uploads", "POST", v2("blobs/uploads/"), vec![]),
        ("uploads", "POST", v2(&format!("blobs/uploads/?mount={manifest}&from={repo}")), vec![]),
        ("uploads", "GET", upload.clone(), vec![]),
        ("uploads", "PATCH", upload.clone(), vec!["--data-binary", &data]),
        (
            "uploads",
            "PUT",
            with_query(&upload, &format!("digest={manifest}")),
            vec!["--data-binary", &data],
        ),
        ("uploads", "DELETE", upload.clone(), vec![]),
        ("manifests", "GET", v2("manifests/v1"), vec![]),
        ("manifests", "HEAD", v2(&format!("manifests/{manifest}")), vec![]),
        (
            "manifests",
            "PUT",
            v2("manifests/intruder"),
            vec!["-H", &content_type, "--data-binary", &data],
        ),
        ("manifests", "DELETE", v2(&format!("manifests/{manifest}")), vec![]),
        ("tags", "GET", v2("tags/list"), vec![]),
        ("catalog", "GET", "/v2/_catalog".into(), vec![]),
    ];
    let referrers = v2(&format!("referrers/{manifest}"));
    match t.kind {
        Kind::Regkit => requests.push(("referrers", "GET", referrers, vec![])),
        // Distribution 2.8 has no referrers route at all: 404 before auth (see referrers.rs).
        Kind::Reference => {
            t.curl_as(ws, None, "GET", &referrers, &[]).expect(404, "distribution 2.8 referrers");
        }
    }
    let before = snapshot_tree(&t.root);
    let challenge = format!("basic realm=\"{}\"", REALM.to_ascii_lowercase());
    let wrong = format!("{USER}:x{PASSWORD}");
    let stranger = format!("mallory:{PASSWORD}");
    for user in [None, Some(wrong.as_str()), Some(stranger.as_str())] {
        for (family, method, path, extra) in &requests {
            let what = format!("{family}: {method} {path} as {user:?}");
            // Requests with a body go over HTTP/1.1. Over HTTP/2 both servers answer 401
            // before reading the body and then end the stream with HEADERS, DATA and
            // RST_STREAM(NO_ERROR), in that order (RFC 9113 section 8.1; checked frame by
            // frame), and Debian 12's curl 7.88.1 then reports error 92 instead of the
            // response when the reset arrives before it has sent its body (a timing race that
            // regkit, being quicker to answer, loses more often than distribution).
            let mut extra = extra.clone();
            if extra.contains(&"--data-binary") {
                extra.push("--http1.1");
            }
            let r = t.curl_as(ws, user, method, path, &extra);
            r.expect(401, &what);
            assert_eq!(r.header("www-authenticate").to_ascii_lowercase(), challenge, "{what}: {r}");
            assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0", "{what}");
            if *method != "HEAD" {
                assert_eq!(r.error_code(), "UNAUTHORIZED", "{what}: {r}");
            }
        }
    }
    assert!(before == snapshot_tree(&t.root), "a refused request changed the storage");
    // The upload the intruders tried to cancel is still there for its owner.
    let status = t.curl(ws, "GET", &upload, &[]);
    status.expect(204, "the upload survives the refused requests");
    t.curl(ws, "DELETE", &upload, &[]).expect(204, "the owner cancels the upload");
}
