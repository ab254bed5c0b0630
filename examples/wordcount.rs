//! Word count over a directory tree: RustyRay's flagship map-reduce example.
//!
//! ```text
//! cargo run --release --example wordcount [DIR ...] [--top N]
//! ```
//!
//! Without a directory it counts this project's own sources and docs, which every checkout
//! has. Each file is counted by a remote task (map); partial counts are merged pairwise by
//! remote tasks that receive the refs of the maps (reduce), so no result passes through `main`
//! until the end. Progress is reported as map results come in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustyray::task::{IntoArg, TaskBuilder};
use rustyray::{Config, ObjectRef};

type Counts = HashMap<String, u64>;

/// Map: the words of one file. (`#[rustyray::remote] fn count_file(path: PathBuf) -> ...`.)
fn count_file(path: impl IntoArg<PathBuf>) -> ObjectRef<Counts> {
    let mut task = TaskBuilder::new("count_file");
    let path = task.arg(path);
    task.spawn(move || {
        let path = path.get()?;
        let bytes = std::fs::read(&path)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut counts = Counts::new();
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2 && !w.chars().all(|c| c.is_ascii_digit()))
        {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
        Ok(counts)
    })
}

/// Reduce: two partial counts merged into one.
fn merge(a: impl IntoArg<Counts>, b: impl IntoArg<Counts>) -> ObjectRef<Counts> {
    let mut task = TaskBuilder::new("merge");
    let (a, b) = (task.arg(a), task.arg(b));
    task.spawn(move || {
        let (mut a, b) = (a.get()?, b.get()?);
        for (word, n) in b {
            *a.entry(word).or_default() += n;
        }
        Ok(a)
    })
}

fn text_files(root: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                text_files(&path, out)?;
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("rs" | "md" | "txt" | "toml" | "py" | "c" | "h" | "cpp" | "go" | "java")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut roots = Vec::new();
    let mut top = 15;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--top" => top = args.next().and_then(|n| n.parse().ok()).unwrap_or(top),
            "-h" | "--help" => {
                println!("usage: wordcount [DIR ...] [--top N]");
                return Ok(());
            }
            dir => roots.push(PathBuf::from(dir)),
        }
    }
    if roots.is_empty() {
        roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    }
    let mut files = Vec::new();
    for root in &roots {
        text_files(root, &mut files)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", root.display()))?;
    }
    anyhow::ensure!(!files.is_empty(), "no text files under {roots:?}");

    rustyray::init(Config::default())?;
    let started = Instant::now();

    // Map: one task per file, all submitted at once.
    let mut pending: Vec<ObjectRef<Counts>> = files.iter().cloned().map(count_file).collect();

    // Reduce as maps finish: merge each newly ready count into a running tree of merges.
    let total_files = pending.len();
    let mut partials: Vec<ObjectRef<Counts>> = Vec::new();
    let mut done = 0;
    while !pending.is_empty() {
        let (ready, rest) = rustyray::wait(&pending, 1, None);
        pending = rest;
        done += ready.len();
        partials.extend(ready);
        while partials.len() >= 2 {
            let (a, b) = (partials.pop().unwrap(), partials.pop().unwrap());
            partials.insert(0, merge(a, b));
        }
        if done % 50 == 0 || done == total_files {
            eprint!("\rcounted {done}/{total_files} files");
        }
    }
    eprintln!();
    let counts = rustyray::get(&partials[0])?;
    let elapsed = started.elapsed();

    let mut words: Vec<(&String, &u64)> = counts.iter().collect();
    words.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let total: u64 = counts.values().sum();
    println!("{:<20} {:>10} {:>7}", "word", "count", "share");
    for (word, n) in words.iter().take(top) {
        println!(
            "{word:<20} {n:>10} {:>6.2}%",
            **n as f64 * 100.0 / total as f64
        );
    }
    println!(
        "\n{total_files} files, {total} words, {} distinct, in {:.1} ms",
        counts.len(),
        elapsed.as_secs_f64() * 1e3
    );
    rustyray::shutdown();
    Ok(())
}
