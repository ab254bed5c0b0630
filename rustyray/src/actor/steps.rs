//! The steps every actor call goes through, wherever the host runs it (on tokio, on a pool
//! thread, side by side with others): [`admit`] it, check its arguments ([`wait_for`] on tokio,
//! [`readiness`] on a thread that must not wait), run it ([`invoke_async`] for every async call;
//! the pool's loop for sync ones), and [`store_outcome`], which turns a panic into a [`Crash`]
//! for the host to recover from. Each step is written once; `host.rs` drives them.

use std::collections::VecDeque;
use std::sync::Arc;

use tracing::Instrument;

use super::current::Cancellable;
use super::mailbox::ActorCell;
use super::Call;
use crate::error::Error;
use crate::object_ref::Resolve;
use crate::object_store::{Cell, Object, State};
use crate::panics;
use crate::timeline;

/// What a panic interrupted: the calls in flight, with the error each would fail with.
pub(crate) struct Crash<A> {
    pub(super) reason: String,
    pub(super) in_flight: Vec<(Call<A>, Error)>,
}

/// The tracing span of one call (free when no subscriber is installed).
pub(super) fn call_span<A>(cell: &ActorCell<A>, call: &Call<A>) -> tracing::Span {
    tracing::debug_span!(
        target: "rustyray::actor",
        "call",
        actor = %cell.class,
        method = %call.method,
        object = %call.out.id(),
    )
}

/// When a call ran, and whether it was async (for the timeline).
pub(super) struct Run {
    pub(super) started: timeline::Stamp,
    pub(super) ended: timeline::Stamp,
    pub(super) asynchronous: bool,
}

impl Run {
    pub(super) fn until_now(started: timeline::Stamp, asynchronous: bool) -> Run {
        Run {
            started,
            ended: timeline::now(),
            asynchronous,
        }
    }
}

/// Enters a call's run in the timeline.
#[inline]
fn record_run<A>(cell: &ActorCell<A>, call: &Call<A>, run: Run, failed: bool) {
    timeline::record(timeline::Finished {
        kind: timeline::Kind::ActorCall,
        name: &call.method,
        actor: Some(&cell.class),
        asynchronous: run.asynchronous,
        started: run.started,
        ended: run.ended,
        failed,
        skipped: None,
        object: call.out.id(),
    });
}

/// Stores a call's result, or its error; a panic is returned as a crash instead. The call is
/// entered in the timeline with its `run`.
#[inline]
pub(super) fn store_outcome<A>(
    cell: &ActorCell<A>,
    call: Call<A>,
    outcome: std::thread::Result<anyhow::Result<Object>>,
    run: Run,
) -> Option<Crash<A>> {
    record_run(cell, &call, run, !matches!(outcome, Ok(Ok(_))));
    let function = || format!("{}::{}", cell.class, call.method);
    let record = |error: &Error| {
        timeline::record_error(
            &call.method,
            Some(&cell.class),
            call.out.id().owner(),
            error,
        )
    };
    // On success or error the call is done: its body (and the argument refs in it) is dropped
    // before the result is stored, as a task's is. A panicked call is kept, to be retried.
    match outcome {
        Ok(Ok(object)) => {
            call.finish(Ok(object));
            None
        }
        Ok(Err(error)) => {
            let error = Error::task_failed(&function(), &error);
            record(&error);
            tracing::warn!(target: "rustyray::actor", %error, "actor call failed");
            call.finish(Err(error));
            None
        }
        Err(payload) => {
            let error = Error::panicked(&function(), &*payload);
            record(&error);
            tracing::error!(target: "rustyray::actor", %error, "actor call panicked");
            Some(Crash {
                reason: error.to_string(),
                in_flight: vec![(call, error)],
            })
        }
    }
}

/// The first step of every call, wherever the host runs it: counts the calls still queued
/// (`queued`), and drops the call if its result was cancelled while it waited.
#[inline]
pub(super) fn admit<A>(cell: &ActorCell<A>, queued: usize, call: Call<A>) -> Option<Call<A>> {
    cell.set_queued(queued);
    (!call.out.resolved_before_run()).then_some(call)
}

/// Runs one async call to its end, whose method made `body` (after the call's last-try flag was
/// set, as the body may read its arguments as it is made): its panics caught, its run timed for
/// the timeline, and its outcome stored; a panic comes back as a crash. The one place an async
/// call runs, serially or side by side.
pub(super) async fn invoke_async<A>(
    cell: &ActorCell<A>,
    print: bool,
    call: Call<A>,
    body: impl std::future::Future<Output = anyhow::Result<Object>>,
) -> Option<Crash<A>> {
    let started = timeline::now();
    let body = std::pin::pin!(panics::catch_async(print, body));
    let outcome = Cancellable::new(&call.out, body)
        .instrument(call_span(cell, &call))
        .await;
    let run = Run::until_now(started, true);
    match outcome {
        Some(outcome) => store_outcome(cell, call, outcome, run),
        None => {
            // Cancelled (or killed) at an `.await`: the body is dropped, the result failed.
            record_run(cell, &call, run, true);
            None
        }
    }
}

/// The next call: from the backlog first, else from the mailbox (`None` once it is closed),
/// taking every call waiting there at once.
pub(super) async fn next_call<A: Send + 'static>(
    backlog: &mut VecDeque<Call<A>>,
    cell: &ActorCell<A>,
) -> Option<Call<A>> {
    if backlog.is_empty() {
        std::future::poll_fn(|cx| cell.poll_calls(cx, backlog)).await?;
    }
    backlog.pop_front()
}

/// Waits until every object in `deps` resolves; returns the first failure, if any.
pub(super) async fn wait_for(deps: &[Arc<Cell>]) -> Option<Error> {
    for dep in deps {
        if let Some(error) = Resolve::new(Arc::clone(dep)).await.failure() {
            return Some(error);
        }
    }
    None
}

/// Whether a call's arguments are ready to run it with.
pub(super) enum Readiness {
    /// One is still pending.
    Pending,
    /// All resolved, none failed.
    Ready,
    /// All resolved; this is the first one's failure.
    Failed(Error),
}

/// The [`Readiness`] of `deps`, with one look at each argument.
#[inline]
pub(super) fn readiness(deps: &[Arc<Cell>]) -> Readiness {
    let mut failure = None;
    for dep in deps {
        match dep.state() {
            State::Pending => return Readiness::Pending,
            state if failure.is_none() => failure = state.failure(),
            _ => {}
        }
    }
    failure.map_or(Readiness::Ready, Readiness::Failed)
}
