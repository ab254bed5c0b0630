//! Work that can never run fails at once; work that waits for resources others hold is
//! reported, as Ray's "cannot be scheduled right now" warnings, and its actor shows as
//! `PENDING_CREATION` until it starts.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rustyray::state::{self, ActorState};
use rustyray::Error;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Keeps the scheduler's warnings, and wakes a test waiting for one.
#[derive(Clone, Default)]
struct Warnings(Arc<(Mutex<Vec<String>>, Condvar)>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{value:?}"));
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "rustyray::scheduler" && *metadata.level() == tracing::Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let (lines, changed) = &*self.0;
        lines.lock().unwrap().push(message.0);
        changed.notify_all();
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Warnings {
    /// The first warning containing every one of `needles` (waits for it).
    fn wait_for(&self, needles: &[&str]) -> String {
        let (lines, changed) = &*self.0;
        let lines = lines.lock().unwrap();
        let (lines, timeout) = changed
            .wait_timeout_while(lines, common::DEADLOCK_GUARD, |lines| {
                !lines.iter().any(|l| needles.iter().all(|n| l.contains(n)))
            })
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no warning with {needles:?}: {lines:#?}"
        );
        let found = lines.iter().find(|l| needles.iter().all(|n| l.contains(n)));
        found.expect("found above").clone()
    }
}

#[rustyray::actor]
struct Hog;

#[rustyray::actor(num_cpus = 1, resource(hay = 1))]
impl Hog {
    fn new() -> Self {
        Hog
    }

    fn ping(&self) -> u8 {
        1
    }
}

#[rustyray::remote(num_cpus = 64)]
fn too_big() -> u8 {
    1
}

#[test]
fn unschedulable_work_fails_at_once_and_starved_work_is_reported() {
    // This binary holds this one test, so it may install the process-wide subscriber that the
    // runtime's threads report to.
    let warnings = Warnings::default();
    tracing::subscriber::set_global_default(warnings.clone()).unwrap();
    let rt = rustyray::Runtime::new(
        rustyray::Config::default()
            .num_cpus(2)
            .resource("hay", 10.0),
    )
    .unwrap();
    let _guard = rt.enter();

    // More than the runtime has: fails at once, saying what and how much.
    match rustyray::get(&too_big::remote()) {
        Err(Error::Infeasible {
            resource,
            requested,
            available,
            ..
        }) => assert_eq!(
            (resource.as_str(), requested, available),
            ("CPU", 64.0, 2.0)
        ),
        other => panic!("{other:?}"),
    }
    let giant = Hog::options().num_cpus(64.0).remote();
    match rustyray::get(&giant.ping()) {
        Err(Error::ActorDied { reason, .. }) => assert!(reason.contains("CPU"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Two hogs hold both CPUs for life; a third waits, pending creation, and is reported.
    let hogs = [Hog::remote(), Hog::remote()];
    for hog in &hogs {
        assert_eq!(rustyray::get(&hog.ping()).unwrap(), 1);
    }
    let third = Hog::remote();
    let answer = third.ping();
    let pending = state::actors()
        .into_iter()
        .filter(|a| a.state == ActorState::PendingCreation)
        .count();
    assert_eq!(pending, 1, "{:?}", state::actors());
    let warning = warnings.wait_for(&[
        "CPU 1, hay 1",
        "have waited",
        "2 × actor Hog (CPU 1, hay 1)",
    ]);
    assert!(warning.contains("CPU 0 of 2 free"), "{warning}");

    // Once a hog goes, it starts.
    rustyray::kill(&hogs[0]).unwrap();
    assert_eq!(
        rustyray::get_timeout(&answer, Duration::from_secs(60)).unwrap(),
        1
    );
    assert!(state::actors()
        .iter()
        .all(|a| a.state != ActorState::PendingCreation));
}
