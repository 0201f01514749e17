//! The addresses a deployment is reached by: the registry's own `host:port`, every host and
//! IP with the Service's node port, and the Ingress host. The pull secret, the node trust
//! bundle, the README and `http.host` checks all come from [`Descriptor::pull_addresses`].

use std::net::IpAddr;

use serde::Serialize;

use super::descriptor::Descriptor;

/// One address a deployment is reached by (see [`Descriptor::pull_addresses`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullAddress {
    /// `host[:port]` as image references spell it (`reg.lan:30500`, `reg.lan`).
    pub address: String,
    /// What answers there.
    pub route: Route,
}

/// What answers on a [`PullAddress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The registry's own port (docker-compose, `regkit serve`).
    Registry,
    /// The Kubernetes Service's node port, on every node.
    #[serde(rename = "nodeport")]
    NodePort,
    /// The Kubernetes Ingress, HTTPS on port 443.
    Ingress,
}

impl Descriptor {
    /// The host clients use: the first host name, else the first IP, else `localhost`.
    pub fn main_host(&self) -> String {
        if let Some(h) = self.hosts.first() {
            return h.clone();
        }
        match self.ips.first() {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => "localhost".to_string(),
        }
    }

    /// `host:port` as it appears in image references, `docker login` and certs.d folders.
    pub fn registry_address(&self) -> String {
        format!("{}:{}", self.main_host(), self.port)
    }

    /// Every address nodes and clients reach this deployment by, as image references spell
    /// it, without repeats: the registry address (`reg.lan:5000`, docker-compose or
    /// `regkit serve`), then every host and IP with the Service's node port (`reg.lan:30500`,
    /// `10.0.0.5:30500`; the generated Service is always of type NodePort), then the Ingress
    /// host when an Ingress is generated (`reg.lan`: port 443, which references leave out).
    ///
    /// The pull secret's `auths`, the node trust bundle (one `certs.d` directory and one k3s
    /// entry each) and the deployment README all come from this one list, so an image
    /// reference that works on a node is exactly one of these with a repository after it.
    pub fn pull_addresses(&self) -> Vec<PullAddress> {
        let mut out: Vec<PullAddress> = Vec::new();
        let mut add = |address: String, route: Route| {
            if !out.iter().any(|a| a.address == address) {
                out.push(PullAddress { address, route });
            }
        };
        add(self.registry_address(), Route::Registry);
        let mut node_hosts: Vec<String> = self.hosts.clone();
        node_hosts.extend(self.ips.iter().map(|ip| match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        }));
        if node_hosts.is_empty() {
            node_hosts.push(self.main_host());
        }
        for h in node_hosts {
            add(format!("{h}:{}", self.kubernetes.node_port), Route::NodePort);
        }
        if let Some(h) = self.ingress_host() {
            add(h, Route::Ingress);
        }
        out
    }

    /// The host the Ingress answers for, when an Ingress is generated.
    pub fn ingress_host(&self) -> Option<String> {
        if !self.kubernetes.ingress.enabled {
            return None;
        }
        self.kubernetes.ingress.host.clone().or_else(|| self.hosts.first().cloned())
    }
}
