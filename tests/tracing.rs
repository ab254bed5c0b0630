//! Tasks and actor calls emit `tracing` spans and events; a failed task is logged once.

mod common;

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that keeps the names of spans and the messages of events it sees, with their
/// fields, as text.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl Subscriber for Collect {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("rustyray")
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        let mut all = self.0.lock().unwrap();
        all.push(fields.0);
        Id::from_u64(all.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(format!("event {}", event.metadata().level()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[rustyray::actor]
struct Echo;

#[rustyray::actor]
impl Echo {
    fn new() -> Self {
        Echo
    }

    fn refuse(&self) -> anyhow::Result<u8> {
        anyhow::bail!("echo refuses")
    }
}

#[test]
fn tasks_and_calls_are_traced_and_a_failure_is_logged_once() {
    // This binary holds this one test, so it may install the process-wide subscriber that the
    // runtime's threads report to.
    let seen = Collect::default();
    tracing::subscriber::set_global_default(seen.clone()).unwrap();
    let rt = common::runtime(2);
    let _guard = rt.enter();
    let root = common::fail("traced failure");
    let downstream = common::add(&root, 1);
    assert!(rustyray::get(&downstream).is_err());
    let echo = Echo::remote();
    assert!(rustyray::get(&echo.refuse()).is_err());
    let lines = seen.0.lock().unwrap().clone();
    let with = |needles: &[&str]| {
        lines
            .iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    };
    // Each stage of the root task: submitted, scheduled, run (a span), finished.
    assert_eq!(
        with(&["event TRACE", "submitted", "function=fail"]),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        with(&["event TRACE", "scheduled", "function=fail"]),
        1,
        "{lines:#?}"
    );
    assert_eq!(with(&["span run", "function=fail"]), 1, "{lines:#?}");
    assert!(
        with(&["event TRACE", "finished", "failed=true"]) >= 1,
        "{lines:#?}"
    );
    // Its error is logged once, with its cause; the task it failed downstream logs nothing.
    assert_eq!(with(&["event WARN", "task failed"]), 1, "{lines:#?}");
    assert_eq!(with(&["event WARN", "traced failure"]), 1, "{lines:#?}");
    // The actor call: submitted, run in a span naming the actor and method, failure logged.
    assert_eq!(
        with(&["submitted", "actor=Echo", "method=refuse"]),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        with(&["span call", "actor=Echo", "method=refuse"]),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        with(&["event WARN", "actor call failed", "echo refuses"]),
        1,
        "{lines:#?}"
    );
}
