//! Rendering: the templates in `templates/` (embedded at build time) filled from a
//! [`Descriptor`]. Handlebars runs in strict mode (a missing value is an error, never an empty
//! string) with HTML escaping off; every value enters YAML through the `yaml` helpers of
//! [`super::escape`]. The output depends only on the descriptor, so rendering is
//! deterministic. Writing files is [`super::render_dir`]'s business, not this module's.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use handlebars::Handlebars;
use serde::Serialize;

use super::descriptor::{Descriptor, Driver, Route};
use super::{Error, K8sNames, container, layout, secret_keys};

/// Every template: (name, text). Names ending in `.hbs` map to output files.
const TEMPLATES: &[(&str, &str)] = &[
    ("regkit.yaml", include_str!("../../templates/regkit.yaml.hbs")),
    ("README.md", include_str!("../../templates/README.md.hbs")),
    ("config.yml", include_str!("../../templates/config.yml.hbs")),
    ("docker-compose.yml", include_str!("../../templates/docker-compose.yml.hbs")),
    ("k8s/namespace.yaml", include_str!("../../templates/k8s/namespace.yaml.hbs")),
    ("k8s/serviceaccount.yaml", include_str!("../../templates/k8s/serviceaccount.yaml.hbs")),
    ("k8s/configmap.yaml", include_str!("../../templates/k8s/configmap.yaml.hbs")),
    ("k8s/pvc.yaml", include_str!("../../templates/k8s/pvc.yaml.hbs")),
    ("k8s/deployment.yaml", include_str!("../../templates/k8s/deployment.yaml.hbs")),
    ("k8s/service.yaml", include_str!("../../templates/k8s/service.yaml.hbs")),
    ("k8s/ingress.yaml", include_str!("../../templates/k8s/ingress.yaml.hbs")),
    (
        "k8s/traefik-middleware.yaml",
        include_str!("../../templates/k8s/traefik-middleware.yaml.hbs"),
    ),
    ("k8s/kustomization.yaml", include_str!("../../templates/k8s/kustomization.yaml.hbs")),
];

/// Partials shared by the manifests.
const PARTIALS: &[(&str, &str)] = &[
    ("labels", include_str!("../../templates/k8s/labels.hbs")),
    ("selector", include_str!("../../templates/k8s/selector.hbs")),
];

/// Renders every generated file for `desc`, in a fixed order, as (path relative to the
/// deployment folder, contents). Files that do not apply (the PVC with S3 storage, the
/// Ingress when disabled) are left out.
pub fn render_all(desc: &Descriptor) -> Result<Vec<(PathBuf, Vec<u8>)>, Error> {
    let hb = registry()?;
    let mut ctx = Context::new(desc);
    let config = render_one(&hb, layout::CONFIG, &ctx)?;
    ctx.config_yml = config.clone();
    let mut out = Vec::new();
    out.push((PathBuf::from(layout::README), render_one(&hb, layout::README, &ctx)?.into_bytes()));
    out.push((PathBuf::from(layout::CONFIG), config.into_bytes()));
    out.push((
        PathBuf::from(layout::COMPOSE),
        render_one(&hb, layout::COMPOSE, &ctx)?.into_bytes(),
    ));
    for file in &ctx.k8s_generated {
        let name = format!("{}/{file}", layout::K8S_DIR);
        let text = render_one(&hb, &name, &ctx)?;
        out.push((PathBuf::from(name), text.into_bytes()));
    }
    Ok(out)
}

/// The descriptor as commented `regkit.yaml` text.
pub fn render_descriptor(desc: &Descriptor) -> Result<String, Error> {
    let hb = registry()?;
    render_one(&hb, layout::DESCRIPTOR, &Context::new(desc))
}

/// Every path [`render_all`] can produce, whatever the descriptor; `render` removes the ones
/// a descriptor no longer produces.
pub fn all_generated_paths() -> Vec<PathBuf> {
    TEMPLATES
        .iter()
        .map(|(name, _)| PathBuf::from(name))
        .filter(|p| p != &PathBuf::from(layout::DESCRIPTOR))
        .collect()
}

fn registry() -> Result<Handlebars<'static>, Error> {
    let mut hb = super::escape::handlebars();
    for (name, text) in TEMPLATES.iter().chain(PARTIALS) {
        hb.register_template_string(name, text)
            .map_err(|e| Error::Template { name: (*name).to_string(), message: e.to_string() })?;
    }
    Ok(hb)
}

fn render_one(hb: &Handlebars<'_>, name: &str, ctx: &Context<'_>) -> Result<String, Error> {
    hb.render(name, ctx)
        .map_err(|e| Error::Template { name: name.to_string(), message: e.to_string() })
}

/// Everything the templates see: the descriptor as `d`, plus derived values.
#[derive(Debug, Serialize)]
struct Context<'a> {
    d: &'a Descriptor,
    key_type: &'static str,
    driver: &'static str,
    filesystem: bool,
    s3: bool,
    ips: Vec<String>,
    main_host: String,
    address: String,
    addr: String,
    realm: &'static str,
    first_user: Option<&'a str>,
    /// What `regkit serve` does not run in this descriptor (`None`: it runs config.yml).
    serve_blocker: Option<&'static str>,
    ingress_host: Option<String>,
    /// `localhost` is one of the pull addresses' hosts.
    localhost_listed: bool,
    /// The Ingress body limit in bytes, when there is one (nginx's `proxy-body-size` is it
    /// as a string, or `"0"` for none).
    max_body_bytes: Option<u64>,
    /// The traefik Buffering middleware is generated (class traefik and a limit).
    traefik_middleware: bool,
    /// `router.middlewares` annotation value (`NAMESPACE-NAME@kubernetescrd`).
    traefik_middleware_ref: String,
    /// The Service's in-cluster address (`NAME.NAMESPACE.svc:PORT`).
    service_dns: String,
    /// The `kubectl patch` payload that adds the pull secret to a ServiceAccount.
    pull_secret_patch: String,
    /// Every address nodes pull through, with what answers there (README).
    pull_addresses: Vec<PullRow>,
    names: K8sNames,
    container: ContainerPaths,
    secret_keys: SecretKeys,
    compose: ComposeCtx,
    optional_env: Vec<OptionalEnv>,
    has_resources: bool,
    resources: BTreeMap<&'static str, BTreeMap<&'static str, String>>,
    k8s_generated: Vec<&'static str>,
    k8s_resources: Vec<&'static str>,
    k8s_table: Vec<K8sRow>,
    /// The rendered config.yml, for the ConfigMap (filled after rendering it).
    config_yml: String,
}

#[derive(Debug, Serialize)]
struct ContainerPaths {
    config: &'static str,
    config_dir: &'static str,
    data: &'static str,
    htpasswd: &'static str,
    auth_dir: &'static str,
    certificate: &'static str,
    key: &'static str,
    certs_dir: &'static str,
}

#[derive(Debug, Serialize)]
struct SecretKeys {
    http_secret: &'static str,
}

#[derive(Debug, Serialize)]
struct ComposeCtx {
    port: String,
    env_file: String,
    pass_env: Vec<&'static str>,
    volumes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct OptionalEnv {
    name: &'static str,
    secret: String,
    key: &'static str,
}

#[derive(Debug, Serialize)]
struct PullRow {
    address: String,
    /// What answers there and what it takes, in one README sentence.
    via: String,
}

#[derive(Debug, Serialize)]
struct K8sRow {
    file: &'static str,
    what: &'static str,
}

impl<'a> Context<'a> {
    fn new(d: &'a Descriptor) -> Self {
        let filesystem = d.storage.driver == Driver::Filesystem;
        let s3 = d.storage.driver == Driver::S3;
        let names = K8sNames::new(&d.kubernetes.name);
        let c = ContainerPaths {
            config: container::CONFIG,
            config_dir: container::CONFIG_DIR,
            data: container::DATA,
            htpasswd: container::HTPASSWD,
            auth_dir: container::AUTH_DIR,
            certificate: container::CERTIFICATE,
            key: container::KEY,
            certs_dir: container::CERTS_DIR,
        };
        let mut volumes = vec![
            format!("./{}:{}:ro", layout::CONFIG, c.config),
            format!("./{}:{}:ro", d.htpasswd, c.htpasswd),
            format!("./{}:{}:ro", d.tls.certificate, c.certificate),
            format!("./{}:{}:ro", d.tls.key, c.key),
        ];
        if filesystem {
            volumes.push(format!("./{}:{}", layout::DATA_DIR, c.data));
        }
        let mut pass_env = Vec::new();
        let mut optional_env = Vec::new();
        if s3 {
            pass_env.extend(["REGISTRY_STORAGE_S3_ACCESSKEY", "REGISTRY_STORAGE_S3_SECRETKEY"]);
            for (name, key) in [
                ("REGISTRY_STORAGE_S3_ACCESSKEY", "accesskey"),
                ("REGISTRY_STORAGE_S3_SECRETKEY", "secretkey"),
            ] {
                optional_env.push(OptionalEnv { name, secret: names.secret_s3.clone(), key });
            }
        }
        if d.proxy.is_some() {
            pass_env.extend(["REGISTRY_PROXY_USERNAME", "REGISTRY_PROXY_PASSWORD"]);
            for (name, key) in
                [("REGISTRY_PROXY_USERNAME", "username"), ("REGISTRY_PROXY_PASSWORD", "password")]
            {
                optional_env.push(OptionalEnv { name, secret: names.secret_proxy.clone(), key });
            }
        }
        let quantities = |q: &super::descriptor::Quantities| {
            let mut m = BTreeMap::new();
            if let Some(cpu) = &q.cpu {
                m.insert("cpu", cpu.clone());
            }
            if let Some(mem) = &q.memory {
                m.insert("memory", mem.clone());
            }
            m
        };
        let mut resources = BTreeMap::new();
        for (k, q) in [
            ("requests", &d.kubernetes.resources.requests),
            ("limits", &d.kubernetes.resources.limits),
        ] {
            let m = quantities(q);
            if !m.is_empty() {
                resources.insert(k, m);
            }
        }
        let ingress_host = d.ingress_host();
        let max_body_bytes = d
            .kubernetes
            .ingress
            .max_body_size
            .as_deref()
            .and_then(|q| super::validate::quantity_bytes(q).ok());
        let traefik_middleware = ingress_host.is_some()
            && d.kubernetes.ingress.class == TRAEFIK
            && max_body_bytes.is_some();
        let k8s_generated = k8s_generated(filesystem, ingress_host.is_some(), traefik_middleware);
        let serve_blocker = d.regkit_serve_blocker();
        let pull_secret_patch = serde_json::json!({
            "imagePullSecrets": [{ "name": names.secret_pull }]
        })
        .to_string();
        let mut k8s_resources: Vec<&'static str> =
            k8s_generated.iter().copied().filter(|f| *f != layout::K8S_KUSTOMIZATION).collect();
        k8s_resources.extend(layout::K8S_SECRETS);
        let k8s_table = k8s_resources
            .iter()
            .chain([&layout::K8S_KUSTOMIZATION])
            .map(|f| K8sRow { file: f, what: describe_k8s_file(f) })
            .collect();
        Context {
            d,
            key_type: d.key_type.name(),
            driver: if s3 { "s3" } else { "filesystem" },
            filesystem,
            s3,
            ips: d.ips.iter().map(ToString::to_string).collect(),
            main_host: d.main_host(),
            address: d.registry_address(),
            addr: format!(":{}", d.port),
            realm: "regkit registry",
            first_user: d.users.first().map(String::as_str),
            serve_blocker,
            localhost_listed: d.hosts.iter().any(|h| h == "localhost"),
            max_body_bytes,
            traefik_middleware,
            traefik_middleware_ref: format!(
                "{}-{}@kubernetescrd",
                d.kubernetes.namespace, names.middleware
            ),
            service_dns: format!("{}.{}.svc:{}", names.service, d.kubernetes.namespace, d.port),
            pull_secret_patch,
            ingress_host,
            pull_addresses: pull_rows(d, serve_blocker),
            compose: ComposeCtx {
                port: format!("{0}:{0}", d.port),
                env_file: format!("./{}", d.http_secret_file),
                pass_env,
                volumes,
            },
            names,
            container: c,
            secret_keys: SecretKeys { http_secret: secret_keys::HTTP_SECRET },
            optional_env,
            has_resources: !resources.is_empty(),
            resources,
            k8s_generated,
            k8s_resources,
            k8s_table,
            config_yml: String::new(),
        }
    }
}

/// The README's list of image reference prefixes that work on nodes (`serve_blocker`:
/// [`Descriptor::regkit_serve_blocker`]).
fn pull_rows(d: &Descriptor, serve_blocker: Option<&str>) -> Vec<PullRow> {
    let server = match serve_blocker {
        None => "docker-compose or `regkit serve`",
        Some(_) => "docker-compose or `docker-registry serve`",
    };
    d.pull_addresses()
        .into_iter()
        .map(|a| {
            let host = match a.address.rsplit_once(':') {
                Some((h, p)) if a.route != Route::Ingress && p.parse::<u16>().is_ok() => h,
                _ => a.address.as_str(),
            };
            let via = match a.route {
                Route::Registry => format!(
                    "{server} on `{host}` (the Kubernetes manifests do not open port {} on nodes)",
                    d.port
                ),
                Route::NodePort if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() => {
                    format!("the Service's node port: `{host}` must be a node's address")
                }
                Route::NodePort => {
                    format!("the Service's node port, on every node `{host}` resolves to")
                }
                Route::Ingress => format!(
                    "the `{}` Ingress, HTTPS on port 443 (image references leave the port \
                     out): `{host}` must resolve to the ingress controller",
                    d.kubernetes.ingress.class
                ),
            };
            PullRow { address: a.address, via }
        })
        .collect()
}

/// The ingress class whose body limit needs a Middleware object.
const TRAEFIK: &str = "traefik";

/// The generated manifests (file names inside `k8s/`) for this storage and ingress choice.
fn k8s_generated(filesystem: bool, ingress: bool, middleware: bool) -> Vec<&'static str> {
    let mut v = vec!["namespace.yaml", "serviceaccount.yaml", "configmap.yaml"];
    if filesystem {
        v.push("pvc.yaml");
    }
    v.extend(["deployment.yaml", "service.yaml"]);
    if ingress {
        v.push("ingress.yaml");
    }
    if middleware {
        v.push("traefik-middleware.yaml");
    }
    v.push(layout::K8S_KUSTOMIZATION);
    v
}

fn describe_k8s_file(f: &str) -> &'static str {
    match f {
        "namespace.yaml" => "Namespace",
        "serviceaccount.yaml" => "ServiceAccount with the pull secret in imagePullSecrets",
        "configmap.yaml" => "ConfigMap holding config.yml",
        "pvc.yaml" => "PersistentVolumeClaim for image data",
        "deployment.yaml" => "Deployment: the registry (non-root, read-only root fs)",
        "service.yaml" => "Service, type NodePort (cluster IP and node port)",
        "ingress.yaml" => "Ingress (networking.k8s.io/v1) with TLS",
        "traefik-middleware.yaml" => {
            "traefik Middleware (traefik.io/v1alpha1, Buffering): the body size limit"
        }
        "kustomization.yaml" => "kustomization listing all of the above",
        "secret-tls.yaml" => "Secret (kubernetes.io/tls): certificate and key (init)",
        "secret-htpasswd.yaml" => "Secret: the htpasswd file (init)",
        "secret-http.yaml" => "Secret: REGISTRY_HTTP_SECRET (init)",
        "secret-pull.yaml" => "Secret (kubernetes.io/dockerconfigjson): pull credentials (init)",
        _ => "manifest",
    }
}
