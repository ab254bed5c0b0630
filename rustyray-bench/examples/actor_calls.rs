//! Profiling aid: calls to sync actors, nothing else.
//!
//! ```text
//! actor_calls [pipelined | spread | one-at-a-time | async-one-at-a-time]
//! ```
//!
//! `pipelined` (the default) makes 30 rounds of 100k calls to one actor, all sent, then all
//! gotten; `spread` the same over two actors, alternating; `one-at-a-time` gets each of 20k
//! calls before sending the next; `async-one-at-a-time` does that to an async actor.
#[rustyray::actor]
struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }
    fn ping(&self) {}
}

#[rustyray::actor]
struct AsyncSink;

#[rustyray::actor]
impl AsyncSink {
    fn new() -> Self {
        AsyncSink
    }
    async fn ping(&self) {}
}

fn main() {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pipelined".to_owned());
    let sinks = [Sink::remote(), Sink::remote()];
    let async_sink = AsyncSink::remote();
    let started = std::time::Instant::now();
    let calls = match mode.as_str() {
        "pipelined" | "spread" => {
            let actors = if mode == "spread" { 2 } else { 1 };
            for _ in 0..30 {
                let refs: Vec<_> = (0..100_000).map(|i| sinks[i % actors].ping()).collect();
                rustyray::get_all(&refs).unwrap();
            }
            3_000_000
        }
        "one-at-a-time" | "async-one-at-a-time" => {
            for _ in 0..20_000 {
                if mode == "one-at-a-time" {
                    rustyray::get(&sinks[0].ping()).unwrap();
                } else {
                    rustyray::get(&async_sink.ping()).unwrap();
                }
            }
            20_000
        }
        other => {
            eprintln!("unknown mode `{other}`");
            std::process::exit(2);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    println!("{mode}: {:.0} calls/s", calls as f64 / secs);
}
