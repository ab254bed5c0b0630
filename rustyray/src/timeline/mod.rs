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
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::object_ref::ObjectId;
use crate::runtime;

mod clock;

/// How many events each thread keeps.
pub const EVENTS_PER_THREAD: usize = 16 * 1024;

/// What ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Task,
    ActorCall,
}

pub(crate) use clock::{now, Stamp};

/// One finished task or actor call: 80 bytes, laid out so the flags fill the gap an
/// `ObjectId` would leave.
struct Event {
    /// When it started and ended, turned into trace times only on export.
    started: Stamp,
    ended: Stamp,
    name: Cow<'static, str>,
    actor: Option<Cow<'static, str>>,
    /// Its result's id, split: the runtime that owns it and its sequence number.
    runtime: u32,
    seq: u64,
    kind: Kind,
    asynchronous: bool,
    failed: bool,
    /// Set when it never ran (then it has no run to show in the trace).
    skipped: Option<Skipped>,
}

// Each ring slot is written once per event: keep it small.
const _: () = assert!(std::mem::size_of::<Event>() <= 80);

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
    events: Mutex<Ring>,
}

/// The last [`EVENTS_PER_THREAD`] events of one thread: filled, then overwritten oldest first.
#[derive(Default)]
struct Ring {
    events: Vec<Event>,
    /// Where the next event goes once the ring is full (so also the oldest one).
    next: usize,
}

impl Ring {
    fn push(&mut self, event: Event) {
        if self.events.len() < EVENTS_PER_THREAD {
            self.events.push(event);
        } else {
            self.events[self.next] = event;
            self.next = (self.next + 1) % EVENTS_PER_THREAD;
        }
    }

    /// Oldest first.
    fn iter(&self) -> impl Iterator<Item = &Event> {
        let (newer, older) = self.events.split_at(self.next);
        older.iter().chain(newer)
    }
}

/// Every thread's log, for the exporter.
static LOGS: Mutex<Vec<Arc<ThreadLog>>> = Mutex::new(Vec::new());

thread_local! {
    static LOG: Arc<ThreadLog> = {
        clock::start(); // before this thread's first event, so no event starts before it
        let mut logs = LOGS.lock();
        let log = Arc::new(ThreadLog {
            tid: logs.len() as u64 + 1,
            name: std::thread::current().name().unwrap_or("unnamed").to_owned(),
            events: Mutex::new(Ring::default()),
        });
        logs.push(Arc::clone(&log));
        log
    };
}

/// What a task or call records when it finishes.
pub(crate) struct Finished<'a> {
    pub(crate) kind: Kind,
    pub(crate) name: &'a Cow<'static, str>,
    pub(crate) actor: Option<&'a Cow<'static, str>>,
    pub(crate) asynchronous: bool,
    pub(crate) started: Stamp,
    pub(crate) ended: Stamp,
    pub(crate) failed: bool,
    pub(crate) skipped: Option<Skipped>,
    pub(crate) object: ObjectId,
}

/// Records a finished task or call on this thread's ring.
#[inline]
pub(crate) fn record(event: Finished<'_>) {
    let event = Event {
        started: event.started,
        ended: event.ended,
        name: event.name.clone(),
        actor: event.actor.cloned(),
        runtime: event.object.owner(),
        seq: event.object.seq(),
        kind: event.kind,
        asynchronous: event.asynchronous,
        failed: event.failed,
        skipped: event.skipped,
    };
    push(event);
}

fn push(event: Event) {
    // A thread being torn down has no log any more; its last event is dropped.
    let _ = LOG.try_with(|log| log.events.lock().push(event));
}

/// Records a task that ended without running (it has no run to show in the trace).
// A `&Cow`, not a `&str`: cloning a borrowed name into the event allocates nothing.
#[allow(clippy::ptr_arg)]
pub(crate) fn record_skipped(name: &Cow<'static, str>, object: ObjectId, why: Skipped) {
    let at = now();
    record(Finished {
        kind: Kind::Task,
        name,
        actor: None,
        asynchronous: false,
        started: at,
        ended: at,
        failed: true,
        skipped: Some(why),
        object,
    });
}

/// One entry of the Chrome trace format.
#[derive(Serialize)]
struct TraceEvent {
    name: Cow<'static, str>,
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
struct Trace {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<TraceEvent>,
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
    let (mut events, threads) = collect(runtime);
    events.retain(|e| e.skipped.is_none());
    let count = events.len();
    let mut trace = Vec::with_capacity(threads.len() + 2 * count);
    for (tid, name) in threads {
        if events.iter().any(|e| e.tid == tid) {
            trace.push(TraceEvent {
                name: "thread_name".into(),
                cat: "__metadata",
                ph: "M",
                ts: 0,
                dur: None,
                pid: runtime,
                tid,
                id: None,
                args: serde_json::json!({ "name": name }),
            });
        }
    }
    for e in &events {
        let cat = match e.kind {
            Kind::Task => "task",
            Kind::ActorCall => "actor_call",
        };
        let args = serde_json::json!({
            "object": e.object.to_string(),
            "actor": e.actor,
            "failed": e.failed,
        });
        let (start, dur) = (e.started.as_micros() as u64, e.duration.as_micros() as u64);
        let event = |ph, ts, dur, id, args| TraceEvent {
            name: e.label().into(),
            cat,
            ph,
            ts,
            dur,
            pid: runtime,
            tid: e.tid,
            id,
            args,
        };
        if e.asynchronous {
            let id = e.object.to_string();
            trace.push(event("b", start, None, Some(id.clone()), args.clone()));
            trace.push(event("e", start + dur, None, Some(id), args));
        } else {
            trace.push(event("X", start, Some(dur), None, args));
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

/// A task or call that ended, copied out of its thread's ring.
pub(crate) struct Ended {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) actor: Option<String>,
    pub(crate) asynchronous: bool,
    /// The row of the thread that recorded it.
    tid: u64,
    /// From the trace's zero.
    pub(crate) started: std::time::Duration,
    pub(crate) duration: std::time::Duration,
    pub(crate) failed: bool,
    pub(crate) skipped: Option<Skipped>,
    pub(crate) object: ObjectId,
}

impl Ended {
    /// `Class.method` for an actor call, else the function.
    pub(crate) fn label(&self) -> String {
        match &self.actor {
            Some(actor) => format!("{actor}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The tasks and calls of `runtime` still in the threads' rings, oldest first.
pub(crate) fn ended(runtime: u32) -> Vec<Ended> {
    collect(runtime).0
}

/// The tasks and calls of `runtime` still in the rings, oldest first, and every thread's row
/// and name.
fn collect(runtime: u32) -> (Vec<Ended>, Vec<(u64, String)>) {
    let logs: Vec<Arc<ThreadLog>> = LOGS.lock().clone();
    let scale = clock::Scale::now();
    let mut out = Vec::new();
    for log in &logs {
        for e in log.events.lock().iter().filter(|e| e.runtime == runtime) {
            out.push(Ended {
                kind: e.kind,
                name: e.name.to_string(),
                actor: e.actor.as_ref().map(|a| a.to_string()),
                asynchronous: e.asynchronous,
                tid: log.tid,
                started: scale.since_start(e.started),
                duration: scale.between(e.started, e.ended),
                failed: e.failed,
                skipped: e.skipped,
                object: ObjectId::new(e.runtime, e.seq),
            });
        }
    }
    out.sort_by_key(|e| e.started);
    let threads = logs.iter().map(|l| (l.tid, l.name.clone())).collect();
    (out, threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_overwrites_its_oldest_event_and_lists_oldest_first() {
        let at = now();
        let event = |seq: u64| Event {
            started: at,
            ended: at,
            name: Cow::Borrowed("f"),
            actor: None,
            runtime: 1,
            seq,
            kind: Kind::Task,
            asynchronous: false,
            failed: false,
            skipped: None,
        };
        let mut ring = Ring::default();
        let total = EVENTS_PER_THREAD as u64 + 3;
        for seq in 0..total {
            ring.push(event(seq));
        }
        let seqs: Vec<u64> = ring.iter().map(|e| e.seq).collect();
        assert_eq!(seqs.len(), EVENTS_PER_THREAD);
        assert_eq!(seqs, (3..total).collect::<Vec<_>>());
    }
}
