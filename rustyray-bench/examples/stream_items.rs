//! A profiling workload for streams: ROUNDS streams of 200,000 `u64` items, each read with
//! `get` as it comes (the bench's "stream items" line, without the floor beside it).
//!
//! ```text
//! cargo run --release -p rustyray-bench --example stream_items -- 5 [--values]
//! ```
//!
//! With `--values`, the items are read with `values()` instead.

#[rustyray::remote(streaming)]
fn numbers(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let n = 200_000;
    let values = std::env::args().any(|a| a == "--values");
    for _ in 0..rounds {
        let sum: u64 = if values {
            numbers::remote(n).values().map(|v| v.unwrap()).sum()
        } else {
            numbers::remote(n).map(|r| rustyray::get(&r).unwrap()).sum()
        };
        assert_eq!(sum, n * (n - 1) / 2);
    }
}
