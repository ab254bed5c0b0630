//! The library's one error type.
//!
//! Every fallible call in RustyRay returns [`Result<T>`](crate::Result), whose error is
//! [`Error`]. Its variants are meant to be matched: a task that failed, an actor that died, a
//! cancelled task, a full object store, a resource request the runtime can never meet, a timeout,
//! a runtime that was shut down, a serialization problem or a type mismatch.
//!
//! Errors are `Clone`: one failed task fails every task downstream of it, and each of them hands
//! the same error to its caller.

use std::fmt;
use std::time::Duration;

/// The result type of every fallible RustyRay call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in RustyRay.
///
/// ```
/// use rustyray::{Error, Runtime, Config};
///
/// let rt = Runtime::new(Config::default().num_cpus(1)).unwrap();
/// let _guard = rt.enter();
/// let failing = rustyray::task::TaskBuilder::new("parse").spawn(|| -> anyhow::Result<i32> {
///     Ok("x".parse::<i32>()?)
/// });
/// match rustyray::get(&failing) {
///     Err(Error::TaskFailed { function, message, .. }) => {
///         assert_eq!(function, "parse");
///         assert!(message.contains("invalid digit"));
///     }
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task or actor method returned an error or panicked. Tasks downstream of it fail with the
    /// same error, so `function` always names the function that failed first.
    #[error("task `{function}` failed: {message}{}", Causes(causes))]
    TaskFailed {
        /// The name of the function (or `Actor::method`) that failed.
        function: String,
        /// The error's message, or `panicked at <file>:<line>:<column>: <payload>` for a panic.
        message: String,
        /// The error's sources, outermost first (from `std::error::Error::source` or anyhow's
        /// chain).
        causes: Vec<String>,
    },

    /// The actor's constructor failed, it panicked, or it was killed; calls to it fail with this
    /// at once.
    #[error("actor `{actor}` died: {reason}")]
    ActorDied {
        /// The actor's type (and name, for named actors).
        actor: String,
        /// Why it died.
        reason: String,
    },

    /// The task was cancelled before it produced a result.
    #[error("task `{function}` was cancelled")]
    Cancelled {
        /// The cancelled task's function.
        function: String,
    },

    /// The object store could not take an object, in memory or on disk. Nothing stored before
    /// is affected.
    #[error(
        "object store full: an object of {needed} bytes fits neither in memory ({used} of \
         {limit} bytes taken by objects in use) nor on disk: {reason}; drop ObjectRefs you no \
         longer need, or raise `Config::object_store_memory` or `Config::spill_limit`"
    )]
    ObjectStoreFull {
        /// Size of the object that did not fit, in bytes.
        needed: u64,
        /// Bytes of objects in memory when it was refused.
        used: u64,
        /// The memory budget in bytes (`object_store_memory`).
        limit: u64,
        /// Why the disk could not take it either.
        reason: String,
    },

    /// A task asked for more of a resource than this runtime has in total, so it could never run.
    #[error(
        "task `{function}` requests {requested} {resource} but the runtime has {available} in \
         total; lower the request or give the runtime more (`Config::{hint}`)",
        hint = resource_hint(resource)
    )]
    Infeasible {
        /// The task's function.
        function: String,
        /// The resource (`CPU`, `GPU` or a custom name).
        resource: String,
        /// The amount requested.
        requested: f64,
        /// The runtime's total amount of that resource.
        available: f64,
    },

    /// On a Ray cluster: a task or actor call needs resources that only nodes that died had,
    /// so it cannot run (Ray would keep it pending until such a node joins).
    #[error(
        "`{function}` cannot run: it needs {demand}, which no live node of the Ray cluster has \
         (the nodes that had it died); start a node with it, or lower the request"
    )]
    Unschedulable {
        /// The task, or the actor call (`Class::method`).
        function: String,
        /// What it needs, as `1 CPU, 1 gpu_box`.
        demand: String,
    },

    /// A placement group cannot be made (it could never be reserved here, or its name is
    /// taken), or a task placed in one cannot run (the group was removed, or the bundle is too
    /// small or does not exist).
    #[error("placement group {group}: {reason}")]
    PlacementGroup {
        /// The group's name (or number).
        group: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// A [`Queue`](crate::util::Queue) stayed full: `put_nowait`, or a `put` whose timeout ran
    /// out.
    #[error("the queue is full (it holds at most {capacity} items); take items out first, or wait longer")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },

    /// A [`Queue`](crate::util::Queue) stayed empty: `get_nowait`, or a `get` whose timeout ran
    /// out.
    #[error("the queue is empty; put items in first, or wait longer")]
    QueueEmpty,

    /// An object's value cannot be had any more: its spill file was cut short, changed or
    /// removed on disk. Only this object is affected; it fails the same way on every read.
    #[error("object {object} is lost: {reason}")]
    ObjectLost {
        /// The object's id.
        object: String,
        /// What is wrong, naming the file.
        reason: String,
    },

    /// A bounded wait ran out of time.
    #[error("timed out after {0:?} waiting for an object")]
    Timeout(Duration),

    /// The runtime this call needed has been shut down.
    #[error(
        "the RustyRay runtime has been shut down; call `rustyray::init` or build a new `Runtime`"
    )]
    RuntimeShutdown,

    /// A value could not be serialized or deserialized.
    #[error("serialization failed: {0}")]
    Serialization(String),

    /// An object was read as a type other than the one it was stored as.
    #[error("type mismatch: the object holds `{found}` but was read as `{expected}`")]
    TypeMismatch {
        /// The type asked for.
        expected: &'static str,
        /// The type stored.
        found: &'static str,
    },

    /// The object or actor is not known to the runtime in use (it belongs to another runtime,
    /// or its id was made up).
    #[error(
        "{what} not found in the current runtime; refs and handles are only valid in the runtime \
         that made them (enter it with `Runtime::enter`)"
    )]
    NotFound {
        /// What was looked up, with its id.
        what: String,
    },

    /// A configuration value or call argument was invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The Ray backend reported a failure that is none of the above (a lost object, a
    /// cluster that cannot be reached, a call Ray refused); the message is Ray's.
    #[error("the Ray backend failed: {message}")]
    Backend {
        /// Ray's message.
        message: String,
    },
}

impl Error {
    /// Builds a [`Error::TaskFailed`] for `function` out of any error, keeping its source chain.
    pub(crate) fn task_failed(function: &str, err: &anyhow::Error) -> Error {
        Error::TaskFailed {
            function: function.to_owned(),
            message: err.to_string(),
            causes: err.chain().skip(1).map(ToString::to_string).collect(),
        }
    }

    /// Builds a [`Error::TaskFailed`] for a panic, with the panic's message and, when the
    /// panic was raised in a body on this thread, where.
    pub(crate) fn panicked(function: &str, payload: &(dyn std::any::Any + Send)) -> Error {
        let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a non-string payload".to_owned()
        };
        let message = match crate::panics::take_location() {
            Some(location) => format!("panicked at {location}: {text}"),
            None => format!("panicked: {text}"),
        };
        Error::TaskFailed {
            function: function.to_owned(),
            message,
            causes: Vec::new(),
        }
    }
}

struct Causes<'a>(&'a [String]);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for cause in self.0 {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

fn resource_hint(resource: &str) -> String {
    match resource {
        "CPU" => "num_cpus".to_owned(),
        "GPU" => "num_gpus".to_owned(),
        other => format!("resource(\"{other}\", ..)"),
    }
}
