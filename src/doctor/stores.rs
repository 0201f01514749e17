//! The trust stores clients read, located under a root directory (normally `/`): the system
//! CA bundle Go loads, and the per-registry `certs.d` directories of Docker
//! (`etc/docker/certs.d/<host:port>/*.crt`), Podman/CRI-O/skopeo (`etc/containers/certs.d`, then
//! Docker's) and containerd (`etc/containerd/certs.d/<host:port>/hosts.toml` `ca`, or `*.crt`).
//! Only reads files; which certificate a store's CAs actually verify is [`super::chain`]'s job.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::target::Target;

/// A certificate a client trusts, with where it came from (for the report).
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The DER certificate.
    pub der: CertificateDer<'static>,
    /// The file it was read from.
    pub source: String,
}

/// Every certificate in a PEM buffer that parses as X.509 (others are skipped, as Go's
/// `AppendCertsFromPEM` skips them).
pub fn anchors_from_pem(pem: &[u8], source: &str) -> Vec<Anchor> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter(|der| x509_parser::parse_x509_certificate(der).is_ok())
        .map(|der| Anchor { der, source: source.to_string() })
        .collect()
}

/// The bundle files Go's `crypto/x509` tries on Linux, first found wins.
const SYSTEM_BUNDLES: &[&str] = &[
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/ssl/cert.pem",
];

/// The system roots a Go client starts from.
#[derive(Debug, Clone, Default)]
pub struct SystemRoots {
    /// The bundle file used, if one exists.
    pub file: Option<PathBuf>,
    /// Its certificates.
    pub anchors: Vec<Anchor>,
}

/// Loads the system roots under `root`.
pub fn system_roots(root: &Path) -> SystemRoots {
    for rel in SYSTEM_BUNDLES {
        let path = root.join(rel);
        if let Ok(pem) = std::fs::read(&path) {
            let anchors = anchors_from_pem(&pem, &path.display().to_string());
            return SystemRoots { file: Some(path), anchors };
        }
    }
    SystemRoots::default()
}

/// What one client would trust for this registry, beyond the system roots.
#[derive(Debug, Clone)]
pub struct ClientStore {
    /// `docker`, `containerd` or `podman`.
    pub client: &'static str,
    /// One line per place looked at, saying what was found there.
    pub looked_at: Vec<String>,
    /// The CA certificates found.
    pub anchors: Vec<Anchor>,
    /// containerd's `skip_verify = true`, which turns certificate checks off.
    pub skip_verify: bool,
}

/// The certs.d stores of Docker, containerd and Podman for `target`, under `root`.
pub fn client_stores(root: &Path, target: &Target) -> Vec<ClientStore> {
    let names = target.config_names();
    vec![docker_store(root, &names), containerd_store(root, &names), podman_store(root, &names)]
}

fn docker_store(root: &Path, names: &[String]) -> ClientStore {
    let mut store = empty("docker");
    for name in names {
        let dir = root.join("etc/docker/certs.d").join(name);
        read_crt_dir(&dir, &mut store);
    }
    store
}

/// containers/image (Podman, CRI-O, skopeo, Buildah) uses the first of its directories that
/// exists for the registry.
fn podman_store(root: &Path, names: &[String]) -> ClientStore {
    let mut store = empty("podman");
    'outer: for base in ["etc/containers/certs.d", "etc/docker/certs.d"] {
        for name in names {
            let dir = root.join(base).join(name);
            let existed = dir.is_dir();
            read_crt_dir(&dir, &mut store);
            if existed {
                break 'outer;
            }
        }
    }
    store
}

fn containerd_store(root: &Path, names: &[String]) -> ClientStore {
    let mut store = empty("containerd");
    for name in names {
        let dir = root.join("etc/containerd/certs.d").join(name);
        let hosts = dir.join("hosts.toml");
        match std::fs::read_to_string(&hosts) {
            Ok(text) => read_hosts_toml(root, &dir, &hosts, &text, &mut store),
            // Without hosts.toml containerd falls back to Docker-style files in the directory.
            Err(_) => read_crt_dir(&dir, &mut store),
        }
    }
    store
}

fn read_hosts_toml(root: &Path, dir: &Path, hosts: &Path, text: &str, store: &mut ClientStore) {
    let doc: toml::Table = match toml::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let reason = e.message().to_string();
            store.looked_at.push(format!("{}: not valid TOML ({reason})", hosts.display()));
            return;
        }
    };
    let mut tables = vec![&doc];
    if let Some(toml::Value::Table(host)) = doc.get("host") {
        tables.extend(host.values().filter_map(toml::Value::as_table));
    }
    let mut cas = Vec::new();
    for table in tables {
        match table.get("ca") {
            Some(toml::Value::String(s)) => cas.push(s.clone()),
            Some(toml::Value::Array(a)) => {
                cas.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)))
            }
            _ => {}
        }
        if table.get("skip_verify").and_then(toml::Value::as_bool) == Some(true) {
            store.skip_verify = true;
        }
    }
    if cas.is_empty() {
        store.looked_at.push(format!("{}: no `ca` entry", hosts.display()));
    }
    for ca in cas {
        // Absolute paths in hosts.toml are on the node; rebase them under the root.
        let path = match ca.strip_prefix('/') {
            Some(rel) => root.join(rel),
            None => dir.join(&ca),
        };
        read_pem_file(&path, &format!("{} ca = {ca:?}", hosts.display()), store);
    }
}

fn read_crt_dir(dir: &Path, store: &mut ClientStore) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => {
            store.looked_at.push(format!("{}/: missing", dir.display()));
            return;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    if files.is_empty() {
        store.looked_at.push(format!("{}/: exists but holds no *.crt file", dir.display()));
    }
    for file in files {
        read_pem_file(&file, &file.display().to_string(), store);
    }
}

fn read_pem_file(path: &Path, label: &str, store: &mut ClientStore) {
    match std::fs::read(path) {
        Ok(pem) => {
            let found = anchors_from_pem(&pem, &path.display().to_string());
            let n = found.len();
            let plural = if n == 1 { "" } else { "s" };
            store.looked_at.push(format!("{label}: {n} certificate{plural}"));
            store.anchors.extend(found);
        }
        Err(e) => store.looked_at.push(format!("{label}: cannot read {} ({e})", path.display())),
    }
}

fn empty(client: &'static str) -> ClientStore {
    ClientStore { client, looked_at: Vec::new(), anchors: Vec::new(), skip_verify: false }
}
