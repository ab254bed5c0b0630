//! `--soak BATCHES`: the long-run check. Submits batches of no-op tasks from one thread (all of a
//! batch, then `get_all`, then drop) and prints, after each batch, the process's resident memory
//! and thread count, so growth over tens of millions of tasks shows. The last line compares the
//! end with the state after the first 2.5M tasks (the warm-up).
//!
//! It runs twice: with nothing else alive, then with [`HELD`] small objects held from start to
//! end (as a service's cache would hold them), which is what once made memory creep.

use std::time::Instant;

use rustyray::ObjectRef;

#[rustyray::remote]
fn nop() {}

/// The process's resident memory (MiB) and thread count, from `/proc/self/status`.
pub(crate) fn process_status() -> (f64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:") as f64 / 1024.0, field("Threads:") as usize)
}

/// How many objects the second soak holds throughout.
pub(crate) const HELD: usize = 100_000;

/// Runs `batches` batches of `per_batch` no-op tasks on the current runtime, printing a line per
/// batch, while `held` small objects (`put` before the first batch) stay alive; returns
/// `(rss, threads)` after warm-up and at the end.
pub(crate) fn run(batches: usize, per_batch: usize, held: usize) -> ((f64, usize), (f64, usize)) {
    const WARM_UP_TASKS: usize = 2_500_000;
    let warm_up_batches = WARM_UP_TASKS.div_ceil(per_batch).min(batches);
    let kept: Vec<ObjectRef<u64>> = (0..held as u64)
        .map(|i| rustyray::put(i).expect("a small put succeeds"))
        .collect();
    let (rss, threads) = process_status();
    println!(
        "soak: {batches} batches of {per_batch} no-op tasks, {held} objects held; start: \
         {rss:.0} MiB, {threads} threads"
    );
    println!(
        "{:>6} {:>12} {:>10} {:>8} {:>12}",
        "batch", "tasks", "RSS MiB", "threads", "tasks/s"
    );
    let mut warm = (rss, threads);
    for batch in 1..=batches {
        let started = Instant::now();
        let refs: Vec<ObjectRef<()>> = (0..per_batch).map(|_| nop::remote()).collect();
        rustyray::get_all(&refs).expect("no-op tasks succeed");
        drop(refs);
        let rate = per_batch as f64 / started.elapsed().as_secs_f64();
        let (rss, threads) = process_status();
        println!(
            "{batch:>6} {:>12} {rss:>10.1} {threads:>8} {rate:>12.0}",
            batch * per_batch
        );
        if batch == warm_up_batches {
            warm = (rss, threads);
        }
    }
    let end = process_status();
    assert_eq!(kept.len(), held);
    drop(kept);
    println!(
        "soak ({held} held): after warm-up ({} tasks) {:.1} MiB, {} threads; at the end {:.1} MiB ({:+.1}%), {} threads ({:+})",
        warm_up_batches * per_batch,
        warm.0,
        warm.1,
        end.0,
        (end.0 / warm.0 - 1.0) * 100.0,
        end.1,
        end.1 as i64 - warm.1 as i64
    );
    (warm, end)
}
