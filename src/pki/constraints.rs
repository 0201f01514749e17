//! Name constraints (RFC 5280 4.2.1.10): building them for `regkit certs ca --permit-dns/
//! --permit-ip`, and checking a leaf's names against a CA's constraints before it is signed.
//!
//! A constraint only limits names of its own type, so a CA that permits only DNS subtrees
//! would still vouch for any IP address (and one that permits only IP ranges for any DNS
//! name). When only one kind is given, the other kind is therefore excluded entirely:
//! `0.0.0.0/0` and `::/0` for a DNS-only CA, the empty dNSName (which matches every name in
//! OpenSSL, Go and webpki alike) for an IP-only CA.
//!
//! The check mirrors what clients do: per name type, a name must match one permitted subtree
//! of its type (when there are any) and no excluded one. A subject CN is checked as a DNS name
//! when the certificate has no DNS SAN and the CN looks like a host name, because OpenSSL does.

use std::fmt;
use std::net::IpAddr;

use rcgen::{CidrSubnet, DistinguishedName, DnType, DnValue, GeneralSubtree, NameConstraints};
use x509_parser::prelude::{GeneralName, X509Certificate};

use super::verify::ip_from_bytes;
use super::{Error, SanEntry};

/// Builds the name constraints of a new CA from `--permit-dns` and `--permit-ip` values
/// (repeatable, comma lists); `None` when both are empty.
pub(crate) fn build(dns: &[String], ips: &[String]) -> Result<Option<NameConstraints>, Error> {
    let mut permitted = Vec::new();
    for raw in dns.iter().flat_map(|v| v.split(',')) {
        let bad = |reason: &str| Error::BadConstraint { value: raw.into(), reason: reason.into() };
        let trimmed = raw.trim().trim_start_matches('.');
        match SanEntry::parse(trimmed) {
            Ok(SanEntry::Dns(name)) if !name.starts_with('*') => {
                permitted.push(GeneralSubtree::DnsName(name))
            }
            _ => return Err(bad("expected a DNS domain such as example.com")),
        }
    }
    let dns_given = !permitted.is_empty();
    for raw in ips.iter().flat_map(|v| v.split(',')) {
        permitted.push(GeneralSubtree::IpAddress(parse_cidr(raw)?));
    }
    let ip_given = permitted.iter().any(|s| matches!(s, GeneralSubtree::IpAddress(_)));
    let mut excluded = Vec::new();
    if dns_given && !ip_given {
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([0; 4], 0)));
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix([0; 16], 0)));
    }
    if ip_given && !dns_given {
        excluded.push(GeneralSubtree::DnsName(String::new()));
    }
    Ok((!permitted.is_empty())
        .then_some(NameConstraints { permitted_subtrees: permitted, excluded_subtrees: excluded }))
}

/// Parses `10.0.0.0/8` (or a bare address, a /32 or /128); host bits are cleared.
fn parse_cidr(raw: &str) -> Result<CidrSubnet, Error> {
    let bad = |reason: &str| Error::BadConstraint { value: raw.into(), reason: reason.into() };
    let v = raw.trim();
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr: IpAddr =
        addr.parse().map_err(|_| bad("expected an address/prefix such as 10.0.0.0/8"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => {
            p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| bad("bad prefix length"))?
        }
        None => max,
    };
    Ok(match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            CidrSubnet::from_v4_prefix((u32::from(a) & mask).to_be_bytes(), prefix)
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            CidrSubnet::from_v6_prefix((u128::from(a) & mask).to_be_bytes(), prefix)
        }
    })
}

/// One subtree of a CA's name constraints, as far as regkit judges names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subtree {
    /// A DNS subtree (lower-case; empty matches every name; a leading dot: subdomains only).
    Dns(String),
    /// An address and mask of equal length (4 + 4 or 16 + 16 bytes).
    Ip { addr: Vec<u8>, mask: Vec<u8> },
    /// A type regkit never issues (e-mail, URI, directory name...): never matches a SAN.
    Other(String),
}

impl fmt::Display for Subtree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subtree::Dns(d) if d.is_empty() => f.write_str("every DNS name"),
            Subtree::Dns(d) => write!(f, "DNS:{d}"),
            Subtree::Ip { addr, mask } => {
                let shown =
                    ip_from_bytes(addr).map_or_else(|| hex::encode(addr), |a| a.to_string());
                match prefix_len(mask) {
                    Some(p) => write!(f, "IP:{shown}/{p}"),
                    None => write!(f, "IP:{shown}/{}", hex::encode(mask)),
                }
            }
            Subtree::Other(s) => f.write_str(s),
        }
    }
}

fn prefix_len(mask: &[u8]) -> Option<u32> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let contiguous = mask.iter().enumerate().all(|(i, b)| {
        let want = ones.saturating_sub(8 * i as u32).min(8);
        *b == (0xffu16 << (8 - want)) as u8
    });
    contiguous.then_some(ones)
}

/// A name a leaf certificate carries.
enum Name<'a> {
    Dns(&'a str),
    Ip(IpAddr),
}

impl Subtree {
    fn same_type(&self, name: &Name<'_>) -> bool {
        matches!((self, name), (Subtree::Dns(_), Name::Dns(_)) | (Subtree::Ip { .. }, Name::Ip(_)))
    }

    /// True when `name` lies inside this subtree (`excluded`: a wildcard counts when any of
    /// its expansions could, as webpki and Go judge it).
    fn contains(&self, name: &Name<'_>, excluded: bool) -> bool {
        match (self, name) {
            (Subtree::Dns(c), Name::Dns(n)) => {
                let n = n.to_ascii_lowercase();
                dns_within(&n, c)
                    || (excluded
                        && n.strip_prefix("*.").is_some_and(|rest| {
                            let c = c.trim_start_matches('.');
                            c.strip_suffix(rest)
                                .and_then(|l| l.strip_suffix('.'))
                                .is_some_and(|label| !label.is_empty() && !label.contains('.'))
                        }))
            }
            (Subtree::Ip { addr, mask }, Name::Ip(ip)) => {
                let bytes = match ip {
                    IpAddr::V4(a) => a.octets().to_vec(),
                    IpAddr::V6(a) => a.octets().to_vec(),
                };
                bytes.len() == addr.len()
                    && bytes.iter().zip(addr).zip(mask).all(|((b, a), m)| b & m == a & m)
            }
            _ => false,
        }
    }
}

/// RFC 5280: a name is within a DNS subtree when labels can be added to the left of the
/// constraint to form it; a leading dot admits only names with at least one label more.
fn dns_within(name: &str, constraint: &str) -> bool {
    let c = constraint.to_ascii_lowercase();
    if c.is_empty() {
        return true;
    }
    if c.starts_with('.') {
        return name.len() > c.len() && name.ends_with(&c);
    }
    name == c || name.strip_suffix(&c).is_some_and(|prefix| prefix.ends_with('.'))
}

/// The name constraints of a CA certificate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Constraints {
    permitted: Vec<Subtree>,
    excluded: Vec<Subtree>,
}

impl Constraints {
    /// Reads the nameConstraints extension of `ca`; `None` when it has none.
    pub(crate) fn of_cert(ca: &X509Certificate<'_>) -> Result<Option<Self>, String> {
        let Some(ext) = ca.name_constraints().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let convert = |trees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
            trees.iter().flatten().map(|t| subtree_of(&t.base)).collect::<Vec<_>>()
        };
        Ok(Some(Constraints {
            permitted: convert(&ext.value.permitted_subtrees),
            excluded: convert(&ext.value.excluded_subtrees),
        }))
    }

    fn allows(&self, name: &Name<'_>) -> bool {
        let mut of_type = self.permitted.iter().filter(|s| s.same_type(name)).peekable();
        let permitted = of_type.peek().is_none() || of_type.any(|s| s.contains(name, false));
        permitted && !self.excluded.iter().any(|s| s.contains(name, true))
    }

    /// `pki/ca.crt permits DNS:lan; excludes IP:0.0.0.0/0, IP:::/0`.
    fn describe(&self) -> String {
        let list = |v: &[Subtree]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match (self.permitted.is_empty(), self.excluded.is_empty()) {
            (false, false) => {
                format!("permits {}; excludes {}", list(&self.permitted), list(&self.excluded))
            }
            (false, true) => format!("permits {}", list(&self.permitted)),
            (true, false) => format!("excludes {}", list(&self.excluded)),
            (true, true) => "has empty name constraints".into(),
        }
    }

    /// Checks the SANs and the subject of a leaf before it is signed. `ca` names the CA in the
    /// error.
    pub(crate) fn check_leaf(
        &self,
        ca: &str,
        dn: &DistinguishedName,
        sans: &[SanEntry],
    ) -> Result<(), Error> {
        for san in sans {
            let name = match san {
                SanEntry::Dns(d) => Name::Dns(d),
                SanEntry::Ip(ip) => Name::Ip(*ip),
            };
            if !self.allows(&name) {
                return Err(Error::OutsideConstraints {
                    name: san.to_string(),
                    ca: format!("{ca} {}", self.describe()),
                    fix: "use only names the CA permits, or a CA that permits them".into(),
                });
            }
        }
        if sans.iter().any(|s| matches!(s, SanEntry::Dns(_))) {
            return Ok(());
        }
        match common_name(dn) {
            Some(cn) if looks_like_host_name(&cn) && !self.allows(&Name::Dns(&cn)) => {
                Err(Error::OutsideConstraints {
                    name: format!("the subject CN {cn}"),
                    ca: format!("{ca} {}", self.describe()),
                    fix: "without a DNS SAN, OpenSSL checks a CN that looks like a host name \
                          as a DNS name: choose a --cn that is not a host name, or add a DNS SAN"
                        .into(),
                })
            }
            _ => Ok(()),
        }
    }
}

fn subtree_of(g: &GeneralName<'_>) -> Subtree {
    match g {
        GeneralName::DNSName(d) => Subtree::Dns(d.to_ascii_lowercase()),
        GeneralName::IPAddress(b) if b.len() == 8 || b.len() == 32 => {
            let (addr, mask) = b.split_at(b.len() / 2);
            Subtree::Ip { addr: addr.to_vec(), mask: mask.to_vec() }
        }
        other => Subtree::Other(other.to_string()),
    }
}

fn common_name(dn: &DistinguishedName) -> Option<String> {
    match dn.get(&DnType::CommonName)? {
        DnValue::Utf8String(s) => Some(s.clone()),
        DnValue::PrintableString(s) => Some(s.as_str().to_string()),
        DnValue::Ia5String(s) => Some(s.as_str().to_string()),
        DnValue::TeletexString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// OpenSSL's test (`cn2dnsid` in v3_ncons.c) for a CN to be checked as a DNS name: letters,
/// digits, `_`, and `-`/`.` inside, with at least one dot between two labels.
pub(crate) fn looks_like_host_name(cn: &str) -> bool {
    let b = cn.as_bytes();
    let mut dotted = false;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == b'_' {
            continue;
        }
        if i > 0 && i + 1 < b.len() {
            if c == b'-' {
                continue;
            }
            if c == b'.' && b[i + 1] != b'.' && b[i - 1] != b'-' && b[i + 1] != b'-' {
                dotted = true;
                continue;
            }
        }
        return false;
    }
    dotted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraints(nc: &NameConstraints) -> Constraints {
        let conv = |v: &[GeneralSubtree]| {
            v.iter()
                .map(|s| match s {
                    GeneralSubtree::DnsName(d) => Subtree::Dns(d.clone()),
                    GeneralSubtree::IpAddress(c) => {
                        let bytes = cidr_bytes(c);
                        let (a, m) = bytes.split_at(bytes.len() / 2);
                        Subtree::Ip { addr: a.to_vec(), mask: m.to_vec() }
                    }
                    _ => Subtree::Other("other".into()),
                })
                .collect()
        };
        Constraints {
            permitted: conv(&nc.permitted_subtrees),
            excluded: conv(&nc.excluded_subtrees),
        }
    }

    fn cidr_bytes(c: &CidrSubnet) -> Vec<u8> {
        match c {
            CidrSubnet::V4(a, m) => [a.as_slice(), m.as_slice()].concat(),
            CidrSubnet::V6(a, m) => [a.as_slice(), m.as_slice()].concat(),
        }
    }

    fn allowed(c: &Constraints, san: &str) -> bool {
        c.check_leaf("ca", &DistinguishedName::new(), &[SanEntry::parse(san).unwrap()]).is_ok()
    }

    #[test]
    fn parse_and_reject() {
        let nc = build(&["example.com,.lan".into()], &["10.1.0.0/8".into(), "::1".into()])
            .unwrap()
            .unwrap();
        assert_eq!(nc.permitted_subtrees.len(), 4);
        assert!(nc.excluded_subtrees.is_empty(), "both kinds given: nothing excluded");
        assert_eq!(
            nc.permitted_subtrees[2],
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([10, 0, 0, 0], 8)),
            "host bits are cleared"
        );
        assert!(build(&[], &[]).unwrap().is_none());
        assert!(build(&["*.x.com".into()], &[]).is_err());
        assert!(build(&[], &["10.0.0.0/33".into()]).is_err());
        assert!(build(&[], &["ten/8".into()]).is_err());
    }

    #[test]
    fn one_kind_excludes_the_other_entirely() {
        let dns_only = build(&["lan".into()], &[]).unwrap().unwrap();
        assert_eq!(
            dns_only.excluded_subtrees,
            [
                GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([0; 4], 0)),
                GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix([0; 16], 0)),
            ]
        );
        let c = constraints(&dns_only);
        assert!(allowed(&c, "registry.lan") && allowed(&c, "lan") && allowed(&c, "*.a.lan"));
        for bad in ["www.google.com", "xlan", "8.8.8.8", "::1", "10.0.0.1"] {
            assert!(!allowed(&c, bad), "{bad} must be refused by a DNS-only CA");
        }
        let ip_only = build(&[], &["10.0.0.0/8".into()]).unwrap().unwrap();
        assert_eq!(ip_only.excluded_subtrees, [GeneralSubtree::DnsName(String::new())]);
        let c = constraints(&ip_only);
        assert!(allowed(&c, "10.200.0.1"));
        for bad in ["www.google.com", "localhost", "11.0.0.1", "::ffff:10.0.0.1"] {
            assert!(!allowed(&c, bad), "{bad} must be refused by an IP-only CA");
        }
        let err = c
            .check_leaf(
                "pki/ca.crt",
                &DistinguishedName::new(),
                &[SanEntry::parse("a.lan").unwrap()],
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "DNS:a.lan is outside the CA's name constraints (pki/ca.crt permits \
                 IP:10.0.0.0/8; excludes every DNS name)"
            ),
            "{err}"
        );
    }

    #[test]
    fn dns_subtree_rules() {
        assert!(dns_within("a.example.com", "example.com"));
        assert!(dns_within("example.com", "EXAMPLE.com"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(dns_within("a.example.com", ".example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("anything", ""));
        // A wildcard is inside a permitted subtree only when all its expansions are; it hits an
        // excluded subtree when one expansion could.
        let c = Constraints {
            permitted: vec![],
            excluded: vec![Subtree::Dns("www.example.com".into())],
        };
        assert!(!c.allows(&Name::Dns("*.example.com")));
        assert!(c.allows(&Name::Dns("*.other.com")));
        let c = Constraints {
            permitted: vec![Subtree::Dns("www.example.com".into())],
            excluded: vec![],
        };
        assert!(!c.allows(&Name::Dns("*.example.com")));
        assert!(c.allows(&Name::Dns("*.www.example.com")));
    }

    #[test]
    fn cn_checked_like_openssl_when_there_is_no_dns_san() {
        for (cn, host) in [
            ("10.1.2.3", true),
            ("registry.lan", true),
            ("localhost", false),
            ("regkit site", false),
            ("::1", false),
            ("-a.b", false),
            ("a..b", false),
        ] {
            assert_eq!(looks_like_host_name(cn), host, "{cn}");
        }
        let c = constraints(&build(&["lan".into()], &["10.0.0.0/8".into()]).unwrap().unwrap());
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "10.1.2.3");
        let ip = [SanEntry::parse("10.1.2.3").unwrap()];
        let err = c.check_leaf("ca", &dn, &ip).unwrap_err().to_string();
        assert!(err.contains("the subject CN 10.1.2.3 is outside"), "{err}");
        let with_dns = [ip[0].clone(), SanEntry::parse("r.lan").unwrap()];
        c.check_leaf("ca", &dn, &with_dns).unwrap();
        c.check_leaf("ca", &DistinguishedName::new(), &ip).unwrap();
        assert_eq!(prefix_len(&[255, 255, 240, 0]), Some(20));
        assert_eq!(prefix_len(&[255, 0, 255, 0]), None);
    }
}
