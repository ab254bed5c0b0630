//! A streaming pipeline: a producer task streams batches of readings, a stage task starts on
//! each batch as soon as it exists (while the producer still makes the next ones), and the
//! driver reads the stage results in the order they finish, with a progress bar.
//!
//! `cargo run --release --example streaming_pipeline [--quick]`
use std::time::Instant;

use rustyray::prelude::*;

/// What the stage finds in one batch.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Summary {
    batch: usize,
    readings: usize,
    sum: u64,
    primes: usize,
}

/// The producer: batches of pseudo-random readings (a linear congruential generator, so every
/// run sees the same data), each an object of its own as soon as it is made. With
/// `backpressure = 8` it never runs more than 8 batches ahead of the consumer.
#[rustyray::remote(streaming, backpressure = 8)]
fn read_batches(batches: usize, size: usize) -> impl Iterator<Item = Vec<u64>> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..batches).map(move |_| {
        (0..size)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                state >> 44 // readings below 2^20
            })
            .collect()
    })
}

/// The stage: a CPU-bound look at one batch, borrowed from the object store (no copy).
#[rustyray::remote]
fn summarize(batch: usize, readings: &Vec<u64>) -> Summary {
    Summary {
        batch,
        readings: readings.len(),
        sum: readings.iter().sum(),
        primes: readings.iter().filter(|&&r| is_prime(r)).count(),
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    println!("{}", run(quick)?);
    Ok(())
}

/// Runs the pipeline on the current runtime; its result, the same on every backend.
pub fn run(quick: bool) -> anyhow::Result<String> {
    let (batches, size) = if quick { (40, 2_000) } else { (400, 20_000) };
    let started = Instant::now();

    // Each batch's stage task is submitted the moment the batch exists: `map` over the stream
    // pulls one ref at a time.
    let stream = read_batches::remote(batches, size);
    let produced = stream.completed();
    let summaries: Vec<ObjectRef<Summary>> = stream
        .enumerate()
        .map(|(i, batch)| summarize::remote(i, batch))
        .collect();

    // Results in the order they finish, with a progress bar.
    let bar = indicatif::ProgressBar::new(summaries.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} batches summarized")
            .expect("a valid template"),
    );
    let (mut readings, mut sum, mut primes) = (0, 0, 0);
    let mut first_done = None;
    for done in rustyray::as_completed(&summaries) {
        let summary = rustyray::get(&done)?;
        first_done.get_or_insert((summary.batch, started.elapsed()));
        readings += summary.readings;
        sum += summary.sum;
        primes += summary.primes;
        bar.inc(1);
    }
    bar.finish();
    rustyray::get(&produced)?;

    let (first_batch, first_at) = first_done.expect("at least one batch");
    let result = format!(
        "{batches} batches, {readings} readings: sum {sum}, {primes} primes ({:.2}% of them)",
        primes as f64 * 100.0 / readings as f64
    );
    println!(
        "first result (batch {first_batch}) after {:.0} ms; all done after {:.0} ms",
        first_at.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    anyhow::ensure!(readings == batches * size, "every reading summarized once");
    Ok(result)
}
