//! Running a task: its body (sync on the CPU pool, async on tokio), retries, panics caught,
//! the result stored, and the next job a finishing one made ready.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tracing::Instrument;

use crate::call_args;
use crate::context::{self, NextAsync};
use crate::cpu_pool;
use crate::error::{Error, Result};
use crate::object_store::{Cell, Object};
use crate::panics;
use crate::runtime::RuntimeCore;
use crate::scheduler::{self, Lease};
use crate::timeline;

use super::{Phase, TaskControl};

/// A task's body and how it runs. The job is generic over it, so the body, its future and the
/// job share one allocation (the scheduler's queue entry, then tokio's task).
pub(crate) trait Body: Send + Sync + Sized + 'static {
    /// Runs the job on its executor, holding `lease`.
    fn launch(job: Job<Self>, lease: Arc<Lease>, tokio: &tokio::runtime::Handle);

    /// What the scheduler calls with the job's lease to start it (or with `None` to fail it
    /// without running: its placement group was removed).
    fn starter(job: Job<Self>) -> Box<dyn FnOnce(Option<Lease>) + Send> {
        Box::new(move |lease| match lease {
            Some(lease) => job.start(lease),
            None => job.finish(Err(scheduler::group_removed())),
        })
    }
}

/// A synchronous body, run on the CPU pool.
pub(crate) struct SyncBody<F>(pub(crate) F);

/// An asynchronous body, run on tokio: it makes the future, once per try.
pub(crate) struct AsyncBody<F>(pub(crate) F);

/// A task whose dependencies are ready, waiting for (or holding) its resources.
pub(crate) struct Job<B> {
    pub(crate) shared: Arc<RuntimeCore>,
    pub(crate) control: Arc<TaskControl>,
    pub(crate) out: Arc<Cell>,
    pub(crate) max_retries: u32,
    pub(crate) retry_exceptions: bool,
    pub(crate) body: B,
}

impl<F> Body for SyncBody<F>
where
    F: Fn() -> anyhow::Result<Object> + Send + Sync + 'static,
{
    /// A sync job's start inlined into the closure: the job moves once, into the pool's job.
    fn starter(job: Job<Self>) -> Box<dyn FnOnce(Option<Lease>) + Send> {
        Box::new(move |lease| match lease {
            Some(lease) => job.start_inlined(lease),
            None => job.finish(Err(scheduler::group_removed())),
        })
    }

    fn launch(job: Job<Self>, lease: Arc<Lease>, _tokio: &tokio::runtime::Handle) {
        let pool = job.shared.here().pool().clone();
        pool.spawn(Box::new(move || {
            let span = job.span();
            let _running = span.enter();
            let started = timeline::now();
            let outcome = scheduler::with_sync_lease(&lease, || job.run_sync());
            job.record(started, false, outcome.as_ref().err());
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
                        job.record(started, true, outcome.as_ref().err());
                        job.finish(outcome);
                    }
                    None => {
                        // Cancelled while it ran: its result already failed; the run, cut
                        // short, is still counted as finished (and failed).
                        let cancelled = Error::Cancelled {
                            function: job.control.function.to_string(),
                        };
                        job.record(started, true, Some(&cancelled));
                        drop(job)
                    }
                }
            })
        }
        .instrument(span);
        if let Some(run) = keep_as_next(run) {
            tokio.spawn(run_async_jobs(run));
        }
    }
}

/// How many async jobs one tokio task runs in a row before it yields to the others.
const ASYNC_JOBS_BEFORE_YIELD: u32 = 32;

/// Runs `finish` (giving back the lease, storing the result) and returns the async job it made
/// ready and kept, if any.
fn finishing_async(finish: impl FnOnce()) -> Option<NextAsync> {
    let outer = context::with(|cx| cx.next_async.replace(Some(None)));
    finish();
    context::with(|cx| cx.next_async.replace(outer)).flatten()
}

/// Keeps `run` as the next job of the async job finishing on this thread, if one is and has
/// kept none yet; gives it back otherwise.
fn keep_as_next<R>(run: R) -> Option<R>
where
    R: Future<Output = Option<NextAsync>> + Send + 'static,
{
    context::with(|cx| match &mut *cx.next_async.borrow_mut() {
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
    pub(crate) fn start(self, lease: Lease) {
        self.start_inlined(lease);
    }

    /// [`start`](Self::start), inlined where the job is moved only once that way.
    #[inline]
    fn start_inlined(self, mut lease: Lease) {
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
        self.control.set_phase(Phase::Running);
        lease.held_by(Arc::clone(&self.control) as _);
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
    fn record(&self, started: timeline::Stamp, asynchronous: bool, error: Option<&Error>) {
        let failed = error.is_some();
        tracing::trace!(target: "rustyray::task", failed, "finished");
        if let Some(error) = error {
            timeline::record_error(&self.control.function, None, self.shared.id(), error);
        }
        timeline::record(timeline::Finished {
            kind: timeline::Kind::Task,
            name: &self.control.function,
            actor: None,
            asynchronous,
            started,
            ended: timeline::now(),
            failed,
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
            #[cfg(feature = "dashboard")]
            crate::dashboard::rare::count(
                self.shared.id(),
                crate::dashboard::rare::Event::Retry,
                self.control.function(),
            );
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
            let last = tries >= self.max_retries;
            let outcome = panics::catch(
                self.shared.print_panics(),
                AssertUnwindSafe(|| {
                    call_args::set_last_try(last);
                    (self.body.0)()
                }),
            );
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
            // Set here, not in the block: the block is polled at once, on this thread, and
            // makes the body's future (which reads the arguments) in that first poll.
            call_args::set_last_try(tries >= self.max_retries);
            let body = async { (self.body.0)().await };
            let outcome = panics::catch_async(self.shared.print_panics(), body).await;
            if let Some(result) = self.retry_or_finish(outcome, &mut tries) {
                return result;
            }
        }
    }
}
