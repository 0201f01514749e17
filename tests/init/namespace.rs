//! `regkit render` after the Kubernetes namespace changes in `regkit.yaml`: every object
//! moves to the new namespace, the Secrets (serialized, not templated) are rebuilt there with
//! the same data, and `kubectl kustomize` builds the result.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use regkit::deploy::descriptor;

use super::{PASSWORD, assert_covers, init, yaml};
use crate::harness::{Workspace, require_tool};

const SECRETS: [&str; 4] = [
    "k8s/secret-htpasswd.yaml",
    "k8s/secret-http.yaml",
    "k8s/secret-pull.yaml",
    "k8s/secret-tls.yaml",
];

/// Every Secret's `data`, by file.
fn secrets_data(dep: &Path) -> BTreeMap<&'static str, serde_json::Value> {
    SECRETS.iter().map(|f| (*f, yaml(&dep.join(f))["data"].clone())).collect()
}

#[test]
fn render_after_a_namespace_edit_moves_every_object_and_keeps_every_secret() {
    if !require_tool("kubectl") || !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    init(&ws, &[]);
    let dep = ws.join("dep");
    let before = secrets_data(&dep);
    let mut d = descriptor::load(&dep.join("regkit.yaml")).unwrap();
    let old = d.kubernetes.namespace.clone();
    d.kubernetes.namespace = "images-prod".into();
    assert_ne!(old, d.kubernetes.namespace);
    fs::write(dep.join("regkit.yaml"), descriptor::to_yaml(&d).unwrap()).unwrap();

    let r = ws.regkit().args(["render", "dep", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let changed: Vec<&str> =
        report["changed"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for secret in SECRETS {
        assert!(changed.contains(&secret), "{secret} not rebuilt: {r}");
    }
    assert_eq!(report["warnings"], serde_json::json!([]), "{r}");
    assert!(!r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD), "{r}");

    // Every object names the new namespace (the Namespace object by its name).
    for entry in fs::read_dir(dep.join("k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "kustomization.yaml" {
            continue;
        }
        let v = yaml(&path);
        let ns = match v["kind"].as_str() {
            Some("Namespace") => &v["metadata"]["name"],
            _ => &v["metadata"]["namespace"],
        };
        assert_eq!(ns.as_str(), Some("images-prod"), "{}", path.display());
    }
    // Same data in every Secret: no key, certificate or password was replaced.
    assert_eq!(secrets_data(&dep), before);
    assert_covers(&ws, &dep, &d);
    ws.tool("htpasswd").args(["-vb", "dep/auth/htpasswd", "admin", PASSWORD]).ok();

    let built = ws.tool("kubectl").args(["kustomize", "dep/k8s"]).ok();
    assert!(built.stdout.contains("namespace: images-prod"), "{built}");
    assert!(!built.stdout.contains(&format!("namespace: {old}\n")), "{built}");
    ws.regkit().args(["render", "dep"]).ok().stderr_has("already up to date");
}
