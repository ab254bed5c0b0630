//! The fuzzing harness (tests only): every place bytes come in must fail cleanly on bad bytes,
//! never panic. Shared by the crate's own tests (frames, spill files) and the workspace's
//! `tests/fuzz.rs` (entry points, refs and handles), which includes this file.
//!
//! Each target has a corpus folder of inputs, kept in the repository. A test first replays every
//! input of the corpus, then runs `proptest` on inputs made by mutating corpus entries (cut
//! short, bytes flipped, inserted, repeated) or made up entirely. An input that panics is
//! written into the corpus as `found-<hash>.bin` (after proptest shrinks it), so it is
//! replayed by every later run once fixed. Runs `RUSTYRAY_FUZZ_CASES` cases per target
//! (default 256); for a longer session: `RUSTYRAY_FUZZ_CASES=100000 cargo test --release fuzz`.

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

/// How one input is changed.
#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    Repeat(usize, usize),
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *m {
            Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len() + 1)),
            Mutation::Flip(i, bits) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                bytes[i] ^= bits.max(1);
            }
            Mutation::Insert(i, byte) => bytes.insert(at(i, bytes.len() + 1), byte),
            Mutation::Repeat(i, n) if !bytes.is_empty() => {
                let start = at(i, bytes.len());
                let end = (start + n % 16 + 1).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(start..start, piece);
            }
            _ => {}
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, n)| Mutation::Repeat(i, n)),
    ]
}

/// The inputs of a corpus folder, by name.
fn corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let path = e.ok()?.path();
                    let name = path.file_name()?.to_str()?.to_owned();
                    Some((name, std::fs::read(&path).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    inputs.sort();
    inputs
}

/// Fuzzes `target` (which must not panic on any input) from the corpus in `dir`.
pub(crate) fn fuzz(dir: PathBuf, target: impl Fn(&[u8])) {
    let seeds = corpus(&dir);
    assert!(!seeds.is_empty(), "no corpus in {}", dir.display());
    for (name, input) in &seeds {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            panic!("the kept input {}/{name} panics", dir.display());
        }
    }
    let cases = std::env::var("RUSTYRAY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, input)| input).collect();
    let inputs = prop_oneof![
        3 => (proptest::sample::select(seeds), proptest::collection::vec(mutation(), 1..6))
            .prop_map(|(seed, mutations)| apply(seed, &mutations)),
        1 => proptest::collection::vec(any::<u8>(), 0..128),
    ];
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&inputs, |input| {
        catch_unwind(AssertUnwindSafe(|| target(&input)))
            .map_err(|_| TestCaseError::fail("panicked"))
    });
    if let Err(TestError::Fail(_, input)) = result {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        input.hash(&mut hasher);
        let kept = dir.join(format!("found-{:016x}.bin", hasher.finish()));
        let _ = std::fs::write(&kept, &input);
        panic!(
            "an input panics; kept as {} to replay: {input:?}",
            kept.display()
        );
    }
}
