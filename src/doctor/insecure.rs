//! Which clients on this machine are set up to talk plain HTTP to a registry, read from their
//! configuration under the root (normally `/`):
//! - Docker: `insecure-registries` in `etc/docker/daemon.json`, a `host:port` entry or a CIDR
//!   that holds the registry's IP address; or, for a registry on 127.0.0.0/8 or `localhost`,
//!   dockerd's defaults, which always hold 127.0.0.0/8
//!   ([`Target::docker_insecure_by_default`]), unless daemon.json is not valid JSON, with
//!   which dockerd does not start;
//! - containerd: `etc/containerd/certs.d/<host:port>/hosts.toml` whose `server` or one of whose
//!   `[host."..."]` tables is an `http://` URL;
//! - Podman, CRI-O, Buildah, skopeo (containers/image): `etc/containers/registries.conf` then
//!   `registries.conf.d/*.conf`, a `[[registry]]` whose `location` (or `prefix`) is the
//!   registry, with `insecure = true` (the last match wins), or v1's `[registries.insecure]`.
//!
//! Docker's loopback exception holds on this machine only; the caller notes that other
//! machines do not share it. Only reads files.

use std::net::IpAddr;
use std::path::Path;

use super::target::Target;

/// What the clients' configuration says about plain HTTP for one registry.
#[derive(Debug, Clone, Default)]
pub struct PlainHttp {
    /// The clients set up to use plain HTTP for it (`docker`, `containerd`, `podman`).
    pub allowed: Vec<&'static str>,
    /// One line per client: where it was looked up and what was found.
    pub details: Vec<String>,
}

/// Reads the three clients' configuration under `root` for `target`.
pub fn plain_http(root: &Path, target: &Target) -> PlainHttp {
    let names = target.config_names();
    let mut out = PlainHttp::default();
    for (client, found) in [
        ("docker", docker(root, target, &names)),
        ("containerd", containerd(root, &names)),
        ("podman", podman(root, &names)),
    ] {
        let (yes, detail) = found;
        if yes {
            out.allowed.push(client);
        }
        out.details.push(format!("{client}: {detail}"));
    }
    out
}

fn docker(root: &Path, target: &Target, names: &[String]) -> (bool, String) {
    let path = root.join("etc/docker/daemon.json");
    let loopback = target.docker_insecure_by_default();
    let by_default = |found: String| {
        format!(
            "{found}, but dockerd treats {} as an insecure registry by default (it always adds \
             127.0.0.0/8)",
            target.host
        )
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        let found = format!("{} does not exist", path.display());
        return if loopback {
            (true, by_default(found))
        } else {
            (false, format!("{found}: no insecure-registries"))
        };
    };
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(e) => {
            let why = format!("{} is not valid JSON ({e}): dockerd does not start", path.display());
            return (false, why);
        }
    };
    let entries: Vec<&str> = doc["insecure-registries"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let hit = entries.iter().find(|e| {
        names.iter().any(|n| n == *e) || target.ip.is_some_and(|ip| cidr_contains(e, ip))
    });
    match hit {
        Some(e) => (true, format!("{} lists {e:?} in insecure-registries", path.display())),
        None => {
            let found = format!("{} does not list it in insecure-registries", path.display());
            if loopback { (true, by_default(found)) } else { (false, found) }
        }
    }
}

/// True when `entry` is a CIDR (`10.0.0.0/8`, `fd00::/8`) that holds `ip`.
fn cidr_contains(entry: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = entry.split_once('/') else { return false };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift >= 128 || (a >> shift) == (b >> shift)
}

fn containerd(root: &Path, names: &[String]) -> (bool, String) {
    for name in names {
        let path = root.join("etc/containerd/certs.d").join(name).join("hosts.toml");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(doc) = text.parse::<toml::Table>() else {
            return (false, format!("{} is not valid TOML", path.display()));
        };
        let server =
            doc.get("server").and_then(|v| v.as_str()).filter(|s| s.starts_with("http://"));
        let host = doc
            .get("host")
            .and_then(|h| h.as_table())
            .and_then(|h| h.keys().find(|k| k.starts_with("http://")).cloned());
        return match server.map(str::to_string).or(host) {
            Some(url) => (true, format!("{} uses {url}", path.display())),
            None => (false, format!("{} has no http:// server or host", path.display())),
        };
    }
    let dir = root.join("etc/containerd/certs.d");
    (false, format!("no hosts.toml for it under {}: https only", dir.display()))
}

fn podman(root: &Path, names: &[String]) -> (bool, String) {
    let mut files = vec![root.join("etc/containers/registries.conf")];
    if let Ok(entries) = std::fs::read_dir(root.join("etc/containers/registries.conf.d")) {
        let mut dropins: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        dropins.sort();
        files.extend(dropins);
    }
    let mut verdict: Option<(bool, String)> = None;
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(doc) = text.parse::<toml::Table>() else { continue };
        let v1 = doc
            .get("registries")
            .and_then(|r| r.get("insecure"))
            .and_then(|i| i.get("registries"))
            .and_then(|r| r.as_array());
        if v1.is_some_and(|list| {
            list.iter().any(|v| v.as_str().is_some_and(|s| names.iter().any(|n| n == s)))
        }) {
            verdict = Some((true, format!("{} lists it in [registries.insecure]", path.display())));
        }
        for reg in doc.get("registry").and_then(|r| r.as_array()).into_iter().flatten() {
            let location = ["location", "prefix"]
                .iter()
                .filter_map(|k| reg.get(*k).and_then(|v| v.as_str()))
                .any(|l| names.iter().any(|n| n == l));
            if location {
                let insecure = reg.get("insecure").and_then(|v| v.as_bool()) == Some(true);
                verdict = Some((
                    insecure,
                    format!("{} has insecure = {insecure} for it", path.display()),
                ));
            }
        }
    }
    verdict.unwrap_or_else(|| {
        let file = root.join("etc/containers/registries.conf");
        (false, format!("no insecure = true for it in {} or registries.conf.d", file.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_hold_their_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!cidr_contains("10.0.0.0/8", ip("11.0.0.1")));
        assert!(cidr_contains("0.0.0.0/0", ip("192.168.1.1")));
        assert!(cidr_contains("fd00::/8", ip("fd12::1")));
        assert!(!cidr_contains("fd00::/8", ip("10.0.0.1")));
        assert!(!cidr_contains("10.0.0.1", ip("10.0.0.1")));
    }

    #[test]
    fn each_client_is_read_from_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let target: Target = "http://10.0.0.5:5000".parse().unwrap();
        assert!(plain_http(root, &target).allowed.is_empty());
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("etc/docker/daemon.json", r#"{"insecure-registries": ["10.0.0.0/24"]}"#);
        write(
            "etc/containerd/certs.d/10.0.0.5:5000/hosts.toml",
            "server = \"http://10.0.0.5:5000\"\n",
        );
        write(
            "etc/containers/registries.conf",
            "[[registry]]\nlocation = \"10.0.0.5:5000\"\ninsecure = true\n",
        );
        assert_eq!(plain_http(root, &target).allowed, ["docker", "containerd", "podman"]);
        // A drop-in saying otherwise wins.
        write(
            "etc/containers/registries.conf.d/50-secure.conf",
            "[[registry]]\nlocation = \"10.0.0.5:5000\"\ninsecure = false\n",
        );
        assert_eq!(plain_http(root, &target).allowed, ["docker", "containerd"]);
    }

    #[test]
    fn dockerd_defaults_count_for_127_0_0_0_8_and_localhost_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let allowed = |url: &str| plain_http(root, &url.parse().unwrap()).allowed;
        for url in ["http://127.0.0.1:5000", "http://127.8.9.10:80", "http://localhost:5000"] {
            assert_eq!(allowed(url), ["docker"], "{url}");
        }
        for url in ["http://[::1]:5000", "http://reg.localhost:5000", "http://10.0.0.5:5000"] {
            assert!(allowed(url).is_empty(), "{url}");
        }
        let daemon = root.join("etc/docker/daemon.json");
        std::fs::create_dir_all(daemon.parent().unwrap()).unwrap();
        std::fs::write(&daemon, r#"{"insecure-registries": ["10.9.9.9:5000", "reg.lan"]}"#)
            .unwrap();
        assert_eq!(allowed("http://127.0.0.1:5000"), ["docker"]);
        // An entry without a port covers the ports a reference without one reaches.
        assert_eq!(allowed("http://reg.lan"), ["docker"]);
        assert_eq!(allowed("http://reg.lan:443"), ["docker"]);
        assert!(allowed("http://reg.lan:5000").is_empty());
        // dockerd refuses to start with a daemon.json it cannot parse.
        std::fs::write(&daemon, "{").unwrap();
        let found = plain_http(root, &"http://127.0.0.1:5000".parse().unwrap());
        assert!(found.allowed.is_empty());
        assert!(found.details[0].contains("dockerd does not start"), "{:?}", found.details);
    }
}
