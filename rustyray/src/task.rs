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
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use futures_util::FutureExt;
use parking_lot::Mutex;
use tracing::Instrument;

pub use crate::call_args::{ArgSlot, IntoArg};
use crate::call_args::{CallArgs, Deps};
use crate::cpu_pool;
use crate::error::{Error, Result};
use crate::object_ref::{missing, ObjectRef};
use crate::object_store::{Cell, Dependent, Object, ObjectId, Producer, State, Value, Waiter};
use crate::runtime::{self, Shared};
use crate::scheduler::{self, Lease, Queued};
use crate::timeline;

/// Per-call options of a task: resources, retries and a display name.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskOptions {
    pub(crate) num_cpus: f64,
    pub(crate) num_gpus: f64,
    pub(crate) resources: Vec<(String, f64)>,
    pub(crate) max_retries: u32,
    pub(crate) retry_exceptions: bool,
    pub(crate) name: Option<String>,
}

impl Default for TaskOptions {
    /// One CPU, no GPU, no retries.
    fn default() -> Self {
        TaskOptions {
            num_cpus: 1.0,
            num_gpus: 0.0,
            resources: Vec::new(),
            max_retries: 0,
            retry_exceptions: false,
            name: None,
        }
    }
}

impl TaskOptions {
    /// CPUs held while the task runs (default 1; fractions allowed).
    pub fn num_cpus(mut self, n: f64) -> Self {
        self.num_cpus = n;
        self
    }

    /// GPUs held while the task runs (default 0).
    pub fn num_gpus(mut self, n: f64) -> Self {
        self.num_gpus = n;
        self
    }

    /// An amount of a custom resource held while the task runs (added to any set before).
    pub fn resource(mut self, name: impl Into<String>, amount: f64) -> Self {
        self.resources.push((name.into(), amount));
        self
    }

    /// How many times to re-run the task after a panic (default 0).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Whether an `Err` result is retried too, not only a panic (default false).
    pub fn retry_exceptions(mut self, yes: bool) -> Self {
        self.retry_exceptions = yes;
        self
    }

    /// A name for the call, shown instead of the function's in errors.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A boxed future that a task or actor body returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A task's body and how it runs. The job is generic over it, so the body, its future and the
/// job share one allocation (the scheduler's queue entry, then tokio's task).
pub(crate) trait Body: Send + Sync + Sized + 'static {
    /// Runs the job on its executor, holding `lease`.
    fn launch(job: Job<Self>, lease: Arc<Lease>, tokio: &tokio::runtime::Handle);
}

/// A synchronous body, run on the CPU pool.
struct SyncBody<F>(F);

/// An asynchronous body, run on tokio: it makes the future, once per try.
struct AsyncBody<F>(F);

/// Builds and submits one task: its options, its arguments, then its body.
///
/// See the [module documentation](self) for an example.
#[must_use = "a task runs only once `spawn` or `spawn_async` is called"]
pub struct TaskBuilder {
    function: Cow<'static, str>,
    options: TaskOptions,
    args: CallArgs,
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

    /// CPUs held while the task runs (default 1; fractions allowed).
    pub fn num_cpus(self, n: f64) -> Self {
        self.map_options(|o| o.num_cpus(n))
    }

    /// GPUs held while the task runs (default 0).
    pub fn num_gpus(self, n: f64) -> Self {
        self.map_options(|o| o.num_gpus(n))
    }

    /// An amount of a custom resource held while the task runs.
    pub fn resource(self, name: impl Into<String>, amount: f64) -> Self {
        self.map_options(|o| o.resource(name, amount))
    }

    /// How many times to re-run the task after a panic (default 0).
    pub fn max_retries(self, n: u32) -> Self {
        self.map_options(|o| o.max_retries(n))
    }

    /// Whether an `Err` result is retried too, not only a panic (default false).
    pub fn retry_exceptions(self, yes: bool) -> Self {
        self.map_options(|o| o.retry_exceptions(yes))
    }

    /// A name for this call, shown instead of the function's in errors.
    pub fn name(self, name: impl Into<String>) -> Self {
        self.map_options(|o| o.name(name))
    }

    fn map_options(mut self, f: impl FnOnce(TaskOptions) -> TaskOptions) -> Self {
        self.options = f(self.options);
        self
    }

    /// Adds an argument (a value or a ref) and returns the slot to read it from in the body.
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg(arg)
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

    fn submit<R, B: Body>(self, body: B) -> ObjectRef<R> {
        let shared = runtime::current();
        ObjectRef::adopt(shared.backend.submit(&shared, self, body))
    }

    /// Sends the task to Ray by its registered id (see `runtime::Backend::submit`).
    #[cfg(feature = "ray")]
    pub(crate) fn submit_to_ray(self, shared: &Shared, ray: &crate::ray::Backend) -> Arc<Cell> {
        match self.args.for_ray("task", &self.function) {
            Ok((id, wire)) => ray.submit(shared, wire, id, &self.function, &self.options),
            Err(error) => shared.store.insert_failed(error),
        }
    }

    /// Submits the task to this process's scheduler (see `runtime::Backend::submit`).
    pub(crate) fn submit_here<B: Body>(self, shared: &Arc<Shared>, body: B) -> Arc<Cell> {
        let function: Cow<'static, str> = match self.options.name.clone() {
            Some(name) => name.into(),
            None => self.function,
        };
        let demand = shared.check().and_then(|()| {
            let o = &self.options;
            shared
                .scheduler
                .demand(&function, o.num_cpus, o.num_gpus, &o.resources)
        });
        let demand = match demand {
            Ok(demand) => demand,
            Err(error) => return shared.store.insert_failed(error),
        };
        let control = Arc::new(TaskControl {
            function,
            cancelled: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            phase: AtomicU8::new(PHASE_WAITING),
            demand: (self.options.num_cpus, self.options.num_gpus),
        });
        let out = shared.store.insert_pending(Some(Arc::clone(&control) as _));
        let mut deps = self.args.deps;
        deps.keep_owned_by(shared.id);
        tracing::trace!(
            target: "rustyray::task",
            function = %control.function,
            object = %out.id(),
            dependencies = deps.cells.len(),
            "submitted"
        );
        // With arguments to wait for, the gate marks the task queued when they are ready.
        let gate_control = if deps.is_empty() {
            control.set_phase(PHASE_QUEUED);
            None
        } else {
            Some(Arc::clone(&control))
        };
        let job = Job {
            shared: Arc::clone(shared),
            control,
            out: Arc::clone(&out),
            max_retries: self.options.max_retries,
            retry_exceptions: self.options.retry_exceptions,
            body,
        };
        let queued = Queued {
            demand,
            start: Box::new(move |lease| job.start(lease)),
        };
        Gate::open_when_ready(shared, deps, &out, queued, gate_control);
        if shared.is_shut_down() {
            // Shutdown raced with this submission: make sure the result does not stay pending.
            out.complete(Err(Error::RuntimeShutdown));
        }
        out
    }
}

/// Counts down a task's pending dependencies and schedules it (or fails it) after the last.
pub(crate) struct Gate {
    remaining: AtomicUsize,
    failure: Mutex<Option<Error>>,
    /// The task, and its result to fail instead if an argument failed; taken when the gate
    /// opens, so nothing of the task stays behind in the arguments' waiter lists.
    queued: Mutex<Option<(Queued, Arc<Cell>)>>,
    shared: Arc<Shared>,
    control: Arc<TaskControl>,
}

impl Gate {
    /// Hands `queued` to the scheduler once every object in `deps` is resolved; if one failed
    /// (or does not exist), fails `out` with its error instead.
    pub(crate) fn open_when_ready(
        shared: &Arc<Shared>,
        deps: Deps,
        out: &Arc<Cell>,
        queued: Queued,
        control: Option<Arc<TaskControl>>,
    ) {
        let Some(control) = control.filter(|_| !deps.is_empty()) else {
            shared.scheduler.submit(queued);
            return;
        };
        // One extra count, held until every subscription is made, so the gate cannot open early.
        let gate = Arc::new(Gate {
            remaining: AtomicUsize::new(deps.cells.len() + 1),
            failure: Mutex::new(deps.missing.map(missing)),
            queued: Mutex::new(Some((queued, Arc::clone(out)))),
            shared: Arc::clone(shared),
            control,
        });
        for dep in deps.cells {
            let subscribed = dep.subscribe(Waiter::Dependent(Arc::clone(&gate) as _));
            if let Some(state) = subscribed {
                gate.arrive(&state);
            }
        }
        gate.arrive_done();
    }

    fn arrive_done(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let queued = self.queued.lock().take();
        let failure = self.failure.lock().take();
        match (queued, failure) {
            (Some((queued, out)), Some(error)) => {
                drop(queued);
                timeline::record_skipped(
                    &self.control.function,
                    out.id(),
                    timeline::Skipped::DependencyFailed,
                );
                out.finish(Err(error));
            }
            (Some((queued, out)), None) => {
                drop(out);
                self.control.set_phase(PHASE_QUEUED);
                self.shared.scheduler.submit(queued)
            }
            (None, _) => {}
        }
    }
}

impl Dependent for Gate {
    fn arrive(&self, state: &State) {
        if let Some(error) = state.failure() {
            self.failure.lock().get_or_insert(error);
        }
        self.arrive_done();
    }
}

/// How to stop one task: its name (for `Error::Cancelled`), whether it was cancelled, and the
/// waker that stops its async body when it is cancelled.
pub(crate) struct TaskControl {
    function: Cow<'static, str>,
    cancelled: AtomicBool,
    /// Woken by a cancellation, so a running async body is dropped at its next `.await`.
    waker: AtomicWaker,
    /// Where the task is: one of the `PHASE_*` values (read by `rustyray::state`).
    phase: AtomicU8,
    /// The CPUs and GPUs it asked for.
    demand: (f64, f64),
}

impl Producer for TaskControl {
    fn function(&self) -> &str {
        &self.function
    }

    fn cancelled(&self, object: ObjectId) {
        if self.phase() != PHASE_RUNNING {
            // It never runs, so it leaves no run in the timeline: record the cancellation.
            timeline::record_skipped(self.function_name(), object, timeline::Skipped::Cancelled);
        }
        self.cancel();
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Waiting for its arguments.
pub(crate) const PHASE_WAITING: u8 = 0;
/// Arguments ready; waiting for resources.
pub(crate) const PHASE_QUEUED: u8 = 1;
/// Running.
pub(crate) const PHASE_RUNNING: u8 = 2;

impl TaskControl {
    /// The name it runs under.
    pub(crate) fn function_name(&self) -> &Cow<'static, str> {
        &self.function
    }

    /// Where the task is (a `PHASE_*` value).
    pub(crate) fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    /// The CPUs and GPUs the task asked for.
    pub(crate) fn demand(&self) -> (f64, f64) {
        self.demand
    }

    fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    pub(crate) fn function(&self) -> &str {
        &self.function
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Marks the task cancelled and stops its async body if it is running (at its next
    /// `.await`). A sync body cannot be interrupted in-process: it runs to its end and its
    /// result is discarded.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Polls an async body unless the task was cancelled, in which case it is `Ready(None)`
    /// and the body is dropped by the caller.
    fn poll_unless_cancelled<F: Future>(
        &self,
        cx: &mut Context<'_>,
        body: Pin<&mut F>,
    ) -> Poll<Option<F::Output>> {
        if self.is_cancelled() {
            return Poll::Ready(None);
        }
        match body.poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => {
                // Registered before looking again, so a cancellation in between is not missed.
                self.waker.register(cx.waker());
                if self.is_cancelled() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

/// A task whose dependencies are ready, waiting for (or holding) its resources.
pub(crate) struct Job<B> {
    shared: Arc<Shared>,
    control: Arc<TaskControl>,
    out: Arc<Cell>,
    max_retries: u32,
    retry_exceptions: bool,
    body: B,
}

impl<F> Body for SyncBody<F>
where
    F: Fn() -> anyhow::Result<Object> + Send + Sync + 'static,
{
    fn launch(job: Job<Self>, lease: Arc<Lease>, _tokio: &tokio::runtime::Handle) {
        let pool = job.shared.pool.clone();
        pool.spawn(Box::new(move || {
            let span = job.span();
            let _running = span.enter();
            let started = timeline::now();
            let outcome = scheduler::with_sync_lease(&lease, || job.run_sync());
            job.record(started, false, &outcome);
            // Giving the CPU back and storing the result both make tasks ready; while
            // finishing, this thread keeps the first of them and runs it next.
            cpu_pool::finishing(|| {
                drop(lease);
                job.finish(outcome);
            });
        }));
    }
}

impl<F, Fut> Body for AsyncBody<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Object>> + Send + 'static,
{
    fn launch(job: Job<Self>, lease: Arc<Lease>, tokio: &tokio::runtime::Handle) {
        let span = job.span();
        let run = async move {
            let started = timeline::now();
            let outcome = {
                let control = &job.control;
                let body = scheduler::with_async_lease(Arc::clone(&lease), job.run_async());
                let mut body = std::pin::pin!(body);
                std::future::poll_fn(|cx| control.poll_unless_cancelled(cx, body.as_mut())).await
            };
            // Giving the CPU back and storing the result both make tasks ready; the first
            // async one of them runs next in this tokio task instead of a new one.
            finishing_async(move || {
                drop(lease);
                match outcome {
                    Some(outcome) => {
                        job.record(started, true, &outcome);
                        job.finish(outcome);
                    }
                    None => drop(job), // cancelled: its result already failed
                }
            })
        }
        .instrument(span);
        if let Some(run) = keep_as_next(run) {
            tokio.spawn(run_async_jobs(run));
        }
    }
}

/// An async job's whole run (body, timeline entry, result), as the next one a tokio task runs.
/// It returns the next async job it made ready while finishing, if it kept one.
struct NextAsync(Pin<Box<dyn Future<Output = Option<NextAsync>> + Send>>);

/// How many async jobs one tokio task runs in a row before it yields to the others.
const ASYNC_JOBS_BEFORE_YIELD: u32 = 32;

thread_local! {
    /// Set (to `Some`) while an async job finishes on this thread: the first async job this
    /// makes ready is kept here, to run next in the same tokio task.
    static NEXT_ASYNC: RefCell<Option<Option<NextAsync>>> = const { RefCell::new(None) };
}

/// Runs `finish` (giving back the lease, storing the result) and returns the async job it made
/// ready and kept, if any.
fn finishing_async(finish: impl FnOnce()) -> Option<NextAsync> {
    let outer = NEXT_ASYNC.with(|slot| slot.replace(Some(None)));
    finish();
    NEXT_ASYNC.with(|slot| slot.replace(outer)).flatten()
}

/// Keeps `run` as the next job of the async job finishing on this thread, if one is and has
/// kept none yet; gives it back otherwise.
fn keep_as_next<R>(run: R) -> Option<R>
where
    R: Future<Output = Option<NextAsync>> + Send + 'static,
{
    NEXT_ASYNC.with(|slot| match &mut *slot.borrow_mut() {
        Some(next @ None) => {
            *next = Some(NextAsync(Box::pin(run)));
            None
        }
        _ => Some(run),
    })
}

/// One tokio task running async jobs: `first`, then each job the previous one kept.
async fn run_async_jobs(first: impl Future<Output = Option<NextAsync>>) {
    let mut next = first.await;
    let mut in_a_row = 0;
    while let Some(NextAsync(run)) = next {
        in_a_row += 1;
        if in_a_row % ASYNC_JOBS_BEFORE_YIELD == 0 {
            tokio::task::yield_now().await;
        }
        next = run.await;
    }
}

impl<B: Body> Job<B> {
    /// Hands the job to its executor with the resources it was granted.
    fn start(self, lease: Lease) {
        let Some(handle) = self.shared.handle().cloned() else {
            return; // the runtime never started; its objects already failed
        };
        if self.control.is_cancelled() {
            return; // cancelled while waiting: the lease goes back unused
        }
        tracing::trace!(
            target: "rustyray::task",
            function = %self.control.function,
            object = %self.out.id(),
            "scheduled"
        );
        self.control.set_phase(PHASE_RUNNING);
        B::launch(self, Arc::new(lease), &handle);
    }
}

impl<B> Job<B> {
    /// The tracing span of the task's run (free when no subscriber is installed).
    fn span(&self) -> tracing::Span {
        tracing::debug_span!(
            target: "rustyray::task",
            "run",
            function = %self.control.function,
            object = %self.out.id(),
        )
    }

    /// Enters the finished run in the timeline and in the trace.
    fn record(&self, started: timeline::Stamp, asynchronous: bool, outcome: &Result<Object>) {
        tracing::trace!(target: "rustyray::task", failed = outcome.is_err(), "finished");
        timeline::record(timeline::Finished {
            kind: timeline::Kind::Task,
            name: &self.control.function,
            actor: None,
            asynchronous,
            started,
            ended: timeline::now(),
            failed: outcome.is_err(),
            skipped: None,
            object: self.out.id(),
        });
    }

    /// Stores the result. The body goes first: its argument refs are released before anyone
    /// waiting for the result wakes up.
    fn finish(self, outcome: Result<Object>) {
        let Job { out, body, .. } = self;
        drop(body);
        out.finish(outcome);
    }

    /// The final result of a try, or `None` if the task should run again.
    fn retry_or_finish(
        &self,
        outcome: std::thread::Result<anyhow::Result<Object>>,
        tries: &mut u32,
    ) -> Option<Result<Object>> {
        let (error, retryable) = match outcome {
            Ok(Ok(object)) => return Some(Ok(object)),
            Ok(Err(error)) => (
                Error::task_failed(self.control.function(), &error),
                self.retry_exceptions,
            ),
            Err(payload) => (Error::panicked(self.control.function(), &*payload), true),
        };
        let stopped = self.shared.is_shut_down() || self.control.is_cancelled();
        if retryable && *tries < self.max_retries && !stopped {
            *tries += 1;
            tracing::debug!(target: "rustyray::task", %error, attempt = *tries, "retrying");
            return None;
        }
        // Logged once, here where it arises; the tasks it fails downstream do not log it again.
        tracing::warn!(target: "rustyray::task", %error, "task failed");
        Some(Err(error))
    }
}

impl<F> Job<SyncBody<F>>
where
    F: Fn() -> anyhow::Result<Object> + Send + Sync + 'static,
{
    fn run_sync(&self) -> Result<Object> {
        let mut tries = 0;
        loop {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(&self.body.0));
            if let Some(result) = self.retry_or_finish(outcome, &mut tries) {
                return result;
            }
        }
    }
}

impl<F, Fut> Job<AsyncBody<F>>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Object>> + Send + 'static,
{
    async fn run_async(&self) -> Result<Object> {
        let mut tries = 0;
        loop {
            // Made inside the guarded block: a panic while making the future is caught too.
            let outcome = AssertUnwindSafe(async { (self.body.0)().await })
                .catch_unwind()
                .await;
            if let Some(result) = self.retry_or_finish(outcome, &mut tries) {
                return result;
            }
        }
    }
}
