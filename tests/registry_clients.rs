//! Real clients (skopeo, podman, buildah, curl) against `regkit serve` over TLS with htpasswd
//! auth, using certificates from `regkit certs` and a password file from `regkit htpasswd`; the
//! same flows against Debian's `docker-registry` (distribution 2.8) started from the very same
//! `config.yml`, so every difference between the two is asserted where it happens; layout
//! compatibility through the real binaries; and over-the-wire checks (HTTP/2, cut bodies) that
//! the in-process tests in `registry_api` cannot make.
//!
//! This file owns the fixtures: the shared TLS material and password file, a `Target` (one
//! running server of either kind with its address and storage root), and thin skopeo and curl
//! wrappers that always pass the CA and the credentials.

mod auth;
mod flows;
mod layout;
mod locations;
mod referrers;
mod statuses;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::harness::registry::Reference;
use crate::harness::serve::Server;
use crate::harness::{Ran, Workspace, pki, require_tool};

/// The one user of the password file.
pub const USER: &str = "alice";
/// Its password (no shell or URL metacharacters, so it can go in `-u` and `--creds`).
pub const PASSWORD: &str = "Tr0ub4dor-and-3";
/// The realm both servers announce in `WWW-Authenticate`.
pub const REALM: &str = "regkit clients";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `user:password` for skopeo `--creds` and curl `-u`.
pub fn creds() -> String {
    format!("{USER}:{PASSWORD}")
}

/// True when every tool the client tests use is installed (each one is checked, so CI names
/// every missing tool at once).
pub fn tools_present(extra: &[&str]) -> bool {
    let mut all = vec!["skopeo", "buildah", "curl"];
    all.extend_from_slice(extra);
    let found: Vec<bool> = all.iter().map(|t| require_tool(t)).collect();
    found.iter().all(|&f| f)
}

/// The TLS material and password file both servers of a workspace use.
pub struct Secrets {
    /// The CA that signed the site certificate.
    pub ca: PathBuf,
    /// A folder holding only `ca.crt`: what `--cert-dir` wants (a `site.key` without a
    /// `site.cert` next to it would make the containers tools fail).
    pub certs: PathBuf,
}

/// `regkit certs ca` + `regkit certs site` into `pki/`, `regkit htpasswd add` into `htpasswd`
/// (bcrypt cost 4 to keep the suite fast), and one `config.yml` in the reference schema that
/// both `regkit serve` and `docker-registry serve` run (root and address come from the
/// environment and flags).
pub fn secrets(ws: &Workspace) -> Secrets {
    let pki = pki::make(ws, "pki", "localhost,127.0.0.1");
    let certs = ws.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&pki.ca, certs.join("ca.crt")).unwrap();
    ws.regkit()
        .args(["htpasswd", "add", "htpasswd", USER, "--password-stdin", "--cost", "4"])
        .stdin(format!("{PASSWORD}\n"))
        .ok();
    std::fs::write(
        ws.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: \
             ./unused\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    \
             certificate: pki/site.crt\n    key: pki/site.key\nauth:\n  htpasswd:\n    realm: \
             {REALM}\n    path: htpasswd\n"
        ),
    )
    .unwrap();
    Secrets { ca: pki.ca, certs }
}

/// Which server a target runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `regkit serve`.
    Regkit,
    /// Debian's `docker-registry` (distribution 2.8.2), the reference.
    Reference,
}

enum Process {
    Regkit(Server),
    Reference(Reference),
}

/// One running registry (TLS, htpasswd auth, deletes enabled) on a storage root.
pub struct Target {
    pub kind: Kind,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The storage root (`rootdirectory`).
    pub root: PathBuf,
    /// `--cert-dir` for the containers tools.
    pub certs: PathBuf,
    /// The CA file for curl.
    pub ca: PathBuf,
    process: Process,
}

static CURL_BODIES: AtomicUsize = AtomicUsize::new(0);

impl Target {
    /// Starts `kind` on `ws/<root>` with the workspace's `config.yml`.
    pub fn start(ws: &Workspace, s: &Secrets, kind: Kind, root: &str) -> Target {
        match kind {
            Kind::Regkit => Self::regkit(ws, s, root, "127.0.0.1:0", &[]),
            Kind::Reference => Self::new(
                ws,
                s,
                Kind::Reference,
                root,
                Process::Reference(Reference::start(
                    ws,
                    &ws.join("config.yml"),
                    &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", ws.join(root).into())],
                )),
            ),
        }
    }

    /// `regkit serve` on `ws/<root>` and `addr` with the workspace's `config.yml` and extra
    /// `REGISTRY_*` variables in `env`.
    pub fn regkit(
        ws: &Workspace,
        s: &Secrets,
        root: &str,
        addr: &str,
        env: &[(&str, &str)],
    ) -> Target {
        let args = ["--config", "config.yml", "--addr", addr, "--root", root];
        Self::new(ws, s, Kind::Regkit, root, Process::Regkit(Server::start(ws, &args, env)))
    }

    fn new(ws: &Workspace, s: &Secrets, kind: Kind, root: &str, process: Process) -> Target {
        let root_path = ws.join(root);
        let addr = match &process {
            Process::Regkit(server) => server.addr.clone(),
            Process::Reference(reference) => reference.addr.clone(),
        };
        Target { kind, addr, root: root_path, certs: s.certs.clone(), ca: s.ca.clone(), process }
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        match &self.process {
            Process::Regkit(server) => server.log(),
            Process::Reference(reference) => reference.log(),
        }
    }

    /// The running `regkit serve` (panics on the reference).
    pub fn server(&mut self) -> &mut Server {
        match &mut self.process {
            Process::Regkit(server) => server,
            Process::Reference(_) => panic!("not regkit serve"),
        }
    }

    /// `docker://ADDR/<image>`.
    pub fn docker(&self, image: &str) -> String {
        format!("docker://{}/{image}", self.addr)
    }

    /// `https://ADDR<path>`, or `path` itself when it is already absolute (a `Location`).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("https://{}{path}", self.addr)
        }
    }

    /// `skopeo copy` from `src` to `docker://ADDR/<image>` with the CA and credentials.
    pub fn push(&self, ws: &Workspace, src: &str, image: &str, extra: &[&str]) -> Ran {
        ws.tool("skopeo")
            .args(["--insecure-policy", "copy", "--dest-cert-dir"])
            .arg(&self.certs)
            .args(["--dest-creds", &creds()])
            .args(extra)
            .args([src, &self.docker(image)])
            .run()
    }

    /// `skopeo copy` from `docker://ADDR/<image>` to `dest` with the CA and credentials.
    pub fn pull(&self, ws: &Workspace, image: &str, dest: &str, extra: &[&str]) -> Ran {
        ws.tool("skopeo")
            .args(["--insecure-policy", "copy", "--src-cert-dir"])
            .arg(&self.certs)
            .args(["--src-creds", &creds()])
            .args(extra)
            .args([&self.docker(image), dest])
            .run()
    }

    /// `skopeo <sub> --cert-dir CERTS --creds alice:... <extra> docker://ADDR/<image>`
    /// (`inspect`, `list-tags`, `delete`).
    pub fn skopeo(&self, ws: &Workspace, sub: &str, extra: &[&str], image: &str) -> Ran {
        ws.tool("skopeo")
            .args(["--insecure-policy", sub, "--cert-dir"])
            .arg(&self.certs)
            .args(["--creds", &creds()])
            .args(extra)
            .arg(self.docker(image))
            .run()
    }

    /// The sorted tags of `repo` as skopeo lists them.
    pub fn tags(&self, ws: &Workspace, repo: &str) -> Vec<String> {
        let r = self.skopeo(ws, "list-tags", &[], repo);
        assert_eq!(r.code, Some(0), "{r}\n{}", self.log());
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let mut tags: Vec<String> = v["Tags"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        tags.sort();
        tags
    }

    /// curl as `alice` with the CA; see [`Target::curl_as`].
    pub fn curl(&self, ws: &Workspace, method: &str, path: &str, extra: &[&str]) -> Http {
        self.curl_as(ws, Some(&creds()), method, path, extra)
    }

    /// One request with curl (`--cacert`, bounded by `--max-time`), as `user:password` or
    /// anonymously; `path` is a path on the server or an absolute `Location`.
    pub fn curl_as(
        &self,
        ws: &Workspace,
        user: Option<&str>,
        method: &str,
        path: &str,
        extra: &[&str],
    ) -> Http {
        let n = CURL_BODIES.fetch_add(1, Ordering::Relaxed);
        let body = ws.join(format!("curl-body-{n}"));
        let mut cmd = ws
            .tool("curl")
            .args(["-sS", "--max-time", "10", "-D", "-", "-o"])
            .arg(&body)
            .arg("--cacert")
            .arg(&self.ca);
        cmd = if method == "HEAD" { cmd.arg("-I") } else { cmd.args(["-X", method]) };
        if let Some(u) = user {
            cmd = cmd.args(["-u", u]);
        }
        let ran = cmd.args(extra).arg(self.url(path)).run();
        Http::parse(ran, std::fs::read(&body).unwrap_or_default())
    }
}

/// A response as curl saw it.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    /// The last header block as sent.
    pub head: String,
    pub body: Vec<u8>,
    /// curl's exit code, and stderr (with `-v`: the TLS and ALPN story).
    pub code: Option<i32>,
    pub stderr: String,
}

impl Http {
    fn parse(ran: Ran, body: Vec<u8>) -> Http {
        let head = ran
            .stdout
            .split("\r\n\r\n")
            .filter(|b| b.starts_with("HTTP/"))
            .last()
            .unwrap_or("")
            .to_string();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Http { status, head, body, code: ran.code, stderr: ran.stderr }
    }

    /// The value of header `name` (any case), or "".
    pub fn header(&self, name: &str) -> String {
        self.head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The first spec error code of the body, or "".
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("").to_string()
    }

    /// Asserts the status, showing everything on failure.
    #[track_caller]
    pub fn expect(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {self}");
        self
    }
}

impl std::fmt::Display for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {} (curl exit {:?})\n{}\nbody: {}\nstderr: {}",
            self.status,
            self.code,
            self.head,
            String::from_utf8_lossy(&self.body),
            self.stderr
        )
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    regkit::registry::api::names::Algorithm::Sha256.digest_of(data).to_string()
}

/// The manifest digest recorded in an OCI layout's `index.json`.
pub fn layout_manifest(dir: &Path) -> String {
    crate::harness::image::manifest_digest(dir)
}

/// Every blob of an OCI layout, by file name, each checked against its name.
pub fn layout_blobs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let blobs = crate::harness::snapshot(&dir.join("blobs/sha256"));
    for (name, data) in &blobs {
        assert_eq!(sha256(data), format!("sha256:{name}"), "blob {name} is corrupt");
    }
    blobs
}

/// A blob of an OCI layout by digest.
pub fn layout_blob(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
}

/// Pushes `data` as a blob of `repo` the portable way (POST, then PUT `?digest=` with the
/// body; distribution 2.8 has no single-POST upload) and returns its digest.
pub fn push_blob(ws: &Workspace, t: &Target, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let file = ws.join(format!("blob-{}", &digest[7..19]));
    std::fs::write(&file, data).unwrap();
    let loc = start_upload(ws, t, repo);
    let put = t.curl(
        ws,
        "PUT",
        &with_query(&loc, &format!("digest={digest}")),
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    put.expect(201, "finishing a blob upload");
    digest
}

/// `POST /v2/<repo>/blobs/uploads/` as alice; returns the `Location` of the new upload.
pub fn start_upload(ws: &Workspace, t: &Target, repo: &str) -> String {
    let post = t.curl(ws, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[]);
    post.expect(202, "starting an upload");
    let loc = post.header("location");
    assert!(!loc.is_empty(), "{post}");
    loc
}

/// `url` with `param` appended to its query.
pub fn with_query(url: &str, param: &str) -> String {
    format!("{url}{}{param}", if url.contains('?') { '&' } else { '?' })
}
