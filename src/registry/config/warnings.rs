//! What a valid configuration still deserves a warning for at start-up: keys regkit ignores,
//! plain HTTP, an open registry other machines can reach, and a TLS key others can read.
//! [`warnings`] only looks at the settings (and the key file's mode); printing is the CLI's.

use std::fmt;
use std::path::PathBuf;

use super::{EMBEDDED_TLS_CERT, EMBEDDED_TLS_KEY, ServeConfig};

/// One start-up warning. `Display` gives the text, ending with what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Keys present in the configuration that regkit ignores (named together, once).
    Unsupported(Vec<String>),
    /// No TLS: traffic and passwords cross the network in clear.
    PlainHttp {
        /// `http.addr`.
        addr: String,
    },
    /// No authentication on an address other machines can reach.
    OpenRegistry {
        /// `http.addr`.
        addr: String,
    },
    /// The TLS private key file is readable by group or others.
    ReadableKey {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Every warning `cfg` deserves, in the order they should be shown.
pub fn warnings(cfg: &ServeConfig) -> Vec<Warning> {
    let mut out = Vec::new();
    if !cfg.unsupported.is_empty() {
        out.push(Warning::Unsupported(cfg.unsupported.clone()));
    }
    if cfg.tls.is_none() {
        out.push(Warning::PlainHttp { addr: cfg.addr.clone() });
    }
    if cfg.auth.is_none() && !cfg.is_loopback() {
        out.push(Warning::OpenRegistry { addr: cfg.addr.clone() });
    }
    if let Some(tls) = &cfg.tls
        && let Some(mode) = crate::files::mode_of(&tls.key)
        && mode & 0o077 != 0
    {
        out.push(Warning::ReadableKey { path: tls.key.clone(), mode });
    }
    out
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Unsupported(keys) => write!(
                f,
                "configuration keys not supported by regkit are ignored: {}",
                keys.join(", ")
            ),
            Warning::PlainHttp { addr } => write!(
                f,
                "serving PLAIN HTTP on {addr}: no TLS certificate is configured (the default \
                 looks for {EMBEDDED_TLS_CERT} and {EMBEDDED_TLS_KEY}). Traffic and passwords \
                 are readable on the wire and clients must mark this registry insecure. Create \
                 certificates with `regkit certs site` or pass --tls-cert/--tls-key."
            ),
            Warning::OpenRegistry { addr } => write!(
                f,
                "no authentication is configured and {addr} is reachable from other machines: \
                 anyone who can connect can push and delete. Add auth.htpasswd or pass \
                 --htpasswd."
            ),
            Warning::ReadableKey { path, mode } => write!(
                f,
                "the TLS private key {} is readable by other users (mode {mode:04o}); fix \
                 with: chmod 600 {}",
                path.display(),
                path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::registry::config::{Overrides, load_in};

    fn cfg(text: &str, flags: &Overrides) -> ServeConfig {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yml");
        std::fs::write(&file, text).unwrap();
        load_in(dir.path(), Some(&file), std::iter::empty(), flags).unwrap()
    }

    #[test]
    fn plain_http_on_loopback_warns_only_about_plain_http() {
        let c = cfg("http: {addr: 127.0.0.1:5000}", &Overrides::default());
        assert_eq!(warnings(&c), [Warning::PlainHttp { addr: "127.0.0.1:5000".into() }]);
        assert!(warnings(&c)[0].to_string().starts_with("serving PLAIN HTTP on 127.0.0.1:5000"));
    }

    #[test]
    fn open_registry_off_loopback_and_unsupported_keys() {
        let flags = Overrides { insecure_http: true, ..Default::default() };
        let c = cfg(
            "http: {addr: ':5000'}\nhealth: {storagedriver: {enabled: true, interval: 10s}}",
            &flags,
        );
        let w = warnings(&c);
        assert_eq!(
            w,
            [
                Warning::Unsupported(vec!["health.storagedriver".into()]),
                Warning::PlainHttp { addr: ":5000".into() },
                Warning::OpenRegistry { addr: ":5000".into() },
            ]
        );
        assert!(w[2].to_string().contains(":5000 is reachable from other machines"), "{}", w[2]);
        assert!(w[0].to_string().ends_with("ignored: health.storagedriver"), "{}", w[0]);
        // With a password file nobody is let in unasked.
        let flags = Overrides { htpasswd: Some("/h".into()), ..flags };
        let c = cfg("http: {addr: ':5000'}", &flags);
        assert_eq!(warnings(&c), [Warning::PlainHttp { addr: ":5000".into() }]);
    }

    #[test]
    fn tls_key_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("site.key");
        std::fs::write(&key, "key").unwrap();
        let text = format!(
            "http: {{addr: 127.0.0.1:5443, tls: {{certificate: /c, key: {}}}}}",
            key.display()
        );
        for (mode, warned) in [(0o600, false), (0o640, true), (0o644, true)] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let w = warnings(&cfg(&text, &Overrides::default()));
            let want: Vec<Warning> = if warned {
                vec![Warning::ReadableKey { path: key.clone(), mode }]
            } else {
                vec![]
            };
            assert_eq!(w, want, "mode {mode:o}");
        }
        let w = Warning::ReadableKey { path: key.clone(), mode: 0o644 };
        assert!(w.to_string().contains("(mode 0644); fix with: chmod 600"), "{w}");
    }
}
