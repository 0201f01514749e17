//! Semantic checks of a parsed [`Descriptor`]: host names (RFC 1123, no wildcards), IPs,
//! ports, the NodePort range, storage settings, file paths kept inside the deployment folder,
//! Kubernetes names and quantities. Each check reports the key path it is about; the caller
//! ([`super::located`]) adds the line. Only the first problem is reported.

use std::net::IpAddr;

use super::descriptor::{Descriptor, Driver, VERSION};
use super::located::Invalid;

/// Kubernetes NodePort range (the API server's default `--service-node-port-range`).
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// Longest suffix added to `kubernetes.name` (`-htpasswd`), so names stay 63 characters.
const LONGEST_NAME_SUFFIX: usize = "-htpasswd".len();

/// Checks every value of `d`.
pub fn validate(d: &Descriptor) -> Result<(), Invalid> {
    if d.version != VERSION {
        return Err(Invalid::new(
            "version",
            format!("unsupported version {}; expected {VERSION}", d.version),
        ));
    }
    if d.hosts.is_empty() && d.ips.is_empty() {
        return Err(Invalid::new("hosts", "give at least one host name (hosts) or address (ips)"));
    }
    for (i, h) in d.hosts.iter().enumerate() {
        check_host(h).map_err(|m| Invalid::new(format!("hosts[{i}]"), m))?;
        if d.hosts[..i].contains(h) {
            return Err(Invalid::new(format!("hosts[{i}]"), format!("{h:?} is listed twice")));
        }
    }
    for (i, ip) in d.ips.iter().enumerate() {
        if ip.is_unspecified() {
            return Err(Invalid::new(
                format!("ips[{i}]"),
                format!("{ip} is not an address clients can connect to"),
            ));
        }
        if d.ips[..i].contains(ip) {
            return Err(Invalid::new(format!("ips[{i}]"), format!("{ip} is listed twice")));
        }
    }
    if d.port == 0 {
        return Err(Invalid::new("port", "port must be between 1 and 65535"));
    }
    for (i, u) in d.users.iter().enumerate() {
        crate::htpasswd::validate_user(u)
            .map_err(|e| Invalid::new(format!("users[{i}]"), e.to_string()))?;
        if d.users[..i].contains(u) {
            return Err(Invalid::new(format!("users[{i}]"), format!("{u:?} is listed twice")));
        }
    }
    check_image(&d.image).map_err(|m| Invalid::new("image", m))?;
    one_of("log_level", &d.log_level, &["error", "warn", "info", "debug"])?;
    for (key, path) in [
        ("tls.ca", &d.tls.ca),
        ("tls.certificate", &d.tls.certificate),
        ("tls.key", &d.tls.key),
        ("htpasswd", &d.htpasswd),
        ("http_secret_file", &d.http_secret_file),
    ] {
        check_relative_path(path).map_err(|m| Invalid::new(key, m))?;
        // render rewrites generated files: a key kept under such a name would be lost.
        let generated = super::render::all_generated_paths();
        if path == super::layout::DESCRIPTOR
            || generated.iter().any(|g| g.as_os_str() == path.as_str())
        {
            return Err(Invalid::new(
                key,
                format!("{path:?} is a file regkit generates; choose another name"),
            ));
        }
    }
    if let Some(url) = &d.http_host {
        check_http_host(d, url).map_err(|m| Invalid::new("http_host", m))?;
    }
    check_storage(d)?;
    if let Some(p) = &d.proxy {
        check_url(&p.remoteurl).map_err(|m| Invalid::new("proxy.remoteurl", m))?;
    }
    one_of(
        "compose.restart",
        &d.compose.restart,
        &["no", "always", "on-failure", "unless-stopped"],
    )?;
    check_kubernetes(d)
}

/// Checks a host name: RFC 1123 labels of letters, digits and hyphens, lower case, at most
/// 253 characters; no wildcard, no IP address.
pub fn check_host(h: &str) -> Result<(), String> {
    if h.parse::<IpAddr>().is_ok() {
        return Err(format!("{h:?} is an IP address; list it under ips"));
    }
    if h.contains('*') {
        return Err(format!("{h:?}: a wildcard is not a host name; list each name"));
    }
    check_dns_name(h).map_err(|why| format!("invalid host name {h:?}: {why}"))?;
    let last = h.rsplit('.').next().unwrap_or(h);
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid host name {h:?}: the last label is all digits"));
    }
    Ok(())
}

fn check_dns_name(h: &str) -> Result<(), &'static str> {
    if h.is_empty() {
        return Err("empty");
    }
    if h.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in h.split('.') {
        check_label(label)?;
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() {
        return Err("empty label (two dots, or a dot at an end)");
    }
    if label.len() > 63 {
        return Err("a label is longer than 63 characters");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("a label starts or ends with '-'");
    }
    if label.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("upper-case letters (use lower case)");
    }
    if !label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("only letters, digits, '-' and '.' are allowed");
    }
    Ok(())
}

fn check_storage(d: &Descriptor) -> Result<(), Invalid> {
    let s = &d.storage;
    for (key, v) in [
        ("storage.upload_purging.age", &s.upload_purging.age),
        ("storage.upload_purging.interval", &s.upload_purging.interval),
    ] {
        check_duration(v).map_err(|m| Invalid::new(key, m))?;
    }
    match (s.driver, &s.s3) {
        (Driver::Filesystem, None) => Ok(()),
        (Driver::Filesystem, Some(_)) => Err(Invalid::new(
            "storage.s3",
            "S3 settings given but storage.driver is filesystem (set driver: s3 or remove them)",
        )),
        (Driver::S3, None) => Err(Invalid::new(
            "storage.s3",
            "storage.driver is s3 but the S3 settings (bucket, region) are missing",
        )),
        (Driver::S3, Some(s3)) => {
            if s3.bucket.is_empty() {
                return Err(Invalid::new("storage.s3.bucket", "missing (required for s3 storage)"));
            }
            check_bucket(&s3.bucket).map_err(|m| Invalid::new("storage.s3.bucket", m))?;
            if s3.region.is_empty() {
                return Err(Invalid::new("storage.s3.region", "missing (required for s3 storage)"));
            }
            if !s3.region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(Invalid::new(
                    "storage.s3.region",
                    format!("invalid region {:?}", s3.region),
                ));
            }
            if let Some(e) = &s3.regionendpoint {
                check_url(e).map_err(|m| Invalid::new("storage.s3.regionendpoint", m))?;
            }
            if let Some(r) = &s3.rootdirectory {
                if !r.starts_with('/') || r.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(Invalid::new(
                        "storage.s3.rootdirectory",
                        format!("{r:?} must be an absolute path in the bucket, e.g. /registry"),
                    ));
                }
            }
            Ok(())
        }
    }
}

fn check_kubernetes(d: &Descriptor) -> Result<(), Invalid> {
    let k = &d.kubernetes;
    check_label(&k.name).map_err(|why| {
        Invalid::new("kubernetes.name", format!("invalid name {:?}: {why}", k.name))
    })?;
    if k.name.len() + LONGEST_NAME_SUFFIX > 63 {
        return Err(Invalid::new(
            "kubernetes.name",
            format!("at most {} characters (secret names add suffixes)", 63 - LONGEST_NAME_SUFFIX),
        ));
    }
    check_label(&k.namespace).map_err(|why| {
        Invalid::new("kubernetes.namespace", format!("invalid namespace {:?}: {why}", k.namespace))
    })?;
    if !NODE_PORT_RANGE.contains(&k.node_port) {
        return Err(Invalid::new(
            "kubernetes.node_port",
            format!("{} is outside the NodePort range 30000-32767", k.node_port),
        ));
    }
    check_quantity(&k.storage_size).map_err(|m| Invalid::new("kubernetes.storage_size", m))?;
    if let Some(c) = &k.storage_class {
        check_dns_name(c).map_err(|why| {
            Invalid::new("kubernetes.storage_class", format!("invalid class {c:?}: {why}"))
        })?;
    }
    let ing = &k.ingress;
    check_dns_name(&ing.class).map_err(|why| {
        Invalid::new("kubernetes.ingress.class", format!("invalid class {:?}: {why}", ing.class))
    })?;
    if let Some(h) = &ing.host {
        check_host(h).map_err(|m| Invalid::new("kubernetes.ingress.host", m))?;
        if !d.hosts.contains(h) {
            return Err(Invalid::new(
                "kubernetes.ingress.host",
                format!("{h:?} is not in hosts, so the certificate does not name it; add it there"),
            ));
        }
    }
    if ing.enabled && d.ingress_host().is_none() {
        return Err(Invalid::new(
            "kubernetes.ingress.host",
            "an Ingress needs a host name: set kubernetes.ingress.host or add one to hosts",
        )
        .with_flag_message(
            "an Ingress needs a host name and only IP addresses were given: pass --host NAME \
             as well, or --no-ingress",
        ));
    }
    if let Some(size) = &ing.max_body_size {
        quantity_bytes(size).map_err(|m| Invalid::new("kubernetes.ingress.max_body_size", m))?;
    }
    let r = &k.resources;
    for (key, q) in [
        ("kubernetes.resources.requests.cpu", &r.requests.cpu),
        ("kubernetes.resources.requests.memory", &r.requests.memory),
        ("kubernetes.resources.limits.cpu", &r.limits.cpu),
        ("kubernetes.resources.limits.memory", &r.limits.memory),
    ] {
        if let Some(q) = q {
            check_quantity(q).map_err(|m| Invalid::new(key, m))?;
        }
    }
    Ok(())
}

fn one_of(key: &str, v: &str, allowed: &[&str]) -> Result<(), Invalid> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("{v:?} is not one of {}", allowed.join(", "))))
    }
}

/// A path inside the deployment folder: relative, `[A-Za-z0-9._/-]` only, no `..`.
fn check_relative_path(p: &str) -> Result<(), String> {
    let ok_chars =
        p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if p.is_empty() || !ok_chars {
        return Err(format!("{p:?}: use a relative path of letters, digits, '.', '_', '-', '/'"));
    }
    if p.starts_with('/') || p.ends_with('/') || p.split('/').any(|s| s.is_empty() || s == "..") {
        return Err(format!("{p:?} must be a file inside the deployment folder"));
    }
    Ok(())
}

fn check_image(image: &str) -> Result<(), String> {
    let first_ok = image.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let chars_ok = image
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | ':' | '@' | '-'));
    if first_ok && chars_ok && !image.ends_with([':', '/', '@']) {
        Ok(())
    } else {
        Err(format!("invalid image reference {image:?}"))
    }
}

/// A Go duration as the registry parses it: `168h`, `1h30m`, `90s`, `1.5h`.
fn check_duration(v: &str) -> Result<(), String> {
    let bad = || format!("invalid duration {v:?} (e.g. 168h, 30m, 1h30m)");
    let mut rest = v;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num == 0 || rest[..num].parse::<f64>().is_err() {
            return Err(bad());
        }
        rest = &rest[num..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .filter(|u| rest.starts_with(u))
            .max_by_key(|u| u.len())
            .ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

/// A Kubernetes quantity: a decimal number with an optional SI or binary suffix.
fn check_quantity(q: &str) -> Result<(), String> {
    let num_end = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (num, suffix) = q.split_at(num_end);
    let num_ok = !num.is_empty() && num.parse::<f64>().is_ok();
    let suffixes = ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if num_ok && suffixes.contains(&suffix) {
        Ok(())
    } else {
        Err(format!("invalid quantity {q:?} (e.g. 100m, 1, 256Mi, 10Gi)"))
    }
}

/// `http.host`: `https://` and one of the deployment's pull addresses, so the certificate, the
/// pull secret and the trust bundle all cover the URL clients are sent to.
fn check_http_host(d: &Descriptor, url: &str) -> Result<(), String> {
    let addresses: Vec<String> = d.pull_addresses().into_iter().map(|a| a.address).collect();
    let authority = url.strip_prefix("https://").map(|r| r.strip_suffix('/').unwrap_or(r));
    match authority {
        Some(a) if addresses.iter().any(|p| p == a) => Ok(()),
        _ => Err(format!(
            "{url:?} must be https:// and one of this deployment's addresses ({}), which the \
             certificate, pull secret and trust bundle cover",
            addresses.iter().map(|a| format!("https://{a}")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A size in whole bytes from a quantity without a fraction of a byte: `1024`, `512Mi`,
/// `5Gi`, `10G`. Zero is refused (leave the key out for no limit).
pub fn quantity_bytes(q: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {q:?} (whole bytes, e.g. 512Mi, 5Gi, 10G)");
    let num_end = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (num, suffix) = q.split_at(num_end);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit: u64 = match suffix {
        "" => 1,
        "k" => 1000,
        "M" => 1000_u64.pow(2),
        "G" => 1000_u64.pow(3),
        "T" => 1000_u64.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit) {
        Some(0) => Err(format!("{q:?}: a limit of 0 bytes; leave it unset for no limit")),
        Some(bytes) => Ok(bytes),
        None => Err(bad()),
    }
}

/// An `http://` or `https://` URL with a host and no spaces.
fn check_url(u: &str) -> Result<(), String> {
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    let clean = !u.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"');
    match host {
        Some(h) if !h.is_empty() && clean => Ok(()),
        _ => Err(format!("invalid URL {u:?} (expected https://host[:port][/path])")),
    }
}

/// S3 bucket naming rules: 3-63 characters, lower case letters, digits, '.', '-'.
fn check_bucket(b: &str) -> Result<(), String> {
    let chars_ok =
        b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends_ok = b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&b.len()) && chars_ok && ends_ok {
        Ok(())
    } else {
        Err(format!("invalid bucket name {b:?} (3-63 lower-case letters, digits, '.', '-')"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in ["registry", "reg.example.com", "a-b.c0", "xn--bcher-kva.example"] {
            check_host(ok).unwrap();
        }
        for bad in ["*.example.com", "-a.com", "a..b", "Reg.example.com", "10.0.0.1", "a_b.com", ""]
        {
            assert!(check_host(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_host(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn durations_quantities_paths() {
        for ok in ["168h", "1h30m", "1.5h", "90s", "500ms"] {
            check_duration(ok).unwrap();
        }
        for bad in ["", "h", "10", "10x", "1h 30m"] {
            assert!(check_duration(bad).is_err(), "{bad:?} accepted");
        }
        for ok in ["100m", "1", "0.5", "256Mi", "10Gi"] {
            check_quantity(ok).unwrap();
        }
        for bad in ["", "Mi", "10 Gi", "10gb"] {
            assert!(check_quantity(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(quantity_bytes("5Gi"), Ok(5 << 30));
        assert_eq!(quantity_bytes("10G"), Ok(10_000_000_000));
        assert_eq!(quantity_bytes("1024"), Ok(1024));
        for bad in ["", "0", "1.5Gi", "100m", "5gb", "Gi", "99999999999999Ti"] {
            assert!(quantity_bytes(bad).is_err(), "{bad:?} accepted");
        }
        check_relative_path("pki/site.crt").unwrap();
        for bad in ["/etc/x", "../x", "a/../b", "a:b", "a b", "dir/"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
