//! The actor call running on this thread, and how a cancel reaches it.
//!
//! A call's result is stored only when its body ends, so while the body runs, its result
//! resolved means the call was cancelled (or its actor killed). That is all a running call
//! needs to learn of a cancel: no flag of its own, nothing allocated per call.
//!
//! - **`is_cancelled()`** inside a method: the host marks the call it runs on this thread (for
//!   the body's whole run if sync, for each poll if async, since async calls of a concurrent
//!   actor interleave on one thread); the marker's result is looked at.
//! - **An async body is dropped at its next `.await`** ([`Cancellable`]): each time it is
//!   pending, its result is looked at, and the first time a waker is left on the result, so a
//!   cancel wakes the body's future to be dropped. A body that finishes at its first poll (most
//!   calls) costs one look and no waiter.
//! - A sync body cannot be interrupted: it runs on, sees `is_cancelled()`, and whatever it
//!   returns is discarded (the result keeps its `Cancelled`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::object_store::{Cell, Waiter};

thread_local! {
    /// The result of the actor call whose body runs on this thread now.
    static RUNNING: RefCell<Option<Arc<Cell>>> = const { RefCell::new(None) };
}

/// Marks a call as the one running here until dropped; then the previous mark is back (a
/// call's body may block on another call and run it here).
pub(crate) struct Marked(Option<Arc<Cell>>);

/// Marks the call producing `out` as running on this thread.
#[inline]
pub(crate) fn mark(out: &Arc<Cell>) -> Marked {
    Marked(RUNNING.with(|r| r.borrow_mut().replace(Arc::clone(out))))
}

impl Drop for Marked {
    #[inline]
    fn drop(&mut self) {
        let previous = self.0.take();
        RUNNING.with(|r| *r.borrow_mut() = previous);
    }
}

/// Inside an actor call's body: whether the call was cancelled. `None` outside one.
pub(crate) fn running_is_cancelled() -> Option<bool> {
    RUNNING.with(|r| r.borrow().as_ref().map(|out| !out.is_pending()))
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
