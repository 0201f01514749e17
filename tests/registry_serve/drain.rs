//! Graceful shutdown, in-process: `registry::server::run` with a router whose handler is slow,
//! so a request is certainly in flight when shutdown starts.

use std::io::Write;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use regkit::registry::config::{self, Overrides};
use regkit::registry::server;

fn config(drain: &str) -> config::ServeConfig {
    let env = [("REGISTRY_HTTP_DRAINTIMEOUT".to_string(), drain.to_string())];
    let flags = Overrides { addr: Some("127.0.0.1:0".into()), ..Default::default() };
    config::load(None, env, &flags).unwrap()
}

fn slow_app(delay: Duration) -> Router {
    Router::new().route(
        "/slow",
        get(move || async move {
            tokio::time::sleep(delay).await;
            "done"
        }),
    )
}

/// Starts `run`, sends GET /slow, triggers shutdown while it is in flight; returns the
/// response (status, body) read by a client thread and how long `run` took after shutdown.
fn in_flight_during_shutdown(drain: &str, delay: Duration) -> (Option<(u16, String)>, Duration) {
    let cfg = config(drain);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (client, took, addr) = rt.block_on(async move {
        let listener = server::bind(&cfg).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let app = slow_app(delay);
        let cfg2 = cfg.clone();
        let serving =
            tokio::spawn(async move { server::run(&cfg2, app, listener, shutdown).await });
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(s, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            std::panic::catch_unwind(move || super::support::read_response(&mut s)).ok()
        });
        // Let the request reach the handler, then shut down.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        tx.send(()).unwrap();
        serving.await.unwrap().unwrap();
        (client, started.elapsed(), addr)
    });
    // New connections are refused once shutdown has begun.
    assert!(std::net::TcpStream::connect(addr).is_err(), "still accepting after shutdown");
    let response = client.join().unwrap();
    drop(rt);
    (response, took)
}

#[test]
fn shutdown_lets_an_in_flight_request_finish() {
    let (response, took) = in_flight_during_shutdown("10s", Duration::from_millis(1500));
    assert_eq!(response, Some((200, "done".to_string())));
    assert!(took >= Duration::from_millis(900), "returned before the request finished: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn shutdown_gives_up_after_the_drain_timeout() {
    let (response, took) = in_flight_during_shutdown("500ms", Duration::from_secs(30));
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(3), "the drain timeout was not applied: {took:?}");
    assert_eq!(response, None, "the request cannot have completed");
}
