//! Test PKI made with regkit itself (`regkit certs ca` + `regkit certs site`), so every test
//! that talks TLS through skopeo (Go's crypto/tls) also proves regkit's certificates work.

use std::path::PathBuf;

use super::Workspace;

/// A CA and a site certificate signed by it, in one folder of the workspace.
pub struct Pki {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub site_cert: PathBuf,
    pub site_key: PathBuf,
}

/// Makes `ws/<name>/` with a CA named `regkit test CA <name>` and a site certificate for
/// `sans` (comma list, e.g. `localhost,127.0.0.1`).
pub fn make(ws: &Workspace, name: &str, sans: &str) -> Pki {
    let dir = ws.join(name);
    ws.regkit()
        .args(["certs", "ca", "--out"])
        .arg(&dir)
        .args(["--cn", &format!("regkit test CA {name}")])
        .ok();
    ws.regkit()
        .args(["certs", "site", "--ca-cert"])
        .arg(dir.join("ca.crt"))
        .arg("--ca-key")
        .arg(dir.join("ca.key"))
        .arg("--out")
        .arg(&dir)
        .args(["--san", sans])
        .ok();
    Pki {
        ca: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        site_cert: dir.join("site.crt"),
        site_key: dir.join("site.key"),
    }
}
