//! What the dashboard shows, read from the runtime at one moment: the data of the JSON
//! endpoints (documented in docs/observability.md) and of `/metrics`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rare::{self, Event};
use crate::runtime::RuntimeCore;
use crate::state::{self, ActorState};
use crate::timeline::errors::ErrorNote;
use crate::timeline::{self, Kind};

/// Everything the page shows (`/api/snapshot`).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) runtime: u32,
    /// Seconds since the trace's zero (the start of the first thread that recorded).
    pub(crate) now: f64,
    pub(crate) tasks: Vec<FunctionRow>,
    pub(crate) actors: Vec<ActorRow>,
    pub(crate) objects: Objects,
    pub(crate) placement_groups: Vec<GroupRow>,
    pub(crate) timeline: Vec<Run>,
    /// Tasks and calls finished per second over the last minutes: (seconds from the trace's
    /// zero, rate over the second before it), oldest first.
    pub(crate) rate: Vec<(f64, f64)>,
}

/// One function (or actor method): its counts since the runtime started, and its tasks now.
#[derive(Serialize, Debug, Clone, Default)]
pub(crate) struct FunctionRow {
    pub(crate) function: String,
    /// `task` or `actor_call`.
    pub(crate) kind: &'static str,
    pub(crate) actor: Option<String>,
    /// Submitted, counted at each submission.
    pub(crate) submitted: u64,
    /// Ended, failed or not (including those that never ran).
    pub(crate) finished: u64,
    pub(crate) failed: u64,
    /// Ended without running (cancelled, or an argument failed).
    pub(crate) skipped: u64,
    pub(crate) retried: u64,
    /// Seconds spent running, over all runs.
    pub(crate) run_seconds: f64,
    /// Tasks not finished, by state (`RUNNING`, `QUEUED`, `WAITING_FOR_DEPENDENCIES`).
    pub(crate) live: BTreeMap<String, u64>,
    /// The last few errors (newest last): message, thread, when.
    pub(crate) errors: Vec<ErrorNote>,
    /// Run times: (upper bound in seconds, runs in this bucket alone).
    #[serde(skip)]
    pub(crate) buckets: Vec<(f64, u64)>,
}

/// One actor.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct ActorRow {
    pub(crate) id: String,
    pub(crate) class: String,
    /// `ALIVE` or `DEAD`.
    pub(crate) state: &'static str,
    pub(crate) death: Option<String>,
    pub(crate) queued_calls: usize,
    pub(crate) restarts: u64,
}

/// The object store.
#[derive(Serialize, Debug, Clone, Default)]
pub(crate) struct Objects {
    pub(crate) count: usize,
    /// Bytes of ready objects in memory counted against the budget.
    pub(crate) memory_bytes: u64,
    pub(crate) limit_bytes: u64,
    pub(crate) spilled_objects: u64,
    pub(crate) spilled_bytes: u64,
    /// Objects by state (`PENDING`, `READY`, `SPILLED`, `FAILED`): count and bytes.
    pub(crate) by_state: BTreeMap<String, (usize, u64)>,
}

/// One placement group.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct GroupRow {
    pub(crate) id: u64,
    pub(crate) name: Option<String>,
    pub(crate) strategy: String,
    pub(crate) state: String,
    pub(crate) bundles: Vec<Vec<(String, f64)>>,
}

/// One recent run, for the timeline chart.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Run {
    pub(crate) label: String,
    /// Seconds from the trace's zero.
    pub(crate) start: f64,
    pub(crate) duration: f64,
    pub(crate) failed: bool,
}

/// The most runs the timeline chart gets.
const RUNS: usize = 400;

/// Reads everything now, with `rate` (the sampled history) as it is. Runs on a thread where
/// `shared` is the current runtime.
pub(crate) fn take(shared: &RuntimeCore, rate: Vec<(f64, f64)>) -> Snapshot {
    let id = shared.id();
    let mut rows: BTreeMap<(String, Option<String>, &'static str), FunctionRow> = BTreeMap::new();
    for (key, totals) in timeline::totals(id) {
        let kind = kind_name(key.kind);
        let row = rows
            .entry((
                key.name.to_string(),
                key.actor.as_deref().map(str::to_owned),
                kind,
            ))
            .or_default();
        row.submitted += totals.submitted;
        row.finished += totals.finished;
        row.failed += totals.failed;
        row.skipped += totals.skipped;
        row.run_seconds += totals.seconds;
        row.buckets = totals.buckets;
    }
    // One pass over the store gives both the live tasks and the objects' census.
    let store = shared.store().snapshot();
    for task in state::live_tasks(&store.producers) {
        let live = task.state;
        let kind = row_kind(task.actor.is_some());
        let row = rows.entry((task.function, task.actor, kind)).or_default();
        *row.live.entry(live.to_string()).or_default() += 1;
    }
    for ((name, actor), notes) in timeline::errors::recent(id) {
        let kind = row_kind(actor.is_some());
        rows.entry((name, actor, kind)).or_default().errors = notes;
    }
    let retries: BTreeMap<String, u64> = rare::counts(id, Event::Retry).into_iter().collect();
    let tasks = rows
        .into_iter()
        .map(|((function, actor, kind), mut row)| {
            if actor.is_none() {
                row.retried = retries.get(&function).copied().unwrap_or(0);
            }
            row.function = function;
            row.actor = actor;
            row.kind = kind;
            row
        })
        .collect();
    let restarts: BTreeMap<String, u64> = rare::counts(id, Event::Restart).into_iter().collect();
    let actors = state::actors()
        .into_iter()
        .map(|a| {
            let (state, death) = match a.state {
                ActorState::PendingCreation => ("PENDING_CREATION", None),
                ActorState::Alive => ("ALIVE", None),
                ActorState::Dead(why) => ("DEAD", Some(why)),
            };
            ActorRow {
                id: a.id.to_string(),
                restarts: restarts.get(&a.class).copied().unwrap_or(0),
                class: a.class,
                state,
                death,
                queued_calls: a.queued_calls,
            }
        })
        .collect();
    let (memory_bytes, spilled_bytes, spilled_objects) = shared.store().usage();
    let mut objects = Objects {
        count: 0,
        memory_bytes,
        limit_bytes: shared.store().limit(),
        spilled_objects,
        spilled_bytes,
        by_state: BTreeMap::new(),
    };
    for object in &store.objects {
        objects.count += 1;
        let entry = objects
            .by_state
            .entry(format!("{:?}", object.state).to_uppercase())
            .or_default();
        entry.0 += 1;
        entry.1 += object.size.unwrap_or(0);
    }
    let placement_groups = state::placement_groups()
        .into_iter()
        .map(|g| GroupRow {
            id: g.id,
            name: g.name,
            strategy: format!("{:?}", g.strategy),
            state: format!("{:?}", g.state).to_uppercase(),
            bundles: g.bundles,
        })
        .collect();
    let ended = timeline::ended(id);
    let skip = ended.len().saturating_sub(RUNS);
    let timeline = ended
        .into_iter()
        .skip(skip)
        .filter(|e| e.kind != Kind::StreamItem && e.skipped.is_none())
        .map(|e| Run {
            label: e.label(),
            start: e.started.as_secs_f64(),
            duration: e.duration.as_secs_f64(),
            failed: e.failed,
        })
        .collect();
    Snapshot {
        runtime: id,
        now: timeline::since_start(timeline::now()).as_secs_f64(),
        tasks,
        actors,
        objects,
        placement_groups,
        timeline,
        rate,
    }
}

/// Every task and call of `runtime` finished so far (the sampler's reading).
pub(crate) fn finished(runtime: u32) -> u64 {
    timeline::totals(runtime)
        .iter()
        .map(|(_, totals)| totals.finished)
        .sum()
}

/// A row's kind: a method of an actor, or a task.
fn row_kind(of_actor: bool) -> &'static str {
    if of_actor {
        "actor_call"
    } else {
        "task"
    }
}

fn kind_name(kind: Kind) -> &'static str {
    row_kind(kind == Kind::ActorCall)
}
