//! The client flows, one function run against both servers: skopeo push / pull / inspect /
//! list-tags / delete, podman login / pull / push, buildah push, a multi-arch index, a
//! referrer, and refused credentials on every endpoint family. Where distribution 2.8 and the
//! spec disagree, the assertion is per server and the comment says which one follows the spec.

use std::path::Path;

use serde_json::Value;

use super::{
    DOCKER_MANIFEST, Kind, OCI_INDEX, OCI_MANIFEST, PASSWORD, Target, USER, auth, layout_blob,
    layout_blobs, layout_manifest, referrers, secrets, sha256, tools_present,
};
use crate::harness::{Workspace, image};

#[test]
fn clients_push_pull_and_delete_through_regkit_serve() {
    flows(Kind::Regkit);
}

#[test]
fn clients_run_the_same_flows_against_the_reference_registry() {
    if !require_reference() {
        return;
    }
    flows(Kind::Reference);
}

fn require_reference() -> bool {
    crate::harness::require_tool("docker-registry")
}

fn flows(kind: Kind) {
    if !tools_present(&["podman"]) {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let oci = image::build(&ws);
    let t = Target::start(&ws, &s, kind, "data");
    skopeo_flow(&ws, &t, &oci);
    podman_flow(&ws, &t, &oci);
    buildah_push(&ws, &t);
    multi_arch(&ws, &t);
    let digest = layout_manifest(&oci);
    let size = layout_blob(&oci, &digest).len();
    referrers::artifact_with_subject(&ws, &t, "flows/img", &digest, size);
    auth::every_endpoint_family_refuses_bad_credentials(&ws, &t, "flows/img", &digest);
    deletes(&ws, &t, &oci);
}

/// skopeo: push (OCI and Docker schema 2), inspect, pull back byte-identical, list tags; and
/// the failures a client must see without credentials or without the CA.
fn skopeo_flow(ws: &Workspace, t: &Target, oci: &Path) {
    let src = format!("oci:{}:v1", oci.display());
    t.push(ws, &src, "flows/img:v1", &[]).ok_or_log(t);
    t.push(ws, &src, "flows/img:v2s2", &["--format", "v2s2"]).ok_or_log(t);
    let digest = layout_manifest(oci);
    let raw = t.skopeo(ws, "inspect", &["--raw"], "flows/img:v1").ok_or_log(t).raw_stdout;
    assert_eq!(raw, layout_blob(oci, &digest), "the manifest is served byte for byte");
    let info: Value =
        serde_json::from_str(&t.skopeo(ws, "inspect", &[], "flows/img:v1").ok_or_log(t).stdout)
            .unwrap();
    assert_eq!(info["Digest"], digest);
    let v2s2 = t.skopeo(ws, "inspect", &["--raw"], "flows/img:v2s2").ok_or_log(t).stdout;
    assert!(v2s2.contains(DOCKER_MANIFEST), "{v2s2}");

    let pulled = ws.join(format!("pulled-{:?}", t.kind));
    t.pull(ws, "flows/img:v1", &format!("oci:{}:v1", pulled.display()), &[]).ok_or_log(t);
    assert_eq!(layout_manifest(&pulled), digest);
    assert_eq!(layout_blobs(&pulled), layout_blobs(oci), "pulled blobs differ from pushed");
    assert_eq!(t.tags(ws, "flows/img"), ["v1", "v2s2"]);

    // No credentials, a wrong password: refused, and skopeo says why.
    let anonymous = ws
        .tool("skopeo")
        .args(["list-tags", "--no-creds", "--cert-dir"])
        .arg(&t.certs)
        .arg(t.docker("flows/img"))
        .fails();
    assert!(anonymous.stderr.contains("unauthorized"), "{anonymous}");
    let wrong = ws
        .tool("skopeo")
        .args(["inspect", "--cert-dir"])
        .arg(&t.certs)
        .args(["--creds", &format!("{USER}:not-{PASSWORD}")])
        .arg(t.docker("flows/img:v1"))
        .fails();
    assert!(wrong.stderr.contains("unauthorized"), "{wrong}");
    // Without the CA, Go's verification rejects the certificate: the CA is what makes it pass.
    std::fs::create_dir_all(ws.join("no-ca")).unwrap();
    let untrusted = ws
        .tool("skopeo")
        .args(["inspect", "--cert-dir", "no-ca", "--creds", &super::creds()])
        .arg(t.docker("flows/img:v1"))
        .fails();
    assert!(untrusted.stderr.contains("certificate signed by unknown authority"), "{untrusted}");
}

/// podman (rootful, private vfs storage, private auth file): login with `--cert-dir`, pull,
/// push to another repository, remove everything, pull that back.
fn podman_flow(ws: &Workspace, t: &Target, oci: &Path) {
    let store = [
        "--root",
        &ws.join("podman/root").display().to_string(),
        "--runroot",
        &ws.join("podman/run").display().to_string(),
        "--storage-driver",
        "vfs",
    ]
    .map(String::from);
    let authfile = ws.join("podman-auth.json");
    let podman = |args: &[&str]| {
        ws.tool("podman").args(&store).args(args).env("REGISTRY_AUTH_FILE", &authfile)
    };
    let certs = t.certs.display().to_string();
    let wrong = podman(&["login", "--cert-dir", &certs, "-u", USER, "-p", "nope", &t.addr]).fails();
    assert!(wrong.stderr.contains("invalid username/password"), "{wrong}");
    let login = podman(&["login", "--cert-dir", &certs, "-u", USER, "--password-stdin", &t.addr])
        .stdin(format!("{PASSWORD}\n"))
        .ok_or_log(t);
    assert!(login.stdout.contains("Login Succeeded"), "{login}");
    let auth: Value = serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(auth["auths"][&t.addr]["auth"].is_string(), "{auth}");

    // The image ID podman reports is the config digest of what was pushed.
    let manifest: Value = serde_json::from_slice(&layout_blob(oci, &layout_manifest(oci))).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let image = format!("{}/flows/img:v1", t.addr);
    podman(&["pull", "-q", "--cert-dir", &certs, &image]).ok_or_log(t);
    let id = |name: &str| {
        podman(&["image", "inspect", "--format", "{{.Id}}", name]).ok().stdout.trim().to_string()
    };
    assert_eq!(id(&image), config);
    let pushed = format!("{}/flows/podman:v1", t.addr);
    podman(&["push", "-q", "--cert-dir", &certs, &image, &format!("docker://{pushed}")])
        .ok_or_log(t);
    podman(&["rmi", "-a", "-f"]).ok();
    podman(&["pull", "-q", "--cert-dir", &certs, &pushed]).ok_or_log(t);
    assert_eq!(id(&pushed), config, "the image pushed by podman pulls back");
    let digest = podman(&["image", "inspect", "--format", "{{.Digest}}", &pushed]).ok();
    let info: Value =
        serde_json::from_str(&t.skopeo(ws, "inspect", &[], "flows/podman:v1").ok_or_log(t).stdout)
            .unwrap();
    assert_eq!(info["Digest"].as_str().unwrap(), digest.stdout.trim());
}

/// buildah push from its private store; the registry holds the image buildah committed.
fn buildah_push(ws: &Workspace, t: &Target) {
    let digestfile = ws.join(format!("buildah-{:?}.digest", t.kind));
    ws.tool("buildah")
        .args(image::STORE)
        .args(["push", "-q", "--cert-dir"])
        .arg(&t.certs)
        .args(["--creds", &super::creds(), "--digestfile"])
        .arg(&digestfile)
        .args([image::NAME, &t.docker("flows/buildah:v1")])
        .ok_or_log(t);
    let digest = std::fs::read_to_string(&digestfile).unwrap();
    let raw = t.skopeo(ws, "inspect", &["--raw"], "flows/buildah:v1").ok_or_log(t).raw_stdout;
    assert_eq!(sha256(&raw), digest.trim(), "the registry serves what buildah pushed");
    let id = ws
        .tool("buildah")
        .args(image::STORE)
        .args(["images", "--no-trunc", "--format", "{{.ID}}", image::NAME])
        .ok()
        .stdout;
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:"),
        id.trim().trim_start_matches("sha256:")
    );
}

/// Two images (the host's architecture and arm64) in one OCI index pushed with
/// `buildah manifest push --all`, pulled back with `skopeo copy --all` under the same digest.
fn multi_arch(ws: &Workspace, t: &Target) {
    let arm = "localhost/regkit-test/img:arm64";
    let list = "localhost/regkit-test/list:v1";
    let buildah = |args: &[&str]| ws.tool("buildah").args(image::STORE).args(args).ok();
    std::fs::write(ws.join("arm.txt"), "arm64 payload\n").unwrap();
    let c = buildah(&["from", "scratch"]).stdout.trim().to_string();
    buildah(&["copy", &c, "arm.txt", "/arm.txt"]);
    buildah(&["config", "--arch", "arm64", "--os", "linux", &c]);
    buildah(&["commit", "-q", &c, arm]);
    buildah(&["rm", &c]);
    buildah(&["manifest", "create", list]);
    buildah(&["manifest", "add", list, image::NAME]);
    buildah(&["manifest", "add", list, arm]);
    let digestfile = ws.join(format!("multi-{:?}.digest", t.kind));
    ws.tool("buildah")
        .args(image::STORE)
        .args(["manifest", "push", "-q", "--all", "--format", "oci", "--cert-dir"])
        .arg(&t.certs)
        .args(["--creds", &super::creds(), "--digestfile"])
        .arg(&digestfile)
        .args([list, &t.docker("flows/multi:v1")])
        .ok_or_log(t);
    let digest = std::fs::read_to_string(&digestfile).unwrap().trim().to_string();
    let raw = t.skopeo(ws, "inspect", &["--raw"], "flows/multi:v1").ok_or_log(t).raw_stdout;
    assert_eq!(sha256(&raw), digest, "the index is served byte for byte");
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let children = index["manifests"].as_array().unwrap();
    let archs: Vec<&str> =
        children.iter().map(|c| c["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(children.len(), 2, "{index}");
    assert!(archs.contains(&"arm64"), "{archs:?}");

    let out = ws.join(format!("multi-pulled-{:?}", t.kind));
    t.pull(ws, "flows/multi:v1", &format!("oci:{}:v1", out.display()), &["--all"]).ok_or_log(t);
    assert_eq!(layout_manifest(&out), digest, "pulled back under the same index digest");
    let blobs = layout_blobs(&out);
    for child in children {
        let d = child["digest"].as_str().unwrap();
        assert!(blobs.contains_key(&d[7..]), "child {d} not pulled");
        assert_eq!(child["mediaType"], OCI_MANIFEST);
    }
    let arm64 =
        t.skopeo(ws, "inspect", &["--override-arch", "arm64"], "flows/multi:v1").ok_or_log(t);
    assert!(arm64.stdout.contains("\"Architecture\": \"arm64\""), "{arm64}");
}

/// Deleting, last (it removes what the other steps read); the reference registry departs from
/// the spec at three points here, each asserted for both servers.
fn deletes(ws: &Workspace, t: &Target, oci: &Path) {
    let digest = layout_manifest(oci);
    let pushed = layout_blob(oci, &digest);

    // An OCI manifest asked for without an Accept header. The spec: a registry answers with
    // the manifest and its Content-Type. Distribution 2.8 treats a request without an OCI type
    // in Accept as a schema 1 client and answers 404 MANIFEST_UNKNOWN.
    let get = t.curl(ws, "GET", "/v2/flows/img/manifests/v1", &[]);
    match t.kind {
        Kind::Regkit => {
            get.expect(200, "OCI manifest without Accept");
            assert_eq!(get.header("content-type"), OCI_MANIFEST);
            assert_eq!(get.header("docker-content-digest"), digest);
            assert_eq!(get.body, pushed);
        }
        Kind::Reference => {
            get.expect(404, "distribution 2.8: OCI manifest without Accept");
            assert_eq!(get.error_code(), "MANIFEST_UNKNOWN");
        }
    }

    // DELETE by tag. The spec (v1.1 end-9): deleting a tag removes only the tag (202).
    // Distribution 2.8 requires a digest and answers 400 DIGEST_INVALID.
    let src = format!("oci:{}:v1", oci.display());
    t.push(ws, &src, "flows/img:extra", &[]).ok_or_log(t);
    let untag = t.curl(ws, "DELETE", "/v2/flows/img/manifests/extra", &[]);
    match t.kind {
        Kind::Regkit => {
            untag.expect(202, "DELETE by tag");
            assert_eq!(t.tags(ws, "flows/img"), ["v1", "v2s2"]);
            let by_digest = t.curl(
                ws,
                "HEAD",
                &format!("/v2/flows/img/manifests/{digest}"),
                &["-H", &format!("Accept: {OCI_MANIFEST}")],
            );
            by_digest.expect(200, "the manifest outlives its tag");
        }
        Kind::Reference => {
            untag.expect(400, "distribution 2.8: DELETE by tag");
            assert_eq!(untag.error_code(), "DIGEST_INVALID");
            assert_eq!(t.tags(ws, "flows/img"), ["extra", "v1", "v2s2"]);
        }
    }

    // skopeo delete resolves the tag and deletes by digest: the manifest and every tag on it
    // go, on both servers.
    t.skopeo(ws, "delete", &[], "flows/img:v1").ok_or_log(t);
    assert_eq!(t.tags(ws, "flows/img"), ["v2s2"]);
    let gone = t.skopeo(ws, "inspect", &[], "flows/img:v1");
    assert!(gone.code != Some(0) && gone.stderr.contains("manifest unknown"), "{gone}");

    // The last tag gone. The spec's tag list is `"tags": [...]`, a list; distribution 2.8
    // writes `null`.
    t.skopeo(ws, "delete", &[], "flows/img:v2s2").ok_or_log(t);
    let list = t.curl(ws, "GET", "/v2/flows/img/tags/list", &[]);
    list.expect(200, "tags of a repository without tags");
    let want = match t.kind {
        Kind::Regkit => serde_json::json!([]),
        Kind::Reference => Value::Null,
    };
    assert_eq!(list.json()["tags"], want, "{list}");
    assert_eq!(list.json()["name"], "flows/img");
}

/// Success assertions that add the server's log to the failure message.
trait OkOrLog {
    fn ok_or_log(self, t: &Target) -> crate::harness::Ran;
}

impl OkOrLog for crate::harness::Ran {
    fn ok_or_log(self, t: &Target) -> crate::harness::Ran {
        assert_eq!(self.code, Some(0), "expected success\n{self}\n--- server log ---\n{}", t.log());
        self
    }
}

impl OkOrLog for crate::harness::Cmd {
    fn ok_or_log(self, t: &Target) -> crate::harness::Ran {
        self.run().ok_or_log(t)
    }
}
