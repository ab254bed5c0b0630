//! Objects of other processes, as this one holds copies of them.
//!
//! A value that crosses processes (a Ray worker's argument, a result read back by the driver)
//! names its refs by [`WireId`]: the sending process's nonce, its runtime and sequence number.
//! The receiver enters each object it was sent beside the value in its own store (a new local
//! entry) and here, under the sender's id, before it decodes the value; decoding a ref with
//! another process's nonce then finds that entry. A ref whose object was not sent finds
//! nothing, and reads as not found, never as another object.
//!
//! The index holds no object alive: the receiver keeps the entries while it decodes, and the
//! decoded refs keep their own.

use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::{Cell, WireId};

#[cfg_attr(not(feature = "ray"), allow(dead_code))]
struct Index {
    cells: FxHashMap<WireId, Weak<Cell>>,
    /// The size after the last sweep of dead entries: the next sweep is due at twice that.
    swept: usize,
}

static INDEX: LazyLock<Mutex<Index>> = LazyLock::new(|| {
    Mutex::new(Index {
        cells: FxHashMap::default(),
        swept: 0,
    })
});

#[cfg_attr(not(feature = "ray"), allow(dead_code))] // used by the `ray` backend
/// Enters `cell` as this process's copy of the object another process calls `wire`.
pub(crate) fn enter(wire: WireId, cell: &Arc<Cell>) {
    let mut index = INDEX.lock();
    index.cells.insert(wire, Arc::downgrade(cell));
    if index.cells.len() > 2 * index.swept.max(64) {
        index.cells.retain(|_, cell| cell.strong_count() > 0);
        index.swept = index.cells.len();
    }
}

/// This process's copy of the object another process calls `wire`, while one is held.
pub(crate) fn find(wire: &WireId) -> Option<Arc<Cell>> {
    INDEX.lock().cells.get(wire).and_then(Weak::upgrade)
}
