//! The timeline: a bounded record of the tasks and actor calls that ran recently, written as a
//! Chrome trace (JSON) that Perfetto or `chrome://tracing` shows, like `ray timeline`.
//!
//! # Design
//!
//! Each thread that runs tasks keeps its own ring of events, so recording one is a push under
//! a lock that only that thread takes on the hot path (the exporter takes it rarely). A ring
//! holds the last [`EVENTS_PER_THREAD`] events; older ones are dropped, so memory stays bounded
//! however long the program runs. A sync task or call becomes a complete event ("X") on the row
//! of the thread that ran it; an async one, which may move between threads at its `.await`s,
//! becomes an async slice ("b"/"e") of its own.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::object_ref::ObjectId;
use crate::runtime;

/// How many events each thread keeps.
pub const EVENTS_PER_THREAD: usize = 16 * 1024;

/// What ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Task,
    ActorCall,
}

/// One finished task or actor call.
struct Event {
    runtime: u32,
    kind: Kind,
    name: Cow<'static, str>,
    actor: Option<Cow<'static, str>>,
    asynchronous: bool,
    /// When it started and ended: raw clock readings, turned into trace times only on export.
    started: Instant,
    ended: Instant,
    failed: bool,
    /// Set when it never ran (then it has no run to show in the trace).
    skipped: Option<Skipped>,
    object: ObjectId,
}

/// Why a task ended without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// Cancelled while it waited.
    Cancelled,
    /// An argument failed, so it failed with that error.
    DependencyFailed,
}

struct ThreadLog {
    tid: u64,
    name: String,
    events: Mutex<VecDeque<Event>>,
}

/// Every thread's log, for the exporter.
static LOGS: Mutex<Vec<Arc<ThreadLog>>> = Mutex::new(Vec::new());

thread_local! {
    static LOG: Arc<ThreadLog> = {
        epoch(); // set before this thread's first event, so no event starts before it
        let mut logs = LOGS.lock();
        let log = Arc::new(ThreadLog {
            tid: logs.len() as u64 + 1,
            name: std::thread::current().name().unwrap_or("unnamed").to_owned(),
            events: Mutex::new(VecDeque::new()),
        });
        logs.push(Arc::clone(&log));
        log
    };
}

/// The zero of trace times: set when the first thread starts recording.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds from the epoch to `at` (0 for an earlier reading).
fn micros(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_micros() as u64
}

/// What a task or call records when it finishes.
pub(crate) struct Finished<'a> {
    pub(crate) kind: Kind,
    pub(crate) name: &'a Cow<'static, str>,
    pub(crate) actor: Option<&'a Cow<'static, str>>,
    pub(crate) asynchronous: bool,
    pub(crate) started: Instant,
    pub(crate) failed: bool,
    pub(crate) skipped: Option<Skipped>,
    pub(crate) object: ObjectId,
}

/// Records a finished task or call on this thread's ring.
pub(crate) fn record(event: Finished<'_>) {
    let event = Event {
        runtime: event.object.owner(),
        kind: event.kind,
        name: event.name.clone(),
        actor: event.actor.cloned(),
        asynchronous: event.asynchronous,
        started: event.started,
        ended: Instant::now(),
        failed: event.failed,
        skipped: event.skipped,
        object: event.object,
    };
    // A thread being torn down has no log any more; its last event is dropped.
    let _ = LOG.try_with(|log| {
        let mut events = log.events.lock();
        if events.len() >= EVENTS_PER_THREAD {
            events.pop_front();
        }
        events.push_back(event);
    });
}

/// One entry of the Chrome trace format.
#[derive(Serialize)]
struct TraceEvent<'a> {
    name: &'a str,
    cat: &'static str,
    ph: &'static str,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<u64>,
    pid: u32,
    tid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    args: serde_json::Value,
}

#[derive(Serialize)]
struct Trace<'a> {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<TraceEvent<'a>>,
    #[serde(rename = "displayTimeUnit")]
    display_time_unit: &'static str,
}

/// Writes the current runtime's recent tasks and actor calls to `path` as a Chrome trace
/// (open it in <https://ui.perfetto.dev> or `chrome://tracing`), and returns how many it wrote.
///
/// Each thread keeps its last [`EVENTS_PER_THREAD`] events. Sync tasks and calls are shown
/// on the row of the thread that ran them; async ones as slices of their own.
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// let mut task = rustyray::task::TaskBuilder::new("answer");
/// let r = task.spawn(|| Ok(42));
/// rustyray::get(&r)?;
/// let path = std::env::temp_dir().join(format!("doc-timeline-{}.json", std::process::id()));
/// assert!(rustyray::timeline(&path)? >= 1);
/// # std::fs::remove_file(path).ok();
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn timeline(path: impl AsRef<Path>) -> Result<usize> {
    let runtime = runtime::current().id;
    let logs: Vec<Arc<ThreadLog>> = LOGS.lock().clone();
    let mut names = Vec::new();
    let mut events = Vec::new();
    for log in &logs {
        let held = log.events.lock();
        let mine: Vec<_> = held
            .iter()
            .filter(|e| e.runtime == runtime && e.skipped.is_none())
            .collect();
        if mine.is_empty() {
            continue;
        }
        names.push((log.tid, log.name.clone()));
        for e in mine {
            events.push((log.tid, owned(e)));
        }
    }
    events.sort_by_key(|(_, e)| e.start_us);
    let count = events.len();
    let mut trace = Vec::with_capacity(names.len() + 2 * count);
    for (tid, name) in &names {
        trace.push(TraceEvent {
            name: "thread_name",
            cat: "__metadata",
            ph: "M",
            ts: 0,
            dur: None,
            pid: runtime,
            tid: *tid,
            id: None,
            args: serde_json::json!({ "name": name }),
        });
    }
    for (tid, e) in &events {
        let cat = match e.kind {
            Kind::Task => "task",
            Kind::ActorCall => "actor_call",
        };
        let args = serde_json::json!({
            "object": e.object.to_string(),
            "actor": e.actor,
            "failed": e.failed,
        });
        if e.asynchronous {
            let id = Some(e.object.to_string());
            for (ph, ts) in [("b", e.start_us), ("e", e.start_us + e.dur_us)] {
                trace.push(TraceEvent {
                    name: &e.label,
                    cat,
                    ph,
                    ts,
                    dur: None,
                    pid: runtime,
                    tid: *tid,
                    id: id.clone(),
                    args: args.clone(),
                });
            }
        } else {
            trace.push(TraceEvent {
                name: &e.label,
                cat,
                ph: "X",
                ts: e.start_us,
                dur: Some(e.dur_us),
                pid: runtime,
                tid: *tid,
                id: None,
                args,
            });
        }
    }
    let json = serde_json::to_vec(&Trace {
        trace_events: trace,
        display_time_unit: "ms",
    })
    .map_err(|e| Error::Serialization(e.to_string()))?;
    let path = path.as_ref();
    std::fs::write(path, json).map_err(|e| {
        Error::InvalidArgument(format!(
            "cannot write the timeline to {}: {e}",
            path.display()
        ))
    })?;
    Ok(count)
}

/// A task or call that ended, as `rustyray::state` reports it.
pub(crate) struct Ended {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) actor: Option<String>,
    pub(crate) started: std::time::Duration,
    pub(crate) duration: std::time::Duration,
    pub(crate) failed: bool,
    pub(crate) skipped: Option<Skipped>,
    pub(crate) object: ObjectId,
}

/// The tasks and calls of `runtime` still in the threads' rings, oldest first.
pub(crate) fn ended(runtime: u32) -> Vec<Ended> {
    let logs: Vec<Arc<ThreadLog>> = LOGS.lock().clone();
    let mut out = Vec::new();
    for log in &logs {
        for e in log.events.lock().iter().filter(|e| e.runtime == runtime) {
            out.push(Ended {
                kind: e.kind,
                name: e.name.to_string(),
                actor: e.actor.as_ref().map(|a| a.to_string()),
                started: e.started.saturating_duration_since(epoch()),
                duration: e.ended.saturating_duration_since(e.started),
                failed: e.failed,
                skipped: e.skipped,
                object: e.object,
            });
        }
    }
    out.sort_by_key(|e| e.started);
    out
}

/// An event copied out of its ring, with its display label.
struct Owned {
    kind: Kind,
    label: String,
    actor: Option<String>,
    asynchronous: bool,
    start_us: u64,
    dur_us: u64,
    failed: bool,
    object: ObjectId,
}

fn owned(e: &Event) -> Owned {
    Owned {
        kind: e.kind,
        label: match &e.actor {
            Some(actor) => format!("{actor}.{}", e.name),
            None => e.name.to_string(),
        },
        actor: e.actor.as_ref().map(|a| a.to_string()),
        asynchronous: e.asynchronous,
        start_us: micros(e.started),
        dur_us: e.ended.saturating_duration_since(e.started).as_micros() as u64,
        failed: e.failed,
        object: e.object,
    }
}
