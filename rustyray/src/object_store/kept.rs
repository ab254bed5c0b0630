//! Keeping what serialized bytes name alive.
//!
//! While a value is serialized inside [`keeping_handles`] (to spill it to disk), every ref and
//! handle it contains is collected (refs and handles call [`note_serialized`] as they are
//! serialized), so the objects and actors it names stay alive while the bytes are the only
//! place that names them.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

pub(crate) type Kept = Vec<Arc<dyn Any + Send + Sync>>;

thread_local! {
    /// Handles serialized inside [`keeping_handles`] on this thread.
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Runs `serialize` and returns, with its result, every handle it serialized.
pub(crate) fn keeping_handles<R>(serialize: impl FnOnce() -> R) -> (R, Kept) {
    /// Puts the outer collection back, also when `serialize` unwinds.
    struct Restore(Option<Kept>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            let _ = KEPT.try_with(|k| k.replace(outer));
        }
    }
    let restore = Restore(KEPT.with(|k| k.replace(Some(Vec::new()))));
    let out = serialize();
    let kept = KEPT.with(|k| k.take());
    drop(restore);
    (out, kept.unwrap_or_default())
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

/// The objects among `kept` (refs' cells, not actor handles), each once, in the order first
/// serialized.
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // used by the `ray` backend
pub(crate) fn cells_of(kept: Kept) -> Vec<Arc<super::Cell>> {
    let mut seen = rustc_hash::FxHashSet::default();
    kept.into_iter()
        .filter_map(|held| held.downcast::<super::Cell>().ok())
        .filter(|cell| seen.insert(Arc::as_ptr(cell)))
        .collect()
}
