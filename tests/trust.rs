//! `regkit trust`: install into a staging root and prove the tree with the real clients'
//! readers (skopeo pulling over TLS from Debian's `docker-registry`, TOML parsing of
//! hosts.toml), check that the bundle's `install.sh` builds the same tree, and that uninstall
//! removes exactly what install wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::pki::{self, Pki};
use crate::harness::{Workspace, image, registry, require_tool};

mod k3s;
mod system;

/// What uninstall leaves of the directories install created in an empty root: the rule of
/// `regkit::trust::prune` (standard directories and each client's configuration directory).
const KEPT_DIRS: &[&str] = &[
    "etc",
    "etc/containerd",
    "etc/containers",
    "etc/docker",
    "etc/rancher",
    "etc/rancher/k3s",
    "usr",
    "usr/local",
    "usr/local/share",
    "usr/local/share/ca-certificates",
];

/// The directories of `tree` (relative paths).
fn dirs_in(root: &Path) -> Vec<String> {
    tree(root).into_iter().filter(|(_, (dir, _, _))| *dir).map(|(k, _)| k).collect()
}

/// `KEPT_DIRS` without the system store's when `system` is false.
fn kept_dirs(system: bool) -> Vec<String> {
    KEPT_DIRS.iter().filter(|d| system || !d.starts_with("usr")).map(|d| d.to_string()).collect()
}

/// The test PKI, made with `regkit certs`: a CA named `regkit test CA <name>` and a site
/// certificate for 127.0.0.1 and localhost signed by it.
fn make_pki(ws: &Workspace, name: &str) -> Pki {
    pki::make(ws, name, "127.0.0.1,localhost")
}

/// Every entry under `root`: relative path -> (is a directory, mode, contents as text).
fn tree(root: &Path) -> BTreeMap<String, (bool, u32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                stack.push(e.path());
                out.insert(rel, (true, mode, String::new()));
            } else {
                out.insert(rel, (false, mode, std::fs::read_to_string(e.path()).unwrap()));
            }
        }
    }
    out
}

/// The `note: containerd reads hosts.toml ...` block of regkit's stderr (up to the next note).
fn containerd_note(stderr: &str) -> String {
    let start = stderr.find("note: containerd").expect("a containerd note");
    let rest = &stderr[start..];
    let end = rest[1..].find("\nnote: ").map_or(rest.len(), |i| i + 1);
    rest[..end].trim_end().to_string()
}

fn files_in(root: &Path) -> Vec<String> {
    tree(root).into_iter().filter(|(_, (dir, _, _))| !dir).map(|(k, _)| k).collect()
}

fn yaml(path: &Path) -> regkit::trust::yaml::Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn install(ws: &Workspace, ca: &Path, registry: &str, root: &Path) -> crate::harness::Ran {
    ws.regkit()
        .args(["trust", "install", "--ca"])
        .arg(ca)
        .args(["--registry", registry, "--root"])
        .arg(root)
        .ok()
}

fn uninstall(ws: &Workspace, ca: &Path, registry: &str, root: &Path) -> crate::harness::Cmd {
    ws.regkit()
        .args(["trust", "uninstall", "--ca"])
        .arg(ca)
        .args(["--registry", registry, "--root"])
        .arg(root)
}

fn mkdir(p: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn skopeo_pulls_over_tls_with_the_installed_cert_dir() {
    for t in ["skopeo", "buildah", "docker-registry"] {
        if !require_tool(t) {
            return;
        }
    }
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    std::fs::write(
        ws.join("config.yml"),
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: data\n\
         http:\n  addr: 127.0.0.1:5000\n",
    )
    .unwrap();
    let env = [
        ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", ws.join("data").into()),
        ("REGISTRY_HTTP_TLS_CERTIFICATE", pki.site_cert.clone().into()),
        ("REGISTRY_HTTP_TLS_KEY", pki.site_key.clone().into()),
    ];
    let server = registry::Reference::start(&ws, &ws.join("config.yml"), &env);
    let registry = server.addr.clone();

    // A one-file image in an OCI layout, built without touching the host's image store.
    let oci = image::build(&ws);
    let src = format!("oci:{}:v1", oci.display());

    let stage = mkdir(ws.join("stage"));
    install(&ws, &pki.ca, &registry, &stage);
    let cert_dir = stage.join("etc/containers/certs.d").join(&registry);
    assert!(cert_dir.join("ca.crt").is_file());

    // Without the CA the same push fails on the certificate: the cert dir is what makes it work.
    let empty = mkdir(ws.join("empty-certs"));
    let dest = format!("docker://{registry}/trust/img:v1");
    ws.tool("skopeo")
        .args(["copy", "--dest-cert-dir"])
        .arg(&empty)
        .args([&src, &dest])
        .fails()
        .stderr_has("certificate signed by unknown authority");

    ws.tool("skopeo").args(["copy", "--dest-cert-dir"]).arg(&cert_dir).args([&src, &dest]).ok();
    ws.tool("skopeo")
        .args(["copy", "--src-cert-dir"])
        .arg(&cert_dir)
        .args([&dest, "oci:pulled:v1"])
        .ok();
    let index = std::fs::read_to_string(ws.join("pulled/index.json")).unwrap();
    assert!(index.contains("application/vnd.oci.image.manifest.v1+json"), "{index}");
    // Docker's directory holds the same CA and serves skopeo just as well.
    let docker_dir = stage.join("etc/docker/certs.d").join(&registry);
    let out = ws.tool("skopeo").args(["inspect", "--cert-dir"]).arg(&docker_dir).arg(&dest).ok();
    assert!(out.stdout.contains("\"Digest\": \"sha256:"), "{out}");
}

#[test]
fn hosts_toml_has_what_containerd_reads_and_443_drops_the_port() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    for (input, dir) in [
        ("reg.example.com:5000", "reg.example.com:5000"),
        ("Reg.Example.com:443", "reg.example.com"),
        ("[::1]:5000", "[::1]:5000"),
    ] {
        let stage = mkdir(ws.join(format!("stage-{}", dir.replace([':', '[', ']'], "_"))));
        let r = ws
            .regkit()
            .args(["trust", "install", "--containerd", "--ca"])
            .arg(&pki.ca)
            .args(["--registry", input, "--root"])
            .arg(&stage)
            .ok();
        r.stderr_has("config_path = \"/etc/containerd/certs.d\"");
        let base = stage.join("etc/containerd/certs.d").join(dir);
        let hosts: toml::Table =
            std::fs::read_to_string(base.join("hosts.toml")).unwrap().parse().unwrap();
        let server = format!("https://{dir}");
        assert_eq!(hosts["server"].as_str(), Some(server.as_str()), "{input}");
        let host = hosts["host"][&server].as_table().unwrap();
        let caps: Vec<&str> =
            host["capabilities"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(caps, ["pull", "resolve", "push"]);
        let ca_on_node = host["ca"].as_str().unwrap();
        assert_eq!(ca_on_node, format!("/etc/containerd/certs.d/{dir}/ca.crt"));
        let staged_ca = stage.join(ca_on_node.trim_start_matches('/'));
        let got =
            ws.tool("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(&staged_ca).ok();
        assert!(got.stdout.contains("regkit test CA pki"), "{got}");
        assert_eq!(
            files_in(&stage).len(),
            2,
            "only containerd was selected: {:?}",
            files_in(&stage)
        );
    }

    // A config.toml that already sets config_path gets no note; a 2.x one without it gets the
    // 2.x section name.
    let stage = mkdir(ws.join("stage-cfg"));
    let cfg = mkdir(stage.join("etc/containerd")).join("config.toml");
    std::fs::write(&cfg, "version = 3\n").unwrap();
    let args = ["trust", "install", "--containerd", "--registry", "reg:5000", "--root"];
    let r = ws.regkit().args(args).arg(&stage).arg("--ca").arg(&pki.ca).ok();
    r.stderr_has("plugins.\"io.containerd.cri.v1.images\".registry");
    std::fs::write(
        &cfg,
        "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n\
         config_path = \"/etc/containerd/certs.d\"\n",
    )
    .unwrap();
    let r = ws.regkit().args(args).arg(&stage).arg("--ca").arg(&pki.ca).ok();
    assert!(!r.stderr.contains("config_path"), "{r}");
}

#[test]
fn bundle_install_sh_builds_the_same_tree_and_is_idempotent() {
    if !require_tool("shellcheck") {
        return;
    }
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let registry = "reg.example.com:5000";
    let existing = "mirrors:\n  docker.io:\n    endpoint:\n      - \"https://mirror.example:5000\"\n\
                    configs:\n    \"other.example:5000\":\n        auth:\n            username: bob\n";
    ws.regkit()
        .args(["trust", "bundle", "--all", "--ca"])
        .arg(&pki.ca)
        .args(["--registry", registry, "--out", "node.tar.gz"])
        .ok();
    let unpacked = mkdir(ws.join("unpacked"));
    ws.tool("tar").args(["xzf", "node.tar.gz", "-C"]).arg(&unpacked).ok();
    let script = unpacked.join("regkit-trust-reg.example.com_5000/install.sh");
    ws.tool("sh").arg("-n").arg(&script).ok();
    ws.tool("shellcheck").args(["-s", "sh"]).arg(&script).ok();

    for pre in [None, Some(existing)] {
        let by_regkit = mkdir(ws.join("by-regkit"));
        let by_script = mkdir(ws.join("by-script"));
        if let Some(text) = pre {
            for root in [&by_regkit, &by_script] {
                std::fs::write(mkdir(root.join("etc/rancher/k3s")).join("registries.yaml"), text)
                    .unwrap();
            }
        }
        let by_regkit_run = ws
            .regkit()
            .args(["trust", "install", "--all", "--ca"])
            .arg(&pki.ca)
            .args(["--registry", registry, "--root"])
            .arg(&by_regkit)
            .ok();
        ws.tool("sh").arg(&script).arg("--dry-run").arg("--root").arg(&by_script).ok();
        assert_eq!(files_in(&by_script).len(), usize::from(pre.is_some()), "dry run wrote files");
        let first = ws.tool("sh").arg(&script).arg("--root").arg(&by_script).ok();
        first.stdout_has("created ");
        // containerd's config_path advice, in the same words.
        let note = containerd_note(&by_regkit_run.stderr);
        assert!(note.contains("config_path = \"/etc/containerd/certs.d\""), "{by_regkit_run}");
        first.stdout_has(&note);

        let mut a = tree(&by_regkit);
        let mut b = tree(&by_script);
        let yaml_rel = "etc/rancher/k3s/registries.yaml";
        assert_eq!(yaml(&by_regkit.join(yaml_rel)), yaml(&by_script.join(yaml_rel)));
        let parsed = yaml(&by_script.join(yaml_rel));
        let configs = parsed.get("configs").unwrap();
        assert_eq!(
            configs.get(registry).unwrap().get("tls").unwrap().get("ca_file").unwrap().as_str(),
            Some("/etc/rancher/k3s/registry-ca/reg.example.com_5000.crt")
        );
        if pre.is_some() {
            assert!(configs.get("other.example:5000").is_some() && parsed.get("mirrors").is_some());
        }
        a.remove(yaml_rel);
        b.remove(yaml_rel);
        assert_eq!(a, b, "install.sh and `regkit trust install` trees differ");

        // Idempotent, both ways round: the script after regkit and regkit after the script.
        let again = ws.tool("sh").arg(&script).arg("--root").arg(&by_regkit).ok();
        assert!(!again.stdout.contains("created") && !again.stdout.contains("updated"), "{again}");
        let out = ws
            .regkit()
            .args(["trust", "install", "--all", "--json", "--ca"])
            .arg(&pki.ca)
            .args(["--registry", registry, "--root"])
            .arg(&by_script)
            .ok();
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        for f in report["files"].as_array().unwrap() {
            assert_eq!(f["change"], "unchanged", "{f}");
        }

        // Both uninstalls take it all away again, leaving the other k3s entries as they were
        // (byte for byte) and of the directories only those the pruning rule keeps.
        ws.tool("sh").arg(&script).arg("--uninstall").arg("--root").arg(&by_script).ok();
        uninstall(&ws, &pki.ca, registry, &by_regkit).arg("--all").ok();
        for root in [&by_regkit, &by_script] {
            match pre {
                None => assert_eq!(files_in(root), Vec::<String>::new()),
                Some(text) => {
                    assert_eq!(files_in(root), [yaml_rel]);
                    assert_eq!(std::fs::read_to_string(root.join(yaml_rel)).unwrap(), text);
                }
            }
            assert_eq!(dirs_in(root), kept_dirs(true), "{}", root.display());
        }
        std::fs::remove_dir_all(&by_regkit).unwrap();
        std::fs::remove_dir_all(&by_script).unwrap();
    }
}

/// One install, and one bundle, for several addresses of the same registry (the registry
/// port, a NodePort, an Ingress host on 443): a directory per address for each client, one
/// k3s entry per address, one system-store file; the bundle's install.sh builds the same
/// tree, and both uninstalls take exactly that away again.
#[test]
fn several_registry_addresses_in_one_install_and_one_bundle() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let addrs = ["reg.lan:5000", "10.0.0.5:30500", "reg.lan:443"];
    let dirs = ["reg.lan:5000", "10.0.0.5:30500", "reg.lan"];
    let existing = "configs:\n  \"other.example:5000\":\n    auth:\n      username: bob\n";
    let registry_args: Vec<&str> = addrs.iter().flat_map(|a| ["--registry", *a]).collect();
    let by_regkit = mkdir(ws.join("by-regkit"));
    let by_script = mkdir(ws.join("by-script"));
    for root in [&by_regkit, &by_script] {
        std::fs::write(mkdir(root.join("etc/rancher/k3s")).join("registries.yaml"), existing)
            .unwrap();
    }
    let out = ws
        .regkit()
        .args(["trust", "install", "--all", "--json", "--ca"])
        .arg(&pki.ca)
        .args(&registry_args)
        .arg("--root")
        .arg(&by_regkit)
        .ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["registries"], serde_json::json!(dirs));
    assert_eq!(report["system_store"], "left_to_node");
    let mut want: Vec<String> = vec!["etc/rancher/k3s/registries.yaml".into()];
    for d in dirs {
        for client in ["docker", "containers", "containerd"] {
            want.push(format!("etc/{client}/certs.d/{d}/ca.crt"));
        }
        want.push(format!("etc/containerd/certs.d/{d}/hosts.toml"));
        want.push(format!("etc/rancher/k3s/registry-ca/{}.crt", d.replace(':', "_")));
    }
    want.push("usr/local/share/ca-certificates/regkit-reg.lan_5000.crt".into());
    want.sort();
    assert_eq!(files_in(&by_regkit), want);
    let configs = yaml(&by_regkit.join("etc/rancher/k3s/registries.yaml"));
    let configs = configs.get("configs").unwrap();
    assert!(configs.get("other.example:5000").is_some());
    for d in dirs {
        let ca_file = configs.get(d).unwrap().get("tls").unwrap().get("ca_file").unwrap();
        let expected = format!("/etc/rancher/k3s/registry-ca/{}.crt", d.replace(':', "_"));
        assert_eq!(ca_file.as_str(), Some(expected.as_str()));
    }

    ws.regkit()
        .args(["trust", "bundle", "--all", "--ca"])
        .arg(&pki.ca)
        .args(&registry_args)
        .args(["--out", "multi.tar.gz"])
        .ok()
        .stdout_has("for reg.lan:5000, 10.0.0.5:30500, reg.lan");
    ws.tool("tar").args(["xzf", "multi.tar.gz"]).ok();
    let script = ws.join("regkit-trust-reg.lan_5000/install.sh");
    let dry = ws.tool("sh").arg(&script).args(["--dry-run", "--root"]).arg(&by_script).ok();
    assert_eq!(dry.stdout.matches("registries.yaml (k3s)").count(), 1, "{dry}");
    dry.stdout_has("would update ");
    assert_eq!(files_in(&by_script), ["etc/rancher/k3s/registries.yaml"]);
    ws.tool("sh").arg(&script).arg("--root").arg(&by_script).ok();
    let yaml_rel = "etc/rancher/k3s/registries.yaml";
    assert_eq!(yaml(&by_regkit.join(yaml_rel)), yaml(&by_script.join(yaml_rel)));
    let (mut a, mut b) = (tree(&by_regkit), tree(&by_script));
    a.remove(yaml_rel);
    b.remove(yaml_rel);
    assert_eq!(a, b, "install.sh and `regkit trust install` trees differ");
    let again = ws.tool("sh").arg(&script).arg("--root").arg(&by_regkit).ok();
    assert!(!again.stdout.contains("created") && !again.stdout.contains("updated"), "{again}");

    let before: regkit::trust::yaml::Value = serde_saphyr::from_str(existing).unwrap();
    ws.tool("sh").arg(&script).args(["--uninstall", "--root"]).arg(&by_script).ok();
    ws.regkit()
        .args(["trust", "uninstall", "--all", "--ca"])
        .arg(&pki.ca)
        .args(&registry_args)
        .arg("--root")
        .arg(&by_regkit)
        .ok();
    for root in [&by_regkit, &by_script] {
        assert_eq!(files_in(root), [yaml_rel], "{}", root.display());
        assert_eq!(yaml(&root.join(yaml_rel)), before);
        assert_eq!(std::fs::read_to_string(root.join(yaml_rel)).unwrap(), existing);
        assert_eq!(dirs_in(root), kept_dirs(true), "{}", root.display());
    }
}

#[test]
fn uninstall_removes_exactly_what_install_wrote() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let registry = "10.0.0.7:5000";

    // A clean root: no file is left, and of the directories only the clients'
    // configuration directories and their parents (the pruning rule's list).
    let clean = mkdir(ws.join("clean"));
    install(&ws, &pki.ca, registry, &clean);
    assert_eq!(files_in(&clean).len(), 6, "{:?}", files_in(&clean));
    let dry = uninstall(&ws, &pki.ca, registry, &clean).arg("--dry-run").ok();
    dry.stdout_has("would remove empty directory ").stdout_has("/etc/docker/certs.d\n");
    let out = uninstall(&ws, &pki.ca, registry, &clean).arg("--json").ok();
    assert_eq!(files_in(&clean), Vec::<String>::new());
    assert_eq!(dirs_in(&clean), kept_dirs(false));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // Per client certs.d/10.0.0.7:5000 and certs.d (three clients), and k3s's registry-ca.
    assert_eq!(report["removed_dirs"].as_array().unwrap().len(), 7, "{report:#}");

    // A lived-in root: other registries, a client cert beside ours, k3s settings with
    // comments.
    let root = mkdir(ws.join("root"));
    let k3s_yaml = "# node registries\nmirrors:\n  docker.io:\n    endpoint:\n      - \
                    https://mirror.example\n\nconfigs:\n  \"10.0.0.7:5000\":   # ours\n    \
                    auth:\n      username: robot\n      password: s3cret # rotate\n";
    let other = mkdir(root.join("etc/docker/certs.d/other.example:5000")).join("ca.crt");
    std::fs::write(&other, "not ours\n").unwrap();
    let client_cert = mkdir(root.join("etc/containers/certs.d").join(registry)).join("client.cert");
    std::fs::write(&client_cert, "client\n").unwrap();
    std::fs::write(mkdir(root.join("etc/rancher/k3s")).join("registries.yaml"), k3s_yaml).unwrap();
    let before = tree(&root);

    install(&ws, &pki.ca, registry, &root);
    let merged_text =
        std::fs::read_to_string(root.join("etc/rancher/k3s/registries.yaml")).unwrap();
    for comment in ["# node registries\n", "   # ours\n", "s3cret # rotate\n"] {
        assert!(merged_text.contains(comment), "{comment:?} lost:\n{merged_text}");
    }
    let merged = yaml(&root.join("etc/rancher/k3s/registries.yaml"));
    let entry = merged.get("configs").unwrap().get(registry).unwrap();
    assert_eq!(entry.get("auth").unwrap().get("password").unwrap().as_str(), Some("s3cret"));
    assert!(entry.get("tls").unwrap().get("ca_file").is_some());

    // A different CA is not ours to remove: exit 1, nothing touched.
    let other_pki = make_pki(&ws, "other");
    let snapshot = tree(&root);
    uninstall(&ws, &other_pki.ca, registry, &root).code(1).stdout_has("left alone");
    assert_eq!(tree(&root), snapshot);
    // The same holds for the uninstall of a bundle made for the other CA.
    ws.regkit()
        .args(["trust", "bundle", "--ca"])
        .arg(&other_pki.ca)
        .args(["--registry", registry, "--out", "other.tar.gz"])
        .ok();
    ws.tool("tar").args(["xzf", "other.tar.gz"]).ok();
    let script = ws.join("regkit-trust-10.0.0.7_5000/install.sh");
    let r = ws.tool("sh").arg(&script).args(["--uninstall", "--root"]).arg(&root).code(1);
    r.stderr_has("the CA beside it is another one")
        .stderr_has("its CA copy for 10.0.0.7:5000 is another one");
    assert_eq!(tree(&root), snapshot);

    let dry = uninstall(&ws, &pki.ca, registry, &root).arg("--dry-run").ok();
    dry.stdout_has("would remove ").stdout_has("would update ");
    assert_eq!(tree(&root), snapshot);
    uninstall(&ws, &pki.ca, registry, &root).ok();
    // Everything as before, registries.yaml byte for byte with its comments; the one
    // directory more is containerd's configuration directory, which install created and the
    // rule keeps. The directory holding the user's client cert stays with it.
    let mut after = tree(&root);
    let added = after.remove("etc/containerd").expect("etc/containerd is kept");
    assert!(added.0, "etc/containerd is a directory");
    assert_eq!(after, before);
    assert!(client_cert.exists() && other.exists());
    uninstall(&ws, &pki.ca, registry, &root).ok().stdout_has("not present");
}

/// The directories a run of uninstall reports removing (or, on a dry run, would remove).
fn pruned(stdout: &str) -> std::collections::BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("would remove empty directory ")
                .or_else(|| l.strip_prefix("removed empty directory "))
        })
        .map(str::to_string)
        .collect()
}

/// `regkit trust uninstall --dry-run` and the bundle's `install.sh --uninstall --dry-run` name
/// the same directories, and each real uninstall then removes exactly those: in a clean root
/// with two addresses sharing the certs.d directories, and in a root where other entries (a
/// client cert, another registry, a hidden file, an empty directory) keep some of them.
#[test]
fn uninstall_dry_runs_of_regkit_and_install_sh_name_the_same_directories() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let addrs = ["reg.lan:5000", "reg.lan:443"];
    let with_addrs = |mut cmd: crate::harness::Cmd| {
        for a in addrs {
            cmd = cmd.args(["--registry", a]);
        }
        cmd
    };
    let bundle = ws.regkit().args(["trust", "bundle", "--all", "--ca"]).arg(&pki.ca);
    with_addrs(bundle).args(["--out", "b.tar.gz"]).ok();
    ws.tool("tar").args(["xzf", "b.tar.gz"]).ok();
    let script = ws.join("regkit-trust-reg.lan_5000/install.sh");
    let regkit = |verb: &str, root: &Path| {
        let cmd = ws.regkit().args(["trust", verb, "--all", "--ca"]).arg(&pki.ca);
        with_addrs(cmd).arg("--root").arg(root)
    };
    let lived_in = |root: &Path| {
        std::fs::write(mkdir(root.join("etc/containers/certs.d/reg.lan")).join("client.cert"), "c")
            .unwrap();
        std::fs::write(mkdir(root.join("etc/docker/certs.d/other:5000")).join("ca.crt"), "o")
            .unwrap();
        std::fs::write(root.join("etc/rancher/k3s/registry-ca/.keep"), "").unwrap();
        mkdir(root.join("etc/containerd/certs.d/empty"));
    };
    for (name, extra) in [("clean", None), ("lived-in", Some(&lived_in))] {
        let (a, b) = (mkdir(ws.join(format!("a-{name}"))), mkdir(ws.join(format!("b-{name}"))));
        for root in [&a, &b] {
            regkit("install", root).ok();
            if let Some(extra) = extra {
                extra(root);
            }
        }
        let by_regkit = pruned(&regkit("uninstall", &a).arg("--dry-run").ok().stdout);
        let dry = ws.tool("sh").arg(&script).args(["--uninstall", "--dry-run", "--root"]);
        let by_script = pruned(&dry.arg(&b).ok().stdout);
        let by_script: std::collections::BTreeSet<String> =
            by_script.iter().map(|d| d.replacen(&*b.display().to_string(), "", 1)).collect();
        let by_regkit_rel: std::collections::BTreeSet<String> =
            by_regkit.iter().map(|d| d.replacen(&*a.display().to_string(), "", 1)).collect();
        assert_eq!(by_regkit_rel, by_script, "{name}");
        let want: &[&str] = match name {
            "clean" => &[
                "/etc/docker/certs.d/reg.lan:5000",
                "/etc/docker/certs.d/reg.lan",
                "/etc/docker/certs.d",
                "/etc/containerd/certs.d/reg.lan:5000",
                "/etc/containerd/certs.d/reg.lan",
                "/etc/containerd/certs.d",
                "/etc/containers/certs.d/reg.lan:5000",
                "/etc/containers/certs.d/reg.lan",
                "/etc/containers/certs.d",
                "/etc/rancher/k3s/registry-ca",
            ],
            _ => &[
                "/etc/docker/certs.d/reg.lan:5000",
                "/etc/docker/certs.d/reg.lan",
                "/etc/containerd/certs.d/reg.lan:5000",
                "/etc/containerd/certs.d/reg.lan",
                "/etc/containers/certs.d/reg.lan:5000",
            ],
        };
        assert_eq!(by_script, want.iter().map(|d| d.to_string()).collect(), "{name}");
        // The real runs remove what their dry runs named, and nothing else.
        assert_eq!(pruned(&regkit("uninstall", &a).ok().stdout), by_regkit, "{name}");
        let real = ws.tool("sh").arg(&script).args(["--uninstall", "--root"]).arg(&b).ok();
        let real: std::collections::BTreeSet<String> = pruned(&real.stdout)
            .iter()
            .map(|d| d.replacen(&*b.display().to_string(), "", 1))
            .collect();
        assert_eq!(real, by_script, "{name}");
        assert_eq!(dirs_in(&a), dirs_in(&b), "{name}");
    }
}

#[test]
fn install_is_idempotent_and_refuses_what_it_did_not_write() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let registry = "reg.example.com:5000";
    let root = mkdir(ws.join("root"));

    let dry = ws
        .regkit()
        .args(["trust", "install", "--dry-run", "--ca"])
        .arg(&pki.ca)
        .args(["--registry", registry, "--root"])
        .arg(&root)
        .ok();
    dry.stdout_has("would create ");
    assert_eq!(files_in(&root), Vec::<String>::new());

    install(&ws, &pki.ca, registry, &root).stdout_has("created ");
    let first = tree(&root);
    let again = install(&ws, &pki.ca, registry, &root);
    assert!(!again.stdout.contains("created"), "{again}");
    again.stdout_has("already in place");
    assert_eq!(tree(&root), first);

    // Another CA in the way: refused before anything is written, then replaced with --force.
    let other = make_pki(&ws, "other");
    let fresh = mkdir(ws.join("fresh"));
    let docker_ca = mkdir(fresh.join("etc/docker/certs.d").join(registry)).join("ca.crt");
    std::fs::copy(&other.ca, &docker_ca).unwrap();
    let args = ["trust", "install", "--ca"];
    let r =
        ws.regkit().args(args).arg(&pki.ca).args(["--registry", registry, "--root"]).arg(&fresh);
    r.code(2).stderr_has("already exists with different content (pass --force");
    assert_eq!(files_in(&fresh), ["etc/docker/certs.d/reg.example.com:5000/ca.crt"]);
    let r =
        ws.regkit().args(args).arg(&pki.ca).args(["--registry", registry, "--root"]).arg(&fresh);
    r.arg("--force").ok().stdout_has("replaced ");
    assert_eq!(
        std::fs::read(&docker_ca).unwrap(),
        std::fs::read(root.join("etc/docker/certs.d/reg.example.com:5000/ca.crt")).unwrap()
    );

    // --system on a staging root writes the .crt and leaves update-ca-certificates to the node.
    let sys = mkdir(ws.join("sys"));
    let r = ws
        .regkit()
        .args(["trust", "install", "--system", "--json", "--ca"])
        .arg(&pki.ca)
        .args(["--registry", "[fd00::7]:5000", "--root"])
        .arg(&sys)
        .ok();
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["system_store"], "left_to_node");
    assert_eq!(files_in(&sys), ["usr/local/share/ca-certificates/regkit-fd00__7_5000.crt"]);
}

#[test]
fn bad_inputs_fail_with_one_clear_line() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let root = mkdir(ws.join("root"));
    for (registry, msg) in [
        ("https://reg:5000", "has a scheme"),
        ("reg:5000/team/app", "contains '/'"),
        ("reg:70000", "use 1 to 65535"),
        ("::1:5000", "in brackets, [::1] or [::1]:5000"),
        ("under_score", "not valid"),
    ] {
        let r = ws
            .regkit()
            .args(["trust", "install", "--ca"])
            .arg(&pki.ca)
            .args(["--registry", registry, "--root"])
            .arg(&root)
            .code(2);
        r.stderr_has(msg).stderr_has("--registry");
    }
    // A registries.yaml that is not YAML: named, nothing written.
    let broken = mkdir(ws.join("broken"));
    std::fs::write(mkdir(broken.join("etc/rancher/k3s")).join("registries.yaml"), "a: [\n")
        .unwrap();
    let r = ws.regkit().args(["trust", "install", "--ca"]).arg(&pki.ca);
    let r = r.args(["--registry", "reg:5000", "--root"]).arg(&broken).code(2);
    r.stderr_has("broken/etc/rancher/k3s/registries.yaml: is not valid YAML");
    assert_eq!(files_in(&broken), ["etc/rancher/k3s/registries.yaml"]);
    // A leaf certificate is accepted with a warning: clients will not anchor on it.
    let r = ws.regkit().args(["trust", "install", "--docker", "--dry-run", "--ca"]);
    let r = r.arg(&pki.site_cert).args(["--registry", "reg:5000", "--root"]).arg(&root).ok();
    r.stderr_has("which is not a CA certificate");
    let key = pki.site_key.clone();
    let r = ws.regkit().args(["trust", "install", "--ca"]).arg(&key);
    r.args(["--registry", "reg:5000", "--root"]).arg(&root).code(2).stderr_has("PRIVATE KEY");
    let r = ws.regkit().args(["trust", "install", "--ca"]).arg(&pki.ca);
    r.args(["--registry", "reg:5000", "--root", "no-such-dir"])
        .code(2)
        .stderr_has("not a directory");
    let r = ws.regkit().args(["trust", "bundle", "--ca"]).arg(&pki.ca);
    r.args(["--registry", "reg:5000", "--out", "b.tgz"]).ok();
    let r = ws.regkit().args(["trust", "bundle", "--ca"]).arg(&pki.ca);
    r.args(["--registry", "reg:5000", "--out", "b.tgz"]).code(2).stderr_has("already exists");
    assert_eq!(files_in(&root), Vec::<String>::new());
}
