//! Ray's actor semantics: async actors' default concurrency, class-level options, and
//! cancelling a call that is running.
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{runtime, DEADLOCK_GUARD};
use rustyray::Error;

// ---- async actors take many calls at once ------------------------------------------------------

/// Ray's `SignalActor`: waiters block on an event until another call sets it.
#[rustyray::actor]
struct Signal {
    ready: tokio::sync::watch::Sender<bool>,
}

#[rustyray::actor(concurrent)]
impl Signal {
    fn new() -> Self {
        Signal {
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    async fn wait(&self, who: u32) -> u32 {
        let mut ready = self.ready.subscribe();
        ready
            .wait_for(|set| *set)
            .await
            .expect("the sender lives in self");
        who
    }

    /// Sync, as Ray's `SignalActor.send`: runs beside the waiters, without waiting for them.
    fn send(&self) {
        self.ready.send_replace(true);
    }

    /// How many calls wait on the event now (sync, beside them).
    fn waiting(&self) -> usize {
        self.ready.receiver_count()
    }
}

#[test]
fn an_async_actor_with_default_concurrency_releases_every_waiter() {
    let rt = runtime(2);
    let _g = rt.enter();
    let signal = Signal::remote();
    let waiters: Vec<_> = (0..4).map(|i| signal.wait(i)).collect();
    // With one call at a time, `send` would queue behind the first waiter for ever.
    rustyray::get_timeout(&signal.send(), DEADLOCK_GUARD).unwrap();
    let released: Vec<u32> = waiters
        .iter()
        .map(|w| rustyray::get_timeout(w, DEADLOCK_GUARD).unwrap())
        .collect();
    assert_eq!(released, [0, 1, 2, 3]);
}

#[test]
fn an_async_actor_limited_to_one_call_runs_them_in_order() {
    let rt = runtime(2);
    let _g = rt.enter();
    let signal = Signal::options().max_concurrency(1).remote();
    let waiter = signal.wait(7);
    let send = signal.send();
    // `send` waits behind the waiter, which waits for `send`.
    assert!(matches!(
        rustyray::get_timeout(&send, Duration::from_millis(200)),
        Err(Error::Timeout { .. })
    ));
    rustyray::kill(&signal).unwrap();
    assert!(matches!(
        rustyray::get(&waiter),
        Err(Error::ActorDied { .. })
    ));
}

#[test]
fn a_sync_method_of_an_async_actor_runs_while_async_calls_wait() {
    let rt = runtime(2);
    let _g = rt.enter();
    let signal = Signal::remote();
    let waiters: Vec<_> = (0..4).map(|i| signal.wait(i)).collect();
    // A sync `&self` call answers while all four wait (it would hang behind them otherwise).
    while rustyray::get_timeout(&signal.waiting(), DEADLOCK_GUARD).unwrap() < 4 {
        std::thread::yield_now();
    }
    rustyray::get_timeout(&signal.send(), DEADLOCK_GUARD).unwrap();
    assert_eq!(rustyray::get_all(&waiters).unwrap(), [0, 1, 2, 3]);
}

// ---- threaded actors ---------------------------------------------------------------------------

/// Ray's threaded actor: sync `&self` methods, up to `max_concurrency` at once.
#[rustyray::actor]
struct Threaded {
    meeting: std::sync::Barrier,
    calls: AtomicU64,
}

#[rustyray::actor(concurrent)]
impl Threaded {
    fn new(parties: usize) -> Self {
        Threaded {
            meeting: std::sync::Barrier::new(parties),
            calls: AtomicU64::new(0),
        }
    }

    /// Returns only once `parties` calls are inside it together.
    fn meet(&self, who: u32) -> u32 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.meeting.wait();
        who
    }

    /// Whether another call came in while this one waited a while.
    fn overlaps(&self) -> bool {
        let before = self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        self.calls.load(Ordering::SeqCst) != before + 1
    }

    fn calls(&mut self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[test]
fn a_threaded_actor_runs_sync_calls_side_by_side_up_to_max_concurrency() {
    let rt = runtime(4);
    let _g = rt.enter();
    // Four calls can only return if all four run at once, each on a thread of its own.
    let actor = Threaded::options().max_concurrency(4).remote(4);
    let met: Vec<_> = (0..4).map(|i| actor.meet(i)).collect();
    let calls = actor.calls(); // `&mut self`: runs after them, alone
    let got: Vec<u32> = met
        .iter()
        .map(|r| rustyray::get_timeout(r, DEADLOCK_GUARD).unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);
    assert_eq!(rustyray::get(&calls).unwrap(), 4);
}

#[test]
fn a_threaded_actor_runs_one_call_at_a_time_by_default() {
    let rt = runtime(4);
    let _g = rt.enter();
    // As Ray's threaded actors: max_concurrency defaults to 1, so two calls are never inside
    // together, and each gives up waiting for the other.
    let actor = Threaded::remote(2);
    let calls: Vec<_> = (0..2).map(|_| actor.overlaps()).collect();
    assert_eq!(rustyray::get_all(&calls).unwrap(), [false, false]);
}

// ---- class-level options -----------------------------------------------------------------------

static BUILT: AtomicU64 = AtomicU64::new(0);

#[rustyray::actor]
struct Phoenix {
    calls: u64,
}

#[rustyray::actor(max_restarts = 2, max_task_retries = 0, num_cpus = 1)]
impl Phoenix {
    fn new() -> Self {
        BUILT.fetch_add(1, Ordering::SeqCst);
        Phoenix { calls: 0 }
    }

    fn crash(&mut self) -> u64 {
        panic!("crash after {} calls", self.calls)
    }

    fn count(&mut self) -> u64 {
        self.calls += 1;
        self.calls
    }
}

#[test]
fn class_options_are_defaults_that_options_overrides() {
    let rt = runtime(2);
    let _g = rt.enter();
    // The class default: two restarts.
    let phoenix = Phoenix::remote();
    assert_eq!(rustyray::get(&phoenix.count()).unwrap(), 1);
    assert!(rustyray::get(&phoenix.crash()).is_err());
    assert_eq!(rustyray::get(&phoenix.count()).unwrap(), 1, "rebuilt");
    assert!(rustyray::get(&phoenix.crash()).is_err());
    assert_eq!(rustyray::get(&phoenix.count()).unwrap(), 1, "rebuilt again");

    // Overridden: no restart.
    let mortal = Phoenix::options().max_restarts(0).remote();
    assert!(rustyray::get(&mortal.crash()).is_err());
    assert!(matches!(
        rustyray::get(&mortal.count()),
        Err(Error::ActorDied { .. })
    ));

    // `num_cpus = 1` by default: two such actors fill a 2-CPU runtime (the dead one gave its
    // CPU back), so a third waits until one goes; with `num_cpus(0.0)` one starts at once.
    let second = Phoenix::remote();
    assert_eq!(rustyray::get(&second.count()).unwrap(), 1);
    let free = Phoenix::options().num_cpus(0.0).remote();
    assert_eq!(
        rustyray::get_timeout(&free.count(), DEADLOCK_GUARD).unwrap(),
        1
    );
    let third = Phoenix::remote();
    assert!(matches!(
        rustyray::get_timeout(&third.count(), Duration::from_millis(200)),
        Err(Error::Timeout { .. })
    ));
    rustyray::kill(&phoenix).unwrap();
    // The call that timed out ran first, once the actor started.
    assert_eq!(
        rustyray::get_timeout(&third.count(), DEADLOCK_GUARD).unwrap(),
        2
    );
}

// ---- cancelling a running call -----------------------------------------------------------------

/// One counter per test (tests run in parallel), read from outside the actor, since a sync
/// `&mut self` call has the actor to itself while it runs.
static COUNTERS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
static SAW_CANCEL: [std::sync::atomic::AtomicBool; 8] =
    [const { std::sync::atomic::AtomicBool::new(false) }; 8];

#[rustyray::actor]
struct Worker {
    slot: usize,
}

#[rustyray::actor(concurrent)]
impl Worker {
    fn new(slot: usize) -> Self {
        Worker { slot }
    }

    #[rustyray(skip)]
    fn count(&self) -> &'static AtomicU64 {
        &COUNTERS[self.slot]
    }

    /// Counts up at every `.await` for as long as it runs.
    async fn spin(&self) -> u64 {
        loop {
            self.count().fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Counts up without ever awaiting, until it sees its cancel.
    async fn busy(&self) -> u64 {
        while !rustyray::is_cancelled() {
            self.count().fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
        SAW_CANCEL[self.slot].store(true, Ordering::SeqCst);
        self.count().load(Ordering::SeqCst)
    }

    /// A sync method: counts up until it sees its cancel.
    fn grind(&mut self) -> u64 {
        while !rustyray::is_cancelled() {
            self.count().fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
        SAW_CANCEL[self.slot].store(true, Ordering::SeqCst);
        self.count().load(Ordering::SeqCst)
    }

    async fn is_cancelled_here(&self) -> bool {
        rustyray::is_cancelled()
    }
}

/// Waits until the test's counter moves, so the call is surely running.
fn wait_until_running(slot: usize) {
    let start = COUNTERS[slot].load(Ordering::SeqCst);
    while COUNTERS[slot].load(Ordering::SeqCst) == start {
        std::thread::yield_now();
    }
}

/// Asserts the test's counter stopped moving.
fn assert_stopped(slot: usize) {
    let stopped = COUNTERS[slot].load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        COUNTERS[slot].load(Ordering::SeqCst),
        stopped,
        "still counting"
    );
}

fn assert_cancelled_as(call: &rustyray::ObjectRef<u64>, method: &str) {
    match rustyray::get_timeout(call, DEADLOCK_GUARD) {
        Err(Error::Cancelled { function }) => assert_eq!(function, method),
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

#[test]
fn a_cancelled_running_async_call_is_dropped_at_its_next_await() {
    let rt = runtime(2);
    let _g = rt.enter();
    let worker = Worker::remote(0);
    let spin = worker.spin();
    wait_until_running(0);
    assert!(rustyray::cancel(&spin));
    assert_cancelled_as(&spin, "Worker::spin");
    // The loop stopped, and the actor serves later calls.
    assert!(!rustyray::get(&worker.is_cancelled_here()).unwrap());
    assert_stopped(0);
}

#[test]
fn a_cancelled_running_async_call_sees_is_cancelled_between_awaits() {
    let rt = runtime(2);
    let _g = rt.enter();
    let worker = Worker::remote(1);
    let busy = worker.busy();
    wait_until_running(1);
    assert!(rustyray::cancel(&busy));
    assert_cancelled_as(&busy, "Worker::busy");
    // It returns once it sees the cancel (its result is discarded).
    while !SAW_CANCEL[1].load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert_stopped(1);
    assert!(!rustyray::get(&worker.is_cancelled_here()).unwrap());
}

#[test]
fn a_cancelled_running_sync_call_sees_is_cancelled_and_the_actor_lives_on() {
    let rt = runtime(2);
    let _g = rt.enter();
    let worker = Worker::remote(2);
    let grind = worker.grind();
    wait_until_running(2);
    assert!(rustyray::cancel(&grind));
    assert_cancelled_as(&grind, "Worker::grind");
    // A later call runs after `grind` ends (`&mut self` has the actor to itself).
    assert!(!rustyray::get(&worker.is_cancelled_here()).unwrap());
    assert!(SAW_CANCEL[2].load(Ordering::SeqCst));
    assert_stopped(2);
    assert!(!rustyray::cancel(&grind), "already cancelled");
}

#[test]
fn cancelling_one_of_several_running_async_calls_leaves_the_others_running() {
    let rt = runtime(2);
    let _g = rt.enter();
    let signal = Signal::remote();
    let first = signal.wait(1);
    let second = signal.wait(2);
    assert!(rustyray::cancel(&first));
    match rustyray::get(&first) {
        Err(Error::Cancelled { function }) => assert_eq!(function, "Signal::wait"),
        other => panic!("{other:?}"),
    }
    rustyray::get(&signal.send()).unwrap();
    assert_eq!(rustyray::get_timeout(&second, DEADLOCK_GUARD).unwrap(), 2);
}

#[test]
fn a_cancelled_queued_call_is_named_and_never_runs() {
    let rt = runtime(2);
    let _g = rt.enter();
    let worker = Worker::remote(3);
    let grind = worker.grind();
    wait_until_running(3);
    let queued = worker.grind(); // waits behind the first: `&mut self`
    assert!(rustyray::cancel(&queued));
    assert_cancelled_as(&queued, "Worker::grind");
    assert!(rustyray::cancel(&grind));
    assert_cancelled_as(&grind, "Worker::grind");
    assert!(!rustyray::get(&worker.is_cancelled_here()).unwrap());
}

#[test]
fn a_cancelled_call_the_host_took_but_did_not_start_is_named() {
    let rt = runtime(2);
    let _g = rt.enter();
    let worker = Worker::remote(4);
    let first = worker.grind();
    wait_until_running(4);
    // Both wait in the mailbox while the first runs; when it ends, the host takes both into
    // its own backlog and starts the second: the third waits there, taken but not started.
    let second = worker.grind();
    let third = worker.grind();
    assert!(rustyray::cancel(&first));
    while !SAW_CANCEL[4].load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    wait_until_running(4); // the second counts now
    assert!(rustyray::cancel(&third));
    assert_cancelled_as(&third, "Worker::grind");
    assert!(rustyray::cancel(&second));
    assert_cancelled_as(&second, "Worker::grind");
}
