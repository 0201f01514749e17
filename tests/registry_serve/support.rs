//! Plumbing for the `regkit serve` tests: certificates from the openssl CLI, a spawned server
//! whose stderr is captured and whose address is read from its `listening on` line, signals,
//! and a small rustls HTTP/1.1 client that can hold a connection open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{KillOnDrop, Workspace};

/// Runs openssl in `dir`, panicking with its output on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA in `dir`: `<name>.crt` and `<name>.key` (EC P-256).
pub fn make_ca(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A leaf signed by `ca` in `dir`: `<name>.crt` + `<name>.key`, for `localhost` and
/// 127.0.0.1, with `serial` and extended key usage `eku` (serverAuth or clientAuth).
pub fn make_leaf(dir: &Path, ca: &str, name: &str, serial: u32, eku: &str) {
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={eku}\n\
             basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        ),
    )
    .unwrap();
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial.to_string(),
            "-days",
            "30",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            ext.to_str().unwrap(),
        ],
    );
}

/// Replaces `dest` by `src` with a rename (what careful rotation tools do).
pub fn replace_atomically(src: &Path, dest: &Path) {
    let tmp = dest.with_extension("incoming");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

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

/// `curl -sS -i` with extra arguments; returns (exit code, stdout, stderr).
pub fn curl(ws: &Workspace, args: &[&str]) -> (Option<i32>, String, String) {
    let r = ws.tool("curl").args(["-sS", "-i", "--max-time", "10"]).args(args).run();
    (r.code, r.stdout, r.stderr)
}

/// A TLS connection to the server made with rustls, trusting `ca` (PEM file).
pub fn tls_connect(
    addr: &str,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake so the peer certificate is known.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    stream
}

/// The DER of the leaf certificate the server presented.
pub fn peer_leaf(stream: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Vec<u8> {
    stream.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
}

/// The DER of the first certificate in a PEM file.
pub fn pem_leaf(path: &PathBuf) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_file(path).unwrap().as_ref().to_vec()
}

/// Sends `GET path` over an open HTTP/1.1 connection (kept alive) and returns the status
/// and body.
pub fn http_get(stream: &mut (impl Read + Write), path: &str) -> (u16, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    stream.flush().unwrap();
    read_response(stream)
}

/// Reads one HTTP/1.1 response with a Content-Length body.
pub fn read_response(stream: &mut impl Read) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert!(
            n == 1,
            "connection closed in the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Starts Debian's `docker-registry serve FILE` in `ws` and returns the first line that says
/// whether it started (`listening on ...`) or refused the file (`configuration error ...`).
pub fn reference_start(ws: &Workspace, file: &str) -> String {
    let mut child = Command::new("docker-registry")
        .args(["serve", file])
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("listening on") || line.contains("configuration error") {
                    let _ = tx.send(line);
                }
            }
        });
    }
    let _guard = KillOnDrop(child);
    rx.recv_timeout(Duration::from_secs(20)).expect("docker-registry said nothing useful")
}
