//! Driving regkit on a pseudo-terminal (Python's `pty`), for the prompts that only appear when
//! standard input is a terminal.

use super::Workspace;

/// Runs `args` on a pseudo-terminal, answering each prompt (matched by `expect`) in turn, and
/// returns everything the terminal showed and the exit code. Python's `pty` stands in for a
/// person at a terminal; it waits for each prompt before typing the answer.
pub fn on_terminal(ws: &Workspace, args: &[&str], answers: &[(&str, &str)]) -> (String, i32) {
    const DRIVER: &str = r#"
import json, os, pty, sys, time
args, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(args[0], args)
seen = b""
def read():
    global seen
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    seen += chunk
    return bool(chunk)
for expect, answer in answers:
    while expect.encode() not in seen:
        if not read():
            break
    # rpassword prints the prompt, then turns echo off: let it get there first.
    time.sleep(0.2)
    os.write(fd, answer.encode() + b"\n")
while read():
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut full = vec![env!("CARGO_BIN_EXE_regkit")];
    full.extend_from_slice(args);
    let answers: Vec<[&str; 2]> = answers.iter().map(|(e, a)| [*e, *a]).collect();
    let r = ws
        .tool("python3")
        .env("NO_COLOR", "1")
        .args(["-c", DRIVER])
        .arg(serde_json::to_string(&full).unwrap())
        .arg(serde_json::to_string(&answers).unwrap())
        .run();
    (r.stdout, r.code.unwrap_or(-1))
}
