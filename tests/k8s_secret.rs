//! `regkit k8s secret` against kubectl and the Kubernetes schemas: for the same inputs,
//! regkit's manifest and `kubectl create secret ... --dry-run=client -o yaml` decode to the
//! same object (data base64-decoded, `.dockerconfigjson` parsed, creationTimestamp ignored);
//! every manifest regkit writes passes PyPI `kubernetes-validate --strict` offline against
//! the schemas of the kubectl version installed here; bad input fails before anything is
//! written. Test certificates come from the `openssl` CLI.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::harness::{Ran, Workspace, require_tool};

/// The schema version to validate against: the kubectl on this machine is v1.32.
const K8S_VERSION: &str = "1.32.0";

fn tools() -> bool {
    require_tool("kubectl") && require_tool("openssl") && require_tool("kubernetes-validate")
}

fn kubectl(ws: &Workspace, args: &[&str]) -> Ran {
    // An empty kubeconfig: --dry-run=client must not reach for any cluster.
    ws.tool("kubectl")
        .env("KUBECONFIG", ws.join("no-kubeconfig"))
        .args(["create", "secret"])
        .args(args)
        .args(["--dry-run=client", "-o", "yaml"])
        .ok()
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("bad YAML ({e}):\n{yaml}"))
}

fn one(yaml: &str) -> Value {
    let mut d = docs(yaml);
    assert_eq!(d.len(), 1, "{yaml}");
    d.remove(0)
}

/// The object as the API server would see it: data decoded (dockerconfigjson parsed),
/// creationTimestamp dropped, and a missing type read as Opaque (the server's default).
fn normalize(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
    }
    if v["kind"] == "Secret" && v.get("type").is_none() {
        v["type"] = Value::from("Opaque");
    }
    if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
        for (key, value) in data.iter_mut() {
            let bytes = BASE64.decode(value.as_str().unwrap()).unwrap();
            *value = if key == ".dockerconfigjson" {
                serde_json::from_slice(&bytes).unwrap()
            } else {
                Value::from(String::from_utf8(bytes).unwrap())
            };
        }
    }
    v
}

fn validate(ws: &Workspace, file: &str) {
    let r = ws.tool("kubernetes-validate").args(["--strict", "-k", K8S_VERSION, file]).ok();
    assert!(r.stdout.contains("passed") && !r.stdout.contains("WARN"), "{r}");
}

fn openssl_pair(ws: &Workspace, stem: &str, key_alg: &[&str]) {
    let (key, crt) = (format!("{stem}.key"), format!("{stem}.crt"));
    ws.tool("openssl")
        .args(["req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=registry.example"])
        .args(key_alg)
        .args(["-keyout", &key, "-out", &crt])
        .ok();
}

#[test]
fn docker_registry_secret_matches_kubectl() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    let password = r#"p@ss:w&rd <>"'\ "#;
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &[
                "--server",
                "registry.example:5000",
                "--username",
                "ci",
                "--email",
                "ops@example.com",
                "-n",
                "apps",
            ],
            &[
                "--docker-server=registry.example:5000",
                "--docker-username=ci",
                "--docker-email=ops@example.com",
                "-n",
                "apps",
            ],
        ),
        (&["--username", "alice"], &["--docker-username=alice"]),
        (
            &["--docker-server", "10.0.0.7:443", "--docker-username", "bot"],
            &["--docker-server=10.0.0.7:443", "--docker-username=bot"],
        ),
    ];
    for (i, (ours, theirs)) in cases.iter().enumerate() {
        let r = ws
            .regkit()
            .args(["k8s", "secret", "docker-registry", "regcred", "--password-stdin"])
            .args(*ours)
            .stdin(format!("{password}\n"))
            .ok();
        let mine = normalize(one(&r.stdout));
        let pw_arg = format!("--docker-password={password}");
        let kube =
            kubectl(&ws, &[&["docker-registry", "regcred", pw_arg.as_str()], *theirs].concat());
        assert_eq!(mine, normalize(one(&kube.stdout)), "case {i}\n{}\n{}", r.stdout, kube.stdout);
        let file = format!("dr{i}.yaml");
        std::fs::write(ws.join(&file), &r.stdout).unwrap();
        validate(&ws, &file);
    }
    // The default server is kubectl's, and auth is base64 of user:password.
    let r = ws
        .regkit()
        .args(["k8s", "secret", "docker-registry", "regcred", "--username", "alice"])
        .args(["--password-stdin", "-o", "json"])
        .stdin("pw\n")
        .ok();
    let v = normalize(serde_json::from_str(&r.stdout).unwrap());
    let entry = &v["data"][".dockerconfigjson"]["auths"]["https://index.docker.io/v1/"];
    assert_eq!(entry["auth"], BASE64.encode("alice:pw"));
    assert!(entry.get("email").is_none(), "{v}");
    std::fs::write(ws.join("dr.json"), &r.stdout).unwrap();
    validate(&ws, "dr.json");
}

#[test]
fn tls_secret_matches_kubectl_and_refuses_a_foreign_key() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    openssl_pair(&ws, "rsa", &["-newkey", "rsa:2048"]);
    openssl_pair(&ws, "ec", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    openssl_pair(&ws, "ed", &["-newkey", "ed25519"]);
    // A traditional (PKCS#1) RSA key file must work too.
    ws.tool("openssl").args(["pkey", "-in", "rsa.key", "-traditional", "-out", "rsa1.key"]).ok();
    for (crt, key) in [("rsa", "rsa"), ("rsa", "rsa1"), ("ec", "ec"), ("ed", "ed")] {
        let (crt, key) = (format!("{crt}.crt"), format!("{key}.key"));
        let args = ["tls", "registry-tls", "--cert", &crt, "--key", &key, "-n", "registry"];
        let r = ws.regkit().args(["k8s", "secret"]).args(args).ok();
        let kube = kubectl(&ws, &args);
        assert_eq!(normalize(one(&r.stdout)), normalize(one(&kube.stdout)), "{crt} {key}");
        std::fs::write(ws.join("tls.yaml"), &r.stdout).unwrap();
        validate(&ws, "tls.yaml");
    }

    // A key from another pair: kubectl refuses it, and so does regkit, writing nothing.
    let args = ["tls", "registry-tls", "--cert", "rsa.crt", "--key", "ec.key"];
    ws.tool("kubectl")
        .env("KUBECONFIG", ws.join("no-kubeconfig"))
        .args(["create", "secret"])
        .args(args)
        .args(["--dry-run=client", "-o", "yaml"])
        .fails();
    let r = ws.regkit().args(["k8s", "secret"]).args(args).args(["--out", "out.yaml"]).code(2);
    r.stderr_has("the private key ec.key does not match the certificate rsa.crt");
    assert!(!ws.join("out.yaml").exists());

    // A chain in the wrong order is explained.
    let chain =
        [std::fs::read(ws.join("ec.crt")).unwrap(), std::fs::read(ws.join("rsa.crt")).unwrap()];
    std::fs::write(ws.join("chain.crt"), chain.concat()).unwrap();
    ws.regkit()
        .args(["k8s", "secret", "tls", "x", "--cert", "chain.crt", "--key", "rsa.key"])
        .code(2)
        .stderr_has("matches certificate #2");
    ws.regkit()
        .args(["k8s", "secret", "tls", "x", "--cert", "rsa.key", "--key", "rsa.key"])
        .code(2)
        .stderr_has("rsa.key: no CERTIFICATE block");
}

#[test]
fn generic_secret_matches_kubectl() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    openssl_pair(&ws, "ca", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    std::fs::create_dir_all(ws.join("bundle/skip-me")).unwrap();
    std::fs::write(ws.join("bundle/a.pem"), "alpha\n").unwrap();
    std::fs::write(ws.join("bundle/b.txt"), "beta").unwrap();
    std::fs::write(ws.join("config"), "key=value\n").unwrap();
    let args = [
        "generic",
        "registry-ca",
        "--from-file=ca.crt",
        "--from-file=bundle.pem=ca.crt",
        "--from-file=bundle",
        "--from-file=odd.cfg=config",
        "-n",
        "apps",
    ];
    let r = ws.regkit().args(["k8s", "secret"]).args(args).ok();
    let mine = normalize(one(&r.stdout));
    assert_eq!(mine["type"], "Opaque");
    assert_eq!(mine["data"]["odd.cfg"], "key=value\n");
    assert_eq!(mine["data"]["b.txt"], "beta");
    assert_eq!(mine, normalize(one(&kubectl(&ws, &args).stdout)));
    std::fs::write(ws.join("generic.yaml"), &r.stdout).unwrap();
    validate(&ws, "generic.yaml");

    for (bad, message) in [
        ("--from-file=a b=ca.crt", "invalid secret key \"a b\""),
        ("--from-file=..x=ca.crt", "must not start with '..'"),
        ("--from-file=ca.crt=bundle/a.pem", "another key by that name"),
        ("--from-file=k=bundle", "a key cannot be given for a directory"),
        ("--from-file=nope.pem", "cannot read nope.pem"),
        ("--from-file=k=a=b", "key names or file paths cannot contain '='"),
    ] {
        ws.regkit()
            .args(["k8s", "secret", "generic", "x", "--from-file=ca.crt", bad, "--out", "g.yaml"])
            .code(2)
            .stderr_has(message);
        assert!(!ws.join("g.yaml").exists());
    }
}

#[test]
fn several_objects_go_into_one_file_that_validates() {
    if !tools() {
        return;
    }
    let ws = Workspace::new();
    openssl_pair(&ws, "site", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let pull = |extra: &[&str]| {
        ws.regkit()
            .args(["k8s", "secret", "docker-registry", "regcred", "-n", "apps"])
            .args(["--server", "reg.example:5000", "--username", "ci", "--password-stdin"])
            .args(extra)
            .stdin("first\n")
            .ok()
    };
    pull(&["--out", "k8s/secrets.yaml"]).stderr_has("wrote Secret apps/regcred");
    let steps: [&[&str]; 3] = [
        &["generic", "registry-ca", "--from-file=ca.crt=site.crt", "-n", "apps"],
        &["tls", "registry-tls", "--cert", "site.crt", "--key", "site.key", "-n", "apps"],
        &["service-account", "puller", "--pull-secret", "regcred", "-n", "apps"],
    ];
    for step in steps {
        ws.regkit()
            .args(["k8s", "secret"])
            .args(step)
            .args(["--out", "k8s/secrets.yaml", "--append"])
            .ok();
    }
    // Re-running a command replaces its object instead of adding a duplicate.
    pull(&["--out", "k8s/secrets.yaml", "--append"]).stderr_has("replaced Secret apps/regcred");
    let text = std::fs::read_to_string(ws.join("k8s/secrets.yaml")).unwrap();
    let all = docs(&text);
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|d| (d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Secret", "regcred"),
            ("Secret", "registry-ca"),
            ("Secret", "registry-tls"),
            ("ServiceAccount", "puller")
        ]
    );
    assert_eq!(all[3]["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(mode(&ws.join("k8s/secrets.yaml")), 0o600);
    let r = ws
        .tool("kubernetes-validate")
        .args(["--strict", "-k", K8S_VERSION, "k8s/secrets.yaml"])
        .ok();
    assert_eq!(r.stdout.matches("passed").count(), 4, "{r}");

    // Without --append or --force an existing file is left alone.
    let before = std::fs::read(ws.join("k8s/secrets.yaml")).unwrap();
    ws.regkit()
        .args(["k8s", "secret", "service-account", "x", "--pull-secret", "regcred"])
        .args(["--out", "k8s/secrets.yaml"])
        .code(2)
        .stderr_has("already exists (pass --append");
    assert_eq!(std::fs::read(ws.join("k8s/secrets.yaml")).unwrap(), before);

    // JSON: several objects become a List whose items each validate.
    for step in steps {
        ws.regkit()
            .args(["k8s", "secret"])
            .args(step)
            .args(["-o", "json", "--out", "all.json", "--append"])
            .ok();
    }
    let list: Value = serde_json::from_slice(&std::fs::read(ws.join("all.json")).unwrap()).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (i, item) in items.iter().enumerate() {
        let file = format!("item{i}.json");
        std::fs::write(ws.join(&file), serde_json::to_vec(item).unwrap()).unwrap();
        validate(&ws, &file);
    }
}

#[test]
fn names_are_checked_like_the_api_server() {
    let ws = Workspace::new();
    std::fs::write(ws.join("ca.crt"), "x").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["generic", "Registry_CA", "--from-file=ca.crt"], "invalid secret name \"Registry_CA\""),
        (&["generic", "ca", "--from-file=ca.crt", "-n", "my.ns"], "invalid namespace \"my.ns\""),
        (&["service-account", "sa", "--pull-secret", "Bad"], "invalid pull secret name"),
        (&["service-account", "sa-", "--pull-secret", "ok"], "invalid service account name"),
        (
            &["docker-registry", "UPPER", "--username", "u", "--password-stdin"],
            "invalid secret name",
        ),
    ];
    for (args, message) in cases {
        ws.regkit().args(["k8s", "secret"]).args(args).stdin("pw\n").code(2).stderr_has(message);
    }
    // Nothing to read the password from: fail at once, naming the flag.
    ws.regkit()
        .args(["k8s", "secret", "docker-registry", "regcred", "--username", "u"])
        .code(2)
        .stderr_has("--password-stdin");
    ws.regkit()
        .args(["k8s", "secret", "docker-registry", "regcred", "--username", "u:x"])
        .arg("--password-stdin")
        .stdin("pw\n")
        .code(2)
        .stderr_has("invalid username");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `--server` repeated: one `auths` entry per address with the same credentials (a registry
/// reached through a NodePort and an Ingress as well); the same address twice is refused.
#[test]
fn docker_registry_secret_with_several_servers() {
    let ws = Workspace::new();
    let args = ["k8s", "secret", "docker-registry", "regcred", "--password-stdin"];
    let r = ws
        .regkit()
        .args(args)
        .args(["--server", "reg.lan:5000", "--server", "10.0.0.5:30500", "--server", "reg.lan"])
        .args(["--username", "ci"])
        .stdin("pw\n")
        .ok();
    let secret: serde_json::Value = serde_saphyr::from_str(&r.stdout).unwrap();
    let json = BASE64.decode(secret["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let auths = config["auths"].as_object().unwrap();
    assert_eq!(auths.keys().collect::<Vec<_>>(), ["10.0.0.5:30500", "reg.lan", "reg.lan:5000"]);
    for (_, e) in auths {
        assert_eq!(e["auth"], BASE64.encode("ci:pw"));
    }
    let dup = ws.regkit().args(args).args(["--server", "a:1", "--server", "a:1"]);
    dup.args(["--username", "ci"]).stdin("pw\n").code(2).stderr_has("\"a:1\" is given twice");
}

/// Without `--password-stdin` on a terminal, the password is asked for twice without echo;
/// the secret carries what was typed, and two different answers write nothing.
#[test]
fn docker_registry_prompts_twice_on_a_terminal() {
    if !require_tool("python3") {
        return;
    }
    let ws = Workspace::new();
    let args = ["k8s", "secret", "docker-registry", "regcred", "--server", "reg.lan:5000"];
    let (shown, code) = crate::harness::terminal::on_terminal(
        &ws,
        &[&args[..], &["--username", "ci", "--out", "pull.yaml"]].concat(),
        &[
            ("Enter password of ci at reg.lan:5000", "typed-secret"),
            ("Confirm password of ci at reg.lan:5000", "typed-secret"),
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("typed-secret"), "the password was echoed: {shown}");
    let secret: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(ws.join("pull.yaml")).unwrap()).unwrap();
    let json = BASE64.decode(secret["data"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let entry = &config["auths"]["reg.lan:5000"];
    assert_eq!(entry["password"], "typed-secret");
    assert_eq!(entry["auth"], BASE64.encode("ci:typed-secret"));

    let (shown, code) = crate::harness::terminal::on_terminal(
        &ws,
        &[&args[..], &["--username", "ci", "--out", "other.yaml"]].concat(),
        &[("Enter password", "one"), ("Confirm password", "two")],
    );
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("the two passwords differ"), "{shown}");
    assert!(!ws.join("other.yaml").exists());
}
