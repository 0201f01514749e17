//! `regkit htpasswd` against Apache's own `htpasswd` (Debian apache2-utils): every entry regkit
//! writes is accepted by `htpasswd -vb`, regkit verifies what `htpasswd -B` writes, other
//! lines survive edits in order, file modes follow the 0640 rule, and bad input fails with a
//! clear message and leaves the file exactly as it was.

use std::path::Path;

use crate::harness::terminal::on_terminal;
use crate::harness::{Workspace, require_tool};

fn add(ws: &Workspace, file: &str, user: &str, password: &str, extra: &[&str]) {
    ws.regkit()
        .args(["htpasswd", "add", file, user, "--password-stdin"])
        .args(extra)
        .stdin(format!("{password}\n"))
        .ok();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Directory entries, to prove nothing (not even a temp file) was left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn apache_htpasswd_accepts_every_entry_regkit_writes() {
    if !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    let users = [
        ("alice", "correct horse battery staple", vec!["--cost", "4"]),
        ("bob", "p@ss:w0rd with spaces & symbols <>", vec![]),
        ("ci-bot@example.com", "ünïcødé-pässwörd", vec!["--cost", "4"]),
        ("dave", &"x".repeat(72) as &str, vec!["--cost", "5"]),
    ];
    for (user, pw, extra) in &users {
        add(&ws, "auth/htpasswd", user, pw, extra);
    }
    let text = std::fs::read_to_string(ws.join("auth/htpasswd")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("alice:$2y$04$"), "{text}");
    assert!(lines[1].starts_with("bob:$2y$10$"), "default cost is 10: {text}");
    for (user, pw, _) in &users {
        ws.tool("htpasswd").args(["-vb", "auth/htpasswd", user, pw]).ok();
        ws.tool("htpasswd").args(["-vb", "auth/htpasswd", user, "wrong"]).fails();
    }
    // Changing a password replaces the line in place and Apache sees the new one only.
    add(&ws, "auth/htpasswd", "alice", "new-secret", &["--cost", "4"]);
    ws.tool("htpasswd").args(["-vb", "auth/htpasswd", "alice", "new-secret"]).ok();
    ws.tool("htpasswd").args(["-vb", "auth/htpasswd", "alice", users[0].1]).fails();
    let after = std::fs::read_to_string(ws.join("auth/htpasswd")).unwrap();
    assert!(after.lines().next().unwrap().starts_with("alice:"), "{after}");
    assert_eq!(after.lines().skip(1).collect::<Vec<_>>(), lines[1..], "others untouched");
}

#[test]
fn regkit_verifies_entries_written_by_apache() {
    if !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    ws.tool("htpasswd").args(["-c", "-B", "-b", "-C", "5", "h", "carol", "s3cr3t!"]).ok();
    ws.tool("htpasswd").args(["-B", "-b", "-C", "5", "h", "erin", "pa ss"]).ok();
    for (user, pw) in [("carol", "s3cr3t!"), ("erin", "pa ss")] {
        ws.regkit()
            .args(["htpasswd", "verify", "h", user, "--password-stdin"])
            .stdin(format!("{pw}\n"))
            .ok()
            .stderr_has("matches");
    }
    ws.regkit()
        .args(["htpasswd", "verify", "h", "carol", "--password-stdin"])
        .stdin("s3cr3t\n")
        .code(1)
        .stderr_has("does not match");
    ws.regkit()
        .args(["htpasswd", "verify", "h", "nobody", "--password-stdin"])
        .stdin("s3cr3t!\n")
        .code(1)
        .stderr_has("nobody is not in h");
    // --password works too, with a warning about where the password ends up.
    ws.regkit()
        .args(["htpasswd", "verify", "h", "carol", "--password", "s3cr3t!"])
        .ok()
        .stderr_has("shell history");
    let listed = ws.regkit().args(["htpasswd", "list", "h", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(v["users"][0]["user"], "carol");
    assert_eq!(v["users"][0]["cost"], 5);
    assert_eq!(v["users"][1]["user"], "erin");
    assert_eq!(v["users"][1]["bcrypt"], true);
}

#[test]
fn other_lines_and_order_are_kept_and_non_bcrypt_entries_reported() {
    if !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    ws.tool("htpasswd").args(["-c", "-B", "-b", "-C", "4", "h", "first", "one"]).ok();
    ws.tool("htpasswd").args(["-m", "-b", "h", "legacy", "md5pw"]).ok();
    ws.tool("htpasswd").args(["-B", "-b", "-C", "4", "h", "last", "three"]).ok();
    let original = std::fs::read_to_string(ws.join("h")).unwrap();
    let with_comment = format!("# registry users\n\n{original}");
    std::fs::write(ws.join("h"), &with_comment).unwrap();

    let r = ws.regkit().args(["htpasswd", "list", "h"]).ok();
    r.stdout_has("legacy\tnot bcrypt").stderr_has("not bcrypt, which the registry ignores: legacy");
    ws.regkit()
        .args(["htpasswd", "verify", "h", "legacy", "--password-stdin"])
        .stdin("md5pw\n")
        .code(1)
        .stderr_has("not bcrypt");

    // Re-setting `legacy` upgrades it to bcrypt in the same position.
    add(&ws, "h", "legacy", "upgraded", &["--cost", "4"]);
    let now = std::fs::read_to_string(ws.join("h")).unwrap();
    let old_lines: Vec<&str> = with_comment.lines().collect();
    let new_lines: Vec<&str> = now.lines().collect();
    assert_eq!(new_lines.len(), old_lines.len(), "{now}");
    for (i, (a, b)) in old_lines.iter().zip(&new_lines).enumerate() {
        if i == 3 {
            assert!(b.starts_with("legacy:$2y$04$"), "{now}");
        } else {
            assert_eq!(a, b, "line {i} changed");
        }
    }
    ws.tool("htpasswd").args(["-vb", "h", "legacy", "upgraded"]).ok();

    ws.regkit().args(["htpasswd", "delete", "h", "first"]).ok().stderr_has("deleted first");
    let after = std::fs::read_to_string(ws.join("h")).unwrap();
    let expected: Vec<&str> =
        new_lines.iter().copied().filter(|l| !l.starts_with("first:")).collect();
    assert_eq!(after.lines().collect::<Vec<_>>(), expected);
    // Deleting again is not an error: nothing changes.
    ws.regkit().args(["htpasswd", "delete", "h", "first"]).ok().stderr_has("nothing changed");
    assert_eq!(std::fs::read_to_string(ws.join("h")).unwrap(), after);
}

#[test]
fn new_files_are_0640_and_existing_modes_are_kept_or_narrowed() {
    let ws = Workspace::new();
    add(&ws, "new/htpasswd", "a", "pw", &["--cost", "4"]);
    assert_eq!(mode(&ws.join("new/htpasswd")), 0o640);

    set_mode(&ws.join("new/htpasswd"), 0o600);
    add(&ws, "new/htpasswd", "b", "pw", &["--cost", "4"]);
    assert_eq!(mode(&ws.join("new/htpasswd")), 0o600);

    set_mode(&ws.join("new/htpasswd"), 0o644);
    let r = ws
        .regkit()
        .args(["htpasswd", "add", "new/htpasswd", "c", "--password-stdin", "--cost", "4"])
        .stdin("pw\n")
        .ok();
    r.stderr_has("had mode 0644").stderr_has("now 0640");
    assert_eq!(mode(&ws.join("new/htpasswd")), 0o640);
    set_mode(&ws.join("new/htpasswd"), 0o666);
    ws.regkit().args(["htpasswd", "delete", "new/htpasswd", "c"]).ok();
    assert_eq!(mode(&ws.join("new/htpasswd")), 0o640);
    assert_eq!(listing(&ws.join("new")), ["htpasswd"]);
}

/// The owner and group survive the temp-file-and-rename write, so a `root:registry 0640`
/// file stays readable by the registry. Changing a file's owner needs root: without it the
/// test skips (and fails in CI, which runs as root).
#[test]
fn owner_and_group_are_kept_when_a_user_is_added() {
    use std::os::unix::fs::MetadataExt;
    if unsafe { libc::geteuid() } != 0 {
        assert!(!crate::harness::in_ci(), "this test needs root in CI (to chown the file)");
        eprintln!("SKIPPED: changing a file's owner needs root");
        return;
    }
    let ws = Workspace::new();
    add(&ws, "h", "a", "pw", &["--cost", "4"]);
    let path = ws.join("h");
    let (uid, gid) = (4321, 8765);
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    let before = std::fs::metadata(&path).unwrap();
    add(&ws, "h", "b", "pw", &["--cost", "4"]);
    let after = std::fs::metadata(&path).unwrap();
    assert_ne!(after.ino(), before.ino(), "the file was not replaced by a new one");
    assert_eq!((after.uid(), after.gid()), (uid, gid));
    assert_eq!(mode(&path), 0o640);
    let r = ws.regkit().args(["htpasswd", "delete", "h", "a"]).ok();
    assert!(!r.stderr.contains("could not keep the owner"), "{r}");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
    assert_eq!(listing(ws.path()), ["h"]);
}

#[test]
fn bad_input_fails_clearly_and_leaves_the_file_alone() {
    let ws = Workspace::new();
    add(&ws, "h", "keep", "pw", &["--cost", "4"]);
    set_mode(&ws.join("h"), 0o600);
    let before = std::fs::read(ws.join("h")).unwrap();
    let too_long = format!("{}\n", "y".repeat(73));
    let attempts: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["add", "h", "a:b", "--password-stdin"], "pw\n", "contains ':'"),
        (vec!["add", "h", "tab\there", "--password-stdin"], "pw\n", "control character"),
        (vec!["add", "h", "#root", "--password-stdin"], "pw\n", "comment"),
        (vec!["add", "h", " pad", "--password-stdin"], "pw\n", "white space"),
        (vec!["add", "h", "", "--password-stdin"], "pw\n", "it is empty"),
        (vec!["add", "h", "u", "--password-stdin"], "\n", "--allow-empty"),
        (vec!["add", "h", "u", "--password-stdin"], "", "--allow-empty"),
        (vec!["add", "h", "u", "--password-stdin", "--cost", "3"], "pw\n", "3 is not in 4..=31"),
        (vec!["add", "h", "u", "--password-stdin", "--cost", "32"], "pw\n", "32 is not in 4..=31"),
        (vec!["add", "h", "u", "--password-stdin"], &too_long, "bcrypt uses only"),
        (vec!["verify", "h", "a:b", "--password-stdin"], "pw\n", "contains ':'"),
        (vec!["delete", "missing", "keep"], "", "missing does not exist"),
        (vec!["verify", "missing", "keep", "--password-stdin"], "pw\n", "missing does not exist"),
        (vec!["list", "missing"], "", "missing does not exist"),
    ];
    for (args, stdin, message) in attempts {
        let r = ws.regkit().arg("htpasswd").args(&args).stdin(stdin).code(2);
        r.stderr_has(message);
        assert!(r.stderr.lines().count() <= 3, "short message expected\n{r}");
        assert_eq!(std::fs::read(ws.join("h")).unwrap(), before, "{args:?} changed the file");
        assert_eq!(mode(&ws.join("h")), 0o600);
        assert_eq!(listing(ws.path()), ["h"], "{args:?} left files behind");
    }
    // Without a terminal and without --password-stdin, regkit must not wait for a prompt.
    ws.regkit().args(["htpasswd", "add", "h", "u"]).code(2).stderr_has("--password-stdin");
    assert_eq!(std::fs::read(ws.join("h")).unwrap(), before);
}

#[test]
fn empty_password_is_stored_only_when_allowed() {
    if !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    add(&ws, "h", "anon", "", &["--allow-empty", "--cost", "4"]);
    ws.tool("htpasswd").args(["-vb", "h", "anon", ""]).ok();
    ws.regkit().args(["htpasswd", "verify", "h", "anon", "--password-stdin"]).stdin("\n").ok();
}

#[test]
fn the_prompt_asks_twice_and_never_echoes() {
    if !require_tool("python3") || !require_tool("htpasswd") {
        return;
    }
    let ws = Workspace::new();
    let (shown, code) = on_terminal(
        &ws,
        &["htpasswd", "add", "h", "alice", "--cost", "4"],
        &[("Enter password for alice", "typed-secret"), ("Confirm password", "typed-secret")],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("added alice to h"), "{shown}");
    assert!(!shown.contains("typed-secret"), "the password was echoed: {shown}");
    ws.tool("htpasswd").args(["-vb", "h", "alice", "typed-secret"]).ok();

    let before = std::fs::read(ws.join("h")).unwrap();
    let (shown, code) = on_terminal(
        &ws,
        &["htpasswd", "add", "h", "bob"],
        &[("Enter password", "one"), ("Confirm password", "two")],
    );
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("the two passwords differ"), "{shown}");
    assert_eq!(std::fs::read(ws.join("h")).unwrap(), before);

    let (shown, code) =
        on_terminal(&ws, &["htpasswd", "verify", "h", "alice"], &[("Enter password", "nope")]);
    assert_eq!(code, 1, "{shown}");
}
