//! Async remote functions and a concurrent async actor: a crawler-like pipeline where fetching
//! is I/O bound (simulated with timers), counting is CPU bound, and an actor runs several crawls
//! at once, recording each while it awaits other work.
//!
//! `cargo run --example async_pipeline`
use std::time::Duration;

use rustyray::prelude::*;

/// Simulated I/O: an async remote function runs on tokio, holding no thread while it waits.
#[rustyray::remote]
async fn fetch(url: String) -> anyhow::Result<String> {
    anyhow::ensure!(
        url.starts_with("https://"),
        "refusing non-https URL `{url}`"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(format!(
        "<html><title>{url}</title>{}</html>",
        "lorem ipsum ".repeat(50)
    ))
}

/// CPU-bound work: a sync remote function runs on the CPU pool.
#[rustyray::remote]
fn word_count(page: String) -> usize {
    page.split_whitespace().count()
}

/// An async actor whose `&self` methods interleave (up to `max_concurrency` at once): it
/// rate-limits fetches and records results.
#[rustyray::actor]
struct Gateway {
    fetched: std::sync::Mutex<Vec<(String, usize)>>,
}

#[rustyray::actor(concurrent)]
impl Gateway {
    fn new() -> Self {
        Gateway {
            fetched: Default::default(),
        }
    }

    /// Fetches a page, counts its words in a task, records the result. Several crawls run at
    /// once: each waits on I/O and on its task without blocking the others.
    async fn crawl(&self, url: String) -> anyhow::Result<usize> {
        let page = fetch::remote(url.clone());
        let words = word_count::remote(&page).await?; // the ref is resolved before counting
        self.fetched
            .lock()
            .expect("not poisoned")
            .push((url, words));
        Ok(words)
    }

    async fn report(&self) -> Vec<(String, usize)> {
        self.fetched.lock().expect("not poisoned").clone()
    }
}

#[rustyray::main]
async fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let gateway = Gateway::options().max_concurrency(4).remote();
    let urls: Vec<String> = (0..12)
        .map(|i| format!("https://example.invalid/page/{i}"))
        .collect();
    let crawled: Vec<ObjectRef<usize>> = urls.iter().map(|u| gateway.crawl(u.clone())).collect();
    let bad = gateway.crawl("http://insecure.invalid".to_string());
    for (url, words) in urls.iter().zip(rustyray::get_all(&crawled)?) {
        println!("{url:<36} {words:>4} words");
    }
    match bad.await {
        Err(e) => println!("as expected, one crawl failed: {e}"),
        Ok(_) => anyhow::bail!("the insecure URL should have been refused"),
    }
    let report = gateway.report().await?;
    println!(
        "the gateway recorded {} pages in {:.0} ms, 4 fetches at a time (one at a time would take \
         at least 260 ms)",
        report.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
