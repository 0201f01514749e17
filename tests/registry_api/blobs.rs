//! Blob and upload endpoints: every status code, header and bad-input case, and what ends
//! up on disk.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use regkit::registry::RegistryOptions;
use regkit::registry::auth::{AuthFuture, AuthOutcome, AuthenticatedUser, Authenticator};
use regkit::registry::storage::StorageOptions;

use super::{Reg, digest, send};

#[tokio::test]
async fn base_root_and_unknown_paths() {
    let reg = Reg::new();
    reg.get("/").await.expect(200);
    let r = reg.get("/v2/").await.expect(200);
    assert_eq!(r.json(), serde_json::json!({}));
    reg.get("/v2/a/nothing/here").await.expect(404);
    reg.get("/elsewhere").await.expect(404);
    reg.req("POST", "/v2/a/tags/list", &[], Body::empty()).await.error(405, "UNSUPPORTED");
}

struct Alice;
impl Authenticator for Alice {
    fn authenticate<'a>(&'a self, h: &'a HeaderMap) -> AuthFuture<'a> {
        Box::pin(std::future::ready(match h.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Basic YWxpY2U6cHc=") => AuthOutcome::Allowed { user: Some("alice".into()) },
            _ => AuthOutcome::Challenge,
        }))
    }
    fn realm(&self) -> &str {
        "test realm"
    }
}

#[tokio::test]
async fn every_v2_request_is_authenticated_and_the_user_recorded() {
    let reg = Reg::new();
    let mut state = reg.state.clone();
    state.auth = Arc::new(Alice);
    let d = digest(b"x");
    for (m, uri) in [
        ("GET", "/v2/".to_string()),
        ("GET", "/v2/_catalog".into()),
        ("GET", format!("/v2/a/blobs/{d}")),
        ("POST", "/v2/a/blobs/uploads/".into()),
        ("PUT", "/v2/a/manifests/v1".into()),
        ("GET", "/v2/a/tags/list".into()),
        ("GET", format!("/v2/a/referrers/{d}")),
    ] {
        let r = send(&state, m, &uri, &[], Body::empty()).await.error(401, "UNAUTHORIZED");
        assert_eq!(r.header("www-authenticate"), "Basic realm=\"test realm\"");
    }
    send(&state, "GET", "/", &[], Body::empty()).await.expect(200);
    let ok = send(&state, "GET", "/v2/", &[("authorization", "Basic YWxpY2U6cHc=")], Body::empty())
        .await
        .expect(200);
    assert_eq!(
        ok.extensions.get::<AuthenticatedUser>(),
        Some(&AuthenticatedUser(Some("alice".into())))
    );
    assert!(reg.snapshot().is_empty(), "a refused request wrote to storage");
}

#[tokio::test]
async fn monolithic_push_get_head_and_ranges() {
    let reg = Reg::new();
    let data: Vec<u8> = (0..100u8).collect();
    let d = digest(&data);
    let r = reg
        .req("POST", &format!("/v2/lib/app/blobs/uploads/?digest={d}"), &[], data.clone())
        .await
        .expect(201);
    assert_eq!(r.header("location"), format!("/v2/lib/app/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest"), d);
    // distribution's layout, exactly.
    let hex = &d[7..];
    let blob = reg.v2().join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
    assert_eq!(std::fs::read(blob).unwrap(), data);
    let link = reg.v2().join(format!("repositories/lib/app/_layers/sha256/{hex}/link"));
    assert_eq!(std::fs::read_to_string(link).unwrap(), d);
    // The finished upload leaves nothing behind but an empty `_uploads`, as with registry:2.
    assert_eq!(
        std::fs::read_dir(reg.v2().join("repositories/lib/app/_uploads")).unwrap().count(),
        0
    );

    let r = reg.get(&format!("/v2/lib/app/blobs/{d}")).await.expect(200);
    assert_eq!(r.body.as_ref(), data.as_slice());
    assert_eq!(r.header("content-length"), "100");
    assert_eq!(r.header("docker-content-digest"), d);
    let r =
        reg.req("HEAD", &format!("/v2/lib/app/blobs/{d}"), &[], Body::empty()).await.expect(200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), "100");
    let range = |v: &'static str| {
        let reg = &reg;
        let d = d.clone();
        async move {
            reg.req("GET", &format!("/v2/lib/app/blobs/{d}"), &[("range", v)], Body::empty()).await
        }
    };
    let r = range("bytes=10-19").await.expect(206);
    assert_eq!(r.body.as_ref(), &data[10..20]);
    assert_eq!(r.header("content-range"), "bytes 10-19/100");
    assert_eq!(r.header("content-length"), "10");
    assert_eq!(range("bytes=-5").await.expect(206).body.as_ref(), &data[95..]);
    assert_eq!(range("bytes=90-").await.expect(206).body.as_ref(), &data[90..]);
    let r = range("bytes=100-").await.expect(416);
    assert_eq!(r.header("content-range"), "bytes */100");
    // Not linked into another repository, and unknown digests: 404 BLOB_UNKNOWN.
    reg.get(&format!("/v2/other/blobs/{d}")).await.error(404, "BLOB_UNKNOWN");
    reg.get(&format!("/v2/lib/app/blobs/{}", digest(b"nope"))).await.error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn sha512_digests_are_accepted() {
    let reg = Reg::new();
    let data = b"sha512 content";
    let d = regkit::registry::api::names::Algorithm::Sha512.digest_of(data).to_string();
    assert!(d.starts_with("sha512:"));
    reg.req("POST", &format!("/v2/x/blobs/uploads/?digest={d}"), &[], data.to_vec())
        .await
        .expect(201);
    let r = reg.get(&format!("/v2/x/blobs/{d}")).await.expect(200);
    assert_eq!(r.body.as_ref(), data);
    assert!(reg.v2().join(format!("blobs/sha512/{}/{}/data", &d[7..9], &d[7..])).exists());
    let wrong = regkit::registry::api::names::Algorithm::Sha512.digest_of(b"other").to_string();
    reg.req("POST", &format!("/v2/x/blobs/uploads/?digest={wrong}"), &[], data.to_vec())
        .await
        .error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn bad_digests_and_names_change_nothing() {
    let reg = Reg::new();
    reg.push_blob("a", b"seed").await;
    let before = reg.snapshot();
    let wrong = digest(b"something else");
    reg.req("POST", &format!("/v2/a/blobs/uploads/?digest={wrong}"), &[], "data")
        .await
        .error(400, "DIGEST_INVALID");
    for bad in [
        "sha256:xyz",
        "md5:abc",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    ] {
        reg.req("POST", &format!("/v2/a/blobs/uploads/?digest={bad}"), &[], "data")
            .await
            .error(400, "DIGEST_INVALID");
        reg.get(&format!("/v2/a/blobs/{bad}")).await.error(400, "DIGEST_INVALID");
    }
    let long = "a".repeat(300);
    for name in ["../x", "a/../../b", "UPPER", "a//b", "-a", long.as_str()] {
        let r = reg.req("POST", &format!("/v2/{name}/blobs/uploads/"), &[], Body::empty()).await;
        r.error(400, "NAME_INVALID");
        reg.get(&format!("/v2/{name}/manifests/latest")).await.error(400, "NAME_INVALID");
    }
    // Body shorter and longer than Content-Length.
    let d = digest(b"0123456789");
    reg.req(
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={d}"),
        &[("content-length", "10")],
        "01234",
    )
    .await
    .error(400, "SIZE_INVALID");
    reg.req(
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={d}"),
        &[("content-length", "10")],
        "0123456789abc",
    )
    .await
    .error(400, "SIZE_INVALID");
    assert_eq!(reg.snapshot(), before, "storage changed after refused requests");
    assert!(!reg.root().join("docker/registry/v2/repositories/UPPER").exists());
}

#[tokio::test]
async fn chunked_and_streamed_upload_with_resume_rules() {
    let reg = Reg::with(RegistryOptions { chunk_min_length: Some(1024), ..Default::default() });
    let r = reg.req("POST", "/v2/c/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let loc = r.header("location").to_string();
    let id = r.header("docker-upload-uuid").to_string();
    assert_eq!(loc, format!("/v2/c/blobs/uploads/{id}"));
    assert_eq!(r.header("range"), "0-0");
    assert_eq!(r.header("oci-chunk-min-length"), "1024");
    let r = reg
        .req("PATCH", &loc, &[("content-range", "0-4"), ("content-length", "5")], "hello")
        .await
        .expect(202);
    assert_eq!(r.header("range"), "0-4");
    assert_eq!(r.header("location"), loc);
    // Out of order (gap) and overlapping chunks: 416 with the current range.
    for cr in ["10-14", "3-7"] {
        let r = reg.req("PATCH", &loc, &[("content-range", cr)], "xxxxx").await;
        let r = r.error(416, "BLOB_UPLOAD_INVALID");
        assert_eq!(r.header("range"), "0-4");
        assert_eq!(r.header("location"), loc);
    }
    // Body shorter / longer than announced: refused, upload unchanged.
    reg.req("PATCH", &loc, &[("content-range", "5-9")], "abc").await.error(400, "SIZE_INVALID");
    reg.req("PATCH", &loc, &[("content-length", "2")], "abc").await.error(400, "SIZE_INVALID");
    reg.req("PATCH", &loc, &[("content-range", "5-9"), ("content-length", "4")], "abcde")
        .await
        .error(400, "SIZE_INVALID");
    let r = reg.get(&loc).await.expect(204);
    assert_eq!(r.header("range"), "0-4");
    assert_eq!(r.header("docker-upload-uuid"), id);
    // A streamed PATCH (no Content-Range), then the last bytes with the PUT.
    reg.req("PATCH", &loc, &[], ", wor").await.expect(202);
    let d = digest(b"hello, world");
    let r = reg.req("PUT", &format!("{loc}?digest={d}"), &[("content-length", "2")], "ld").await;
    r.expect(201);
    let r = reg.get(&format!("/v2/c/blobs/{d}")).await.expect(200);
    assert_eq!(r.body.as_ref(), b"hello, world");
    reg.get(&loc).await.error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn wrong_digest_on_put_cancel_and_unknown_uploads() {
    let reg = Reg::new();
    let before = reg.snapshot();
    let loc = reg.req("POST", "/v2/w/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let loc = loc.header("location").to_string();
    reg.req("PATCH", &loc, &[], "content").await.expect(202);
    let wrong = digest(b"other");
    reg.req("PUT", &format!("{loc}?digest={wrong}"), &[], Body::empty())
        .await
        .error(400, "DIGEST_INVALID");
    reg.req("PUT", &format!("{loc}?digest={}", digest(b"content")), &[], Body::empty())
        .await
        .error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&format!("/v2/w/blobs/{wrong}")).await.error(404, "BLOB_UNKNOWN");
    // PUT without ?digest=.
    let loc = reg.req("POST", "/v2/w/blobs/uploads/", &[], Body::empty()).await;
    let loc = loc.header("location").to_string();
    reg.req("PUT", &loc, &[], Body::empty()).await.error(400, "DIGEST_INVALID");
    reg.req("DELETE", &loc, &[], Body::empty()).await.expect(204);
    reg.req("DELETE", &loc, &[], Body::empty()).await.error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get("/v2/w/blobs/uploads/not-an-id").await.error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get("/v2/w/blobs/uploads/../../x").await.expect(404);
    let after: Vec<_> = reg.snapshot().into_keys().collect();
    assert_eq!(after, before.into_keys().collect::<Vec<_>>(), "leftover files");
}

#[tokio::test]
async fn upload_resumes_after_restart_by_rehashing() {
    let reg = Reg::new();
    let r = reg.req("POST", "/v2/r/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let loc = r.header("location").to_string();
    reg.req("PATCH", &loc, &[("content-range", "0-2")], "abc").await.expect(202);
    // A crash here leaves the partial upload and no blob at all.
    let state = reg.restarted(RegistryOptions::default());
    assert!(!reg.v2().join("blobs").exists(), "partial data became visible");
    let r = send(&state, "PATCH", &loc, &[("content-range", "3-5")], "def").await.expect(202);
    assert_eq!(r.header("range"), "0-5");
    let d = digest(b"abcdef");
    let blob = reg.v2().join(format!("blobs/sha256/{}/{}/data", &d[7..9], &d[7..]));
    assert!(!blob.exists(), "blob visible before its digest was checked");
    send(&state, "PUT", &format!("{loc}?digest={d}"), &[], Body::empty()).await.expect(201);
    assert_eq!(
        send(&state, "GET", &format!("/v2/r/blobs/{d}"), &[], Body::empty()).await.body.as_ref(),
        b"abcdef"
    );
}

#[tokio::test]
async fn fsync_off_keeps_the_same_results() {
    let reg =
        Reg::with_storage(|s| StorageOptions { fsync: false, ..s }, RegistryOptions::default());
    let m = reg.image("nf", b"layer").await;
    reg.put_manifest("nf", "v1", super::OCI_MANIFEST, &m).await.expect(201);
    assert_eq!(reg.get("/v2/nf/manifests/v1").await.expect(200).body.as_ref(), m.as_slice());
    let r = reg.req("POST", "/v2/nf/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let loc = r.header("location").to_string();
    reg.req("PATCH", &loc, &[], "chunk").await.expect(202);
    reg.req("PUT", &format!("{loc}?digest={}", digest(b"chunk")), &[], Body::empty())
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_blob_are_safe() {
    let reg = Reg::new();
    let data = vec![7u8; 300_000];
    let d = digest(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let state = reg.state.clone();
        let data = data.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let uri = format!("/v2/p{}/blobs/uploads/?digest={d}", i % 2);
            send(&state, "POST", &uri, &[], data).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    for repo in ["p0", "p1"] {
        assert_eq!(reg.get(&format!("/v2/{repo}/blobs/{d}")).await.expect(200).body.len(), 300_000);
    }
    // No upload session is left (the `_uploads/` folder itself may stay, as with registry:2).
    let sessions: Vec<String> = reg
        .snapshot()
        .into_keys()
        .filter(|k| k.split_once("_uploads/").is_some_and(|(_, rest)| !rest.is_empty()))
        .collect();
    assert!(sessions.is_empty(), "{sessions:?}");
}

#[tokio::test]
async fn cross_repository_mount() {
    let reg = Reg::new();
    let d = reg.push_blob("src", b"layer").await;
    let r = reg
        .req("POST", &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"), &[], Body::empty())
        .await;
    assert_eq!(r.expect(201).header("location"), format!("/v2/dst/blobs/{d}"));
    reg.get(&format!("/v2/dst/blobs/{d}")).await.expect(200);
    // `from` does not hold it: a normal upload starts.
    let r = reg
        .req("POST", &format!("/v2/d2/blobs/uploads/?mount={d}&from=empty"), &[], Body::empty())
        .await;
    assert!(r.expect(202).header("location").starts_with("/v2/d2/blobs/uploads/"));
    // Without `from`, a blob the registry holds is mounted; an unknown one is not.
    reg.req("POST", &format!("/v2/d3/blobs/uploads/?mount={d}"), &[], Body::empty())
        .await
        .expect(201);
    let unknown = digest(b"unknown");
    reg.req("POST", &format!("/v2/d4/blobs/uploads/?mount={unknown}"), &[], Body::empty())
        .await
        .expect(202);
    reg.req("POST", &format!("/v2/d4/blobs/uploads/?mount={d}&from=BAD"), &[], Body::empty())
        .await
        .error(400, "NAME_INVALID");
}

#[tokio::test]
async fn blob_delete_needs_delete_enabled() {
    let off = Reg::with(RegistryOptions::default());
    let d = off.push_blob("x", b"b").await;
    off.req("DELETE", &format!("/v2/x/blobs/{d}"), &[], Body::empty())
        .await
        .error(405, "UNSUPPORTED");
    off.get(&format!("/v2/x/blobs/{d}")).await.expect(200);
    let on = Reg::new();
    let d = on.push_blob("x", b"b").await;
    on.req("DELETE", &format!("/v2/x/blobs/{d}"), &[], Body::empty()).await.expect(202);
    on.get(&format!("/v2/x/blobs/{d}")).await.error(404, "BLOB_UNKNOWN");
    on.req("DELETE", &format!("/v2/x/blobs/{d}"), &[], Body::empty())
        .await
        .error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn stale_uploads_are_purged() {
    let reg = Reg::new();
    let r = reg.req("POST", "/v2/s/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let loc = r.header("location").to_string();
    let storage = reg.state.storage.clone();
    assert!(storage.purge_uploads(Duration::from_secs(3600), false).await.unwrap().is_empty());
    let found = storage.purge_uploads(Duration::ZERO, true).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].repo.as_str(), "s");
    reg.get(&loc).await.expect(204);
    storage.purge_uploads(Duration::ZERO, false).await.unwrap();
    reg.get(&loc).await.error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn internal_errors_answer_unknown_without_leaking_the_cause() {
    let reg = Reg::new();
    // A file where the repositories folder belongs: every write fails inside storage.
    std::fs::create_dir_all(reg.v2()).unwrap();
    std::fs::write(reg.v2().join("repositories"), "not a folder").unwrap();
    let r = reg.req("POST", "/v2/broken/blobs/uploads/", &[], Body::empty()).await;
    let r = r.error(500, "UNKNOWN");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(
        r.json(),
        serde_json::json!({"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": null}]})
    );
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(!body.contains(reg.root().to_str().unwrap()), "{body}");
    // The cause is kept for the log, and only there.
    let cause = r.extensions.get::<regkit::registry::api::error::InternalError>().unwrap();
    assert!(cause.0.contains("repositories"), "{}", cause.0);
}

#[tokio::test]
async fn locations_are_absolute_with_an_external_url() {
    let base = "https://reg.example.com:5000";
    let reg = Reg::with(RegistryOptions {
        location_base: Some(base.into()),
        delete_enabled: true,
        ..Default::default()
    });
    let r = reg.req("POST", "/v2/abs/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let id = r.header("docker-upload-uuid").to_string();
    let path = format!("/v2/abs/blobs/uploads/{id}");
    assert_eq!(r.header("location"), format!("{base}{path}"));
    let r = reg.req("PATCH", &path, &[("content-range", "0-2")], "abc").await.expect(202);
    assert_eq!(r.header("location"), format!("{base}{path}"));
    let r = reg.req("PATCH", &path, &[("content-range", "9-11")], "def").await;
    assert_eq!(r.error(416, "BLOB_UPLOAD_INVALID").header("location"), format!("{base}{path}"));
    assert_eq!(reg.get(&path).await.expect(204).header("location"), format!("{base}{path}"));
    let d = digest(b"abc");
    let r = reg.req("PUT", &format!("{path}?digest={d}"), &[], Body::empty()).await.expect(201);
    assert_eq!(r.header("location"), format!("{base}/v2/abs/blobs/{d}"));
    let r = reg
        .req("POST", &format!("/v2/other/blobs/uploads/?mount={d}&from=abs"), &[], Body::empty())
        .await
        .expect(201);
    assert_eq!(r.header("location"), format!("{base}/v2/other/blobs/{d}"));
    let m = reg.image("abs", b"layer").await;
    let r = reg.put_manifest("abs", "v1", super::OCI_MANIFEST, &m).await.expect(201);
    assert_eq!(r.header("location"), format!("{base}/v2/abs/manifests/{}", digest(&m)));
}
