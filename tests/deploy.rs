//! Deployment folders (issue 4, first part): the YAML-safe escaping, the descriptor, and
//! `regkit render`, checked with the real consumers of what it writes: docker-compose,
//! kubectl kustomize, kubernetes-validate, and Debian's docker-registry with skopeo.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use regkit::deploy::descriptor::{self, Descriptor, Driver, Proxy, S3};
use regkit::deploy::escape;

use crate::harness::{Workspace, image, in_ci, registry, require_tool, snapshot};

mod hostile;
mod manifests;

/// Strings built to break naive YAML templating.
const HOSTILE: &[&str] = &[
    "yes",
    "No",
    "off",
    "null",
    "~",
    "true",
    "123",
    "0x1F",
    "1e3",
    "0777",
    "1_000",
    ".inf",
    "2001-12-14",
    "1:20",
    "- item",
    "* alias",
    "&anchor",
    "!tag",
    "? key",
    "%directive",
    "@at",
    "`tick",
    "#comment",
    "a #b",
    "a: b",
    "key:",
    "{a: 1}",
    "[x]",
    "'single'",
    "\"double\"",
    "back\\slash",
    "line\nbreak",
    "tab\there",
    "trailing ",
    " leading",
    "",
    "镜像仓库",
    "emoji 🐳",
    "nel\u{85}x",
    "ls\u{2028}x",
    "bom\u{feff}",
    "bell\u{7}",
    "---",
    "...",
    "<<",
    "=",
    "|",
    ">",
    "a\r\nb",
];

#[test]
fn hostile_values_round_trip_through_the_yaml_helpers() {
    let hb = escape::handlebars();
    let values: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    let template = "scalar: {{yaml one}}\nlist:\n{{#each all}}\n  - {{yaml this}}\n{{/each}}\n\
                    nested:\n  block: {{yaml_block one 4}}\n";
    for v in &values {
        let data = serde_json::json!({ "one": v, "all": values });
        let text = hb.render_template(template, &data).unwrap();
        let parsed: BTreeMap<String, serde_json::Value> = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{v:?} broke the document: {e}\n{text}"));
        assert_eq!(parsed["scalar"], serde_json::json!(v), "{text}");
        assert_eq!(parsed["list"], serde_json::json!(values), "{text}");
        assert_eq!(parsed["nested"]["block"], serde_json::json!(v), "{text}");
    }
    // The same document through YAML 1.1 (PyYAML, which docker-compose uses), where yes/no/on
    // and sexagesimal numbers are not strings.
    if let Some(py) = require_pyyaml() {
        let data = serde_json::json!({ "one": "x", "all": values });
        let text = hb.render_template(template, &data).unwrap();
        let ws = Workspace::new();
        fs::write(ws.join("doc.yaml"), &text).unwrap();
        let out = ws
            .tool(&py)
            .args(["-c", "import json,yaml;print(json.dumps(yaml.safe_load(open('doc.yaml'))))"])
            .ok();
        let parsed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(parsed["list"], serde_json::json!(values), "{text}");
    }
    // A missing value is an error in strict mode, never an empty string.
    let err = hb.render_template("a: {{yaml nothere}}\n", &serde_json::json!({})).unwrap_err();
    assert!(err.to_string().contains("nothere"), "{err}");
}

#[test]
fn descriptor_round_trips_with_hostile_user_names() {
    let mut d = rich_descriptor();
    d.users = HOSTILE
        .iter()
        .filter(|u| regkit::htpasswd::validate_user(u).is_ok())
        .map(|u| u.to_string())
        .collect();
    let text = descriptor::to_yaml(&d).unwrap();
    let back = descriptor::parse(&text, Path::new("regkit.yaml")).unwrap();
    assert_eq!(back, d, "{text}");
    // Defaults fill a minimal file, the same ones Descriptor::new and init's flags give: the
    // text written for it is byte for byte what another process (`regkit init`, building its
    // descriptor from flags) wrote for the same choices.
    let min =
        descriptor::parse("hosts: [r.example.com]\nusers: [admin]\n", Path::new("x")).unwrap();
    let mut new = Descriptor::new(vec!["r.example.com".into()]);
    new.users = vec!["admin".into()];
    assert_eq!(min, new);
    let ws = Workspace::new();
    ws.regkit()
        .args(["init", "dep", "--host", "r.example.com", "--user", "admin", "--password-stdin"])
        .stdin("pw\n")
        .ok();
    let by_init = fs::read_to_string(ws.join("dep/regkit.yaml")).unwrap();
    assert_eq!(descriptor::to_yaml(&min).unwrap(), by_init);
    assert_eq!(descriptor::parse(&by_init, Path::new("x")).unwrap(), min);
}

#[test]
fn render_is_deterministic_and_leaves_unchanged_files_alone() {
    // `regkit render` in another process writes exactly what this one renders.
    let d = rich_descriptor();
    let ws = deployment(&d);
    for (rel, contents) in regkit::deploy::render_all(&d).unwrap() {
        assert_eq!(fs::read(ws.join(&rel)).unwrap(), contents, "{}", rel.display());
    }

    let ws = deployment(&Descriptor::new(vec!["registry.example.com".into()]));
    let before = snapshot(ws.path());
    let mtimes: Vec<_> =
        before.keys().map(|p| fs::metadata(ws.join(p)).unwrap().modified().unwrap()).collect();
    let r = ws.regkit().args(["render", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["changed"], serde_json::json!([]), "{r}");
    assert_eq!(report["removed"], serde_json::json!([]), "{r}");
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 11, "{r}");
    assert_eq!(snapshot(ws.path()), before);
    let after: Vec<_> =
        before.keys().map(|p| fs::metadata(ws.join(p)).unwrap().modified().unwrap()).collect();
    assert_eq!(mtimes, after, "unchanged files must not be rewritten");
    ws.regkit().arg("render").ok().stderr_has("already up to date");
}

#[test]
fn render_after_an_edit_changes_exactly_the_dependent_files() {
    let d = Descriptor::new(vec!["registry.example.com".into()]);
    let ws = deployment(&d);
    if !stand_in_secrets(&ws, &d) {
        return;
    }
    let before = snapshot(ws.path());

    let changed = |edit: &dyn Fn(&mut Descriptor), ws: &Workspace| -> Vec<String> {
        let mut d = descriptor::load(&ws.join("regkit.yaml")).unwrap();
        edit(&mut d);
        fs::write(ws.join("regkit.yaml"), descriptor::to_yaml(&d).unwrap()).unwrap();
        let r = ws.regkit().args(["render", "--json"]).ok();
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let mut v: Vec<String> = report["changed"]
            .as_array()
            .unwrap()
            .iter()
            .chain(report["removed"].as_array().unwrap())
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // The pull addresses change with the node port: the pull secret (same user and
    // password) and the trust bundle are rebuilt for the new ones.
    let addresses_moved = ["k8s/secret-pull.yaml", "trust/node-trust.tar.gz"];
    assert_eq!(
        changed(&|d| d.kubernetes.node_port = 31000, &ws),
        ["README.md", "k8s/secret-pull.yaml", "k8s/service.yaml", "trust/node-trust.tar.gz"]
    );
    assert_pull_secret(&ws, &descriptor::load(&ws.join("regkit.yaml")).unwrap());
    assert_eq!(
        changed(&|d| d.kubernetes.ingress.class = "traefik".into(), &ws),
        ["README.md", "k8s/ingress.yaml"]
    );
    assert_eq!(changed(&|d| d.compose.restart = "always".into(), &ws), ["docker-compose.yml"]);
    assert_eq!(changed(&|d| d.storage.delete = false, &ws), ["config.yml", "k8s/configmap.yaml"]);
    assert_eq!(
        changed(&|d| d.port = 5443, &ws),
        [
            "README.md",
            "config.yml",
            "docker-compose.yml",
            "k8s/configmap.yaml",
            "k8s/deployment.yaml",
            "k8s/secret-pull.yaml",
            "k8s/service.yaml",
            "trust/node-trust.tar.gz"
        ]
    );
    assert_pull_secret(&ws, &descriptor::load(&ws.join("regkit.yaml")).unwrap());
    // Switching to S3 drops the claim (a generated file) and never the secrets.
    let to_s3 = |d: &mut Descriptor| {
        d.storage.driver = Driver::S3;
        d.storage.s3 = Some(s3());
    };
    let c = changed(&to_s3, &ws);
    assert!(c.contains(&"k8s/pvc.yaml".to_string()) && !ws.join("k8s/pvc.yaml").exists(), "{c:?}");
    assert!(!fs::read_to_string(ws.join("k8s/kustomization.yaml")).unwrap().contains("pvc"));

    let after = snapshot(ws.path());
    // Keys, passwords and the secrets made from unchanged files (by kubectl, so their bytes
    // differ from regkit's own serialization) are left exactly as they were.
    for secret in [
        "pki/ca.crt",
        "pki/site.crt",
        "pki/site.key",
        "auth/htpasswd",
        "auth/http-secret.env",
        "k8s/secret-tls.yaml",
        "k8s/secret-htpasswd.yaml",
        "k8s/secret-http.yaml",
    ] {
        assert_eq!(before.get(secret), after.get(secret), "{secret} was touched");
        assert!(after.contains_key(secret), "{secret} is gone");
    }
    for moved in addresses_moved {
        assert_ne!(before.get(moved), after.get(moved), "{moved}");
    }
    assert_eq!(regkit::files::mode_of(&ws.join("pki/site.key")), Some(0o600));
    assert_eq!(regkit::files::mode_of(&ws.join("k8s/secret-pull.yaml")), Some(0o600));
    // A new htpasswd user: render carries the file into its Secret, and nothing else.
    ws.tool("htpasswd").args(["-Bb", "auth/htpasswd", "ci", "other-pw"]).ok();
    assert_eq!(changed(&|_| {}, &ws), ["k8s/secret-htpasswd.yaml"]);
    let text = fs::read_to_string(ws.join("k8s/secret-htpasswd.yaml")).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let data = BASE64.decode(v["data"]["htpasswd"].as_str().unwrap()).unwrap();
    assert_eq!(data, fs::read(ws.join("auth/htpasswd")).unwrap());
}

/// The pull secret has one entry for each pull address of `d`, all with the stand-in
/// credentials (the password read back, never changed).
fn assert_pull_secret(ws: &Workspace, d: &Descriptor) {
    let text = fs::read_to_string(ws.join("k8s/secret-pull.yaml")).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let json = BASE64.decode(v["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let auths = config["auths"].as_object().unwrap();
    let want: Vec<String> = d.pull_addresses().into_iter().map(|a| a.address).collect();
    let mut got: Vec<&String> = auths.keys().collect();
    got.sort();
    let mut want_sorted: Vec<&String> = want.iter().collect();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    for e in auths.values() {
        assert_eq!(
            (e["username"].as_str(), e["password"].as_str()),
            (Some("admin"), Some("s3cret-pw"))
        );
    }
    let listed = ws.tool("tar").args(["tzf", "trust/node-trust.tar.gz"]).ok();
    for a in &want {
        listed.stdout_has(&format!("/files/etc/docker/certs.d/{a}/ca.crt\n"));
    }
}

/// After the user's password changed in auth/htpasswd, the password in the pull Secret no
/// longer logs in: render leaves the Secret as it is (even when the addresses moved) and
/// warns with the command that rebuilds it, and that command works.
#[test]
fn render_refuses_to_carry_a_stale_pull_password_and_names_the_fix() {
    let d = Descriptor::new(vec!["registry.example.com".into()]);
    let ws = deployment(&d);
    if !stand_in_secrets(&ws, &d) {
        return;
    }
    let render = |ws: &Workspace| -> serde_json::Value {
        let r = ws.regkit().args(["render", "--json"]).ok();
        serde_json::from_str(&r.stdout).unwrap()
    };
    let changed = |v: &serde_json::Value, file: &str| {
        v["changed"].as_array().unwrap().iter().any(|c| c.as_str() == Some(file))
    };
    let mut moved = d.clone();
    moved.kubernetes.node_port = 31000;
    fs::write(ws.join("regkit.yaml"), descriptor::to_yaml(&moved).unwrap()).unwrap();
    ws.regkit()
        .args(["htpasswd", "add", "auth/htpasswd", "admin", "--password-stdin"])
        .stdin("new-pw\n")
        .ok();
    let pull_before = fs::read(ws.join("k8s/secret-pull.yaml")).unwrap();
    let report = render(&ws);
    assert!(!changed(&report, "k8s/secret-pull.yaml"), "{report}");
    assert!(changed(&report, "trust/node-trust.tar.gz"), "{report}");
    assert_eq!(fs::read(ws.join("k8s/secret-pull.yaml")).unwrap(), pull_before);
    let warnings = report["warnings"].as_array().unwrap();
    let warning = warnings
        .iter()
        .filter_map(|w| w.as_str())
        .find(|w| w.starts_with("k8s/secret-pull.yaml left as it is"))
        .unwrap_or_else(|| panic!("no pull secret warning: {report}"));
    assert!(
        warning.contains("its password for \"admin\" is not the one in auth/htpasswd"),
        "{warning}"
    );
    assert!(!warning.contains("s3cret-pw") && !warning.contains("new-pw"), "{warning}");
    // The command in the warning, with the user filled in, rebuilds it for the new addresses.
    let fix = warning.split('`').nth(1).unwrap().replace("USER", "admin");
    assert!(fix.ends_with("--out k8s/secret-pull.yaml --force"), "{fix}");
    let path = format!(
        "{}:{}",
        Path::new(env!("CARGO_BIN_EXE_regkit")).parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    ws.tool("sh").args(["-c", &fix]).env("PATH", &path).stdin("new-pw\n").ok();
    let report = render(&ws);
    assert_eq!(report["changed"], serde_json::json!([]), "{report}");
    assert!(!report["warnings"].to_string().contains("secret-pull"), "{report}");
    let text = fs::read_to_string(ws.join("k8s/secret-pull.yaml")).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let json = BASE64.decode(v["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let auths = config["auths"].as_object().unwrap();
    assert_eq!(auths.len(), moved.pull_addresses().len(), "{config}");
    assert!(auths.values().all(|e| e["password"] == "new-pw"), "{config}");

    // A pull user who is no longer in the file is reported as such.
    ws.regkit().args(["htpasswd", "delete", "auth/htpasswd", "admin"]).ok();
    moved.kubernetes.node_port = 31001;
    fs::write(ws.join("regkit.yaml"), descriptor::to_yaml(&moved).unwrap()).unwrap();
    let report = render(&ws);
    assert!(!changed(&report, "k8s/secret-pull.yaml"), "{report}");
    assert!(
        report["warnings"].to_string().contains("its user \\\"admin\\\" is not in auth/htpasswd"),
        "{report}"
    );
}

#[test]
fn descriptor_errors_name_the_key_and_line_and_write_nothing() {
    let cases: &[(&str, &str)] = &[
        ("hosts: [r.example.com]\nport: 70000\n", "regkit.yaml:2: port: expected a whole number"),
        ("hosts: [r.example.com]\nport: 0\n", "regkit.yaml:2: port: port must be between"),
        ("hosts: [r.example.com]\nport: high\n", "regkit.yaml:2: port:"),
        (
            "hosts: [r.example.com]\nkubernetes:\n  namespace: reg\n  node_port: 8080\n",
            "regkit.yaml:4: kubernetes.node_port: 8080 is outside the NodePort range",
        ),
        ("hosts:\n  - ok.example.com\n  - bad_host\n", "regkit.yaml:3: hosts[1]: invalid host"),
        (
            "hosts:\n  - \"*.example.com\"\n",
            "regkit.yaml:2: hosts[0]: \"*.example.com\": a wildcard",
        ),
        ("hosts: [r.example.com]\nips: [10.0.0.300]\n", "regkit.yaml:2: ips[0]:"),
        ("hosts: [r.example.com]\nstorage:\n  driver: gcs\n", "regkit.yaml:3: storage.driver:"),
        (
            "hosts: [r.example.com]\nstorage:\n  driver: s3\n  s3:\n    bucket: images\n",
            "regkit.yaml:4: storage.s3.region: missing",
        ),
        (
            "hosts: [r.example.com]\nstorage:\n  driver: s3\n",
            "regkit.yaml:2: storage.s3: storage.driver is s3",
        ),
        (
            "hosts: [r.example.com]\ncompose:\n  restart: sometimes\n",
            "regkit.yaml:3: compose.restart: \"sometimes\" is not one of",
        ),
        (
            "hosts: [r.example.com]\nkubernetes:\n  ingress:\n    host: other.example.com\n",
            "regkit.yaml:4: kubernetes.ingress.host: \"other.example.com\" is not in hosts",
        ),
        (
            "hosts: [r.example.com]\ntls:\n  key: k8s/service.yaml\n",
            "regkit.yaml:3: tls.key: \"k8s/service.yaml\" is a file regkit generates",
        ),
        ("hosts: [r.example.com]\nimage_name: x\n", "regkit.yaml:2: image_name: unknown field"),
        (
            "hosts: [r.example.com]\nkubernetes:\n  ingress:\n    klass: nginx\n",
            "regkit.yaml:4: kubernetes.ingress.klass: unknown field",
        ),
        (
            "hosts: [r.example.com]\nno_local_sans: maybe\n",
            "regkit.yaml:2: no_local_sans: expected true",
        ),
        ("hosts: r.example.com\n", "regkit.yaml:1: hosts: expected a list"),
        // Wrong types are refused, not coerced.
        (
            "hosts: [r.example.com]\nstorage:\n  delete: \"yes\"\n",
            "regkit.yaml:3: storage.delete: expected true or false, not the string \"yes\"",
        ),
        (
            "hosts: [r.example.com]\nport: \"5000\"\n",
            "regkit.yaml:2: port: expected a number, not the string \"5000\"",
        ),
        (
            "hosts: [r.example.com]\nno_local_sans: \"true\"\n",
            "regkit.yaml:2: no_local_sans: expected true or false, not the string \"true\"",
        ),
        (
            "hosts: [r.example.com]\nimage: 5\n",
            "regkit.yaml:2: image: expected a string, not the number 5 (quote it",
        ),
        (
            "hosts: [r.example.com]\nusers:\n  - admin\n  - true\n",
            "regkit.yaml:4: users[1]: expected a string, not a boolean",
        ),
        (
            "hosts: [r.example.com]\nkubernetes:\n  resources:\n    limits:\n      cpu: 2\n",
            "regkit.yaml:5: kubernetes.resources.limits.cpu: expected a string, not the number 2",
        ),
        (
            "hosts: [r.example.com]\nkubernetes:\n  node_port: \"31000\"\n",
            "regkit.yaml:3: kubernetes.node_port: expected a number, not the string \"31000\"",
        ),
        (
            "hosts: [r.example.com]\nkey_type: dsa\n",
            "regkit.yaml:2: key_type: unknown key type \"dsa\" (expected ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096)",
        ),
        (
            "hosts: [r.example.com]\nhttp_host: https://other.example.com\n",
            "regkit.yaml:2: http_host: \"https://other.example.com\" must be https:// and one of",
        ),
        (
            "hosts: [r.example.com]\nkubernetes:\n  ingress:\n    max_body_size: 5gb\n",
            "regkit.yaml:4: kubernetes.ingress.max_body_size: invalid size \"5gb\"",
        ),
        ("hosts: [r.example.com\n", "regkit.yaml:1:"),
    ];
    for (text, expected) in cases {
        let ws = Workspace::new();
        fs::write(ws.join("regkit.yaml"), text).unwrap();
        let r = ws.regkit().arg("render").code(2);
        r.stderr_has(expected);
        let entries: Vec<_> = fs::read_dir(ws.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "something was written for {text:?}\n{r}");
    }
    let ws = Workspace::new();
    ws.regkit().arg("render").code(2).stderr_has("regkit.yaml not found");
}

/// The proof: the rendered config.yml runs Debian's docker-registry (distribution 2.8) with
/// regkit-made certificates and an `htpasswd -B` file, and skopeo pushes an image to it and
/// pulls it back, verifying TLS against the CA and authenticating with the user.
#[test]
fn reference_registry_runs_the_rendered_config() {
    for tool in ["docker-registry", "skopeo", "buildah", "htpasswd"] {
        if !require_tool(tool) {
            return;
        }
    }
    let mut d = Descriptor::new(vec!["localhost".into()]);
    d.ips = vec!["127.0.0.1".parse().unwrap()];
    d.users = vec!["admin".into()];
    let ws = deployment(&d);
    if !stand_in_secrets(&ws, &d) {
        return;
    }
    let secret = fs::read_to_string(ws.join("auth/http-secret.env")).unwrap();
    let secret = secret.trim().strip_prefix("REGISTRY_HTTP_SECRET=").unwrap().to_string();
    let env = [
        ("REGISTRY_HTTP_SECRET", secret.into()),
        ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", ws.join("data").into()),
        ("REGISTRY_HTTP_TLS_CERTIFICATE", ws.join("pki/site.crt").into()),
        ("REGISTRY_HTTP_TLS_KEY", ws.join("pki/site.key").into()),
        ("REGISTRY_AUTH_HTPASSWD_PATH", ws.join("auth/htpasswd").into()),
    ];
    let server = registry::Reference::start(&ws, &ws.join("config.yml"), &env);
    let addr = &server.addr;

    // skopeo's cert dir holds the CA as ca.crt.
    fs::create_dir_all(ws.join("certs")).unwrap();
    fs::copy(ws.join("pki/ca.crt"), ws.join("certs/ca.crt")).unwrap();
    let certs = ws.join("certs");
    let oci = image::build(&ws);
    let src = format!("oci:{}:v1", oci.display());
    let remote = format!("docker://{addr}/regkit-test/img:v1");
    let wrong = registry::skopeo_copy(&ws, &src, &remote, &certs, Some("admin:wrong"), true);
    assert_ne!(wrong.code, Some(0), "a wrong password must be refused\n{wrong}");
    let ok = registry::skopeo_copy(&ws, &src, &remote, &certs, Some("admin:s3cret-pw"), true);
    assert_eq!(ok.code, Some(0), "push failed\n{ok}\n{}", server.log());
    fs::create_dir_all(ws.join("no-ca")).unwrap();
    ws.tool("skopeo")
        .args(["inspect", "--cert-dir", "no-ca", "--creds", "admin:s3cret-pw", &remote])
        .fails()
        .stderr_has("certificate signed by unknown authority");

    let back = ws.join("pulled");
    let dest = format!("oci:{}:v1", back.display());
    let pulled = registry::skopeo_copy(&ws, &remote, &dest, &certs, Some("admin:s3cret-pw"), false);
    assert_eq!(pulled.code, Some(0), "pull failed\n{pulled}");
    assert_eq!(image::manifest_digest(&oci), image::manifest_digest(&back), "pulled image differs");
    // The rendered storage.delete.enabled: true is in force.
    let digest = image::manifest_digest(&oci);
    ws.tool("skopeo")
        .args(["delete", "--cert-dir", "certs", "--creds", "admin:s3cret-pw"])
        .arg(format!("docker://{addr}/regkit-test/img@{digest}"))
        .ok();
}

fn rich_descriptor() -> Descriptor {
    let mut d = Descriptor::new(vec![
        "registry.example.com".into(),
        "reg.internal".into(),
        "hub.example.com".into(),
    ]);
    d.ips = vec!["192.168.1.10".parse().unwrap(), "fd00::10".parse().unwrap()];
    d.no_local_sans = true;
    d.port = 5443;
    d.users = vec!["admin".into(), "ci".into()];
    d.log_level = "debug".into();
    d.storage.driver = Driver::S3;
    d.storage.s3 = Some(s3());
    d.proxy = Some(Proxy { remoteurl: "https://registry-1.docker.io".into() });
    d.compose.restart = "always".into();
    d.kubernetes.name = "hub".into();
    d.kubernetes.namespace = "images".into();
    d.kubernetes.node_port = 32000;
    d.kubernetes.storage_class = Some("fast-ssd".into());
    d.kubernetes.ingress.class = "traefik".into();
    d.kubernetes.ingress.host = Some("hub.example.com".into());
    d.kubernetes.ingress.max_body_size = Some("5Gi".into());
    d.kubernetes.resources.limits.cpu = Some("2".into());
    d.kubernetes.resources.requests.memory = None;
    d
}

fn s3() -> S3 {
    S3 {
        bucket: "images".into(),
        region: "us-east-1".into(),
        regionendpoint: Some("http://minio.local:9000".into()),
        rootdirectory: Some("/registry".into()),
        forcepathstyle: true,
        secure: false,
    }
}

/// A workspace holding `d` as regkit.yaml and the files `regkit render` generates from it.
fn deployment(d: &Descriptor) -> Workspace {
    let ws = Workspace::new();
    fs::write(ws.join("regkit.yaml"), descriptor::to_yaml(d).unwrap()).unwrap();
    ws.regkit().arg("render").ok();
    ws
}

/// What `regkit init` writes besides the generated files, made here separately: CA and site
/// certificate with `regkit certs`, and htpasswd and the secret manifests with Apache's
/// htpasswd and kubectl, so the rendered files are checked against other tools' output.
/// False (and nothing made) when one of those tools is missing, as [`require_tool`] says.
#[must_use]
fn stand_in_secrets(ws: &Workspace, d: &Descriptor) -> bool {
    if !require_tool("htpasswd") || !require_tool("kubectl") {
        return false;
    }
    fs::create_dir_all(ws.join("pki")).unwrap();
    fs::create_dir_all(ws.join("auth")).unwrap();
    let sans: Vec<String> =
        d.hosts.iter().cloned().chain(d.ips.iter().map(ToString::to_string)).collect();
    ws.regkit().args(["certs", "ca", "--cn", "test CA"]).ok();
    ws.regkit().args(["certs", "site", "--san", &sans.join(",")]).ok();
    ws.tool("htpasswd").args(["-Bbc", "auth/htpasswd", "admin", "s3cret-pw"]).ok();
    let env = regkit::deploy::http_secret_env_file("0123456789abcdef");
    fs::write(ws.join(&d.http_secret_file), env).unwrap();
    let names = d.k8s_names();
    let ns = d.kubernetes.namespace.as_str();
    let secret = |args: &[&str], file: &str| {
        let r = ws.tool("kubectl").args(["create", "secret"]).args(args).args(["-n", ns]).args([
            "--dry-run=client",
            "-o",
            "yaml",
        ]);
        fs::write(ws.join("k8s").join(file), r.ok().stdout).unwrap();
    };
    let tls = ["tls", &names.secret_tls, "--cert", "pki/site.crt", "--key", "pki/site.key"];
    secret(&tls, "secret-tls.yaml");
    let from = "--from-file=htpasswd=auth/htpasswd";
    secret(&["generic", &names.secret_htpasswd, from], "secret-htpasswd.yaml");
    let lit = "--from-literal=http-secret=0123456789abcdef";
    secret(&["generic", &names.secret_http, lit], "secret-http.yaml");
    // One auths entry per pull address, as init writes it, serialized by kubectl.
    let auth = BASE64.encode("admin:s3cret-pw");
    let auths: serde_json::Map<String, serde_json::Value> = d
        .pull_addresses()
        .into_iter()
        .map(|a| {
            let entry =
                serde_json::json!({"username": "admin", "password": "s3cret-pw", "auth": auth});
            (a.address, entry)
        })
        .collect();
    fs::write(ws.join("auths.json"), serde_json::json!({ "auths": auths }).to_string()).unwrap();
    let pull = ["generic", &names.secret_pull, "--type=kubernetes.io/dockerconfigjson"];
    secret(
        &[&pull[..], &["--from-file=.dockerconfigjson=auths.json"]].concat(),
        "secret-pull.yaml",
    );
    fs::remove_file(ws.join("auths.json")).unwrap();
    let mut bundle = ws.regkit().args(["trust", "bundle", "--ca", "pki/ca.crt"]);
    for a in d.pull_addresses() {
        bundle = bundle.args(["--registry", &a.address]);
    }
    bundle.args(["--out", "trust/node-trust.tar.gz"]).ok();
    true
}

/// A python3 that has PyYAML (the system one, which docker-compose runs on). Like
/// `require_tool`: without one, the test fails under `CI=true` (tests/run.sh installs it) and
/// is skipped with a note otherwise.
fn require_pyyaml() -> Option<String> {
    let found = ["/usr/bin/python3", "python3"].into_iter().map(String::from).find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import yaml"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        if in_ci() {
            panic!("PyYAML is missing in CI (tests/run.sh installs it: pip install PyYAML)");
        }
        eprintln!("SKIPPED: no python3 with PyYAML; run tests/run.sh to install it");
    }
    found
}
