//! The timeline: a bounded record of the tasks and actor calls that ran recently, written as a
//! Chrome trace (JSON) that Perfetto or `chrome://tracing` shows, like `ray timeline`.
//!
//! # Design
//!
//! Each thread that runs tasks keeps its own ring of events, which it writes without a lock
//! and the exporter reads at any time (`ring.rs`); each reading of the clock is one `rdtsc`
//! where the kernel keeps time with it (`clock.rs`). A ring holds the last
//! [`EVENTS_PER_THREAD`] events; older ones are dropped, so memory stays bounded however long
//! the program runs. A sync task or call becomes a complete event ("X") on the row
//! of the thread that ran it; an async one, which may move between threads at its `.await`s,
//! becomes an async slice ("b"/"e") of its own.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::object_ref::ObjectId;

mod clock;
#[cfg(feature = "dashboard")]
pub(crate) mod errors;
mod ring;
#[cfg(feature = "dashboard")]
pub(crate) mod tally;

use ring::{ThreadLog, Writer};

/// How many events each thread keeps.
#[cfg(not(rustyray_loom))]
pub const EVENTS_PER_THREAD: usize = 16 * 1024;
/// How many events each thread keeps (two in the loom model, to lap the ring).
#[cfg(rustyray_loom)]
pub const EVENTS_PER_THREAD: usize = 2;

/// What ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Task,
    ActorCall,
    /// One item of a stream, made (an instant: `started` is `ended`).
    StreamItem,
}

pub(crate) use clock::{now, Stamp};

/// Why a task ended without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// Cancelled while it waited.
    Cancelled,
    /// An argument failed, so it failed with that error.
    DependencyFailed,
}

/// Every thread's log, for the exporter.
static LOGS: Mutex<Vec<Arc<ThreadLog>>> = Mutex::new(Vec::new());

thread_local! {
    static LOG: Writer = {
        clock::start(); // before this thread's first event, so no event starts before it
        let mut logs = LOGS.lock();
        let log = Arc::new(ThreadLog::new(
            logs.len() as u64 + 1,
            std::thread::current().name().unwrap_or("unnamed").to_owned(),
        ));
        logs.push(Arc::clone(&log));
        Writer::new(log)
    };
}

/// Every key counted for `runtime` since the process started (feature `dashboard`), with its
/// counts over all threads, ordered by key.
#[cfg(feature = "dashboard")]
pub(crate) fn totals(runtime: u32) -> Vec<(tally::Key, tally::Totals)> {
    let rate = clock::Scale::now().between(Stamp::from_raw(0), Stamp::from_raw(1 << 40));
    let rate = rate.as_secs_f64() / (1u64 << 40) as f64;
    let logs: Vec<Arc<ThreadLog>> = LOGS.lock().clone();
    let mut totals: std::collections::HashMap<tally::Key, tally::Totals> = Default::default();
    for log in &logs {
        log.tallies.for_each(|key, counted| {
            if key.runtime == runtime {
                totals.entry(key.clone()).or_default().add(counted, rate);
            }
        });
    }
    let mut totals: Vec<_> = totals.into_iter().collect();
    totals.sort_by(|a, b| {
        (a.0.kind as u8, &a.0.name, &a.0.actor).cmp(&(b.0.kind as u8, &b.0.name, &b.0.actor))
    });
    totals
}

/// The time from the trace's zero to `at` (feature `dashboard`).
#[cfg(feature = "dashboard")]
pub(crate) fn since_start(at: Stamp) -> std::time::Duration {
    clock::Scale::now().since_start(at)
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

impl<'a> Finished<'a> {
    /// An event of no length at `at`, not failed, of no actor.
    // A `&Cow`, as the event keeps: cloning a borrowed name into the ring allocates nothing.
    #[allow(clippy::ptr_arg)]
    fn instant(kind: Kind, name: &'a Cow<'static, str>, at: Stamp, object: ObjectId) -> Self {
        Finished {
            kind,
            name,
            actor: None,
            asynchronous: false,
            started: at,
            ended: at,
            failed: false,
            skipped: None,
            object,
        }
    }
}

/// Records a finished task or call on this thread's ring.
#[inline]
pub(crate) fn record(event: Finished<'_>) {
    // A thread being torn down has no log any more; its last event is dropped.
    let _ = LOG.try_with(|log| log.push(&event));
}

/// Counts a task (`actor` `None`) or an actor call submitted in `runtime`, for the dashboard's
/// submitted counter (feature `dashboard`; nothing without it).
#[inline]
#[allow(clippy::ptr_arg)]
pub(crate) fn record_submitted(
    name: &Cow<'static, str>,
    actor: Option<&Cow<'static, str>>,
    runtime: u32,
) {
    #[cfg(feature = "dashboard")]
    {
        let kind = if actor.is_some() {
            Kind::ActorCall
        } else {
            Kind::Task
        };
        let mut event =
            Finished::instant(kind, name, Stamp::from_raw(0), ObjectId::new(runtime, 0));
        event.actor = actor;
        let _ = LOG.try_with(|log| log.submitted(&event));
    }
    #[cfg(not(feature = "dashboard"))]
    let _ = (name, actor, runtime);
}

/// Notes the error a task (`actor` `None`) or an actor call of `runtime` failed with, for the
/// dashboard's recent errors (feature `dashboard`; nothing without it).
#[inline]
#[allow(clippy::ptr_arg)]
pub(crate) fn record_error(
    name: &Cow<'static, str>,
    actor: Option<&Cow<'static, str>>,
    runtime: u32,
    error: &crate::Error,
) {
    #[cfg(feature = "dashboard")]
    errors::note(runtime, name, actor, error);
    #[cfg(not(feature = "dashboard"))]
    let _ = (name, actor, runtime, error);
}

/// Records that a stream of `name` made the item `object` (an instant on this thread's row).
#[allow(clippy::ptr_arg)]
pub(crate) fn record_item(name: &Cow<'static, str>, object: ObjectId) {
    record(Finished::instant(Kind::StreamItem, name, now(), object));
}

/// Records a task that ended without running (it has no run to show in the trace).
// A `&Cow`, not a `&str`: cloning a borrowed name into the event allocates nothing.
#[allow(clippy::ptr_arg)]
pub(crate) fn record_skipped(name: &Cow<'static, str>, object: ObjectId, why: Skipped) {
    let mut event = Finished::instant(Kind::Task, name, now(), object);
    event.failed = true;
    event.skipped = Some(why);
    record(event);
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

/// Writes runtime `runtime`'s recent tasks and actor calls to `path` as a Chrome trace; how
/// many it wrote (see `rustyray::timeline`).
pub(crate) fn write_trace(runtime: u32, path: &Path) -> Result<usize> {
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
            Kind::StreamItem => "stream_item",
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
        if e.kind == Kind::StreamItem {
            trace.push(event("i", start, None, None, args));
        } else if e.asynchronous {
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
    /// `Class.method` for an actor call, else the function; `… item` for a stream's item.
    pub(crate) fn label(&self) -> String {
        match (&self.actor, self.kind) {
            (_, Kind::StreamItem) => format!("{} item", self.name),
            (Some(actor), _) => format!("{actor}.{}", self.name),
            (None, _) => self.name.clone(),
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
        out.extend(log.ended(runtime, &scale));
    }
    out.sort_by_key(|e| e.started);
    let threads = logs.iter().map(|l| (l.tid, l.name.clone())).collect();
    (out, threads)
}
