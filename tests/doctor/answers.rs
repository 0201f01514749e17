//! What `/v2/` answers, from a small HTTP server in the test that sends one canned response:
//! a status other than 200 or 401, a 200 without the `Docker-Distribution-API-Version`
//! header, a 401 without `WWW-Authenticate`. Each diagnosis and exit status is asserted.
//! Plain HTTP with `--assume-trusted`, so the scheme itself is not what is judged.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;

use super::{doctor, finding, text};
use crate::harness::Workspace;

/// Serves `response` to one connection, then `doctor URL --assume-trusted` with `code`.
fn answered(response: &str, code: i32) -> (Value, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let response = response.to_string();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        conn.write_all(response.as_bytes()).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let ws = Workspace::new();
    let url = format!("http://127.0.0.1:{port}");
    let report = doctor(&ws, &url, &["--assume-trusted"], code);
    let request = server.join().unwrap();
    assert!(request.starts_with("GET /v2/ HTTP/1.1\r\n"), "{request}");
    (report, url)
}

fn response(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

const API: &str = "Docker-Distribution-API-Version: registry/2.0\r\n";

#[test]
fn v2_answering_something_else_than_200_or_401_fails() {
    for status in ["404 Not Found", "500 Internal Server Error"] {
        let (report, url) = answered(&response(status, API, "nope"), 1);
        let f = finding(&report, "http.v2");
        assert_eq!(f["status"], "fail");
        assert_eq!(text(f, "summary"), format!("GET /v2/ answered {status}"));
        assert_eq!(
            text(f, "client_message"),
            format!("unexpected status from GET request to {url}/v2/: {status}")
        );
        assert!(text(f, "cause").contains("a registry answers /v2/ with 200"), "{f:#}");
        assert!(text(f, "fix").contains("make the proxy pass /v2/"), "{f:#}");
        // Nothing after /v2/ is judged.
        assert!(report["findings"].as_array().unwrap().iter().all(|f| f["check"] != "http.auth"));
    }
}

#[test]
fn a_missing_api_version_header_is_a_warning_only() {
    let (report, _) = answered(&response("200 OK", "", "{}"), 0);
    let f = finding(&report, "http.api_version");
    assert_eq!(f["status"], "warn");
    assert_eq!(text(f, "summary"), "the Docker-Distribution-API-Version header is missing");
    assert!(text(f, "cause").contains("a proxy may be dropping it"), "{f:#}");
    assert_eq!(finding(&report, "http.auth")["status"], "ok");
    assert_eq!(report["ok"], true);
    // Another value is reported as such.
    let (report, _) =
        answered(&response("200 OK", "Docker-Distribution-API-Version: registry/1.0\r\n", ""), 0);
    let f = finding(&report, "http.api_version");
    assert_eq!(
        text(f, "summary"),
        "Docker-Distribution-API-Version is \"registry/1.0\", not \"registry/2.0\""
    );
    // With it: no warning left but the plain HTTP one.
    let (report, _) = answered(&response("200 OK", API, "{}"), 0);
    assert_eq!(finding(&report, "http.api_version")["status"], "ok");
}

#[test]
fn a_401_without_a_challenge_fails() {
    let (report, url) = answered(&response("401 Unauthorized", API, ""), 1);
    let f = finding(&report, "http.auth");
    assert_eq!(f["status"], "fail");
    assert_eq!(text(f, "summary"), "401 without a WWW-Authenticate challenge");
    assert_eq!(text(f, "client_message"), format!("Get \"{url}/v2/\": no basic auth credentials"));
    assert!(text(f, "fix").contains("WWW-Authenticate header"), "{f:#}");
    assert_eq!(finding(&report, "http.v2")["status"], "ok");
}
