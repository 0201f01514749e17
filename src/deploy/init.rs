//! `regkit init`: a complete deployment folder from a [`Descriptor`] and the first user's
//! password, written all or nothing.
//!
//! Everything is built in a hidden temporary folder (beside a new target, inside an existing
//! one, so every rename stays on one file system): the CA and site certificate
//! ([`crate::pki`]), `auth/htpasswd` ([`crate::htpasswd`]), the random `http.secret`,
//! `regkit.yaml`, every rendered file ([`super::render_all`]), the four secret manifests and
//! the node trust bundle ([`super::secrets`]: serialized, never templated). The pull secret
//! and the trust bundle cover every address of [`Descriptor::pull_addresses`], all of which
//! the site certificate names. Only when all of it exists is it moved into place: a new
//! folder by one rename, an existing one by [`super::commit::commit_into`], which checks
//! every destination first and puts everything back if a move fails. Any failure leaves the
//! target as it was (absent if it was absent).
//!
//! The CA rule: a valid CA already in `DIR/pki` is reused (signing the new site certificate)
//! and never replaced without `force`. With `force` everything is regenerated, the CA
//! included, unless `keep_ca` asks to keep a valid one. Without `force`, an existing
//! deployment (`regkit.yaml` present) is left untouched ([`Error::AlreadyInitialised`]; the
//! command line turns that into "already initialised", exit 0) and no other existing file
//! is overwritten. Prompts and output are the command line's business (`crate::cli::init`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::descriptor::{self, Descriptor, TlsFiles};
use super::{Error, GENERATED_MARKER, http_secret_env_file, layout};
use crate::files::{self, MODE_PRIVATE, MODE_PUBLIC};
use crate::htpasswd::{self, Htpasswd};
use crate::pki::{self, CaOptions, CaPaths, SanEntry, SiteOptions};

/// Random bytes in the registry's `http.secret` (written hex-encoded: 64 characters).
const HTTP_SECRET_BYTES: usize = 32;

/// What `regkit init` asks for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The deployment folder (created when missing).
    pub dir: PathBuf,
    /// Every choice; `users[0]` is the user whose password is `password`.
    pub descriptor: Descriptor,
    /// The first user's password (stored only as a bcrypt hash and in the pull secret).
    /// The key type of a new CA and site certificate is the descriptor's `key_type`.
    pub password: String,
    /// Regenerate an existing deployment and overwrite existing files, the CA included.
    pub force: bool,
    /// With `force`: keep a valid CA already in the folder.
    pub keep_ca: bool,
}

/// What happened to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaAction {
    /// There was none; a new one was made.
    Created,
    /// The valid CA in the folder signed the new site certificate and was left as it was.
    Reused,
    /// The CA in the folder was replaced by a new one (`force`): nodes must trust it anew.
    Replaced,
}

/// What [`init`] wrote. Paths are relative to `dir`.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The deployment folder.
    pub dir: PathBuf,
    /// True when an existing deployment was regenerated (`force`).
    pub regenerated: bool,
    /// `host:port` clients use.
    pub address: String,
    /// Every address nodes pull through ([`Descriptor::pull_addresses`]): each is in the pull
    /// secret, the trust bundle and the certificate.
    pub pull_addresses: Vec<String>,
    /// What happened to the CA.
    pub ca: CaAction,
    /// End of the CA's validity, RFC 3339.
    pub ca_not_after: String,
    /// SANs of the site certificate (`DNS:`/`IP:` form).
    pub site_sans: Vec<String>,
    /// End of the site certificate's validity, RFC 3339.
    pub site_not_after: String,
    /// Every file written, sorted.
    pub written: Vec<PathBuf>,
    /// Generated files of the previous deployment that no longer apply, removed.
    pub removed: Vec<PathBuf>,
    /// The node trust bundle.
    pub trust_bundle: PathBuf,
    /// Things worth telling the user.
    pub warnings: Vec<String>,
    /// What in the descriptor `regkit serve` does not run (S3, a proxy), or `None` when the
    /// generated config.yml runs on `regkit serve` as well as on the reference registry.
    pub regkit_serve_blocker: Option<&'static str>,
}

/// The descriptor of the deployment in `dir`, or `None` when `dir` holds none.
pub fn existing(dir: &Path) -> Result<Option<Descriptor>, Error> {
    let path = dir.join(layout::DESCRIPTOR);
    if path.exists() { descriptor::load(&path).map(Some) } else { Ok(None) }
}

/// Dotted keys whose values differ between two descriptors (`kubernetes.node_port`,
/// `hosts`), for telling a user why a re-run changed nothing they asked for.
pub fn differences(current: &Descriptor, wanted: &Descriptor) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(current), serde_json::to_value(wanted)) else {
        return vec!["(descriptor)".to_string()];
    };
    let mut out = Vec::new();
    diff_values("", &a, &b, &mut out);
    out
}

/// The site certificate's SANs for `desc`: every host and IP, then `localhost`,
/// `127.0.0.1` and `::1` unless `no_local_sans`, without duplicates.
pub fn site_sans(desc: &Descriptor) -> Vec<SanEntry> {
    let mut sans: Vec<SanEntry> = desc
        .hosts
        .iter()
        .map(|h| SanEntry::Dns(h.clone()))
        .chain(desc.ips.iter().map(|ip| SanEntry::Ip(*ip)))
        .collect();
    if !desc.no_local_sans {
        let local = [
            SanEntry::Dns("localhost".into()),
            SanEntry::Ip(IpAddr::from([127, 0, 0, 1])),
            SanEntry::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
        ];
        for s in local {
            if !sans.contains(&s) {
                sans.push(s);
            }
        }
    }
    sans
}

/// Creates (or with `force` regenerates) the deployment folder `opts.dir`; see the module
/// documentation for the rules. Nothing is written unless everything could be built.
pub fn init(opts: &InitOptions) -> Result<InitReport, Error> {
    let d = &opts.descriptor;
    let descriptor_text = descriptor::to_yaml(d)?;
    if d.tls != TlsFiles::default() {
        return Err(Error::Invalid(
            "init writes pki/ca.crt, pki/site.crt and pki/site.key; other tls paths are for \
             folders put together by hand"
                .into(),
        ));
    }
    let user = d
        .users
        .first()
        .ok_or_else(|| Error::Invalid("init needs the first registry user (--user)".to_string()))?;
    htpasswd::check_password(&opts.password, false)?;
    let dir = opts.dir.as_path();
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid(format!("{} exists and is not a folder", dir.display())));
    }
    let was_deployment = dir.join(layout::DESCRIPTOR).exists();
    if was_deployment && !opts.force {
        return Err(Error::AlreadyInitialised { dir: dir.to_path_buf() });
    }
    let old_ca = existing_ca(dir, opts)?;

    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Inside an existing folder (which may be a mount point), beside a new one.
    let stage_in = if dir.is_dir() { dir.to_path_buf() } else { parent };
    files::create_dir_all(&stage_in)?;
    let stage = tempfile::Builder::new()
        .prefix(".regkit-init-")
        .tempdir_in(&stage_in)
        .map_err(|e| files::Error::io("cannot create a folder in", &stage_in, e))?;
    let root = stage.path();
    let pki_dir = root.join(layout::PKI_DIR);

    let (ca_paths, ca, ca_not_after) = match &old_ca {
        Some(paths) => {
            let loaded = paths.load()?;
            let not_after = pki::x509::rfc3339(loaded.not_after);
            (paths.clone(), CaAction::Reused, not_after)
        }
        None => {
            let made = pki::create_ca(&CaOptions {
                dir: pki_dir.clone(),
                key_type: d.key_type,
                ..CaOptions::default()
            })?;
            let replaced = dir.join(layout::PKI_DIR).join(pki::ca::CA_CERT).exists();
            let action = if replaced { CaAction::Replaced } else { CaAction::Created };
            (CaPaths { cert: made.cert, key: made.key }, action, made.not_after)
        }
    };
    let site = pki::issue_site(&SiteOptions {
        ca: ca_paths.clone(),
        dir: pki_dir,
        sans: site_sans(d),
        key_type: d.key_type,
        ..SiteOptions::default()
    })?;

    let mut users = Htpasswd::default();
    users.set(user, htpasswd::hash_password(&opts.password, htpasswd::DEFAULT_COST)?)?;
    users.save(&root.join(&d.htpasswd))?;
    let http_secret = hex::encode(rand::random::<[u8; HTTP_SECRET_BYTES]>());
    files::write_atomic(
        &root.join(&d.http_secret_file),
        http_secret_env_file(&http_secret).as_bytes(),
        MODE_PRIVATE,
    )?;
    files::write_atomic(&root.join(layout::DESCRIPTOR), descriptor_text.as_bytes(), MODE_PUBLIC)?;
    let rendered = super::render_all(d)?;
    for (rel, contents) in &rendered {
        files::write_atomic(&root.join(rel), contents, MODE_PUBLIC)?;
    }
    super::secrets::write_all(root, d, user, &opts.password, &http_secret, &ca_paths.cert)?;
    let trust_bundle = super::secrets::trust_bundle_path();

    let written = relative_files(root)?;
    let removed = if was_deployment { stale(dir, &rendered) } else { Vec::new() };
    if dir.exists() {
        super::commit::commit_into(root, dir, &written, &removed, opts.force)?;
    } else {
        move_new_folder(stage, dir)?;
    }
    let mut warnings = site.warnings;
    if ca == CaAction::Replaced {
        warnings.push(format!(
            "the CA in {} was replaced: every node must trust the new one (trust/)",
            dir.join(layout::PKI_DIR).display()
        ));
    }
    Ok(InitReport {
        dir: dir.to_path_buf(),
        regenerated: was_deployment,
        address: d.registry_address(),
        pull_addresses: d.pull_addresses().into_iter().map(|a| a.address).collect(),
        ca,
        ca_not_after,
        site_sans: site.sans,
        site_not_after: site.not_after,
        written,
        removed,
        trust_bundle,
        warnings,
        regkit_serve_blocker: d.regkit_serve_blocker(),
    })
}

/// The CA in `dir/pki` to reuse, if any. Fails when one is there but cannot be reused and
/// `force` is off (or `keep_ca` asks for it), and when only half of one is there.
fn existing_ca(dir: &Path, opts: &InitOptions) -> Result<Option<CaPaths>, Error> {
    let ca_dir = dir.join(layout::PKI_DIR);
    let paths = CaPaths { cert: ca_dir.join(pki::ca::CA_CERT), key: ca_dir.join(pki::ca::CA_KEY) };
    let unusable = |reason: String| Error::CaUnusable { dir: ca_dir.clone(), reason };
    match (paths.cert.exists(), paths.key.exists()) {
        (false, false) => Ok(None),
        _ if opts.force && !opts.keep_ca => Ok(None),
        (true, true) => match paths.load() {
            Ok(_) => Ok(Some(paths)),
            Err(e) => Err(unusable(e.to_string())),
        },
        (true, false) => Err(unusable(format!("{} is missing", paths.key.display()))),
        (false, true) => Err(unusable(format!("{} is missing", paths.cert.display()))),
    }
}

/// Every file under `root`, relative to it, sorted.
fn relative_files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| files::Error::io("cannot read", &dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| files::Error::io("cannot read", &dir, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Renames the staged folder to `dir`, which does not exist yet.
fn move_new_folder(stage: tempfile::TempDir, dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile makes the folder 0700; a deployment folder is an ordinary one (the
        // private files in it carry their own 0600 modes).
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| files::Error::io("cannot set mode on", stage.path(), e))?;
    }
    std::fs::rename(stage.path(), dir)
        .map_err(|e| files::Error::io("cannot rename into", dir, e))?;
    let _ = stage.keep();
    Ok(())
}

/// Generated files of the previous deployment in `dir` that the new descriptor no longer
/// produces (only files carrying regkit's marker, never one the user wrote).
fn stale(dir: &Path, rendered: &[(PathBuf, Vec<u8>)]) -> Vec<PathBuf> {
    let current: BTreeSet<&PathBuf> = rendered.iter().map(|(p, _)| p).collect();
    super::all_generated_paths()
        .into_iter()
        .filter(|rel| {
            !current.contains(rel)
                && std::fs::read(dir.join(rel)).is_ok_and(|t| t.starts_with(GENERATED_MARKER))
        })
        .collect()
}

fn diff_values(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                diff_values(&key, va, vb, out);
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::{self, RegistryHost};

    #[test]
    fn sans_add_local_names_once_unless_told_not_to() {
        let mut d = Descriptor::new(vec!["reg.example.com".into(), "localhost".into()]);
        d.ips = vec!["10.0.0.5".parse().unwrap()];
        let s: Vec<String> = site_sans(&d).iter().map(SanEntry::value).collect();
        assert_eq!(s, ["reg.example.com", "localhost", "10.0.0.5", "127.0.0.1", "::1"]);
        d.no_local_sans = true;
        assert_eq!(site_sans(&d).len(), 3);
    }

    #[test]
    fn every_pull_address_is_named_by_the_certificate() {
        use crate::deploy::descriptor::Route;
        let mut d = Descriptor::new(vec!["reg.lan".into(), "alt.lan".into()]);
        d.ips = vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        d.no_local_sans = true;
        let got: Vec<(String, Route)> =
            d.pull_addresses().into_iter().map(|a| (a.address, a.route)).collect();
        let want = [
            ("reg.lan:5000", Route::Registry),
            ("reg.lan:30500", Route::NodePort),
            ("alt.lan:30500", Route::NodePort),
            ("10.0.0.5:30500", Route::NodePort),
            ("[fd00::5]:30500", Route::NodePort),
            ("reg.lan", Route::Ingress),
        ];
        assert_eq!(got, want.map(|(a, r)| (a.to_string(), r)));
        let sans: Vec<String> = site_sans(&d).iter().map(SanEntry::value).collect();
        for a in d.pull_addresses() {
            let host: RegistryHost = a.address.parse().unwrap();
            let name = match host.host() {
                trust::host::Host::Name(n) => n.clone(),
                trust::host::Host::V4(ip) => ip.to_string(),
                trust::host::Host::V6(ip) => ip.to_string(),
            };
            assert!(sans.contains(&name), "{name} not in {sans:?}");
        }
        // Without an Ingress the ingress host is no pull address; nor is a repeat.
        d.kubernetes.ingress.enabled = false;
        d.port = 30500;
        let got: Vec<String> = d.pull_addresses().into_iter().map(|a| a.address).collect();
        assert_eq!(got, ["reg.lan:30500", "alt.lan:30500", "10.0.0.5:30500", "[fd00::5]:30500"]);
    }

    #[test]
    fn differences_name_the_nested_keys() {
        let a = Descriptor::new(vec!["a.example.com".into()]);
        let mut b = a.clone();
        assert!(differences(&a, &b).is_empty());
        b.kubernetes.node_port = 31000;
        b.hosts.push("b.example.com".into());
        assert_eq!(differences(&a, &b), ["hosts", "kubernetes.node_port"]);
    }
}
