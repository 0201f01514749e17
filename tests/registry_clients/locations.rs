//! What `regkit serve` puts in upload answers, per configuration: `Location` headers are
//! paths by default, absolute (`http.host` + path) when `http.host` is set, paths again with
//! `http.relativeurls: true`; `OCI-Chunk-Min-Length` comes from `http.chunkminlength`. skopeo
//! pushes and pulls through a server whose `http.host` is its own address, following the
//! absolute URLs it is given.

use super::{Kind, Target, secrets, sha256, tools_present, with_query};
use crate::harness::{Workspace, free_port, image, require_tool};

const HOST: &str = "https://registry.example.com:5443";

/// `POST` an upload, `PATCH` a chunk, `PUT` it, `PUT` a manifest: the `Location` of each
/// answer, and the `OCI-Chunk-Min-Length` of the first.
fn locations(ws: &Workspace, t: &Target, repo: &str) -> (Vec<String>, String) {
    let path_of = |loc: &str| loc.strip_prefix(HOST).unwrap_or(loc).to_string();
    let post = t.curl(ws, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[]);
    post.expect(202, "starting an upload");
    let chunk_min = post.header("oci-chunk-min-length");
    let mut seen = vec![post.header("location")];
    let file = ws.join("chunk");
    std::fs::write(&file, b"abc").unwrap();
    let data = format!("@{}", file.display());
    let patch = t.curl(
        ws,
        "PATCH",
        &path_of(&seen[0]),
        &["-H", "Content-Range: 0-2", "--data-binary", &data, "--http1.1"],
    );
    patch.expect(202, "a chunk");
    seen.push(patch.header("location"));
    let digest = sha256(b"abc");
    let put = t.curl(ws, "PUT", &with_query(&path_of(&seen[1]), &format!("digest={digest}")), &[]);
    put.expect(201, "completing the upload");
    seen.push(put.header("location"));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": super::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 3},
        "layers": [],
    });
    std::fs::write(ws.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    let at = format!("@{}", ws.join("manifest.json").display());
    let ct = format!("Content-Type: {}", super::OCI_MANIFEST);
    let m = t.curl(
        ws,
        "PUT",
        &format!("/v2/{repo}/manifests/v1"),
        &["-H", &ct, "--data-binary", &at, "--http1.1"],
    );
    m.expect(201, "a manifest");
    seen.push(m.header("location"));
    (seen, chunk_min)
}

#[test]
fn serve_locations_follow_http_host_and_relativeurls() {
    if !require_tool("curl") {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let check = |t: &Target, repo: &str, base: &str| -> String {
        let (seen, chunk_min) = locations(&ws, t, repo);
        let upload = seen[0].strip_prefix(base).unwrap_or_else(|| panic!("{seen:?}"));
        let id = upload.rsplit('/').next().unwrap();
        let blob = format!("{base}/v2/{repo}/blobs/{}", sha256(b"abc"));
        let digest = &seen[3][seen[3].rfind('/').unwrap() + 1..];
        let want = [
            format!("{base}/v2/{repo}/blobs/uploads/{id}"),
            format!("{base}/v2/{repo}/blobs/uploads/{id}"),
            blob,
            format!("{base}/v2/{repo}/manifests/{digest}"),
        ];
        assert_eq!(seen, want, "{}", t.log());
        chunk_min
    };

    let plain = Target::start(&ws, &s, Kind::Regkit, "plain");
    assert_eq!(check(&plain, "loc/plain", ""), "", "no chunk minimum unless configured");
    drop(plain);

    let env = [("REGISTRY_HTTP_HOST", HOST), ("REGISTRY_HTTP_CHUNKMINLENGTH", "5242880")];
    let absolute = Target::regkit(&ws, &s, "abs", "127.0.0.1:0", &env);
    assert_eq!(check(&absolute, "loc/abs", HOST), "5242880");
    drop(absolute);

    let env = [("REGISTRY_HTTP_HOST", HOST), ("REGISTRY_HTTP_RELATIVEURLS", "true")];
    let relative = Target::regkit(&ws, &s, "rel", "127.0.0.1:0", &env);
    assert_eq!(check(&relative, "loc/rel", ""), "");
}

#[test]
fn skopeo_follows_absolute_locations_to_the_registry_itself() {
    if !tools_present(&[]) {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let oci = image::build(&ws);
    let addr = format!("127.0.0.1:{}", free_port());
    let host = format!("https://{addr}");
    let t = Target::regkit(&ws, &s, "data", &addr, &[("REGISTRY_HTTP_HOST", &host)]);
    let post = t.curl(&ws, "POST", "/v2/abs/app/blobs/uploads/", &[]);
    assert!(post.header("location").starts_with(&format!("{host}/v2/abs/app/blobs/uploads/")));
    let src = format!("oci:{}:v1", oci.display());
    let r = t.push(&ws, &src, "abs/app:v1", &[]);
    assert_eq!(r.code, Some(0), "{r}\n{}", t.log());
    let out = ws.join("pulled");
    let r = t.pull(&ws, "abs/app:v1", &format!("oci:{}:v1", out.display()), &[]);
    assert_eq!(r.code, Some(0), "{r}\n{}", t.log());
    assert_eq!(super::layout_blobs(&oci), super::layout_blobs(&out), "pulled what was pushed");
}
