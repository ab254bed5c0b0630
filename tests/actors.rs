//! Actors: construction, ordering, concurrency of callers, failures, handles passed around.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use rustyray::actor::{ActorBuilder, ActorHandle};
use rustyray::task::{IntoArg, TaskBuilder};
use rustyray::{Error, ObjectRef};

/// A counter actor whose calls are written with the builders, as `#[rustyray::actor]` on the
/// impl would generate them.
#[rustyray::actor]
struct Counter {
    n: i64,
    log: Vec<i64>,
}

fn counter(start: impl IntoArg<i64>) -> ActorHandle<Counter> {
    let mut b = ActorBuilder::new("Counter");
    let start = b.arg(start);
    b.spawn(move || {
        Ok(Counter {
            n: start.get()?,
            log: Vec::new(),
        })
    })
}

fn incr(c: &ActorHandle<Counter>, by: impl IntoArg<i64>) -> ObjectRef<i64> {
    let mut call = c.call("incr");
    let by = call.arg(by);
    call.spawn(move |c: &mut Counter| {
        let by = by.get()?;
        c.n += by;
        c.log.push(by);
        Ok(c.n)
    })
}

fn log(c: &ActorHandle<Counter>) -> ObjectRef<Vec<i64>> {
    c.call("log")
        .spawn_async(|c: &mut Counter| Box::pin(async move { Ok(c.log.clone()) }))
}

fn boom(c: &ActorHandle<Counter>) -> ObjectRef<i64> {
    c.call("boom")
        .spawn(|_: &mut Counter| -> anyhow::Result<i64> { panic!("state corrupted") })
}

fn refuse(c: &ActorHandle<Counter>) -> ObjectRef<i64> {
    c.call("refuse")
        .spawn(|_: &mut Counter| -> anyhow::Result<i64> { anyhow::bail!("not now") })
}

#[test]
fn five_hundred_calls_run_in_the_order_they_were_sent() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    let refs: Vec<_> = (1..=500).map(|i| incr(&c, i)).collect();
    let totals = rustyray::get_all(&refs).unwrap();
    let expected: Vec<i64> = (1..=500)
        .scan(0, |acc, i| {
            *acc += i;
            Some(*acc)
        })
        .collect();
    assert_eq!(totals, expected);
    assert_eq!(
        rustyray::get(&log(&c)).unwrap(),
        (1..=500).collect::<Vec<_>>()
    );
}

#[test]
fn the_constructor_runs_once_with_resolved_ref_arguments() {
    let rt = runtime(2);
    let _g = rt.enter();
    let built = Arc::new(AtomicUsize::new(0));
    let start = add(40, 2);
    let mut b = ActorBuilder::new("Counter");
    let s = b.arg(&start);
    let count = built.clone();
    let c: ActorHandle<Counter> = b.spawn(move || {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(Counter {
            n: s.get()?,
            log: vec![],
        })
    });
    let refs: Vec<_> = (0..50).map(|_| incr(&c, 0)).collect();
    assert!(rustyray::get_all(&refs).unwrap().iter().all(|n| *n == 42));
    assert_eq!(built.load(Ordering::SeqCst), 1);
}

#[test]
fn one_handle_used_from_four_tasks_at_once_keeps_each_callers_order() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    let workers: Vec<ObjectRef<bool>> = (0..4)
        .map(|_| {
            let mut task = TaskBuilder::new("caller");
            let handle = task.arg(c.clone()); // handles travel as task arguments
            task.spawn(move || {
                let handle = handle.get()?;
                let refs: Vec<_> = (0..100).map(|_| incr(&handle, 1)).collect();
                let seen = rustyray::get_all(&refs)?;
                Ok(seen.windows(2).all(|w| w[0] < w[1]))
            })
        })
        .collect();
    assert_eq!(rustyray::get_all(&workers).unwrap(), vec![true; 4]);
    assert_eq!(rustyray::get(&incr(&c, 0)).unwrap(), 400);
}

#[test]
fn calls_accept_refs_and_wait_for_them_in_order() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    let first = incr(&c, 5);
    let second = incr(&c, &first); // 5 + 5
    let third = incr(&c, add(&second, 0)); // 10 + 10
    assert_eq!(rustyray::get(&third).unwrap(), 20);
    assert_eq!(rustyray::get(&log(&c)).unwrap(), vec![5, 5, 10]);
}

#[test]
fn a_failed_ref_argument_fails_only_that_call() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    let bad = incr(&c, fail("upstream broke"));
    match rustyray::get(&bad) {
        Err(Error::TaskFailed { function, .. }) => assert_eq!(function, "fail"),
        other => panic!("{other:?}"),
    }
    assert_eq!(rustyray::get(&incr(&c, 1)).unwrap(), 1);
}

#[test]
fn an_error_fails_the_call_but_a_panic_kills_the_actor() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    match rustyray::get(&refuse(&c)) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "Counter::refuse");
            assert_eq!(message, "not now");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rustyray::get(&incr(&c, 1)).unwrap(),
        1,
        "alive after an Err"
    );

    let crash = boom(&c);
    let queued: Vec<_> = (0..20).map(|_| incr(&c, 1)).collect();
    match rustyray::get(&crash) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "Counter::boom");
            assert!(
                message.starts_with("panicked at tests/actors.rs:")
                    && message.ends_with(": state corrupted"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    for r in &queued {
        match rustyray::get(r) {
            Err(Error::ActorDied { actor, reason }) => {
                assert_eq!(actor, "Counter");
                assert!(reason.contains("state corrupted"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        matches!(rustyray::get(&incr(&c, 1)), Err(Error::ActorDied { .. })),
        "dead: fails at once"
    );
    // Other actors and tasks are unaffected.
    assert_eq!(rustyray::get(&incr(&counter(1), 1)).unwrap(), 2);
}

#[test]
fn a_failing_constructor_kills_the_actor() {
    let rt = runtime(1);
    let _g = rt.enter();
    let c: ActorHandle<Counter> = ActorBuilder::new("Counter")
        .spawn(|| -> anyhow::Result<Counter> { anyhow::bail!("no database") });
    match rustyray::get(&incr(&c, 1)) {
        Err(Error::ActorDied { reason, .. }) => assert!(reason.contains("no database"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let from_failed_arg = counter(fail("bad start"));
    match rustyray::get(&incr(&from_failed_arg, 1)) {
        Err(Error::ActorDied { reason, .. }) => assert!(reason.contains("bad start"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[rustyray::actor]
struct AsyncStore {
    items: Vec<String>,
}

#[test]
fn async_actors_run_on_tokio_and_may_await_tasks_and_other_actors() {
    let rt = runtime(2);
    let _g = rt.enter();
    let store: ActorHandle<AsyncStore> =
        ActorBuilder::new("AsyncStore").spawn_async(|| async { Ok(AsyncStore { items: vec![] }) });
    let c = counter(100);
    let pushes: Vec<ObjectRef<usize>> = (0..50)
        .map(|i| {
            let mut call = store.call("push");
            let item = call.arg(format!("item-{i}"));
            let other = call.arg(c.clone()); // a handle passed into another actor
            call.spawn_async(move |s: &mut AsyncStore| {
                let (item, other) = (item.get(), other.get());
                Box::pin(async move {
                    let n = incr(&other?, 1).await?;
                    s.items.push(format!("{}:{n}", item?));
                    Ok(s.items.len())
                })
            })
        })
        .collect();
    assert_eq!(
        rustyray::get_all(&pushes).unwrap(),
        (1..=50).collect::<Vec<_>>()
    );
    let items = store
        .call("items")
        .spawn(|s: &mut AsyncStore| Ok(s.items.clone()));
    let items = rustyray::get(&items).unwrap();
    assert_eq!(items[0], "item-0:101");
    assert_eq!(items[49], "item-49:150");
}

#[test]
fn handles_serialize_and_mismatched_handles_are_reported() {
    let rt = runtime(1);
    let _g = rt.enter();
    let c = counter(3);
    let bytes = postcard::to_stdvec(&c).unwrap();
    let back: ActorHandle<Counter> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(rustyray::get(&incr(&back, 1)).unwrap(), 4);
    let wrong: ActorHandle<AsyncStore> = postcard::from_bytes(&bytes).unwrap();
    let r = wrong
        .call("items")
        .spawn(|s: &mut AsyncStore| Ok(s.items.len()));
    assert!(matches!(rustyray::get(&r), Err(Error::TypeMismatch { .. })));
}

#[test]
fn actor_methods_may_submit_tasks_and_block_on_them() {
    let rt = runtime(1);
    let _g = rt.enter();
    let c = counter(0);
    let mut call = c.call("incr_by_task");
    let x = call.arg(20i64);
    let r = call.spawn(move |c: &mut Counter| {
        c.n += rustyray::get(&add(x.get()?, 1))?;
        Ok(c.n)
    });
    assert_eq!(
        rustyray::get_timeout(&r, std::time::Duration::from_secs(30)).unwrap(),
        21
    );
}

/// An idle sync actor parks its host and the next call wakes it. Calls sent from several
/// threads at once, each waited for before the next (so the host parks between most of them),
/// mixed with async calls (which send it back to tokio), are never lost or reordered.
#[test]
fn calls_racing_the_idle_actor_parking_are_never_lost() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            let rt = rt.clone();
            std::thread::spawn(move || {
                let _g = rt.enter();
                for i in 0..5000 {
                    let r = incr(&c, 1);
                    if i % 50 == 0 {
                        log(&c); // an async call in between
                    }
                    rustyray::get_timeout(&r, std::time::Duration::from_secs(30))
                        .unwrap_or_else(|e| panic!("sender {t}, call {i}: {e}"));
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(rustyray::get(&incr(&c, 0)).unwrap(), 20000);
    let log = rustyray::get(&log(&c)).unwrap();
    assert_eq!(log.len(), 20001);
}

/// Killing an idle (parked) sync actor drops it at once; its later calls fail.
#[test]
fn killing_an_idle_sync_actor_fails_its_later_calls() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    assert_eq!(rustyray::get(&incr(&c, 1)).unwrap(), 1); // the host is idle after this
    rustyray::kill(&c).unwrap();
    assert!(matches!(
        rustyray::get_timeout(&incr(&c, 1), DEADLOCK_GUARD),
        Err(Error::ActorDied { .. })
    ));
}

#[rustyray::actor]
struct Where {
    calls: u32,
}

#[rustyray::actor]
impl Where {
    fn new() -> Self {
        Where { calls: 0 }
    }

    /// How many calls ran before this one, and the name of the thread it runs on.
    fn thread(&mut self) -> (u32, String) {
        self.calls += 1;
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        (self.calls, name)
    }
}

/// A call gotten at once, made to an idle sync actor, may run on the thread that gets it
/// (instead of waking a pool thread); whether it does is an optimization that the bench
/// binary measures ("1:1 sync actor calls run by their getter"). What is guaranteed: every
/// call runs once, in order, whoever runs it, and a bounded wait never runs it itself.
#[test]
fn a_blocked_get_may_run_the_idle_actors_call_but_a_bounded_one_never_does() {
    let rt = runtime(2);
    let _g = rt.enter();
    let here = std::thread::current().name().unwrap().to_owned();
    let w = Where::remote();
    for i in 1..=50 {
        let (nth, _thread) = rustyray::get(&w.thread()).unwrap();
        assert_eq!(nth, i, "a call was lost, run twice or out of order");
    }
    for i in 51..=100 {
        let (nth, thread) = rustyray::get_timeout(&w.thread(), DEADLOCK_GUARD).unwrap();
        assert_eq!(nth, i, "a call was lost, run twice or out of order");
        assert_ne!(thread, here, "a bounded wait ran the call itself");
    }
}

/// Calls run by blocked senders, by the pool and by tokio (async calls) from four threads at
/// once: none is lost or run twice, and each sender's calls run in its order.
#[test]
fn calls_run_by_their_blocked_senders_keep_every_senders_order() {
    let rt = runtime(2);
    let _g = rt.enter();
    let c = counter(0);
    let (done, finished) = std::sync::mpsc::channel();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            let rt = rt.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let _g = rt.enter();
                let _done = Defer(Some(move || done.send(()).unwrap()));
                let mut last = 0;
                for i in 0..2000 {
                    let r = incr(&c, 1);
                    if i % 100 == 0 {
                        log(&c); // an async call in between
                        let burst: Vec<_> = (0..20).map(|_| incr(&c, 1)).collect();
                        rustyray::get_all(&burst).unwrap();
                    }
                    let now = rustyray::get(&r).unwrap_or_else(|e| panic!("{t}/{i}: {e}"));
                    assert!(now > last, "sender {t}: {now} after {last}");
                    last = now;
                }
            })
        })
        .collect();
    for _ in &senders {
        // A lost call would leave its sender blocked in `get` for ever.
        finished
            .recv_timeout(DEADLOCK_GUARD)
            .expect("a sender is stuck");
    }
    for s in senders {
        s.join().unwrap();
    }
    let total = 4 * (2000 + 20 * 20);
    assert_eq!(rustyray::get(&incr(&c, 0)).unwrap(), total);
    assert_eq!(rustyray::get(&log(&c)).unwrap().len(), total as usize + 1);
}

/// Runs its closure when dropped (also when the thread panics).
struct Defer<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Defer<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
