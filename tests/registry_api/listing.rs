//! Tag listing, the catalog and the referrers API: order, pagination, `Link` headers,
//! filters and their error cases.

use axum::body::Body;
use serde_json::json;

use super::{OCI_INDEX, OCI_MANIFEST, Reg, digest};

#[tokio::test]
async fn tags_are_sorted_and_paginated() {
    let reg = Reg::new();
    let m = reg.image("t", b"l").await;
    for tag in ["b", "a", "c", "B", "1.0"] {
        reg.put_manifest("t", tag, OCI_MANIFEST, &m).await.expect(201);
    }
    let r = reg.get("/v2/t/tags/list").await.expect(200);
    assert_eq!(r.json(), json!({"name": "t", "tags": ["1.0", "B", "a", "b", "c"]}));
    assert_eq!(r.header("link"), "");
    let r = reg.get("/v2/t/tags/list?n=2").await.expect(200);
    assert_eq!(r.json()["tags"], json!(["1.0", "B"]));
    assert_eq!(r.header("link"), "</v2/t/tags/list?last=B&n=2>; rel=\"next\"");
    let r = reg.get("/v2/t/tags/list?n=2&last=B").await.expect(200);
    assert_eq!(r.json()["tags"], json!(["a", "b"]));
    let r = reg.get("/v2/t/tags/list?n=2&last=b").await.expect(200);
    assert_eq!(r.json()["tags"], json!(["c"]));
    assert_eq!(r.header("link"), "");
    assert_eq!(reg.get("/v2/t/tags/list?n=0").await.expect(200).json()["tags"], json!([]));
    reg.get("/v2/t/tags/list?n=x").await.error(400, "SIZE_INVALID");
    reg.get("/v2/nope/tags/list").await.error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_is_sorted_and_paginated() {
    let reg = Reg::new();
    let m = reg.image("seed", b"l").await;
    assert_eq!(reg.get("/v2/_catalog").await.expect(200).json(), json!({"repositories": []}));
    for repo in ["b/x", "a", "a/b", "a-c", "c"] {
        reg.push_blob(repo, b"{\"architecture\":\"amd64\",\"os\":\"linux\"}").await;
        reg.push_blob(repo, b"l").await;
        reg.put_manifest(repo, "v1", OCI_MANIFEST, &m).await.expect(201);
    }
    // A repository with only an upload in progress is not listed.
    reg.req("POST", "/v2/pending/blobs/uploads/", &[], Body::empty()).await.expect(202);
    let all = reg.get("/v2/_catalog").await.expect(200).json();
    assert_eq!(all["repositories"], json!(["a", "a/b", "a-c", "b/x", "c"]));
    let r = reg.get("/v2/_catalog?n=2").await.expect(200);
    assert_eq!(r.json()["repositories"], json!(["a", "a/b"]));
    assert_eq!(r.header("link"), "</v2/_catalog?last=a/b&n=2>; rel=\"next\"");
    let r = reg.get("/v2/_catalog?n=2&last=a/b").await.expect(200);
    assert_eq!(r.json()["repositories"], json!(["a-c", "b/x"]));
    let r = reg.get("/v2/_catalog?n=2&last=b/x").await.expect(200);
    assert_eq!(r.json()["repositories"], json!(["c"]));
    assert_eq!(r.header("link"), "");
    reg.get("/v2/_catalog?n=-1").await.error(400, "SIZE_INVALID");
    reg.req("DELETE", "/v2/_catalog", &[], Body::empty()).await.error(405, "UNSUPPORTED");
}

#[tokio::test]
async fn referrers_list_filter_and_never_404() {
    let reg = Reg::new();
    let m = reg.image("art", b"l").await;
    let subject = digest(&m);
    reg.put_manifest("art", "v1", OCI_MANIFEST, &m).await.expect(201);
    let empty = reg.push_blob("art", b"{}").await;
    let artifact = |kind: &str, note: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": m.len()},
            "annotations": {"note": note},
        }))
        .unwrap()
    };
    let sig = artifact("application/vnd.example.sig", "signed");
    let sbom = artifact("application/spdx+json", "sbom");
    for a in [&sig, &sbom] {
        let r = reg.put_manifest("art", &digest(a), OCI_MANIFEST, a).await.expect(201);
        assert_eq!(r.header("oci-subject"), subject);
    }
    let r = reg.get(&format!("/v2/art/referrers/{subject}")).await.expect(200);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    assert_eq!(r.header("oci-filters-applied"), "");
    let idx = r.json();
    assert_eq!(idx["mediaType"], OCI_INDEX);
    assert_eq!(idx["schemaVersion"], 2);
    let list = idx["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let entry = list.iter().find(|e| e["digest"] == digest(&sig)).unwrap();
    assert_eq!(entry["artifactType"], "application/vnd.example.sig");
    assert_eq!(entry["size"], sig.len());
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["annotations"]["note"], "signed");
    let r = reg
        .get(&format!("/v2/art/referrers/{subject}?artifactType=application/spdx%2Bjson"))
        .await
        .expect(200);
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], digest(&sbom));
    // Unknown subject and unknown repository: an empty index, not 404.
    for uri in
        [format!("/v2/art/referrers/{}", digest(b"x")), format!("/v2/none/referrers/{subject}")]
    {
        let r = reg.get(&uri).await.expect(200);
        assert_eq!(r.json()["manifests"], json!([]));
    }
    reg.get("/v2/art/referrers/sha256:nothex").await.error(400, "DIGEST_INVALID");
    // Deleting a referrer removes it from the list.
    reg.req("DELETE", &format!("/v2/art/manifests/{}", digest(&sig)), &[], Body::empty())
        .await
        .expect(202);
    let r = reg.get(&format!("/v2/art/referrers/{subject}")).await.expect(200);
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
}
