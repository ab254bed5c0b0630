//! Remote tasks: submitting a function call whose arguments may be refs, and running it.
//!
//! `#[rustyray::remote]` expands to a [`TaskBuilder`]; it is also usable by hand:
//!
//! ```
//! use rustyray::{task::TaskBuilder, Config, ObjectRef, Runtime};
//!
//! let rt = Runtime::new(Config::default()).unwrap();
//! let _guard = rt.enter();
//!
//! fn add(a: i64, b: i64) -> ObjectRef<i64> {
//!     let mut task = TaskBuilder::new("add");
//!     let (a, b) = (task.arg(a), task.arg(b));
//!     task.spawn(move || Ok(a.get()? + b.get()?))
//! }
//!
//! let three = add(1, 2);
//! let thirteen = {
//!     let mut task = TaskBuilder::new("add");
//!     let (a, b) = (task.arg(&three), task.arg(10));
//!     task.spawn(move || Ok(a.get()? + b.get()?))
//! };
//! assert_eq!(rustyray::get(&thirteen).unwrap(), 13);
//! ```
//!
//! # Design
//!
//! Submitting creates the result's pending entry and returns its ref at once. If any argument is
//! a ref still pending, a `Gate` subscribes to each such object and counts them down; the last
//! one to resolve hands the task to the scheduler, so no thread waits for dependencies. If any
//! dependency failed, the task never runs and its result fails with that same error.
//!
//! Once the scheduler grants resources, a sync body runs on the CPU pool and an async body on
//! tokio, each inside its lease so that waits within it lend its CPUs back. Errors and panics are
//! caught; `max_retries` re-runs the body after a panic (and after an `Err` with
//! `retry_exceptions`), and the result fails only after the last try.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;

use crate::call_args::CallArgs;
pub use crate::call_args::{ArgSlot, IntoArg};
use crate::object_ref::ObjectRef;
use crate::object_store::{Object, Value};
use crate::runtime::{self};
use crate::stream::Producer;
pub use crate::stream::StreamSink;

mod control;
mod gate;
mod job;
pub(crate) mod returns;

pub(crate) use control::{Phase, TaskControl};
pub(crate) use gate::Gate;
pub(crate) use job::Body;
pub(crate) use job::Job;
use job::{AsyncBody, SyncBody};

/// Per-call options of a task: resources, retries and a display name.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskOptions {
    pub(crate) num_cpus: f64,
    pub(crate) num_gpus: f64,
    pub(crate) max_retries: u32,
    pub(crate) retry_exceptions: bool,
    /// The options most calls leave unset, boxed: the options move with every call, and a
    /// small struct moves in registers where a large one is copied by `memcpy`.
    pub(crate) rare: Option<Box<RareOptions>>,
}

/// The per-call options most calls leave unset.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct RareOptions {
    pub(crate) resources: Vec<(String, f64)>,
    pub(crate) name: Option<String>,
    pub(crate) backpressure: Option<usize>,
    pub(crate) placement: Option<crate::placement_group::Placement>,
    /// `num_returns(n)` set per call on a function returning a `Vec`: its result comes back
    /// as `n` objects.
    pub(crate) num_returns: Option<u32>,
}

impl Default for TaskOptions {
    /// One CPU, no GPU, no retries.
    fn default() -> Self {
        TaskOptions {
            num_cpus: 1.0,
            num_gpus: 0.0,
            max_retries: 0,
            retry_exceptions: false,
            rare: None,
        }
    }
}

static NO_RARE_OPTIONS: RareOptions = RareOptions {
    resources: Vec::new(),
    name: None,
    backpressure: None,
    placement: None,
    num_returns: None,
};

impl TaskOptions {
    /// The options most calls leave unset.
    pub(crate) fn rare(&self) -> &RareOptions {
        self.rare.as_deref().unwrap_or(&NO_RARE_OPTIONS)
    }

    fn rare_mut(&mut self) -> &mut RareOptions {
        self.rare.get_or_insert_with(Default::default)
    }
}

impl TaskOptions {
    crate::task_option_methods!(define);

    /// For a streaming call: the producer waits while `n` of its items are unconsumed (Ray's
    /// `_generator_backpressure_num_objects`). Default: no limit. `0` counts as 1.
    pub fn backpressure(mut self, n: usize) -> Self {
        self.rare_mut().backpressure = Some(n.max(1));
        self
    }

    /// The result (a `Vec`) comes back as `n` objects, one per element: what the generated
    /// `num_returns(n)` of a function returning a `Vec` sets.
    #[doc(hidden)]
    pub fn dynamic_returns(mut self, n: usize) -> Self {
        self.rare_mut().num_returns = Some(u32::try_from(n).unwrap_or(u32::MAX));
        self
    }
}

/// A boxed future that a task or actor body returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds and submits one task: its options, its arguments, then its body.
///
/// See the [module documentation](self) for an example.
#[must_use = "a task runs only once `spawn` or `spawn_async` is called"]
pub struct TaskBuilder {
    pub(crate) function: Cow<'static, str>,
    pub(crate) options: TaskOptions,
    pub(crate) args: CallArgs,
}

impl std::fmt::Debug for TaskBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("function", &self.function)
            .field("registered", &self.args.registered)
            .field("options", &self.options)
            .field("deps", &self.args.deps)
            .finish_non_exhaustive()
    }
}

impl TaskBuilder {
    /// A task of `function` (its name in errors and, later, in the timeline) with default
    /// options.
    pub fn new(function: impl Into<Cow<'static, str>>) -> TaskBuilder {
        TaskBuilder {
            function: function.into(),
            options: TaskOptions::default(),
            args: CallArgs::new(),
        }
    }

    /// The function's id in the [registry](crate::registry) (what `#[rustyray::remote]`
    /// passes). Only a registered function can run on the `ray` backend.
    #[doc(hidden)]
    pub fn registered(mut self, id: &'static str) -> Self {
        self.args.registered = Some(id);
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: TaskOptions) -> Self {
        self.options = options;
        self
    }

    crate::task_option_methods!(builder);

    /// For [`spawn_stream`](Self::spawn_stream): the producer waits while `n` items are
    /// unconsumed.
    pub fn backpressure(mut self, n: usize) -> Self {
        self.options = self.options.backpressure(n);
        self
    }

    /// Adds an argument (a value or a ref) and returns the slot to read it from in the body.
    #[inline]
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg(arg)
    }

    /// Adds an argument the body only borrows or shares (read it with
    /// [`ArgSlot::shared`]): a value passed is moved into an `Arc` once, a ref is read as the
    /// stored value itself; neither is ever copied.
    pub fn arg_shared<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg_shared(arg)
    }

    /// Submits the task with a synchronous body, run on the CPU pool. Returns its result's ref
    /// at once.
    ///
    /// The body may run more than once when retries are enabled, hence `Fn`.
    pub fn spawn<R, F>(self, body: F) -> ObjectRef<R>
    where
        R: Value,
        F: Fn() -> anyhow::Result<R> + Send + Sync + 'static,
    {
        self.submit(SyncBody(move || body().map(Object::new)))
    }

    /// Submits the task with an asynchronous body, run on tokio. `body` makes the future (once
    /// per try). Returns its result's ref at once.
    pub fn spawn_async<R, F, Fut>(self, body: F) -> ObjectRef<R>
    where
        R: Value,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
    {
        self.submit(AsyncBody(move || body().map(|r| r.map(Object::new))))
    }

    /// Submits a streaming task: `body` hands its items to the [`StreamSink`] it is given
    /// (once per try), and each becomes an object of its own at once. Returns the stream of
    /// their refs at once. An `Err` from the body fails the try (retried as `retry_exceptions`
    /// says) and, after the last try, ends the stream with a failed ref. See
    /// [`ObjectRefStream`](crate::ObjectRefStream).
    ///
    /// ```
    /// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
    /// # let _guard = rt.enter();
    /// let task = rustyray::task::TaskBuilder::new("letters");
    /// let letters = task.spawn_stream(|mut sink| {
    ///     for c in "abc".chars() {
    ///         if !sink.send(c)? {
    ///             break; // the stream was dropped
    ///         }
    ///     }
    ///     Ok(())
    /// });
    /// let got: Vec<char> = letters.map(|r| rustyray::get(&r).unwrap()).collect();
    /// assert_eq!(got, ['a', 'b', 'c']);
    /// ```
    pub fn spawn_stream<T, F>(self, body: F) -> crate::ObjectRefStream<T>
    where
        T: Value,
        F: Fn(StreamSink<T>) -> anyhow::Result<()> + Send + Sync + 'static,
    {
        self.submit_stream(|stream, task| {
            task.spawn(move || body(StreamSink::new(Arc::clone(&stream))))
        })
    }

    /// [`spawn_stream`](Self::spawn_stream) for an async producer, run on tokio.
    pub fn spawn_stream_async<T, F, Fut>(self, body: F) -> crate::ObjectRefStream<T>
    where
        T: Value,
        F: Fn(StreamSink<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.submit_stream(|stream, task| {
            task.spawn_async(move || body(StreamSink::new(Arc::clone(&stream))))
        })
    }

    /// Makes the stream and submits its producer: with `spawn` when it runs in this process;
    /// else by its registered id, with the stream's feed as its last argument.
    fn submit_stream<T: Value>(
        mut self,
        spawn: impl FnOnce(Arc<crate::stream::Stream<T>>, TaskBuilder) -> ObjectRef<()>,
    ) -> crate::ObjectRefStream<T> {
        let function: Cow<'static, str> = match &self.options.rare().name {
            Some(name) => name.clone().into(),
            None => self.function.clone(),
        };
        let backpressure = self.options.rare().backpressure;
        crate::stream::submit(function, backpressure, |producer| match producer {
            Producer::Here(stream) => spawn(stream, self),
            Producer::Elsewhere(feed) => {
                let _feed = self.arg(feed);
                self.spawn(crate::stream::runs_elsewhere)
            }
        })
    }

    fn submit<R, B: Body>(self, body: B) -> ObjectRef<R> {
        let shared = runtime::current();
        ObjectRef::from_new_cell(shared.backend().submit(&shared, self, body))
    }
}
