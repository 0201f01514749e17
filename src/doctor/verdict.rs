//! The judgement of a presented certificate chain, as findings: validity, name, trust, and what
//! each client's certs.d entry holds for this exact `host:port`. The Go-compatible checks
//! themselves live in [`super::chain`]; this module turns their outcome into the message the
//! client prints, the cause and the regkit command that fixes it.

use rustls_pki_types::CertificateDer;

use super::chain::{self, ValidityProblem};
use super::tls::TrustContext;
use super::transport::client_message;
use super::{CheckStatus, Finding, Options, Report};

/// Runs the certificate checks in Go's order; true when a client would accept the chain.
pub fn judge(
    opts: &Options,
    ctx: &TrustContext,
    presented: &[CertificateDer<'static>],
    report: &mut Report,
) -> bool {
    let now = chain::now_unix();
    let Some(leaf) = presented.first() else {
        let summary = "the server presented no certificate";
        report.push(Finding::new("tls.trust", CheckStatus::Fail, summary));
        return false;
    };
    let problems = chain::validity(presented, now);
    let validity = match problems.first() {
        Some(p) => validity_failure(opts, p),
        None => {
            let n = presented.len();
            let summary = format!("all {n} certificate(s) are within their validity period");
            Finding::new("tls.validity", CheckStatus::Ok, summary)
        }
    };
    let name = name_finding(opts, leaf);
    let (trust, trusted) = trust_finding(opts, ctx, presented, now);
    let ok = validity.status == CheckStatus::Ok && name.status == CheckStatus::Ok && trusted;
    report.push(validity);
    report.push(name);
    report.push(trust);
    report.push(certs_d_finding(opts, ctx, presented, now, trusted));
    ok
}

fn validity_failure(opts: &Options, p: &ValidityProblem) -> Finding {
    let which = if p.index == 0 {
        "the server certificate".to_string()
    } else {
        format!("certificate #{} ({})", p.index, p.subject)
    };
    let (off, bound) = (chain::human_duration(p.off_by), &p.bound);
    let (cause, fix) = if p.expired {
        (
            format!("{which} expired {off} ago, at {bound}"),
            "re-issue it with `regkit certs renew site.crt` (same names, new dates) and restart \
             the registry; if it is not expired on the registry host, fix this machine's clock",
        )
    } else {
        (
            format!(
                "{which} only becomes valid in {off}, at {bound}: this machine's clock is behind, \
                 or the certificate was dated in the future"
            ),
            "synchronise this machine's clock (timedatectl set-ntp true); if the clock is right, \
             re-issue with `regkit certs renew site.crt`",
        )
    };
    let summary = format!("{which} is outside its validity period");
    Finding::new("tls.validity", CheckStatus::Fail, summary)
        .client(client_message(&opts.target, &tls_verify(&p.message)))
        .cause(cause)
        .fix(fix)
}

fn name_finding(opts: &Options, leaf: &CertificateDer<'_>) -> Finding {
    let target = &opts.target;
    let names = chain::names(leaf);
    let Err(message) = chain::verify_hostname(&names, target) else {
        let summary = format!("the certificate is valid for {}", target.host);
        return Finding::new("tls.name", CheckStatus::Ok, summary);
    };
    let mut sans: Vec<String> = names.dns.clone();
    sans.extend(names.ips.iter().map(ToString::to_string));
    let has = match sans.is_empty() {
        true => "no SANs at all".to_string(),
        false => format!("SANs {}", sans.join(", ")),
    };
    let kind = if target.ip.is_some() { "IP address" } else { "name" };
    // The fix keeps the names the certificate already has and adds the missing one first.
    let mut all = vec![target.host.clone()];
    all.extend(sans.into_iter().filter(|s| *s != target.host));
    let flags: Vec<String> = all.iter().map(|s| format!("--san {s}")).collect();
    let summary = format!("the certificate does not cover the {kind} {}", target.host);
    Finding::new("tls.name", CheckStatus::Fail, summary)
        .client(client_message(target, &tls_verify(&message)))
        .cause(format!(
            "clients compare the {kind} they connect to with the certificate's SANs (never the \
             CN); it has {has}"
        ))
        .fix(format!(
            "issue a certificate that names it: `regkit certs site {}`, then restart the registry \
             with it",
            flags.join(" ")
        ))
}

fn trust_finding(
    opts: &Options,
    ctx: &TrustContext,
    presented: &[CertificateDer<'static>],
    now: i64,
) -> (Finding, bool) {
    let target = &opts.target;
    let authority = target.authority();
    let (mut finding, trusted) = match chain::verify_chain(presented, &ctx.pool(), now) {
        Ok(t) => {
            let summary = format!("the chain leads to a trusted CA from {}", t.anchor.source);
            let finding = Finding::new("tls.trust", CheckStatus::Ok, summary)
                .detail(format!("chain: {}", t.path.join(" <- ")));
            (finding, true)
        }
        Err(message) => {
            let issuer = chain::issuer(&presented[0]);
            let (cause, fix_tail) = match &ctx.given {
                Some((path, _)) => (
                    format!(
                        "the CA in {path} did not issue this certificate (its issuer is {issuer:?})"
                    ),
                    " with the right CA file",
                ),
                None => (
                    format!(
                        "no CA this client trusts issued the certificate (its issuer is \
                         {issuer:?}); none was found in the certs.d directories for {authority} \
                         or in the system roots"
                    ),
                    "",
                ),
            };
            let summary = "the certificate chain does not lead to a trusted CA";
            let install = install_command(opts, ctx);
            let mut fix = format!("give the clients the CA that issued it: `{install}`{fix_tail}");
            let mut finding = Finding::new("tls.trust", CheckStatus::Fail, summary)
                .client(client_message(target, &tls_verify(&message)));
            // A lone leaf from a CA the clients lack may also be a missing intermediate.
            if presented.len() == 1 && !chain::is_self_issued(&presented[0]) {
                finding = finding.detail(format!(
                    "the server sends only its own certificate: if {issuer:?} is an intermediate \
                     CA, clients that trust only the root cannot build the chain"
                ));
                fix.push_str(
                    "; if the issuer is an intermediate CA, serve the full chain instead (the \
                     site certificate followed by the intermediate, e.g. site.fullchain.crt)",
                );
            }
            (finding.cause(cause).fix(fix), false)
        }
    };
    if target.docker_insecure_by_default() {
        finding = finding.detail(
            "note: Docker treats 127.0.0.0/8 and localhost as insecure registries by default and \
             skips these checks, so `docker` on this machine may work anyway; containerd, Podman \
             and Kubernetes nodes do not skip them",
        );
    }
    if let Some(file) = &ctx.system.file {
        let n = ctx.system.anchors.len();
        finding = finding.detail(format!("system roots: {} ({n} certificates)", file.display()));
    }
    (finding, trusted)
}

/// Per client: does its certs.d entry for this registry (plus the system roots) verify the
/// chain. When the chain verifies only with `--ca` (`trusted`) and no client here trusts it,
/// a client on this machine fails: that is a failure unless `--assume-trusted`.
fn certs_d_finding(
    opts: &Options,
    ctx: &TrustContext,
    presented: &[CertificateDer<'static>],
    now: i64,
    trusted: bool,
) -> Finding {
    let install = install_command(opts, ctx);
    let mut missing = Vec::new();
    let mut details = Vec::new();
    for store in &ctx.stores {
        let mut pool = ctx.system.anchors.clone();
        pool.extend(store.anchors.iter().cloned());
        let trusted = chain::verify_chain(presented, &pool, now).is_ok();
        if !trusted && !store.skip_verify {
            missing.push(store.client);
        }
        let verdict = match (trusted, store.skip_verify) {
            (_, true) => "skip_verify = true: certificate checks are OFF",
            (true, false) => "trusts this server",
            (false, false) => "does NOT trust this server",
        };
        details.push(format!("{}: {verdict}", store.client));
        details.extend(store.looked_at.iter().map(|l| format!("  {l}")));
    }
    let none_trusts = missing.len() == ctx.stores.len();
    let mut f = if missing.is_empty() {
        let summary = "every client's certs.d entry for this registry holds the CA";
        Finding::new("tls.certs_d", CheckStatus::Ok, summary)
    } else if none_trusts && trusted && ctx.given.is_some() {
        no_client_trusts_given(opts, ctx, presented, now, &install)
    } else {
        let summary =
            format!("no CA for this exact host:port in the certs.d of: {}", missing.join(", "));
        Finding::new("tls.certs_d", CheckStatus::Warn, summary)
            .cause(
                "each client looks only in the directory named exactly like the registry in the \
                 image reference (host:port; no port for 443)",
            )
            .fix(format!("`{install}` writes the CA for Docker, containerd and Podman"))
    };
    f.details = details;
    f
}

/// The chain verifies with `--ca`, but no client here has that CA for this host:port.
fn no_client_trusts_given(
    opts: &Options,
    ctx: &TrustContext,
    presented: &[CertificateDer<'static>],
    now: i64,
    install: &str,
) -> Finding {
    let ca = ctx.given.as_ref().map_or("--ca", |(path, _)| path.as_str());
    let authority = opts.target.authority();
    if opts.assume_trusted {
        let summary = format!(
            "no client on this machine trusts {ca} for {authority}; judged as if they did \
             (--assume-trusted)"
        );
        return Finding::new("tls.certs_d", CheckStatus::Warn, summary)
            .fix(format!("on each node that pulls: `{install}`"));
    }
    let mut local = ctx.system.anchors.clone();
    local.extend(ctx.stores.iter().flat_map(|s| s.anchors.iter().cloned()));
    let message = chain::verify_chain(presented, &local, now).err().unwrap_or_default();
    let summary = format!(
        "the chain verifies with {ca}, but no client on this machine trusts that CA for \
         {authority}"
    );
    Finding::new("tls.certs_d", CheckStatus::Fail, summary)
        .client(client_message(&opts.target, &tls_verify(&message)))
        .cause(format!(
            "--ca says which CA the clients should trust; Docker, containerd and Podman here \
             read only their certs.d directory for {authority} and the system roots, and none \
             holds it"
        ))
        .fix(format!(
            "`{install}`; or, to check how another node that already trusts it sees the \
             registry, add --assume-trusted"
        ))
}

fn install_command(opts: &Options, ctx: &TrustContext) -> String {
    let ca = ctx.given.as_ref().map_or("ca.crt", |(path, _)| path.as_str());
    let root = match opts.root.as_path() {
        r if r == std::path::Path::new("/") => String::new(),
        r => format!(" --root {}", r.display()),
    };
    format!("regkit trust install --ca {ca} --registry {}{root}", opts.target.authority())
}

/// Go 1.20+ wraps verification errors in the TLS layer's own prefix.
pub fn tls_verify(message: &str) -> String {
    format!("tls: failed to verify certificate: {message}")
}
