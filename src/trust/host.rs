//! `RegistryHost`: the `HOST[:PORT]` a client writes in an image reference, parsed once so
//! that no raw user string is ever joined into a path. It owns Docker's directory-name rule
//! (no `:443` for the default HTTPS port) and the flat form used in file names.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::Error;

/// The host part of a registry address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lower-cased.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets in references and directory names).
    V6(Ipv6Addr),
}

/// A registry address as clients name it: host or IP, with an optional port.
///
/// Port 443 is dropped on parsing: Docker (and containerd, Podman and k3s after it) name the
/// trust directory after the image reference, and references to the default HTTPS port carry
/// no port, so `certs.d/host:443` would never be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    host: Host,
    port: Option<u16>,
    dropped_default_port: bool,
}

impl RegistryHost {
    /// The host part.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port, or `None` for the default HTTPS port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// True when the input said `:443` and the port was dropped (worth a note to the user).
    pub fn dropped_default_port(&self) -> bool {
        self.dropped_default_port
    }

    /// The directory name under `certs.d` (`host`, `host:5000`, `[::1]:5000`); same as
    /// [`Display`](fmt::Display).
    pub fn authority(&self) -> String {
        self.to_string()
    }

    /// A form safe in any file name: `:` becomes `_` and IPv6 brackets are dropped
    /// (`reg.example.com_5000`, `__1_5000`).
    pub fn flat(&self) -> String {
        self.authority().replace(['[', ']'], "").replace(':', "_")
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(n) => write!(f, "{n}")?,
            Host::V4(a) => write!(f, "{a}")?,
            Host::V6(a) => write!(f, "[{a}]")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl FromStr for RegistryHost {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let bad =
            |reason: &str| Error::Registry { value: input.to_string(), reason: reason.into() };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("is empty; give HOST or HOST:PORT"));
        }
        if s.contains("://") {
            return Err(bad("has a scheme; give HOST[:PORT] only (drop the \"https://\")"));
        }
        if s.contains('/') {
            return Err(bad("contains '/'; give HOST[:PORT] only, not an image or URL path"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((addr, after)) = rest.split_once(']') else {
                return Err(bad("has '[' without a closing ']'"));
            };
            let addr: Ipv6Addr =
                addr.parse().map_err(|_| bad("is not a valid IPv6 address inside [...]"))?;
            let port = match after {
                "" => None,
                p => match p.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Err(bad("has text after ']' that is not ':PORT'")),
                },
            };
            (Host::V6(addr), port)
        } else if s.matches(':').count() > 1 {
            // "::1:5000" is itself a valid IPv6 address, so a bare one is ambiguous; image
            // references write IPv6 in brackets anyway.
            return Err(bad("looks like IPv6: write it in brackets, [::1] or [::1]:5000"));
        } else {
            let (h, p) = match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            };
            (parse_name_or_v4(h).map_err(|r| bad(&r))?, p)
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad(&format!("has port {p:?}; use 1 to 65535"))),
                Ok(n) => Some(n),
            },
        };
        Ok(RegistryHost {
            host,
            port: port.filter(|&p| p != 443),
            dropped_default_port: port == Some(443),
        })
    }
}

fn parse_name_or_v4(h: &str) -> Result<Host, String> {
    if h.is_empty() {
        return Err("has no host before ':'".into());
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return h
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| format!("{h:?} is not a valid IPv4 address"));
    }
    if h.len() > 253 {
        return Err("host name is longer than 253 characters".into());
    }
    for label in h.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "host name label {label:?} is not valid (letters, digits and inner '-', 1-63 long)"
            ));
        }
    }
    Ok(Host::Name(h.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RegistryHost {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_names_ips_and_ports() {
        assert_eq!(parse("Reg.Example.com").authority(), "reg.example.com");
        assert_eq!(parse("reg.example.com:5000").authority(), "reg.example.com:5000");
        assert_eq!(parse("10.0.0.7:5000").authority(), "10.0.0.7:5000");
        assert_eq!(parse("localhost").authority(), "localhost");
        assert_eq!(parse("[::1]:5000").authority(), "[::1]:5000");
        assert_eq!(parse("[fd00::1]").authority(), "[fd00::1]");
        assert_eq!(parse("[::1]:5000").flat(), "__1_5000");
        assert_eq!(parse("reg.example.com:5000").flat(), "reg.example.com_5000");
    }

    #[test]
    fn port_443_follows_dockers_no_port_rule() {
        let h = parse("reg.example.com:443");
        assert_eq!(h.authority(), "reg.example.com");
        assert!(h.dropped_default_port());
        assert!(!parse("reg.example.com").dropped_default_port());
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for (input, reason) in [
            ("", "is empty"),
            ("https://reg:5000", "scheme"),
            ("reg:5000/library/nginx", "contains '/'"),
            ("reg:0", "port \"0\""),
            ("reg:99999", "port \"99999\""),
            ("reg:abc", "port \"abc\""),
            ("::1:5000", "in brackets"),
            ("[::1", "closing"),
            ("[::1]5000", "after ']'"),
            ("[nothex]:5000", "IPv6"),
            ("300.1.1.1", "IPv4"),
            ("bad_name", "label"),
            ("-x.example", "label"),
            ("a..b", "label"),
            (":5000", "no host"),
        ] {
            let err = input.parse::<RegistryHost>().unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
            assert!(err.contains("--registry"), "{input:?}: {err}");
        }
    }
}
