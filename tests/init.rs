//! `regkit init` (issue 4): the folder it writes runs Debian's docker-registry and serves
//! skopeo with the generated CA and credentials; docker-compose, kubernetes-validate and
//! kubectl accept what it writes; re-runs, --force and --keep-ca behave as documented; bad
//! input leaves nothing behind; the trust bundle installs; prompts appear only on a terminal.

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use regkit::deploy::descriptor;

use crate::harness::terminal::on_terminal;
use crate::harness::{Workspace, image, registry, require_tool, snapshot};

mod atomic;
mod flags;
mod namespace;

const PASSWORD: &str = "s3cret-pw";

/// `regkit init dep --host reg.example.com --user admin --password-stdin` plus `extra`.
fn init(ws: &Workspace, extra: &[&str]) -> crate::harness::Ran {
    ws.regkit()
        .args(["init", "dep", "--host", "reg.example.com", "--user", "admin", "--password-stdin"])
        .args(extra)
        .stdin(format!("{PASSWORD}\n"))
        .ok()
}

fn yaml(path: &Path) -> serde_json::Value {
    serde_saphyr::from_str(&fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn secret_data(path: &Path, key: &str) -> Vec<u8> {
    let v = yaml(path);
    BASE64.decode(v["data"][key].as_str().unwrap()).unwrap()
}

/// The proof that the deployment is real: the generated config.yml, certificates and
/// htpasswd run Debian's docker-registry (container paths pointed at the folder with the
/// `REGISTRY_*` overrides the README gives), and skopeo pushes and pulls through TLS that
/// verifies against pki/ca.crt alone, with the generated credentials.
#[test]
fn the_deployment_runs_the_reference_registry_and_serves_skopeo() {
    for tool in ["docker-registry", "skopeo", "buildah"] {
        if !require_tool(tool) {
            return;
        }
    }
    let ws = Workspace::new();
    init(&ws, &[]);
    let dep = ws.join("dep");
    for (file, mode) in [
        ("pki/ca.key", 0o600),
        ("pki/site.key", 0o600),
        ("auth/http-secret.env", 0o600),
        ("auth/htpasswd", 0o640),
        ("k8s/secret-pull.yaml", 0o600),
        ("pki/ca.crt", 0o644),
    ] {
        assert_eq!(regkit::files::mode_of(&dep.join(file)), Some(mode), "{file}");
    }
    let env_file = fs::read_to_string(dep.join("auth/http-secret.env")).unwrap();
    let (name, secret) = env_file.trim().split_once('=').unwrap();
    assert_eq!((name, secret.len()), ("REGISTRY_HTTP_SECRET", 64));
    // Run exactly the command the deployment's README gives (only the listen address is
    // overridden, to a free loopback port), with regkit and with the reference registry: the
    // same config.yml and environment run both.
    let readme = fs::read_to_string(dep.join("README.md")).unwrap();
    let from = readme.find("env $(cat").expect("README has the serve command");
    let last = "regkit serve config.yml";
    let to = from + readme[from..].find(last).unwrap() + last.len();
    let script = &readme[from..to];
    let regkit_bin = env!("CARGO_BIN_EXE_regkit");
    let oci = image::build(&ws);
    for (label, script) in [
        ("regkit serve", script.replace(last, &format!("{regkit_bin} serve config.yml"))),
        ("docker-registry", script.replace(last, "docker-registry serve config.yml")),
    ] {
        push_and_pull_with_skopeo(&ws, &dep, &oci, label, &script);
    }
}

/// Starts `script` in the deployment folder and proves the deployment with skopeo: a wrong
/// password is refused, a push and a pull with pki/ca.crt alone succeed, and without the CA
/// TLS fails.
fn push_and_pull_with_skopeo(ws: &Workspace, dep: &Path, oci: &Path, label: &str, script: &str) {
    let server = registry::Reference::start_shell(ws, dep, script);
    // 127.0.0.1 is in the certificate because init adds the local SANs.
    let addr = &server.addr;

    let certs = ws.join("certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(dep.join("pki/ca.crt"), certs.join("ca.crt")).unwrap();
    let src = format!("oci:{}:v1", oci.display());
    let remote = format!("docker://{addr}/team/app:v1");
    let creds = format!("admin:{PASSWORD}");
    let wrong = registry::skopeo_copy(ws, &src, &remote, &certs, Some("admin:nope"), true);
    assert_ne!(wrong.code, Some(0), "{label}: a wrong password must be refused\n{wrong}");
    let push = registry::skopeo_copy(ws, &src, &remote, &certs, Some(&creds), true);
    assert_eq!(push.code, Some(0), "{label}: push failed\n{push}\n{}", server.log());
    let back = ws.join(format!("pulled-{}", label.replace(' ', "-")));
    let dest = format!("oci:{}:v1", back.display());
    let pull = registry::skopeo_copy(ws, &remote, &dest, &certs, Some(&creds), false);
    assert_eq!(pull.code, Some(0), "{label}: pull failed\n{pull}");
    assert_eq!(image::manifest_digest(oci), image::manifest_digest(&back), "{label}");
    // Without the CA, TLS fails: the generated CA is what makes it work.
    let empty = ws.join("no-ca");
    fs::create_dir_all(&empty).unwrap();
    registry::skopeo_copy(ws, &remote, &dest, &empty, Some(&creds), false)
        .stderr_has("certificate signed by unknown authority");
}

#[test]
fn compose_and_every_manifest_validate_and_the_secrets_hold_the_credentials() {
    for tool in ["docker-compose", "kubectl", "kubernetes-validate", "htpasswd"] {
        if !require_tool(tool) {
            return;
        }
    }
    let ws = Workspace::new();
    init(&ws, &["--ip", "192.168.1.10", "--namespace", "images", "--node-port", "31234"]);
    let dep = ws.join("dep");
    let compose = ws.tool("docker-compose").args(["-f", "dep/docker-compose.yml", "config"]).ok();
    compose.stdout_has("published: 5000").stdout_has("image: registry:2");

    let mut files: Vec<String> = fs::read_dir(dep.join("k8s"))
        .unwrap()
        .map(|e| format!("dep/k8s/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| !f.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    assert_eq!(files.iter().filter(|f| f.contains("/secret-")).count(), 4, "{files:?}");
    let r = ws.tool("kubernetes-validate").arg("--strict").args(&files).ok();
    assert!(!r.stdout.contains("ERROR") && !r.stderr.contains("ERROR"), "{r}");
    let built = ws.tool("kubectl").args(["kustomize", "dep/k8s"]).ok();
    assert_eq!(built.stdout.matches("kind: Secret\n").count(), 4, "{built}");
    built.stdout_has("nodePort: 31234").stdout_has("namespace: images");

    let docker = secret_data(&dep.join("k8s/secret-pull.yaml"), ".dockerconfigjson");
    let config: serde_json::Value = serde_json::from_slice(&docker).unwrap();
    let entry = &config["auths"]["reg.example.com:5000"];
    assert_eq!(entry["username"], "admin");
    assert_eq!(entry["password"], PASSWORD);
    assert_eq!(entry["auth"], BASE64.encode(format!("admin:{PASSWORD}")));
    assert_eq!(yaml(&dep.join("k8s/secret-pull.yaml"))["metadata"]["namespace"], "images");
    let htpasswd = secret_data(&dep.join("k8s/secret-htpasswd.yaml"), "htpasswd");
    assert_eq!(htpasswd, fs::read(dep.join("auth/htpasswd")).unwrap());
    ws.tool("htpasswd").args(["-vb", "dep/auth/htpasswd", "admin", PASSWORD]).ok();
    let http = secret_data(&dep.join("k8s/secret-http.yaml"), "http-secret");
    let env = fs::read_to_string(dep.join("auth/http-secret.env")).unwrap();
    assert_eq!(env, format!("REGISTRY_HTTP_SECRET={}\n", String::from_utf8(http).unwrap()));
    let tls = secret_data(&dep.join("k8s/secret-tls.yaml"), "tls.crt");
    assert_eq!(tls, fs::read(dep.join("pki/site.crt")).unwrap());
    // The password is nowhere in clear outside the pull secret.
    for f in snapshot(&dep).keys().filter(|f| !f.ends_with("secret-pull.yaml")) {
        let text = fs::read(dep.join(f)).unwrap();
        assert!(!text.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "{f}");
    }
}

#[test]
fn a_rerun_without_force_changes_nothing_and_says_so() {
    let ws = Workspace::new();
    let first = init(&ws, &["--ip", "10.1.2.3"]);
    first.stderr_has("Created the deployment").stderr_has("docker login reg.example.com:5000");
    let dep = ws.join("dep");
    let before = snapshot(&dep);
    let mtime = fs::metadata(dep.join("pki/site.crt")).unwrap().modified().unwrap();

    init(&ws, &["--ip", "10.1.2.3"]).stderr_has("already initialised");
    assert!(!init(&ws, &["--ip", "10.1.2.3"]).stderr.contains("differ"));
    let r = init(&ws, &["--ip", "10.1.2.3", "--node-port", "31000"]);
    r.stderr_has("already initialised").stderr_has("kubernetes.node_port");
    let r = ws.regkit().args(["init", "dep", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "unchanged");
    assert_eq!(v["differences"], serde_json::json!([]), "no flags: nothing to compare");
    assert_eq!(snapshot(&dep), before, "a re-run changed files");
    assert_eq!(fs::metadata(dep.join("pki/site.crt")).unwrap().modified().unwrap(), mtime);
}

/// The next steps are commands to paste: a folder and a user name with spaces and quotes in
/// them are quoted, and the `cd` and `kubectl` lines run as printed.
#[test]
fn next_steps_quote_the_folder_and_the_user() {
    if !require_tool("kubectl") {
        return;
    }
    let ws = Workspace::new();
    let dir = "my dep's";
    let r = ws
        .regkit()
        .args(["init", dir, "--host", "reg.example.com", "--user", "ci bot", "--password-stdin"])
        .stdin(format!("{PASSWORD}\n"))
        .ok();
    let line = |label: &str| -> String {
        let l = r.stderr.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("{r}"));
        l.split_once(label).unwrap().1.trim().to_string()
    };
    assert_eq!(line("1. Start it:"), "cd 'my dep'\\''s' && docker-compose up -d");
    assert_eq!(line("3. Log in:"), "docker login reg.example.com:5000 -u 'ci bot'");
    let apply = line("4. Kubernetes:");
    assert_eq!(apply, "kubectl apply -k 'my dep'\\''s/k8s'");
    let cd = line("1. Start it:").replace("docker-compose up -d", "pwd");
    let pwd = ws.tool("sh").args(["-c", &cd]).ok();
    assert_eq!(Path::new(pwd.stdout.trim()).file_name().unwrap(), dir);
    // kustomize builds what `apply -k` would send, from the folder as the line quotes it.
    let build = apply.replace("kubectl apply -k", "kubectl kustomize");
    ws.tool("sh").args(["-c", &build]).ok().stdout_has("kind: Deployment");
}

#[test]
fn force_regenerates_everything_and_replaces_the_ca_unless_keep_ca() {
    let ws = Workspace::new();
    init(&ws, &[]);
    let dep = ws.join("dep");
    let read = |f: &str| fs::read(dep.join(f)).unwrap();
    let (ca, site, secret) =
        (read("pki/ca.crt"), read("pki/site.crt"), read("auth/http-secret.env"));

    let r = init(
        &ws,
        &["--force", "--keep-ca", "--host", "reg2.example.com", "--storage", "s3"]
            .into_iter()
            .chain(["--s3-bucket", "images", "--s3-region", "eu-west-1"])
            .collect::<Vec<_>>(),
    );
    r.stderr_has("Regenerated").stderr_has("reused").stderr_has("removed   k8s/pvc.yaml");
    assert_eq!(read("pki/ca.crt"), ca, "--keep-ca kept the CA");
    assert_ne!(read("pki/site.crt"), site);
    assert_ne!(read("auth/http-secret.env"), secret);
    assert!(!dep.join("k8s/pvc.yaml").exists());
    let d = descriptor::load(&dep.join("regkit.yaml")).unwrap();
    assert_eq!(d.hosts, ["reg.example.com", "reg2.example.com"]);
    assert_eq!(d.storage.s3.unwrap().bucket, "images");
    let inspect = ws.regkit().args(["certs", "inspect", "dep/pki/site.crt", "--json"]).ok();
    inspect.stdout_has("reg2.example.com");

    let r = init(&ws, &["--force", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["status"].as_str(), v["ca"].as_str()), (Some("regenerated"), Some("replaced")));
    r.stderr_has("was replaced: every node must trust the new one");
    assert_ne!(read("pki/ca.crt"), ca, "--force replaces the CA");
    ws.regkit().args(["certs", "verify", "dep/pki/site.crt", "--ca", "dep/pki/ca.crt"]).ok();
}

#[test]
fn a_ca_already_in_the_folder_is_reused_and_a_broken_one_is_refused() {
    if !require_tool("openssl") {
        return;
    }
    let ws = Workspace::new();
    // An openssl-made CA (interop: regkit signs with a CA it did not make).
    fs::create_dir_all(ws.join("dep/pki")).unwrap();
    ws.tool("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .args(["-nodes", "-keyout", "dep/pki/ca.key", "-out", "dep/pki/ca.crt", "-days", "30"])
        .args(["-subj", "/CN=Company CA", "-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign"])
        .ok();
    let ca = fs::read(ws.join("dep/pki/ca.crt")).unwrap();
    init(&ws, &[]).stderr_has("(reused;");
    assert_eq!(fs::read(ws.join("dep/pki/ca.crt")).unwrap(), ca);
    ws.tool("openssl")
        .args(["verify", "-CAfile", "dep/pki/ca.crt", "dep/pki/site.crt"])
        .ok()
        .stdout_has("OK");

    // Half a CA, or one whose key does not match: refused, nothing written.
    let ws = Workspace::new();
    ws.regkit().args(["certs", "ca", "--out", "dep/pki"]).ok();
    ws.regkit().args(["certs", "ca", "--out", "other"]).ok();
    fs::copy(ws.join("other/ca.key"), ws.join("dep/pki/ca.key")).unwrap();
    let before = snapshot(&ws.join("dep"));
    let r = ws
        .regkit()
        .args(["init", "dep", "--host", "r.example.com", "--user", "a", "--password-stdin"])
        .stdin("pw\n")
        .code(2);
    r.stderr_has("cannot reuse the CA in dep/pki").stderr_has("does not match");
    assert_eq!(snapshot(&ws.join("dep")), before);
    fs::remove_file(ws.join("dep/pki/ca.key")).unwrap();
    let r = ws
        .regkit()
        .args(["init", "dep", "--host", "r.example.com", "--user", "a", "--password-stdin"])
        .stdin("pw\n")
        .code(2);
    r.stderr_has("ca.key is missing");
    assert_eq!(
        leftovers(&ws),
        ["dep/", "dep/pki/", "dep/pki/ca.crt", "other/", "other/ca.crt", "other/ca.key"]
    );
}

#[test]
fn bad_input_fails_naming_the_flag_and_leaves_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["--host", "bad_host"], "--host: invalid host name \"bad_host\""),
        (&["--host", "*.example.com"], "--host: \"*.example.com\": a wildcard"),
        (&["--ip", "10.0.0.300"], "invalid value '10.0.0.300' for '--ip <ADDR>'"),
        (&["--port", "70000"], "invalid value '70000' for '--port <PORT>'"),
        (&["--port", "0"], "'--port <PORT>'"),
        (&["--node-port", "8080"], "--node-port: 8080 is outside the NodePort range 30000-32767"),
        (&["--storage", "gcs"], "invalid value 'gcs' for '--storage <DRIVER>'"),
        (&["--storage", "s3"], "--s3-bucket: missing"),
        (&["--storage", "s3", "--s3-bucket", "images"], "--s3-region: missing"),
        (&["--s3-bucket", "images"], "--s3-* options need --storage s3"),
        (&["--namespace", "Bad_NS"], "--namespace: invalid namespace"),
        (
            &["--key-type", "dsa"],
            "'--key-type <TYPE>': unknown key type \"dsa\" (expected ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096)",
        ),
        (&["--keep-ca"], "--force"),
    ];
    for (extra, expected) in cases {
        let ws = Workspace::new();
        let r = ws
            .regkit()
            .args(["init", "dep", "--user", "admin", "--password-stdin"])
            .args(if extra.contains(&"--host") || extra.contains(&"--ip") {
                &[][..]
            } else {
                &["--host", "reg.example.com"][..]
            })
            .args(*extra)
            .stdin("pw\n")
            .code(2);
        r.stderr_has(expected);
        assert_eq!(leftovers(&ws), Vec::<String>::new(), "{extra:?} left files\n{r}");
    }
    // Missing values without a terminal: the error names the flag to pass; nothing prompts.
    let missing: &[(&[&str], &str, &str)] = &[
        (&["--user", "a", "--password-stdin"], "pw\n", "pass --host NAME and/or --ip ADDR"),
        (&["--host", "r.example.com", "--password-stdin"], "pw\n", "pass --user NAME"),
        (&["--host", "r.example.com", "--user", "a"], "", "pass --password-stdin"),
        (
            &["--host", "r.example.com", "--user", "a", "--password-stdin"],
            "\n",
            "the password for a is empty",
        ),
    ];
    for (args, stdin, expected) in missing {
        let ws = Workspace::new();
        ws.regkit().arg("init").arg("dep").args(*args).stdin(*stdin).code(2).stderr_has(expected);
        assert_eq!(leftovers(&ws), Vec::<String>::new());
    }
    // An existing folder with a file init would write: refused without --force, untouched.
    let ws = Workspace::new();
    fs::create_dir_all(ws.join("dep")).unwrap();
    fs::write(ws.join("dep/config.yml"), "mine\n").unwrap();
    let r = ws
        .regkit()
        .args(["init", "dep", "--host", "r.example.com", "--user", "a", "--password-stdin"])
        .stdin("pw\n")
        .code(2);
    r.stderr_has("dep/config.yml already exists (pass --force");
    assert_eq!(leftovers(&ws), ["dep/", "dep/config.yml"]);
}

#[test]
fn generated_password_is_printed_once_and_works() {
    if !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    let r = ws
        .regkit()
        .args(["init", "dep", "--host", "r.example.com", "--user", "ci", "--generate-password"])
        .args(["--json", "--key-type", "rsa-2048", "--no-local-sans", "--image", "reg:5"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let pw = v["generated_password"].as_str().unwrap();
    assert_eq!(pw.len(), 24);
    assert!(!r.stderr.contains(pw), "printed twice\n{r}");
    ws.tool("htpasswd").args(["-vb", "dep/auth/htpasswd", "ci", pw]).ok();
    let written: Vec<&str> =
        v["written"].as_array().unwrap().iter().flat_map(|p| p.as_str()).collect();
    for f in ["regkit.yaml", "config.yml", "k8s/secret-pull.yaml", "trust/node-trust.tar.gz"] {
        assert!(written.contains(&f), "{f} not listed: {written:?}");
    }
    assert_eq!(written.len(), snapshot(&ws.join("dep")).len());
    assert_eq!(v["site_sans"], serde_json::json!(["DNS:r.example.com"]));
    let info = ws.regkit().args(["certs", "inspect", "dep/pki/site.crt"]).ok();
    info.stdout_has("RSA 2048");
    assert!(fs::read_to_string(ws.join("dep/docker-compose.yml")).unwrap().contains("reg:5"));

    // Without --json: printed exactly once, on stdout, and nowhere else in the output.
    let ws = Workspace::new();
    let r = ws
        .regkit()
        .args(["init", "dep", "--host", "r.example.com", "--user", "ci", "--generate-password"])
        .ok();
    let line = r.stdout.lines().find(|l| l.starts_with("Generated password for ci")).unwrap();
    let pw = line.rsplit(' ').next().unwrap();
    assert!(pw.len() == 24 && pw.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
    assert_eq!(format!("{}{}", r.stdout, r.stderr).matches(pw).count(), 1, "{r}");
    ws.tool("htpasswd").args(["-vb", "dep/auth/htpasswd", "ci", pw]).ok();
}

#[test]
fn render_after_an_edit_rebuilds_what_depends_on_it_and_never_changes_a_password() {
    if !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    init(&ws, &[]);
    let dep = ws.join("dep");
    let before = snapshot(&dep);
    let edit = |f: &dyn Fn(&mut descriptor::Descriptor)| {
        let mut d = descriptor::load(&dep.join("regkit.yaml")).unwrap();
        f(&mut d);
        fs::write(dep.join("regkit.yaml"), descriptor::to_yaml(&d).unwrap()).unwrap();
        d
    };
    let render = || {
        let r = ws.regkit().args(["render", "dep", "--json"]).ok();
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        (report, r)
    };
    // The node port is part of the pull addresses: the pull secret (same user and password)
    // and the trust bundle follow it; nothing else but the two files that name the port.
    let d = edit(&|d| d.kubernetes.node_port = 31000);
    let (report, r) = render();
    let changed =
        ["README.md", "k8s/service.yaml", "k8s/secret-pull.yaml", "trust/node-trust.tar.gz"];
    assert_eq!(report["changed"], serde_json::json!(changed), "{r}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{r}");
    assert!(!r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD), "{r}");
    let after = snapshot(&dep);
    for (path, contents) in &before {
        if !changed.contains(&path.as_str()) && path != "regkit.yaml" {
            assert_eq!(after.get(path), Some(contents), "{path} changed");
        }
    }
    assert_covers(&ws, &dep, &d);

    // A new host: the pull secret and bundle cover it at once, but the certificate does not
    // name it; render says so and gives the command that fixes it, which then works.
    let d = edit(&|d| d.hosts.push("new.example.com".into()));
    let (report, r) = render();
    assert_covers(&ws, &dep, &d);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{r}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.starts_with("pki/site.crt does not name new.example.com (in regkit.yaml)"), "{w}");
    let fix =
        w.split_once(": regkit certs site").map(|(_, c)| format!("regkit certs site{c}")).unwrap();
    assert!(fix.ends_with("--force && regkit render"), "{fix}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_regkit")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let ran = ws.tool("sh").args(["-c", &format!("cd dep && {fix}")]).env("PATH", &path).ok();
    ran.stderr_has("updated   ./k8s/secret-tls.yaml");
    assert!(!ran.stderr.contains("does not name"), "{ran}");
    let tls = secret_data(&dep.join("k8s/secret-tls.yaml"), "tls.crt");
    assert_eq!(tls, fs::read(dep.join("pki/site.crt")).unwrap());
    ws.regkit().args(["certs", "verify", "dep/pki/site.crt", "--ca", "dep/pki/ca.crt"]).ok();
    let inspect = ws.regkit().args(["certs", "inspect", "dep/pki/site.crt", "--json"]).ok();
    inspect.stdout_has("DNS:new.example.com").stdout_has("DNS:reg.example.com");
    // The key type recorded in regkit.yaml is what the command issues.
    inspect.stdout_has("ECDSA P-256");
    ws.regkit().args(["render", "dep"]).ok().stderr_has("already up to date");
    // The password never changed.
    ws.tool("htpasswd").args(["-vb", "dep/auth/htpasswd", "admin", PASSWORD]).ok();

    // A render right after init changes nothing: init wrote exactly what render would.
    let ws = Workspace::new();
    init(&ws, &[]);
    ws.regkit().args(["render", "dep"]).ok().stderr_has("already up to date");
}

/// The pull secret has exactly `d`'s pull addresses, each with admin and the password, and
/// the trust bundle installs the CA for exactly those.
fn assert_covers(ws: &Workspace, dep: &Path, d: &descriptor::Descriptor) {
    let want: std::collections::BTreeSet<String> =
        d.pull_addresses().into_iter().map(|a| a.address).collect();
    let docker = secret_data(&dep.join("k8s/secret-pull.yaml"), ".dockerconfigjson");
    let config: serde_json::Value = serde_json::from_slice(&docker).unwrap();
    let auths = config["auths"].as_object().unwrap();
    assert_eq!(auths.keys().cloned().collect::<std::collections::BTreeSet<_>>(), want);
    for e in auths.values() {
        assert_eq!(
            (e["username"].as_str(), e["password"].as_str()),
            (Some("admin"), Some(PASSWORD))
        );
    }
    assert_eq!(regkit::files::mode_of(&dep.join("k8s/secret-pull.yaml")), Some(0o600));
    let listed = ws.tool("tar").args(["tzf"]).arg(dep.join("trust/node-trust.tar.gz")).ok();
    let dirs: std::collections::BTreeSet<String> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_once("/files/etc/docker/certs.d/")?.1.strip_suffix("/ca.crt"))
        .map(String::from)
        .collect();
    assert_eq!(dirs, want);
}

#[test]
fn the_trust_bundle_installs_on_a_staging_root() {
    let ws = Workspace::new();
    init(&ws, &[]);
    let stage = ws.join("stage");
    fs::create_dir_all(&stage).unwrap();
    ws.tool("tar").args(["xzf", "dep/trust/node-trust.tar.gz"]).ok();
    let script = "regkit-trust-reg.example.com_5000/install.sh";
    ws.tool("sh").arg(script).arg("--root").arg(&stage).ok().stdout_has("created ");
    let ca = fs::read_to_string(ws.join("dep/pki/ca.crt")).unwrap();
    for client in ["docker", "containers"] {
        let installed = stage.join(format!("etc/{client}/certs.d/reg.example.com:5000/ca.crt"));
        assert_eq!(fs::read_to_string(&installed).unwrap(), ca, "{client}");
    }
    assert!(stage.join("etc/containerd/certs.d/reg.example.com:5000/hosts.toml").is_file());
    let again = ws.tool("sh").arg(script).arg("--root").arg(&stage).ok();
    assert!(!again.stdout.contains("created"), "{again}");
}

#[test]
fn on_a_terminal_missing_values_are_prompted_for_with_defaults() {
    if !require_tool("python3") || !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    let (shown, code) = on_terminal(
        &ws,
        &["init", "dep"],
        &[
            ("Registry host name or IP address [", "prompted.example.com"),
            ("First registry user [admin]", ""),
            ("Enter password for admin", "typed-secret"),
            ("Confirm password for admin", "typed-secret"),
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("typed-secret"), "the password was echoed: {shown}");
    let d = descriptor::load(&ws.join("dep/regkit.yaml")).unwrap();
    assert_eq!((d.hosts, d.users), (vec!["prompted.example.com".into()], vec!["admin".into()]));
    ws.tool("htpasswd").args(["-vb", "dep/auth/htpasswd", "admin", "typed-secret"]).ok();
}

/// Every file and folder under the workspace (relative; folders end in `/`), including
/// hidden staging folders.
fn leftovers(ws: &Workspace) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(ws.path(), ws.path(), &mut out);
    out.sort();
    out
}
