//! What `regkit init` is told on its command line, and how it becomes a [`Descriptor`]:
//! [`Choices::apply`] lays the given options over a base descriptor (the defaults for a new
//! deployment, the existing `regkit.yaml` for the re-run check), [`check`] validates the
//! result naming the flag behind a bad value ([`flag_for`]), and [`rerun_differences`] is the
//! re-run rule (an existing deployment without `--force` is left alone; say which options
//! differ). The command line (`crate::cli::init`) only parses flags into [`Choices`], prompts,
//! and prints.

use std::net::IpAddr;
use std::path::Path;

use rand::Rng;

use super::descriptor::{Descriptor, Driver, Proxy, S3};
use super::{Error, init, validate};
use crate::pki::KeyType;

/// Length of a generated password (letters and digits: about 143 bits).
pub const GENERATED_PASSWORD_LEN: usize = 24;

/// The value of a resource flag that removes the request or limit (`--cpu-limit none`).
pub const NO_QUANTITY: &str = "none";

/// Every descriptor option `regkit init` takes; `None` and `false` leave the base value.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    /// `--host` (an IP address given here counts as `--ip`).
    pub hosts: Vec<String>,
    /// `--ip`.
    pub ips: Vec<IpAddr>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--user`.
    pub user: Option<String>,
    /// `--image`.
    pub image: Option<String>,
    /// `--no-local-sans`.
    pub no_local_sans: bool,
    /// `--key-type`.
    pub key_type: Option<KeyType>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--http-host`.
    pub http_host: Option<String>,
    /// `--storage`.
    pub storage: Option<Driver>,
    /// `--s3-bucket`.
    pub s3_bucket: Option<String>,
    /// `--s3-region`.
    pub s3_region: Option<String>,
    /// `--s3-endpoint`.
    pub s3_endpoint: Option<String>,
    /// `--s3-root-directory`.
    pub s3_root_directory: Option<String>,
    /// `--s3-force-path-style`.
    pub s3_force_path_style: bool,
    /// `--s3-insecure`.
    pub s3_insecure: bool,
    /// `--no-delete`.
    pub no_delete: bool,
    /// `--no-upload-purging`.
    pub no_upload_purging: bool,
    /// `--upload-purging-age`.
    pub upload_purging_age: Option<String>,
    /// `--upload-purging-interval`.
    pub upload_purging_interval: Option<String>,
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `--restart`.
    pub restart: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--namespace`.
    pub namespace: Option<String>,
    /// `--node-port`.
    pub node_port: Option<u16>,
    /// `--storage-size`.
    pub storage_size: Option<String>,
    /// `--storage-class`.
    pub storage_class: Option<String>,
    /// `--ingress-class`.
    pub ingress_class: Option<String>,
    /// `--ingress-host`.
    pub ingress_host: Option<String>,
    /// `--no-ingress`.
    pub no_ingress: bool,
    /// `--max-body-size`.
    pub max_body_size: Option<String>,
    /// `--cpu-request` ([`NO_QUANTITY`] removes it).
    pub cpu_request: Option<String>,
    /// `--memory-request`.
    pub memory_request: Option<String>,
    /// `--cpu-limit`.
    pub cpu_limit: Option<String>,
    /// `--memory-limit`.
    pub memory_limit: Option<String>,
}

impl Choices {
    /// True when any `--s3-*` option was given.
    fn s3_given(&self) -> bool {
        self.s3_bucket.is_some()
            || self.s3_region.is_some()
            || self.s3_endpoint.is_some()
            || self.s3_root_directory.is_some()
            || self.s3_force_path_style
            || self.s3_insecure
    }

    /// `base` with every given option applied: `--host`/`--ip` replace both lists when any
    /// is given, `--user` replaces the users, the rest replace single values. S3 options
    /// need S3 storage (given now or already in `base`); `--storage filesystem` drops the S3
    /// settings. Not validated: see [`check`].
    pub fn apply(&self, base: &Descriptor) -> Result<Descriptor, Error> {
        let mut d = base.clone();
        if !self.hosts.is_empty() || !self.ips.is_empty() {
            d.hosts.clear();
            d.ips.clear();
            for h in &self.hosts {
                match h.parse::<IpAddr>() {
                    Ok(ip) => d.ips.push(ip),
                    Err(_) => d.hosts.push(h.to_ascii_lowercase()),
                }
            }
            d.ips.extend(self.ips.iter().copied());
        }
        if let Some(u) = &self.user {
            d.users = vec![u.clone()];
        }
        d.no_local_sans |= self.no_local_sans;
        set(&mut d.port, self.port);
        set(&mut d.image, self.image.clone());
        set(&mut d.key_type, self.key_type);
        set(&mut d.log_level, self.log_level.clone());
        if self.http_host.is_some() {
            d.http_host = self.http_host.clone();
        }
        self.apply_storage(&mut d)?;
        if let Some(url) = &self.proxy {
            d.proxy = Some(Proxy { remoteurl: url.clone() });
        }
        set(&mut d.compose.restart, self.restart.clone());
        let k = &mut d.kubernetes;
        set(&mut k.name, self.name.clone());
        set(&mut k.namespace, self.namespace.clone());
        set(&mut k.node_port, self.node_port);
        set(&mut k.storage_size, self.storage_size.clone());
        if self.storage_class.is_some() {
            k.storage_class = self.storage_class.clone();
        }
        set(&mut k.ingress.class, self.ingress_class.clone());
        if self.ingress_host.is_some() {
            k.ingress.host = self.ingress_host.clone();
        }
        if self.no_ingress {
            k.ingress.enabled = false;
        }
        if self.max_body_size.is_some() {
            k.ingress.max_body_size = self.max_body_size.clone();
        }
        let r = &mut k.resources;
        for (field, value) in [
            (&mut r.requests.cpu, &self.cpu_request),
            (&mut r.requests.memory, &self.memory_request),
            (&mut r.limits.cpu, &self.cpu_limit),
            (&mut r.limits.memory, &self.memory_limit),
        ] {
            if let Some(v) = value {
                *field = (v != NO_QUANTITY).then(|| v.clone());
            }
        }
        Ok(d)
    }

    fn apply_storage(&self, d: &mut Descriptor) -> Result<(), Error> {
        let need_s3 = || Error::Invalid("--s3-* options need --storage s3".into());
        match self.storage {
            Some(Driver::Filesystem) if self.s3_given() => return Err(need_s3()),
            Some(Driver::Filesystem) => {
                d.storage.driver = Driver::Filesystem;
                d.storage.s3 = None;
            }
            Some(Driver::S3) => d.storage.driver = Driver::S3,
            None if self.s3_given() && d.storage.driver == Driver::Filesystem => {
                return Err(need_s3());
            }
            None => {}
        }
        if d.storage.driver == Driver::S3 {
            let s3 = d.storage.s3.get_or_insert_with(|| S3 {
                bucket: String::new(),
                region: String::new(),
                regionendpoint: None,
                rootdirectory: None,
                forcepathstyle: false,
                secure: true,
            });
            set(&mut s3.bucket, self.s3_bucket.clone());
            set(&mut s3.region, self.s3_region.clone());
            if self.s3_endpoint.is_some() {
                s3.regionendpoint = self.s3_endpoint.clone();
            }
            if self.s3_root_directory.is_some() {
                s3.rootdirectory = self.s3_root_directory.clone();
            }
            s3.forcepathstyle |= self.s3_force_path_style;
            s3.secure &= !self.s3_insecure;
        }
        if self.no_delete {
            d.storage.delete = false;
        }
        let purging = &mut d.storage.upload_purging;
        if self.no_upload_purging {
            purging.enabled = false;
        }
        set(&mut purging.age, self.upload_purging_age.clone());
        set(&mut purging.interval, self.upload_purging_interval.clone());
        Ok(())
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// Validates a descriptor built from flags; the error names the flag behind the bad value
/// (`--node-port: 8080 is outside ...`).
pub fn check(d: &Descriptor) -> Result<(), Error> {
    validate::validate(d).map_err(|bad| {
        Error::Invalid(match bad.flag_message {
            Some(m) => m,
            None => format!("{}: {}", flag_for(&bad.key), bad.message),
        })
    })
}

/// The command-line flag that sets descriptor key `key` (`hosts[1]` -> `--host`); the key
/// itself for the few that have none (file paths, which `init` always writes by default).
pub fn flag_for(key: &str) -> String {
    let base = key.split('[').next().unwrap_or(key);
    let flag = match base {
        "hosts" => "--host",
        "ips" => "--ip",
        "port" => "--port",
        "users" => "--user",
        "image" => "--image",
        "key_type" => "--key-type",
        "log_level" => "--log-level",
        "http_host" => "--http-host",
        "storage.s3" | "storage.driver" => "--storage",
        "storage.s3.bucket" => "--s3-bucket",
        "storage.s3.region" => "--s3-region",
        "storage.s3.regionendpoint" => "--s3-endpoint",
        "storage.s3.rootdirectory" => "--s3-root-directory",
        "storage.delete" => "--no-delete",
        "storage.upload_purging.enabled" => "--no-upload-purging",
        "storage.upload_purging.age" => "--upload-purging-age",
        "storage.upload_purging.interval" => "--upload-purging-interval",
        "proxy.remoteurl" => "--proxy",
        "compose.restart" => "--restart",
        "kubernetes.name" => "--name",
        "kubernetes.namespace" => "--namespace",
        "kubernetes.node_port" => "--node-port",
        "kubernetes.storage_size" => "--storage-size",
        "kubernetes.storage_class" => "--storage-class",
        "kubernetes.ingress.class" => "--ingress-class",
        "kubernetes.ingress.host" => "--ingress-host",
        "kubernetes.ingress.max_body_size" => "--max-body-size",
        "kubernetes.resources.requests.cpu" => "--cpu-request",
        "kubernetes.resources.requests.memory" => "--memory-request",
        "kubernetes.resources.limits.cpu" => "--cpu-limit",
        "kubernetes.resources.limits.memory" => "--memory-limit",
        _ => return key.to_string(),
    };
    flag.to_string()
}

/// The re-run rule: when `dir` already holds a deployment, the dotted keys whose values
/// `choices` would change (compared over the existing `regkit.yaml`, so only what was given
/// counts), and `None` when there is no deployment there yet. Nothing is written either way.
pub fn rerun_differences(dir: &Path, choices: &Choices) -> Result<Option<Vec<String>>, Error> {
    let Some(current) = init::existing(dir)? else { return Ok(None) };
    let wanted = choices.apply(&current)?;
    Ok(Some(init::differences(&current, &wanted)))
}

/// A random password of [`GENERATED_PASSWORD_LEN`] letters and digits.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(GENERATED_PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// The host offered when prompting: this machine's host name when it is a usable DNS name,
/// else `localhost`.
pub fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .ok()
        .filter(|h| validate::check_host(h).is_ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_replace_only_what_was_given() {
        let mut base = Descriptor::new(vec!["a.example.com".into()]);
        base.kubernetes.node_port = 31000;
        let c = Choices {
            hosts: vec!["B.example.com".into(), "10.0.0.5".into()],
            cpu_limit: Some(NO_QUANTITY.into()),
            memory_request: Some("64Mi".into()),
            no_delete: true,
            ..Choices::default()
        };
        let d = c.apply(&base).unwrap();
        assert_eq!(d.hosts, ["b.example.com"]);
        assert_eq!(d.ips, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(d.kubernetes.node_port, 31000);
        assert_eq!(d.kubernetes.resources.limits.cpu, None);
        assert_eq!(d.kubernetes.resources.requests.memory.as_deref(), Some("64Mi"));
        assert!(!d.storage.delete);
        let s3_only = Choices { s3_bucket: Some("b".into()), ..Choices::default() };
        assert!(s3_only.apply(&base).is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        let mut d = Descriptor::new(Vec::new());
        d.ips = vec!["10.0.0.1".parse().unwrap()];
        let e = check(&d).unwrap_err().to_string();
        assert!(e.contains("--host NAME") && e.contains("--no-ingress"), "{e}");
        d.kubernetes.ingress.enabled = false;
        d.compose.restart = "sometimes".into();
        let e = check(&d).unwrap_err().to_string();
        assert!(e.starts_with("--restart: \"sometimes\""), "{e}");
    }
}
