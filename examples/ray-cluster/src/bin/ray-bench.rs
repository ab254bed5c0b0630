//! Ray's core microbenchmarks, run through RustyRay on a Ray cluster, beside the same workloads
//! run with Ray's Python API on the same head in the same run (`python/workloads.py`).
//!
//! ```text
//! RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=target/ray-code \
//!     RUSTYRAY_PYTHON=ray-env/bin/python cargo run --release --bin ray-bench [-- --quick]
//! ```
//!
//! The workloads are Ray's (`ray microbenchmark`): no-op tasks and actor calls, one at a time
//! ("sync") or 1000 submitted before getting them all ("async"), and small puts and gets; then
//! tasks of two returns, streams (items, and streams started) and a task over a 64 MiB array
//! (a NumPy array on the Python side). Each
//! side first lets the head settle (workers started, a pause), then times each line for
//! seconds, in rounds, and reports the median. Without `RUSTYRAY_PYTHON` (a Python with `ray`
//! installed), the Python column says so instead of quoting figures from another machine.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ray_cluster::{div_mod, numbers, square, total, total_in_place, Counter};
use rustyray::{ActorHandle, ObjectRef};

/// The elements of the large array: 64 MiB of `u64`.
const BIG: u64 = 8 << 20;

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

/// The same workloads with Ray's Python API, on the same head: name → rate, or why not.
fn python_side(quick: bool) -> Result<BTreeMap<String, f64>, String> {
    let python = std::env::var("RUSTYRAY_PYTHON")
        .map_err(|_| "RUSTYRAY_PYTHON is not set (a Python with ray installed)".to_owned())?;
    let address = std::env::var("RUSTYRAY_ADDRESS").map_err(|_| "no cluster".to_owned())?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/workloads.py");
    let mut command = std::process::Command::new(python);
    command.args([script, &address]);
    if quick {
        command.arg("--quick");
    }
    let out = command
        .output()
        .map_err(|e| format!("could not run Python: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| {
        format!(
            "the Python side failed ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        )
    })
}

#[rustyray::main]
fn main() -> rustyray::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_secs(if quick { 1 } else { 4 });
    let batch: u64 = if quick { 200 } else { 1000 };
    let settle = Duration::from_secs(if quick { 1 } else { 5 });
    let backend = match std::env::var("RUSTYRAY_ADDRESS") {
        Ok(address) => format!("the Ray cluster at {address}"),
        Err(_) => "the embedded runtime (set RUSTYRAY_ADDRESS to measure Ray)".to_owned(),
    };
    println!("RustyRay microbenchmarks on {backend}");

    // Let the head settle, as the Python side does: workers started, then a pause.
    let warm: Vec<ObjectRef<u64>> = (0..batch).map(square::remote).collect();
    rustyray::get_all(&warm)?;
    std::thread::sleep(settle);

    let mut ours: Vec<(&str, f64)> = Vec::new();
    ours.push((
        "single client tasks sync",
        rate(budget, 10, || {
            for i in 0..10 {
                rustyray::get(&square::remote(i)).expect("task");
            }
        }),
    ));
    ours.push((
        "single client tasks async",
        rate(budget, batch, || {
            let refs: Vec<ObjectRef<u64>> = (0..batch).map(square::remote).collect();
            rustyray::get_all(&refs).expect("tasks");
        }),
    ));
    let counter: ActorHandle<Counter> = Counter::remote(0);
    ours.push((
        "1:1 actor calls sync",
        rate(budget, 10, || {
            for _ in 0..10 {
                rustyray::get(&counter.add(1)).expect("call");
            }
        }),
    ));
    ours.push((
        "1:1 actor calls async",
        rate(budget, batch, || {
            let refs: Vec<ObjectRef<u64>> = (0..batch).map(|_| counter.add(1)).collect();
            rustyray::get_all(&refs).expect("calls");
        }),
    ));
    ours.push((
        "tasks with num_returns = 2 async",
        rate(budget, batch, || {
            let parts: Vec<ObjectRef<u64>> = (0..batch)
                .flat_map(|i| {
                    let (q, r) = div_mod::remote(i, 3);
                    [q, r]
                })
                .collect();
            rustyray::get_all(&parts).expect("parts");
        }),
    ));
    ours.push((
        "stream items (1000 a stream)",
        rate(budget, batch, || {
            let items: Vec<ObjectRef<u64>> = numbers::remote(batch).collect();
            rustyray::get_all(&items).expect("items");
        }),
    ));
    ours.push((
        "streams of 3 items",
        rate(budget, 10, || {
            for _ in 0..10 {
                let items: Vec<ObjectRef<u64>> = numbers::remote(3).collect();
                rustyray::get_all(&items).expect("items");
            }
        }),
    ));
    // A 64 MiB array (8 Mi u64s), put once, read by one task at a time by `&T`.
    let big = rustyray::put((0..BIG).collect::<Vec<u64>>())?;
    ours.push((
        "64 MiB Vec<u64> task by &T",
        rate(budget, 1, || {
            let sum = rustyray::get(&total::remote(&big)).expect("task");
            assert_eq!(sum, BIG * (BIG - 1) / 2);
        }),
    ));
    // The same task taking `&[u64]`: read where Ray's buffer holds it, with no copy of its own.
    ours.push((
        "64 MiB task by &[u64]",
        rate(budget, 1, || {
            let sum = rustyray::get(&total_in_place::remote(&big)).expect("task");
            assert_eq!(sum, BIG * (BIG - 1) / 2);
        }),
    ));
    ours.push((
        "put + get calls (small)",
        rate(budget, 100, || {
            for i in 0..100u64 {
                let r = rustyray::put(i).expect("put");
                rustyray::get(&r).expect("get");
            }
        }),
    ));

    let python = python_side(quick);
    println!(
        "{:<32} {:>12} {:>14} {:>8}",
        "benchmark (Ray's name)", "RustyRay/s", "Ray Python/s", "ratio"
    );
    for (name, rate) in &ours {
        match python.as_ref().ok().and_then(|p| p.get(*name)) {
            Some(ray) => println!("{name:<32} {rate:>12.0} {ray:>14.0} {:>7.2}x", rate / ray),
            None => println!("{name:<32} {rate:>12.0} {:>14} {:>8}", "-", "-"),
        }
    }
    match python {
        Ok(_) => println!(
            "ratio: RustyRay on Ray / Ray's Python API on Ray, both measured on this head in \
             this run"
        ),
        Err(why) => println!("Ray Python column not measured: {why}"),
    }
    Ok(())
}
