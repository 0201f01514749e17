//! The request workloads against the registry API (Docker Registry V2 / OCI distribution):
//! the manifest push and round trip, manifest HEAD/GET request rates, catalog and tags
//! latency, and the cleanup; plus the answer checks shared with [`super::transfers`]. Each
//! workload checks every answer it times and returns an error, which aborts the run, on the
//! first wrong one. HTTP mechanics live in `client`, the arithmetic in `stats`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::task::JoinSet;

use super::Error;
use super::client::{self, Client, Conn, expect, header_text};
use super::data;
use super::stats::Latencies;

/// OCI image manifest media type, sent as Content-Type and Accept (the reference registry
/// answers 404 to an OCI manifest GET without it in Accept).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Upper bound on the requests of one rate workload, whatever the duration.
const MAX_RATE_REQUESTS: usize = 5_000_000;
/// Upper bound on the requests of one latency workload.
const MAX_LATENCY_REQUESTS: usize = 1_000;

/// A timed request-rate workload.
#[derive(Debug, Clone)]
pub struct Rate {
    /// Requests answered (all checked).
    pub requests: u64,
    /// Wall-clock seconds of the whole workload.
    pub seconds: f64,
    /// Per-request latencies.
    pub latencies: Latencies,
    /// Connections opened during the workload (equal to the concurrency when keep-alive held).
    pub connections: u64,
}

/// What a run has pushed, so it can be checked and deleted.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Pushed {
    /// Blob digests, in push order.
    pub blobs: Vec<String>,
    /// The manifest digest, once pushed.
    pub manifest: Option<String>,
    /// The tag the manifest was pushed under.
    pub tag: Option<String>,
}

/// The manifest used by the HEAD/GET workloads, as pushed.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The exact bytes pushed.
    pub bytes: Bytes,
    /// Their digest.
    pub digest: String,
    /// The tag it was pushed under.
    pub tag: String,
}

/// `GET /v2/`: the API is there and the credentials (if any) are accepted.
pub async fn check_base(client: &Client) -> Result<(), Error> {
    let mut conn = client.conn();
    let path = client.path("/v2/");
    conn.exchange(Method::GET, &path, &[], Bytes::new(), &[StatusCode::OK], "GET /v2/")
        .await
        .map(|_| ())
}

/// Pushes an OCI image manifest naming `config` and `layers` under `tag`, then reads it back:
/// the digest must be acknowledged and the bytes must round-trip exactly.
pub async fn push_manifest(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    tag: &str,
    config: (&str, u64),
    layers: &[(String, u64)],
) -> Result<Manifest, Error> {
    let descriptor = |media: &str, digest: &str, size: u64| serde_json::json!({ "mediaType": media, "digest": digest, "size": size });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config.0, config.1),
        "layers": layers.iter()
            .map(|(d, s)| descriptor("application/vnd.oci.image.layer.v1.tar", d, *s))
            .collect::<Vec<_>>(),
    });
    let bytes = Bytes::from(serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Protocol {
        what: "building the manifest".into(),
        detail: e.to_string(),
    })?);
    let digest = data::digest_bytes(&bytes);
    let target = client.path(&format!("/v2/{repo}/manifests/{tag}"));
    let what = format!("PUT manifest {repo}:{tag}");
    let headers = [(header::CONTENT_TYPE, value(OCI_MANIFEST)?)];
    let (response, _) = conn
        .exchange(Method::PUT, &target, &headers, bytes.clone(), &[StatusCode::CREATED], &what)
        .await?;
    check_acknowledged(&response, &digest, &what)?;
    let manifest = Manifest { bytes, digest, tag: tag.to_string() };
    let what = format!("GET manifest {repo}:{tag}");
    let (response, body) = conn
        .exchange(Method::GET, &target, &accept_oci(), Bytes::new(), &[StatusCode::OK], &what)
        .await?;
    check_manifest(&manifest, &response, Some(&body), &what)?;
    Ok(manifest)
}

/// HEAD (`get == false`) or GET of the manifest by tag from `concurrency` keep-alive
/// connections for `duration`; every answer is checked against the pushed manifest.
pub async fn manifest_rate(
    client: &Client,
    repo: &str,
    manifest: &Manifest,
    get: bool,
    concurrency: usize,
    duration: Duration,
) -> Result<Rate, Error> {
    let target = client.path(&format!("/v2/{repo}/manifests/{}", manifest.tag));
    let method = if get { Method::GET } else { Method::HEAD };
    let what = format!("{method} manifest {repo}:{}", manifest.tag);
    let opened_before = client.connections_opened();
    let start = Instant::now();
    let deadline = start + duration;
    let per_worker = MAX_RATE_REQUESTS / concurrency.max(1);
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (client, target, method, what) =
            (client.clone(), target.clone(), method.clone(), what.clone());
        let manifest = manifest.clone();
        set.spawn(async move {
            let mut conn = client.conn();
            let mut latencies = Latencies::with_capacity(4096);
            let headers = accept_oci();
            while Instant::now() < deadline && latencies.len() < per_worker {
                let t0 = Instant::now();
                let (response, body) = conn
                    .exchange(
                        method.clone(),
                        &target,
                        &headers,
                        Bytes::new(),
                        &[StatusCode::OK],
                        &what,
                    )
                    .await?;
                check_manifest(&manifest, &response, get.then_some(&body), &what)?;
                latencies.record(t0.elapsed());
            }
            Ok::<_, Error>(latencies)
        });
    }
    let mut all = Latencies::default();
    while let Some(joined) = set.join_next().await {
        let latencies =
            joined.map_err(|e| Error::Protocol { what: what.clone(), detail: e.to_string() })??;
        all.merge(latencies);
    }
    Ok(Rate {
        requests: all.len() as u64,
        seconds: start.elapsed().as_secs_f64(),
        latencies: all,
        connections: client.connections_opened() - opened_before,
    })
}

/// Sequential GETs on one connection for at most `duration` (and at most 1,000 requests),
/// starting at `first`; `check` judges each answer (headers and JSON) and names the next
/// target, or `None` to start again at `first`.
pub async fn latency(
    client: &Client,
    first: &str,
    duration: Duration,
    what: &str,
    check: impl Fn(&Response<()>, &serde_json::Value) -> Result<Option<String>, String>,
) -> Result<Latencies, Error> {
    let mut conn = client.conn();
    let mut latencies = Latencies::with_capacity(MAX_LATENCY_REQUESTS);
    let deadline = Instant::now() + duration;
    let mut target = first.to_string();
    while (Instant::now() < deadline || latencies.is_empty())
        && latencies.len() < MAX_LATENCY_REQUESTS
    {
        let t0 = Instant::now();
        let (response, body) =
            conn.exchange(Method::GET, &target, &[], Bytes::new(), &[StatusCode::OK], what).await?;
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            Error::Protocol { what: what.to_string(), detail: format!("not JSON: {e}") }
        })?;
        let next = check(&response, &json)
            .map_err(|detail| Error::Protocol { what: what.to_string(), detail })?;
        latencies.record(t0.elapsed());
        target = next.unwrap_or_else(|| first.to_string());
    }
    Ok(latencies)
}

/// The target of a `Link: <...>; rel="next"` header (a path, or the path of an absolute URL).
pub fn next_link(response: &Response<()>) -> Option<String> {
    let value = response.headers().get("link")?.to_str().ok()?;
    let part = value.split(',').find(|p| p.contains("rel=\"next\""))?;
    let url = part.split_once('<')?.1.split_once('>')?.0.trim();
    if url.starts_with('/') {
        return Some(url.to_string());
    }
    let rest = url.split_once("://")?.1;
    rest.find('/').map(|i| rest[i..].to_string())
}

/// Whether deleting worked, and what was left behind if not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cleanup {
    /// True when everything pushed was deleted.
    pub deleted: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Deletes the manifest (by digest) and then the blobs a run pushed (end-9, end-10). A 405
/// means the registry has deletion disabled: nothing more is tried and the note says so.
pub async fn cleanup(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    pushed: &Pushed,
) -> Result<Cleanup, Error> {
    let accepted = [StatusCode::ACCEPTED, StatusCode::OK, StatusCode::NO_CONTENT];
    let mut targets = Vec::new();
    if let Some(digest) = &pushed.manifest {
        targets.push((format!("manifest {digest}"), format!("/v2/{repo}/manifests/{digest}")));
    }
    for digest in &pushed.blobs {
        targets.push((format!("blob {digest}"), format!("/v2/{repo}/blobs/{digest}")));
    }
    for (name, path) in targets {
        let what = format!("DELETE {name}");
        let target = client.path(&path);
        let response =
            conn.send(Method::DELETE, &target, &[], client::full(Bytes::new()), &what).await?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(Cleanup {
                deleted: false,
                note: Some(format!(
                    "the registry has deletion disabled (405 UNSUPPORTED): {repo} keeps what the benchmark pushed"
                )),
            });
        }
        let response = expect(response, &accepted, &what).await?;
        drain(response, &what).await?;
    }
    Ok(Cleanup { deleted: true, note: None })
}

/// The upload is acknowledged with our digest: `Docker-Content-Digest` when sent, otherwise
/// the `Location` of the new blob or manifest must end with it.
pub(super) fn check_acknowledged<B>(
    response: &Response<B>,
    digest: &str,
    what: &str,
) -> Result<(), Error> {
    match (header_text(response, "docker-content-digest"), header_text(response, "location")) {
        (Some(d), _) if d == digest => Ok(()),
        (Some(d), _) => Err(Error::Mismatch {
            what: what.to_string(),
            expected: format!("Docker-Content-Digest {digest}"),
            got: d,
        }),
        (None, Some(l)) if l.ends_with(digest) => Ok(()),
        (None, location) => Err(Error::Mismatch {
            what: what.to_string(),
            expected: format!("Docker-Content-Digest or Location naming {digest}"),
            got: format!("no digest header, Location {location:?}"),
        }),
    }
}

fn check_manifest<B>(
    manifest: &Manifest,
    response: &Response<B>,
    body: Option<&Bytes>,
    what: &str,
) -> Result<(), Error> {
    let digest = header_text(response, "docker-content-digest");
    if digest.as_deref() != Some(manifest.digest.as_str()) {
        return Err(Error::Mismatch {
            what: what.to_string(),
            expected: format!("Docker-Content-Digest {}", manifest.digest),
            got: format!("{digest:?}"),
        });
    }
    if let Some(body) = body {
        if body != &manifest.bytes {
            return Err(Error::Mismatch {
                what: what.to_string(),
                expected: format!("the {} bytes pushed", manifest.bytes.len()),
                got: format!(
                    "{} different bytes (digest {})",
                    body.len(),
                    data::digest_bytes(body)
                ),
            });
        }
    }
    Ok(())
}

pub(super) async fn drain(
    response: Response<hyper::body::Incoming>,
    what: &str,
) -> Result<(), Error> {
    client::read_limited(response.into_body(), client::BODY_LIMIT, what).await.map(|_| ())
}

pub(super) fn octet_stream(len: u64) -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        (header::CONTENT_LENGTH, HeaderValue::from(len)),
    ]
}

fn accept_oci() -> Vec<(HeaderName, HeaderValue)> {
    vec![(header::ACCEPT, HeaderValue::from_static(OCI_MANIFEST))]
}

pub(super) fn value(text: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(text).map_err(|_| Error::Protocol {
        what: "building a header".into(),
        detail: format!("{text:?}"),
    })
}

pub(super) fn missing(what: &str, header: &str) -> Error {
    Error::Protocol { what: what.to_string(), detail: format!("the answer has no {header} header") }
}
#[cfg(test)]
mod tests {
    use super::next_link;

    fn with_link(value: &str) -> hyper::Response<()> {
        hyper::Response::builder().header("link", value).body(()).unwrap()
    }

    #[test]
    fn next_link_takes_the_path_of_rel_next() {
        let r = with_link("</v2/_catalog?last=b&n=100>; rel=\"next\"");
        assert_eq!(next_link(&r).as_deref(), Some("/v2/_catalog?last=b&n=100"));
        let r = with_link("<https://reg:5000/v2/_catalog?last=b&n=2>; rel=\"next\"");
        assert_eq!(next_link(&r).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        let r = with_link("</v2/x?a=1>; rel=\"prev\", </v2/x?a=2>; rel=\"next\"");
        assert_eq!(next_link(&r).as_deref(), Some("/v2/x?a=2"));
        assert_eq!(next_link(&with_link("</v2/x>; rel=\"prev\"")), None);
        assert_eq!(next_link(&hyper::Response::new(())), None);
    }

    use super::*;

    #[test]
    fn acknowledgement() {
        let ok = Response::builder().header("docker-content-digest", "sha256:aa").body(()).unwrap();
        assert!(check_acknowledged(&ok, "sha256:aa", "x").is_ok());
        assert!(check_acknowledged(&ok, "sha256:bb", "x").is_err());
        let by_location =
            Response::builder().header("location", "/v2/r/blobs/sha256:aa").body(()).unwrap();
        assert!(check_acknowledged(&by_location, "sha256:aa", "x").is_ok());
        let neither = Response::builder().body(()).unwrap();
        assert!(check_acknowledged(&neither, "sha256:aa", "x").is_err());
    }
}
