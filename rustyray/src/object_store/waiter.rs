//! What waits for a pending object, and how it is woken when the object resolves.
//!
//! A pending entry keeps its waiters inline (one fits without allocating), and a waiter is the
//! shared handle of what waits (no boxed closure), so waiting for an object allocates nothing
//! in the common cases:
//! - a thread blocked in `get`, `get_all` or `wait` counts down a shared [`Countdown`], which
//!   wakes the thread once, when enough objects resolved (or one failed, where it stops on
//!   failure), instead of at every resolution;
//! - a future (`ref.await`, an actor waiting for a call's arguments) is woken through its waker;
//! - a task's gate (any [`Arrival`] that may resolve further objects) counts down its
//!   pending arguments.
//!
//! Waiters run after the cell's lock is released. One that resolves further objects (a failed
//! task fails its dependents, which fail theirs, ...) queues their waiters on a per-thread
//! trampoline instead of recursing, so a chain of any length uses constant stack.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::thread::Thread;

use futures_util::task::AtomicWaker;
use smallvec::SmallVec;

use super::State;

/// One waiter of a pending object, run once when it resolves, with its final state. Two words
/// with no tag (a pending entry keeps one inline), whatever waits.
pub(crate) struct Waiter(Arc<dyn Arrival>);

/// The waiters of one pending object; the first is kept inline.
pub(crate) type Waiters = SmallVec<[Waiter; 1]>;

/// What waits for an object: told once, with the object's final state, when it resolves. The
/// store defines it so that it needs nothing from the layers above it (a task's gate
/// implements it).
pub(crate) trait Arrival: Send + Sync {
    /// The object resolved with `state`.
    fn arrive(&self, state: &State);

    /// Whether being told can resolve no further object (so it needs no trampoline).
    fn is_leaf(&self) -> bool;
}

impl Waiter {
    /// Runs `arrival` when the object resolves.
    #[inline]
    pub(crate) fn new(arrival: Arc<dyn Arrival>) -> Waiter {
        Waiter(arrival)
    }

    /// Runs `call` when the object resolves (the store's own tests).
    #[cfg(test)]
    pub(crate) fn call(call: impl FnOnce(&State) + Send + 'static) -> Waiter {
        type Callback = Box<dyn FnOnce(&State) + Send>;
        struct Call(parking_lot::Mutex<Option<Callback>>);
        impl Arrival for Call {
            fn arrive(&self, state: &State) {
                if let Some(call) = self.0.lock().take() {
                    call(state);
                }
            }
            fn is_leaf(&self) -> bool {
                false
            }
        }
        Waiter(Arc::new(Call(parking_lot::Mutex::new(Some(Box::new(
            call,
        ))))))
    }

    fn is_leaf(&self) -> bool {
        self.0.is_leaf()
    }

    fn run(self, state: &State) {
        self.0.arrive(state);
    }
}

/// A future (`ref.await`, an actor waiting for a call's arguments), polled again once the
/// object resolves.
impl Arrival for AtomicWaker {
    fn arrive(&self, _: &State) {
        self.wake();
    }

    fn is_leaf(&self) -> bool {
        true
    }
}

impl Arrival for Countdown {
    fn arrive(&self, state: &State) {
        if self.count(state) || self.wake_each {
            self.thread.unpark();
        }
    }

    fn is_leaf(&self) -> bool {
        true
    }
}

/// Counts the objects a blocked thread waits for and wakes it when the count is reached, or at
/// the first failure if it stops on failures, or at every resolution if it reports progress.
pub(crate) struct Countdown {
    /// Resolutions still needed; below zero once more resolved than needed.
    left: AtomicIsize,
    failed: AtomicBool,
    stop_on_failure: bool,
    wake_each: bool,
    thread: Thread,
}

impl Countdown {
    /// A countdown of `need` resolutions that wakes the calling thread.
    pub(crate) fn new(need: usize, stop_on_failure: bool, wake_each: bool) -> Countdown {
        Countdown {
            left: AtomicIsize::new(isize::try_from(need).unwrap_or(isize::MAX)),
            failed: AtomicBool::new(false),
            stop_on_failure,
            wake_each,
            thread: std::thread::current(),
        }
    }

    /// Counts one resolution with its state (from a waiter, or for an object found resolved
    /// when subscribing, which wakes no one).
    pub(crate) fn count(&self, state: &State) -> bool {
        let failed = matches!(state, State::Failed(_));
        if failed {
            self.failed.store(true, Ordering::Release);
        }
        let reached = self.left.fetch_sub(1, Ordering::AcqRel) == 1;
        reached || (failed && self.stop_on_failure)
    }

    /// Whether the wait is over: enough resolved, or one failed where that stops it.
    pub(crate) fn done(&self) -> bool {
        self.left.load(Ordering::Acquire) <= 0
            || (self.stop_on_failure && self.failed.load(Ordering::Acquire))
    }

    /// How many of the `need` resolutions happened so far.
    pub(crate) fn resolved(&self, need: usize) -> usize {
        let left = self.left.load(Ordering::Acquire).max(0) as usize;
        need.saturating_sub(left)
    }
}

thread_local! {
    /// Waiters queued by callbacks that ran inside `run_waiters` on this thread, with the state
    /// to run them with.
    static QUEUED: RefCell<Option<Vec<(Waiters, State)>>> = const { RefCell::new(None) };
}

/// Runs waiters; waiters that resolve further objects enqueue theirs here instead of recursing.
pub(super) fn run_waiters(waiters: Waiters, state: State) {
    if waiters.iter().all(Waiter::is_leaf) {
        for waiter in waiters {
            waiter.run(&state);
        }
        return;
    }
    let mut first = Some((waiters, state));
    let nested = QUEUED.with(|q| {
        let mut q = q.borrow_mut();
        match q.as_mut() {
            Some(queue) => {
                queue.extend(first.take());
                true
            }
            None => {
                *q = Some(Vec::new());
                false
            }
        }
    });
    let Some((waiters, state)) = first.filter(|_| !nested) else {
        return;
    };
    // Outermost call on this thread: drain until no callback queued more.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            QUEUED.with(|q| *q.borrow_mut() = None);
        }
    }
    let _reset = Reset;
    for waiter in waiters {
        waiter.run(&state);
    }
    loop {
        let queued = QUEUED.with(|q| std::mem::take(q.borrow_mut().as_mut().expect("set above")));
        if queued.is_empty() {
            return;
        }
        for (waiters, state) in queued {
            for waiter in waiters {
                waiter.run(&state);
            }
        }
    }
}
