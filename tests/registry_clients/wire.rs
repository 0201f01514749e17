//! Over-the-wire checks of `regkit serve` with `curl --cacert` that in-process tests cannot
//! make: a blob GET (whole and ranged) over HTTP/2 negotiated by ALPN, and PUT uploads whose
//! body is shorter than their Content-Length, over HTTP/1.1 (the client gives up and closes)
//! and over HTTP/2 (the stream ends early): neither leaves a blob, and the same bytes sent
//! whole become the blob.

use std::time::Duration;

use super::{Kind, Target, push_blob, secrets, sha256, start_upload, tools_present, with_query};
use crate::harness::Workspace;

#[test]
fn serve_answers_blob_gets_over_h2_and_keeps_no_blob_from_a_short_body() {
    if !tools_present(&[]) {
        return;
    }
    let ws = Workspace::new();
    let s = secrets(&ws);
    let mut t = Target::start(&ws, &s, Kind::Regkit, "data");

    // 256 KiB of varied bytes: several HTTP/2 DATA frames.
    let mut x = 0x2545_f491_u32;
    let data: Vec<u8> = (0..256 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 3) as u8
        })
        .collect();
    let digest = push_blob(&ws, &t, "wire/blob", &data);
    let path = format!("/v2/wire/blob/blobs/{digest}");
    let get = t.curl(&ws, "GET", &path, &["--http2", "-v"]);
    get.expect(200, "blob GET over h2");
    assert!(get.stderr.contains("ALPN: server accepted h2"), "{get}");
    assert!(get.head.starts_with("HTTP/2 200"), "{get}");
    assert_eq!(get.header("docker-content-digest"), digest);
    assert_eq!(get.header("content-length"), data.len().to_string());
    assert!(get.body == data, "the blob came back different over h2");
    let range = t.curl(&ws, "GET", &path, &["--http2", "-H", "Range: bytes=1000-1999"]);
    range.expect(206, "ranged blob GET over h2");
    assert_eq!(range.header("content-range"), format!("bytes 1000-1999/{}", data.len()));
    assert!(range.body == data[1000..2000], "wrong range");

    // A body of 10 bytes announced as 100, with the digest of those 10 bytes: a registry that
    // took the short body for the whole one would make the blob.
    let short = b"0123456789";
    let short_digest = sha256(short);
    let file = ws.join("short");
    std::fs::write(&file, short).unwrap();
    let blob = format!("/v2/wire/short/blobs/{short_digest}");
    let on_disk = t.root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &short_digest[7..9],
        &short_digest[7..]
    ));
    let at = format!("@{}", file.display());
    let short_put = |t: &Target, upload: &str, version: &str, extra: &[&str]| {
        let url = with_query(upload, &format!("digest={short_digest}"));
        let mut args = vec![version, "-H", "Content-Length: 100", "--data-binary", &at];
        args.extend_from_slice(extra);
        t.curl(&ws, "PUT", &url, &args)
    };

    // HTTP/1.1: the server waits for the other 90 bytes; curl gives up after 2 s and closes
    // the connection mid-body. The access log line says when the server is done with it.
    let upload = start_upload(&ws, &t, "wire/short");
    let put = short_put(&t, &upload, "--http1.1", &["--max-time", "2"]);
    assert_ne!(put.status, 201, "a short body completed the upload: {put}");
    let upload_path = upload.split('?').next().unwrap().to_string();
    let line =
        t.server().wait_log(&format!("method=PUT path={upload_path}"), Duration::from_secs(10));
    assert!(line.contains("status=400"), "{line}");
    t.curl(&ws, "HEAD", &blob, &[]).expect(404, "no blob after a body cut short over HTTP/1.1");
    assert!(!on_disk.exists(), "blob data on disk after a cut HTTP/1.1 body");

    // HTTP/2: curl ends the stream after 10 bytes; the server resets it (a DATA length that
    // does not match content-length is a stream error, RFC 9113 8.1.1). The upload is still
    // open and empty, and no blob exists.
    let upload = start_upload(&ws, &t, "wire/short");
    let put = short_put(&t, &upload, "--http2", &[]);
    assert_eq!(put.code, Some(92), "{put}");
    assert!(put.stderr.contains("PROTOCOL_ERROR"), "{put}");
    // The request left a trace all the same: an access log line saying no answer got
    // through. Its status is 0 when hyper dropped the handler on the reset, or 400 when the
    // handler's refusal of the broken body won that race.
    let upload_path = upload.split('?').next().unwrap().to_string();
    let line =
        t.server().wait_log(&format!("method=PUT path={upload_path}"), Duration::from_secs(10));
    assert!(line.contains("status=0 ") || line.contains("status=400 "), "{line}");
    assert!(line.contains("complete=false"), "{line}");
    let status = t.curl(&ws, "GET", &upload, &[]);
    status.expect(204, "the upload survives a reset stream");
    assert_eq!(status.header("range"), "0-0", "nothing was appended: {status}");
    t.curl(&ws, "HEAD", &blob, &[]).expect(404, "no blob after a short HTTP/2 body");
    // hyper sends no body for HEAD: the answer is complete although its error body is unread.
    let line = t.server().wait_log(&format!("method=HEAD path={blob} "), Duration::from_secs(10));
    assert!(line.contains("status=404") && line.contains("complete=true"), "{line}");
    assert!(!on_disk.exists(), "blob data on disk after a short HTTP/2 body");

    // The control: the same bytes, whole, on that same upload, make the blob.
    let done = t.curl(
        &ws,
        "PUT",
        &with_query(&upload, &format!("digest={short_digest}")),
        &["--data-binary", &at],
    );
    done.expect(201, "the whole body completes the upload");
    let head = t.curl(&ws, "HEAD", &blob, &[]);
    head.expect(200, "the whole body makes the blob");
    assert_eq!(head.header("content-length"), "10");
    assert!(on_disk.exists());
}
