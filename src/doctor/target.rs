//! The registry address being diagnosed: scheme, host and port parsed from what the user typed
//! (`https://HOST:PORT`, `http://HOST:PORT` or a bare `HOST[:PORT]` as in an image reference),
//! and the names clients derive from it (the `/v2/` URL, the `Host` header, certs.d dir names).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::Error;

/// How the client talks to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (an "insecure registry" in Docker's terms).
    Http,
    /// HTTP over TLS, what every client uses by default.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed registry address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The scheme (https when none was typed, as Docker does).
    pub scheme: Scheme,
    /// The host name or IP address, without IPv6 brackets.
    pub host: String,
    /// The host as an IP address, when it is one.
    pub ip: Option<IpAddr>,
    /// The TCP port (443/80 when none was typed).
    pub port: u16,
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadUrl { url: input.to_string(), reason: reason.into() };
        let (scheme, rest) = match input.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some((other, _)) => return Err(bad(&format!("unsupported scheme {other:?}"))),
            None => (Scheme::Https, input),
        };
        let authority = match rest.split_once('/') {
            Some((auth, path)) if path.is_empty() || path == "v2" || path == "v2/" => auth,
            Some(_) => return Err(bad("give only the registry address, without a path")),
            None => rest,
        };
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not accepted; use --user"));
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (h, tail) = after.split_once(']').ok_or_else(|| bad("unclosed '[' in host"))?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => {
                    return Err(bad("IPv6 addresses must be written in brackets: [::1]:5000"));
                }
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() && !valid_dns_name(host) {
            return Err(bad(&format!("{host:?} is neither an IP address nor a host name")));
        }
        let port = match port {
            None => match scheme {
                Scheme::Https => 443,
                Scheme::Http => 80,
            },
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad(&format!("invalid port {p:?}"))),
            },
        };
        Ok(Target { scheme, host: host.to_ascii_lowercase(), ip, port })
    }
}

impl Target {
    /// `host:port` as it appears in an image reference and in the `Host` header (IPv6 in
    /// brackets).
    pub fn authority(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// The URL a client pings first, e.g. `https://10.0.0.1:5000/v2/`.
    pub fn v2_url(&self) -> String {
        format!("{}://{}/v2/", self.scheme.as_str(), self.authority())
    }

    /// The names clients' configuration gives this registry (directories under `certs.d/`,
    /// `insecure-registries` entries, `location`s): always `host:port`, and first the plain
    /// `host` when an image reference without a port reaches this port: 443, and for a plain
    /// HTTP registry also 80 (where an insecure registry falls back to).
    pub fn config_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.port == 443 || (self.port == 80 && self.scheme == Scheme::Http) {
            names.push(match self.ip {
                Some(IpAddr::V6(_)) => format!("[{}]", self.host),
                _ => self.host.clone(),
            });
        }
        names.push(self.authority());
        names
    }

    /// True for 127.0.0.0/8, ::1, `localhost` and names under `.localhost`: traffic that stays
    /// on this machine. (Which of them Docker treats as insecure registries is
    /// [`Target::docker_insecure_by_default`].)
    pub fn is_loopback(&self) -> bool {
        match self.ip {
            Some(ip) => ip.is_loopback(),
            None => self.host == "localhost" || self.host.ends_with(".localhost"),
        }
    }

    /// True when dockerd treats the registry as insecure whatever its configuration says: it
    /// always adds 127.0.0.0/8 to `insecure-registries` and matches a name by the addresses
    /// it resolves to, so an IP in 127.0.0.0/8 or `localhost`. Not ::1, which only Docker
    /// releases from late 2024 on add, nor a name under `.localhost`, which resolves to
    /// loopback only with some resolvers.
    pub fn docker_insecure_by_default(&self) -> bool {
        match self.ip {
            Some(IpAddr::V4(ip)) => ip.is_loopback(),
            Some(IpAddr::V6(_)) => false,
            None => self.host == "localhost",
        }
    }

    /// The same registry with another scheme (used to suggest the right URL).
    pub fn with_scheme(&self, scheme: Scheme) -> Target {
        Target { scheme, ..self.clone() }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

fn valid_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        let t: Target = "https://10.0.0.1:5000".parse().unwrap();
        assert_eq!((t.scheme, t.host.as_str(), t.port), (Scheme::Https, "10.0.0.1", 5000));
        assert_eq!(t.v2_url(), "https://10.0.0.1:5000/v2/");
        let t: Target = "registry.example.com".parse().unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Https, 443));
        assert_eq!(t.config_names(), ["registry.example.com", "registry.example.com:443"]);
        let plain = |s: &str| s.parse::<Target>().unwrap().config_names();
        assert_eq!(plain("http://reg.lan"), ["reg.lan", "reg.lan:80"]);
        assert_eq!(plain("http://[::1]:443"), ["[::1]", "[::1]:443"]);
        assert_eq!(plain("reg.lan:80"), ["reg.lan:80"]);
        assert_eq!(plain("http://reg.lan:5000"), ["reg.lan:5000"]);
        let t: Target = "http://[::1]:5000/v2/".parse().unwrap();
        assert_eq!((t.scheme, t.authority()), (Scheme::Http, "[::1]:5000".to_string()));
        assert!(t.is_loopback());
        assert!(!"https://192.168.1.102:5000".parse::<Target>().unwrap().is_loopback());
        let docker = |s: &str| s.parse::<Target>().unwrap().docker_insecure_by_default();
        assert!(docker("http://127.0.0.1:5000") && docker("127.1.2.3") && docker("localhost:5000"));
        assert!(!docker("http://[::1]:5000") && !docker("reg.localhost") && !docker("10.0.0.1"));
    }

    #[test]
    fn rejects_what_is_not_a_registry_address() {
        for bad in [
            "ftp://x",
            "https://h:0",
            "https://h:99999",
            "https://",
            "https://a b:1",
            "https://u:p@h:5000",
            "https://h:5000/v2/x/tags/list",
            "::1:5000",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad} accepted");
        }
    }
}
