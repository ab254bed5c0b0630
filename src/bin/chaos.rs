//! Chaos: many tasks and actor calls with injected panics, errors, crashes and cancels.
//!
//! Every result must be right or fail with the error the documentation promises, nothing may
//! hang, and the caught panics must not flood stderr. Prints a summary per part and exits with
//! status 1 if anything was wrong, lost or stuck.
//!
//! ```text
//! cargo run --release --bin chaos                          # 1M tasks, 100k actor calls
//! cargo run --release --bin chaos -- --tasks 20000 --calls 5000
//! ```
//!
//! - Tasks: `flaky` panics on 10% of its tries and returns `Err` on 10% (`max_retries = 3`,
//!   `retry_exceptions`), half of them async; `combine` adds two of their results, so failures
//!   and cancels propagate. 2% of the `flaky` tasks are cancelled right after submission.
//! - Actor calls: 8 actors with `max_restarts` and `max_task_retries(3)`; 1% of calls crash
//!   their actor, which is rebuilt, and the call is retried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustyray::{ActorHandle, Error, ObjectRef};

/// Longer than anything here may take: a result not there by then counts as stuck.
const STUCK: Duration = Duration::from_secs(300);
const BATCH: u64 = 100_000;

static ROLLS: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random number in `0..n` (splitmix64 over a shared counter).
fn roll(n: u64) -> u64 {
    let mut z = ROLLS
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % n
}

fn injected(i: u64) -> anyhow::Result<u64> {
    match roll(10) {
        0 => panic!("injected panic {i}"),
        1 => anyhow::bail!("injected error {i}"),
        _ => Ok(i * 2),
    }
}

#[rustyray::remote(max_retries = 3, retry_exceptions = true)]
fn flaky(i: u64) -> anyhow::Result<u64> {
    injected(i)
}

#[rustyray::remote(max_retries = 3, retry_exceptions = true)]
async fn flaky_async(i: u64) -> anyhow::Result<u64> {
    injected(i)
}

#[rustyray::remote]
fn combine(a: u64, b: u64) -> u64 {
    a + b
}

#[rustyray::actor]
struct Worker {
    calls: u64,
}

#[rustyray::actor]
impl Worker {
    fn new() -> Self {
        Worker { calls: 0 }
    }

    fn work(&mut self, x: u64) -> u64 {
        if roll(100) == 0 {
            panic!("injected crash at {x}");
        }
        self.calls += 1;
        x + 1
    }
}

#[derive(Default, Debug)]
struct Tally {
    right: u64,
    failed_as_documented: u64,
    cancelled: u64,
    wrong: u64,
    stuck: u64,
}

impl Tally {
    /// Counts one outcome: `expected` is the right value; `documented` says whether an error
    /// is one the documentation promises for this result.
    fn count(
        &mut self,
        what: &str,
        got: Result<u64, Error>,
        expected: u64,
        documented: impl Fn(&Error) -> bool,
    ) {
        match got {
            Ok(v) if v == expected => self.right += 1,
            Err(Error::Cancelled { .. }) => self.cancelled += 1,
            Err(Error::Timeout(_)) => {
                self.stuck += 1;
                eprintln!("stuck: {what}");
            }
            Err(e) if documented(&e) => self.failed_as_documented += 1,
            other => {
                self.wrong += 1;
                if self.wrong <= 10 {
                    eprintln!("wrong: {what}: {other:?} (expected {expected})");
                }
            }
        }
    }

    fn ok(&self) -> bool {
        self.wrong == 0 && self.stuck == 0
    }
}

/// An injected failure of `flaky`, after its retries: named after it, and saying it was injected.
fn flaky_failure(e: &Error) -> bool {
    matches!(e, Error::TaskFailed { function, message, .. }
        if function.contains("flaky") && message.contains("injected"))
}

fn tasks(n: u64) -> Tally {
    let mut tally = Tally::default();
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let leaves: Vec<ObjectRef<u64>> = (start..end)
            .map(|i| {
                let r = if i % 2 == 0 {
                    flaky::remote(i)
                } else {
                    flaky_async::remote(i)
                };
                if roll(50) == 0 {
                    rustyray::cancel(&r);
                }
                r
            })
            .collect();
        let pairs: Vec<ObjectRef<u64>> = leaves
            .chunks(2)
            .filter(|pair| pair.len() == 2)
            .map(|pair| combine::remote(&pair[0], &pair[1]))
            .collect();
        for (k, r) in leaves.iter().enumerate() {
            let i = start + k as u64;
            let got = rustyray::get_timeout(r, STUCK);
            tally.count(&format!("flaky({i})"), got, i * 2, flaky_failure);
        }
        for (k, r) in pairs.iter().enumerate() {
            let i = start + 2 * k as u64;
            let got = rustyray::get_timeout(r, STUCK);
            // Fails with the upstream task's error when one of its inputs failed.
            tally.count(
                &format!("combine({i}, {})", i + 1),
                got,
                4 * i + 2,
                flaky_failure,
            );
        }
        start = end;
    }
    tally
}

fn actor_calls(n: u64) -> Tally {
    let actors: Vec<ActorHandle<Worker>> = (0..8)
        .map(|_| {
            Worker::options()
                .max_restarts(u32::MAX)
                .max_task_retries(3)
                .remote()
        })
        .collect();
    let mut tally = Tally::default();
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let calls: Vec<ObjectRef<u64>> = (start..end)
            .map(|x| actors[(x % 8) as usize].work(x))
            .collect();
        for (k, r) in calls.iter().enumerate() {
            let x = start + k as u64;
            let got = rustyray::get_timeout(r, STUCK);
            // A call that crashed on all its tries fails with its panic.
            tally.count(&format!("work({x})"), got, x + 1, |e| {
                matches!(e, Error::TaskFailed { message, .. } if message.contains("injected crash"))
            });
        }
        start = end;
    }
    tally
}

fn number(args: &mut impl Iterator<Item = String>, flag: &str) -> u64 {
    let value = args.next().unwrap_or_default();
    value.parse().unwrap_or_else(|_| {
        eprintln!("{flag} takes a number, not `{value}`");
        std::process::exit(2);
    })
}

#[rustyray::main]
fn main() {
    let (mut n_tasks, mut n_calls) = (1_000_000, 100_000);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tasks" => n_tasks = number(&mut args, "--tasks"),
            "--calls" => n_calls = number(&mut args, "--calls"),
            other => {
                eprintln!("unknown argument `{other}`; usage: chaos [--tasks N] [--calls N]");
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    let t = tasks(n_tasks);
    println!(
        "tasks:       {t:?} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let a = actor_calls(n_calls);
    println!(
        "actor calls: {a:?} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    if t.ok() && a.ok() {
        println!("chaos: every result right or failed as documented; none stuck");
    } else {
        println!("chaos: FAILED");
        std::process::exit(1);
    }
}
