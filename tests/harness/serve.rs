//! `regkit serve` as a child process: started with any arguments and environment, its stderr
//! captured line by line, its address read from the stable `regkit: listening on <url>` line
//! (so tests pass `--addr 127.0.0.1:0` and never race for a port), signals sent with kill(1),
//! and the process killed when the handle drops.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{KillOnDrop, Workspace};

/// A running `regkit serve`.
pub struct Server {
    pub child: KillOnDrop,
    pub url: String,
    /// host:port of the listener.
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `regkit serve ARGS` in `ws` with extra environment and waits for its address.
    pub fn start(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = ws.regkit().cmd;
        cmd.arg("serve").args(args).stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn regkit serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut server =
            Server { child: KillOnDrop(child), url: String::new(), addr: String::new(), log };
        let line = server.wait_log("regkit: listening on ", Duration::from_secs(20));
        let url = line.trim_start_matches("regkit: listening on ").trim().to_string();
        server.addr = url.split_once("://").unwrap().1.to_string();
        server.url = url;
        server
    }

    /// Everything written on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`; returns that line.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.0.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("regkit serve exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends a signal (`TERM`, `HUP`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the process to exit and returns its code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}
