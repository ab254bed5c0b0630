//! Object lifetime, cancellation and actor fault tolerance.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustyray::task::TaskBuilder;
use rustyray::{ActorHandle, Error, ObjectRef};

#[test]
fn an_object_is_freed_when_its_last_ref_drops() {
    let rt = runtime(2);
    let _g = rt.enter();
    let before = rt.stats().objects;
    let r = rustyray::put(vec![1u8; 1024]).unwrap();
    let copy = r.clone();
    let bytes = postcard::to_stdvec(&r).unwrap();
    drop(r);
    assert_eq!(rt.stats().objects, before + 1, "a clone still refers to it");
    drop(copy);
    assert_eq!(rt.stats().objects, before, "freed with the last ref");
    let stale: ObjectRef<Vec<u8>> = postcard::from_bytes(&bytes).unwrap();
    match rustyray::get(&stale) {
        Err(Error::NotFound { what }) => assert!(what.contains("freed"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn task_arguments_keep_objects_alive_until_the_task_is_done() {
    let rt = runtime(1);
    let _g = rt.enter();
    let (gate, release) = gated(0i64);
    let data = rustyray::put(41i64).unwrap();
    let sum = add(&gate, data); // the only ref to `data` now lives in the task's arguments
    assert!(rt.stats().objects >= 3);
    release.send(()).unwrap();
    assert_eq!(rustyray::get(&sum).unwrap(), 41);
    drop((gate, sum));
    assert_eq!(
        rt.stats().objects,
        0,
        "arguments and results freed once unreferenced"
    );
}

#[test]
fn refs_nested_in_stored_objects_keep_their_objects_alive() {
    let rt = runtime(1);
    let _g = rt.enter();
    let inner = rustyray::put("inner".to_string()).unwrap();
    let outer = rustyray::put(vec![inner]).unwrap(); // `inner` moved into the stored value
    let refs: Vec<ObjectRef<String>> = rustyray::get(&outer).unwrap();
    drop(refs);
    let again = rustyray::get(&outer).unwrap();
    assert_eq!(rustyray::get(&again[0]).unwrap(), "inner");
    drop((again, outer));
    assert_eq!(
        rt.stats().objects,
        0,
        "freeing the outer object frees the inner one"
    );
}

#[test]
fn a_task_whose_result_is_dropped_still_runs_and_leaves_nothing_behind() {
    let rt = runtime(2);
    let _g = rt.enter();
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let done_tx = parking_lot::Mutex::new(done_tx);
    let counter = ran.clone();
    drop(TaskBuilder::new("side_effect").spawn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = done_tx.lock().send(());
        Ok(vec![0u8; 1 << 20])
    }));
    done_rx.recv_timeout(DEADLOCK_GUARD).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // The result has nowhere to go; once stored it is dropped (the count may lag by the task's
    // last instructions, so wait on a fresh object's task which runs after it on the one pool).
    rustyray::get(&add(1, 1)).unwrap();
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[rustyray::remote]
fn make_block(fill: u8, len: usize) -> Vec<u8> {
    vec![fill; len]
}

#[test]
fn memory_stays_flat_over_two_gibibytes_of_churn_whose_refs_are_dropped() {
    let rt = runtime(2);
    let _g = rt.enter();
    const BLOCK: usize = 4 << 20;
    let start = resident_bytes();
    let mut peak = start;
    for i in 0..256u32 {
        // 4 MiB put and 4 MiB task result per round: 2 GiB in all, every byte written.
        let put = rustyray::put(vec![i as u8; BLOCK]).unwrap();
        let made = make_block::remote(i as u8, BLOCK);
        assert_eq!(rustyray::get_arc(&made).unwrap()[BLOCK - 1], i as u8);
        drop((put, made));
        peak = peak.max(resident_bytes());
    }
    assert_eq!(rt.stats().objects, 0);
    let growth = peak.saturating_sub(start);
    assert!(growth < 300 << 20, "RSS grew by {} MiB", growth >> 20);
}

// ---- cancellation ------------------------------------------------------------------------------

#[test]
fn cancelling_a_queued_task_fails_it_and_its_dependents_at_once_and_it_never_runs() {
    let rt = runtime(1);
    let _g = rt.enter();
    let (busy, release) = gated(0i64); // holds the only CPU
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let queued = TaskBuilder::new("queued").spawn(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(1i64)
    });
    let dependent = add(&queued, 1);
    assert!(rustyray::cancel(&queued));
    for r in [&queued, &dependent] {
        match rustyray::get_timeout(r, Duration::from_secs(5)) {
            Err(Error::Cancelled { function }) => assert_eq!(function, "queued"),
            other => panic!("{other:?}"),
        }
    }
    release.send(()).unwrap();
    assert_eq!(rustyray::get(&busy).unwrap(), 0);
    assert_eq!(
        rustyray::get(&add(1, 1)).unwrap(),
        2,
        "the CPU is free again"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled task never runs");
    assert!(
        !rustyray::cancel(&busy),
        "a finished task cannot be cancelled"
    );
}

/// An async task that waits forever once it runs, and a function that returns once it runs.
fn stuck_async(name: &'static str) -> (ObjectRef<u8>, impl FnOnce()) {
    let started = Arc::new(tokio::sync::Notify::new());
    let notify = started.clone();
    let task = TaskBuilder::new(name).spawn_async(move || {
        let notify = notify.clone();
        async move {
            notify.notify_one();
            std::future::pending::<()>().await;
            Ok(0u8)
        }
    });
    let wait_started = move || {
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(started.notified())
        })
        .join()
        .unwrap()
    };
    (task, wait_started)
}

#[test]
fn cancelling_a_running_async_task_aborts_it_and_frees_its_cpu() {
    let rt = runtime(1);
    let _g = rt.enter();
    let (forever, started) = stuck_async("forever");
    started();
    assert!(rustyray::cancel(&forever));
    assert!(matches!(
        rustyray::get(&forever),
        Err(Error::Cancelled { .. })
    ));
    // The aborted task gave its only CPU back.
    assert_eq!(
        rustyray::get_timeout(&add(2, 2), DEADLOCK_GUARD).unwrap(),
        4
    );
}

/// With one CPU, each async task that a finishing one makes ready runs next in the same tokio
/// task. Cancelling one of those while it waits stops only it: the ones queued behind it still
/// run, and the CPU comes back.
#[test]
fn cancelling_an_async_task_run_after_another_in_its_tokio_task_stops_only_it() {
    let rt = runtime(1);
    let _g = rt.enter();
    let first = TaskBuilder::new("first").spawn_async(|| async { Ok(1u8) });
    let (stuck, started) = stuck_async("stuck");
    let after: Vec<ObjectRef<u8>> = (0..100u8)
        .map(|i| TaskBuilder::new("after").spawn_async(move || async move { Ok(i) }))
        .collect();
    started();
    assert!(rustyray::cancel(&stuck));
    assert!(matches!(
        rustyray::get(&stuck),
        Err(Error::Cancelled { .. })
    ));
    assert_eq!(rustyray::get(&first).unwrap(), 1);
    let values: Vec<u8> = after
        .iter()
        .map(|r| rustyray::get_timeout(r, DEADLOCK_GUARD).unwrap())
        .collect();
    assert_eq!(values, (0..100u8).collect::<Vec<_>>());
}

#[test]
fn cancelling_a_running_sync_task_discards_its_result() {
    let rt = runtime(1);
    let _g = rt.enter();
    let (running, release) = gated(7i64);
    std::thread::sleep(Duration::from_millis(20)); // let it start
    assert!(rustyray::cancel(&running));
    assert!(matches!(
        rustyray::get(&running),
        Err(Error::Cancelled { .. })
    ));
    release.send(()).unwrap(); // it runs to its end; the result is dropped
    assert_eq!(
        rustyray::get_timeout(&add(1, 2), DEADLOCK_GUARD).unwrap(),
        3
    );
    assert!(matches!(
        rustyray::get(&running),
        Err(Error::Cancelled { .. })
    ));
}

// ---- actors ------------------------------------------------------------------------------------

static DROPPED: AtomicUsize = AtomicUsize::new(0);

#[rustyray::actor]
struct Fragile {
    calls: u32,
    label: String,
}

impl Drop for Fragile {
    fn drop(&mut self) {
        if self.label == "count-drops" {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[rustyray::actor]
impl Fragile {
    fn new(label: String) -> Self {
        Fragile { calls: 0, label }
    }

    fn touch(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    fn crash(&mut self) -> u32 {
        panic!("crash after {} calls", self.calls)
    }

    /// Panics the first time it sees `token`, in any instance.
    fn crash_once(&mut self, token: String) -> u32 {
        static SEEN: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());
        self.calls += 1;
        let first = {
            let mut seen = SEEN.lock();
            let first = !seen.contains(&token);
            seen.push(token);
            first
        };
        if first {
            panic!("the first call with this token");
        }
        self.calls
    }

    fn block(&mut self, gate: u64) -> u32 {
        let _ = gate;
        std::thread::sleep(Duration::from_millis(300));
        self.calls
    }
}

#[test]
fn an_actor_restarted_twice_then_dead() {
    let rt = runtime(2);
    let _g = rt.enter();
    let actor = Fragile::options().max_restarts(2).remote("x".to_string());
    for round in 0..3 {
        assert_eq!(
            rustyray::get(&actor.touch()).unwrap(),
            1,
            "fresh state in round {round}"
        );
        assert!(matches!(
            rustyray::get(&actor.crash()),
            Err(Error::TaskFailed { .. })
        ));
    }
    match rustyray::get(&actor.touch()) {
        Err(Error::ActorDied { reason, .. }) => {
            assert!(reason.contains("crash after 1 calls"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_task_retries_resends_the_call_that_was_in_flight_to_the_restarted_actor() {
    let rt = runtime(2);
    let _g = rt.enter();
    let actor = Fragile::options()
        .max_restarts(1)
        .max_task_retries(1)
        .remote("r".to_string());
    let retried = actor.crash_once("retried".to_string());
    assert_eq!(
        rustyray::get(&retried).unwrap(),
        1,
        "the retry ran on the new instance"
    );
    let without = Fragile::options().max_restarts(1).remote("n".to_string());
    let failed = without.crash_once("not retried".to_string());
    assert!(matches!(
        rustyray::get(&failed),
        Err(Error::TaskFailed { .. })
    ));
    assert_eq!(
        rustyray::get(&without.touch()).unwrap(),
        1,
        "restarted, without the retry"
    );
}

#[test]
fn named_actors_live_without_handles_until_killed() {
    let rt = runtime(2);
    let _g = rt.enter();
    drop(Fragile::options().name("keeper").remote("k".to_string()));
    let found: ActorHandle<Fragile> = rustyray::get_actor("keeper").unwrap();
    assert_eq!(rustyray::get(&found.touch()).unwrap(), 1);
    rustyray::kill(&found).unwrap();
    assert!(matches!(
        rustyray::get(&found.touch()),
        Err(Error::ActorDied { .. })
    ));
    assert!(matches!(
        rustyray::get_actor::<Fragile>("keeper"),
        Err(Error::NotFound { .. })
    ));
    // The name is free again.
    let again = Fragile::options().name("keeper").remote("k2".to_string());
    assert_eq!(rustyray::get(&again.touch()).unwrap(), 1);
}

#[test]
fn a_killed_actors_pending_calls_fail_within_a_second() {
    let rt = runtime(2);
    let _g = rt.enter();
    let actor = Fragile::remote("k".to_string());
    let busy = actor.block(0); // runs for 300 ms
    let queued: Vec<_> = (0..50).map(|_| actor.touch()).collect();
    std::thread::sleep(Duration::from_millis(20));
    let killed_at = Instant::now();
    rustyray::kill(&actor).unwrap();
    for r in queued.iter().chain([&busy]) {
        match rustyray::get_timeout(r, Duration::from_secs(1)) {
            Err(Error::ActorDied { reason, .. }) => assert!(reason.contains("killed"), "{reason}"),
            other => panic!("{other:?} after {:?}", killed_at.elapsed()),
        }
    }
    assert!(
        matches!(rustyray::get(&actor.touch()), Err(Error::ActorDied { .. })),
        "at once"
    );
}

#[test]
fn an_unnamed_actor_is_freed_after_its_last_handle_drops_and_its_calls_run() {
    let rt = runtime(2);
    let _g = rt.enter();
    let before = rt.stats().actors;
    let actor = Fragile::remote("count-drops".to_string());
    let copy = actor.clone();
    let last = actor.touch();
    for _ in 0..10 {
        copy.touch(); // fire and forget: still run
    }
    drop((actor, copy));
    assert_eq!(rustyray::get(&last).unwrap(), 1);
    assert_eq!(rt.stats().actors, before, "the table forgot the actor");
    // The state is dropped once the calls already sent have run.
    let deadline = Instant::now() + DEADLOCK_GUARD;
    while DROPPED.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the actor's state was never dropped"
        );
        std::thread::yield_now();
    }
}
