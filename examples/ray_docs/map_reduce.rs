//! Word count with MapReduce, ported from Ray's "A Simple MapReduce Example"
//! (`doc/source/ray-core/examples/map_reduce.ipynb` in ray-project/ray; see README.md here):
//! mappers split their part of the corpus into one partition per reducer, as several returns;
//! each reducer gets its partition of every mapper's output and counts the words.
//!
//! `cargo run --release --example map_reduce [--quick]`
use std::collections::HashMap;
use std::time::Instant;

use rustyray::prelude::*;

/// The Zen of Python (PEP 20), the tutorial's corpus, repeated to make the work measurable.
const ZEN: &str = include_str!("zen.txt");
const PARTITIONS: usize = 3;

type Pairs = Vec<(String, u32)>;

/// The tutorial's `map_function`: a `(word, 1)` pair per word, lower-cased.
fn map_function(document: &str) -> impl Iterator<Item = (String, u32)> + '_ {
    document.split_whitespace().map(|w| (w.to_lowercase(), 1))
}

/// `apply_map`: every pair goes to the partition its first letter picks, one object each.
#[rustyray::remote(num_returns = 3)]
fn apply_map(corpus: Vec<String>) -> (Pairs, Pairs, Pairs) {
    let mut results: [Pairs; PARTITIONS] = Default::default();
    for document in &corpus {
        for (word, one) in map_function(document) {
            let first = word.chars().next().map_or(0, u32::from) as usize;
            results[first % PARTITIONS].push((word, one));
        }
    }
    let [a, b, c] = results;
    (a, b, c)
}

/// `apply_reduce`: the counts of one partition, over every mapper's part of it. The refs to
/// those parts arrive as a `Vec<Pairs>`, resolved before the task runs.
#[rustyray::remote]
fn apply_reduce(results: Vec<Pairs>) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for (word, n) in results.into_iter().flatten() {
        *counts.entry(word).or_insert(0) += u64::from(n);
    }
    counts
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    println!("{}", run(quick)?);
    Ok(())
}

/// Runs the word count on the current runtime; its result, the same on every backend.
pub fn run(quick: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let copies = if quick { 50 } else { 20_000 };
    let corpus: Vec<String> = ZEN
        .repeat(copies)
        .split_whitespace()
        .map(String::from)
        .collect();
    let chunk = corpus.len() / PARTITIONS;
    let map_results: Vec<(ObjectRef<Pairs>, ObjectRef<Pairs>, ObjectRef<Pairs>)> = corpus
        .chunks(chunk)
        .take(PARTITIONS)
        .map(|part| apply_map::remote(part.to_vec()))
        .collect();
    let outputs: Vec<ObjectRef<HashMap<String, u64>>> = (0..PARTITIONS)
        .map(|i| {
            let parts: Vec<ObjectRef<Pairs>> = map_results
                .iter()
                .map(|(a, b, c)| [a, b, c][i].clone())
                .collect();
            apply_reduce::remote(parts)
        })
        .collect();
    let mut counts: Vec<(String, u64)> =
        rustyray::get_all(&outputs)?.into_iter().flatten().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut result = String::new();
    for (word, count) in counts.iter().take(10) {
        result += &format!("{word}: {count}\n");
    }
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    result += &format!("{} distinct words, {total} in all", counts.len());
    println!("work took {:.3} s", started.elapsed().as_secs_f64());
    anyhow::ensure!(
        total as usize == chunk * PARTITIONS,
        "every word counted once"
    );
    Ok(result)
}
