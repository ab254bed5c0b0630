//! `as_completed`: refs in the order their objects resolve.
//!
//! # Design
//!
//! Embedded, each pending object gets one waiter that, when it resolves, appends the ref's
//! index to a shared list and wakes the consumer (a parked thread through a condition
//! variable, an async task through its waker): no polling, one wake-up per object, objects
//! already resolved first in input order. A thread waiting inside a task lends its CPU back,
//! as `get` does. On Ray, each step is one `wait` for any one of the refs left.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::{Condvar, Mutex};

use crate::as_stream::AsStream;
use crate::object_ref::ObjectRef;
use crate::object_store::{Arrival, State, Waiter};
use crate::runtime::{self, blocking::outside_async_worker};
use crate::scheduler::BlockedGuard;

/// The refs of `refs` in the order their objects resolve (ready or failed), each once; an
/// [`Iterator`] whose `next` waits for the next one; [`into_stream`](AsCompleted::into_stream)
/// makes it a [`Stream`](crate::Stream) for async code.
///
/// Like Ray's `ray.wait` loop, without the loop: start on each result as soon as it exists.
///
/// ```
/// #[rustyray::remote]
/// fn slow_square(x: u64) -> u64 {
///     std::thread::sleep(std::time::Duration::from_millis(10 * x));
///     x * x
/// }
///
/// fn main() -> rustyray::Result<()> {
/// #   let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(2))?;
/// #   let _guard = rt.enter();
///     let refs: Vec<_> = (0..4).map(slow_square::remote).collect();
///     let mut total = 0;
///     for done in rustyray::as_completed(&refs) {
///         total += rustyray::get(&done)?; // never waits: it is resolved
///     }
///     assert_eq!(total, 0 + 1 + 4 + 9);
///     Ok(())
/// }
/// ```
pub fn as_completed<T>(refs: &[ObjectRef<T>]) -> AsCompleted<T> {
    let shared = runtime::current();
    AsCompleted {
        order: shared.backend().completion_order(&shared, refs),
        left: refs.len(),
        refs: refs.iter().cloned().map(Some).collect(),
    }
}

/// What [`as_completed`] returns.
#[must_use = "an iterator and a stream: it does nothing until read"]
pub struct AsCompleted<T> {
    /// The refs not given out yet.
    refs: Vec<Option<ObjectRef<T>>>,
    left: usize,
    order: Order,
}

/// How the next resolved ref is found: from the store's notifications, or by asking the
/// backend to wait for any one of those left.
pub(crate) enum Order {
    Notified(Arc<Arrivals>),
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    ByWait,
}

/// The indices of the refs whose objects resolved, in that order.
pub(crate) struct Arrivals {
    done: Mutex<VecDeque<usize>>,
    changed: Condvar,
    waker: AtomicWaker,
}

/// The waiter of the object at `index`.
struct Arrived {
    index: usize,
    arrivals: Arc<Arrivals>,
}

impl Arrival for Arrived {
    fn arrive(&self, _state: &State) {
        self.arrivals.push(self.index);
    }

    fn is_leaf(&self) -> bool {
        true // it resolves no object
    }
}

impl Arrivals {
    /// Subscribes to every object of `refs` in the store of `runtime`; an object already
    /// resolved, or not there (`get` reports it), counts as arrived at once.
    pub(crate) fn subscribe<T>(runtime: u32, refs: &[ObjectRef<T>]) -> Arc<Arrivals> {
        let arrivals = Arc::new(Arrivals {
            done: Mutex::new(VecDeque::with_capacity(refs.len())),
            changed: Condvar::new(),
            waker: AtomicWaker::new(),
        });
        for (index, r) in refs.iter().enumerate() {
            let subscribed = r.cell_in(runtime).map(|cell| {
                let arrived = Arrived {
                    index,
                    arrivals: Arc::clone(&arrivals),
                };
                cell.subscribe(Waiter::new(Arc::new(arrived)))
            });
            if !matches!(subscribed, Some(None)) {
                arrivals.push(index);
            }
        }
        arrivals
    }

    fn push(&self, index: usize) {
        self.done.lock().push_back(index);
        self.changed.notify_one();
        self.waker.wake();
    }

    /// The next index, waiting for it (lending a task's CPUs back meanwhile).
    fn next_blocking(&self) -> usize {
        let mut done = self.done.lock();
        if let Some(index) = done.pop_front() {
            return index;
        }
        let _lent = BlockedGuard::enter();
        outside_async_worker(|| loop {
            if let Some(index) = done.pop_front() {
                return index;
            }
            self.changed.wait(&mut done);
        })
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<usize> {
        self.waker.register(cx.waker());
        match self.done.lock().pop_front() {
            Some(index) => Poll::Ready(index),
            None => Poll::Pending,
        }
    }
}

impl<T> AsCompleted<T> {
    fn give(&mut self, index: usize) -> Option<ObjectRef<T>> {
        self.left -= 1;
        self.refs[index].take()
    }

    /// On Ray: waits for any one of the refs left.
    fn next_by_wait(&mut self) -> Option<ObjectRef<T>> {
        let left: Vec<ObjectRef<T>> = self.refs.iter().flatten().cloned().collect();
        let (ready, _) = crate::api::wait(&left, 1, None);
        let id = ready.first()?.id();
        let index = self
            .refs
            .iter()
            .position(|r| r.as_ref().is_some_and(|r| r.id() == id))?;
        self.give(index)
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = ObjectRef<T>;

    /// The next ref whose object resolved, waiting for it; `None` once every ref was given.
    fn next(&mut self) -> Option<ObjectRef<T>> {
        if self.left == 0 {
            return None;
        }
        match &self.order {
            Order::Notified(arrivals) => {
                let index = arrivals.next_blocking();
                self.give(index)
            }
            Order::ByWait => self.next_by_wait(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> Unpin for AsCompleted<T> {}

impl<T> AsCompleted<T> {
    /// The refs as a [`Stream`](crate::Stream) for async code (see [`AsStream`]).
    pub fn into_stream(self) -> AsStream<AsCompleted<T>> {
        AsStream::new(self)
    }

    /// The next ref whose object resolved, for [`AsStream`]; on Ray, the waiting happens on
    /// the polling thread (moved off a tokio worker first).
    pub(crate) fn poll_next_done(&mut self, cx: &mut Context<'_>) -> Poll<Option<ObjectRef<T>>> {
        let this = self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        match &this.order {
            Order::Notified(arrivals) => match arrivals.poll_next(cx) {
                Poll::Ready(index) => Poll::Ready(this.give(index)),
                Poll::Pending => Poll::Pending,
            },
            Order::ByWait => Poll::Ready(outside_async_worker(|| this.next_by_wait())),
        }
    }
}
