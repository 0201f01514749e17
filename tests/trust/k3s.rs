//! k3s's registries.yaml, edited in place by `regkit trust install` and by the bundle's
//! install.sh alike: an existing entry for the same registry (with `auth`, with a `tls`
//! section) gets the key merged in, comments and layout stay, both tools give the same bytes,
//! and both uninstalls give the original file back. A conflicting `ca_file` and a file a line
//! edit cannot change safely are refused by both, naming the line, before anything is written;
//! a file that is not valid YAML is refused by regkit only (the script has no YAML parser).

use super::*;

const REG: &str = "10.0.0.7:5000";
const CA_FILE: &str = "/etc/rancher/k3s/registry-ca/10.0.0.7_5000.crt";
const YAML: &str = "etc/rancher/k3s/registries.yaml";

/// The registry's entry already there with its robot account; comments all over.
const WITH_AUTH: &str = "# registries for this node\nmirrors:\n  docker.io:\n    endpoint:\n      \
- \"https://mirror.example:5000\"   # the cache\n\nconfigs:\n  # the registry and its robot\n  \
\"10.0.0.7:5000\":\n    auth:\n      username: robot\n      password: s3cret # rotate\n  \
other.example:5000:\n    auth:\n      username: bob\n";

/// The registry's entry with a tls section already, four-space indentation, single quotes.
const WITH_TLS: &str = "configs:\n    '10.0.0.7:5000':\n        tls:\n            \
insecure_skip_verify: false  # checked\n        auth:\n            username: robot\n\
# trailing comment\n";

/// Unpacks a bundle for REG with every client and returns its install.sh.
fn bundle(ws: &Workspace, pki: &Pki) -> PathBuf {
    ws.regkit()
        .args(["trust", "bundle", "--all", "--ca"])
        .arg(&pki.ca)
        .args(["--registry", REG, "--out", "k3s.tar.gz", "--force"])
        .ok();
    ws.tool("tar").args(["xzf", "k3s.tar.gz"]).ok();
    ws.join("regkit-trust-10.0.0.7_5000/install.sh")
}

/// Two fresh roots, `by-regkit-NAME` and `by-script-NAME`, each with `text` as registries.yaml.
fn seeded(ws: &Workspace, name: &str, text: &str) -> (PathBuf, PathBuf) {
    let roots = (ws.join(format!("by-regkit-{name}")), ws.join(format!("by-script-{name}")));
    for root in [&roots.0, &roots.1] {
        std::fs::write(mkdir(root.join("etc/rancher/k3s")).join("registries.yaml"), text).unwrap();
    }
    roots
}

fn regkit_trust(ws: &Workspace, pki: &Pki, verb: &str, root: &Path) -> crate::harness::Cmd {
    ws.regkit()
        .args(["trust", verb, "--all", "--ca"])
        .arg(&pki.ca)
        .args(["--registry", REG, "--root"])
        .arg(root)
}

fn script(ws: &Workspace, script: &Path, root: &Path) -> crate::harness::Cmd {
    ws.tool("sh").arg(script).arg("--root").arg(root)
}

fn read(root: &Path) -> String {
    std::fs::read_to_string(root.join(YAML)).unwrap()
}

/// True when every line of `original` appears in `edited`, in order (nothing was lost).
fn keeps_every_line(original: &str, edited: &str) -> bool {
    let mut lines = edited.lines();
    original.lines().all(|want| lines.any(|l| l == want))
}

#[test]
fn an_entry_for_the_same_registry_is_merged_alike_and_comes_back_on_uninstall() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let script_path = bundle(&ws, &pki);
    for (name, text) in [("auth", WITH_AUTH), ("tls", WITH_TLS)] {
        let (a, b) = seeded(&ws, name, text);
        let before = tree(&a);
        regkit_trust(&ws, &pki, "install", &a).ok().stdout_has("updated ");
        script(&ws, &script_path, &b).ok().stdout_has("updated ");
        let (ra, rb) = (read(&a), read(&b));
        assert_eq!(yaml(&a.join(YAML)), yaml(&b.join(YAML)), "{name}");
        assert_eq!(ra, rb, "{name}: the two tools wrote different bytes");
        assert_eq!(tree(&a), tree(&b), "{name}: the trees differ");
        assert!(keeps_every_line(text, &ra), "{name}: a line was lost:\n{ra}");

        let doc = yaml(&a.join(YAML));
        let entry = doc.get("configs").unwrap().get(REG).unwrap();
        assert_eq!(entry.get("auth").unwrap().get("username").unwrap().as_str(), Some("robot"));
        let tls = entry.get("tls").unwrap();
        assert_eq!(tls.get("ca_file").unwrap().as_str(), Some(CA_FILE), "{name}");
        if name == "tls" {
            let skip = tls.get("insecure_skip_verify").unwrap();
            assert_eq!(*skip, regkit::trust::yaml::Value::Bool(false));
        } else {
            assert_eq!(
                entry.get("auth").unwrap().get("password").unwrap().as_str(),
                Some("s3cret")
            );
            assert!(doc.get("configs").unwrap().get("other.example:5000").is_some());
        }

        // Idempotent, each tool after the other.
        let again = script(&ws, &script_path, &a).ok();
        again.stdout_has("already in place ").stdout_has("registries.yaml (k3s)");
        let again = regkit_trust(&ws, &pki, "install", &b).arg("--json").ok();
        assert!(!again.stdout.contains("\"update\"") && !again.stdout.contains("\"create\""));
        assert_eq!((read(&a), read(&b)), (ra.clone(), ra.clone()));

        // Uninstall, both ways: the original file byte for byte, the other files gone, and of
        // the directories install created only those the pruning rule keeps.
        regkit_trust(&ws, &pki, "uninstall", &a).ok();
        script(&ws, &script_path, &b).arg("--uninstall").ok();
        for root in [&a, &b] {
            assert_eq!(read(root), text, "{name}: {}", root.display());
            let mut after = tree(root);
            for d in KEPT_DIRS.iter().filter(|d| !before.contains_key(**d)) {
                assert!(
                    after.remove(*d).is_some_and(|e| e.0),
                    "{d} not kept in {}",
                    root.display()
                );
            }
            assert_eq!(after, before, "{name}: {}", root.display());
        }
    }
}

#[test]
fn conflicts_and_files_beyond_a_line_edit_are_refused_by_both_before_any_write() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let script_path = bundle(&ws, &pki);
    let other = format!("configs:\n  \"{REG}\":\n    tls:\n      ca_file: /etc/other-ca.crt\n");
    let cases = [
        (
            "conflict",
            other.clone(),
            "configs.\"10.0.0.7:5000\".tls.ca_file is \"/etc/other-ca.crt\"",
        ),
        (
            "flow",
            format!("configs:\n  \"{REG}\": {{auth: {{username: u}}}}\n"),
            "registries.yaml: line 2: configs.\"10.0.0.7:5000\" has its value on the same line",
        ),
        (
            "block-scalar",
            "configs:\n  a:\n    auth:\n      username: u\n      password: |\n        x\n".into(),
            "registries.yaml: line 5: password holds a block scalar (| or >)",
        ),
        ("indented", "  configs:\n".into(), "line 1: the top-level keys are indented"),
    ];
    for (name, text, message) in &cases {
        let (a, b) = seeded(&ws, name, text);
        let (before_a, before_b) = (tree(&a), tree(&b));
        regkit_trust(&ws, &pki, "install", &a).code(2).stderr_has(message);
        script(&ws, &script_path, &b).code(1).stderr_has(message);
        assert_eq!(tree(&a), before_a, "{name}: regkit wrote something");
        assert_eq!(tree(&b), before_b, "{name}: install.sh wrote something");
    }
    // --force replaces the other ca_file, the same way in both.
    let (a, b) = seeded(&ws, "forced", &other);
    regkit_trust(&ws, &pki, "install", &a).arg("--force").ok();
    script(&ws, &script_path, &b).arg("--force").ok();
    assert_eq!(read(&a), read(&b));
    assert_eq!(read(&a), other.replace("/etc/other-ca.crt", CA_FILE));

    // A file edited by hand after install into something a line edit cannot follow: both
    // uninstalls remove every other file, leave registries.yaml as it is, say why, exit 1.
    let (a, b) = seeded(&ws, "edited", WITH_AUTH);
    regkit_trust(&ws, &pki, "install", &a).ok();
    script(&ws, &script_path, &b).ok();
    let edited =
        format!("{}  new.example:\n    auth:\n      password: >\n        folded\n", read(&a));
    for root in [&a, &b] {
        std::fs::write(root.join(YAML), &edited).unwrap();
    }
    let why = "password holds a block scalar (| or >)";
    let r = regkit_trust(&ws, &pki, "uninstall", &a).code(1);
    r.stdout_has("left alone ").stdout_has(why);
    let r = script(&ws, &script_path, &b).arg("--uninstall").code(1);
    r.stderr_has("left alone ").stderr_has(why);
    // The entry stays, and so does the CA copy it points at.
    for root in [&a, &b] {
        assert_eq!(read(root), edited);
        let copy = "etc/rancher/k3s/registry-ca/10.0.0.7_5000.crt";
        assert_eq!(files_in(root), [YAML, copy], "{}", root.display());
    }
}

/// The one documented difference: regkit parses the whole file as YAML and refuses one that
/// is not valid (here a duplicate key, and a syntax error outside the entry it edits), where
/// install.sh, which has no YAML parser, edits the lines and writes.
#[test]
fn only_regkit_refuses_a_file_that_is_not_valid_yaml() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let script_path = bundle(&ws, &pki);
    let cases = [
        ("duplicate", "configs:\n  a:\n    auth:\n      username: u\nconfigs:\n  b:\n    x: 1\n"),
        ("syntax", "mirrors:\n  docker.io:\n    endpoint: [\"https://m\"\nconfigs:\n  a: 1\n"),
    ];
    for (name, text) in cases {
        let (a, b) = seeded(&ws, name, text);
        let before = tree(&a);
        regkit_trust(&ws, &pki, "install", &a).code(2).stderr_has("is not valid YAML");
        assert_eq!(tree(&a), before, "{name}: regkit wrote something");
        script(&ws, &script_path, &b).ok();
        let edited = read(&b);
        assert!(edited.contains(&format!("ca_file: {CA_FILE}")), "{name}: {edited}");
        assert!(keeps_every_line(text, &edited), "{name}: {edited}");
    }
}

/// Several addresses in a file edited by hand into something a line edit cannot follow: the
/// uninstall report says why once, with the by-hand step for each address.
#[test]
fn a_file_beyond_a_line_edit_is_reported_once_for_all_addresses() {
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let root = mkdir(ws.join("root"));
    let addrs = ["reg.lan:5000", "reg.lan:30500", "10.0.0.5:30500"];
    let trust = |verb: &str| {
        let mut cmd = ws.regkit().args(["trust", verb, "--k3s", "--ca"]).arg(&pki.ca);
        for a in addrs {
            cmd = cmd.args(["--registry", a]);
        }
        cmd.arg("--root").arg(&root)
    };
    trust("install").ok();
    let edited =
        format!("{}  new.example:\n    auth:\n      password: |\n        x\n", read(&root));
    std::fs::write(root.join(YAML), &edited).unwrap();
    let r = trust("uninstall").code(1);
    let hint = "regkit edits this file in place to keep its comments and layout";
    assert_eq!(r.stdout.matches(hint).count(), 1, "{r}");
    assert_eq!(r.stdout.matches("holds a block scalar").count(), 1, "{r}");
    for a in addrs {
        r.stdout_has(&format!("remove configs.\"{a}\".tls.ca_file"));
    }
    assert_eq!(read(&root), edited);
}

/// install.sh runs whatever `awk` a node has: Debian's mawk, GNU awk, or busybox's (k3s on
/// Alpine and other small images). Each gives the bytes regkit writes, stays idempotent, and
/// uninstalls to the original file.
#[test]
fn install_sh_edits_alike_with_mawk_gawk_and_busybox_awk() {
    let implementations = ["mawk", "gawk", "busybox"];
    if !implementations.iter().all(|awk| require_tool(awk)) {
        return;
    }
    let ws = Workspace::new();
    let pki = make_pki(&ws, "pki");
    let script_path = bundle(&ws, &pki);
    // For each implementation, a PATH whose first directory holds it as `awk` (busybox
    // picks its applet from the name it is called by).
    let system_path = std::env::var_os("PATH").unwrap();
    let paths = implementations.map(|awk| {
        let bin = mkdir(ws.join(format!("awk-{awk}")));
        let target =
            std::env::split_paths(&system_path).map(|d| d.join(awk)).find(|p| p.is_file()).unwrap();
        std::os::unix::fs::symlink(&target, bin.join("awk")).unwrap();
        let dirs = std::iter::once(bin).chain(std::env::split_paths(&system_path));
        (awk, std::env::join_paths(dirs).unwrap())
    });
    for (name, text) in [("auth", WITH_AUTH), ("tls", WITH_TLS)] {
        let (by_regkit, _) = seeded(&ws, &format!("{name}-reference"), text);
        regkit_trust(&ws, &pki, "install", &by_regkit).ok();
        let want = read(&by_regkit);
        for (awk, path) in &paths {
            let (_, root) = seeded(&ws, &format!("{name}-{awk}"), text);
            let run =
                |extra: &[&str]| script(&ws, &script_path, &root).args(extra).env("PATH", path);
            run(&[]).ok().stdout_has("updated ");
            assert_eq!(read(&root), want, "{name}: {awk} wrote other bytes than regkit");
            run(&[]).ok().stdout_has("already in place ");
            assert_eq!(read(&root), want, "{name}: {awk} changed the file on a second run");
            run(&["--uninstall"]).ok();
            assert_eq!(read(&root), text, "{name}: {awk} did not restore the original");
        }
    }
}
