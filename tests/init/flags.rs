//! `regkit init`'s flags: every descriptor key a user may want has one and lands in
//! `regkit.yaml`; bad values name the flag; and the deployment README says which servers run
//! the configuration it wrote.

use std::fs;

use regkit::deploy::descriptor::{self, Driver};

use super::{PASSWORD, init, leftovers};
use crate::harness::Workspace;

#[test]
fn every_choice_has_a_flag_and_is_recorded_in_the_descriptor() {
    let ws = Workspace::new();
    let flags = [
        "--host",
        "reg2.example.com",
        "--ip",
        "10.0.0.5",
        "--port",
        "5443",
        "--image",
        "reg:5",
        "--log-level",
        "debug",
        "--key-type",
        "rsa-2048",
        "--no-local-sans",
        "--http-host",
        "https://reg2.example.com",
        "--no-delete",
        "--no-upload-purging",
        "--upload-purging-age",
        "72h",
        "--upload-purging-interval",
        "12h",
        "--restart",
        "always",
        "--name",
        "hub",
        "--namespace",
        "images",
        "--node-port",
        "31000",
        "--storage-size",
        "50Gi",
        "--storage-class",
        "fast-ssd",
        "--ingress-class",
        "traefik",
        "--ingress-host",
        "reg2.example.com",
        "--max-body-size",
        "5Gi",
        "--cpu-request",
        "250m",
        "--memory-request",
        "none",
        "--cpu-limit",
        "2",
        "--memory-limit",
        "2Gi",
    ];
    init(&ws, &flags);
    let d = descriptor::load(&ws.join("dep/regkit.yaml")).unwrap();
    assert_eq!(d.hosts, ["reg.example.com", "reg2.example.com"]);
    assert_eq!(d.ips, ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!((d.port, d.image.as_str(), d.log_level.as_str()), (5443, "reg:5", "debug"));
    assert_eq!(d.key_type.name(), "rsa-2048");
    assert!(d.no_local_sans);
    assert_eq!(d.http_host.as_deref(), Some("https://reg2.example.com"));
    let s = &d.storage;
    assert_eq!((s.driver, s.delete, s.upload_purging.enabled), (Driver::Filesystem, false, false));
    assert_eq!((s.upload_purging.age.as_str(), s.upload_purging.interval.as_str()), ("72h", "12h"));
    assert_eq!(d.compose.restart, "always");
    let k = &d.kubernetes;
    assert_eq!((k.name.as_str(), k.namespace.as_str(), k.node_port), ("hub", "images", 31000));
    assert_eq!((k.storage_size.as_str(), k.storage_class.as_deref()), ("50Gi", Some("fast-ssd")));
    assert_eq!(k.ingress.class, "traefik");
    assert_eq!(k.ingress.host.as_deref(), Some("reg2.example.com"));
    assert_eq!(k.ingress.max_body_size.as_deref(), Some("5Gi"));
    let r = &k.resources;
    assert_eq!((r.requests.cpu.as_deref(), r.requests.memory.as_deref()), (Some("250m"), None));
    assert_eq!((r.limits.cpu.as_deref(), r.limits.memory.as_deref()), (Some("2"), Some("2Gi")));
    // The key type was used for the CA and the site certificate.
    for cert in ["dep/pki/ca.crt", "dep/pki/site.crt"] {
        ws.regkit().args(["certs", "inspect", cert]).ok().stdout_has("RSA 2048");
    }
    // A re-run with the same flags finds nothing to change; one with another value names it.
    let again = ws
        .regkit()
        .args(["init", "dep", "--user", "admin", "--json"])
        .args(["--restart", "no", "--storage-class", "fast-ssd", "--key-type", "rsa-2048"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(v["differences"], serde_json::json!(["compose.restart"]));
}

#[test]
fn bad_values_of_the_other_flags_name_the_flag_and_leave_nothing() {
    let cases: &[(&[&str], &str)] = &[
        // Only an IP: the Ingress needs a name; the error says which flags to pass.
        (
            &["--ip", "10.0.0.1"],
            "an Ingress needs a host name and only IP addresses were given: pass --host NAME as \
             well, or --no-ingress",
        ),
        (&["--host", "r.example.com", "--restart", "sometimes"], "'--restart <POLICY>'"),
        (&["--host", "r.example.com", "--log-level", "loud"], "'--log-level <LEVEL>'"),
        (&["--host", "r.example.com", "--max-body-size", "5gb"], "--max-body-size: invalid size"),
        (&["--host", "r.example.com", "--storage-size", "big"], "--storage-size: invalid quantity"),
        (&["--host", "r.example.com", "--cpu-limit", "lots"], "--cpu-limit: invalid quantity"),
        (&["--host", "r.example.com", "--name", "Hub"], "--name: invalid name \"Hub\""),
        (&["--host", "r.example.com", "--storage-class", "a_b"], "--storage-class: invalid class"),
        (
            &["--host", "r.example.com", "--ingress-host", "x.example.com"],
            "--ingress-host: \"x.example.com\" is not in hosts",
        ),
        (
            &["--host", "r.example.com", "--upload-purging-age", "a week"],
            "--upload-purging-age: invalid duration",
        ),
        (
            &["--host", "r.example.com", "--http-host", "https://r.example.com:9999"],
            "--http-host: \"https://r.example.com:9999\" must be https:// and one of this \
             deployment's addresses (https://r.example.com:5000, https://r.example.com:30500, \
             https://r.example.com)",
        ),
    ];
    for (args, expected) in cases {
        let ws = Workspace::new();
        let r = ws
            .regkit()
            .args(["init", "dep", "--user", "admin", "--password-stdin"])
            .args(*args)
            .stdin("pw\n")
            .code(2);
        r.stderr_has(expected);
        assert!(!r.stderr.contains("kubernetes.ingress.host"), "{r}");
        assert_eq!(leftovers(&ws), Vec::<String>::new(), "{args:?} left files\n{r}");
    }
    // --ip alone is fine without an Ingress.
    let ws = Workspace::new();
    ws.regkit()
        .args(["init", "dep", "--user", "admin", "--password-stdin", "--ip", "10.0.0.1"])
        .arg("--no-ingress")
        .stdin("pw\n")
        .ok();
}

/// With S3 or a pull-through cache, the deployment runs on the reference registry only, and
/// the README and the summary say so instead of offering `regkit serve`; with filesystem
/// storage they offer both. `regkit serve` indeed refuses the S3 configuration.
#[test]
fn the_readme_names_the_servers_that_run_the_configuration() {
    let ws = Workspace::new();
    let s3 = ["--storage", "s3", "--s3-bucket", "images", "--s3-region", "eu-west-1"];
    let cases: [(&str, Vec<&str>, Option<&str>); 3] = [
        ("fs", vec![], None),
        ("s3", s3.to_vec(), Some("S3 storage")),
        ("cache", vec!["--proxy", "https://registry-1.docker.io"], Some("a pull-through cache")),
    ];
    for (dir, args, blocker) in &cases {
        let r = ws
            .regkit()
            .args(["init", dir, "--host", "reg.example.com", "--user", "admin", "--password-stdin"])
            .args(args)
            .stdin(format!("{PASSWORD}\n"))
            .ok();
        let readme = fs::read_to_string(ws.join(dir).join("README.md")).unwrap();
        let config = fs::read_to_string(ws.join(dir).join("config.yml")).unwrap();
        match blocker {
            None => {
                assert!(readme.contains("         regkit serve config.yml\n"), "{readme}");
                assert!(readme.contains("run Debian's `docker-registry`"), "{readme}");
                assert!(config.contains("and `regkit serve`\n# alike"), "{config}");
                r.stderr_has("`regkit serve config.yml`: README.md has the command");
            }
            Some(what) => {
                assert!(!readme.contains("regkit serve config.yml"), "{readme}");
                assert!(!readme.contains("`regkit serve` on"), "{readme}");
                assert!(readme.contains("         docker-registry serve config.yml\n"), "{readme}");
                assert!(
                    readme.contains(&format!(
                        "runs on the reference registry only (registry:2, Debian's \
                         docker-registry): `regkit serve` does not run {what}"
                    )),
                    "{readme}"
                );
                assert!(config.contains("It runs the reference registry only"), "{config}");
                r.stderr_has(&format!("`regkit serve` does not run {what}"));
                assert!(!r.stderr.contains("`regkit serve config.yml`"), "{r}");
            }
        }
    }
    // What the README says about S3 is what regkit serve does.
    let r = ws.regkit().args(["serve", "s3/config.yml"]).code(2);
    r.stderr_has("storage.s3");
}
