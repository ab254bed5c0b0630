//! The running side of an actor: one tokio task that owns the state and the mailbox.
//!
//! Calls are taken in arrival order. Before a call runs, the host waits for its ref arguments; a
//! call whose result was cancelled meanwhile is skipped. Async methods run on the host's task.
//! Sync methods run on the CPU pool: the state moves to a pool thread together with every
//! following sync call whose arguments are ready (up to [`MAX_BATCH`]), and comes back.
//! On an actor allowed to interleave, async `&self` calls run side by side (see
//! [`ActorHost::run_concurrently`]).
//!
//! A panic is a crash. With restarts left, the state is rebuilt from the constructor; the calls
//! that were in flight are sent again (ahead of the rest) while they have retries left
//! (`max_task_retries`), or fail with the panic's error. Without restarts the actor dies: the
//! mailbox closes and every call still held fails with `ActorDied`, which [`Drop`] guarantees
//! even when the host is aborted by `kill` or dropped at shutdown.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::table::ActorCell;
use super::{Call, Ctor, Method};
use crate::error::{Error, Result};
use crate::object_ref::{missing, Resolve};
use crate::object_store::{Cell, Object};
use crate::runtime::Shared;
use crate::task::{BoxFuture, Deps};
use crate::timeline;

/// How many ready sync calls one trip to the CPU pool runs at most.
const MAX_BATCH: usize = 256;

/// Runs shared calls side by side; compiled only for `Sync` actors.
pub(super) type ConcurrentRunner<A> =
    for<'a> fn(&'a mut ActorHost<A>, &'a A, Call<A>) -> BoxFuture<'a, Option<Crash<A>>>;

/// What a panic interrupted: the calls in flight (with the error each would fail with) and the
/// calls of the same batch that had not run yet.
pub(super) struct Crash<A> {
    reason: String,
    in_flight: Vec<(Call<A>, Error)>,
    unrun: Vec<Call<A>>,
}

pub(super) struct ActorHost<A> {
    pub(super) shared: Arc<Shared>,
    pub(super) cell: Arc<ActorCell<A>>,
    pub(super) inbox: mpsc::UnboundedReceiver<Call<A>>,
    pub(super) deps: Deps,
    pub(super) ctor: Ctor<A>,
    pub(super) restarts_left: u32,
    pub(super) max_task_retries: u32,
    pub(super) max_concurrency: usize,
    pub(super) concurrent: Option<ConcurrentRunner<A>>,
    /// Calls taken from the mailbox but not run yet.
    pub(super) backlog: VecDeque<Call<A>>,
    /// Results of the calls running now, failed if the host is dropped mid-call. Weak: a
    /// result nobody refers to any more needs no failing, and the list must not keep it alive.
    pub(super) running: Vec<Weak<Cell>>,
}

impl<A: Send + 'static> ActorHost<A> {
    pub(super) async fn run(mut self) {
        let mut state = match self.construct().await {
            Ok(state) => Box::new(state),
            Err(reason) => return self.die(reason),
        };
        loop {
            let Some(call) = next_call(&mut self.backlog, &mut self.inbox).await else {
                return; // the mailbox closed: the last handle was dropped
            };
            self.cell.set_queued(self.inbox.len() + self.backlog.len());
            if call.out.resolved_before_run() {
                continue; // cancelled while queued
            }
            if let Some(error) = wait_for(&call.deps).await {
                call.finish(Err(error));
                continue;
            }
            let crash = match &call.body {
                Method::Async(method) => {
                    self.running.push(Arc::downgrade(&call.out));
                    let started = timeline::now();
                    let outcome = AssertUnwindSafe(method(&mut state))
                        .catch_unwind()
                        .instrument(call_span(&self.cell, &call))
                        .await;
                    self.running.clear();
                    settle(&self.cell, call, outcome, Run::until_now(started, true))
                }
                Method::Shared(method) => match self.concurrent {
                    Some(runner) if self.max_concurrency > 1 => {
                        runner(&mut self, &state, call).await
                    }
                    _ => {
                        self.running.push(Arc::downgrade(&call.out));
                        let started = timeline::now();
                        let outcome = AssertUnwindSafe(method(&state))
                            .catch_unwind()
                            .instrument(call_span(&self.cell, &call))
                            .await;
                        self.running.clear();
                        settle(&self.cell, call, outcome, Run::until_now(started, true))
                    }
                },
                Method::Sync(_) => {
                    let batch = self.take_batch(call);
                    self.running
                        .extend(batch.iter().map(|c| Arc::downgrade(&c.out)));
                    let cell = Arc::clone(&self.cell);
                    let (back, ran) = oneshot::channel();
                    self.shared.pool.spawn(Box::new(move || {
                        let crash = run_batch(&cell, &mut state, batch);
                        let _ = back.send((state, crash));
                    }));
                    let ran = ran.await;
                    self.running.clear();
                    let Ok((back, crash)) = ran else {
                        return; // the runtime is shutting down
                    };
                    state = back;
                    crash
                }
            };
            if let Some(crash) = crash {
                match self.recover(crash).await {
                    Some(rebuilt) => *state = rebuilt,
                    None => return,
                }
            }
        }
    }

    /// After a crash: rebuilds the state if restarts are left (re-sending the in-flight calls
    /// that may retry), or lets the actor die. Returns the new state, if any.
    async fn recover(&mut self, crash: Crash<A>) -> Option<A> {
        let Crash {
            reason,
            in_flight,
            unrun,
        } = crash;
        for call in unrun.into_iter().rev() {
            self.backlog.push_front(call);
        }
        let restart = self.restarts_left > 0;
        for (mut call, error) in in_flight.into_iter().rev() {
            if restart && call.attempts < self.max_task_retries {
                call.attempts += 1;
                self.backlog.push_front(call);
            } else {
                call.finish(Err(error));
            }
        }
        if !restart {
            self.die(reason);
            return None;
        }
        self.restarts_left -= 1;
        match self.construct().await {
            Ok(state) => Some(state),
            Err(reason) => {
                self.die(reason);
                None
            }
        }
    }

    /// Runs `first` and the shared calls that follow it, up to `max_concurrency` at a time,
    /// until a call of another kind arrives (it waits in the backlog) and the running ones end.
    /// On a panic the other calls still running are interrupted and reported in the crash.
    pub(super) async fn run_concurrently(&mut self, state: &A, first: Call<A>) -> Option<Crash<A>>
    where
        A: Sync,
    {
        let (cell, limit) = (&self.cell, self.max_concurrency);
        let start = |call: Call<A>| async move {
            if let Some(error) = wait_for(&call.deps).await {
                call.finish(Err(error));
                return None;
            }
            let Method::Shared(method) = &call.body else {
                unreachable!("only shared calls start here")
            };
            let started = timeline::now();
            let outcome = AssertUnwindSafe(method(state))
                .catch_unwind()
                .instrument(call_span(cell, &call))
                .await;
            settle(cell, call, outcome, Run::until_now(started, true))
        };
        let mut started = vec![first.clone()];
        self.running.push(Arc::downgrade(&first.out));
        let mut running = FuturesUnordered::new();
        running.push(start(first));
        let mut accepting = true;
        let crash = loop {
            if accepting && running.len() < limit {
                tokio::select! {
                    biased;
                    Some(outcome) = running.next() => {
                        if outcome.is_some() {
                            break outcome;
                        }
                    }
                    next = next_call(&mut self.backlog, &mut self.inbox) => match next {
                        Some(call) if call.out.resolved_before_run() => {}
                        Some(call) if matches!(call.body, Method::Shared(_)) => {
                            started.push(call.clone());
                            self.running.push(Arc::downgrade(&call.out));
                            running.push(start(call));
                        }
                        Some(call) => {
                            self.backlog.push_front(call);
                            accepting = false;
                        }
                        None => accepting = false,
                    },
                }
            } else {
                match running.next().await {
                    Some(Some(crash)) => break Some(crash),
                    Some(None) => {}
                    None => break None,
                }
            }
            if !accepting && running.is_empty() {
                break None;
            }
        };
        drop(running);
        self.running.clear();
        let mut crash = crash?;
        // The calls interrupted by the crash count as in flight too.
        let interrupted = Error::ActorDied {
            actor: self.cell.class.to_string(),
            reason: crash.reason.clone(),
        };
        let crashed = crash.in_flight.first().map(|(c, _)| c.out.id());
        for call in started {
            if Some(call.out.id()) != crashed && call.out.is_pending() {
                crash.in_flight.push((call, interrupted.clone()));
            }
        }
        Some(crash)
    }

    /// `first` and the sync calls after it whose arguments are all resolved, in order.
    fn take_batch(&mut self, first: Call<A>) -> Vec<Call<A>> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let next = match self.backlog.pop_front() {
                Some(call) => call,
                None => match self.inbox.try_recv() {
                    Ok(call) => call,
                    Err(_) => break,
                },
            };
            if matches!(next.body, Method::Sync(_)) && next.deps.iter().all(|d| !d.is_pending()) {
                batch.push(next);
            } else {
                self.backlog.push_front(next);
                break;
            }
        }
        batch
    }

    async fn construct(&self) -> Result<A, String> {
        let failed = match self.deps.missing {
            Some(id) => Some(missing(id)),
            None => wait_for(&self.deps.cells).await,
        };
        if let Some(error) = failed {
            return Err(format!("a constructor argument failed: {error}"));
        }
        let function = format!("{}::new", self.cell.class);
        let outcome = match &self.ctor {
            Ctor::Sync(ctor) => {
                let ctor = Arc::clone(ctor);
                let (back, built) = oneshot::channel();
                self.shared.pool.spawn(Box::new(move || {
                    let _ = back.send(std::panic::catch_unwind(AssertUnwindSafe(&*ctor)));
                }));
                built
                    .await
                    .map_err(|_| Error::RuntimeShutdown.to_string())?
            }
            Ctor::Async(ctor) => AssertUnwindSafe(ctor()).catch_unwind().await,
        };
        match outcome {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(error)) => Err(format!(
                "constructor failed: {}",
                Error::task_failed(&function, &error)
            )),
            Err(payload) => Err(format!(
                "constructor failed: {}",
                Error::panicked(&function, &*payload)
            )),
        }
    }

    /// Marks the actor dead and closes its mailbox; dropping the host fails what it holds.
    fn die(&mut self, reason: String) {
        self.cell.mark_dead(reason);
        self.cell.close();
    }
}

impl<A> Drop for ActorHost<A> {
    fn drop(&mut self) {
        // Whatever is still held (the host was killed, crashed for good, or dropped at
        // shutdown) fails now; results that were already stored keep their first outcome.
        self.inbox.close();
        let error = self.cell.died_error();
        for out in self.running.drain(..).filter_map(|out| out.upgrade()) {
            out.finish(Err(error.clone()));
        }
        for call in self.backlog.drain(..) {
            call.finish(Err(error.clone()));
        }
        while let Ok(call) = self.inbox.try_recv() {
            call.finish(Err(error.clone()));
        }
    }
}

/// Runs ready sync calls in order, stopping at the first panic.
fn run_batch<A>(cell: &ActorCell<A>, state: &mut A, batch: Vec<Call<A>>) -> Option<Crash<A>> {
    let mut calls = batch.into_iter();
    // One clock reading per call: each call's end is the next one's start.
    let mut started = timeline::now();
    while let Some(call) = calls.next() {
        if call.out.resolved_before_run() {
            continue; // cancelled
        }
        if let Some(error) = first_failure(&call.deps) {
            call.finish(Err(error));
            continue;
        }
        let Method::Sync(method) = &call.body else {
            unreachable!("batches hold sync calls only")
        };
        let span = call_span(cell, &call);
        let _running = span.enter();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| method(state)));
        let ended = timeline::now();
        let run = Run {
            started,
            ended,
            asynchronous: false,
        };
        started = ended;
        if let Some(mut crash) = settle(cell, call, outcome, run) {
            crash.unrun = calls.collect();
            return Some(crash);
        }
    }
    None
}

/// The tracing span of one call (free when no subscriber is installed).
fn call_span<A>(cell: &ActorCell<A>, call: &Call<A>) -> tracing::Span {
    tracing::debug_span!(
        target: "rustyray::actor",
        "call",
        actor = %cell.class,
        method = %call.method,
        object = %call.out.id(),
    )
}

/// When a call ran, and whether it was async (for the timeline).
struct Run {
    started: timeline::Stamp,
    ended: timeline::Stamp,
    asynchronous: bool,
}

impl Run {
    fn until_now(started: timeline::Stamp, asynchronous: bool) -> Run {
        Run {
            started,
            ended: timeline::now(),
            asynchronous,
        }
    }
}

/// Stores a call's result, or its error; a panic is returned as a crash instead. The call is
/// entered in the timeline with its `run`.
fn settle<A>(
    cell: &ActorCell<A>,
    call: Call<A>,
    outcome: std::thread::Result<anyhow::Result<Object>>,
    run: Run,
) -> Option<Crash<A>> {
    timeline::record(timeline::Finished {
        kind: timeline::Kind::ActorCall,
        name: &call.method,
        actor: Some(&cell.class),
        asynchronous: run.asynchronous,
        started: run.started,
        ended: run.ended,
        failed: !matches!(outcome, Ok(Ok(_))),
        skipped: None,
        object: call.out.id(),
    });
    let function = || format!("{}::{}", cell.class, call.method);
    // On success or error the call is done: its body (and the argument refs in it) is dropped
    // before the result is stored, as a task's is. A panicked call is kept, to be retried.
    match outcome {
        Ok(Ok(object)) => {
            call.finish(Ok(object));
            None
        }
        Ok(Err(error)) => {
            let error = Error::task_failed(&function(), &error);
            tracing::warn!(target: "rustyray::actor", %error, "actor call failed");
            call.finish(Err(error));
            None
        }
        Err(payload) => {
            let error = Error::panicked(&function(), &*payload);
            tracing::error!(target: "rustyray::actor", %error, "actor call panicked");
            Some(Crash {
                reason: error.to_string(),
                in_flight: vec![(call, error)],
                unrun: Vec::new(),
            })
        }
    }
}

/// The next call: from the backlog first, else from the mailbox (`None` once it is closed).
async fn next_call<A>(
    backlog: &mut VecDeque<Call<A>>,
    inbox: &mut mpsc::UnboundedReceiver<Call<A>>,
) -> Option<Call<A>> {
    match backlog.pop_front() {
        Some(call) => Some(call),
        None => inbox.recv().await,
    }
}

/// Waits until every object in `deps` resolves; returns the first failure, if any.
async fn wait_for(deps: &[Arc<Cell>]) -> Option<Error> {
    for dep in deps {
        if let Some(error) = Resolve::new(Arc::clone(dep)).await.failure() {
            return Some(error);
        }
    }
    None
}

fn first_failure(deps: &[Arc<Cell>]) -> Option<Error> {
    deps.iter().find_map(|dep| dep.state().failure())
}
