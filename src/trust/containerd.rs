//! containerd: with `config_path = "/etc/containerd/certs.d"` set in its CRI registry section,
//! containerd reads `/etc/containerd/certs.d/<host[:port]>/hosts.toml` for each registry (no
//! restart needed). regkit writes that file, with `server`, one `[host."https://..."]` table
//! with `capabilities` and `ca`, and the CA beside it. It also checks the node's
//! `config.toml` and says which `config_path` line is missing, in the 1.x or 2.x form.

use std::path::{Path, PathBuf};

use super::RegistryHost;

/// The hosts directory containerd is pointed at.
pub const HOSTS_DIR: &str = "/etc/containerd/certs.d";

/// The CA file, relative to the root.
pub fn ca_path(registry: &RegistryHost) -> PathBuf {
    dir(registry).join("ca.crt")
}

/// The `hosts.toml` file, relative to the root.
pub fn hosts_path(registry: &RegistryHost) -> PathBuf {
    dir(registry).join("hosts.toml")
}

/// The `hosts.toml` text: the registry over HTTPS, trusting `ca.crt` by its path on the node.
pub fn hosts_toml(registry: &RegistryHost) -> String {
    let auth = registry.authority();
    let ca = Path::new("/").join(ca_path(registry));
    format!(
        "# Written by `regkit trust install`: reach {auth} over HTTPS, trusting the CA in\n\
         # ca.crt beside this file. `regkit trust uninstall` removes this file unless edited.\n\
         server = \"https://{auth}\"\n\
         \n\
         [host.\"https://{auth}\"]\n\
         \x20 capabilities = [\"pull\", \"resolve\", \"push\"]\n\
         \x20 ca = \"{}\"\n",
        ca.display()
    )
}

/// The `config_path` lines for containerd 2.x (config version 3) and 1.x (version 2).
pub fn config_path_lines(major: u8) -> String {
    let section = if major >= 2 {
        "plugins.\"io.containerd.cri.v1.images\".registry"
    } else {
        "plugins.\"io.containerd.grpc.v1.cri\".registry"
    };
    format!("[{section}]\n  config_path = \"{HOSTS_DIR}\"")
}

/// What the node's `etc/containerd/config.toml` (under `root`) says about `config_path`:
/// `None` when it already includes [`HOSTS_DIR`], otherwise a note with the line(s) to add.
pub fn config_note(root: &Path) -> Option<String> {
    let file = root.join("etc/containerd/config.toml");
    let parsed = std::fs::read_to_string(&file).ok().and_then(|t| t.parse::<toml::Table>().ok());
    let Some(config) = parsed else {
        return Some(note_without_config());
    };
    let plugins = config.get("plugins").and_then(|p| p.as_table());
    let configured = ["io.containerd.cri.v1.images", "io.containerd.grpc.v1.cri"].iter().any(|p| {
        plugins
            .and_then(|t| t.get(*p))
            .and_then(|t| t.get("registry"))
            .and_then(|t| t.get("config_path"))
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.split(':').any(|d| d.trim_end_matches('/') == HOSTS_DIR))
    });
    if configured {
        return None;
    }
    let major = match config.get("version").and_then(|v| v.as_integer()) {
        Some(v) if v >= 3 => 2,
        _ => 1,
    };
    Some(note_for(major))
}

/// The note when there is no readable `config.toml`: both forms of the `config_path` line.
pub fn note_without_config() -> String {
    format!(
        "containerd reads hosts.toml only when its config sets config_path; add to \
         /etc/containerd/config.toml\n  for containerd 2.x:\n{}\n  for containerd 1.x:\n{}",
        indent(&config_path_lines(2)),
        indent(&config_path_lines(1))
    )
}

/// The note for a `config.toml` of containerd `major` (1 or 2) without `config_path`.
pub fn note_for(major: u8) -> String {
    format!(
        "containerd reads hosts.toml only when its config sets config_path; add to \
         /etc/containerd/config.toml (containerd {major}.x) and restart containerd:\n{}",
        indent(&config_path_lines(major))
    )
}

fn dir(registry: &RegistryHost) -> PathBuf {
    PathBuf::from("etc/containerd/certs.d").join(registry.authority())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_has_the_fields_containerd_reads() {
        let reg: RegistryHost = "[::1]:5000".parse().unwrap();
        let t: toml::Table = hosts_toml(&reg).parse().unwrap();
        assert_eq!(t["server"].as_str(), Some("https://[::1]:5000"));
        let host = &t["host"]["https://[::1]:5000"];
        assert_eq!(host["ca"].as_str(), Some("/etc/containerd/certs.d/[::1]:5000/ca.crt"));
        let caps: Vec<_> =
            host["capabilities"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(caps, ["pull", "resolve", "push"]);
    }

    #[test]
    fn config_note_knows_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("etc/containerd/config.toml");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(&cfg, "version = 3\n").unwrap();
        assert!(config_note(dir.path()).unwrap().contains("io.containerd.cri.v1.images"));
        std::fs::write(&cfg, "version = 2\n").unwrap();
        assert!(config_note(dir.path()).unwrap().contains("io.containerd.grpc.v1.cri"));
        std::fs::write(
            &cfg,
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n\
             config_path = \"/etc/containerd/certs.d\"\n",
        )
        .unwrap();
        assert_eq!(config_note(dir.path()), None);
    }
}
