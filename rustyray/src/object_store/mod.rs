//! The object store: where every `put` value and every task result lives.
//!
//! # Design
//!
//! Each object is a [`Cell`]: its entry (`Pending` with the callbacks waiting for it, `Ready`
//! with the value, `Spilled` or `Failed`) behind the cell's own small lock. Refs, the task or
//! call producing the object, and the tasks waiting for it all hold the cell, so the hot paths
//! (store a result, read it, wait for it, drop the last ref) touch only that object's memory.
//! The `Arc`'s count is the ref count; the cell's `Drop` gives its memory back. A cell names
//! its store by serial rather than holding it: most objects never need their store after they
//! are made, and the few paths that do find it in a table of the stores alive (`stores.rs`).
//!
//! The store keeps two weak directories beside the cells, off the hot path:
//! - a registry of every cell (one list per thread, swept as it grows, see `registry.rs`), for
//!   the state API, `stats` and failing what is pending at shutdown;
//! - an index by id of the cells that must be findable: those a ref was serialized to (so
//!   [`ObjectStore::lookup`] can read the ref back from bytes) and those of at least
//!   [`SPILLABLE`] bytes (the candidates for spilling).
//!
//! Local objects stay typed: a ready entry holds the value as an `Arc<dyn Any>` together with its
//! size and a monomorphized postcard serializer (kept for spilling to disk), so the local path
//! never serializes. Reads downcast the `Arc`, which is a pointer comparison of `TypeId`s.
//! `()` and primitive values (numbers, `bool`, `char`) are held inline instead, with no `Arc`:
//! no allocation made on one thread and freed on another, and no count both write.
//!
//! Waiting is notification-based. A waiter is a one-shot callback stored in the pending entry and
//! run once, after the cell's lock is released, when the entry resolves. Callbacks may resolve
//! further objects (a failed task fails its dependents, which fail theirs, ...); a per-thread
//! trampoline runs those iteratively, so a chain of any length uses constant stack.
//!
//! # Memory and spilling
//!
//! Ready objects in memory of at least [`SPILLABLE`] bytes count against `object_store_memory`
//! (smaller ones are neither counted nor spilled, as Ray keeps small objects in the owner's
//! memory outside its object store). Admission is one atomic update while there is room. When a
//! new object does not fit, the store spills the least recently read object that nobody holds
//! (its `Arc` is the store's only one, so a value lent out by `get_arc` is never spilled) to
//! [`spill`]'s folder, and repeats until the new object fits. An object larger than the whole
//! budget goes to disk directly. A spilled object is read back on its next typed read (`get`, a
//! task argument) and re-admitted if room can be made. Refs inside a spilled object stay
//! counted: serialization collects their handles, which the spilled entry keeps. When neither
//! memory nor disk can take an object, the caller gets [`Error::ObjectStoreFull`] and nothing
//! already stored changes. Finding the LRU victim scans the index, which is fine while
//! spilling is rare and objects are large.

mod blocks;
mod cell;
pub(crate) mod codec;
pub(crate) mod foreign;
mod id;
mod info;
mod kept;
#[cfg(all(test, rustyray_loom))]
mod loom_tests;
mod object;
mod producer;
mod registry;
mod spill;
mod stores;
#[cfg(test)]
mod tests;
mod waiter;

use std::any::{Any, TypeId};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
pub(crate) use cell::Cell;
use codec::decode;
pub(crate) use id::missing;
#[cfg(feature = "ray")]
pub(crate) use id::process_nonce;
pub use id::ObjectId;
pub(crate) use id::{IdBlock, WireId};
pub use info::{ObjectInfo, ObjectState};
#[cfg_attr(not(feature = "ray"), allow(unused_imports))]
pub(crate) use kept::cells_of;
pub(crate) use kept::{keeping_handles, note_serialized};
pub(crate) use object::Object;
pub use object::Value;
pub(crate) use producer::Producer;
use spill::{Spill, SpillFile};
use waiter::run_waiters;
pub(crate) use waiter::{Arrival, Countdown, Waiter, Waiters};

/// What a cell holds. The rare, large variants are boxed, so a cell stays small.
enum Entry {
    /// Its waiters, and how to cancel the task that will produce it (none for an actor call's
    /// result or a stream's item).
    Pending(Waiters, Option<Arc<dyn Producer>>),
    Ready(Object),
    Failed(Box<Error>),
    Spilled(Box<Spilled>),
}

/// An object on disk: its file (with its encoded size), its type, and the handles of the refs
/// it contains (kept so those objects stay alive while this one is on disk).
struct Spilled {
    file: SpillFile,
    type_id: TypeId,
    type_name: &'static str,
    _nested: Vec<Arc<dyn Any + Send + Sync>>,
}

/// What a cell holds under its lock.
struct Slot {
    entry: Entry,
    /// When the object was last read (a tick of the store's clock), for LRU spilling.
    last_used: u32,
    /// Set when spilling the object failed to serialize it, so it is not picked again.
    unspillable: bool,
    /// Whether the store's index has it (see [`ObjectStore::lookup`]).
    indexed: bool,
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// Ready, in memory (read it with [`Cell::read`]).
    Ready,
    /// Ready, on disk: a typed read brings it back ([`Cell::read_spilled`]).
    Spilled,
    /// Boxed, so a state stays two words: states are moved through every resolution.
    Failed(Box<Error>),
    Pending,
}

impl State {
    /// The error a task or call taking the object as an argument fails with, if any.
    pub(crate) fn failure(&self) -> Option<Error> {
        match self {
            State::Failed(error) => Some((**error).clone()),
            State::Ready | State::Spilled | State::Pending => None,
        }
    }

    fn of(entry: &Entry) -> State {
        match entry {
            Entry::Ready(_) => State::Ready,
            Entry::Spilled(_) => State::Spilled,
            Entry::Failed(e) => State::Failed(e.clone()),
            Entry::Pending(..) => State::Pending,
        }
    }
}

const SHARDS: usize = 64;

/// Objects of at least this size are entered in the index when they become ready, so that
/// spilling can find them. Smaller ones always stay in memory (Ray keeps small objects inline
/// with their owner too).
const SPILLABLE: usize = 1024;

type IndexShard = CachePadded<Mutex<FxHashMap<u64, Weak<Cell>>>>;

/// The object store of one runtime.
pub(crate) struct ObjectStore {
    owner: u32,
    /// This store among all the process makes: how its cells find it (see `stores.rs`).
    serial: u32,
    /// Every cell made, for the state API, `stats` and shutdown (see `registry.rs`).
    registry: registry::Registry,
    /// Cells findable by id: those a ref was serialized to (so it can be read back) and those
    /// big enough to spill. The entries are weak, so the index never keeps an object alive.
    index: Box<[IndexShard]>,
    /// The memory budget, and the bytes of ready objects in memory.
    limit: u64,
    used: AtomicU64,
    /// Serializes the slow path of admission (spilling to make room).
    admission: Mutex<()>,
    spill: Spill,
    /// Large allocations of freed `put_slice` values, kept mapped for the next ones.
    blocks: blocks::Blocks,
}

/// Every object a store holds, and what will produce those still pending (for the state API).
pub(crate) struct Snapshot {
    /// The objects, in id order.
    pub(crate) objects: Vec<ObjectInfo>,
    /// The pending objects' producers.
    pub(crate) producers: Vec<(ObjectId, Arc<dyn Producer>)>,
}

/// Where and how much an object store may keep.
pub(crate) struct StoreLimits {
    pub(crate) memory: u64,
    pub(crate) spill_dir: PathBuf,
    pub(crate) spill_limit: Option<u64>,
}

impl ObjectStore {
    pub(crate) fn new(owner: u32, limits: StoreLimits) -> Arc<ObjectStore> {
        Arc::new_cyclic(|store| ObjectStore {
            owner,
            serial: stores::enter(store.clone()),
            registry: registry::Registry::new(),
            index: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
            limit: limits.memory,
            used: AtomicU64::new(0),
            admission: Mutex::new(()),
            spill: Spill::new(limits.spill_dir, owner, limits.spill_limit),
            blocks: blocks::Blocks::new(blocks::KEPT),
        })
    }

    /// Makes a cell and registers it; indexes it too if it is big enough to spill.
    #[inline]
    fn make(self: &Arc<Self>, id: ObjectId, entry: Entry) -> Arc<Cell> {
        // A spillable cell is indexed from the start (its flag set before anyone shares it).
        let indexed = is_spillable(&entry);
        let cell = Arc::new(Cell::new(id, self.serial, entry, id::tick(), indexed));
        self.registry.push(&cell);
        if indexed {
            self.insert_index(&cell);
        }
        cell
    }

    /// Enters a cell in the index (once).
    fn enter_index(&self, cell: &Arc<Cell>) {
        if !std::mem::replace(&mut cell.slot.lock().indexed, true) {
            self.insert_index(cell);
        }
    }

    /// Puts a cell in the index (its `indexed` flag was set by the caller).
    fn insert_index(&self, cell: &Arc<Cell>) {
        let id = cell.id();
        self.index[id.seq() as usize % SHARDS]
            .lock()
            .insert(id.seq(), Arc::downgrade(cell));
    }

    /// Takes a dying cell out of the index.
    fn leave_index(&self, id: ObjectId) {
        let mut shard = self.index[id.seq() as usize % SHARDS].lock();
        if shard
            .get(&id.seq())
            .is_some_and(|cell| cell.strong_count() == 0)
        {
            shard.remove(&id.seq());
        }
    }

    /// The cell of an object whose ref was serialized, if it still exists (to read a ref back
    /// from bytes).
    pub(crate) fn lookup(&self, id: ObjectId) -> Option<Arc<Cell>> {
        if id.owner() != self.owner {
            return None;
        }
        let cell = self.index[id.seq() as usize % SHARDS]
            .lock()
            .get(&id.seq())
            .and_then(Weak::upgrade);
        cell
    }

    /// Every live cell (strong handles taken under the lists' locks, released after).
    fn live(&self) -> Vec<Arc<Cell>> {
        self.registry.live()
    }

    /// Gives back what an entry held: its memory, or its spill file.
    fn forget(&self, entry: Entry) {
        match entry {
            Entry::Ready(object) if object.is_large() => {
                self.uncharge(object.size());
                self.recycle(object);
            }
            Entry::Spilled(spilled) => self.spill.remove(&spilled.file),
            Entry::Ready(_) | Entry::Pending(..) | Entry::Failed(_) => {}
        }
    }

    /// Takes an object of `size` bytes out of the memory budget (spilling others to make room
    /// if needed). Objects under [`SPILLABLE`] bytes are not counted: they are never spilled,
    /// and counting them would cost a shared atomic update per object, more than they hold
    /// (Ray likewise keeps small objects in the owner's memory, outside its object store).
    fn charge(&self, size: usize) -> Result<()> {
        if size < SPILLABLE {
            return Ok(());
        }
        self.admit(size as u64)
    }

    /// Gives back what [`charge`](Self::charge) took.
    fn uncharge(&self, size: usize) {
        if size >= SPILLABLE {
            self.used.fetch_sub(size as u64, Ordering::AcqRel);
        }
    }

    /// Takes `size` bytes of the memory budget if they fit now (one atomic update).
    fn take_room(&self, size: u64) -> bool {
        let fits = |used: u64| used.checked_add(size).filter(|total| *total <= self.limit);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, fits)
            .is_ok()
    }

    /// Takes `size` bytes of the memory budget, spilling unused objects to make room if needed.
    fn admit(&self, size: u64) -> Result<()> {
        if self.take_room(size) {
            return Ok(());
        }
        let _admission = self.admission.lock();
        loop {
            if self.take_room(size) {
                return Ok(());
            }
            if self.give_back_blocks() {
                continue; // kept blocks go before any object is spilled
            }
            match self.spill_one() {
                Ok(true) => continue,
                Ok(false) => {
                    let reason = format!(
                        "every object in memory of at least {SPILLABLE} bytes is in use (being \
                         read or lent out); smaller objects are never spilled"
                    );
                    return Err(self.full(size, &reason));
                }
                Err(reason) => return Err(self.full(size, &reason)),
            }
        }
    }

    fn full(&self, needed: u64, reason: &str) -> Error {
        Error::ObjectStoreFull {
            needed,
            used: self.used.load(Ordering::Acquire),
            limit: self.limit,
            reason: reason.to_owned(),
        }
    }

    /// Spills the least recently read object nobody holds. `Ok(false)` if there is none.
    fn spill_one(&self) -> std::result::Result<bool, String> {
        // Candidates are taken out of the index first: a cell dropped here may leave the
        // index, which takes an index lock.
        let mut candidates = Vec::new();
        for shard in self.index.iter() {
            candidates.extend(shard.lock().values().filter_map(Weak::upgrade));
        }
        let mut victim: Option<(u32, &Arc<Cell>)> = None;
        for cell in &candidates {
            let slot = cell.slot.lock();
            let Entry::Ready(object) = &slot.entry else {
                continue;
            };
            let idle = object.holders() == 1 && !slot.unspillable;
            if idle && victim.is_none_or(|(used, _)| slot.last_used < used) {
                victim = Some((slot.last_used, cell));
            }
        }
        match victim {
            Some((_, cell)) => cell.spill(self).map(|()| true),
            None => Ok(false),
        }
    }

    /// A ready object's entry: in memory if the budget (after spilling others) allows, else on
    /// disk; [`Error::ObjectStoreFull`] if neither can take it.
    #[inline]
    fn admit_or_spill(&self, id: ObjectId, object: Object) -> Result<Entry> {
        if !object.is_large() {
            return Ok(Entry::Ready(object)); // not counted: see `charge`
        }
        self.admit_or_spill_counted(id, object)
    }

    /// Whether an object of `size` bytes (as [`Object::size_of`] gives it) is stored without
    /// counting against the budget, so storing it cannot fail: a small object is never
    /// counted, whatever the budget (as `Config::object_store_memory` documents).
    #[inline]
    pub(crate) fn admits_uncounted_size(&self, size: usize) -> bool {
        size < SPILLABLE
    }

    /// [`admit_or_spill`](Self::admit_or_spill) of an object that counts against the budget.
    fn admit_or_spill_counted(&self, id: ObjectId, object: Object) -> Result<Entry> {
        let size = object.size() as u64;
        let memory = if size <= self.limit {
            match self.charge(object.size()) {
                Ok(()) => return Ok(Entry::Ready(object)),
                Err(Error::ObjectStoreFull { reason, .. }) => reason,
                Err(other) => return Err(other),
            }
        } else {
            "it is larger than the whole memory budget".to_owned()
        };
        let (encoded, nested) = keeping_handles(|| object.to_bytes());
        let bytes = encoded?;
        let file = self
            .spill
            .write(id, &bytes)
            .map_err(|disk| self.full(size, &format!("in memory, {memory}; on disk, {disk}")))?;
        Ok(Entry::Spilled(Box::new(Spilled {
            file,
            type_id: (*object.any()).type_id(),
            type_name: object.type_name(),
            _nested: nested,
        })))
    }

    /// A store with a 1 GiB budget spilling to the temporary directory (tests only).
    #[cfg(test)]
    pub(crate) fn for_tests(owner: u32) -> Arc<ObjectStore> {
        let limits = StoreLimits {
            memory: 1 << 30,
            spill_dir: std::env::temp_dir(),
            spill_limit: None,
        };
        ObjectStore::new(owner, limits)
    }

    /// A new object that a task or actor call will produce later; `control` cancels the task.
    #[inline]
    pub(crate) fn insert_pending(
        self: &Arc<Self>,
        control: Option<Arc<dyn Producer>>,
    ) -> Arc<Cell> {
        self.make(self.new_id(), Entry::Pending(Waiters::new(), control))
    }

    /// A new object that is ready now, in memory or (over the budget) on disk; fails with
    /// [`Error::ObjectStoreFull`] when neither can take it.
    pub(crate) fn insert_ready(self: &Arc<Self>, object: Object) -> Result<Arc<Cell>> {
        self.insert_ready_as(self.new_id(), object)
    }

    /// A new ready object under an id taken earlier with [`reserve_ids`](Self::reserve_ids).
    pub(crate) fn insert_ready_as(
        self: &Arc<Self>,
        id: ObjectId,
        object: Object,
    ) -> Result<Arc<Cell>> {
        let entry = self.admit_or_spill(id, object)?;
        Ok(self.make(id, entry))
    }

    /// A new object that failed already (for example, an infeasible task's result).
    pub(crate) fn insert_failed(self: &Arc<Self>, error: Error) -> Arc<Cell> {
        self.make(self.new_id(), Entry::Failed(Box::new(error)))
    }

    /// Fails every pending object with `error` (at shutdown), waking all waiters.
    pub(crate) fn fail_all_pending(&self, error: &Error) {
        for cell in self.live() {
            cell.complete(Err(error.clone()));
        }
    }

    /// A snapshot of every object (for `rustyray::state`), and of the tasks still pending.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let live = self.live();
        let mut objects = Vec::with_capacity(live.len());
        let mut tasks = Vec::new();
        for cell in &live {
            let slot = cell.slot.lock();
            let (state, size, pinned) = match &slot.entry {
                Entry::Pending(..) => (ObjectState::Pending, None, false),
                Entry::Ready(o) => (ObjectState::Ready, Some(o.size() as u64), o.holders() > 1),
                Entry::Spilled(s) => (ObjectState::Spilled, Some(s.file.len), false),
                Entry::Failed(_) => (ObjectState::Failed, None, false),
            };
            if let Entry::Pending(_, Some(control)) = &slot.entry {
                tasks.push((cell.id(), Arc::clone(control)));
            }
            objects.push(ObjectInfo {
                id: cell.id(),
                state,
                size,
                // Not counting the handle this snapshot holds.
                refs: Arc::strong_count(cell) - 1,
                pinned,
            });
        }
        drop(live);
        objects.sort_by_key(|o| o.id);
        Snapshot {
            objects,
            producers: tasks,
        }
    }

    /// Number of objects held (any state).
    pub(crate) fn len(&self) -> usize {
        self.registry.len()
    }

    /// Bytes of ready objects in memory; bytes and objects on disk.
    /// The memory budget, in bytes.
    #[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn usage(&self) -> (u64, u64, u64) {
        let (spilled_bytes, spilled_objects) = self.spill.usage();
        (
            self.used.load(Ordering::Acquire),
            spilled_bytes,
            spilled_objects,
        )
    }

    /// The folder spilled objects go to, if one was made.
    pub(crate) fn spill_path(&self) -> Option<&std::path::Path> {
        self.spill.path()
    }

    /// Deletes the spill folder (at shutdown).
    pub(crate) fn clear_spill(&self) {
        self.spill.clear();
    }
}

impl Drop for ObjectStore {
    /// Cells may outlive their store (a ref kept after its runtime is gone); they find it
    /// gone (`stores.rs`), so its spill folder, which nothing can read back any more, goes now.
    fn drop(&mut self) {
        stores::leave(self.serial);
        self.spill.clear();
    }
}

/// Whether an entry is an object in memory big enough to be worth spilling.
fn is_spillable(entry: &Entry) -> bool {
    matches!(entry, Entry::Ready(object) if object.is_large())
}
