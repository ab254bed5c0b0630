//! Fuzzing the public places bytes come in: `registry::invoke` and `invoke_json` (how Ray and
//! other languages call RustyRay functions), and refs and actor handles read back from bytes.
//! Bad bytes must fail with an error, never panic. The harness is the library's own
//! (`rustyray/src/fuzz.rs`); the kept corpus is in `fuzz-corpus/`.

#[path = "../rustyray/src/fuzz.rs"]
#[allow(dead_code)]
mod fuzz;

use std::path::PathBuf;
use std::time::Duration;

use rustyray::{ActorHandle, Config, ObjectRef, Runtime};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Point {
    x: i32,
    label: String,
    tags: Vec<u16>,
}

#[rustyray::remote]
fn describe(n: u64, text: String, point: Point) -> String {
    format!("{n} {text} {point:?}")
}

#[rustyray::remote]
fn total(values: Vec<u32>, scale: Option<u8>) -> u64 {
    values.iter().map(|v| *v as u64).sum::<u64>() * scale.unwrap_or(1) as u64
}

#[rustyray::remote]
fn through(r: ObjectRef<u64>) -> u64 {
    rustyray::get_timeout(&r, Duration::ZERO).unwrap_or(0)
}

#[rustyray::actor]
struct Counter(u64);

#[rustyray::actor]
impl Counter {
    fn new() -> Self {
        Counter(0)
    }

    fn add(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(n);
        self.0
    }
}

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(target)
}

fn id(name: &str) -> String {
    format!("{}::{name}", module_path!())
}

const FUNCTIONS: [&str; 3] = ["describe", "total", "through"];

/// A runtime to decode in (refs and handles are looked up in it) and a way to run futures.
fn runtimes() -> (Runtime, tokio::runtime::Runtime) {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    (rt, tokio)
}

#[test]
fn fuzz_invoke() {
    let (rt, tokio) = runtimes();
    let _in = rt.enter();
    fuzz::fuzz(corpus("invoke"), |bytes| {
        for f in FUNCTIONS {
            let _ = tokio.block_on(rustyray::registry::invoke(&id(f), bytes.to_vec()));
        }
    });
}

#[test]
fn fuzz_invoke_json() {
    let (rt, tokio) = runtimes();
    let _in = rt.enter();
    fuzz::fuzz(corpus("invoke-json"), |bytes| {
        let json = String::from_utf8_lossy(bytes);
        for f in FUNCTIONS {
            let _ = tokio.block_on(rustyray::registry::invoke_json(&id(f), &json));
        }
    });
}

#[test]
fn fuzz_refs_and_handles() {
    let (rt, _tokio) = runtimes();
    let _in = rt.enter();
    fuzz::fuzz(corpus("refs-and-handles"), |bytes| {
        let refs = [
            postcard::from_bytes::<ObjectRef<u64>>(bytes).ok(),
            serde_json::from_slice::<ObjectRef<u64>>(bytes).ok(),
        ];
        for r in refs.into_iter().flatten() {
            let _ = rustyray::get_timeout(&r, Duration::ZERO);
        }
        let handles = [
            postcard::from_bytes::<ActorHandle<Counter>>(bytes).ok(),
            serde_json::from_slice::<ActorHandle<Counter>>(bytes).ok(),
        ];
        for handle in handles.into_iter().flatten() {
            let _ = rustyray::get_timeout(&handle.add(1), Duration::from_secs(1));
        }
    });
}

/// Writes the starting corpus (valid inputs); run once by hand with
/// `cargo test --test fuzz write_seed_corpus -- --ignored`.
#[test]
#[ignore = "writes the kept corpus"]
fn write_seed_corpus() {
    let (rt, _tokio) = runtimes();
    let _in = rt.enter();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let point = Point {
        x: -3,
        label: "p".into(),
        tags: vec![1, 2],
    };
    let args = (7u64, "seven".to_owned(), point.clone());
    write(
        "invoke",
        "describe.bin",
        &postcard::to_stdvec(&args).unwrap(),
    );
    let args = (vec![1u32, 2, 3], Some(2u8));
    write("invoke", "total.bin", &postcard::to_stdvec(&args).unwrap());
    let r = rustyray::put(5u64).unwrap();
    write(
        "invoke",
        "through.bin",
        &postcard::to_stdvec(&(r.clone(),)).unwrap(),
    );
    write(
        "invoke-json",
        "describe.json",
        br#"[7, "seven", {"x": -3, "label": "p", "tags": [1, 2]}]"#,
    );
    write("invoke-json", "total.json", b"[[1, 2, 3], null]");
    write(
        "refs-and-handles",
        "ref.bin",
        &postcard::to_stdvec(&r).unwrap(),
    );
    write(
        "refs-and-handles",
        "ref.json",
        serde_json::to_string(&r).unwrap().as_bytes(),
    );
    let actor = Counter::remote();
    write(
        "refs-and-handles",
        "handle.bin",
        &postcard::to_stdvec(&actor).unwrap(),
    );
    write(
        "refs-and-handles",
        "handle.json",
        serde_json::to_string(&actor).unwrap().as_bytes(),
    );
}
