//! What a driver sees when a node dies under its work: every `get` ends, with an error that
//! says why, within a bounded time; nothing hangs, and the driver works on. `.ci/ray` runs it on
//! a cluster of its own whose second node (address 127.0.0.2, resource `second_node`) it
//! kills itself, so it refuses to run without `--kill-the-second-node`.
//!
//! ```text
//! RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=target/ray-code \
//!     cargo run --release --bin node-loss -- --kill-the-second-node
//! ```
//!
//! On the second node: a running task and queued ones behind it, a task on the head that
//! waits for one of them, and an actor. Once the node is gone, each `get` must fail (the tasks
//! with `Unschedulable` or Ray's own node-death error, the actor's call with `ActorDied` and
//! readable words), and a new task must still run. Before that, a task needing a resource no
//! node has must be warned about when it is sent, as Ray does. It prints `node-loss: ok` when
//! all went so.
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ray_cluster::{node_label, plus_one, sleep_ms, square, Counter};
use rustyray::{Config, Error};

/// How long each `get` may take once the node is killed: Ray notices a dead node within its
/// health-check period (seconds), and RustyRay within a slice after that.
const BOUND: Duration = Duration::from_secs(120);

/// Whether Ray's words are words: no bytes of its records read as text.
fn readable(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_control() && c != '\n')
}

/// What RustyRay logged, kept to be checked.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<u8>>>);

impl Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        std::io::stderr().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let logged = Logged::default();
    let writer = logged.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    if !std::env::args().any(|a| a == "--kill-the-second-node") {
        eprintln!("node-loss kills the Ray node at 127.0.0.2: pass --kill-the-second-node");
        std::process::exit(2);
    }
    // RUSTYRAY_ADDRESS and RUSTYRAY_CODE_SEARCH_PATH say where.
    let config = Config::from_env().expect("the configuration in the environment");
    assert!(config.get_ray_address().is_some(), "set RUSTYRAY_ADDRESS");
    rustyray::init(config).expect("connect to the Ray cluster");

    let mut failures = Vec::new();
    // No node has ever had this resource: Ray keeps the task pending, and RustyRay warns.
    let _never = sleep_ms::options()
        .resource("no_node_has_this", 1.0)
        .remote(1);
    let warned = String::from_utf8_lossy(&logged.0.lock().unwrap()).into_owned();
    if warned.contains("no_node_has_this") && warned.contains("no node of the Ray cluster has") {
        println!("node-loss: ok: a demand no node has was warned about when sent");
    } else {
        failures.push("FAILED: no warning for a demand no node has".to_owned());
    }

    let on_second = |ms| sleep_ms::options().resource("second_node", 1.0).remote(ms);
    let label = node_label::options().resource("second_node", 1.0).remote();
    assert_eq!(rustyray::get(&label).unwrap(), "second");
    let actor = Counter::options().resource("second_node", 1.0).remote(1);
    assert_eq!(rustyray::get(&actor.add(1)).unwrap(), 2);
    // The node has one CPU: the first runs, the others queue behind it.
    let queued: Vec<_> = (0..4).map(|_| on_second(600_000)).collect();
    let downstream = plus_one::remote(&queued[1]);

    let killed = std::process::Command::new("pkill")
        .args(["-9", "-f", "127.0.0.2"])
        .status();
    println!("node-loss: the second node was killed ({killed:?})");

    let mut check = |what: &str, outcome: rustyray::Result<u64>, took: Duration| {
        let line = match outcome {
            Ok(value) => format!("FAILED: {what} returned Ok({value}) after its node died"),
            Err(_) if took > BOUND => format!("FAILED: {what} took {took:?}"),
            // Ray 2.60 records why: its sentence, not the ids and addresses beside it.
            Err(Error::ActorDied { reason, .. })
                if !readable(&reason) || !reason.starts_with("The actor died") =>
            {
                format!("FAILED: {what} died without Ray's words: {reason:?}")
            }
            Err(error) => format!("ok: {what} failed after {took:.1?}: {error}"),
        };
        println!("node-loss: {line}");
        if line.starts_with("FAILED") {
            failures.push(line);
        }
    };
    for (i, task) in queued.iter().enumerate() {
        let started = Instant::now();
        let outcome = rustyray::get(task);
        check(
            &format!("task {i} on the second node"),
            outcome,
            started.elapsed(),
        );
    }
    let started = Instant::now();
    let outcome = rustyray::get(&downstream);
    check(
        "the task waiting for one of them",
        outcome,
        started.elapsed(),
    );
    let started = Instant::now();
    let outcome = rustyray::get(&actor.add(1));
    check("the actor's call", outcome, started.elapsed());

    match rustyray::get(&square::remote(3)) {
        Ok(9) => println!("node-loss: ok: a new task on the head still runs"),
        other => failures.push(format!("FAILED: a new task gave {other:?}")),
    }
    rustyray::shutdown();
    let verdict = if failures.is_empty() {
        "ok".to_owned()
    } else {
        format!("FAILED: {}", failures.join("; "))
    };
    println!("node-loss: {verdict}");
    let _ = std::io::stdout().flush();
    std::process::exit(if failures.is_empty() { 0 } else { 1 });
}
