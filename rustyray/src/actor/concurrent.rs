//! A concurrent actor's shared calls, run side by side: async `&self` methods interleave on
//! the host's tokio task, sync `&self` methods run on CPU-pool threads (Ray's threaded actors),
//! each concurrency group up to its limit.
//!
//! For such a run (a *phase*: from the first shared call until a call of another kind is next
//! and the running ones ended), an actor with async shared calls only lends its state to them
//! in place. A *threaded* actor's state (one with sync `&self` methods) moves from the host's
//! `Box` into an `Arc`, which the sync calls on the pool hold while they run, and moves back
//! when the phase ends: two allocations a phase, paid only by actors that need it. If the host
//! is dropped mid-phase (a kill), a sync call still running keeps the state alive until it
//! returns. A crash ends the phase without the state: the host rebuilds it, or the actor dies.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::current;
use super::host::ActorHost;
use super::mailbox::ActorCell;
use super::steps::{admit, invoke_async, next_call, store_outcome, wait_for, Crash, Run};
use super::{Call, Method};
use crate::call_args;
use crate::cpu_pool::CpuPool;
use crate::error::Error;
use crate::panics;
use crate::scheduler::{self, Lease};
use crate::timeline;

/// How a phase of shared calls ended.
pub(crate) enum PhaseEnd<A> {
    /// Every call started ended; the state is back in its box.
    Done(Box<A>),
    /// A call panicked: the calls in flight, and the state is gone.
    Crashed(Crash<A>),
}

impl<A: Send + Sync + 'static> ActorHost<A> {
    /// Runs `first` and the shared calls that follow it, each concurrency group up to its
    /// limit at a time (the default group up to `max_concurrency`), until a call of another
    /// kind arrives (it waits in the backlog) and the running ones end. A call whose group is
    /// full waits in its group's queue, so the other groups' calls go on past it. On a panic
    /// the other calls still running are interrupted and reported in the crash, and those
    /// still queued go back to the backlog.
    pub(crate) async fn run_concurrently(&mut self, state: Box<A>, first: Call<A>) -> PhaseEnd<A> {
        let threaded = self.threaded;
        let state = match threaded {
            true => Held::Shared(Arc::from(state)),
            false => Held::Lent(state),
        };
        let (print, recovery) = (self.shared.print_panics(), self.recovery);
        let limits = self.group_limits();
        let last_group = limits.len() - 1;
        let group_of = move |call: &Call<A>| usize::from(call.group).min(last_group);
        let (cell, shared, lease) = (&self.cell, &self.shared, &self.lease);
        let state_ref = &state;
        let start = move |mut call: Call<A>| async move {
            let group = group_of(&call);
            if let Some(error) = wait_for(&call.deps).await {
                call.finish(Err(error));
                return (group, None);
            }
            let last = call.last_try(&recovery);
            call_args::set_last_try(last);
            let crash = match &call.body {
                Method::Shared(method) => {
                    let body = method(state_ref.get());
                    invoke_async(cell, print, call, body).await
                }
                Method::SharedSync(_) => {
                    let Held::Shared(state) = state_ref else {
                        unreachable!("sync shared calls start only on a threaded actor")
                    };
                    let pool = shared.here().pool();
                    invoke_on_pool(cell, pool, lease, print, state, call, last).await
                }
                Method::Sync(_) | Method::Async(_) => unreachable!("only shared calls start here"),
            };
            (group, crash)
        };
        let mut counts = vec![0_usize; limits.len()];
        // Failed if the phase is dropped (a kill), as the host's drop fails what it holds.
        let mut queued = GroupQueues {
            cell,
            groups: limits.iter().map(|_| VecDeque::new()).collect(),
        };
        let mut started: Vec<Call<A>> = Vec::new();
        let mut running = FuturesUnordered::new();
        macro_rules! launch {
            ($call:expr) => {{
                let call: Call<A> = $call;
                counts[group_of(&call)] += 1;
                started.extend(call.copy_shared());
                cell.add_running(&call);
                running.push(start(call));
            }};
        }
        launch!(first);
        let mut accepting = true;
        let crash = loop {
            let finished = if accepting {
                tokio::select! {
                    biased;
                    Some(finished) = running.next() => Some(finished),
                    next = next_call(&mut self.backlog, cell) => {
                        match next.and_then(|call| admit(cell, self.backlog.len(), call)) {
                            Some(call) if shares(&call.body, threaded) => {
                                let group = group_of(&call);
                                if counts[group] < limits[group] {
                                    launch!(call);
                                } else {
                                    queued.groups[group].push_back(call);
                                }
                            }
                            Some(call) => {
                                self.backlog.push_front(call);
                                accepting = false;
                            }
                            None => accepting = false,
                        }
                        None
                    }
                }
            } else {
                match running.next().await {
                    Some(finished) => Some(finished),
                    None => break None,
                }
            };
            if let Some((group, outcome)) = finished {
                counts[group] -= 1;
                if outcome.is_some() {
                    break outcome;
                }
                if let Some(call) = queued.groups[group].pop_front() {
                    launch!(call);
                }
            }
            if !accepting && running.is_empty() {
                break None;
            }
        };
        drop(running);
        self.cell.clear_running();
        // Calls that never started go back, in the order they were sent.
        let groups = std::mem::take(&mut queued.groups);
        drop(queued);
        let mut waiting: Vec<Call<A>> = groups.into_iter().flatten().collect();
        waiting.sort_by_key(|call| call.out.id());
        for call in waiting.into_iter().rev() {
            self.backlog.push_front(call);
        }
        let Some(mut crash) = crash else {
            return PhaseEnd::Done(match state {
                Held::Lent(state) => state,
                // Every sync call gave its hold on the state back before its result came.
                Held::Shared(state) => match Arc::try_unwrap(state) {
                    Ok(state) => Box::new(state),
                    Err(_) => unreachable!("no shared call runs once the phase ended"),
                },
            });
        };
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
        PhaseEnd::Crashed(crash)
    }

    /// Each concurrency group's limit: the default group's (`max_concurrency`) first.
    fn group_limits(&self) -> Vec<usize> {
        std::iter::once(self.max_concurrency)
            .chain(self.concurrency_groups.iter().map(|(_, limit)| *limit))
            .collect()
    }
}

/// Where a phase keeps the state: lent in place, or shared with the sync calls on the pool.
enum Held<A> {
    Lent(Box<A>),
    Shared(Arc<A>),
}

impl<A> Held<A> {
    fn get(&self) -> &A {
        match self {
            Held::Lent(state) => state,
            Held::Shared(state) => state,
        }
    }
}

/// Whether a call of this kind joins a phase: async shared calls always, sync ones on a
/// threaded actor (elsewhere they run alone, as exclusive sync calls do).
pub(super) fn shares<A>(body: &Method<A>, threaded: bool) -> bool {
    match body {
        Method::Shared(_) => true,
        Method::SharedSync(_) => threaded,
        Method::Sync(_) | Method::Async(_) => false,
    }
}

/// Runs a sync shared call on a CPU-pool thread, holding the state (and the actor's lease)
/// while it runs, and stores its outcome once it is back.
async fn invoke_on_pool<A: Send + Sync + 'static>(
    cell: &ActorCell<A>,
    pool: &CpuPool,
    lease: &Option<Arc<Lease>>,
    print: bool,
    state: &Arc<A>,
    call: Call<A>,
    last: bool,
) -> Option<Crash<A>> {
    let Method::SharedSync(method) = &call.body else {
        unreachable!("only sync shared calls run on the pool")
    };
    let (method, state) = (Arc::clone(method), Arc::clone(state));
    let (out, lease) = (Arc::clone(&call.out), lease.clone());
    let (back, ran) = oneshot::channel();
    pool.spawn(Box::new(move || {
        let started = timeline::now();
        let outcome = panics::catch(
            print,
            AssertUnwindSafe(|| {
                call_args::set_last_try(last);
                let _running = current::mark(&out);
                match &lease {
                    Some(lease) => scheduler::with_sync_lease(lease, || method(&state)),
                    None => method(&state),
                }
            }),
        );
        let run = Run {
            started,
            ended: timeline::now(),
            asynchronous: false,
        };
        // The state is let go before the outcome is told, so the phase's end finds it free.
        drop((state, method, out, lease));
        let _ = back.send((outcome, run));
    }));
    match ran.await {
        Ok((outcome, run)) => store_outcome(cell, call, outcome, run),
        // The pool is shut down: the call is dropped, and the runtime with it.
        Err(_) => {
            call.finish(Err(Error::RuntimeShutdown));
            None
        }
    }
}

/// The calls of a phase waiting for room in their group.
struct GroupQueues<'a, A> {
    cell: &'a ActorCell<A>,
    groups: Vec<VecDeque<Call<A>>>,
}

impl<A> Drop for GroupQueues<'_, A> {
    fn drop(&mut self) {
        if self.groups.iter().all(VecDeque::is_empty) {
            return;
        }
        let error = self.cell.died_error();
        for call in self.groups.drain(..).flatten() {
            call.finish(Err(error.clone()));
        }
    }
}
