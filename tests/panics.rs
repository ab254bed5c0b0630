//! Panics caught in task bodies and actor methods are reported once, in the error, and not
//! printed by the panic hook; panics elsewhere still reach the hook that was installed before.
//!
//! One test in its own binary: the panic hook is global to the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustyray::{Config, Error, Runtime};

#[rustyray::remote(max_retries = 2)]
fn explode(n: u32) -> u32 {
    panic!("boom {n}")
}

#[rustyray::remote]
async fn explode_async() -> u32 {
    panic!("async boom")
}

#[rustyray::actor]
struct Fragile;

#[rustyray::actor]
impl Fragile {
    fn new() -> Self {
        Fragile
    }

    fn crash(&mut self) -> u32 {
        panic!("method boom")
    }

    async fn crash_async(&self) -> u32 {
        panic!("async method boom")
    }
}

fn message(error: Error) -> String {
    match error {
        Error::TaskFailed { message, .. } => message,
        Error::ActorDied { reason, .. } => reason,
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn caught_panics_are_not_printed_but_others_are() {
    let printed = Arc::new(AtomicUsize::new(0));
    {
        let printed = Arc::clone(&printed);
        // Stands for the hook a program had before it started RustyRay (the default one
        // prints); it counts instead, to keep the test's output clean.
        std::panic::set_hook(Box::new(move |_| {
            printed.fetch_add(1, Ordering::SeqCst);
        }));
    }

    let quiet = Runtime::new(Config::default().num_cpus(2)).unwrap();
    {
        let _in = quiet.enter();
        let error = rustyray::get(&explode::remote(7)).unwrap_err();
        let text = message(error);
        assert!(
            text.starts_with("panicked at tests/panics.rs:") && text.ends_with(": boom 7"),
            "the error says where and what: {text}"
        );
        assert!(
            message(rustyray::get(&explode_async::remote()).unwrap_err()).contains("async boom")
        );
        let actor = Fragile::remote();
        assert!(message(rustyray::get(&actor.crash()).unwrap_err()).contains("method boom"));
        let actor = Fragile::remote();
        assert!(
            message(rustyray::get(&actor.crash_async()).unwrap_err()).contains("async method boom")
        );
        assert_eq!(
            printed.load(Ordering::SeqCst),
            0,
            "3 tries of a task, an async task and two actor methods panicked: none printed"
        );

        // A panic outside any body, in the same process and while the runtime runs: printed.
        let joined = std::thread::spawn(|| panic!("a user thread")).join();
        assert!(joined.is_err());
        assert_eq!(
            printed.load(Ordering::SeqCst),
            1,
            "the user's own thread's panic is printed"
        );
    }
    quiet.shutdown();

    let loud = Runtime::new(Config::default().num_cpus(2).print_task_panics(true)).unwrap();
    {
        let _in = loud.enter();
        let before = printed.load(Ordering::SeqCst);
        let error = rustyray::get(&explode::remote(1)).unwrap_err();
        assert!(message(error).ends_with("boom 1"));
        assert_eq!(
            printed.load(Ordering::SeqCst) - before,
            3,
            "print_task_panics(true): each of the 3 tries is printed"
        );
    }
    loud.shutdown();
}
