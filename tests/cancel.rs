//! Cooperative and recursive cancellation: `is_cancelled` inside a body, and a cancelled task
//! taking the tasks it submitted with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use rustyray::{Config, Error, ObjectRef, Runtime};

/// Events the tests wait for, by name (no sleeps to let something start).
static EVENTS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
static HAPPENED: Condvar = Condvar::new();

fn happen(event: &'static str) {
    EVENTS.lock().unwrap().push(event);
    HAPPENED.notify_all();
}

fn wait_for(event: &'static str) {
    let mut events = EVENTS.lock().unwrap();
    while !events.contains(&event) {
        events = HAPPENED.wait(events).unwrap();
    }
}

static STEPS: AtomicU64 = AtomicU64::new(0);

/// Works in steps until cancelled (at most about a minute).
#[rustyray::remote]
fn long_job() -> u64 {
    happen("long_job started");
    let mut steps = 0;
    while !rustyray::is_cancelled() && steps < 60_000 {
        std::thread::sleep(std::time::Duration::from_millis(1)); // one step of work
        steps += 1;
    }
    STEPS.store(steps, Ordering::SeqCst);
    happen("long_job saw the cancel");
    steps
}

#[test]
fn a_sync_body_sees_its_cancellation_and_stops() {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let _in = rt.enter();
    assert!(!rustyray::is_cancelled(), "outside a task");
    let job = long_job::remote();
    wait_for("long_job started");
    assert!(rustyray::cancel(&job));
    wait_for("long_job saw the cancel");
    assert!(
        STEPS.load(Ordering::SeqCst) < 60_000,
        "it stopped on the cancel"
    );
    assert!(matches!(rustyray::get(&job), Err(Error::Cancelled { .. })));
}

static CHILD_RUNS: AtomicU64 = AtomicU64::new(0);

#[rustyray::remote(resources(gate = 1.0))]
fn child(i: u64) -> u64 {
    CHILD_RUNS.fetch_add(1, Ordering::SeqCst);
    i
}

#[rustyray::remote(resources(gate = 1.0))]
fn holds_the_gate() -> u64 {
    happen("gate held");
    wait_for("release the gate");
    0
}

/// Submits children that wait for the gate (and a grandchild through a nested parent), then
/// waits for one of them.
#[rustyray::remote]
fn parent() -> rustyray::Result<u64> {
    let children: Vec<ObjectRef<u64>> = (0..5).map(child::remote).collect();
    let nested = nested_parent::remote();
    happen("children submitted");
    rustyray::get(&nested)?;
    Ok(rustyray::get_all(&children)?.iter().sum())
}

#[rustyray::remote]
fn nested_parent() -> rustyray::Result<u64> {
    let grandchild = child::remote(100);
    happen("grandchild submitted");
    rustyray::get(&grandchild)
}

#[test]
fn cancelling_a_task_cancels_the_pending_tasks_it_submitted_recursively() {
    let rt = Runtime::new(Config::default().num_cpus(2).resource("gate", 1.0)).unwrap();
    let _in = rt.enter();
    let blocker = holds_the_gate::remote();
    wait_for("gate held");
    let top = parent::remote();
    wait_for("children submitted");
    wait_for("grandchild submitted");
    assert!(rustyray::cancel(&top));
    happen("release the gate");
    assert_eq!(rustyray::get(&blocker).unwrap(), 0);
    assert!(matches!(rustyray::get(&top), Err(Error::Cancelled { .. })));
    // The gate is free again: a child submitted now runs, and none of the cancelled ones did.
    assert_eq!(rustyray::get(&child::remote(7)).unwrap(), 7);
    assert_eq!(
        CHILD_RUNS.load(Ordering::SeqCst),
        1,
        "only the one submitted after"
    );
}
