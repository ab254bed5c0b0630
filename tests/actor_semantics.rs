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

    async fn send(&self) {
        self.ready.send_replace(true);
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
