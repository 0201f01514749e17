//! The name rules the Kubernetes API server applies, checked before anything is written so a
//! manifest that `kubectl apply` would refuse is never produced: object names are RFC 1123
//! subdomains, namespaces RFC 1123 labels, and Secret data keys follow `IsConfigMapKey`.

use super::Error;

const SUBDOMAIN_MAX: usize = 253;
const LABEL_MAX: usize = 63;

/// Checks an object name (Secret, ServiceAccount, referenced pull secret): a lowercase RFC
/// 1123 subdomain, at most 253 characters.
pub fn validate_name(what: &'static str, value: &str) -> Result<(), Error> {
    dns1123_subdomain(value).map_err(|why| Error::InvalidName {
        what,
        value: value.to_string(),
        why,
    })
}

/// Checks a namespace: a lowercase RFC 1123 label, at most 63 characters.
pub fn validate_namespace(value: &str) -> Result<(), Error> {
    dns1123_label(value).map_err(|why| Error::InvalidName {
        what: "namespace",
        value: value.to_string(),
        why,
    })
}

/// Checks a key of a Secret's `data`: `[-._a-zA-Z0-9]+`, at most 253 characters, and not
/// `.`, `..` or anything starting with `..` (the rules of kubectl and the API server).
pub fn validate_data_key(key: &str) -> Result<(), Error> {
    let why = if key.is_empty() {
        "it is empty"
    } else if key.len() > SUBDOMAIN_MAX {
        "it is longer than 253 characters"
    } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        "a valid key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'ca.crt')"
    } else if key == "." || key == ".." {
        "it must not be '.' or '..'"
    } else if key.starts_with("..") {
        "it must not start with '..'"
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey { key: key.to_string(), why })
}

fn dns1123_label(value: &str) -> Result<(), String> {
    if value.len() > LABEL_MAX {
        return Err(format!("it is {} characters long; the limit is {LABEL_MAX}", value.len()));
    }
    if label_ok(value) {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (e.g. 'my-name')"
            .to_string())
    }
}

fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() > SUBDOMAIN_MAX {
        return Err(format!("it is {} characters long; the limit is {SUBDOMAIN_MAX}", value.len()));
    }
    if value.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com')"
            .to_string())
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn label_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc1123() {
        for ok in ["a", "regcred", "my-secret.v1", "0abc", &"a".repeat(253)] {
            validate_name("name", ok).unwrap();
        }
        for bad in ["", "Regcred", "-a", "a-", "a..b", ".a", "a_b", "a b", &"a".repeat(254)] {
            assert!(validate_name("name", bad).is_err(), "{bad:?}");
        }
        validate_namespace("kube-system").unwrap();
        for bad in ["a.b", "Ns", "", &"a".repeat(64)] {
            assert!(validate_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_keys_follow_kubectl() {
        for ok in ["ca.crt", ".dockerconfigjson", "KEY_NAME", "a-b", ".a"] {
            validate_data_key(ok).unwrap();
        }
        for bad in ["", ".", "..", "..a", "a b", "a/b", "é"] {
            assert!(validate_data_key(bad).is_err(), "{bad:?}");
        }
    }
}
