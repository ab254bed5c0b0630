//! The registry of every cell of a store: a weak list per thread, for the state API, `stats`
//! and failing what is pending at shutdown.
//!
//! Threads are spread over [`SHARDS`] lists in the order they first make an object, so each
//! usually has its own and its lock is never contended. A list is a `Vec` of weak handles,
//! swept as it grows (each new entry checks [`SWEEP`] old ones and drops them if their cell is
//! gone), so it stays within a small factor of the cells alive and a dead cell's memory goes
//! back within a lap.
//!
//! An entry costs an object three atomic read-modify-writes (the list's lock and unlock, and
//! the weak count taken) and a fourth when the sweep drops it: of the 1.07 s that 8 M `put` +
//! `get` pairs of a `u64` took, a build without the registry took 0.81 s, and one keeping only
//! the weak entry, in a list of the thread's own without a lock, 0.96 s. Two ways to make it
//! cheaper were tried and left out:
//! - the first thread of each list writing its entries into a small array without the lock
//!   (two plain stores; readers take the lock and read the array's length with `Acquire`), and
//!   taking the lock once per 4 entries to move them into the list: 0.91 s → 0.86 s for the
//!   same pairs. It needs unsafe code (the array holds raw weak handles) in the object store,
//!   for 6%. At 16 entries a list freed cells in bursts larger than the allocator's per-thread
//!   cache, which made it slower than the lock;
//! - freeing the newest dead entries first, so that a cell made and dropped at once is freed
//!   while it is still in the cache: no change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use super::Cell;

/// How many lists a registry has.
const SHARDS: usize = 64;

/// How many old entries each new one checks. The list grows by one entry a push, so the sweep
/// must move faster than that to ever lap it: at two, a list whose front holds long-lived
/// cells (a cache of held objects) fell behind and grew without bound (about 6 bytes a task,
/// the dead cells' memory, over tens of millions of tasks); at three it stays within about
/// 1.2 times the most cells alive at once (the `--soak` bench's held run checks it).
const SWEEP: usize = 3;

/// Every cell of one store.
pub(super) struct Registry {
    lists: Box<[CachePadded<Mutex<Sweep>>]>,
}

/// One list of registered cells, and where the sweep for dead ones stands.
#[derive(Default)]
struct Sweep {
    cells: Vec<Weak<Cell>>,
    cursor: usize,
}

impl Sweep {
    /// Adds a cell, after checking the next [`SWEEP`] entries and dropping them if their cell
    /// is gone: constant work per cell, and a dead cell's memory (a `Weak` keeps it) is given
    /// back within a lap.
    fn push(&mut self, cell: Weak<Cell>) {
        // The newest entries first: an object made and dropped at once (a `put` read and let
        // go, a task's result taken) is freed here, by the next one made, while its memory is
        // still in the cache, and the allocator hands that memory to the object after.
        while self
            .cells
            .last()
            .is_some_and(|last| last.strong_count() == 0)
        {
            self.cells.pop();
        }
        for _ in 0..SWEEP {
            if self.cursor >= self.cells.len() {
                self.cursor = 0;
                break;
            }
            if self.cells[self.cursor].strong_count() == 0 {
                self.cells.swap_remove(self.cursor);
            } else {
                self.cursor += 1;
            }
        }
        self.cells.push(cell);
    }
}

/// This thread's list: threads are spread over the lists in the order they first make an
/// object, so each usually has its own.
fn list_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static LIST: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    LIST.with(|list| *list)
}

impl Registry {
    pub(super) fn new() -> Registry {
        Registry {
            lists: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
        }
    }

    /// Registers a new cell, from the thread that made it.
    #[inline]
    pub(super) fn push(&self, cell: &Arc<Cell>) {
        self.lists[list_of_this_thread()]
            .lock()
            .push(Arc::downgrade(cell));
    }

    /// Every live cell (strong handles taken under the lists' locks, released after).
    pub(super) fn live(&self) -> Vec<Arc<Cell>> {
        let mut out = Vec::new();
        for list in self.lists.iter() {
            out.extend(list.lock().cells.iter().filter_map(Weak::upgrade));
        }
        out
    }

    /// How many cells are alive.
    pub(super) fn len(&self) -> usize {
        let alive = |list: &Sweep| list.cells.iter().filter(|c| c.strong_count() > 0).count();
        self.lists.iter().map(|list| alive(&list.lock())).sum()
    }

    /// How many entries it holds, dead cells' included (tests of the sweep).
    #[cfg(test)]
    pub(super) fn entries(&self) -> usize {
        self.lists.iter().map(|list| list.lock().cells.len()).sum()
    }
}
