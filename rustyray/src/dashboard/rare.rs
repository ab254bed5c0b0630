//! Counts of rare events (task retries, actor restarts) for the metrics: kept under one lock,
//! which is fine for events that each cost a whole task run or an actor rebuild.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// How often each event happened, per (runtime, event, name).
type Counts = FxHashMap<(u32, Event, String), u64>;

static COUNTS: Mutex<Option<Counts>> = Mutex::new(None);

/// A rare event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Event {
    /// A task ran again after a failed try.
    Retry,
    /// An actor was rebuilt after a panic.
    Restart,
}

/// Counts one `event` of `name` (a function or an actor class) in runtime `runtime`.
pub(crate) fn count(runtime: u32, event: Event, name: &str) {
    let mut counts = COUNTS.lock();
    *counts
        .get_or_insert_with(Default::default)
        .entry((runtime, event, name.to_owned()))
        .or_default() += 1;
}

/// Every name `event` happened to in `runtime`, with how often, by name.
pub(crate) fn counts(runtime: u32, event: Event) -> Vec<(String, u64)> {
    let counts = COUNTS.lock();
    let mut out: Vec<(String, u64)> = counts
        .iter()
        .flatten()
        .filter(|((r, e, _), _)| *r == runtime && *e == event)
        .map(|((_, _, name), n)| (name.clone(), *n))
        .collect();
    out.sort();
    out
}
