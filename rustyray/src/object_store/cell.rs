//! One object: its state behind its own small lock, shared by every ref to it.
//!
//! An [`ObjectRef`](crate::ObjectRef) holds its object's cell, and so do the task or actor call
//! producing it and the tasks waiting for it. Reading, completing, waiting on and cancelling an
//! object therefore touch only that object's memory, never a shared map. The `Arc`'s count is
//! the ref count: when the last holder lets go, [`Drop`] gives back the object's memory or
//! deletes its spill file.
//!
//! A ready scalar (`()`, a number, a `bool`, a `char`: what most tasks and calls return) is
//! also *published*: its bits go into an atomic beside the lock, and its kind into the top byte
//! of the sequence number's word, written (`Release`) under the lock when the entry becomes
//! ready and never changed after (a scalar is never spilled, and a read copies it rather than
//! moving it out). `read_value` of a scalar type loads that word (`Acquire`) and, when the kind
//! is the one asked for, the bits: no lock, no read-modify-write. In alternating runs of
//! `put` + `get` of a `u64` this took 1.08 s to 0.93 s for 8 M pairs; the loom model in
//! `loom_tests.rs` checks that a reader racing the result never sees the bits before it.

use std::sync::Arc;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::Mutex;

use super::id::tick;
use super::kept::keeping_handles;
use super::object::Scalar;
use super::stores;
use super::ObjectId;
use super::{decode, is_spillable, run_waiters, Entry, Object, ObjectStore, Slot, Spilled};
use super::{State, Value, Waiter, Waiters};
use crate::error::{Error, Result};

/// The largest value (in bytes, and owning nothing on the heap) that
/// [`Cell::read_value`] copies under the cell's lock rather than sharing.
const CHEAP_COPY: usize = 64;

/// One object of a store.
pub(crate) struct Cell {
    /// The object's sequence number (the low [`SEQ_BITS`]), and, in the top byte, the kind of
    /// scalar published in `scalar` plus one, or 0 while none is (see [`Cell::settle`]).
    seq_published: AtomicU64,
    /// A ready scalar value's bits, read without the lock once published.
    scalar: AtomicU64,
    /// The object's owner, the runtime (see [`Cell::id`]).
    owner: u32,
    /// Its store's serial: the store is found by it on the rare paths that need it, and is not
    /// kept alive by its cells (see `stores.rs`).
    serial: u32,
    pub(super) slot: Mutex<Slot>,
}

// With the `Arc`'s two counts, a cell is a 104-byte allocation, which glibc serves as a 112-byte
// chunk from its fast bins (a program making and dropping many objects on threads of its own
// goes through them once its per-thread cache is full). Each field that could move into the
// slot's padding did: a held small object costs 16 bytes less than at 120.
#[cfg(not(rustyray_loom))]
const _: () = assert!(std::mem::size_of::<Cell>() <= 88);

/// How many bits of `seq_published` the sequence number takes: 2^56 objects, more than a
/// process makes in decades at 100 million a second.
const SEQ_BITS: u32 = 56;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

impl Cell {
    /// A cell of store `serial`, in its index if `indexed`.
    #[inline]
    pub(super) fn new(id: ObjectId, serial: u32, entry: Entry, tick: u32, indexed: bool) -> Cell {
        debug_assert!(id.seq() <= SEQ_MASK, "2^56 objects made in one process");
        let (published, bits) = published(&entry);
        Cell {
            seq_published: AtomicU64::new(id.seq() | published),
            scalar: AtomicU64::new(bits),
            owner: id.owner(),
            serial,
            slot: Mutex::new(Slot {
                entry,
                last_used: tick,
                unspillable: false,
                indexed,
            }),
        }
    }

    /// A cell of no store standing for the gone object `id`, held by a ref read back from
    /// bytes after its object was freed (or made by another runtime): reading it reports the
    /// object as not found, and [`ObjectRef`](crate::ObjectRef) treats it as no cell at all.
    ///
    /// Its id came from bytes, so its sequence number may take all 64 bits: it is kept whole in
    /// the word a published scalar would use, which a detached cell never publishes.
    pub(crate) fn detached(id: ObjectId) -> Cell {
        Cell {
            seq_published: AtomicU64::new(id.seq() & SEQ_MASK),
            scalar: AtomicU64::new(id.seq()),
            owner: id.owner(),
            serial: stores::NONE,
            slot: Mutex::new(Slot {
                entry: Entry::Failed(Box::new(super::missing(id))),
                last_used: 0,
                unspillable: false,
                indexed: false,
            }),
        }
    }

    /// Whether it is a [`detached`](Self::detached) cell.
    #[inline]
    pub(crate) fn is_detached(&self) -> bool {
        self.serial == stores::NONE
    }

    /// The object's store, if it still exists (its runtime shut down otherwise).
    fn store(&self) -> Option<Arc<ObjectStore>> {
        stores::find(self.serial)
    }

    /// The object's sequence number: its id within its store (cheaper than [`Cell::id`]).
    #[inline]
    pub(crate) fn seq(&self) -> u64 {
        self.seq_published.load(Ordering::Relaxed) & SEQ_MASK
    }

    /// The runtime the object belongs to (its id's owner).
    #[inline]
    pub(crate) fn owner(&self) -> u32 {
        self.owner
    }

    /// The object's id.
    pub(crate) fn id(&self) -> ObjectId {
        if self.is_detached() {
            return ObjectId::new(self.owner, self.scalar.load(Ordering::Relaxed));
        }
        ObjectId::new(self.owner, self.seq())
    }

    /// Makes the object findable by id, so a ref serialized to bytes can be read back.
    pub(crate) fn enter_index(self: &Arc<Self>) {
        // With its store gone, nothing can read the ref back anyway.
        if let Some(store) = self.store() {
            store.enter_index(self);
        }
    }

    /// The object's current state. Reading a ready object marks it recently used.
    pub(crate) fn state(&self) -> State {
        let mut slot = self.slot.lock();
        if matches!(slot.entry, Entry::Ready(_)) {
            slot.last_used = tick();
        }
        State::of(&slot.entry)
    }

    /// Whether it is still pending (without marking it used).
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self.slot.lock().entry, Entry::Pending(..))
    }

    /// Whether the result of a call about to run is already resolved, which only a
    /// cancellation does (so, with no cancellation ever, it is not even looked at).
    pub(crate) fn resolved_before_run(&self) -> bool {
        if !stores::any_cancellation() {
            return false; // only a cancellation resolves a result before its call runs
        }
        !self.is_pending()
    }

    /// Registers `waiter` to run when the object resolves and returns `None`; if it is not
    /// pending, returns its state instead and drops `waiter` without running it.
    pub(crate) fn subscribe(&self, waiter: Waiter) -> Option<State> {
        let mut slot = self.slot.lock();
        match &mut slot.entry {
            Entry::Pending(waiters, _) => {
                waiters.push(waiter);
                None
            }
            other => Some(State::of(other)),
        }
    }

    /// Resolves the pending object and runs its waiters. An object that already resolved keeps
    /// its first outcome; the call returns whether this one took effect.
    pub(crate) fn complete(self: &Arc<Self>, outcome: Result<Object>) -> bool {
        wake(self.resolve(outcome))
    }

    /// [`complete`](Self::complete) by the holder of the producer's handle, which is let go
    /// before the waiters run: whoever they wake finds the object held only by the refs that
    /// still exist (so dropping the last one frees it at once).
    pub(crate) fn finish(self: Arc<Self>, outcome: Result<Object>) -> bool {
        let resolved = self.resolve(outcome);
        drop(self);
        wake(resolved)
    }

    /// Stores the outcome if the object is still pending, and returns its waiters with the
    /// state to run them with.
    ///
    /// A small value (or an error) is neither counted against the budget nor spilled, so it
    /// needs nothing of the store.
    fn resolve(self: &Arc<Self>, outcome: Result<Object>) -> Option<(Waiters, State)> {
        let unused = {
            let mut slot = self.slot.lock();
            let entry = match outcome {
                Err(error) => Entry::Failed(Box::new(error)),
                Ok(object) if !object.is_large() => Entry::Ready(object),
                Ok(object) => {
                    drop(slot);
                    return self.resolve_counted(object);
                }
            };
            match self.settle(&mut slot, entry) {
                Ok((waiters, state, _)) => return Some((waiters, state)),
                Err(unused) => unused,
            }
        };
        drop(unused); // already resolved (cancelled, say); dropped out of the lock
        None
    }

    /// Replaces a pending entry with `entry` and publishes a scalar value: its waiters, the
    /// state to run them with, and whether the cell must now enter the index (the caller does,
    /// out of the lock). `Err` gives `entry` back if the object already resolved.
    fn settle(
        &self,
        slot: &mut Slot,
        entry: Entry,
    ) -> std::result::Result<(Waiters, State, bool), Entry> {
        if !matches!(slot.entry, Entry::Pending(..)) {
            return Err(entry);
        }
        let index = is_spillable(&entry) && !std::mem::replace(&mut slot.indexed, true);
        let state = State::of(&entry);
        let (published, bits) = published(&entry);
        match std::mem::replace(&mut slot.entry, entry) {
            Entry::Pending(waiters, _control) => {
                if published != 0 {
                    self.scalar.store(bits, Ordering::Relaxed);
                    // Written under the lock only, so no read-modify-write is needed.
                    let seq = self.seq_published.load(Ordering::Relaxed);
                    self.seq_published.store(seq | published, Ordering::Release);
                }
                Ok((waiters, state, index))
            }
            _ => unreachable!("matched as pending above"),
        }
    }

    /// [`resolve`](Self::resolve) with a value measured against the store's budget: taken into
    /// memory, spilled, or refused (the object then fails with the reason).
    #[cold]
    fn resolve_counted(self: &Arc<Self>, object: Object) -> Option<(Waiters, State)> {
        let Some(store) = self.store() else {
            drop(object);
            let entry = Entry::Failed(Box::new(Error::RuntimeShutdown));
            return self
                .settle(&mut self.slot.lock(), entry)
                .ok()
                .map(|(w, s, _)| (w, s));
        };
        let entry = store
            .admit_or_spill(self.id(), object)
            .unwrap_or_else(|error| Entry::Failed(Box::new(error)));
        let settled = self.settle(&mut self.slot.lock(), entry);
        match settled {
            Ok((waiters, state, index)) => {
                if index {
                    store.insert_index(self);
                }
                Some((waiters, state))
            }
            Err(unused) => {
                // Already resolved: give back what was taken for it.
                store.forget(unused);
                None
            }
        }
    }

    /// Cancels the task producing the pending object: the object fails with
    /// [`Error::Cancelled`] now (so its dependents fail too), and the task is told to stop.
    /// Returns false if the object was no longer pending.
    pub(crate) fn cancel(self: &Arc<Self>) -> bool {
        self.cancel_naming(|| None)
    }

    /// [`cancel`](Self::cancel), naming the call in the error with `unnamed` when the object
    /// has no producer to name it (an actor call's result).
    pub(crate) fn cancel_naming(
        self: &Arc<Self>,
        unnamed: impl FnOnce() -> Option<String>,
    ) -> bool {
        let control = match &mut self.slot.lock().entry {
            Entry::Pending(_, control) => control.take(),
            _ => return false,
        };
        let function = match &control {
            Some(control) => control.function().to_owned(),
            None => unnamed().unwrap_or_else(|| "an actor method".to_owned()),
        };
        stores::note_cancellation();
        let cancelled = self.complete(Err(Error::Cancelled { function }));
        if let Some(control) = control {
            control.cancelled(self.id());
        }
        cancelled
    }

    /// The typed value once the object is resolved (read back from disk if it was spilled),
    /// or the error that failed it; `None` while it is pending. Reading a ready object marks it
    /// recently used.
    pub(crate) fn read<T: Value>(self: &Arc<Self>) -> Option<Result<Arc<T>>> {
        self.read_with(Object::downcast::<T>, |value| value)
    }

    /// What [`read`](Self::read) and [`read_value`](Self::read_value) share: `ready` takes the
    /// value out of a ready object under the lock; `spilled` turns a value read back from disk
    /// into the same.
    fn read_with<T: Value, R>(
        self: &Arc<Self>,
        ready: impl FnOnce(&Object) -> Result<R>,
        spilled: impl FnOnce(Arc<T>) -> R,
    ) -> Option<Result<R>> {
        let mut slot = self.slot.lock();
        let read = match &slot.entry {
            Entry::Pending(..) => return None,
            Entry::Ready(object) => ready(object),
            Entry::Failed(error) => return Some(Err((**error).clone())),
            Entry::Spilled(_) => {
                drop(slot);
                return Some(self.read_spilled::<T>().map(spilled));
            }
        };
        slot.last_used = tick();
        Some(read)
    }

    /// A copy of the typed value once the object is resolved, or the error that failed it;
    /// `None` while it is pending.
    ///
    /// A value that owns nothing on the heap and is small (`()`, integers, small plain
    /// structs) is copied under the cell's lock, which leaves the shared value's count alone:
    /// the thread that stored it does not see its cache line taken away at every read. Any
    /// other value is shared out of the lock and cloned after, as [`read`](Self::read) does.
    pub(crate) fn read_value<T: Value + Clone>(self: &Arc<Self>) -> Option<Result<T>> {
        if let Some(kind) = Scalar::kind_of::<T>() {
            let published = self.seq_published.load(Ordering::Acquire) >> SEQ_BITS;
            if published == u64::from(kind) + 1 {
                let bits = self.scalar.load(Ordering::Relaxed);
                if let Some(value) = Scalar::from_bits(kind, bits).get::<T>() {
                    return Some(Ok(value));
                }
            }
        }
        let copy = |value: Arc<T>| T::clone(&value);
        if std::mem::needs_drop::<T>() || std::mem::size_of::<T>() > CHEAP_COPY {
            return self.read::<T>().map(|read| read.map(copy));
        }
        self.read_with(Object::cloned::<T>, copy)
    }

    /// [`read_value`](Self::read_value) of an object known to be resolved.
    pub(crate) fn read_value_resolved<T: Value + Clone>(self: &Arc<Self>) -> Result<T> {
        match self.read_value() {
            Some(read) => read,
            None => unreachable!("a resolved object never becomes pending again"),
        }
    }

    /// Moves the value out of the object, when the caller's handle (`self`) is the only one
    /// left, the object is ready in memory and its value is a `T` that no read has lent out.
    /// The object is then left failed with [`Error::ObjectLost`], which nobody can see: the
    /// caller drops the last handle once done. `None`, and nothing changed, otherwise.
    pub(crate) fn take_last_value<T: Value>(self: &Arc<Self>) -> Option<T> {
        if Arc::strong_count(self) != 1 {
            return None;
        }
        let mut slot = self.slot.lock();
        if !matches!(slot.entry, Entry::Ready(_)) {
            return None;
        }
        let moved = Entry::Failed(Box::new(Error::ObjectLost {
            object: self.id().to_string(),
            reason: "its value was moved into the task that held its last ref".to_owned(),
        }));
        let Entry::Ready(object) = std::mem::replace(&mut slot.entry, moved) else {
            unreachable!("matched as ready above")
        };
        let size = object.is_large().then(|| object.size());
        match object.into_value::<T>() {
            Ok(value) => {
                // Only a shared value moves, and only a scalar is published: no read without
                // the lock can see the value that just moved out.
                debug_assert_eq!(self.seq_published.load(Ordering::Relaxed) >> SEQ_BITS, 0);
                drop(slot);
                if let Some(size) = size {
                    if let Some(store) = self.store() {
                        store.uncharge(size);
                    }
                }
                Some(value)
            }
            Err(object) => {
                slot.entry = Entry::Ready(object);
                None
            }
        }
    }

    /// Reads a spilled object back, re-admitting it to memory if room can be made.
    fn read_spilled<T: Value>(self: &Arc<Self>) -> Result<Arc<T>> {
        let id = self.id();
        let file = match &self.slot.lock().entry {
            Entry::Spilled(s) if s.type_id == std::any::TypeId::of::<T>() => s.file.clone(),
            Entry::Spilled(s) => {
                return Err(Error::TypeMismatch {
                    expected: std::any::type_name::<T>(),
                    found: s.type_name,
                })
            }
            Entry::Ready(object) => return object.downcast::<T>(), // read back meanwhile
            Entry::Failed(error) => return Err((**error).clone()),
            Entry::Pending(..) => return Err(super::missing(id)),
        };
        let Some(store) = self.store() else {
            return Err(Error::RuntimeShutdown); // its spill folder went with its store
        };
        let lost = |why: String| Error::ObjectLost {
            object: id.to_string(),
            reason: format!(
                "its spill file {} {why}; only this object is affected (something outside \
                 RustyRay changed its spill folder)",
                file.path.display()
            ),
        };
        let bytes = store.spill.read(id, &file).map_err(lost)?;
        let value: Arc<T> = decode::<T>(&bytes)
            .map_err(|e| lost(format!("does not decode as it was written: {e}")))?;
        let object = Object::from_arc(Arc::clone(&value));
        let object_size = object.size();
        if store.charge(object_size).is_ok() {
            let replaced = {
                let mut slot = self.slot.lock();
                if matches!(&slot.entry, Entry::Spilled(s) if s.file == file) {
                    slot.last_used = tick();
                    Some(std::mem::replace(&mut slot.entry, Entry::Ready(object)))
                } else {
                    None
                }
            };
            match replaced {
                Some(spilled) => store.forget(spilled),
                None => store.uncharge(object_size),
            }
        }
        Ok(value)
    }

    /// Moves the object to disk if it is in memory and nobody holds its value (called by the
    /// store to make room).
    pub(super) fn spill(&self, store: &ObjectStore) -> std::result::Result<(), String> {
        let object = match &self.slot.lock().entry {
            Entry::Ready(object) => object.clone(),
            _ => return Ok(()), // changed meanwhile: the store looks again
        };
        let (encoded, nested) = keeping_handles(|| object.to_bytes());
        let Ok(bytes) = encoded else {
            self.slot.lock().unspillable = true;
            return Ok(());
        };
        let file = store.spill.write(self.id(), &bytes)?;
        let spilled = {
            let mut slot = self.slot.lock();
            // Still the same value, held by the cell and `object` only.
            let same = matches!(&slot.entry, Entry::Ready(o)
                if o.same_value(&object) && o.holders() == 2);
            if same {
                slot.entry = Entry::Spilled(Box::new(Spilled {
                    file: file.clone(),
                    type_id: (*object.any()).type_id(),
                    type_name: object.type_name(),
                    _nested: nested,
                }));
            }
            same
        };
        if spilled {
            store.uncharge(object.size());
        } else {
            store.spill.remove(&file);
        }
        Ok(())
    }
}

/// The top byte of `seq_published` and the bits of `scalar` for an entry: a ready scalar's
/// kind plus one and its bits, or `(0, 0)`.
#[inline]
fn published(entry: &Entry) -> (u64, u64) {
    match entry {
        Entry::Ready(object) => match object.scalar() {
            Some(scalar) => ((u64::from(scalar.kind()) + 1) << SEQ_BITS, scalar.to_bits()),
            None => (0, 0),
        },
        _ => (0, 0),
    }
}

/// Runs the waiters of an object that [`Cell::resolve`] resolved; whether it did.
fn wake(resolved: Option<(Waiters, State)>) -> bool {
    match resolved {
        Some((waiters, _)) if waiters.is_empty() => true,
        Some((waiters, state)) => {
            run_waiters(waiters, state);
            true
        }
        None => false,
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        let slot = self.slot.get_mut();
        let indexed = slot.indexed;
        let holds_memory = match &slot.entry {
            Entry::Ready(object) => object.is_large(),
            Entry::Spilled(_) => true,
            Entry::Pending(..) | Entry::Failed(_) => false,
        };
        // Only these need the store: a small object gives back nothing but its own memory,
        // which its fields' own drops do.
        if !(indexed || holds_memory) {
            return;
        }
        let entry = std::mem::replace(&mut slot.entry, Entry::Pending(Waiters::new(), None));
        let Some(store) = self.store() else {
            return; // its runtime is gone, and with it what it counted
        };
        store.forget(entry);
        if indexed {
            store.leave_index(self.id());
        }
    }
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cell({})", self.id())
    }
}
