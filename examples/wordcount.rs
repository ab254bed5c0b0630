//! Word count over a directory tree: RustyRay's flagship map-reduce example.
//!
//! ```text
//! cargo run --release --example wordcount [DIR ...] [--top N] [--quick]
//! ```
//!
//! Without a directory it counts this project's own sources and docs, which every checkout
//! has. Each file is counted by a remote task (map); partial counts are merged pairwise by remote
//! tasks that receive the refs of the maps (reduce), so no partial result passes through `main`.
//! A progress bar follows the maps as they finish (drawn only on a terminal).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustyray::ObjectRef;

type Counts = HashMap<String, u64>;

/// Map: the words of one file.
#[rustyray::remote]
fn count_file(path: PathBuf) -> anyhow::Result<Counts> {
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
}

/// Reduce: two partial counts merged into one.
#[rustyray::remote]
fn merge(mut a: Counts, b: Counts) -> Counts {
    for (word, n) in b {
        *a.entry(word).or_default() += n;
    }
    a
}

fn text_files(root: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if root.is_file() {
        out.push(root.to_path_buf());
        return Ok(());
    }
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

struct Args {
    roots: Vec<PathBuf>,
    top: usize,
    /// At most this many files (`--quick`: 40, for a smoke run).
    limit: usize,
}

fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut args = std::env::args().skip(1);
    let (mut roots, mut top, mut limit) = (Vec::new(), 15, usize::MAX);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--top" => {
                let n = args.next().unwrap_or_default();
                top = n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--top takes a number, got `{n}`"))?;
            }
            "--quick" => limit = 40,
            "-h" | "--help" => {
                println!("usage: wordcount [DIR ...] [--top N] [--quick]");
                return Ok(None);
            }
            dir => roots.push(PathBuf::from(dir)),
        }
    }
    if roots.is_empty() {
        roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    }
    Ok(Some(Args { roots, top, limit }))
}

#[rustyray::main]
fn main() -> anyhow::Result<()> {
    let Some(Args { roots, top, limit }) = parse_args()? else {
        return Ok(());
    };
    let mut files = Vec::new();
    for root in &roots {
        text_files(root, &mut files)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", root.display()))?;
    }
    anyhow::ensure!(!files.is_empty(), "no text files under {roots:?}");
    files.truncate(limit);
    let started = Instant::now();

    // Map: one task per file, all submitted at once.
    let maps: Vec<ObjectRef<Counts>> = files.iter().cloned().map(count_file::remote).collect();

    // Reduce: a balanced tree of merge tasks over the maps' refs, submitted at once too. Each
    // merge runs as soon as its two inputs are ready, so merging overlaps the maps.
    let mut partials: std::collections::VecDeque<ObjectRef<Counts>> =
        maps.iter().cloned().collect();
    while partials.len() >= 2 {
        let (a, b) = (partials.pop_front().unwrap(), partials.pop_front().unwrap());
        partials.push_back(merge::remote(a, b));
    }
    // A progress bar follows the maps (drawn only when stderr is a terminal).
    rustyray::wait_with_progress(&maps, "files");
    drop(maps);
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
        "\n{} files, {total} words, {} distinct, in {:.1} ms on {} CPUs",
        files.len(),
        counts.len(),
        elapsed.as_secs_f64() * 1e3,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
