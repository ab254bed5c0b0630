//! Counted handles.
//!
//! An actor handle carries, beside its id, a [`Handle`]: an `Arc` shared by its clones (so
//! cloning never touches the runtime) whose drop releases one count in the runtime's actor
//! table, from whatever thread drops it. A handle read back from bytes takes a new count in the
//! current runtime, or stays uncounted if the actor is gone. (Object refs need no table: they
//! hold their object's cell, whose `Arc` count is the ref count.)
//!
//! A handle serialized while the store spills a value is kept alive with the bytes (see
//! `object_store::kept`).

use std::sync::{Arc, Weak};

use crate::runtime::{self, RuntimeCore};

/// An id whose runtime counts the handles to it.
pub(crate) trait Counted: Copy + Send + Sync + 'static {
    /// Counts one more handle; false if the entry is gone.
    fn retain(self, shared: &RuntimeCore) -> bool;
    /// Counts one handle less.
    fn release(self, shared: &RuntimeCore);
}

/// One count, shared by the clones of a ref or handle.
pub(crate) struct Holder<I: Counted> {
    id: I,
    runtime: Weak<RuntimeCore>,
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
pub(crate) fn taking_count<I: Counted>(shared: &Arc<RuntimeCore>, id: I) -> Handle<I> {
    Some(Arc::new(Holder {
        id,
        runtime: Arc::downgrade(shared),
    }))
}

/// A new count in the current runtime for an id read back from bytes.
pub(crate) fn retained<I: Counted>(id: I) -> Handle<I> {
    let shared = runtime::current_if_any().filter(|shared| id.retain(shared))?;
    taking_count(&shared, id)
}
