//! The running side of an actor: the host, which owns the state and the receiving end of the
//! mailbox, and is at any moment in one of three places.
//!
//! - **On tokio** ([`ActorHost::serve`]): it builds the state, waits for ref arguments, and runs
//!   async methods on its task. On a concurrent actor, its `&self` async calls run side by side,
//!   each concurrency group up to its limit ([`ActorHost::run_concurrently`], the same loop's
//!   phase for shared calls).
//! - **On the CPU pool** ([`ActorHost::drain`]): at a sync call the whole host moves to a pool
//!   thread and runs sync calls there, one after another, while the next call is a sync one
//!   whose arguments are ready. Any other call, or a crash, sends it back to tokio.
//! - **Parked** in the actor's cell, when the pool found the mailbox empty. The next call sent
//!   takes it out and starts it on the pool directly, so a sync call costs one hand-off between
//!   threads (caller to pool) instead of two (caller to tokio to pool); parking and sending are
//!   serialized by the mailbox's lock, so no call is missed (see `ActorCell::park`).
//!
//! Wherever it is, a call goes through the same steps, each written once in `steps.rs`:
//! admission (count the queue, skip a call cancelled while queued), its arguments' readiness,
//! its last-try flag ([`Call::last_try`], from the actor's [`Recovery`]), its run (one function
//! for every async call, serial or side by side; the pool's loop for sync ones), and storing
//! its outcome, which turns a panic into a crash for [`ActorHost::recover`]. Tokio and a pool
//! thread drive these steps differently (one awaits, the other parks), so each place has its
//! own loop over them.

//! Calls are taken in arrival order. A call whose result was cancelled meanwhile is skipped.
//!
//! A panic is a crash. With restarts left, the state is rebuilt from the constructor; the calls
//! that were in flight are sent again (ahead of the rest) while they have retries left
//! (`max_task_retries`), or fail with the panic's error. Without restarts the actor dies: the
//! mailbox closes and every call still held fails with `ActorDied`, which [`Drop`] guarantees
//! even when the host is aborted by `kill` or dropped at shutdown.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::concurrent::PhaseEnd;
use super::current;
use super::mailbox::{ActorCell, ParkOutcome};
use super::recovery::Recovery;
use super::steps::{
    admit, call_span, invoke_async, next_call, readiness, store_outcome, wait_for, Crash,
    Readiness, Run,
};
use super::{Call, Ctor, Method};
use crate::call_args;
use crate::call_args::Deps;
use crate::error::{Error, Result};
use crate::object_ref::missing;
use crate::object_store::Cell;
use crate::panics;
use crate::runtime::RuntimeCore;
use crate::scheduler::{self, Lease};
use crate::task::BoxFuture;
use crate::timeline;

/// Runs shared calls side by side (`concurrent.rs`); compiled only for `Sync` actors.
pub(crate) type ConcurrentRunner<A> =
    for<'a> fn(&'a mut ActorHost<A>, Box<A>, Call<A>) -> BoxFuture<'a, PhaseEnd<A>>;

pub(crate) struct ActorHost<A> {
    pub(crate) shared: Arc<RuntimeCore>,
    pub(crate) cell: Arc<ActorCell<A>>,
    pub(crate) deps: Deps,
    pub(crate) ctor: Ctor<A>,
    pub(crate) recovery: Recovery,
    pub(crate) max_concurrency: usize,
    /// The named concurrency groups and their limits (calls name them by 1-based index).
    pub(crate) concurrency_groups: Vec<(Cow<'static, str>, usize)>,
    pub(crate) concurrent: Option<ConcurrentRunner<A>>,
    /// Sync shared calls run beside the others, on the CPU pool (see `concurrent.rs`).
    pub(crate) threaded: bool,
    /// Calls taken from the mailbox but not run yet.
    pub(crate) backlog: VecDeque<Call<A>>,
    /// The resources the actor holds while it lives (`num_cpus`, `num_gpus`, a placement
    /// group's bundle), if it asked for any: its calls run inside this lease.
    pub(crate) lease: Option<Arc<Lease>>,
}

impl<A: Send + 'static> ActorHost<A> {
    /// Starts the host holding `lease` (or, without one, its placement group was removed
    /// before the actor could start: it dies).
    pub(crate) fn start_with(
        mut self,
        lease: Option<Lease>,
        holds: String,
        tokio: &tokio::runtime::Handle,
    ) {
        let Some(lease) = lease else {
            self.cell.mark_dead(scheduler::group_removed().to_string());
            self.cell.close();
            return;
        };
        let _ = self.cell.holds.set(holds);
        let lease = Arc::new(lease);
        self.lease = Some(Arc::clone(&lease));
        let cell = Arc::clone(&self.cell);
        let task = tokio.spawn(scheduler::with_async_lease(lease, self.run()));
        cell.set_task(task.abort_handle());
    }

    /// Builds the state, then serves calls.
    pub(crate) async fn run(mut self) {
        let state = match self.construct().await {
            Ok(state) => Box::new(state),
            Err(reason) => return self.die(reason),
        };
        self.cell
            .created
            .store(true, std::sync::atomic::Ordering::Release);
        self.serve(state, None).await
    }

    /// Serves calls on tokio, after recovering from `crash` if one is given. Async calls run
    /// here; at the first sync call the whole host moves to the CPU pool ([`Self::drain`]).
    async fn serve(mut self, mut state: Box<A>, mut crash: Option<Crash<A>>) {
        loop {
            if let Some(crash) = crash.take() {
                match self.recover(crash).await {
                    Some(rebuilt) => *state = rebuilt,
                    None => return,
                }
            }
            if !self.cell.is_alive() {
                return; // killed while the host moved here: dropping it fails what it holds
            }
            let Some(call) = next_call(&mut self.backlog, &self.cell).await else {
                return; // the mailbox closed: the last handle was dropped
            };
            let Some(mut call) = admit(&self.cell, self.backlog.len(), call) else {
                continue;
            };
            if let Some(error) = wait_for(&call.deps).await {
                call.finish(Err(error));
                continue;
            }
            let print = self.shared.print_panics();
            let last = call.last_try(&self.recovery);
            // Shared calls of a concurrent actor run side by side, each group to its limit (one
            // at a time when the limits are 1); sync ones only on a threaded actor, else alone.
            let phase = self
                .concurrent
                .filter(|_| super::concurrent::shares(&call.body, self.threaded));
            crash = match (&call.body, phase) {
                (_, Some(runner)) => {
                    match runner(&mut self, state, call).await {
                        PhaseEnd::Done(back) => {
                            state = back;
                            None
                        }
                        // The state is gone with the crash: rebuilt, or the actor dies.
                        PhaseEnd::Crashed(crash) => match self.recover(crash).await {
                            Some(rebuilt) => {
                                state = Box::new(rebuilt);
                                None
                            }
                            None => return,
                        },
                    }
                }
                (Method::Sync(_) | Method::SharedSync(_), _) => {
                    self.backlog.push_front(call);
                    return self.wake(state);
                }
                (Method::Shared(method), None) => {
                    call_args::set_last_try(last);
                    let body = method(&state);
                    self.cell.add_running(&call);
                    let crash = invoke_async(&self.cell, print, call, body).await;
                    self.cell.clear_running();
                    crash
                }
                (Method::Async(method), _) => {
                    call_args::set_last_try(last);
                    let body = method(&mut state);
                    self.cell.add_running(&call);
                    let crash = invoke_async(&self.cell, print, call, body).await;
                    self.cell.clear_running();
                    crash
                }
            };
        }
    }

    /// Moves the host to a CPU pool thread, to run sync calls there ([`Self::drain`]). If the
    /// pool is shut down, the job is dropped, and with it the host, which fails what it holds.
    pub(crate) fn wake(self, state: Box<A>) {
        let shared = Arc::clone(&self.shared);
        shared
            .here()
            .pool()
            .spawn(Box::new(move || self.drain(state, None)));
    }

    /// Hands the host back to tokio (for an async call, a sync call whose arguments are not
    /// ready, or a crash to recover from).
    fn back_to_tokio(self, state: Box<A>, crash: Option<Crash<A>>) {
        let Some(tokio) = self.shared.handle().cloned() else {
            return; // shutting down: dropping the host fails what it holds
        };
        let cell = Arc::clone(&self.cell);
        let task = match self.lease.clone() {
            Some(lease) => {
                tokio.spawn(scheduler::with_async_lease(lease, self.serve(state, crash)))
            }
            None => tokio.spawn(self.serve(state, crash)),
        };
        cell.set_task(task.abort_handle());
    }

    /// Runs sync calls on this pool thread, in arrival order, while the next call is a sync
    /// one whose arguments are ready. When the mailbox is empty the host parks in the actor's
    /// cell, and the next call sent wakes it onto the pool directly (one hand-off per call
    /// instead of two); any other call, or a crash, sends it back to tokio.
    ///
    /// A thread blocking on a call's result may run it this way too ([`ActorCell::run_in_caller`]):
    /// then `helping` is that result, and once it resolves the host parks again, or goes on
    /// on the pool if calls are left.
    pub(crate) fn drain(mut self, mut state: Box<A>, helping: Option<&Arc<Cell>>) {
        let cell = Arc::clone(&self.cell);
        // `is_cancelled()` in a call asks the cell about the call it notes as running.
        let _marked = current::mark_actor(Arc::clone(&cell) as _);
        // One clock reading per call: each call's end is the next one's start.
        let mut started = timeline::now();
        loop {
            if !cell.is_alive() {
                return; // killed: dropping the host fails what it holds
            }
            if helping.is_some_and(|out| !out.is_pending()) {
                if !self.backlog.is_empty() {
                    return self.wake(state);
                }
                match cell.park(self, state) {
                    ParkOutcome::Calls(host, state) => host.wake(state),
                    ParkOutcome::Parked | ParkOutcome::Closed => {}
                }
                return;
            }
            let Some(call) = self.backlog.pop_front() else {
                match cell.take_calls(&mut self.backlog) {
                    Some(true) => {}
                    None => return, // closed and empty: the last handle was dropped
                    Some(false) => match cell.park(self, state) {
                        ParkOutcome::Calls(host, back) => (self, state) = (host, back),
                        ParkOutcome::Parked => return, // the next call sent wakes it
                        ParkOutcome::Closed => return,
                    },
                }
                continue;
            };
            let Some(mut call) = admit(&cell, self.backlog.len(), call) else {
                continue;
            };
            // A sync shared call runs here only on an actor that is not threaded.
            let sync = match &call.body {
                Method::Sync(_) => true,
                Method::SharedSync(_) => !self.threaded,
                Method::Async(_) | Method::Shared(_) => false,
            };
            match (sync, readiness(&call.deps)) {
                (true, Readiness::Ready) => {}
                (true, Readiness::Failed(error)) => {
                    call.finish(Err(error));
                    continue;
                }
                // Another kind of call, or one whose arguments are pending: tokio's turn.
                _ => {
                    self.backlog.push_front(call);
                    return self.back_to_tokio(state, None);
                }
            }
            let last = call.last_try(&self.recovery);
            let run_body = |state: &mut A| match &call.body {
                Method::Sync(method) => method(state),
                Method::SharedSync(method) => method(state),
                Method::Async(_) | Method::Shared(_) => unreachable!("matched as sync above"),
            };
            // Left in place after the call: `kill` failing a finished call changes nothing.
            cell.set_running(&call);
            let outcome = {
                let span = call_span(&cell, &call);
                let _running = span.enter();
                panics::catch(
                    self.shared.print_panics(),
                    AssertUnwindSafe(|| {
                        call_args::set_last_try(last);
                        match &self.lease {
                            Some(lease) => {
                                scheduler::with_sync_lease(lease, || run_body(&mut state))
                            }
                            None => run_body(&mut state),
                        }
                    }),
                )
            };
            let ended = timeline::now();
            let run = Run {
                started,
                ended,
                asynchronous: false,
            };
            started = ended;
            let crash = store_outcome(&cell, call, outcome, run);
            if let Some(crash) = crash {
                return self.back_to_tokio(state, Some(crash));
            }
        }
    }

    /// After a crash: rebuilds the state if restarts are left (re-sending the in-flight calls
    /// that may retry), or lets the actor die. Returns the new state, if any.
    async fn recover(&mut self, crash: Crash<A>) -> Option<A> {
        let Crash { reason, in_flight } = crash;
        let restart = self.recovery.restart();
        for (mut call, error) in in_flight.into_iter().rev() {
            if self.recovery.runs_again(restart, call.attempts) {
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
        #[cfg(feature = "dashboard")]
        crate::dashboard::rare::count(
            self.shared.id(),
            crate::dashboard::rare::Event::Restart,
            &self.cell.class,
        );
        match self.construct().await {
            Ok(state) => Some(state),
            Err(reason) => {
                self.die(reason);
                None
            }
        }
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
        let print = self.shared.print_panics();
        let outcome = match &self.ctor {
            Ctor::Sync(ctor) => {
                let ctor = Arc::clone(ctor);
                let (back, built) = oneshot::channel();
                self.shared.here().pool().spawn(Box::new(move || {
                    // Never a last try: a restart builds the state again from the arguments.
                    let _ = back.send(panics::catch(
                        print,
                        AssertUnwindSafe(|| {
                            call_args::set_last_try(false);
                            ctor()
                        }),
                    ));
                }));
                built
                    .await
                    .map_err(|_| Error::RuntimeShutdown.to_string())?
            }
            Ctor::Async(ctor) => {
                call_args::set_last_try(false);
                panics::catch_async(print, ctor()).await
            }
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
        let error = self.cell.died_error();
        self.cell.fail_running(&error);
        for call in self.backlog.drain(..) {
            call.finish(Err(error.clone()));
        }
        for call in self.cell.close_and_take() {
            call.finish(Err(error.clone()));
        }
    }
}
