//! The actor call running on this thread, and how a cancel reaches it.
//!
//! A call's result is stored only when its body ends, so while the body runs, its result
//! resolved means the call was cancelled (or its actor killed). That is all a running call
//! needs to learn of a cancel: no flag of its own, nothing allocated per call.
//!
//! - **`is_cancelled()`** inside a method: the host marks what runs on this thread. A host
//!   running sync calls on a pool thread marks its actor once for the whole run of calls (the
//!   call running is the one its cell notes anyway, for `kill`), so a sync call pays nothing
//!   for it; an async call is marked at each poll (async calls of a concurrent actor
//!   interleave on one thread), and a sync shared call on the pool for its run. The marked
//!   call's result is looked at.
//! - **An async body is dropped at its next `.await`** ([`Cancellable`]): each time it is
//!   pending, its result is looked at, and the first time a waker is left on the result, so a
//!   cancel wakes the body's future to be dropped. A body that finishes at its first poll (most
//!   calls) costs one look and no waiter.
//! - A sync body cannot be interrupted: it runs on, sees `is_cancelled()`, and whatever it
//!   returns is discarded (the result keeps its `Cancelled`).

use std::cell::Cell as Slot;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::object_store::{Cell, Waiter};

thread_local! {
    /// What runs on this thread now: an actor call (async, or a shared sync one), or an actor
    /// whose host runs sync calls here.
    static RUNNING: Slot<Option<Marker>> = const { Slot::new(None) };
}

/// What [`RUNNING`] holds.
enum Marker {
    /// The result of the call whose body runs here.
    Call(Arc<Cell>),
    /// An actor whose host runs its sync calls here, one at a time: the running one is the
    /// one its cell notes (`Progress::running`). Marked once per run of calls, not per call.
    Actor(Arc<dyn RunsSyncCalls>),
}

/// An actor's cell, as asked about the sync call its host runs now.
pub(crate) trait RunsSyncCalls: Send + Sync {
    /// Whether the sync call running now was cancelled.
    fn running_cancelled(&self) -> bool;
}

/// Marks a call (or an actor's run of calls) as running here until dropped; then the previous
/// mark is back (a call's body may block on another call and run it here).
pub(crate) struct Marked(Option<Marker>);

/// Marks the call producing `out` as running on this thread.
#[inline]
pub(crate) fn mark(out: &Arc<Cell>) -> Marked {
    Marked(RUNNING.with(|r| r.replace(Some(Marker::Call(Arc::clone(out))))))
}

/// Marks `actor` as running its sync calls on this thread, for as long as its host does.
pub(crate) fn mark_actor(actor: Arc<dyn RunsSyncCalls>) -> Marked {
    Marked(RUNNING.with(|r| r.replace(Some(Marker::Actor(actor)))))
}

impl Drop for Marked {
    #[inline]
    fn drop(&mut self) {
        let previous = self.0.take();
        drop(RUNNING.with(|r| r.replace(previous)));
    }
}

/// Inside an actor call's body: whether the call was cancelled. `None` outside one.
pub(crate) fn running_is_cancelled() -> Option<bool> {
    RUNNING.with(|r| {
        let marker = r.take();
        let cancelled = marker.as_ref().map(|marker| match marker {
            Marker::Call(out) => !out.is_pending(),
            Marker::Actor(actor) => actor.running_cancelled(),
        });
        r.set(marker);
        cancelled
    })
}

/// An async call's body, dropped once its result resolves before it ends (a cancel, or a
/// kill): `None` then. Each poll marks the call as running on this thread.
pub(crate) struct Cancellable<'a, F> {
    out: &'a Arc<Cell>,
    body: Pin<&'a mut F>,
    /// Woken when the result resolves; left on it the first time the body is pending.
    waker: Option<Arc<AtomicWaker>>,
}

impl<'a, F: Future> Cancellable<'a, F> {
    pub(crate) fn new(out: &'a Arc<Cell>, body: Pin<&'a mut F>) -> Cancellable<'a, F> {
        Cancellable {
            out,
            body,
            waker: None,
        }
    }
}

impl<F: Future> Future for Cancellable<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let polled = {
            let _running = mark(this.out);
            this.body.as_mut().poll(cx)
        };
        if let Poll::Ready(output) = polled {
            return Poll::Ready(Some(output));
        }
        match &this.waker {
            Some(waker) => waker.register(cx.waker()),
            None => {
                let waker = Arc::new(AtomicWaker::new());
                waker.register(cx.waker());
                // Resolved already: the waiter is dropped unrun, and the look below sees it.
                let _ = this.out.subscribe(Waiter::new(Arc::clone(&waker) as _));
                this.waker = Some(waker);
            }
        }
        // Looked at after the waker is left, so a cancel in between is not missed.
        if this.out.is_pending() {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}
