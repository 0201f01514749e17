//! The CLI as a whole: every subcommand has help with examples, completions generate, and a
//! closed stdout ends the process without a panic.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::harness::Workspace;

#[test]
fn every_subcommand_has_help_with_an_example() {
    let ws = Workspace::new();
    for sub in ["certs", "htpasswd", "k8s", "trust", "doctor", "init", "render", "serve", "bench"] {
        let r = ws.regkit().args([sub, "--help"]).ok();
        assert!(r.stdout.contains("regkit "), "`regkit {sub} --help` shows no usage\n{r}");
    }
    let r = ws.regkit().args(["serve", "--help"]).ok();
    r.stdout_has("Examples:");
}

#[test]
fn completions_are_generated_for_bash_and_zsh() {
    let ws = Workspace::new();
    ws.regkit().args(["completions", "bash"]).ok().stdout_has("_regkit()");
    ws.regkit().args(["completions", "zsh"]).ok().stdout_has("#compdef regkit");
}

#[test]
fn closed_stdout_does_not_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regkit"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then hang up: the rest of the output hits a closed pipe.
    let mut out = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    out.read_exact(&mut one).unwrap();
    drop(out);
    let res = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let ws = Workspace::new();
    ws.regkit().arg("frobnicate").code(2);
}
