//! Counted handles, and keeping what serialized bytes name alive.
//!
//! An actor handle carries, beside its id, a [`Handle`]: an `Arc` shared by its clones (so
//! cloning never touches the runtime) whose drop releases one count in the runtime's actor
//! table, from whatever thread drops it. A handle read back from bytes takes a new count in the
//! current runtime, or stays uncounted if the actor is gone. (Object refs need no table: they
//! hold their object's cell, whose `Arc` count is the ref count.)
//!
//! While a value is serialized inside [`keeping_handles`] (to spill it to disk), every ref and
//! handle it contains is collected, so the objects and actors it names stay alive while the
//! bytes are the only place that names them.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::runtime::{self, Shared};

/// An id whose runtime counts the handles to it.
pub(crate) trait Counted: Copy + Send + Sync + 'static {
    /// Counts one more handle; false if the entry is gone.
    fn retain(self, shared: &Shared) -> bool;
    /// Counts one handle less.
    fn release(self, shared: &Shared);
}

/// One count, shared by the clones of a ref or handle.
pub(crate) struct Holder<I: Counted> {
    id: I,
    runtime: Weak<Shared>,
}

impl<I: Counted> Drop for Holder<I> {
    fn drop(&mut self) {
        if let Some(shared) = self.runtime.upgrade() {
            self.id.release(&shared);
        }
    }
}

/// The counted part of a ref or handle: `None` when it counts nothing (a stale id).
pub(crate) type Handle<I> = Option<Arc<Holder<I>>>;

/// Takes over the count the runtime gave a new entry.
pub(crate) fn adopt<I: Counted>(shared: &Arc<Shared>, id: I) -> Handle<I> {
    Some(Arc::new(Holder {
        id,
        runtime: Arc::downgrade(shared),
    }))
}

/// A new count in the current runtime for an id read back from bytes.
pub(crate) fn retained<I: Counted>(id: I) -> Handle<I> {
    let shared = runtime::current_if_any().filter(|shared| id.retain(shared))?;
    adopt(&shared, id)
}

type Kept = Vec<Arc<dyn Any + Send + Sync>>;

thread_local! {
    /// Handles serialized inside [`keeping_handles`] on this thread.
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Runs `serialize` and returns, with its result, every handle it serialized.
pub(crate) fn keeping_handles<R>(serialize: impl FnOnce() -> R) -> (R, Kept) {
    let outer = KEPT.with(|k| k.replace(Some(Vec::new())));
    let out = serialize();
    let kept = KEPT.with(|k| k.replace(outer)).unwrap_or_default();
    (out, kept)
}

/// Called when a ref or handle is serialized: keeps what `keep` returns if a
/// [`keeping_handles`] is running.
pub(crate) fn note_serialized(keep: impl FnOnce() -> Arc<dyn Any + Send + Sync>) {
    KEPT.with(|k| {
        if let Some(kept) = k.borrow_mut().as_mut() {
            kept.push(keep());
        }
    });
}
