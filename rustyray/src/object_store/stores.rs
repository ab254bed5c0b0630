//! The stores alive in this process, by serial, and the count of cancellations they share.
//!
//! A cell names its store by serial instead of holding an `Arc` of it. Holding one cost two
//! atomic read-modify-writes per object (one when the cell was made, one when it was freed) on
//! the store's count, a cache line that every thread making objects wrote. Most objects never
//! need their store again after they are made: a small value in memory is neither counted
//! against the budget nor spilled, and freeing it gives back nothing but its own memory. The
//! few paths that do (a large value, a spilled one, an indexed one) find the store here,
//! under a read lock, and get nothing once the store is gone: its runtime shut down, its spill folder
//! went with it (see `Drop for ObjectStore`), and whatever it counted no longer matters.
//!
//! The count of cancellations is the process's, not each store's, so that reading it needs no
//! store either (as is the LRU clock, `id::tick`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::ObjectStore;

/// The stores alive, by serial. Written when a store is made or dropped; read on the rare
/// paths above.
static STORES: LazyLock<RwLock<FxHashMap<u32, Weak<ObjectStore>>>> = LazyLock::new(RwLock::default);

/// The serial of the next store made. Serials are never reused within a process (4 billion
/// stores would wrap it; a runtime is made once or a few times).
static SERIALS: AtomicU32 = AtomicU32::new(NONE + 1);

/// The serial no store has: a detached cell's (`Cell::detached`).
pub(super) const NONE: u32 = 0;

/// How many cancellations happened in this process, so that a call about to run can skip
/// the "was it cancelled?" look when none ever did.
static CANCELLATIONS: AtomicU64 = AtomicU64::new(0);

/// Enters a store being made (`Arc::new_cyclic` gives its weak handle) and returns its serial.
pub(super) fn enter(store: Weak<ObjectStore>) -> u32 {
    let serial = loop {
        let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
        if serial != NONE {
            break serial; // skipped only if the serials ever wrap
        }
    };
    STORES.write().insert(serial, store);
    serial
}

/// Takes a dropped store out.
pub(super) fn leave(serial: u32) {
    STORES.write().remove(&serial);
}

/// The store of `serial`, if it is still alive.
pub(super) fn find(serial: u32) -> Option<Arc<ObjectStore>> {
    STORES.read().get(&serial).and_then(Weak::upgrade)
}

/// Notes a cancellation.
pub(super) fn note_cancellation() {
    CANCELLATIONS.fetch_add(1, Ordering::AcqRel);
}

/// Whether any cancellation ever happened in this process.
pub(super) fn any_cancellation() -> bool {
    CANCELLATIONS.load(Ordering::Acquire) != 0
}
