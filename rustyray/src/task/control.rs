//! How to stop one task, and where it is.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::object_store::{Cell, ObjectId, Producer};
use crate::timeline;

/// How to stop one task: its name (for `Error::Cancelled`), whether it was cancelled, and the
/// waker that stops its async body when it is cancelled.
pub(crate) struct TaskControl {
    pub(crate) function: Cow<'static, str>,
    pub(crate) cancelled: AtomicBool,
    /// Woken by a cancellation, so a running async body is dropped at its next `.await`.
    pub(crate) waker: AtomicWaker,
    /// Where the task is: a [`Phase`] (read by `rustyray::state`).
    pub(crate) phase: AtomicU8,
    /// The CPUs and GPUs it asked for.
    pub(crate) demand: (f64, f64),
    /// The results of the tasks its body submitted, cancelled with it (Ray's recursive cancel).
    /// Boxed, and made by the first: most tasks submit none, and every pending task holds this
    /// field (16 bytes, where a `Vec` would take 32).
    #[allow(clippy::box_collection)]
    pub(crate) children: Mutex<Option<Box<Vec<Weak<Cell>>>>>,
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Waiting for its arguments.
    Waiting = 0,
    /// Arguments ready; waiting for resources.
    Queued = 1,
    /// Running.
    Running = 2,
}

impl Phase {
    fn from_u8(phase: u8) -> Phase {
        match phase {
            0 => Phase::Waiting,
            1 => Phase::Queued,
            _ => Phase::Running,
        }
    }
}

impl Producer for TaskControl {
    fn function(&self) -> &str {
        &self.function
    }

    fn cancelled(&self, object: ObjectId) {
        if self.phase() != Phase::Running {
            // It never runs, so it leaves no run in the timeline: record the cancellation.
            timeline::record_skipped(self.function_name(), object, timeline::Skipped::Cancelled);
        }
        self.cancel();
        // Then what it submitted, outside the lock (each cancels its own in turn).
        let children = self.children.lock().take();
        for child in children.into_iter().flat_map(|c| *c) {
            if let Some(child) = child.upgrade() {
                child.cancel();
            }
        }
    }

    fn is_cancelled(&self) -> bool {
        TaskControl::is_cancelled(self)
    }

    fn adopt(&self, child: &Arc<Cell>) {
        let mut children = self.children.lock();
        let children = children.get_or_insert_with(Default::default);
        // Forget the finished ones now and then, so a long-running parent stays small.
        if children.len() == children.capacity() && children.len() >= 64 {
            children.retain(|c| c.upgrade().is_some_and(|c| c.is_pending()));
        }
        children.push(Arc::downgrade(child));
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

impl TaskControl {
    /// The name it runs under.
    pub(crate) fn function_name(&self) -> &Cow<'static, str> {
        &self.function
    }

    /// Where the task is.
    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    /// The CPUs and GPUs the task asked for.
    pub(crate) fn demand(&self) -> (f64, f64) {
        self.demand
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub(crate) fn function(&self) -> &str {
        &self.function
    }

    pub(crate) fn is_cancelled(&self) -> bool {
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
    pub(crate) fn poll_unless_cancelled<F: Future>(
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
