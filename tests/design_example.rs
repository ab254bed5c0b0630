//! DESIGN.md section 1's example, as written there, and `#[rustyray::main]`. Both use the
//! global runtime, so they run one after the other in this binary's single test.
use rustyray::prelude::*; // ObjectRef, ActorHandle, Config, Error, Result, remote, actor

#[rustyray::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[rustyray::remote(num_cpus = 2, max_retries = 3, retry_exceptions = true)]
async fn fetch(url: String) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(url.starts_with("http"), "not a URL: {url}");
    Ok(url.into_bytes())
}

#[rustyray::actor]
struct Counter {
    n: i64,
}

#[rustyray::actor]
impl Counter {
    fn new(start: i64) -> Self {
        Counter { n: start }
    }
    fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    async fn read(&self) -> i64 {
        self.n
    }
}

fn design_main() -> rustyray::Result<()> {
    rustyray::init(Config::default())?; // optional: first use initializes with defaults
    let a: ObjectRef<i64> = add::remote(1, 2); // returns at once
    let b = add::remote(&a, 10); // a ref where a value is expected: resolved first
    assert_eq!(rustyray::get(&b)?, 13); // blocking; in async code: `b.await?` or `(&b).await?`
    assert_eq!(add(2, 2), 4); // the plain function still exists

    let big = rustyray::put(vec![0u8; 1 << 20])?;
    let c: ActorHandle<Counter> = Counter::remote(0); // Clone + Send + serializable
    let r: ObjectRef<i64> = c.incr(5); // pipelined, per-caller FIFO
    let r2 = c.incr(&r); // refs work for actor arguments too
    let (ready, pending) = rustyray::wait(
        &[r.clone(), r2.clone()],
        1,
        Some(std::time::Duration::from_secs(1)),
    );
    let all: Vec<i64> = rustyray::get_all(&[r, r2])?;
    let _ = (big, ready, pending, all);
    rustyray::shutdown();
    Ok(())
}

#[rustyray::main(num_cpus = 2)]
fn sync_main() -> rustyray::Result<i64> {
    let fetched = fetch::remote("https://example.invalid".to_string());
    assert_eq!(
        rustyray::get(&fetched)?,
        b"https://example.invalid".to_vec()
    );
    let counter = Counter::remote(40);
    counter.incr(2);
    rustyray::get(&counter.read())
}

#[rustyray::main]
async fn async_main() -> anyhow::Result<i64> {
    let sum = add::remote(20, 22).await?;
    let bad = fetch::remote("ftp".to_string()).await;
    anyhow::ensure!(bad.is_err(), "a non-URL fails after its retries");
    Ok(sum)
}

#[test]
fn design_section_one_runs_and_main_attributes_start_and_stop_the_runtime() {
    design_main().unwrap();
    assert_eq!(sync_main().unwrap(), 42);
    // `#[rustyray::main]` shut the runtime down on return, so `init` works again.
    assert_eq!(async_main().unwrap(), 42);
    rustyray::init(Config::default().num_cpus(1)).unwrap();
    rustyray::shutdown();
}
