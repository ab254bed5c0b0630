//! Debugging a pipeline: one stage fails for some inputs. This example shows what RustyRay gives
//! you to find out where and why:
//!
//! - the error itself, with the failing function and its cause chain, reaching every dependent;
//! - `tracing` events (set `RUST_LOG`-style filtering in your own subscriber; here a minimal
//!   one prints warnings);
//! - `rustyray::state::summary()`: tasks per function and state, objects, actors;
//! - `rustyray::state::tasks(..)` filtered to the failed ones;
//! - `rustyray::timeline(path)`: a Chrome trace to open in <https://ui.perfetto.dev>.
//!
//! `cargo run --example debugging [-- --quick]`

use rustyray::state::{self, TaskFilter, TaskState};
use rustyray::ObjectRef;

/// Stage 1: parse a record.
#[rustyray::remote]
fn parse(line: String) -> anyhow::Result<(String, u32)> {
    let (name, value) = line
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("no `=` in {line:?}"))?;
    let value = value
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("bad number in {line:?}: {e}"))?;
    Ok((name.trim().to_owned(), value))
}

/// Stage 2: score it.
#[rustyray::remote]
fn score(record: (String, u32)) -> u64 {
    u64::from(record.1) * record.0.len() as u64
}

/// Stage 3: add up the scores of a batch.
#[rustyray::remote]
fn total(scores: Vec<u64>) -> u64 {
    scores.iter().sum()
}

/// Prints warnings and errors from RustyRay's `tracing` events to stderr.
struct Warnings;

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Line(String);
        impl tracing::field::Visit for Line {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut line = Line(format!("[{}]", event.metadata().level()));
        event.record(&mut line);
        eprintln!("{}", line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[rustyray::main]
fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    tracing::subscriber::set_global_default(Warnings)?;
    let n = if quick { 40 } else { 400 };
    // Every 13th line is malformed.
    let lines: Vec<String> = (0..n)
        .map(|i| {
            if i % 13 == 12 {
                format!("item{i} {i}")
            } else {
                format!("item{i}={i}")
            }
        })
        .collect();

    // The pipeline: parse -> score, ten records per batch -> total.
    let scores: Vec<ObjectRef<u64>> = lines
        .into_iter()
        .map(|l| score::remote(parse::remote(l)))
        .collect();
    let mut totals: Vec<ObjectRef<u64>> = Vec::new();
    for (k, batch) in scores.chunks(10).enumerate() {
        match rustyray::get_all(batch) {
            Ok(values) => totals.push(total::remote(values)),
            // 1. The error: the function that failed and why, as seen downstream of it.
            Err(error) => println!("batch {k} skipped: {error}"),
        }
    }
    let sum: u64 = rustyray::get_all(&totals)?.iter().sum();
    println!("total of the good batches: {sum}\n");

    // 2. The summary, like `ray summary tasks` and `ray memory`.
    println!("{}\n", state::summary());

    // 3. The failed tasks, with when they ran and for how long.
    println!("failed tasks:");
    for task in state::tasks(&TaskFilter::default().state(TaskState::Failed))
        .iter()
        .take(5)
    {
        match (task.started, task.duration) {
            (Some(at), Some(took)) => {
                println!(
                    "  {} {:<8} ran at {at:?} for {took:?}",
                    task.object, task.function
                )
            }
            _ => println!(
                "  {} {:<8} never ran: an argument failed",
                task.object, task.function
            ),
        }
    }

    // 4. The timeline.
    let path = std::env::temp_dir().join("rustyray-debugging-timeline.json");
    let events = rustyray::timeline(&path)?;
    println!(
        "\nwrote {events} events to {} (open it in https://ui.perfetto.dev)",
        path.display()
    );
    Ok(())
}
