//! `--server-pid`: reads a registry process's CPU time and memory from Linux /proc, so a
//! benchmark on the same machine can report server CPU seconds per workload and peak RSS; and
//! the benchmark's own CPU time, which shows when the client rather than the server is the
//! limit. Read-only; it never signals or changes the process.

use super::Error;

/// Clock ticks per second of the `utime`/`stime` fields in /proc/PID/stat. USER_HZ is fixed at
/// 100 by the Linux ABI on x86, arm and the other mainstream architectures.
const USER_HZ: f64 = 100.0;

/// A process on this machine to observe.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    pid: u32,
}

/// Resident memory of the server, in KiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// Current resident set size (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set size since the process started (VmHWM).
    pub peak_rss_kib: u64,
}

impl ServerProbe {
    /// A probe for `pid`; fails when its /proc files cannot be read.
    pub fn new(pid: u32) -> Result<Self, Error> {
        let probe = ServerProbe { pid };
        probe.cpu_seconds()?;
        Ok(probe)
    }

    /// The process's user + system CPU time so far, in seconds (all threads).
    pub fn cpu_seconds(&self) -> Result<f64, Error> {
        let path = format!("/proc/{}/stat", self.pid);
        let text = read(&path)?;
        parse_stat_cpu(&text)
            .map(|ticks| ticks as f64 / USER_HZ)
            .ok_or_else(|| Error::Proc { path, reason: "unexpected format".into() })
    }

    /// Current and peak resident memory.
    pub fn memory(&self) -> Result<Memory, Error> {
        let path = format!("/proc/{}/status", self.pid);
        let text = read(&path)?;
        let field = |name: &str| {
            parse_status_kib(&text, name).ok_or_else(|| Error::Proc {
                path: path.clone(),
                reason: format!("no {name} line"),
            })
        };
        Ok(Memory { rss_kib: field("VmRSS")?, peak_rss_kib: field("VmHWM")? })
    }
}

/// CPU seconds spent during one workload.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// By the server (with `--server-pid`).
    pub server_s: Option<f64>,
    /// By this benchmark process (where /proc exists).
    pub client_s: Option<f64>,
}

/// CPU time readings taken when a workload starts.
pub struct CpuMeter {
    server: Option<(ServerProbe, f64)>,
    client: Option<(ServerProbe, f64)>,
}

impl CpuMeter {
    /// Reads the server's (if probed) and this process's CPU time now.
    pub fn start(server: Option<&ServerProbe>) -> Result<Self, Error> {
        let server = server.map(|p| p.cpu_seconds().map(|s| (p.clone(), s))).transpose()?;
        // Our own figure is a bonus: without /proc it is simply left out.
        let me = ServerProbe { pid: std::process::id() };
        let client = me.cpu_seconds().ok().map(|s| (me, s));
        Ok(CpuMeter { server, client })
    }

    /// CPU seconds spent since [`CpuMeter::start`].
    pub fn stop(&self) -> Result<CpuUse, Error> {
        let server = match &self.server {
            Some((probe, before)) => Some(probe.cpu_seconds()? - before),
            None => None,
        };
        let client =
            self.client.as_ref().and_then(|(me, before)| Some(me.cpu_seconds().ok()? - before));
        Ok(CpuUse { server_s: server, client_s: client })
    }
}

fn read(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Proc { path: path.to_string(), reason: e.to_string() })
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted from the last `)`.
fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The value of a `Name:   1234 kB` line of /proc/PID/status.
fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat =
            "4242 (docker registry) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat_cpu(stat), Some(325));
        assert_eq!(parse_stat_cpu("garbage"), None);
        let status = "Name:\tregistry\nVmHWM:\t   38212 kB\nVmRSS:\t   20100 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(38212));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(20100));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = ServerProbe::new(std::process::id()).unwrap();
        assert!(me.cpu_seconds().unwrap() >= 0.0);
        let memory = me.memory().unwrap();
        assert!(memory.peak_rss_kib >= memory.rss_kib && memory.rss_kib > 0);
        assert!(ServerProbe::new(u32::MAX).is_err());
    }
}
