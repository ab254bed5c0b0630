//! Ray's core microbenchmarks, run through RustyRay on a Ray cluster, beside Ray's own Python
//! figures measured on this machine kind (../shared/ANCHORS.md).
//!
//! ```text
//! RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=target/release \
//!     cargo run --release --bin ray-bench [-- --quick]
//! ```
//!
//! The workloads are Ray's (`ray microbenchmark`): no-op tasks and actor calls, one at a time
//! ("sync") or 1000 submitted before getting them all ("async"). Each line is the median of a
//! few rounds.
use std::time::{Duration, Instant};

use ray_cluster::{square, Counter};
use rustyray::{ActorHandle, ObjectRef};

/// Runs `round` (which does `ops` operations) for about `budget`, in rounds; the median rate.
fn rate(budget: Duration, ops: u64, mut round: impl FnMut()) -> f64 {
    round(); // warm-up: workers started, code loaded
    let mut rates = Vec::new();
    let start = Instant::now();
    while rates.len() < 3 || (start.elapsed() < budget && rates.len() < 15) {
        let t = Instant::now();
        round();
        rates.push(ops as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

#[rustyray::main]
fn main() -> rustyray::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_secs(if quick { 1 } else { 4 });
    let batch: u64 = if quick { 200 } else { 1000 };
    let backend = match std::env::var("RUSTYRAY_ADDRESS") {
        Ok(address) => format!("the Ray cluster at {address}"),
        Err(_) => "the embedded runtime (set RUSTYRAY_ADDRESS to measure Ray)".to_owned(),
    };
    println!("RustyRay microbenchmarks on {backend}");
    println!(
        "{:<32} {:>12} {:>14} {:>8}",
        "benchmark (Ray's name)", "RustyRay/s", "Ray Python/s", "ratio"
    );
    let line = |name: &str, ours: f64, ray: f64| {
        println!("{name:<32} {ours:>12.0} {ray:>14.0} {:>7.2}x", ours / ray);
    };

    let sync_tasks = rate(budget, 10, || {
        for i in 0..10 {
            rustyray::get(&square::remote(i)).expect("task");
        }
    });
    line("single client tasks sync", sync_tasks, 714.0);

    let async_tasks = rate(budget, batch, || {
        let refs: Vec<ObjectRef<u64>> = (0..batch).map(square::remote).collect();
        rustyray::get_all(&refs).expect("tasks");
    });
    line("single client tasks async", async_tasks, 2224.0);

    let counter: ActorHandle<Counter> = Counter::remote(0);
    let sync_calls = rate(budget, 10, || {
        for _ in 0..10 {
            rustyray::get(&counter.add(1)).expect("call");
        }
    });
    line("1:1 actor calls sync", sync_calls, 1392.0);

    let async_calls = rate(budget, batch, || {
        let refs: Vec<ObjectRef<u64>> = (0..batch).map(|_| counter.add(1)).collect();
        rustyray::get_all(&refs).expect("calls");
    });
    line("1:1 actor calls async", async_calls, 4834.0);

    let put_get = rate(budget, 100, || {
        for i in 0..100u64 {
            let r = rustyray::put(i).expect("put");
            rustyray::get(&r).expect("get");
        }
    });
    line("put + get calls (small)", put_get, 1289.0);
    println!("ratio: RustyRay on Ray / Ray's Python API on Ray, same machine kind (ANCHORS.md)");
    Ok(())
}
