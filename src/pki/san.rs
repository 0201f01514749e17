//! Subject alternative names: the typed [`SanEntry`] parsed from what users type
//! (`registry.lan`, `*.example.com`, `10.0.0.5`, `::1`, and openssl's `DNS:`/`IP:` forms,
//! also comma-separated). Nothing else in regkit builds a SAN from a raw string.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

use super::Error;

/// One subject alternative name: a DNS name (possibly a wildcard) or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", content = "value")]
pub enum SanEntry {
    /// A DNS name, lower-cased; a wildcard is `*.` followed by a name.
    #[serde(rename = "DNS")]
    Dns(String),
    /// An IPv4 or IPv6 address.
    #[serde(rename = "IP")]
    Ip(IpAddr),
}

impl SanEntry {
    /// Parses one value: `DNS:name`, `IP:addr`, or a bare name or address.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let value = raw.trim();
        let bad = |reason: &str| Error::BadSan { value: raw.to_string(), reason: reason.into() };
        if value.is_empty() {
            return Err(bad("empty value"));
        }
        let (kind, rest) = match value.split_once(':') {
            Some((k, r)) if k.eq_ignore_ascii_case("dns") => (Some("dns"), r.trim()),
            Some((k, r)) if k.eq_ignore_ascii_case("ip") => (Some("ip"), r.trim()),
            _ => (None, value),
        };
        match kind {
            Some("ip") => parse_ip(rest).map(SanEntry::Ip).ok_or_else(|| bad("not an IP address")),
            Some(_) => check_dns(rest).map(SanEntry::Dns).map_err(|r| bad(&r)),
            None => match parse_ip(rest) {
                Some(ip) => Ok(SanEntry::Ip(ip)),
                None if rest.contains(':') => {
                    Err(bad("not an IP address (use DNS:name or IP:address)"))
                }
                None => check_dns(rest).map(SanEntry::Dns).map_err(|r| bad(&r)),
            },
        }
    }

    /// Parses every comma-separated value of every argument, dropping duplicates while
    /// keeping the first-seen order.
    pub fn parse_list<S: AsRef<str>>(args: &[S]) -> Result<Vec<Self>, Error> {
        let mut out: Vec<SanEntry> = Vec::new();
        for arg in args {
            for part in arg.as_ref().split(',') {
                let entry = SanEntry::parse(part)?;
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
        Ok(out)
    }

    /// The rcgen form of this SAN.
    pub fn to_rcgen(&self) -> Result<rcgen::SanType, Error> {
        Ok(match self {
            SanEntry::Dns(name) => rcgen::SanType::DnsName(name.as_str().try_into()?),
            SanEntry::Ip(ip) => rcgen::SanType::IpAddress(*ip),
        })
    }

    /// The value without its `DNS:`/`IP:` tag, as a user would type it.
    pub fn value(&self) -> String {
        match self {
            SanEntry::Dns(n) => n.clone(),
            SanEntry::Ip(ip) => ip.to_string(),
        }
    }
}

impl FromStr for SanEntry {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        SanEntry::parse(s)
    }
}

impl fmt::Display for SanEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanEntry::Dns(n) => write!(f, "DNS:{n}"),
            SanEntry::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// Joins SANs as a `--san` argument value (`a,b,c`).
pub fn join_values(sans: &[SanEntry]) -> String {
    sans.iter().map(SanEntry::value).collect::<Vec<_>>().join(",")
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

/// Validates a DNS name (RFC 1123 labels, optional leading `*.` wildcard) and lower-cases it.
fn check_dns(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return Err("empty DNS name".into());
    }
    if name.len() > 253 {
        return Err("DNS name longer than 253 characters".into());
    }
    let mut labels: Vec<&str> = name.split('.').collect();
    if labels[0] == "*" {
        if labels.len() < 2 {
            return Err("a wildcard needs a name after `*.`".into());
        }
        labels.remove(0);
    }
    for label in &labels {
        if label.is_empty() {
            return Err("empty label (two dots in a row?)".into());
        }
        if label.contains('*') {
            return Err(
                "a wildcard is only allowed as the whole leftmost label (`*.example.com`)".into()
            );
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("label {label:?} has characters other than a-z, 0-9 and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    if labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("looks like an IP address but is not a valid one".into());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let got = SanEntry::parse_list(&[
            "registry.LAN,DNS:*.example.com",
            "IP:192.168.1.102",
            "::1",
            "[fe80::1]",
            "10.0.0.5, localhost",
        ])
        .unwrap();
        let want = vec![
            SanEntry::Dns("registry.lan".into()),
            SanEntry::Dns("*.example.com".into()),
            SanEntry::Ip("192.168.1.102".parse().unwrap()),
            SanEntry::Ip("::1".parse().unwrap()),
            SanEntry::Ip("fe80::1".parse().unwrap()),
            SanEntry::Ip("10.0.0.5".parse().unwrap()),
            SanEntry::Dns("localhost".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "a..b",
            "foo*.example.com",
            "a.*.example.com",
            "*",
            "-bad.example.com",
            "under score!.com",
            "IP:registry.lan",
            "300.1.1.1",
            "1.2.3",
            "fe80::zz",
            "a,",
        ] {
            assert!(SanEntry::parse_list(&[bad]).is_err(), "{bad:?} should be rejected");
        }
        let err = SanEntry::parse("IP:nope").unwrap_err().to_string();
        assert!(err.contains("malformed SAN \"IP:nope\""), "{err}");
    }

    #[test]
    fn dedupes_and_displays() {
        let got = SanEntry::parse_list(&["a.lan,A.lan,DNS:a.lan"]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to_string(), "DNS:a.lan");
        assert_eq!(join_values(&SanEntry::parse_list(&["x.lan,::1"]).unwrap()), "x.lan,::1");
    }
}
