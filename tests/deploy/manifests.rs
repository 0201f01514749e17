//! What the generated files say, key by key, as their consumers read them: config.yml holds
//! every key of the reference registry's schema that the issue lists (and `http.host` reaches
//! the `Location` headers of Debian's docker-registry), the kustomize build holds every
//! object with the properties the issue asks for, and docker-compose sees the volumes,
//! restart policy and port.

use std::fs;
use std::path::Path;

use regkit::deploy::descriptor::{Descriptor, Driver};
use serde_json::{Value, json};

use super::{deployment, rich_descriptor, stand_in_secrets};
use crate::harness::{Workspace, registry, require_tool};

const PASSWORD: &str = "s3cret-pw";

/// `regkit init DIR --user admin --password-stdin ARGS`.
fn init(ws: &Workspace, dir: &str, args: &[&str]) {
    ws.regkit()
        .args(["init", dir, "--user", "admin", "--password-stdin"])
        .args(args)
        .stdin(format!("{PASSWORD}\n"))
        .ok();
}

fn yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in {v:#}"))
}

#[test]
fn config_yml_holds_every_key_the_reference_schema_needs() {
    let ws = Workspace::new();
    init(&ws, "fs", &["--host", "reg.example.com"]);
    init(
        &ws,
        "s3",
        &["--host", "reg.example.com", "--storage", "s3", "--s3-bucket", "images"]
            .into_iter()
            .chain(["--s3-region", "eu-west-1", "--s3-endpoint", "http://minio.lan:9000"])
            .chain(["--s3-root-directory", "/reg", "--s3-force-path-style", "--s3-insecure"])
            .chain([
                "--proxy",
                "https://registry-1.docker.io",
                "--http-host",
                "https://reg.example.com",
            ])
            .chain(["--no-delete", "--no-upload-purging", "--upload-purging-age", "72h"])
            .chain(["--upload-purging-interval", "12h", "--log-level", "debug", "--port", "5443"])
            .collect::<Vec<_>>(),
    );
    for (root, s3) in [(ws.join("fs"), false), (ws.join("s3"), true)] {
        let c = yaml(&root.join("config.yml"));
        let text = fs::read_to_string(root.join("config.yml")).unwrap();
        assert_eq!(at(&c, "/version"), &json!(0.1));
        assert_eq!(at(&c, "/log/level"), if s3 { "debug" } else { "info" });
        assert_eq!(at(&c, "/storage/delete/enabled"), &json!(!s3));
        let purging = at(&c, "/storage/maintenance/uploadpurging");
        let want = if s3 { ("72h", "12h") } else { ("168h", "24h") };
        assert_eq!(purging["enabled"], json!(!s3));
        assert_eq!(
            (purging["age"].as_str(), purging["interval"].as_str()),
            (Some(want.0), Some(want.1))
        );
        assert_eq!(at(&c, "/auth/htpasswd/path"), "/auth/htpasswd");
        assert!(!at(&c, "/auth/htpasswd/realm").as_str().unwrap().is_empty());
        assert_eq!(at(&c, "/http/addr"), if s3 { ":5443" } else { ":5000" });
        assert_eq!(
            at(&c, "/http/tls"),
            &json!({"certificate": "/certs/tls.crt", "key": "/certs/tls.key"})
        );
        assert_eq!(at(&c, "/http/headers"), &json!({"X-Content-Type-Options": ["nosniff"]}));
        assert_eq!(at(&c, "/http/http2/disabled"), &json!(false));
        assert_eq!(at(&c, "/health/storagedriver/enabled"), &json!(true));
        // http.secret comes from REGISTRY_HTTP_SECRET (the env file, the Secret), never the
        // file, which is also the ConfigMap; the comment says so.
        assert!(c["http"].get("secret").is_none(), "{text}");
        assert!(text.contains("http.secret is not in this file on purpose"), "{text}");
        assert!(text.contains("REGISTRY_HTTP_SECRET"), "{text}");
        if s3 {
            assert_eq!(
                at(&c, "/storage/s3"),
                &json!({"bucket": "images", "region": "eu-west-1",
                        "regionendpoint": "http://minio.lan:9000", "rootdirectory": "/reg",
                        "forcepathstyle": true, "secure": false})
            );
            assert!(c["storage"].get("filesystem").is_none());
            assert_eq!(at(&c, "/proxy/remoteurl"), "https://registry-1.docker.io");
            assert_eq!(at(&c, "/http/host"), "https://reg.example.com");
            assert!(text.contains("reference registry only"), "{text}");
        } else {
            assert_eq!(at(&c, "/storage/filesystem/rootdirectory"), "/var/lib/registry");
            assert!(c["storage"].get("s3").is_none() && c.get("proxy").is_none());
            assert!(c["http"].get("host").is_none(), "{text}");
            assert!(text.contains("http.host is left out on purpose"), "{text}");
            assert!(text.contains("and `regkit serve`"), "{text}");
        }
    }
}

/// http.host is a key the reference registry takes: with it, the upload URL it answers with
/// is that one URL, whatever address the client used; without it, the address used.
#[test]
fn http_host_is_where_the_reference_registry_sends_uploads() {
    for tool in ["docker-registry", "curl"] {
        if !require_tool(tool) {
            return;
        }
    }
    let ws = Workspace::new();
    init(
        &ws,
        "set",
        &["--host", "localhost", "--no-ingress", "--http-host", "https://localhost:5000"],
    );
    init(&ws, "unset", &["--host", "localhost", "--no-ingress"]);
    for (dir, fixed) in [("set", true), ("unset", false)] {
        let dep = ws.join(dir);
        let readme = fs::read_to_string(dep.join("README.md")).unwrap();
        let from = readme.find("env $(cat").unwrap();
        let last = "regkit serve config.yml";
        let to = from + readme[from..].find(last).unwrap() + last.len();
        let script = readme[from..to].replace(last, "docker-registry serve config.yml");
        let server = registry::Reference::start_shell(&ws, &dep, &script);
        let port = server.addr.rsplit(':').next().unwrap();
        let r = ws
            .tool("curl")
            .args(["-sS", "-o", "/dev/null", "-D", "-", "-X", "POST", "--cacert"])
            .arg(dep.join("pki/ca.crt"))
            .args(["-u", &format!("admin:{PASSWORD}")])
            .arg(format!("https://localhost:{port}/v2/team/app/blobs/uploads/"))
            .ok();
        let location = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
            .unwrap_or_else(|| panic!("no Location\n{r}\n{}", server.log()))
            .trim()
            .to_string();
        let want = if fixed {
            "https://localhost:5000/v2/team/app/blobs/uploads/".to_string()
        } else {
            format!("https://localhost:{port}/v2/team/app/blobs/uploads/")
        };
        assert!(location.starts_with(&want), "{dir}: {location}\n{r}");
    }
}

/// The kustomize build of an `init` folder, object by object: kinds, and the properties
/// the issue asks for, each of which a template edit could lose.
#[test]
fn the_kustomize_build_has_every_object_with_the_required_properties() {
    if !require_tool("kubectl") {
        return;
    }
    let ws = Workspace::new();
    init(&ws, "dep", &["--host", "reg.example.com"]);
    init(
        &ws,
        "tr",
        &["--host", "reg.example.com", "--ingress-class", "traefik", "--max-body-size", "5Gi"],
    );
    for (dir, traefik) in [("dep", false), ("tr", true)] {
        let built = ws.tool("kubectl").args(["kustomize", &format!("{dir}/k8s")]).ok();
        let docs: Vec<Value> = built
            .stdout
            .split("\n---\n")
            .map(|d| serde_saphyr::from_str(d).unwrap_or_else(|e| panic!("{e}\n{d}")))
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        let mut want = vec![
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
            "Ingress",
            "Secret",
            "Secret",
            "Secret",
            "Secret",
        ];
        if traefik {
            want.push("Middleware");
        }
        let mut sorted = kinds.clone();
        sorted.sort();
        want.sort();
        assert_eq!(sorted, want, "{built}");
        let one = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap();

        let ing = one("Ingress");
        assert_eq!(ing["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(at(ing, "/spec/ingressClassName"), if traefik { "traefik" } else { "nginx" });
        assert_eq!(
            at(ing, "/spec/tls"),
            &json!([{"hosts": ["reg.example.com"], "secretName": "registry-tls"}])
        );
        assert_eq!(at(ing, "/spec/rules/0/host"), "reg.example.com");
        let mut annotations = json!({
            "nginx.ingress.kubernetes.io/proxy-body-size": if traefik { "5368709120" } else { "0" },
            "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
            "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
            "traefik.ingress.kubernetes.io/router.tls": "true",
        });
        if traefik {
            annotations["traefik.ingress.kubernetes.io/router.middlewares"] =
                json!("registry-registry-body@kubernetescrd");
            let mw = one("Middleware");
            assert_eq!(mw["apiVersion"], "traefik.io/v1alpha1");
            assert_eq!(
                at(mw, "/metadata"),
                &json!({
                    "name": "registry-body", "namespace": "registry",
                    "labels": mw["metadata"]["labels"].clone(),
                })
            );
            assert_eq!(
                at(mw, "/spec"),
                &json!({"buffering": {"maxRequestBodyBytes": 5368709120_u64}})
            );
        }
        assert_eq!(at(ing, "/metadata/annotations"), &annotations);

        let sa = one("ServiceAccount");
        assert_eq!(at(sa, "/imagePullSecrets"), &json!([{"name": "registry-pull"}]));
        let pull = docs.iter().find(|d| d["metadata"]["name"] == "registry-pull").unwrap();
        assert_eq!(pull["type"], "kubernetes.io/dockerconfigjson");

        let dep = one("Deployment");
        let pod = at(dep, "/spec/template/spec");
        assert_eq!(pod["serviceAccountName"], "registry");
        assert_eq!(at(pod, "/securityContext/runAsNonRoot"), &json!(true));
        let c = at(pod, "/containers/0");
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})
        );
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(
                at(c, &format!("/{probe}/httpGet")),
                &json!({"path": "/", "port": "https", "scheme": "HTTPS"}),
                "{probe}"
            );
        }
        assert_eq!(at(c, "/securityContext/readOnlyRootFilesystem"), &json!(true));
        assert_eq!(at(c, "/securityContext/allowPrivilegeEscalation"), &json!(false));
        assert_eq!(at(c, "/ports/0/containerPort"), &json!(5000));

        let svc = one("Service");
        assert_eq!(at(svc, "/spec/type"), "NodePort");
        assert_eq!(at(svc, "/spec/ports/0/nodePort"), &json!(30500));
        assert_eq!(at(svc, "/spec/ports/0/port"), &json!(5000));
        let pvc = one("PersistentVolumeClaim");
        assert_eq!(at(pvc, "/spec/resources/requests/storage"), "10Gi");
        assert_eq!(at(pvc, "/spec/accessModes"), &json!(["ReadWriteOnce"]));
    }
}

/// What docker-compose understood: the image, the restart policy, the published port, and
/// one volume each for the configuration, users, certificate, key and image data.
#[test]
fn docker_compose_sees_the_volumes_restart_policy_and_port() {
    if !require_tool("docker-compose") {
        return;
    }
    let ws = Workspace::new();
    init(&ws, "dep", &["--host", "reg.example.com", "--restart", "always", "--port", "5443"]);
    let dep = ws.join("dep");
    let r = ws.tool("docker-compose").args(["-f", "dep/docker-compose.yml", "config"]).ok();
    let c: Value = serde_saphyr::from_str(&r.stdout).unwrap();
    let svc = at(&c, "/services/registry");
    assert_eq!(svc["image"], "registry:2");
    assert_eq!(svc["restart"], "always");
    assert_eq!(svc["ports"], json!([{"published": 5443, "target": 5443}]));
    let volumes: Vec<&str> =
        svc["volumes"].as_array().unwrap().iter().flat_map(Value::as_str).collect();
    let d = dep.display();
    assert_eq!(
        volumes,
        [
            format!("{d}/config.yml:/etc/docker/registry/config.yml:ro"),
            format!("{d}/auth/htpasswd:/auth/htpasswd:ro"),
            format!("{d}/pki/site.crt:/certs/tls.crt:ro"),
            format!("{d}/pki/site.key:/certs/tls.key:ro"),
            format!("{d}/data:/var/lib/registry:rw"),
        ]
    );
    // REGISTRY_HTTP_SECRET from the env file, not from config.yml.
    assert_eq!(at(svc, "/environment/REGISTRY_HTTP_SECRET").as_str().unwrap().len(), 64);
}

#[test]
fn compose_file_is_accepted_by_docker_compose() {
    if !require_tool("docker-compose") {
        return;
    }
    for d in [Descriptor::new(vec!["registry.example.com".into()]), rich_descriptor()] {
        let ws = deployment(&d);
        if !stand_in_secrets(&ws, &d) {
            return;
        }
        let r = ws.tool("docker-compose").args(["-f", "docker-compose.yml", "config"]).ok();
        // What compose understood, not just that it parsed.
        r.stdout_has(&format!("published: {}", d.port));
        r.stdout_has("/etc/docker/registry/config.yml");
        r.stdout_has(&format!("restart: {}", d.compose.restart));
    }
}

#[test]
fn k8s_manifests_validate_and_kustomize_builds() {
    if !require_tool("kubectl") || !require_tool("kubernetes-validate") {
        return;
    }
    for d in [Descriptor::new(vec!["registry.example.com".into()]), rich_descriptor()] {
        let ws = deployment(&d);
        if !stand_in_secrets(&ws, &d) {
            return;
        }
        let mut files: Vec<String> = fs::read_dir(ws.join("k8s"))
            .unwrap()
            .map(|e| format!("k8s/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| !f.ends_with("kustomization.yaml"))
            .collect();
        files.sort();
        // kubernetes-validate knows the built-in kinds only; traefik's Middleware is a CRD it
        // has no schema for, so it is checked on its own below instead.
        let middleware = "k8s/traefik-middleware.yaml";
        let has_middleware = files.iter().any(|f| f == middleware);
        assert_eq!(has_middleware, d.kubernetes.ingress.class == "traefik");
        files.retain(|f| f != middleware);
        let r = ws.tool("kubernetes-validate").arg("--strict").args(&files).ok();
        for f in &files {
            let line = r.stdout.lines().find(|l| l.contains(f.as_str())).unwrap_or_default();
            assert!(line.starts_with("INFO ") && line.contains(" passed "), "{f}\n{r}");
        }
        assert!(!r.stdout.contains("WARN") && !r.stdout.contains("ERROR"), "{r}");
        if has_middleware {
            // Explicitly not validated by kubernetes-validate (it says why) ...
            let r = ws.tool("kubernetes-validate").arg("--strict").arg(middleware).ok();
            r.stdout_has(
                "Couldn't find schema for kind Middleware with api version traefik.io/v1alpha1",
            );
            // ... but checked against traefik's Middleware CRD: a Buffering limit in bytes.
            let mw: serde_json::Value =
                serde_saphyr::from_str(&fs::read_to_string(ws.join(middleware)).unwrap()).unwrap();
            assert_eq!(mw["apiVersion"], "traefik.io/v1alpha1");
            assert_eq!(mw["kind"], "Middleware");
            assert_eq!(mw["metadata"]["namespace"], d.kubernetes.namespace.as_str());
            let spec = mw["spec"].as_object().unwrap();
            assert_eq!(spec.keys().collect::<Vec<_>>(), ["buffering"]);
            assert_eq!(
                mw["spec"]["buffering"],
                serde_json::json!({"maxRequestBodyBytes": 5_u64 << 30})
            );
        }
        let built = ws.tool("kubectl").args(["kustomize", "k8s"]).ok();
        let mut kinds = vec!["Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service"];
        kinds.extend(["Secret", "Ingress"]);
        if d.storage.driver == Driver::Filesystem {
            kinds.push("PersistentVolumeClaim");
        }
        if has_middleware {
            kinds.push("Middleware");
        }
        for kind in kinds {
            built.stdout_has(&format!("kind: {kind}\n"));
        }
        built.stdout_has(&format!("nodePort: {}", d.kubernetes.node_port));
        // The ConfigMap carries config.yml byte for byte.
        let cm: serde_json::Value =
            serde_saphyr::from_str(&fs::read_to_string(ws.join("k8s/configmap.yaml")).unwrap())
                .unwrap();
        assert_eq!(cm["data"]["config.yml"], fs::read_to_string(ws.join("config.yml")).unwrap());
    }
}
