//! RustyRay's benchmark binary.
//!
//! Runs each workload and, in the same process and run, its raw floor: the least work that
//! does the same thing without RustyRay. Figures are reported as rates and as ratios to the
//! floor, because absolute numbers on a shared 2-core machine are noisy while ratios measured
//! side by side are not.
//!
//! `cargo run --release -p rustyray-bench` (add `-- --quick` for a fast smoke run, as CI does).

use std::time::Instant;

use rustyray::{ActorHandle, Config, ObjectRef, Runtime};

struct Bench {
    rounds: usize,
    batch: usize,
}

/// Best rate (operations per second) of `rounds` runs of `f`, which performs `ops` operations.
fn best_rate(rounds: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            ops as f64 / start.elapsed().as_secs_f64().max(1e-9)
        })
        .fold(0.0, f64::max)
}

fn row(name: &str, ours: f64, floor_name: &str, floor: f64) {
    println!(
        "{name:<34} {:>12.0}/s   {floor_name:<34} {:>12.0}/s   floor/ours {:>6.2}x",
        ours,
        floor,
        floor / ours
    );
}

#[rustyray::remote]
fn nop() {}

#[rustyray::remote]
async fn nop_async() {}

#[rustyray::actor]
struct Nop;

#[rustyray::actor]
impl Nop {
    fn new() -> Self {
        Nop
    }

    fn ping(&self) {}

    async fn ping_async(&self) {}
}

fn main() -> rustyray::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let b = if quick {
        Bench {
            rounds: 2,
            batch: 2_000,
        }
    } else {
        Bench {
            rounds: 5,
            batch: 100_000,
        }
    };
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "RustyRay throughput, {cpus} CPUs, batch {} , best of {} rounds",
        b.batch, b.rounds
    );

    let floor_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .build()
        .expect("tokio starts");
    let rt = Runtime::new(Config::default().num_cpus(cpus))?;
    let _guard = rt.enter();

    // Tasks, async bodies: submit a batch of no-op tasks, then get them all.
    let floor = best_rate(b.rounds, b.batch, || {
        floor_rt.block_on(async {
            let handles: Vec<_> = (0..b.batch).map(|_| tokio::spawn(async {})).collect();
            for h in handles {
                h.await.unwrap();
            }
        })
    });
    let ours = best_rate(b.rounds, b.batch, || {
        let refs: Vec<ObjectRef<()>> = (0..b.batch).map(|_| nop_async::remote()).collect();
        rustyray::get_all(&refs).unwrap();
    });
    row("tasks async (no-op)", ours, "tokio::spawn + join", floor);

    // Tasks, sync bodies on the CPU pool.
    let floor_sync = best_rate(b.rounds, b.batch, || {
        floor_rt.block_on(async {
            let handles: Vec<_> = (0..b.batch)
                .map(|_| tokio::task::spawn_blocking(|| {}))
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        })
    });
    let ours = best_rate(b.rounds, b.batch, || {
        let refs: Vec<ObjectRef<()>> = (0..b.batch).map(|_| nop::remote()).collect();
        rustyray::get_all(&refs).unwrap();
    });
    row(
        "tasks sync (no-op)",
        ours,
        "tokio spawn_blocking + join",
        floor_sync,
    );

    // One task at a time: submit, then get (a full round trip).
    let n = b.batch / 20;
    let floor = best_rate(b.rounds, n, || {
        for _ in 0..n {
            floor_rt.block_on(floor_rt.spawn(async {})).unwrap();
        }
    });
    let ours = best_rate(b.rounds, n, || {
        for _ in 0..n {
            rustyray::get(&nop::remote()).unwrap();
        }
    });
    row(
        "tasks sync, one at a time",
        ours,
        "block_on(spawn) one at a time",
        floor,
    );

    // Actor calls, pipelined, sync and async methods.
    let floor = best_rate(b.rounds, b.batch, || {
        floor_rt.block_on(async {
            let (tx, mut rx) =
                tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<u64>>();
            let actor = tokio::spawn(async move {
                let mut n = 0u64;
                while let Some(reply) = rx.recv().await {
                    n += 1;
                    let _ = reply.send(n);
                }
            });
            let replies: Vec<_> = (0..b.batch)
                .map(|_| {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    tx.send(reply).unwrap();
                    answer
                })
                .collect();
            for r in replies {
                r.await.unwrap();
            }
            drop(tx);
            actor.await.unwrap();
        })
    });
    let actor: ActorHandle<Nop> = Nop::remote();
    let ours = best_rate(b.rounds, b.batch, || {
        let refs: Vec<ObjectRef<()>> = (0..b.batch).map(|_| actor.ping()).collect();
        rustyray::get_all(&refs).unwrap();
    });
    row(
        "1:1 actor calls sync (pipelined)",
        ours,
        "mpsc + oneshot (pipelined)",
        floor,
    );
    let ours = best_rate(b.rounds, b.batch, || {
        let refs: Vec<ObjectRef<()>> = (0..b.batch).map(|_| actor.ping_async()).collect();
        rustyray::get_all(&refs).unwrap();
    });
    row(
        "1:1 actor calls async (pipelined)",
        ours,
        "mpsc + oneshot (pipelined)",
        floor,
    );

    // put + get of a small object.
    let ours = best_rate(b.rounds, b.batch, || {
        for i in 0..b.batch {
            let r = rustyray::put(i as u64).unwrap();
            rustyray::get(&r).unwrap();
        }
    });
    let map = std::sync::Mutex::new(std::collections::HashMap::new());
    let floor = best_rate(b.rounds, b.batch, || {
        for i in 0..b.batch {
            map.lock().unwrap().insert(i, std::sync::Arc::new(i as u64));
        }
        for i in 0..b.batch {
            map.lock().unwrap().remove(&i);
        }
    });
    row(
        "put + get (u64)",
        ours,
        "Mutex<HashMap> insert + remove",
        floor,
    );

    rt.shutdown();
    Ok(())
}
