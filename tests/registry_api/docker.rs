//! The Docker Engine as a client: a private `dockerd` (vfs storage, no networking setup,
//! its own data and exec roots) pushes an image to `router()` over plain HTTP (Docker
//! treats 127.0.0.0/8 as an insecure registry) and pulls it back by digest, which makes
//! Docker verify every blob.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::clients::{build_image, run, serve, skopeo, tools_present};
use crate::harness::{Workspace, require_tool};

/// A dockerd stopped with SIGTERM on drop, so it also stops the containerd it manages.
struct Dockerd {
    child: Child,
    sock: String,
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dockerd(ws: &Workspace) -> Dockerd {
    let sock = format!("unix://{}", ws.join("docker.sock").display());
    let log = std::fs::File::create(ws.join("dockerd.log")).unwrap();
    let child = Command::new("dockerd")
        .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs"])
        .arg(format!("--data-root={}", ws.join("docker-data").display()))
        .arg(format!("--exec-root={}", ws.join("docker-exec").display()))
        .arg(format!("--pidfile={}", ws.join("docker.pid").display()))
        .args(["-H", &sock])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Dockerd { child, sock };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = Command::new("docker")
            .args(["-H", &d.sock, "info"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if up {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "dockerd did not start; see {}",
            ws.join("dockerd.log").display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn docker_push_and_pull_by_digest() {
    if !tools_present() || ![require_tool("dockerd"), require_tool("docker")].iter().all(|&ok| ok) {
        return;
    }
    let ws = Workspace::new();
    let oci = build_image(&ws);
    let tar = ws.join("img.tar");
    skopeo(
        &ws,
        &[
            "copy",
            &format!("oci:{}:v1", oci.display()),
            &format!("docker-archive:{}:regkit-test/img:v1", tar.display()),
        ],
    );
    let server = serve(&ws.join("registry"));
    let dockerd = start_dockerd(&ws);
    let cfg = ws.join("docker-config");
    let docker = |args: &[&str]| {
        let mut all = vec!["--config", cfg.to_str().unwrap(), "-H", &dockerd.sock];
        all.extend_from_slice(args);
        run(&ws, "docker", &all)
    };
    docker(&["load", "-i", tar.to_str().unwrap()]);
    let image = format!("{}/docker/img:v1", server.addr);
    docker(&["tag", "regkit-test/img:v1", &image]);
    let pushed = docker(&["push", &image]);
    let digest = pushed
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in docker push output: {pushed}"))
        .to_string();
    // The registry holds exactly what Docker pushed, as a Docker schema 2 manifest.
    let raw =
        skopeo(&ws, &["inspect", "--raw", "--tls-verify=false", &format!("docker://{image}")]);
    assert!(raw.contains("application/vnd.docker.distribution.manifest.v2+json"), "{raw}");
    assert_eq!(super::digest(raw.as_bytes()), digest);
    docker(&["rmi", &image, "regkit-test/img:v1"]);
    let by_digest = format!("{}/docker/img@{digest}", server.addr);
    docker(&["pull", &by_digest]);
    let repo_digests =
        docker(&["image", "inspect", "--format", "{{json .RepoDigests}}", &by_digest]);
    assert!(repo_digests.contains(&digest), "{repo_digests}");
    drop(dockerd);
}
