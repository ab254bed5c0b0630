//! The state API: what the current runtime is doing, like `ray list tasks`, `ray list actors`,
//! `ray memory` and `ray summary tasks`.
//!
//! Tasks still pending are read from the object store (each pending result knows its task and
//! where it is: waiting for arguments, queued for resources, or running). Tasks and actor calls
//! that ended are read from the timeline's rings, so the most recent ones are kept (see
//! [`EVENTS_PER_THREAD`](crate::EVENTS_PER_THREAD)). Nothing is recorded for this API beyond
//! what the runtime keeps anyway.
//!
//! ```
//! use rustyray::state::{self, TaskFilter, TaskState};
//! # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
//! # let _guard = rt.enter();
//! let mut task = rustyray::task::TaskBuilder::new("answer");
//! let r = task.spawn(|| Ok(42));
//! rustyray::get(&r)?;
//! let done = state::tasks(&TaskFilter::default().function("answer"));
//! assert_eq!(done[0].state, TaskState::Finished);
//! println!("{}", state::summary());
//! # Ok::<(), rustyray::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::actor::ActorId;
use crate::object_ref::ObjectId;
use crate::runtime;
use crate::task::{Phase, TaskControl};
use crate::timeline::{self, Kind, Skipped};

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    /// Waiting for the objects it takes as arguments.
    WaitingForDependencies,
    /// Arguments ready; waiting for its CPUs, GPUs or custom resources.
    Queued,
    /// Running.
    Running,
    /// Ran and stored its result.
    Finished,
    /// Failed: it ran and returned an error or panicked, or one of its arguments failed (then
    /// it has no start time or duration).
    Failed,
    /// Cancelled before it ran.
    Cancelled,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::WaitingForDependencies => "WAITING_FOR_DEPENDENCIES",
            TaskState::Queued => "QUEUED",
            TaskState::Running => "RUNNING",
            TaskState::Finished => "FINISHED",
            TaskState::Failed => "FAILED",
            TaskState::Cancelled => "CANCELLED",
        })
    }
}

/// One task, or one actor call (then `actor` is set).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's result object.
    pub object: ObjectId,
    /// The function's (or method's) name, or the name given with `.name(..)`.
    pub function: String,
    /// The actor's class, for an actor call.
    pub actor: Option<String>,
    /// Where it is.
    pub state: TaskState,
    /// When it started running, counted from the process's first recorded run (ended ones).
    pub started: Option<Duration>,
    /// How long it ran (ended ones).
    pub duration: Option<Duration>,
    /// The CPUs and GPUs it asked for (pending tasks).
    pub resources: Option<(f64, f64)>,
}

/// Which tasks [`tasks`] returns: all by default.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    state: Option<TaskState>,
    function: Option<String>,
}

impl TaskFilter {
    /// Only tasks in `state`.
    pub fn state(mut self, state: TaskState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only tasks of `function` (as named in [`TaskInfo::function`]).
    pub fn function(mut self, function: impl Into<String>) -> Self {
        self.function = Some(function.into());
        self
    }

    fn keeps(&self, task: &TaskInfo) -> bool {
        self.state.is_none_or(|s| s == task.state)
            && self.function.as_ref().is_none_or(|f| *f == task.function)
    }
}

/// The current runtime's tasks and actor calls: pending ones, then recent ended ones, each
/// group oldest first.
pub fn tasks(filter: &TaskFilter) -> Vec<TaskInfo> {
    let shared = runtime::current();
    let mut out = live_tasks(&shared.store().snapshot().producers);
    let ended = timeline::ended(shared.id()).into_iter();
    out.extend(
        ended
            .filter(|e| e.kind != Kind::StreamItem)
            .map(|e| TaskInfo {
                object: e.object,
                function: e.name,
                actor: if e.kind == Kind::ActorCall {
                    e.actor
                } else {
                    None
                },
                state: if e.skipped == Some(Skipped::Cancelled) {
                    TaskState::Cancelled
                } else if e.failed {
                    TaskState::Failed
                } else {
                    TaskState::Finished
                },
                started: e.skipped.is_none().then_some(e.started),
                duration: e.skipped.is_none().then_some(e.duration),
                resources: None,
            }),
    );
    out.retain(|t| filter.keeps(t));
    out
}

/// The tasks still to finish among a store snapshot's `producers`, in id order.
pub(crate) fn live_tasks(
    producers: &[(
        crate::object_store::ObjectId,
        std::sync::Arc<dyn crate::object_store::Producer>,
    )],
) -> Vec<TaskInfo> {
    let mut out: Vec<TaskInfo> = producers
        .iter()
        .filter_map(|(object, producer)| {
            let control = producer.as_any().downcast_ref::<TaskControl>()?;
            Some(TaskInfo {
                object: *object,
                function: control.function().to_owned(),
                actor: None,
                state: match control.phase() {
                    Phase::Running => TaskState::Running,
                    Phase::Queued => TaskState::Queued,
                    Phase::Waiting => TaskState::WaitingForDependencies,
                },
                started: None,
                duration: None,
                resources: Some(control.demand()),
            })
        })
        .collect();
    out.sort_by_key(|t| t.object);
    out
}

pub use crate::object_store::{ObjectInfo, ObjectState};
pub use crate::stream::StreamInfo;

/// The current runtime's placement groups still alive (pending or created), oldest first, with
/// their bundles (like `ray list placement-groups`).
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(2))?;
/// # let _guard = rt.enter();
/// let pg = rustyray::PlacementGroup::builder()
///     .bundle(rustyray::Bundle::new().cpus(1.0))
///     .create()?;
/// let groups = rustyray::state::placement_groups();
/// assert_eq!(groups[0].bundles, [vec![("CPU".to_string(), 1.0)]]);
/// assert_eq!(groups[0].state, rustyray::PlacementGroupState::Created);
/// # rustyray::remove_placement_group(&pg)?;
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn placement_groups() -> Vec<crate::PlacementGroupInfo> {
    let shared = runtime::current();
    shared.backend().groups()
}

/// The current runtime's live streams (those whose consumer or producer still exists), oldest
/// first: their producer, how many items it made, and how many wait unconsumed. The producer
/// itself is a task (or actor call) in [`tasks`].
///
/// ```
/// #[rustyray::remote(streaming)]
/// fn words() -> impl Iterator<Item = String> {
///     ["a", "b"].into_iter().map(String::from)
/// }
///
/// # fn main() -> rustyray::Result<()> {
/// # let rt = rustyray::Runtime::new(rustyray::Config::default())?;
/// # let _guard = rt.enter();
/// let stream = words::remote();
/// rustyray::get(&stream.completed())?; // the producer made both
/// let info = &rustyray::state::streams()[0];
/// assert_eq!((info.function.as_str(), info.delivered, info.unconsumed), ("words", 2, 2));
/// # Ok(())
/// # }
/// ```
pub fn streams() -> Vec<StreamInfo> {
    runtime::current().streams().infos()
}

/// The current runtime's objects, in id order (like `ray memory`).
pub fn objects() -> Vec<ObjectInfo> {
    runtime::current().store().snapshot().objects
}

/// One actor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ActorInfo {
    /// Its id.
    pub id: ActorId,
    /// Its class (and name, for a named actor).
    pub class: String,
    /// Alive, or why it died.
    pub state: ActorState,
    /// How many handles refer to it.
    pub handles: usize,
    /// Calls waiting in its mailbox, as of the last time it took one (0 on the Ray backend,
    /// which keeps the queue itself).
    pub queued_calls: usize,
}

/// Whether an actor is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorState {
    /// Not created yet: waiting for its constructor's arguments, for the resources it holds
    /// for life (a warning says so after a few seconds), or running its constructor. Calls
    /// sent to it wait. Ray's `PENDING_CREATION`.
    PendingCreation,
    /// Running, or ready for calls.
    Alive,
    /// Dead, with the reason.
    Dead(String),
}

/// The current runtime's actors, in id order.
pub fn actors() -> Vec<ActorInfo> {
    let shared = runtime::current();
    let mut actors = shared.actors().describe();
    actors.sort_by_key(|a| a.id);
    actors
}

/// Counts for [`summary`], like `ray summary tasks` and the totals of `ray memory`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Summary {
    /// Per function (actor calls as `Class.method`), how many tasks are in each state.
    pub tasks: BTreeMap<String, BTreeMap<TaskState, usize>>,
    /// Per object state, how many objects and how many bytes.
    pub objects: BTreeMap<String, (usize, u64)>,
    /// Actors alive and dead.
    pub actors: (usize, usize),
    /// Live streams, and the items their producers made.
    pub streams: (usize, u64),
}

/// A summary of the current runtime's tasks, objects and actors. Its `Display` is a table.
pub fn summary() -> Summary {
    let mut summary = Summary::default();
    for task in tasks(&TaskFilter::default()) {
        let name = match &task.actor {
            Some(actor) => format!("{actor}.{}", task.function),
            None => task.function,
        };
        *summary
            .tasks
            .entry(name)
            .or_default()
            .entry(task.state)
            .or_default() += 1;
    }
    for object in objects() {
        let entry = summary
            .objects
            .entry(format!("{:?}", object.state).to_uppercase())
            .or_default();
        entry.0 += 1;
        entry.1 += object.size.unwrap_or(0);
    }
    for stream in streams() {
        summary.streams.0 += 1;
        summary.streams.1 += stream.delivered;
    }
    for actor in actors() {
        match actor.state {
            ActorState::Alive | ActorState::PendingCreation => summary.actors.0 += 1,
            ActorState::Dead(_) => summary.actors.1 += 1,
        }
    }
    summary
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<40} {:<26} {:>8}", "FUNCTION", "STATE", "COUNT")?;
        for (function, states) in &self.tasks {
            for (state, count) in states {
                writeln!(f, "{function:<40} {:<26} {count:>8}", state.to_string())?;
            }
        }
        writeln!(f)?;
        writeln!(f, "{:<40} {:>8} {:>14}", "OBJECTS", "COUNT", "BYTES")?;
        for (state, (count, bytes)) in &self.objects {
            writeln!(f, "{state:<40} {count:>8} {bytes:>14}")?;
        }
        writeln!(f)?;
        writeln!(f, "ACTORS: {} alive, {} dead", self.actors.0, self.actors.1)?;
        write!(
            f,
            "STREAMS: {} live, {} items made",
            self.streams.0, self.streams.1
        )
    }
}
