//! What a driver sees when its Ray cluster goes away while it waits in `get`: an error that
//! says so, never a value. `.ci/ray` runs it on a cluster of its own; it stops that cluster
//! itself (`ray stop --force`, which stops every Ray process of this machine), so it refuses
//! to run without `--stop-the-cluster`.
//!
//! ```text
//! RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=target/ray-code \
//!     cargo run --release --bin lost-cluster -- --stop-the-cluster
//! ```
//!
//! It prints `lost-cluster: ok` once `get` has failed, within a bounded time. Ray's C++ driver
//! may end the process soon after (with status 1); RustyRay says why on stderr first.
use std::io::Write;
use std::time::{Duration, Instant};

use ray_cluster::sleep_ms;
use rustyray::Config;

/// How long `get` may take to notice: Ray's own timeouts for a lost raylet are seconds.
const BOUND: Duration = Duration::from_secs(120);

fn main() {
    if !std::env::args().any(|a| a == "--stop-the-cluster") {
        eprintln!("lost-cluster stops every Ray process of this machine: pass --stop-the-cluster");
        std::process::exit(2);
    }
    // RUSTYRAY_ADDRESS and RUSTYRAY_CODE_SEARCH_PATH say where.
    let config = Config::from_env().expect("the configuration in the environment");
    assert!(config.get_ray_address().is_some(), "set RUSTYRAY_ADDRESS");
    rustyray::init(config).expect("connect to the Ray cluster");

    let long = sleep_ms::remote(600_000);
    // The task runs (a quick one behind it proves the cluster is up), then the cluster goes.
    assert_eq!(rustyray::get(&sleep_ms::remote(1)).unwrap(), 1);
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(2));
        let stopped = std::process::Command::new("ray")
            .args(["stop", "--force"])
            .output();
        println!(
            "lost-cluster: the cluster was stopped ({:?})",
            stopped.map(|o| o.status)
        );
    });
    let started = Instant::now();
    let outcome = rustyray::get(&long);
    let took = started.elapsed();
    let verdict = match outcome {
        Ok(value) => format!("FAILED: get returned Ok({value}) from a lost cluster"),
        Err(_) if took > BOUND => format!("FAILED: get took {took:?}"),
        Err(error) => format!("ok: get failed after {took:.1?}: {error}"),
    };
    println!("lost-cluster: {verdict}");
    let _ = std::io::stdout().flush();
    std::process::exit(if verdict.starts_with("ok") { 0 } else { 1 });
}
