//! The fixed workload behind `rustyray-bench/instructions.sh`: ROUNDS rounds of 20,000 no-op
//! operations of one kind (`async` tasks, `sync` tasks, `actor` calls with an argument and a
//! result, or `ping` calls with neither, as Ray's actor benchmarks make; or `put` + `get` of a `u64`), submitted at once
//! and then fetched, in a 2-CPU runtime. Counting its instructions at two round counts and
//! taking the difference gives the cost per operation with start-up and shutdown cancelled out.
//!
//! ```text
//! cargo run --release -p rustyray-bench --example instructions -- actor 6
//! ```
//!
//! It uses only the public API, so the script can build it against older commits too.

#[rustyray::remote]
async fn nop_async() {}

#[rustyray::remote]
fn nop_sync() {}

#[rustyray::actor]
struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }
    fn echo(&mut self, x: u64) -> u64 {
        x
    }
    fn ping(&mut self) {}
}

const PER_ROUND: u64 = 20_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "actor".to_owned());
    let rounds: u64 = args.next().and_then(|r| r.parse().ok()).unwrap_or(2);
    let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let sink = Sink::remote();
    for _ in 0..rounds {
        match workload.as_str() {
            "async" => {
                let refs: Vec<_> = (0..PER_ROUND).map(|_| nop_async::remote()).collect();
                rustyray::get_all(&refs).unwrap();
            }
            "sync" => {
                let refs: Vec<_> = (0..PER_ROUND).map(|_| nop_sync::remote()).collect();
                rustyray::get_all(&refs).unwrap();
            }
            "actor" => {
                let refs: Vec<_> = (0..PER_ROUND).map(|i| sink.echo(i)).collect();
                rustyray::get_all(&refs).unwrap();
            }
            "put" => {
                for i in 0..PER_ROUND {
                    let r = rustyray::put(i).unwrap();
                    assert_eq!(rustyray::get(&r).unwrap(), i);
                }
            }
            "ping" => {
                let refs: Vec<_> = (0..PER_ROUND).map(|_| sink.ping()).collect();
                rustyray::get_all(&refs).unwrap();
            }
            other => {
                eprintln!("unknown workload `{other}`: use async, sync, actor, ping or put");
                std::process::exit(2);
            }
        }
    }
}
