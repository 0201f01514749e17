//! Manifest endpoints: push/pull of every accepted media type, validation errors (each
//! leaving storage unchanged), size limits, deletes and Accept handling.

use axum::body::Body;
use regkit::registry::RegistryOptions;
use serde_json::json;

use super::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Reg, digest};

#[tokio::test]
async fn oci_manifest_push_pull_by_tag_and_digest() {
    let reg = Reg::new();
    let m = reg.image("lib/app", b"layer-1").await;
    let d = digest(&m);
    let r = reg.put_manifest("lib/app", "v1", OCI_MANIFEST, &m).await.expect(201);
    assert_eq!(r.header("location"), format!("/v2/lib/app/manifests/{d}"));
    assert_eq!(r.header("docker-content-digest"), d);
    for reference in ["v1", d.as_str()] {
        let r = reg.get(&format!("/v2/lib/app/manifests/{reference}")).await.expect(200);
        assert_eq!(r.body.as_ref(), m.as_slice(), "exact bytes");
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), d);
        let uri = format!("/v2/lib/app/manifests/{reference}");
        let h = reg.req("HEAD", &uri, &[], Body::empty()).await.expect(200);
        assert!(h.body.is_empty());
        assert_eq!(h.header("content-length"), m.len().to_string());
        assert_eq!(h.header("docker-content-digest"), d);
    }
    // A Docker client asking only for schema 2 still gets the stored OCI manifest.
    let r = reg
        .req("GET", "/v2/lib/app/manifests/v1", &[("accept", DOCKER_MANIFEST)], Body::empty())
        .await
        .expect(200);
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
    // distribution's layout for revisions and tags.
    let repo = reg.v2().join("repositories/lib/app/_manifests");
    let hex = &d[7..];
    assert_eq!(
        std::fs::read_to_string(repo.join(format!("revisions/sha256/{hex}/link"))).unwrap(),
        d
    );
    assert_eq!(std::fs::read_to_string(repo.join("tags/v1/current/link")).unwrap(), d);
    assert!(repo.join(format!("tags/v1/index/sha256/{hex}/link")).exists());
    // PUT by digest (with the newer ?tag=) works too.
    let r = reg.put_manifest("lib/app", &format!("{d}?tag=v2&tag=v3"), OCI_MANIFEST, &m).await;
    r.expect(201);
    let tags = reg.get("/v2/lib/app/tags/list").await.expect(200).json();
    assert_eq!(tags["tags"], json!(["v1", "v2", "v3"]));
    reg.get("/v2/lib/app/manifests/nope").await.error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/unknown/manifests/v1").await.error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/lib/app/manifests/{}", digest(b"x")))
        .await
        .error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn invalid_manifests_are_refused_and_change_nothing() {
    let reg = Reg::new();
    let m = reg.image("v", b"layer").await;
    let other = reg.image("other", b"layer-x").await;
    let before = reg.snapshot();
    let check = |r: super::Resp, status: u16, code: &str, detail: &str| {
        let r = r.error(status, code);
        assert!(r.detail().contains(detail), "detail {:?} lacks {detail:?}", r.detail());
    };
    check(
        reg.put_manifest("v", "t", OCI_MANIFEST, b"{not json").await,
        400,
        "MANIFEST_INVALID",
        "JSON",
    );
    check(
        reg.put_manifest("v", "t", OCI_INDEX, &m).await,
        400,
        "MANIFEST_INVALID",
        "does not match",
    );
    check(
        reg.put_manifest("v", "t", DOCKER_MANIFEST, &m).await,
        400,
        "MANIFEST_INVALID",
        "does not match",
    );
    let schema1 =
        br#"{"schemaVersion":1,"name":"v","tag":"t","fsLayers":[],"history":[],"signatures":[]}"#;
    let s1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    check(reg.put_manifest("v", "t", s1, schema1).await, 400, "MANIFEST_INVALID", "schema 1");
    check(
        reg.put_manifest("v", "t", OCI_MANIFEST, schema1).await,
        400,
        "MANIFEST_INVALID",
        "schema 1",
    );
    // Digest reference that does not match the body.
    let wrong = digest(b"other");
    check(reg.put_manifest("v", &wrong, OCI_MANIFEST, &m).await, 400, "DIGEST_INVALID", "not");
    check(reg.put_manifest("v", "sha256:bad", OCI_MANIFEST, &m).await, 400, "DIGEST_INVALID", "");
    // Referenced blobs must be in this repository.
    check(
        reg.put_manifest("v", "t", OCI_MANIFEST, &other).await,
        400,
        "MANIFEST_BLOB_UNKNOWN",
        "sha256:",
    );
    // An index whose child manifest is missing.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest(&m), "size": m.len()}]});
    let index = serde_json::to_vec(&index).unwrap();
    check(
        reg.put_manifest("v", "t", OCI_INDEX, &index).await,
        400,
        "MANIFEST_BLOB_UNKNOWN",
        "manifest",
    );
    // A tag that breaks the grammar: pushing to it is an invalid manifest push (the spec has
    // no TAG_INVALID), reading it finds no manifest (the conformance suite's
    // `.INVALID_MANIFEST_NAME` expects 404).
    let r = reg.put_manifest("v", ".bad", OCI_MANIFEST, &m).await.error(400, "MANIFEST_INVALID");
    assert!(r.detail().contains("invalid tag \".bad\""), "{}", r.detail());
    let by_digest = format!("{}?tag=ok&tag=-bad", digest(&m));
    reg.put_manifest("v", &by_digest, OCI_MANIFEST, &m).await.error(400, "MANIFEST_INVALID");
    for method in ["GET", "DELETE"] {
        let r = reg.req(method, "/v2/v/manifests/.INVALID_MANIFEST_NAME", &[], Body::empty()).await;
        r.error(404, "MANIFEST_UNKNOWN");
    }
    reg.req("HEAD", "/v2/v/manifests/.INVALID_MANIFEST_NAME", &[], Body::empty()).await.expect(404);
    assert_eq!(reg.snapshot(), before, "a refused push changed storage");
}

#[tokio::test]
async fn size_limit_accepts_4mib_and_refuses_above_with_413() {
    let reg = Reg::new();
    let m = reg.image("big", b"l").await;
    let mut doc: serde_json::Value = serde_json::from_slice(&m).unwrap();
    let base = m.len() + r#","annotations":{"pad":""}"#.len();
    doc["annotations"] = json!({"pad": "x".repeat(4 * 1024 * 1024 - base)});
    let four = serde_json::to_vec(&doc).unwrap();
    assert_eq!(four.len(), 4 * 1024 * 1024);
    reg.put_manifest("big", "four", OCI_MANIFEST, &four).await.expect(201);
    let before = reg.snapshot();
    doc["annotations"] = json!({"pad": "x".repeat(5 * 1024 * 1024)});
    let five = serde_json::to_vec(&doc).unwrap();
    // Streamed without a length: refused once the limit is passed.
    let r = reg
        .req(
            "PUT",
            "/v2/big/manifests/five",
            &[("content-type", OCI_MANIFEST)],
            Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(five.clone())])),
        )
        .await
        .error(413, "SIZE_INVALID");
    let limit = 4 * 1024 * 1024;
    assert_eq!(
        r.detail(),
        format!("manifest is over the size limit: more than {limit} bytes, limit {limit} bytes")
    );
    // Announced by Content-Length: refused before reading.
    let len = five.len().to_string();
    let r = reg
        .req(
            "PUT",
            "/v2/big/manifests/five",
            &[("content-type", OCI_MANIFEST), ("content-length", &len)],
            five,
        )
        .await
        .error(413, "SIZE_INVALID");
    assert_eq!(
        r.detail(),
        format!("manifest is over the size limit: {len} bytes, limit {limit} bytes")
    );
    assert_eq!(reg.snapshot(), before);
    // A limit set higher accepts it.
    let roomy = Reg::with(RegistryOptions { manifest_max_bytes: 8 << 20, ..Default::default() });
    let m = roomy.image("big", b"l").await;
    let mut doc: serde_json::Value = serde_json::from_slice(&m).unwrap();
    doc["annotations"] = json!({"pad": "x".repeat(5 * 1024 * 1024)});
    roomy
        .put_manifest("big", "five", OCI_MANIFEST, &serde_json::to_vec(&doc).unwrap())
        .await
        .expect(201);
}

#[tokio::test]
async fn docker_schema2_and_manifest_lists() {
    let reg = Reg::new();
    let oci = reg.image("multi", b"amd64").await;
    let mut doc: serde_json::Value = serde_json::from_slice(&oci).unwrap();
    doc["mediaType"] = json!(DOCKER_MANIFEST);
    doc["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
    doc["layers"][0]["mediaType"] = json!("application/vnd.docker.image.rootfs.diff.tar.gzip");
    let m = serde_json::to_vec(&doc).unwrap();
    let list = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest(&m), "size": m.len(),
         "platform": {"architecture": "amd64", "os": "linux"}}]});
    let list = serde_json::to_vec(&list).unwrap();
    reg.put_manifest("multi", "latest", DOCKER_LIST, &list)
        .await
        .error(400, "MANIFEST_BLOB_UNKNOWN");
    reg.put_manifest("multi", &digest(&m), DOCKER_MANIFEST, &m).await.expect(201);
    reg.put_manifest("multi", "latest", DOCKER_LIST, &list).await.expect(201);
    let r = reg.get("/v2/multi/manifests/latest").await.expect(200);
    assert_eq!(r.header("content-type"), DOCKER_LIST);
    assert_eq!(r.body.as_ref(), list.as_slice());
    let r = reg.get(&format!("/v2/multi/manifests/{}", digest(&m))).await.expect(200);
    assert_eq!(r.header("content-type"), DOCKER_MANIFEST);
    // An OCI manifest without mediaType takes its type from Content-Type.
    let mut bare: serde_json::Value = serde_json::from_slice(&oci).unwrap();
    bare.as_object_mut().unwrap().remove("mediaType");
    let bare = serde_json::to_vec(&bare).unwrap();
    reg.put_manifest("multi", "bare", OCI_MANIFEST, &bare).await.expect(201);
    let r = reg.get("/v2/multi/manifests/bare").await.expect(200);
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
    reg.put_manifest("multi", "bare2", DOCKER_MANIFEST, &bare).await.error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn delete_by_tag_untags_and_by_digest_removes() {
    let off = Reg::with(RegistryOptions::default());
    let m = off.image("d", b"l").await;
    off.put_manifest("d", "v1", OCI_MANIFEST, &m).await.expect(201);
    off.req("DELETE", "/v2/d/manifests/v1", &[], Body::empty()).await.error(405, "UNSUPPORTED");
    off.get("/v2/d/manifests/v1").await.expect(200);

    let reg = Reg::new();
    let m = reg.image("d", b"l").await;
    let d = digest(&m);
    reg.put_manifest("d", "v1", OCI_MANIFEST, &m).await.expect(201);
    reg.put_manifest("d", "v2", OCI_MANIFEST, &m).await.expect(201);
    reg.req("DELETE", "/v2/d/manifests/v1", &[], Body::empty()).await.expect(202);
    reg.get("/v2/d/manifests/v1").await.error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/d/manifests/{d}")).await.expect(200);
    assert_eq!(reg.get("/v2/d/tags/list").await.json()["tags"], json!(["v2"]));
    reg.req("DELETE", "/v2/d/manifests/v1", &[], Body::empty())
        .await
        .error(404, "MANIFEST_UNKNOWN");
    reg.req("DELETE", &format!("/v2/d/manifests/{d}"), &[], Body::empty()).await.expect(202);
    reg.get(&format!("/v2/d/manifests/{d}")).await.error(404, "MANIFEST_UNKNOWN");
    reg.get("/v2/d/manifests/v2").await.error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.get("/v2/d/tags/list").await.json()["tags"], json!([]));
    reg.req("DELETE", &format!("/v2/d/manifests/{d}"), &[], Body::empty())
        .await
        .error(404, "MANIFEST_UNKNOWN");
}
