//! `regkit init` and the addresses nodes pull through (issue 4 follow-up): besides the
//! registry address, every host and IP with the NodePort and the Ingress host (port 443, no
//! port in references). The pull secret has one `auths` entry for each, the node trust bundle
//! installs a `certs.d` directory for each (and one k3s entry), the README lists exactly
//! them, `regkit render` rebuilds both when an address is added, and skopeo pulls through a
//! second address with that address's installed `certs.d` directory and the pull secret as
//! its auth file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::harness::{KillOnDrop, Workspace, image, registry, require_tool, wait_for_port};

const PASSWORD: &str = "s3cret-pw";

fn init(ws: &Workspace, args: &[&str]) {
    ws.regkit()
        .args(["init", "dep", "--user", "admin", "--password-stdin"])
        .args(args)
        .stdin(format!("{PASSWORD}\n"))
        .ok();
}

/// The decoded `.dockerconfigjson` of `dep/k8s/secret-pull.yaml`.
fn pull_secret_json(dep: &Path) -> serde_json::Value {
    let text = fs::read_to_string(dep.join("k8s/secret-pull.yaml")).unwrap();
    let secret: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let data = BASE64.decode(secret["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&data).unwrap()
}

fn auth_keys(config: &serde_json::Value) -> BTreeSet<String> {
    config["auths"].as_object().unwrap().keys().cloned().collect()
}

/// Unpacks `dep/trust/node-trust.tar.gz` and runs its install.sh on a fresh staging root.
fn install_bundle(ws: &Workspace, top: &str) -> PathBuf {
    let stage = ws.join("stage");
    fs::create_dir_all(&stage).unwrap();
    ws.tool("tar").args(["xzf", "dep/trust/node-trust.tar.gz"]).ok();
    let script = ws.join(top).join("install.sh");
    ws.tool("sh").arg(&script).arg("--root").arg(&stage).ok().stdout_has("created ");
    let again = ws.tool("sh").arg(&script).arg("--root").arg(&stage).ok();
    assert!(!again.stdout.contains("created") && !again.stdout.contains("updated"), "{again}");
    stage
}

#[test]
fn the_pull_secret_and_the_bundle_cover_every_address_nodes_pull_through() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    init(&ws, &["--host", "reg.example.com", "--ip", "10.0.0.5", "--node-port", "31234"]);
    let dep = ws.join("dep");
    let want =
        ["reg.example.com:5000", "reg.example.com:31234", "10.0.0.5:31234", "reg.example.com"];

    let config = pull_secret_json(&dep);
    assert_eq!(auth_keys(&config), want.iter().map(|s| s.to_string()).collect());
    for a in want {
        let e = &config["auths"][a];
        assert_eq!(
            (e["username"].as_str(), e["password"].as_str()),
            (Some("admin"), Some(PASSWORD))
        );
        assert_eq!(e["auth"], BASE64.encode(format!("admin:{PASSWORD}")), "{a}");
    }

    let stage = install_bundle(&ws, "regkit-trust-reg.example.com_5000");
    let ca = fs::read_to_string(dep.join("pki/ca.crt")).unwrap();
    for a in want {
        for client in ["docker", "containers", "containerd"] {
            let installed = stage.join(format!("etc/{client}/certs.d/{a}/ca.crt"));
            assert_eq!(fs::read_to_string(&installed).unwrap(), ca, "{}", installed.display());
        }
        let hosts: toml::Table =
            fs::read_to_string(stage.join(format!("etc/containerd/certs.d/{a}/hosts.toml")))
                .unwrap()
                .parse()
                .unwrap();
        assert_eq!(hosts["server"].as_str(), Some(format!("https://{a}").as_str()));
    }
    // The Ingress host follows Docker's port-443 rule: a directory without a port, never :443.
    assert!(!stage.join("etc/docker/certs.d/reg.example.com:443").exists());
    let k3s: serde_json::Value = serde_saphyr::from_str(
        &fs::read_to_string(stage.join("etc/rancher/k3s/registries.yaml")).unwrap(),
    )
    .unwrap();
    let configs: BTreeSet<String> = k3s["configs"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(configs, want.iter().map(|s| s.to_string()).collect());
    for a in want {
        let ca_file = k3s["configs"][a]["tls"]["ca_file"].as_str().unwrap();
        let copy = stage.join(ca_file.trim_start_matches('/'));
        assert_eq!(fs::read_to_string(&copy).unwrap(), ca, "{a}");
    }

    // The certificate names every host in those addresses.
    let san = ws.tool("openssl").args(["x509", "-noout", "-ext", "subjectAltName", "-in"]);
    let san = san.arg(dep.join("pki/site.crt")).ok();
    san.stdout_has("DNS:reg.example.com").stdout_has("IP Address:10.0.0.5");

    // The README names exactly these image references, and no longer claims more.
    let readme = fs::read_to_string(dep.join("README.md")).unwrap();
    for a in want {
        assert!(readme.contains(&format!("`{a}/REPOSITORY:TAG`")), "README lacks {a}");
    }
    assert_eq!(readme.matches("/REPOSITORY:TAG`").count(), want.len(), "{readme}");
    // localhost is not one of them here, and the README says so.
    assert!(readme.contains("or a name or IP not listed, such\n   as `localhost`)"), "{readme}");

    // After an edit that adds an address, `regkit render` rebuilds both for it: the pull
    // secret with the same credentials, the bundle with one more certs.d directory.
    let mut d = regkit::deploy::descriptor::load(&dep.join("regkit.yaml")).unwrap();
    d.ips.push("10.0.0.6".parse().unwrap());
    fs::write(dep.join("regkit.yaml"), regkit::deploy::descriptor::to_yaml(&d).unwrap()).unwrap();
    let r = ws.regkit().args(["render", "dep"]).ok();
    r.stderr_has("updated   dep/k8s/secret-pull.yaml")
        .stderr_has("updated   dep/trust/node-trust.tar.gz");
    r.stderr_has("pki/site.crt does not name 10.0.0.6");
    let rebuilt = pull_secret_json(&dep);
    let mut want_now: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    want_now.insert("10.0.0.6:31234".into());
    assert_eq!(auth_keys(&rebuilt), want_now);
    for a in &want_now {
        assert_eq!(rebuilt["auths"][a], config["auths"]["reg.example.com:5000"], "{a}");
    }
    let new_bundle = ws.join("new-bundle");
    fs::create_dir_all(&new_bundle).unwrap();
    ws.tool("tar").args(["xzf", "dep/trust/node-trust.tar.gz", "-C"]).arg(&new_bundle).ok();
    let files = new_bundle.join("regkit-trust-reg.example.com_5000/files/etc/docker/certs.d");
    let dirs: BTreeSet<String> = fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, want_now);

    // Without an Ingress, its host is not an address; the bundle's uninstall takes it all away.
    let ws2 = Workspace::new();
    init(&ws2, &["--host", "reg.example.com", "--no-ingress"]);
    let keys = auth_keys(&pull_secret_json(&ws2.join("dep")));
    assert_eq!(keys, ["reg.example.com:30500", "reg.example.com:5000"].map(String::from).into());
    let script = ws.join("regkit-trust-reg.example.com_5000/install.sh");
    ws.tool("sh").arg(&script).args(["--uninstall", "--root"]).arg(&stage).ok();
    assert!(crate::harness::snapshot(&stage).is_empty(), "{:?}", crate::harness::snapshot(&stage));
}

/// A free port in the NodePort range, so `regkit serve` can stand in for the Service.
fn free_node_port() -> u16 {
    let start = 30000 + (std::process::id() % 2000) as u16;
    (start..=32767)
        .chain(30000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 30000-32767")
}

/// The deployment's node port served by `regkit serve` on 127.0.0.1, reached as
/// `127.0.0.1:PORT` and as `localhost:PORT`: two addresses, as a NodePort reached by IP and
/// by name. Each pull uses only that address's installed `certs.d` directory and the pull
/// secret as skopeo's auth file (keys matched by host and port, as the kubelet does).
#[test]
fn skopeo_pulls_through_a_second_address_with_its_own_cert_dir_and_the_pull_secret() {
    for tool in ["skopeo", "buildah"] {
        if !require_tool(tool) {
            return;
        }
    }
    let ws = Workspace::new();
    let node_port = free_node_port();
    let np = node_port.to_string();
    init(&ws, &["--host", "localhost", "--ip", "127.0.0.1", "--node-port", &np]);
    let dep = ws.join("dep");
    let by_ip = format!("127.0.0.1:{node_port}");
    let by_name = format!("localhost:{node_port}");
    let config = pull_secret_json(&dep);
    assert!(auth_keys(&config).is_superset(&[by_ip.clone(), by_name.clone()].into()));
    // With --host localhost it is one of them: the README no longer calls it uncovered.
    let readme = fs::read_to_string(dep.join("README.md")).unwrap();
    assert!(readme.contains(&format!("`{by_name}/REPOSITORY:TAG`")), "{readme}");
    assert!(readme.contains("or a name or IP not listed) is in neither"), "{readme}");
    assert!(!readme.contains("such\n   as `localhost`"), "{readme}");
    let authfile = ws.join("secret.json");
    fs::write(&authfile, serde_json::to_vec(&config).unwrap()).unwrap();
    let stage = install_bundle(&ws, "regkit-trust-localhost_5000");

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regkit"));
    cmd.current_dir(&dep).args(["serve", "--addr", &by_ip, "--root", "data"]).args([
        "--tls-cert",
        "pki/site.crt",
        "--tls-key",
        "pki/site.key",
        "--htpasswd",
        "auth/htpasswd",
    ]);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let _server = KillOnDrop(cmd.spawn().expect("regkit serve starts"));
    wait_for_port(&by_ip);

    let oci = image::build(&ws);
    let cert_dir = |a: &str| stage.join("etc/containers/certs.d").join(a);
    let creds = format!("admin:{PASSWORD}");
    let push = registry::skopeo_copy(
        &ws,
        &format!("oci:{}:v1", oci.display()),
        &format!("docker://{by_ip}/team/app:v1"),
        &cert_dir(&by_ip),
        Some(&creds),
        true,
    );
    assert_eq!(push.code, Some(0), "{push}");

    for (i, a) in [&by_name, &by_ip].into_iter().enumerate() {
        let back = ws.join(format!("pulled-{i}"));
        let pull = ws
            .tool("skopeo")
            .args(["copy", "--authfile"])
            .arg(&authfile)
            .arg("--src-cert-dir")
            .arg(cert_dir(a))
            .arg(format!("docker://{a}/team/app:v1"))
            .arg(format!("oci:{}:v1", back.display()))
            .ok();
        assert_eq!(image::manifest_digest(&oci), image::manifest_digest(&back), "{a}\n{pull}");
    }

    // The auths key is what makes it work: with only the registry address's entry (what the
    // pull secret held before), the same pull through the node port is refused.
    let mut only_registry = config.clone();
    let auths = only_registry["auths"].as_object_mut().unwrap();
    auths.retain(|k, _| k == "localhost:5000");
    assert_eq!(auths.len(), 1);
    let narrow = ws.join("narrow.json");
    fs::write(&narrow, serde_json::to_vec(&only_registry).unwrap()).unwrap();
    let refused = ws
        .tool("skopeo")
        .args(["inspect", "--authfile"])
        .arg(&narrow)
        .arg("--cert-dir")
        .arg(cert_dir(&by_name))
        .arg(format!("docker://{by_name}/team/app:v1"))
        .fails();
    assert!(
        refused.stderr.contains("unauthorized") || refused.stderr.contains("authentication"),
        "{refused}"
    );
    // And an address outside the list has no installed directory at all.
    assert!(!cert_dir(&format!("127.0.0.2:{node_port}")).exists());
}
