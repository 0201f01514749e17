//! A referrer crafted with curl, as oras and cosign push them: an empty config blob
//! (`application/vnd.oci.empty.v1+json`, `{}`), one layer, and an OCI manifest with
//! `artifactType` and `subject` pointing at an image; then the `OCI-Subject` header on the PUT
//! and `GET /v2/<name>/referrers/<digest>` with and without the `artifactType` filter.

use serde_json::{Value, json};

use super::{Kind, OCI_INDEX, OCI_MANIFEST, Target, push_blob, sha256};
use crate::harness::Workspace;

const SBOM: &str = "application/vnd.regkit.test.sbom";
const SIGNATURE: &str = "application/vnd.regkit.test.signature";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Pushes two artifacts (an SBOM and a signature) whose subject is `subject` (an OCI manifest
/// of `size` bytes in `repo`) and checks what both servers say about them.
pub fn artifact_with_subject(ws: &Workspace, t: &Target, repo: &str, subject: &str, size: usize) {
    let config = push_blob(ws, t, repo, b"{}");
    assert_eq!(config, sha256(b"{}"));
    let mut pushed = Vec::new();
    for (artifact_type, payload) in
        [(SBOM, "sbom: hello.txt\n"), (SIGNATURE, "signed by the regkit test suite\n")]
    {
        let layer = push_blob(ws, t, repo, payload.as_bytes());
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY, "digest": config, "size": 2},
            "layers": [{"mediaType": "text/plain", "digest": layer, "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
            "annotations": {"org.example.kind": artifact_type},
        }))
        .unwrap();
        let digest = sha256(&manifest);
        let file = ws.join(format!("artifact-{}", &digest[7..19]));
        std::fs::write(&file, &manifest).unwrap();
        // PUT by digest, as oras does for an untagged artifact.
        let put = t.curl(
            ws,
            "PUT",
            &format!("/v2/{repo}/manifests/{digest}"),
            &[
                "-H",
                &format!("Content-Type: {OCI_MANIFEST}"),
                "--data-binary",
                &format!("@{}", file.display()),
            ],
        );
        put.expect(201, "PUT of an artifact with a subject");
        assert_eq!(put.header("docker-content-digest"), digest);
        match t.kind {
            // Spec (v1.1, pushing manifests with subject): a registry that processes the
            // subject answers with OCI-Subject naming it.
            Kind::Regkit => assert_eq!(put.header("oci-subject"), subject, "{put}"),
            // Distribution 2.8 predates the subject field: it stores the manifest, says nothing.
            Kind::Reference => assert_eq!(put.header("oci-subject"), "", "{put}"),
        }
        let back = t.curl(
            ws,
            "GET",
            &format!("/v2/{repo}/manifests/{digest}"),
            &["-H", &format!("Accept: {OCI_MANIFEST}")],
        );
        back.expect(200, "GET of the artifact");
        assert_eq!(back.body, manifest, "the artifact is stored byte for byte");
        pushed.push((artifact_type, digest, manifest.len()));
    }

    let referrers =
        |query: &str| t.curl(ws, "GET", &format!("/v2/{repo}/referrers/{subject}{query}"), &[]);
    let all = referrers("");
    if t.kind == Kind::Reference {
        // Distribution 2.8 has no referrers API (404 on the route); clients fall back to the
        // `sha256-<hex>` tag schema there. regkit implements the API, so they never need to.
        all.expect(404, "distribution 2.8 has no referrers endpoint");
        return;
    }
    all.expect(200, "referrers");
    assert_eq!(all.header("content-type"), OCI_INDEX);
    let index = all.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed: Vec<(String, String, u64)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["mediaType"], OCI_MANIFEST, "{d}");
            assert_eq!(d["annotations"]["org.example.kind"], d["artifactType"], "{d}");
            (
                d["artifactType"].as_str().unwrap().to_string(),
                d["digest"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    let mut want: Vec<(String, String, u64)> =
        pushed.iter().map(|(a, d, n)| (a.to_string(), d.clone(), *n as u64)).collect();
    want.sort();
    assert_eq!(listed, want, "{all}");
    assert_eq!(all.header("oci-filters-applied"), "", "no filter asked, none applied");

    let sbom = referrers(&format!("?artifactType={SBOM}"));
    sbom.expect(200, "referrers filtered by artifactType");
    assert_eq!(sbom.header("oci-filters-applied"), "artifactType");
    let only: Vec<Value> = sbom.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(only.len(), 1, "{sbom}");
    assert_eq!(only[0]["artifactType"], SBOM);
    assert_eq!(only[0]["digest"].as_str().unwrap(), pushed[0].1);

    let none = referrers("?artifactType=application/vnd.regkit.test.unknown");
    none.expect(200, "a filter nothing matches");
    assert_eq!(none.json()["manifests"], json!([]), "{none}");
    // A digest nothing refers to: an empty index, never 404.
    let lonely = t.curl(ws, "GET", &format!("/v2/{repo}/referrers/{config}"), &[]);
    lonely.expect(200, "referrers of an unreferenced digest");
    assert_eq!(lonely.json()["manifests"], json!([]), "{lonely}");
}
