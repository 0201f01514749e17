//! Real clients against `router()` served over plain HTTP on 127.0.0.1: an image built with
//! buildah, pushed and pulled with skopeo (byte-identical), inspected, listed and deleted;
//! a multi-arch index; a body cut short on a real connection; and layout compatibility with the reference registry (`docker-registry`, distribution
//! 2.8) in both directions on one root directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regkit::registry::storage::StorageOptions;
use regkit::registry::{AppState, RegistryOptions, router};
use serde_json::Value;

use crate::harness::{KillOnDrop, Workspace, free_port, require_tool, wait_for_port};

/// The router on a background runtime; dropping it stops the server.
pub(super) struct Served {
    pub(super) addr: String,
    _rt: tokio::runtime::Runtime,
}

pub(super) fn serve(root: &Path) -> Served {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let options = RegistryOptions { delete_enabled: true, ..Default::default() };
    let app = router(AppState::filesystem(StorageOptions::new(root), options));
    rt.spawn(async move { axum::serve(listener, app).await });
    Served { addr, _rt: rt }
}

/// Runs a tool and returns its stdout, failing the test with everything on error.
pub(super) fn run(ws: &Workspace, program: &str, args: &[&str]) -> String {
    ws.tool(program).args(args).ok().stdout
}

pub(super) fn skopeo(ws: &Workspace, args: &[&str]) -> String {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    run(ws, "skopeo", &all)
}

pub(super) fn tools_present() -> bool {
    // Evaluate every requirement so CI reports each missing tool.
    [require_tool("skopeo"), require_tool("buildah")].iter().all(|&ok| ok)
}

/// Builds a two-file image with buildah in private storage and writes it as an OCI layout.
pub(super) fn build_image(ws: &Workspace) -> PathBuf {
    let ctx = ws.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from regkit\n").unwrap();
    // 3 MiB of varied bytes, so the layer is streamed in many chunks.
    let mut x = 0x9e37_79b9_u32;
    let big: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(ctx.join("big.bin"), big).unwrap();
    let b = |args: &[&str]| buildah(ws, args);
    let c = b(&["from", "scratch"]);
    b(&["copy", &c, ctx.join("hello.txt").to_str().unwrap(), "/hello.txt"]);
    b(&["copy", &c, ctx.join("big.bin").to_str().unwrap(), "/big.bin"]);
    b(&["commit", "-q", &c, "localhost/regkit-test/img:v1"]);
    let oci = ws.join("oci");
    b(&["push", "-q", "localhost/regkit-test/img:v1", &format!("oci:{}:v1", oci.display())]);
    oci
}

/// Runs buildah on storage private to the workspace.
fn buildah(ws: &Workspace, args: &[&str]) -> String {
    let (root, runroot) = (ws.join("buildah/root"), ws.join("buildah/run"));
    let mut all = vec!["--root", root.to_str().unwrap(), "--runroot", runroot.to_str().unwrap()];
    all.extend_from_slice(&["--storage-driver", "vfs"]);
    all.extend_from_slice(args);
    run(ws, "buildah", &all).trim().to_string()
}

/// Digest of the first manifest in an OCI layout's index.
pub(super) fn layout_manifest(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

/// Every blob of an OCI layout by file name.
fn layout_blobs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Pulls `image` into a fresh OCI layout and asserts it is byte-identical to `src`.
fn pull_and_compare(ws: &Workspace, image: &str, src: &Path, out: &str) {
    let out = ws.join(out);
    skopeo(
        ws,
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{image}"),
            &format!("oci:{}:v1", out.display()),
        ],
    );
    assert_eq!(layout_manifest(&out), layout_manifest(src), "pulled manifest differs");
    assert_eq!(layout_blobs(&out), layout_blobs(src), "pulled blobs differ");
}

fn tags(ws: &Workspace, repo: &str) -> Vec<String> {
    let out = skopeo(ws, &["list-tags", "--tls-verify=false", &format!("docker://{repo}")]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut t: Vec<String> =
        v["Tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    t.sort();
    t
}

#[test]
fn skopeo_push_pull_inspect_list_delete() {
    if !tools_present() {
        return;
    }
    let ws = Workspace::new();
    let oci = build_image(&ws);
    let src = format!("oci:{}:v1", oci.display());
    let root = ws.join("registry");
    let server = serve(&root);
    let repo = format!("{}/test/img", server.addr);
    skopeo(&ws, &["copy", "--dest-tls-verify=false", &src, &format!("docker://{repo}:v1")]);
    skopeo(
        &ws,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &src,
            &format!("docker://{repo}:v2s2"),
        ],
    );
    // The manifest comes back exactly as pushed, and the image pulls byte-identical.
    let raw =
        skopeo(&ws, &["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}:v1")]);
    let digest = layout_manifest(&oci);
    let pushed = std::fs::read(oci.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(raw.as_bytes(), pushed.as_slice());
    pull_and_compare(&ws, &format!("{repo}:v1"), &oci, "pulled");
    let info: Value = serde_json::from_str(&skopeo(
        &ws,
        &["inspect", "--tls-verify=false", &format!("docker://{repo}:v1")],
    ))
    .unwrap();
    assert_eq!(info["Digest"], digest);
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "buildah commits one layer");
    let v2s2 =
        skopeo(&ws, &["inspect", "--raw", "--tls-verify=false", &format!("docker://{repo}:v2s2")]);
    assert!(v2s2.contains("application/vnd.docker.distribution.manifest.v2+json"), "{v2s2}");
    assert_eq!(tags(&ws, &repo), ["v1", "v2s2"]);
    skopeo(&ws, &["delete", "--tls-verify=false", &format!("docker://{repo}:v1")]);
    assert_eq!(tags(&ws, &repo), ["v2s2"]);
    let gone = ws
        .tool("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--tls-verify=false",
            &format!("docker://{repo}:v1"),
        ])
        .fails();
    assert!(gone.stderr.contains("manifest unknown"), "{gone}");
    // HEAD over real HTTP keeps Content-Length and the digest (checked with curl).
    if require_tool("curl") {
        let head = run(
            &ws,
            "curl",
            &["-sSfI", &format!("http://{}/v2/test/img/manifests/v2s2", server.addr)],
        );
        let head = head.to_ascii_lowercase();
        assert!(head.contains(&format!("content-length: {}", v2s2.len())), "{head}");
        assert!(head.contains("docker-content-digest: sha256:"), "{head}");
        assert!(head.contains("docker-distribution-api-version: registry/2.0"), "{head}");
    }
}

#[test]
fn multi_arch_index_round_trip() {
    if !tools_present() {
        return;
    }
    let ws = Workspace::new();
    build_image(&ws);
    let c = buildah(&ws, &["from", "scratch"]);
    let arm = ws.join("ctx/arm.txt");
    std::fs::write(&arm, "arm64 payload\n").unwrap();
    buildah(&ws, &["copy", &c, arm.to_str().unwrap(), "/arm.txt"]);
    buildah(&ws, &["config", "--arch", "arm64", &c]);
    buildah(&ws, &["commit", "-q", &c, "localhost/regkit-test/img:arm64"]);
    buildah(&ws, &["manifest", "create", "localhost/regkit-test/list:v1"]);
    buildah(
        &ws,
        &["manifest", "add", "localhost/regkit-test/list:v1", "localhost/regkit-test/img:v1"],
    );
    buildah(
        &ws,
        &["manifest", "add", "localhost/regkit-test/list:v1", "localhost/regkit-test/img:arm64"],
    );
    let root = ws.join("registry");
    let server = serve(&root);
    let image = format!("docker://{}/test/multi:v1", server.addr);
    buildah(
        &ws,
        &[
            "manifest",
            "push",
            "--all",
            "--format",
            "oci",
            "--tls-verify=false",
            "localhost/regkit-test/list:v1",
            &image,
        ],
    );
    let raw = skopeo(&ws, &["inspect", "--raw", "--tls-verify=false", &image]);
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let children = index["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    // Pull everything back: the index and both images arrive intact.
    let out = ws.join("pulled");
    skopeo(
        &ws,
        &["copy", "--all", "--src-tls-verify=false", &image, &format!("oci:{}:v1", out.display())],
    );
    let index_digest = format!("sha256:{}", hex_sha256(raw.as_bytes()));
    assert_eq!(layout_manifest(&out), index_digest);
    let blobs = layout_blobs(&out);
    for child in children {
        let d = child["digest"].as_str().unwrap();
        assert!(blobs.contains_key(&d[7..]), "child {d} not pulled");
    }
    for (name, data) in &blobs {
        assert_eq!(&hex_sha256(data), name, "blob {name} corrupted");
    }
    let arm64 = skopeo(&ws, &["inspect", "--override-arch", "arm64", "--tls-verify=false", &image]);
    assert!(arm64.contains("\"Architecture\": \"arm64\""), "{arm64}");
}

fn hex_sha256(data: &[u8]) -> String {
    regkit::registry::api::names::Algorithm::Sha256.digest_of(data).hex().to_string()
}

/// The reference registry on `root`, plain HTTP on a free loopback port.
fn reference_registry(ws: &Workspace, root: &Path) -> (KillOnDrop, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = ws.join("config.yml");
    std::fs::write(
        &config,
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: /nonexistent\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:1\n",
    )
    .unwrap();
    let log = std::fs::File::create(ws.join(format!("registry-{port}.log"))).unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", config.to_str().unwrap()])
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", root)
        .env("REGISTRY_HTTP_ADDR", &addr)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child);
    wait_for_port(&addr);
    (guard, addr)
}

#[test]
fn layout_is_shared_with_the_reference_registry_both_ways() {
    if !tools_present() || !require_tool("docker-registry") {
        return;
    }
    let ws = Workspace::new();
    let oci = build_image(&ws);
    let src = format!("oci:{}:v1", oci.display());

    // docker-registry writes, regkit serves.
    let root = ws.join("root-a");
    {
        let (_registry, addr) = reference_registry(&ws, &root);
        skopeo(
            &ws,
            &["copy", "--dest-tls-verify=false", &src, &format!("docker://{addr}/compat/img:v1")],
        );
        skopeo(
            &ws,
            &[
                "copy",
                "--dest-tls-verify=false",
                "--format",
                "v2s2",
                &src,
                &format!("docker://{addr}/compat/img:v2s2"),
            ],
        );
    }
    {
        let server = serve(&root);
        let repo = format!("{}/compat/img", server.addr);
        pull_and_compare(&ws, &format!("{repo}:v1"), &oci, "from-reference");
        assert_eq!(tags(&ws, &repo), ["v1", "v2s2"]);
        skopeo(&ws, &["inspect", "--tls-verify=false", &format!("docker://{repo}:v2s2")]);
    }

    // regkit writes, docker-registry serves.
    let root = ws.join("root-b");
    {
        let server = serve(&root);
        skopeo(
            &ws,
            &[
                "copy",
                "--dest-tls-verify=false",
                &src,
                &format!("docker://{}/rev/img:v1", server.addr),
            ],
        );
    }
    let (registry, addr) = reference_registry(&ws, &root);
    pull_and_compare(&ws, &format!("{addr}/rev/img:v1"), &oci, "from-regkit");
    assert_eq!(tags(&ws, &format!("{addr}/rev/img")), ["v1"]);
    drop(registry);
    // distribution's garbage collector reads regkit's root: every blob is reachable.
    let gc = ws
        .tool("docker-registry")
        .args(["garbage-collect", "--dry-run", ws.join("config.yml").to_str().unwrap()])
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &root)
        .ok();
    let text = format!("{}{}", gc.stdout, gc.stderr);
    assert!(text.contains("rev/img: marking manifest"), "{text}");
    assert!(text.contains("0 blobs and 0 manifests eligible for deletion"), "{text}");
}

/// Sends raw HTTP/1.1 bytes (requests carry `Connection: close`), optionally closes the
/// sending side to cut the body short, and returns the whole answer as text.
fn raw_http(addr: &str, request: &[u8], cut: bool) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    if cut {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_body_cut_short_over_real_http_leaves_the_upload_unchanged() {
    let ws = Workspace::new();
    let server = serve(&ws.join("registry"));
    let start = raw_http(
        &server.addr,
        b"POST /v2/cut/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert!(start.starts_with("HTTP/1.1 202"), "{start}");
    let location = start
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().starts_with("location:").then(|| l[9..].trim().to_string())
        })
        .unwrap();
    let first = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Range: 0-3\r\nContent-Length: 4\r\n\r\nabcd"
    );
    assert!(raw_http(&server.addr, first.as_bytes(), false).starts_with("HTTP/1.1 202"));
    // Announce 100 bytes, send 10, close: the connection ends mid-body.
    let cut =
        format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    let answer = raw_http(&server.addr, cut.as_bytes(), true);
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "a cut body was not refused: {answer}");
    let get = format!("GET {location} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let status = raw_http(&server.addr, get.as_bytes(), false);
    assert!(status.starts_with("HTTP/1.1 204"), "{status}");
    assert!(status.to_ascii_lowercase().contains("range: 0-3"), "upload changed: {status}");
}
