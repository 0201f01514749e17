//! Unit tests for configuration loading: typing, errors naming keys, unsupported keys,
//! environment overrides and flags.

use std::io::Write;

use super::*;

fn load_text(text: &str, env: &[(&str, &str)], flags: &Overrides) -> Result<ServeConfig, Error> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    load(Some(f.path()), env.iter().map(|(k, v)| (k.to_string(), v.to_string())), flags)
}

const REFERENCE_DEFAULT: &str = "\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
";

#[test]
fn reference_default_config_types_and_lists_unsupported_keys() {
    let flags = Overrides { insecure_http: true, ..Default::default() };
    let cfg = load_text(REFERENCE_DEFAULT, &[], &flags).unwrap();
    assert_eq!(cfg.addr, ":5000");
    assert_eq!(cfg.storage.root, PathBuf::from("/var/lib/registry"));
    assert!(cfg.storage.fsync);
    assert!(!cfg.storage.delete_enabled);
    assert_eq!(cfg.headers.len(), 1);
    assert_eq!(cfg.headers[0].0.as_str(), "x-content-type-options");
    assert_eq!(
        cfg.unsupported,
        ["log.fields.service", "storage.cache.blobdescriptor", "health.storagedriver"]
    );
    assert!(!cfg.is_loopback());
    assert_eq!(cfg.bind_addr().unwrap(), "0.0.0.0:5000".parse().unwrap());
}

#[test]
fn plain_http_on_all_interfaces_needs_the_flag() {
    let err = load_text(REFERENCE_DEFAULT, &[], &Overrides::default()).unwrap_err();
    assert!(matches!(err, Error::PlainHttpRefused { .. }), "{err}");
    assert!(err.to_string().contains("--insecure-http"), "{err}");
}

#[test]
fn full_config_types_every_supported_key() {
    let text = "\
version: 0.1
log: {level: debug, formatter: json, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: /srv/reg, fsync: false}
  delete: {enabled: true}
  maintenance:
    uploadpurging: {enabled: true, age: 1h30m, interval: 10m, dryrun: true}
    readonly: {enabled: false}
  redirect: {disable: true}
auth:
  htpasswd: {realm: Corp Registry, path: /etc/reg/htpasswd}
http:
  addr: 127.0.0.1:5443
  secret: s3cr3t
  draintimeout: 45s
  relativeurls: true
  host: https://reg.example.com
  tls:
    certificate: /pki/site.crt
    key: /pki/site.key
    clientcas: [/pki/ca.crt]
    clientauth: verify-client-cert-if-given
    minimumtls: tls1.3
    reloadinterval: 0s
  http2: {disabled: true}
  headers:
    Strict-Transport-Security: max-age=63072000
catalog: {maxentries: 50}
notifications:
  endpoints: [{name: a, url: http://x}]
";
    let cfg = load_text(text, &[], &Overrides::default()).unwrap();
    assert_eq!(cfg.log.level, LogLevel::Debug);
    assert_eq!(cfg.log.formatter, LogFormat::Json);
    assert!(!cfg.log.access_log);
    assert_eq!(cfg.storage.root, PathBuf::from("/srv/reg"));
    assert!(!cfg.storage.fsync);
    assert!(cfg.storage.delete_enabled);
    let up = cfg.storage.upload_purging;
    assert_eq!(
        (up.age, up.interval, up.dry_run),
        (Duration::from_secs(5400), Duration::from_secs(600), true)
    );
    let auth = cfg.auth.as_ref().unwrap();
    assert_eq!(
        (auth.realm.as_str(), auth.path.to_str().unwrap()),
        ("Corp Registry", "/etc/reg/htpasswd")
    );
    assert_eq!(cfg.draintimeout, Duration::from_secs(45));
    assert!(cfg.relative_urls);
    assert_eq!(cfg.host.as_deref(), Some("https://reg.example.com"));
    let tls = cfg.tls.as_ref().unwrap();
    assert_eq!(tls.client_cas, [PathBuf::from("/pki/ca.crt")]);
    assert_eq!(tls.client_auth, ClientAuth::IfGiven);
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert_eq!(tls.reload_interval, Duration::ZERO);
    assert!(!cfg.http2);
    assert_eq!(cfg.headers[0].1[0], "max-age=63072000");
    assert_eq!(cfg.catalog_max_entries, 50);
    assert_eq!(cfg.unsupported, ["storage.redirect.disable", "notifications.endpoints"]);
    assert!(cfg.is_loopback());
}

#[test]
fn wrong_types_name_the_key() {
    let cases = [
        ("http: {draintimeout: 10}", "http.draintimeout: expected a duration like 10s"),
        ("http: {draintimeout: soon}", "http.draintimeout: expected a duration like 10s"),
        ("storage: {delete: {enabled: maybe}}", "storage.delete.enabled: expected true or false"),
        ("http: {tls: [a]}", "http.tls: expected a mapping"),
        (
            "http: {tls: {certificate: /c, key: /k, minimumtls: tls1.1}}",
            "http.tls.minimumtls: tls1.1 is refused",
        ),
        ("http: {tls: {certificate: /c}}", "http.tls.key: required"),
        (
            "storage: {s3: {bucket: b}}",
            "storage.s3: the s3 storage driver (only filesystem is) is not supported yet",
        ),
        ("storage: {inmemory: }", "storage.inmemory: the inmemory storage driver"),
        ("auth: {token: {realm: x}}", "auth.token: token authentication"),
        ("auth: {htpasswd: {realm: x}}", "auth.htpasswd.path: required"),
        ("http: {prefix: /reg}", "http.prefix: a URL prefix is not supported yet"),
        ("catalog: {maxentries: -1}", "catalog.maxentries: expected a whole number"),
        ("http: {headers: {X-A: {b: c}}}", "http.headers.X-A: expected a list of strings"),
        ("version: 2", "version: expected 0.1"),
        ("log: {level: loud}", "log.level: expected one of"),
        ("http: {addr: localhost}", "http.addr \"localhost\": expected host:port"),
    ];
    for (text, want) in cases {
        let err = load_text(text, &[], &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    let err = load_text("http: [", &[], &Overrides::default()).unwrap_err();
    assert!(matches!(err, Error::Yaml { .. }), "{err}");
}

#[test]
fn env_overrides_apply_before_typing() {
    let env = [
        ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/from/env"),
        ("REGISTRY_HTTP_ADDR", "127.0.0.1:7000"),
        ("REGISTRY_AUTH", "htpasswd"),
        ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
        ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
        ("REGISTRY_HTTP_DRAINTIMEOUT", "3s"),
    ];
    let cfg = load_text(REFERENCE_DEFAULT, &env, &Overrides::default()).unwrap();
    assert_eq!(cfg.storage.root, PathBuf::from("/from/env"));
    assert_eq!(cfg.addr, "127.0.0.1:7000");
    assert_eq!(cfg.auth.as_ref().unwrap().realm, "Registry Realm");
    assert_eq!(cfg.auth.as_ref().unwrap().path, PathBuf::from("/auth/htpasswd"));
    assert!(cfg.storage.delete_enabled);
    assert_eq!(cfg.draintimeout, Duration::from_secs(3));
    // A wrong type from the environment is reported by key too.
    let err = load_text("", &[("REGISTRY_HTTP_DRAINTIMEOUT", "10")], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("http.draintimeout: expected a duration"), "{err}");
    // An empty variable unsets the key.
    let text = "http: {tls: {certificate: /c, key: /k}}";
    let env = [("REGISTRY_HTTP_TLS_CERTIFICATE", ""), ("REGISTRY_HTTP_TLS_KEY", "")];
    assert!(load_text(text, &env, &Overrides::default()).unwrap().tls.is_none());
}

#[test]
fn flags_override_file_and_env() {
    let flags = Overrides {
        addr: Some("127.0.0.1:0".into()),
        root: Some("/flag/root".into()),
        tls_cert: Some("/c.pem".into()),
        tls_key: Some("/k.pem".into()),
        htpasswd: Some("/h".into()),
        insecure_http: false,
    };
    let env = [("REGISTRY_HTTP_ADDR", "0.0.0.0:9")];
    let cfg = load_text(REFERENCE_DEFAULT, &env, &flags).unwrap();
    assert_eq!(cfg.addr, "127.0.0.1:0");
    assert_eq!(cfg.storage.root, PathBuf::from("/flag/root"));
    assert_eq!(cfg.tls.as_ref().unwrap().certificate, PathBuf::from("/c.pem"));
    assert_eq!(cfg.auth.as_ref().unwrap().path, PathBuf::from("/h"));
    assert_eq!(cfg.auth.as_ref().unwrap().realm, DEFAULT_REALM);
}

#[test]
fn embedded_default_is_plain_http_on_loopback() {
    // An empty directory, whatever the working directory holds.
    let dir = tempfile::tempdir().unwrap();
    let cfg = load_in(dir.path(), None, std::iter::empty(), &Overrides::default()).unwrap();
    assert_eq!(cfg.addr, DEFAULT_PLAIN_ADDR);
    assert!(cfg.tls.is_none());
    assert!(cfg.auth.is_none());
    assert_eq!(cfg.storage.root, dir.path().join(EMBEDDED_ROOT));
    assert!(cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);
    assert_eq!(cfg.draintimeout, DEFAULT_DRAIN_TIMEOUT);
    assert_eq!(cfg.summary()["storage"]["uploadpurging"]["age"], "168h");
}

#[test]
fn embedded_default_picks_up_pki_and_auth_of_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    for f in [EMBEDDED_TLS_CERT, EMBEDDED_TLS_KEY, EMBEDDED_HTPASSWD] {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }
    let env = [("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY".to_string(), "/srv/r".to_string())];
    let cfg = load_in(dir.path(), None, env, &Overrides::default()).unwrap();
    let tls = cfg.tls.as_ref().unwrap();
    assert_eq!(tls.certificate, dir.path().join(EMBEDDED_TLS_CERT));
    assert_eq!(tls.key, dir.path().join(EMBEDDED_TLS_KEY));
    assert_eq!(cfg.auth.as_ref().unwrap().path, dir.path().join(EMBEDDED_HTPASSWD));
    assert_eq!(cfg.addr, DEFAULT_TLS_ADDR);
    // The environment still chooses the root.
    assert_eq!(cfg.storage.root, PathBuf::from("/srv/r"));
    // A key alone is not a certificate: back to plain HTTP.
    std::fs::remove_file(dir.path().join(EMBEDDED_TLS_CERT)).unwrap();
    let cfg = load_in(dir.path(), None, std::iter::empty(), &Overrides::default()).unwrap();
    assert!(cfg.tls.is_none());
    assert_eq!(cfg.addr, DEFAULT_PLAIN_ADDR);
}

#[test]
fn a_pull_through_cache_is_refused_naming_the_key() {
    let text = "proxy:\n  remoteurl: https://registry-1.docker.io\n  username: u\n";
    let err = load_text(text, &[], &Overrides::default()).unwrap_err().to_string();
    assert!(err.starts_with("proxy.remoteurl: regkit cannot be a pull-through cache"), "{err}");
    assert!(err.contains("Run registry:2 (distribution) for a pull-through cache"), "{err}");
    let env = [("REGISTRY_PROXY_REMOTEURL", "https://mirror.example.com")];
    let err = load_text("", &env, &Overrides::default()).unwrap_err().to_string();
    assert!(err.starts_with("proxy.remoteurl:"), "{err}");
    // Without a remote URL the reference runs no proxy either: only a warning.
    let cfg = load_text("proxy: {ttl: 1h}", &[], &Overrides::default()).unwrap();
    assert_eq!(cfg.unsupported, ["proxy.ttl"]);
}

#[test]
fn host_relativeurls_and_chunk_min_length() {
    let load = |text: &str| load_text(text, &[], &Overrides::default());
    let cfg =
        load("http: {host: 'https://reg.example.com:5000/', chunkminlength: 5242880}").unwrap();
    assert_eq!(cfg.host.as_deref(), Some("https://reg.example.com:5000"));
    assert_eq!(cfg.location_base(), Some("https://reg.example.com:5000"));
    assert_eq!(cfg.chunk_min_length, Some(5 << 20));
    assert!(cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);
    let cfg =
        load("http: {host: 'http://10.0.0.5', relativeurls: true, chunkminlength: 0}").unwrap();
    assert_eq!(cfg.location_base(), None);
    assert_eq!(cfg.chunk_min_length, None);
    let cfg = load("http: {relativeurls: false}").unwrap();
    assert_eq!(cfg.location_base(), None);
    for (text, want) in [
        ("http: {host: reg.example.com}", "http.host: expected an http:// or https:// URL"),
        ("http: {host: 'ftp://reg.example.com'}", "http.host: expected an http:// or https://"),
        ("http: {host: 'https://reg.example.com/v2'}", "http.host: expected scheme and host only"),
        ("http: {host: 'https://a b'}", "http.host: expected a URL"),
        ("http: {chunkminlength: 5MB}", "http.chunkminlength: expected a whole number"),
    ] {
        let err = load(text).unwrap_err().to_string();
        assert!(err.starts_with(want), "{text}: {err}");
    }
}
