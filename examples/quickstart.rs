//! RustyRay in one page: remote functions, chaining through refs, fan-out, and an actor.
//!
//! `cargo run --example quickstart`
use rustyray::prelude::*;

#[rustyray::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[rustyray::remote]
fn sum(values: Vec<u64>) -> u64 {
    values.iter().sum()
}

#[rustyray::actor]
struct Counter {
    count: u64,
}

#[rustyray::actor]
impl Counter {
    fn new(start: u64) -> Self {
        Counter { count: start }
    }

    fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }
}

#[rustyray::main]
fn main() -> rustyray::Result<()> {
    // Chaining: pass a ref where a value is expected; it is resolved before the task runs.
    let four = square::remote(2);
    let sixteen = square::remote(&four);
    println!("square(square(2)) = {}", rustyray::get(&sixteen)?);

    // Fan-out: every call returns at once; the tasks run on all cores.
    let squares: Vec<ObjectRef<u64>> = (1..=100).map(square::remote).collect();
    let values = rustyray::get_all(&squares)?;
    let total = sum::remote(values);
    println!("sum of the first 100 squares = {}", rustyray::get(&total)?);

    // An actor: state that stays put, methods called through its handle, in order.
    let counter: ActorHandle<Counter> = Counter::remote(0);
    for r in &squares[..10] {
        counter.add(r); // refs work for actor arguments too
    }
    println!(
        "counter after 10 adds = {}",
        rustyray::get(&counter.add(0))?
    );
    Ok(())
}
