//! `--system` on the live root, for real: `regkit trust install --system` and the bundle's
//! install.sh, given the root `/`, write `/usr/local/share/ca-certificates/regkit-*.crt` and
//! run Debian's `update-ca-certificates` (`--fresh` after a removal), as on a node. Each run
//! happens in a private mount namespace (`unshare -m`) where `/etc/ssl/certs`,
//! `/usr/local/share/ca-certificates` and the hooks directory are bind-mounted copies, so the
//! real command rebuilds a copy of the store and this machine's own store is never touched.

use super::*;

/// A copy of this machine's system store that a namespaced run sees in place of the real one.
struct Store {
    dir: PathBuf,
}

impl Store {
    fn copy(ws: &Workspace) -> Store {
        let dir = ws.join("store");
        for d in ["certs", "local", "hooks"] {
            mkdir(dir.join(d));
        }
        ws.tool("cp").args(["-a", "/etc/ssl/certs/."]).arg(dir.join("certs")).ok();
        ws.tool("cp")
            .args(["-a", "/usr/local/share/ca-certificates/."])
            .arg(dir.join("local"))
            .ok();
        let store = Store { dir };
        // Bring the copy up to date first, so the counts below are regkit's change alone.
        let r = store.run(ws, Path::new("update-ca-certificates"), &[]);
        assert_eq!(r.code, Some(0), "{r}");
        store
    }

    /// `program args...` with the copies mounted over the real directories (hooks emptied:
    /// they would reach outside, e.g. Java's keystore trigger runs dpkg).
    fn run(&self, ws: &Workspace, program: &Path, args: &[&str]) -> crate::harness::Ran {
        const MOUNT: &str = "set -e\nmount --bind \"$1/certs\" /etc/ssl/certs\n\
            mount --bind \"$1/local\" /usr/local/share/ca-certificates\n\
            if [ -d /etc/ca-certificates/update.d ]; then\n  \
            mount --bind \"$1/hooks\" /etc/ca-certificates/update.d\nfi\nshift\nexec \"$@\"\n";
        // As root a mount namespace is enough; otherwise a user namespace maps us to root.
        let userns: &[&str] = if unsafe { libc::geteuid() } == 0 { &[] } else { &["-r"] };
        ws.tool("unshare")
            .args(userns)
            .args(["-m", "--propagation", "private", "sh", "-c", MOUNT, "sh"])
            .arg(&self.dir)
            .arg(program)
            .args(args)
            .run()
    }

    fn bundle_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("certs/ca-certificates.crt")).unwrap()
    }
}

/// A workspace with a test PKI, the real store as it is now, and a copy to work on; `None`
/// (a skip, or a failure in CI) when a tool is missing.
fn setup() -> Option<(Workspace, Pki, RealStore, Store)> {
    if !["unshare", "update-ca-certificates", "openssl", "cp"].iter().all(|t| require_tool(t)) {
        return None;
    }
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let real = real_store();
    let store = Store::copy(&ws);
    Some((ws, pki, real, store))
}

/// The real store's bundle and local certificate names.
type RealStore = (Vec<u8>, Vec<String>);

/// The real store as it is now, to show it is never touched.
fn real_store() -> RealStore {
    let bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
    let mut local: Vec<String> = std::fs::read_dir("/usr/local/share/ca-certificates")
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into()).collect())
        .unwrap_or_default();
    local.sort();
    (bundle, local)
}

/// After install: the CA in the rebuilt bundle and a hash symlink to the installed file, and
/// `openssl verify` of the site certificate against the rebuilt bundle succeeds.
fn assert_trusted(ws: &Workspace, store: &Store, pki: &Pki, name: &str, yes: bool) {
    let pem = std::fs::read_to_string(&pki.ca).unwrap();
    let body = pem.lines().nth(1).unwrap();
    let link = store.dir.join(format!("certs/{name}.pem"));
    let installed = format!("/usr/local/share/ca-certificates/{name}.crt");
    let verify = ws
        .tool("openssl")
        .args(["verify", "-CAfile"])
        .arg(store.dir.join("certs/ca-certificates.crt"))
        .arg(&pki.site_cert)
        .run();
    if yes {
        assert!(store.bundle_text().contains(body), "the CA is not in the rebuilt bundle");
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&installed));
        assert!(store.dir.join(format!("local/{name}.crt")).is_file());
        assert_eq!(verify.code, Some(0), "{verify}");
    } else {
        assert!(!store.bundle_text().contains(body), "the CA is still in the bundle");
        assert!(std::fs::symlink_metadata(&link).is_err(), "{} is left", link.display());
        assert!(!store.dir.join(format!("local/{name}.crt")).exists());
        assert_ne!(verify.code, Some(0), "{verify}");
    }
}

#[test]
fn system_store_on_the_live_root_runs_update_ca_certificates() {
    let Some((ws, pki, real, store)) = setup() else { return };
    let regkit = Path::new(env!("CARGO_BIN_EXE_regkit"));
    let ca = pki.ca.to_str().unwrap();
    let name = "regkit-reg.lan_5000";
    let args = ["--system", "--json", "--ca", ca, "--registry", "reg.lan:5000"];

    let r = store.run(&ws, regkit, &[&["trust", "install"][..], &args].concat());
    assert_eq!(r.code, Some(0), "{r}");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["system_store"], "run", "{report:#}");
    let summary = report["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str());
    let summary: Vec<&str> =
        summary.filter(|n| n.starts_with("update-ca-certificates: ")).collect();
    assert_eq!(summary, ["update-ca-certificates: 1 added, 0 removed; done."], "{report:#}");
    assert_trusted(&ws, &store, &pki, name, true);

    // Again: nothing changes, so the store is not rebuilt.
    let r = store.run(&ws, regkit, &[&["trust", "install"][..], &args].concat());
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["system_store"], "not_needed", "{r}");

    let r = store.run(&ws, regkit, &[&["trust", "uninstall"][..], &args].concat());
    assert_eq!(r.code, Some(0), "{r}");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["system_store"], "run", "{report:#}");
    assert_trusted(&ws, &store, &pki, name, false);
    assert_eq!(real_store(), real, "the real system store changed");
}

#[test]
fn the_bundle_updates_the_system_store_on_the_live_root() {
    let Some((ws, pki, real, store)) = setup() else { return };
    ws.regkit()
        .args(["trust", "bundle", "--system", "--ca"])
        .arg(&pki.ca)
        .args(["--registry", "10.0.0.9:5000", "--out", "sys.tar.gz"])
        .ok();
    ws.tool("tar").args(["xzf", "sys.tar.gz"]).ok();
    let script = ws.join("regkit-trust-10.0.0.9_5000/install.sh");
    let name = "regkit-10.0.0.9_5000";
    let sh = Path::new("sh");

    let r = store.run(&ws, sh, &[script.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{r}");
    r.stdout_has("created /usr/local/share/ca-certificates/regkit-10.0.0.9_5000.crt")
        .stdout_has("1 added, 0 removed; done.");
    assert_trusted(&ws, &store, &pki, name, true);

    let r = store.run(&ws, sh, &[script.to_str().unwrap(), "--uninstall"]);
    assert_eq!(r.code, Some(0), "{r}");
    r.stdout_has("Clearing symlinks in /etc/ssl/certs");
    assert_trusted(&ws, &store, &pki, name, false);
    assert_eq!(real_store(), real, "the real system store changed");
}
