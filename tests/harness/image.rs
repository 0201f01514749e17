//! A one-file test image built with buildah into an OCI layout, in a buildah store private to
//! the workspace (vfs driver), so tests never touch the host's image store.

use std::fs;
use std::path::{Path, PathBuf};

use super::Workspace;

/// The buildah global flags of the workspace's private store (paths relative to the workspace).
pub const STORE: [&str; 6] =
    ["--root", "buildah-storage", "--runroot", "buildah-run", "--storage-driver", "vfs"];

/// The name `build` commits its image under in the private store.
pub const NAME: &str = "localhost/regkit-test/img:v1";

/// Builds an image holding `/hello.txt` and returns its OCI layout folder (tag `v1`).
pub fn build(ws: &Workspace) -> PathBuf {
    fs::write(ws.join("hello.txt"), format!("hello from {}\n", ws.path().display())).unwrap();
    let store = STORE;
    let tag = NAME;
    let c = ws.tool("buildah").args(store).args(["from", "scratch"]).ok().stdout.trim().to_string();
    ws.tool("buildah").args(store).args(["copy", &c, "hello.txt", "/hello.txt"]).ok();
    ws.tool("buildah").args(store).args(["commit", "-q", &c, tag]).ok();
    ws.tool("buildah").args(store).args(["rm", &c]).ok();
    let oci = ws.join("oci");
    ws.tool("buildah")
        .args(store)
        .args(["push", "-q", tag])
        .arg(format!("oci:{}:v1", oci.display()))
        .ok();
    oci
}

/// The manifest digest recorded in an OCI layout's index.
pub fn manifest_digest(oci: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(oci.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}
