//! A job to watch on the dashboard: tasks of a few functions (some failing and retried), an
//! actor with a queue, a placement group and objects in the store, running until you stop it.
//!
//! ```text
//! cargo run --release --example dashboard                  # http://127.0.0.1:8265/
//! cargo run --release --example dashboard -- --port 9000 --seconds 60
//! cargo run --example dashboard -- --quick                 # a few seconds, on a free port
//! ```
//!
//! Open the address it prints: the page shows the tasks per function with their rates, the
//! actor and its queue, the objects and memory, the placement group and a chart of recent
//! runs; `/metrics` is the same in Prometheus' text format, `/api/snapshot` in JSON. The
//! dashboard needs rustyray's `dashboard` feature (this crate's examples have it).

use std::time::{Duration, Instant};

use rustyray::{Bundle, Config, PlacementGroup, Runtime};

/// A bit of work: sums a range.
#[rustyray::remote]
fn crunch(n: u64) -> u64 {
    (0..n * 1000).fold(0u64, |a, b| a.wrapping_add(b * b))
}

/// Fails for multiples of ten, on every try (so the page shows failures and retries).
#[rustyray::remote]
fn flaky(n: u64) -> anyhow::Result<u64> {
    anyhow::ensure!(!n.is_multiple_of(10), "{n} is a multiple of ten");
    Ok(n)
}

/// Keeps a running total; its calls queue up behind each other.
#[rustyray::actor]
struct Ledger {
    total: u64,
}

#[rustyray::actor]
impl Ledger {
    fn new() -> Self {
        Ledger { total: 0 }
    }

    fn record(&mut self, amount: u64) -> u64 {
        std::thread::sleep(Duration::from_micros(200));
        self.total = self.total.wrapping_add(amount);
        self.total
    }
}

fn main() -> rustyray::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let port = value("--port").unwrap_or(if quick { 0 } else { 8265 });
    let seconds = value("--seconds").unwrap_or(if quick { 2 } else { 600 });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port as u16));
    let rt = Runtime::new(Config::default().dashboard(addr))?;
    let _guard = rt.enter();
    let at = rt.dashboard_address().expect("the dashboard was asked for");
    println!("dashboard at http://{at}/ (metrics at /metrics, JSON at /api/snapshot)");

    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .name("reserved")
        .create()?;
    let ledger = Ledger::remote();
    let _kept = rustyray::put(vec![0u8; 1 << 20])?;
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0u64;
    let mut failed = 0;
    while Instant::now() < end {
        round += 1;
        let crunched: Vec<_> = (0..200).map(|i| crunch::remote(i % 50)).collect();
        let flakes: Vec<_> = (round * 20..round * 20 + 20)
            .map(|n| {
                flaky::options()
                    .max_retries(1)
                    .retry_exceptions(true)
                    .remote(n)
            })
            .collect();
        let inside = crunch::options().placement_group(&pg, 0).remote(10);
        let recorded: Vec<_> = (0..20).map(|i| ledger.record(i)).collect();
        rustyray::get_all(&crunched)?;
        failed += flakes.iter().filter(|r| rustyray::get(*r).is_err()).count();
        rustyray::get(&inside)?;
        rustyray::get_all(&recorded)?;
    }
    println!("{round} rounds; {failed} flaky tasks failed after their retry");
    rustyray::remove_placement_group(&pg)?;
    Ok(())
}
