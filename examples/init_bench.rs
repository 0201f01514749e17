//! Benchmark (not a test): wall time of a whole `regkit init` — CA, site certificate, bcrypt
//! htpasswd, rendering, secrets, trust bundle, move into place — with ECDSA P-256 keys and
//! with RSA-4096 keys, through the same library call the command line makes.
//!
//! Run: `cargo run --release --example init_bench [RUNS]` (default 5 runs per key type).
//! Prints every run and the median; the folders live in a temporary directory.

use std::time::{Duration, Instant};

use regkit::deploy::descriptor::Descriptor;
use regkit::deploy::init::{InitOptions, init};
use regkit::pki::KeyType;

fn main() {
    let runs: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 5,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: init_bench [RUNS]   (RUNS > 0, default 5)");
            std::process::exit(2);
        }
    };
    let base = tempfile::tempdir().expect("a temporary directory");
    println!("regkit init, {runs} runs per key type (median wall time)");
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa4096] {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs {
            let mut descriptor = Descriptor::new(vec!["registry.example.com".into()]);
            descriptor.ips = vec!["192.168.1.10".parse().expect("a literal IP")];
            descriptor.users = vec!["admin".into()];
            descriptor.key_type = key_type;
            let opts = InitOptions {
                dir: base.path().join(format!("{}-{i}", key_type.name())),
                descriptor,
                password: "bench-password".into(),
                force: false,
                keep_ca: false,
            };
            let start = Instant::now();
            if let Err(e) = init(&opts) {
                eprintln!("init failed: {e}");
                std::process::exit(1);
            }
            times.push(start.elapsed());
        }
        let shown: Vec<String> = times.iter().map(|t| format!("{:.3}", t.as_secs_f64())).collect();
        println!(
            "  {:<11} median {:>7.3} s   runs: {} s",
            key_type.name(),
            median(&mut times).as_secs_f64(),
            shown.join(" ")
        );
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 { times[mid] } else { (times[mid - 1] + times[mid]) / 2 }
}
