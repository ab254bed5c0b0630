//! Micro-benchmarks of the hot paths: submitting a task, resolving a ref argument, inserting
//! into and reading from the object store, and sending to an actor's mailbox.
//!
//! `cargo bench -p rustyray --bench hot_paths`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rustyray::task::TaskBuilder;
use rustyray::{Config, ObjectRef, Runtime};

#[rustyray::remote]
fn nop() {}

#[rustyray::remote]
fn echo(x: u64) -> u64 {
    x
}

#[rustyray::actor]
struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }
    fn ping(&self) {}
}

fn hot_paths(c: &mut Criterion) {
    let rt = Runtime::new(Config::default().num_cpus(2)).expect("runtime");
    let _guard = rt.enter();

    // Submit: build the task and hand it over (runs in the background; drained per batch).
    c.bench_function("submit a no-op task", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(1024),
            |refs: &mut Vec<ObjectRef<()>>| refs.push(nop::remote()),
            BatchSize::NumIterations(1024),
        )
    });

    // Resolve: a task whose argument is a ready ref, submitted and waited for.
    let ready = rustyray::put(7u64).expect("put");
    c.bench_function("submit + resolve a ref argument + get", |b| {
        b.iter(|| rustyray::get(&echo::remote(&ready)).expect("get"))
    });

    // The builder alone, with a value argument (no store traffic before submission).
    c.bench_function("task builder with one value argument", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut task = TaskBuilder::new("echo");
                let x = task.arg(1u64);
                task.spawn(move || Ok(x.get()?))
            },
            BatchSize::SmallInput,
        )
    });

    // Store: insert (put) and lookup (get) of a small value; the ref drop frees it.
    c.bench_function("store insert + free (put, drop)", |b| {
        b.iter(|| drop(rustyray::put(1u64).expect("put")))
    });
    c.bench_function("store lookup (get of a ready ref)", |b| {
        b.iter(|| rustyray::get(&ready).expect("get"))
    });

    // Mailbox: send a call to an actor (results drained per batch).
    let sink = Sink::remote();
    c.bench_function("actor mailbox send", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(1024),
            |refs: &mut Vec<ObjectRef<()>>| refs.push(sink.ping()),
            BatchSize::NumIterations(1024),
        )
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
