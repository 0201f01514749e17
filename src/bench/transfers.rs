//! The blob workloads: monolithic and chunked pushes, many pushes at once, the re-hashed
//! pull, and the small untimed pushes the manifest needs. Bytes come from `data` (generated
//! while sending); the answer checks are shared with `workloads`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header;
use hyper::{Method, StatusCode};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::Error;
use super::client::{self, Client, Conn, expect, header_text};
use super::data::{self, RandomBody, RandomSource};
use super::workloads::{check_acknowledged, drain, missing, octet_stream, value};

/// A timed transfer of blob bytes.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall-clock seconds, first request sent to last answer read.
    pub seconds: f64,
    /// HTTP requests made.
    pub requests: u64,
}

/// Computes the digest of `size` bytes of the stream for `seed` on a blocking thread (before
/// any timing starts).
pub async fn precompute_digest(
    seed: u64,
    size: u64,
    progress: ProgressBar,
) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let digest = data::digest_of(seed, size, &progress);
        progress.finish_and_clear();
        digest
    })
    .await
    .map_err(|e| Error::Protocol { what: "hashing the test data".into(), detail: e.to_string() })
}

/// Monolithic push (end-4b): `POST /blobs/uploads/` then one `PUT ?digest=` carrying the
/// whole blob. The server must acknowledge the digest the client computed.
pub async fn push_monolithic(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    seed: u64,
    size: u64,
    digest: &str,
    progress: ProgressBar,
) -> Result<Transfer, Error> {
    let start = Instant::now();
    let location = start_upload(conn, client, repo).await?;
    let target = with_digest(&location, digest);
    let source = Arc::new(Mutex::new(RandomSource::new(seed)));
    let body = RandomBody::new(source, size, progress.clone()).boxed();
    let what = format!("PUT blob {digest} ({size} bytes)");
    let headers = octet_stream(size);
    let work = async {
        let response = conn.send(Method::PUT, &target, &headers, body, &what).await?;
        let response = expect(response, &[StatusCode::CREATED], &what).await?;
        check_acknowledged(&response, digest, &what)?;
        drain(response, &what).await
    };
    tokio::time::timeout(transfer_timeout(size), work)
        .await
        .map_err(|_| timeout(&what, transfer_timeout(size)))??;
    let seconds = start.elapsed().as_secs_f64();
    progress.finish_and_clear();
    Ok(Transfer { bytes: size, seconds, requests: 2 })
}

/// Chunked push (end-5, end-6): `POST`, then one `PATCH` per chunk with `Content-Range`, each
/// acknowledged with the new `Range`, then `PUT ?digest=` with no body.
#[allow(clippy::too_many_arguments)]
pub async fn push_chunked(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    seed: u64,
    size: u64,
    chunk: u64,
    digest: &str,
    progress: ProgressBar,
) -> Result<Transfer, Error> {
    let start = Instant::now();
    let mut location = start_upload(conn, client, repo).await?;
    let source = Arc::new(Mutex::new(RandomSource::new(seed)));
    let mut offset = 0u64;
    let mut requests = 1u64;
    while offset < size {
        let len = chunk.min(size - offset);
        let end = offset + len - 1;
        let what = format!("PATCH upload bytes {offset}-{end}");
        let mut headers = octet_stream(len);
        headers.push((header::CONTENT_RANGE, value(&format!("{offset}-{end}"))?));
        let body = RandomBody::new(source.clone(), len, progress.clone()).boxed();
        let work = async {
            let response = conn.send(Method::PATCH, &location, &headers, body, &what).await?;
            let response = expect(response, &[StatusCode::ACCEPTED], &what).await?;
            if let Some(range) = header_text(&response, "range") {
                if range != format!("0-{end}") {
                    return Err(Error::Protocol {
                        what: what.clone(),
                        detail: format!("the server reports Range {range:?}, expected \"0-{end}\""),
                    });
                }
            }
            let next =
                header_text(&response, "location").ok_or_else(|| missing(&what, "Location"))?;
            drain(response, &what).await?;
            client.location_target(&next)
        };
        location = tokio::time::timeout(transfer_timeout(len), work)
            .await
            .map_err(|_| timeout(&what, transfer_timeout(len)))??;
        offset += len;
        requests += 1;
    }
    let what = format!("PUT (close upload) {digest}");
    let target = with_digest(&location, digest);
    let (response, _) = conn
        .exchange(
            Method::PUT,
            &target,
            &octet_stream(0),
            Bytes::new(),
            &[StatusCode::CREATED],
            &what,
        )
        .await?;
    check_acknowledged(&response, digest, &what)?;
    let seconds = start.elapsed().as_secs_f64();
    progress.finish_and_clear();
    Ok(Transfer { bytes: size, seconds, requests: requests + 1 })
}

/// Bytes received before they are handed to the hashing thread at once: one wake-up of
/// that thread per batch rather than per frame.
const HASH_BATCH: usize = 1 << 20;

/// Blob pull (end-2): `GET /blobs/<digest>`, re-hashing every byte received and comparing
/// the digest and the length with what was pushed.
pub async fn pull(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    digest: &str,
    size: u64,
    progress: ProgressBar,
) -> Result<Transfer, Error> {
    let start = Instant::now();
    let what = format!("GET blob {digest}");
    let target = client.path(&format!("/v2/{repo}/blobs/{digest}"));
    let work = async {
        let response =
            conn.send(Method::GET, &target, &[], client::full(Bytes::new()), &what).await?;
        let response = expect(response, &[StatusCode::OK], &what).await?;
        let mut body = response.into_body();
        // Hash on a blocking thread fed through a bounded queue, so receiving (and TLS
        // decryption) and hashing overlap instead of taking turns on one core. Frames go
        // over in batches of about [`HASH_BATCH`] bytes: a frame is a TLS record (16 KiB), and
        // handing each over on its own woke that thread 65,536 times per GiB.
        let (sender, mut queue) = tokio::sync::mpsc::channel::<Vec<Bytes>>(8);
        let hashing = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(batch) = queue.blocking_recv() {
                for bytes in batch {
                    hasher.update(&bytes);
                }
            }
            data::sha256_text(&hasher.finalize())
        });
        let mut received = 0u64;
        let (mut batch, mut batched) = (Vec::new(), 0usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| Error::Http { what: what.clone(), source })?;
            if let Ok(bytes) = frame.into_data() {
                received += bytes.len() as u64;
                progress.inc(bytes.len() as u64);
                batched += bytes.len();
                batch.push(bytes);
            }
            if batched >= HASH_BATCH {
                batched = 0;
                if sender.send(std::mem::take(&mut batch)).await.is_err() {
                    break; // the hashing thread is gone; its join error is reported below
                }
            }
        }
        if !batch.is_empty() {
            let _ = sender.send(batch).await; // an error here is the join error below
        }
        drop(sender);
        let got = hashing.await.map_err(|e| Error::Protocol {
            what: what.clone(),
            detail: format!("hashing failed: {e}"),
        })?;
        if received != size || got != digest {
            return Err(Error::Mismatch {
                what: what.clone(),
                expected: format!("{size} bytes with digest {digest}"),
                got: format!("{received} bytes with digest {got}"),
            });
        }
        Ok(())
    };
    tokio::time::timeout(transfer_timeout(size), work)
        .await
        .map_err(|_| timeout(&what, transfer_timeout(size)))??;
    progress.finish_and_clear();
    Ok(Transfer { bytes: size, seconds: start.elapsed().as_secs_f64(), requests: 1 })
}

/// Many monolithic pushes at once, one connection each (the peak-memory workload). `blobs`
/// holds each blob's seed and digest; all are `size` bytes.
pub async fn parallel_push(
    client: &Client,
    repo: &str,
    blobs: &[(u64, String)],
    size: u64,
    progress: ProgressBar,
) -> Result<Transfer, Error> {
    let start = Instant::now();
    let mut set = JoinSet::new();
    for (seed, digest) in blobs.iter().cloned() {
        let (client, repo, progress) = (client.clone(), repo.to_string(), progress.clone());
        set.spawn(async move {
            let mut conn = client.conn();
            push_monolithic(&mut conn, &client, &repo, seed, size, &digest, progress).await
        });
    }
    let mut requests = 0;
    while let Some(joined) = set.join_next().await {
        let transfer = joined
            .map_err(|e| Error::Protocol { what: "a push task".into(), detail: e.to_string() })??;
        requests += transfer.requests;
    }
    progress.finish_and_clear();
    Ok(Transfer {
        bytes: size * blobs.len() as u64,
        seconds: start.elapsed().as_secs_f64(),
        requests,
    })
}

/// Pushes a small blob held in memory (untimed setup) and returns its digest.
pub async fn push_small(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    bytes: Bytes,
) -> Result<String, Error> {
    let digest = data::digest_bytes(&bytes);
    let location = start_upload(conn, client, repo).await?;
    let what = format!("PUT blob {digest}");
    let target = with_digest(&location, &digest);
    let headers = octet_stream(bytes.len() as u64);
    let (response, _) =
        conn.exchange(Method::PUT, &target, &headers, bytes, &[StatusCode::CREATED], &what).await?;
    check_acknowledged(&response, &digest, &what)?;
    Ok(digest)
}

/// `HEAD /blobs/<digest>` must answer 200 with the pushed length.
pub async fn check_blob(
    conn: &mut Conn,
    client: &Client,
    repo: &str,
    digest: &str,
    size: u64,
) -> Result<(), Error> {
    let what = format!("HEAD blob {digest}");
    let target = client.path(&format!("/v2/{repo}/blobs/{digest}"));
    let (response, _) =
        conn.exchange(Method::HEAD, &target, &[], Bytes::new(), &[StatusCode::OK], &what).await?;
    let length = header_text(&response, "content-length");
    if length.as_deref() != Some(size.to_string().as_str()) {
        return Err(Error::Mismatch {
            what,
            expected: format!("Content-Length {size}"),
            got: format!("{length:?}"),
        });
    }
    Ok(())
}

async fn start_upload(conn: &mut Conn, client: &Client, repo: &str) -> Result<String, Error> {
    let what = format!("POST /v2/{repo}/blobs/uploads/");
    let target = client.path(&format!("/v2/{repo}/blobs/uploads/"));
    let (response, _) = conn
        .exchange(
            Method::POST,
            &target,
            &octet_stream(0),
            Bytes::new(),
            &[StatusCode::ACCEPTED],
            &what,
        )
        .await?;
    let location = header_text(&response, "location").ok_or_else(|| missing(&what, "Location"))?;
    client.location_target(&location)
}

/// The upload target with `digest=` added to its query.
fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    // `sha256:<hex>` needs only the colon escaped.
    format!("{location}{separator}digest={}", digest.replace(':', "%3A"))
}

/// A generous bound for moving `bytes`: one minute plus one second per MiB (1 MiB/s).
fn transfer_timeout(bytes: u64) -> Duration {
    Duration::from_secs(60 + bytes / (1 << 20))
}

fn timeout(what: &str, limit: Duration) -> Error {
    Error::Timeout { what: what.to_string(), seconds: limit.as_secs() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `body` once, as the answer to whatever request comes, on 127.0.0.1.
    async fn serve_once(body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let response = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            socket.write_all(response.as_bytes()).await.unwrap();
            // Small writes, so the client sees many frames and several hashing batches.
            for piece in body.chunks(10_000) {
                socket.write_all(piece).await.unwrap();
            }
        });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pull_hashes_every_byte_across_batches() {
        let blob: Vec<u8> = (0..3 * HASH_BATCH + 4321).map(|i| (i * 31 + i / 977) as u8).collect();
        let digest = data::digest_bytes(&blob);
        let size = blob.len() as u64;
        let url = serve_once(blob.clone()).await;
        let client = Client::new(&url, &client::Trust::System, None).unwrap();
        let mut conn = client.conn();
        let pulled = pull(&mut conn, &client, "r", &digest, size, ProgressBar::hidden());
        assert_eq!(pulled.await.unwrap().bytes, size);

        let mut changed = blob;
        changed[2 * HASH_BATCH + 5] ^= 1;
        let url = serve_once(changed).await;
        let client = Client::new(&url, &client::Trust::System, None).unwrap();
        let mut conn = client.conn();
        let pulled = pull(&mut conn, &client, "r", &digest, size, ProgressBar::hidden());
        match pulled.await {
            Err(Error::Mismatch { got, .. }) => assert!(!got.contains(&digest), "{got}"),
            other => panic!("one changed byte must be a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn digest_query() {
        assert_eq!(
            with_digest("/v2/r/blobs/uploads/u", "sha256:ab"),
            "/v2/r/blobs/uploads/u?digest=sha256%3Aab"
        );
        assert_eq!(with_digest("/u?_state=x", "sha256:ab"), "/u?_state=x&digest=sha256%3Aab");
    }
}
