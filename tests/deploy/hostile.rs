//! The shipped templates with hostile values: every string slot of the descriptor that
//! validation lets hold one gets one (users, image, host names, Kubernetes names, classes,
//! bucket, region, endpoint and proxy URLs, S3 root directory, file paths, quantities, the
//! restart policy `no`), round after round, and every YAML file `render_all` produces is
//! parsed back by serde-saphyr (YAML 1.2) and by PyYAML (YAML 1.1, as docker-compose reads
//! it; Go's yaml.v2 in the registry resolves the same way): both must agree, and each value
//! must come back where it was put. The README's `docker login` line must give the user name
//! back as one shell word.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use regkit::deploy::descriptor::{self, Descriptor, Driver, Proxy, S3};
use regkit::deploy::validate::validate;
use serde_json::{Value, json};

use super::{HOSTILE, require_pyyaml};
use crate::harness::Workspace;

/// Candidates for one slot: the hostile strings, lower-cased, and with `prefix` in front, that
/// validation accepts in that slot of `base`.
fn candidates(
    base: &Descriptor,
    extra: &[&str],
    prefixes: &[&str],
    set: impl Fn(&mut Descriptor, String),
) -> Vec<String> {
    let mut all: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    for h in HOSTILE {
        for p in prefixes {
            all.push(format!("{p}{h}"));
            all.push(format!("{p}{}", h.to_lowercase()));
        }
    }
    let mut out: Vec<String> = Vec::new();
    for v in all {
        let mut d = base.clone();
        set(&mut d, v.clone());
        if validate(&d).is_ok() && !out.contains(&v) {
            out.push(v);
        }
    }
    assert!(out.len() > 1, "too few hostile candidates (only {out:?})");
    out
}

type Setter = Box<dyn Fn(&mut Descriptor, String)>;

fn base() -> Descriptor {
    let mut d = Descriptor::new(vec!["registry.example.com".into(), "hub.example.com".into()]);
    d.ips = vec!["192.168.1.10".parse().unwrap(), "fd00::10".parse().unwrap()];
    d.port = 5443;
    d.users = vec!["admin".into()];
    d.storage.driver = Driver::S3;
    d.storage.s3 = Some(super::s3());
    d.proxy = Some(Proxy { remoteurl: "https://registry-1.docker.io".into() });
    d
}

/// Every slot: (name, setter, candidates).
fn slots() -> Vec<(&'static str, Setter, Vec<String>)> {
    let b = base();
    fn s3(d: &mut Descriptor) -> &mut S3 {
        d.storage.s3.as_mut().unwrap()
    }
    let mut out: Vec<(&'static str, Setter, Vec<String>)> = Vec::new();
    let mut add = |name: &'static str, extra: &[&str], prefixes: &[&str], set: Setter| {
        let c = candidates(&b, extra, prefixes, &set);
        out.push((name, set, c));
    };
    add("image", &[], &[""], Box::new(|d, v| d.image = v));
    add("hosts[0]", &[], &["", "a."], Box::new(|d, v| d.hosts[0] = v));
    add("kubernetes.name", &[], &[""], Box::new(|d, v| d.kubernetes.name = v));
    add("kubernetes.namespace", &[], &[""], Box::new(|d, v| d.kubernetes.namespace = v));
    add(
        "kubernetes.ingress.class",
        &["traefik"],
        &[""],
        Box::new(|d, v| d.kubernetes.ingress.class = v),
    );
    add(
        "kubernetes.storage_class",
        &[],
        &[""],
        Box::new(|d, v| d.kubernetes.storage_class = Some(v)),
    );
    add("storage.s3.bucket", &[], &[""], Box::new(move |d, v| s3(d).bucket = v));
    add("storage.s3.region", &[], &[""], Box::new(move |d, v| s3(d).region = v));
    add(
        "storage.s3.regionendpoint",
        &[],
        &["https://x/", "http://"],
        Box::new(move |d, v| s3(d).regionendpoint = Some(v)),
    );
    add(
        "storage.s3.rootdirectory",
        &[],
        &["/"],
        Box::new(move |d, v| s3(d).rootdirectory = Some(v)),
    );
    add(
        "proxy.remoteurl",
        &[],
        &["https://y/", "https://"],
        Box::new(|d, v| d.proxy = Some(Proxy { remoteurl: v })),
    );
    add("tls.certificate", &[], &["", "pki/"], Box::new(|d, v| d.tls.certificate = v));
    add("tls.key", &[], &["", "keys/"], Box::new(|d, v| d.tls.key = v));
    add("tls.ca", &[], &["", "ca/"], Box::new(|d, v| d.tls.ca = v));
    add("htpasswd", &[], &["", "users/"], Box::new(|d, v| d.htpasswd = v));
    add("http_secret_file", &[], &["", "env/"], Box::new(|d, v| d.http_secret_file = v));
    add(
        "compose.restart",
        &["no", "always", "on-failure"],
        &[],
        Box::new(|d, v| d.compose.restart = v),
    );
    add(
        "kubernetes.storage_size",
        &[".5", "1.", "0777", "123"],
        &[""],
        Box::new(|d, v| d.kubernetes.storage_size = v),
    );
    add(
        "kubernetes.resources.limits.cpu",
        &[".5", "1.", "0777", "2"],
        &[""],
        Box::new(|d, v| d.kubernetes.resources.limits.cpu = Some(v)),
    );
    add(
        "kubernetes.ingress.max_body_size",
        &["1024", "0777", "5Gi"],
        &[""],
        Box::new(|d, v| d.kubernetes.ingress.max_body_size = Some(v)),
    );
    out
}

#[test]
fn the_shipped_templates_keep_hostile_values_intact_in_yaml_1_1_and_1_2() {
    let Some(py) = require_pyyaml() else { return };
    let slots = slots();
    let users: Vec<String> = HOSTILE
        .iter()
        .filter(|u| regkit::htpasswd::validate_user(u).is_ok())
        .map(|u| u.to_string())
        .collect();
    assert!(users.len() > 30, "{users:?}");
    let rounds = slots.iter().map(|(_, _, c)| c.len()).max().unwrap();
    let ws = Workspace::new();
    let mut expected: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut logins: Vec<(String, String)> = Vec::new();
    for round in 0..rounds {
        for filesystem in [false, true] {
            let mut d = base();
            for (_, set, c) in &slots {
                set(&mut d, c[round % c.len()].clone());
            }
            d.users = users.iter().cycle().skip(round).take(3).cloned().collect();
            // The Ingress answers for the (hostile) first host, and http.host is its address.
            d.kubernetes.ingress.host = Some(d.hosts[0].clone());
            d.http_host = Some(format!("https://{}", d.hosts[0]));
            if filesystem {
                d.storage.driver = Driver::Filesystem;
                d.storage.s3 = None;
                d.proxy = None;
                d.http_host = None;
            }
            validate(&d).unwrap_or_else(|e| panic!("round {round}: {e:?}\n{d:#?}"));
            let dir = ws.join(format!("r{round}-{}", if filesystem { "fs" } else { "s3" }));
            let mut rendered: Vec<(String, Vec<u8>)> = regkit::deploy::render_all(&d)
                .unwrap()
                .into_iter()
                .map(|(p, c)| (p.display().to_string(), c))
                .collect();
            rendered.push(("regkit.yaml".into(), descriptor::to_yaml(&d).unwrap().into_bytes()));
            for (rel, contents) in &rendered {
                let path = dir.join(rel);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, contents).unwrap();
            }
            let readme = String::from_utf8(rendered[0].1.clone()).unwrap();
            let login = readme.lines().find(|l| l.trim().starts_with("docker login")).unwrap();
            logins.push((login.trim().to_string(), d.users[0].clone()));
            let top = dir.file_name().unwrap().to_string_lossy().into_owned();
            for (file, pointer, value) in expectations(&d, filesystem) {
                expected.entry(format!("{top}/{file}")).or_default().push((pointer, value));
            }
            // YAML 1.2: the descriptor reads back equal.
            let back = descriptor::parse(
                &fs::read_to_string(dir.join("regkit.yaml")).unwrap(),
                Path::new("regkit.yaml"),
            )
            .unwrap();
            assert_eq!(back, d, "round {round}");
        }
    }

    // Every YAML file, as PyYAML reads it.
    let script = "import json,os,sys,yaml\n\
                  out={}\n\
                  for root,_,files in os.walk('.'):\n\
                  \x20 for f in files:\n\
                  \x20   if f.endswith(('.yaml','.yml')):\n\
                  \x20     p=os.path.join(root,f)[2:]\n\
                  \x20     out[p]=yaml.safe_load(open(p,encoding='utf-8'))\n\
                  json.dump(out,sys.stdout,default=lambda o:{'not json':repr(o)})\n";
    let r = ws.tool(&py).args(["-c", script]).ok();
    let yaml11: BTreeMap<String, Value> = serde_json::from_str(&r.stdout).unwrap();
    let mut files = 0;
    for (file, py_value) in &yaml11 {
        let text = fs::read_to_string(ws.join(file)).unwrap();
        let yaml12: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{file}: serde-saphyr: {e}\n{text}"));
        assert_eq!(&yaml12, py_value, "{file}: YAML 1.1 and 1.2 read it differently\n{text}");
        for (pointer, want) in expected.get(file).into_iter().flatten() {
            assert_eq!(yaml12.pointer(pointer), Some(want), "{file} {pointer}\n{text}");
        }
        files += 1;
    }
    // Per round: 10 files with S3, 11 with the filesystem (the claim), more with traefik.
    assert!(files >= rounds * 21, "only {files} YAML files were read");
    for file in expected.keys() {
        assert!(yaml11.contains_key(file), "{file} was not rendered");
    }

    // The README's login command gives the user back as one shell word.
    for (line, user) in logins {
        let words = line.strip_prefix("docker login ").unwrap();
        let script = format!("set -- {words}; printf '%s' \"$3\"");
        let r = ws.tool("sh").args(["-c", &script]).ok();
        assert_eq!(r.stdout, user, "{line}");
    }
}

/// (file, JSON pointer, value) for every value of `d` the rendered files must hold.
fn expectations(d: &Descriptor, filesystem: bool) -> Vec<(&'static str, String, Value)> {
    let names = d.k8s_names();
    let ns = d.kubernetes.namespace.as_str();
    let mut e: Vec<(&'static str, &str, Value)> = vec![
        ("config.yml", "/http/addr", json!(format!(":{}", d.port))),
        ("docker-compose.yml", "/services/registry/image", json!(d.image)),
        ("docker-compose.yml", "/services/registry/restart", json!(d.compose.restart)),
        ("docker-compose.yml", "/services/registry/ports/0", json!(format!("{0}:{0}", d.port))),
        (
            "docker-compose.yml",
            "/services/registry/env_file/0",
            json!(format!("./{}", d.http_secret_file)),
        ),
        (
            "docker-compose.yml",
            "/services/registry/volumes/1",
            json!(format!("./{}:/auth/htpasswd:ro", d.htpasswd)),
        ),
        (
            "docker-compose.yml",
            "/services/registry/volumes/2",
            json!(format!("./{}:/certs/tls.crt:ro", d.tls.certificate)),
        ),
        (
            "docker-compose.yml",
            "/services/registry/volumes/3",
            json!(format!("./{}:/certs/tls.key:ro", d.tls.key)),
        ),
        ("k8s/namespace.yaml", "/metadata/name", json!(ns)),
        (
            "k8s/namespace.yaml",
            "/metadata/labels/app.kubernetes.io~1instance",
            json!(names.instance),
        ),
        ("k8s/serviceaccount.yaml", "/metadata/name", json!(names.service_account)),
        ("k8s/serviceaccount.yaml", "/metadata/namespace", json!(ns)),
        ("k8s/serviceaccount.yaml", "/imagePullSecrets/0/name", json!(names.secret_pull)),
        ("k8s/configmap.yaml", "/metadata/name", json!(names.config_map)),
        ("k8s/deployment.yaml", "/metadata/namespace", json!(ns)),
        ("k8s/deployment.yaml", "/spec/template/spec/containers/0/image", json!(d.image)),
        (
            "k8s/deployment.yaml",
            "/spec/template/spec/containers/0/resources/limits/cpu",
            json!(d.kubernetes.resources.limits.cpu),
        ),
        (
            "k8s/deployment.yaml",
            "/spec/template/spec/serviceAccountName",
            json!(names.service_account),
        ),
        ("k8s/service.yaml", "/metadata/name", json!(names.service)),
        ("k8s/service.yaml", "/spec/ports/0/nodePort", json!(d.kubernetes.node_port)),
        ("k8s/ingress.yaml", "/spec/ingressClassName", json!(d.kubernetes.ingress.class)),
        ("k8s/ingress.yaml", "/spec/rules/0/host", json!(d.hosts[0])),
        ("k8s/ingress.yaml", "/spec/tls/0/hosts/0", json!(d.hosts[0])),
        ("k8s/ingress.yaml", "/spec/tls/0/secretName", json!(names.secret_tls)),
    ];
    let bytes = regkit::deploy::validate::quantity_bytes(
        d.kubernetes.ingress.max_body_size.as_deref().unwrap(),
    )
    .unwrap();
    let nginx = "/metadata/annotations/nginx.ingress.kubernetes.io~1proxy-body-size";
    e.push(("k8s/ingress.yaml", nginx, json!(bytes.to_string())));
    if d.kubernetes.ingress.class == "traefik" {
        let annotation = "/metadata/annotations/traefik.ingress.kubernetes.io~1router.middlewares";
        let reference = format!("{ns}-{}@kubernetescrd", names.middleware);
        e.push(("k8s/ingress.yaml", annotation, json!(reference)));
        e.push(("k8s/traefik-middleware.yaml", "/metadata/name", json!(names.middleware)));
        e.push((
            "k8s/traefik-middleware.yaml",
            "/spec/buffering/maxRequestBodyBytes",
            json!(bytes),
        ));
    }
    if filesystem {
        e.push(("k8s/pvc.yaml", "/spec/storageClassName", json!(d.kubernetes.storage_class)));
        e.push((
            "k8s/pvc.yaml",
            "/spec/resources/requests/storage",
            json!(d.kubernetes.storage_size),
        ));
    } else {
        let s3 = d.storage.s3.as_ref().unwrap();
        e.push(("config.yml", "/storage/s3/bucket", json!(s3.bucket)));
        e.push(("config.yml", "/storage/s3/region", json!(s3.region)));
        e.push(("config.yml", "/storage/s3/regionendpoint", json!(s3.regionendpoint)));
        e.push(("config.yml", "/storage/s3/rootdirectory", json!(s3.rootdirectory)));
        e.push(("config.yml", "/proxy/remoteurl", json!(d.proxy.as_ref().unwrap().remoteurl)));
        e.push(("config.yml", "/http/host", json!(d.http_host)));
    }
    let mut out: Vec<(&'static str, String, Value)> =
        e.into_iter().map(|(f, p, v)| (f, p.to_string(), v)).collect();
    // The descriptor as PyYAML and serde read it is the descriptor.
    out.push(("regkit.yaml", String::new(), serde_json::to_value(d).unwrap()));
    out
}
