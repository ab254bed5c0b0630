//! Helpers shared by the integration tests: a runtime per test and a few remote functions
//! written with the builders, as `#[rustyray::remote]` expands them.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use rustyray::task::{IntoArg, TaskBuilder};
use rustyray::{Config, ObjectRef, Runtime};

/// A bound on waits that would otherwise hang a broken test forever; far above any real run.
pub const DEADLOCK_GUARD: Duration = Duration::from_secs(120);

pub fn runtime(cpus: usize) -> Runtime {
    Runtime::new(Config::default().num_cpus(cpus)).expect("runtime starts")
}

pub fn add(a: impl IntoArg<i64>, b: impl IntoArg<i64>) -> ObjectRef<i64> {
    let mut task = TaskBuilder::new("add");
    let (a, b) = (task.arg(a), task.arg(b));
    task.spawn(move || Ok(a.get()? + b.get()?))
}

pub fn noop() -> ObjectRef<()> {
    TaskBuilder::new("noop").spawn(|| Ok(()))
}

/// A task that fails with `message`.
pub fn fail(message: &'static str) -> ObjectRef<i64> {
    TaskBuilder::new("fail").spawn(move || -> anyhow::Result<i64> { anyhow::bail!(message) })
}

/// Sums any number of ref or value arguments.
pub fn sum(values: Vec<ObjectRef<i64>>) -> ObjectRef<i64> {
    let mut task = TaskBuilder::new("sum");
    let slots: Vec<_> = values.iter().map(|r| task.arg(r)).collect();
    task.spawn(move || slots.iter().map(|s| Ok(s.get()?)).sum())
}

/// A task that blocks until the test sends on the returned channel, then returns `value`.
pub fn gated<T: rustyray::Value + Clone>(value: T) -> (ObjectRef<T>, std::sync::mpsc::Sender<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = parking_lot::Mutex::new(rx);
    let r = TaskBuilder::new("gated").spawn(move || {
        let _ = rx.lock().recv();
        Ok(value.clone())
    });
    (r, tx)
}

/// Gates a test opens by number, which tasks wait at (notification-based): a test decides when
/// a task may go on, and in which order tasks finish.
pub mod gates {
    use std::collections::HashSet;
    use std::sync::{Condvar, Mutex};

    static OPEN: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
    static OPENED: Condvar = Condvar::new();

    /// Opens `gate`: whoever waits at it goes on, and later waits pass at once.
    pub fn open(gate: u64) {
        OPEN.lock()
            .unwrap()
            .get_or_insert_with(HashSet::new)
            .insert(gate);
        OPENED.notify_all();
    }

    /// Waits until `gate` is open.
    pub fn wait_at(gate: u64) {
        let mut open = OPEN.lock().unwrap();
        while !open.as_ref().is_some_and(|o| o.contains(&gate)) {
            open = OPENED.wait(open).unwrap();
        }
    }
}
