//! The object store: where every `put` value and every task result lives.
//!
//! # Design
//!
//! A sharded map from an object's sequence number to its [`Entry`]: `Pending` (with the
//! callbacks waiting for it), `Ready` (the value) or `Failed` (the error). Sequence numbers are
//! handed out by a counter, so the low bits pick the shard and neighbouring objects land on
//! different locks.
//!
//! Local objects stay typed: a ready entry holds the value as an `Arc<dyn Any>` together with its
//! size and a monomorphized postcard serializer (kept for spilling to disk), so the local path
//! never serializes. Reads downcast the `Arc`, which is a pointer comparison of `TypeId`s.
//!
//! Waiting is notification-based. A waiter is a one-shot callback stored in the pending entry and
//! run once, after the shard lock is released, when the entry resolves. Callbacks may resolve
//! further objects (a failed task fails its dependents, which fail theirs, ...); a per-thread
//! trampoline runs those iteratively, so a chain of any length uses constant stack.
//!
//! Each slot counts the `ObjectRef` handles to it; the last release frees it.
//!
//! # Memory and spilling
//!
//! Ready objects in memory count against `object_store_memory`. Admission is one atomic update
//! while there is room. When a new object does not fit, the store spills the least recently
//! read object that nobody holds (its `Arc` is the store's only one, so a value lent out by
//! `get_arc` is never spilled) to [`spill`]'s folder, and repeats until the new object fits.
//! An object larger than the whole budget goes to disk directly. A spilled object is read back
//! on its next typed read (`get`, a task argument) and re-admitted if room can be made. Refs
//! inside a spilled object stay counted: serialization collects their handles, which the
//! spilled entry keeps. When neither memory nor disk can take an object, the caller gets
//! [`Error::ObjectStoreFull`] and nothing already stored changes. Finding the LRU victim scans
//! the shards, which is fine while spilling is rare and objects are large.

mod spill;

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::counted::keeping_handles;
use crate::error::{Error, Result};
use crate::object_ref::ObjectId;
use crate::task::TaskControl;
use spill::Spill;

/// What can be stored as an object: serializable (for spilling and for other processes), owned
/// and shareable across threads.
///
/// Implemented for every type that meets the bounds; you never implement it yourself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in the object store",
    label = "objects must be `Serialize + Deserialize + Send + Sync + 'static`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for your own types; share data \
            with owned types (`Vec`, `String`, `Arc<T>`), not `Rc` or references"
)]
pub trait Value: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Value for T {}

/// A one-shot callback run when an object resolves, with its final state (ready or failed).
pub(crate) type Waiter = Box<dyn FnOnce(&State) + Send>;

type SerializeFn = fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>>;

/// A ready object: the typed value, its size and how to serialize it.
#[derive(Clone)]
pub(crate) struct Object {
    value: Arc<dyn Any + Send + Sync>,
    size: usize,
    type_name: &'static str,
    serialize: SerializeFn,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("type", &self.type_name)
            .field("size", &self.size)
            .finish()
    }
}

impl Object {
    /// Wraps a value. Its size is the length of its postcard encoding, counted without
    /// allocating.
    pub(crate) fn new<T: Value>(value: T) -> Object {
        Object::from_arc(Arc::new(value))
    }

    pub(crate) fn from_arc<T: Value>(value: Arc<T>) -> Object {
        let size = bulk_size(&*value).unwrap_or_else(|| {
            postcard::serialize_with_flavor(&*value, postcard::ser_flavors::Size::default())
                .unwrap_or(0)
        });
        Object {
            value,
            size,
            type_name: std::any::type_name::<T>(),
            serialize: serialize_as::<T>,
        }
    }

    /// The value as `Arc<T>`, or a [`Error::TypeMismatch`].
    pub(crate) fn downcast<T: Value>(&self) -> Result<Arc<T>> {
        Arc::clone(&self.value)
            .downcast::<T>()
            .map_err(|_| Error::TypeMismatch {
                expected: std::any::type_name::<T>(),
                found: self.type_name,
            })
    }

    /// The object in postcard form.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        (self.serialize)(&*self.value)
    }
}

/// The encoded size of common bulk types, in O(1): a length prefix (a varint) plus the
/// elements. Other types are measured by a counting pass over their encoding.
fn bulk_size(value: &dyn Any) -> Option<usize> {
    fn prefixed(len: usize, bytes: usize) -> usize {
        let varint = (usize::BITS - len.max(1).leading_zeros()).div_ceil(7) as usize;
        varint + bytes
    }
    macro_rules! fixed {
        ($($t:ty),*) => {$(
            if let Some(v) = value.downcast_ref::<Vec<$t>>() {
                return Some(prefixed(v.len(), v.len() * std::mem::size_of::<$t>()));
            }
        )*};
    }
    if let Some(v) = value.downcast_ref::<Vec<u8>>() {
        return Some(prefixed(v.len(), v.len()));
    }
    if let Some(s) = value.downcast_ref::<String>() {
        return Some(prefixed(s.len(), s.len()));
    }
    // Floats are written whole; integers wider than a byte are varints, at most this long.
    fixed!(f32, f64);
    None
}

/// postcard's length prefix: an unsigned LEB128 varint.
fn write_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut len = 0usize;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        len |= ((byte & 0x7f) as usize).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((len, &bytes[i + 1..]));
        }
    }
    None
}

/// Bulk encodings of byte vectors and strings, identical to postcard's but one copy instead
/// of one call per byte.
fn encode_bulk(value: &dyn Any) -> Option<Vec<u8>> {
    let bytes: &[u8] = if let Some(v) = value.downcast_ref::<Vec<u8>>() {
        v
    } else {
        value.downcast_ref::<String>()?.as_bytes()
    };
    let mut out = Vec::with_capacity(bytes.len() + 10);
    write_len(&mut out, bytes.len());
    out.extend_from_slice(bytes);
    Some(out)
}

/// Decodes a value from its postcard encoding, in bulk for byte vectors and strings.
fn decode<T: Value>(bytes: &[u8]) -> std::result::Result<Arc<T>, String> {
    let bulk = |bytes: &[u8]| -> std::result::Result<Vec<u8>, String> {
        let (len, rest) = read_len(bytes).ok_or("a bad length prefix")?;
        rest.get(..len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "a truncated payload".to_owned())
    };
    let any: Box<dyn Any> = if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        Box::new(bulk(bytes)?)
    } else if TypeId::of::<T>() == TypeId::of::<String>() {
        Box::new(String::from_utf8(bulk(bytes)?).map_err(|e| e.to_string())?)
    } else {
        return postcard::from_bytes::<T>(bytes)
            .map(Arc::new)
            .map_err(|e| e.to_string());
    };
    Ok(Arc::new(*any.downcast::<T>().expect("type checked above")))
}

fn serialize_as<T: Value>(value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>> {
    if let Some(bytes) = encode_bulk(value) {
        return Ok(bytes);
    }

    let value = value.downcast_ref::<T>().ok_or(Error::TypeMismatch {
        expected: std::any::type_name::<T>(),
        found: "another type",
    })?;
    postcard::to_stdvec(value).map_err(|e| Error::Serialization(e.to_string()))
}

enum Entry {
    Pending(Vec<Waiter>),
    Ready(Object),
    Failed(Error),
    Spilled(Spilled),
}

/// An object on disk: its file, its encoded size, its type, and the handles of the refs it
/// contains (kept so those objects stay alive while this one is on disk).
struct Spilled {
    path: PathBuf,
    size: usize,
    type_id: TypeId,
    type_name: &'static str,
    _nested: Vec<Arc<dyn Any + Send + Sync>>,
}

/// An entry, how many `ObjectRef` handles keep it alive, and (while it is a pending task
/// result) how to cancel the task.
struct Slot {
    refs: usize,
    entry: Entry,
    control: Option<Arc<TaskControl>>,
    /// When the object was last read (a tick of the store's clock), for LRU spilling.
    last_used: u64,
    /// Set when spilling the object failed to serialize it, so it is not picked again.
    unspillable: bool,
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Ready(Object),
    /// Ready, on disk: a typed read brings it back ([`ObjectStore::read_spilled`]).
    Spilled,
    Failed(Error),
    Pending,
    Missing,
}

impl State {
    /// The error a task or call taking object `id` as an argument fails with, if any.
    pub(crate) fn failure(&self, id: ObjectId) -> Option<Error> {
        match self {
            State::Failed(error) => Some(error.clone()),
            State::Missing => Some(crate::object_ref::missing(id)),
            State::Ready(_) | State::Spilled | State::Pending => None,
        }
    }

    fn of(entry: Option<&Entry>) -> State {
        match entry {
            Some(Entry::Ready(o)) => State::Ready(o.clone()),
            Some(Entry::Spilled(_)) => State::Spilled,
            Some(Entry::Failed(e)) => State::Failed(e.clone()),
            Some(Entry::Pending(_)) => State::Pending,
            None => State::Missing,
        }
    }
}

const SHARDS: usize = 64;

type Shard = CachePadded<Mutex<FxHashMap<u64, Slot>>>;

/// Waiters to run, with the state they are run with.
type WaiterBatch = (Vec<Waiter>, State);

/// The sharded object map of one runtime.
pub(crate) struct ObjectStore {
    owner: u32,
    next: AtomicU64,
    shards: Box<[Shard]>,
    /// The memory budget, and the bytes of ready objects in memory.
    limit: u64,
    used: AtomicU64,
    /// Serializes the slow path of admission (spilling to make room).
    admission: Mutex<()>,
    /// How many cancellations happened, so callers can skip the "was it cancelled?" lookup
    /// when none ever did.
    cancellations: AtomicU64,
    spill: Spill,
}

/// Where and how much an object store may keep.
pub(crate) struct StoreLimits {
    pub(crate) memory: u64,
    pub(crate) spill_dir: PathBuf,
    pub(crate) spill_limit: Option<u64>,
}

impl ObjectStore {
    pub(crate) fn new(owner: u32, limits: StoreLimits) -> ObjectStore {
        ObjectStore {
            owner,
            next: AtomicU64::new(1),
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
            limit: limits.memory,
            used: AtomicU64::new(0),
            admission: Mutex::new(()),
            cancellations: AtomicU64::new(0),
            spill: Spill::new(limits.spill_dir, owner, limits.spill_limit),
        }
    }

    /// The LRU clock: the newest id handed out. Reading it writes nothing shared, so marking
    /// an object used costs no cache-line traffic between threads.
    fn tick(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    fn shard(&self, id: ObjectId) -> &Mutex<FxHashMap<u64, Slot>> {
        &self.shards[id.seq() as usize % SHARDS]
    }

    fn new_id(&self) -> ObjectId {
        ObjectId::new(self.owner, self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn insert(&self, entry: Entry, control: Option<Arc<TaskControl>>) -> ObjectId {
        let id = self.new_id();
        self.insert_as(id, entry, control);
        id
    }

    fn insert_as(&self, id: ObjectId, entry: Entry, control: Option<Arc<TaskControl>>) {
        let slot = Slot {
            refs: 1,
            entry,
            control,
            last_used: self.tick(),
            unspillable: false,
        };
        self.shard(id).lock().insert(id.seq(), slot);
    }

    /// Counts one more handle to the object; false if it no longer exists.
    pub(crate) fn retain(&self, id: ObjectId) -> bool {
        if id.owner() != self.owner {
            return false;
        }
        match self.shard(id).lock().get_mut(&id.seq()) {
            Some(slot) => {
                slot.refs += 1;
                true
            }
            None => false,
        }
    }

    /// Counts one handle less; the object is freed when none is left.
    pub(crate) fn release(&self, id: ObjectId) {
        let freed = {
            let mut shard = self.shard(id).lock();
            match shard.get_mut(&id.seq()) {
                Some(slot) if slot.refs > 1 => {
                    slot.refs -= 1;
                    None
                }
                Some(_) => shard.remove(&id.seq()),
                None => None,
            }
        };
        // Dropped outside the lock: the value may hold refs whose release locks shards.
        if let Some(slot) = freed {
            self.forget(slot.entry);
        }
    }

    /// Gives back what a removed entry held: its memory, or its spill file.
    fn forget(&self, entry: Entry) {
        match entry {
            Entry::Ready(object) => {
                self.used.fetch_sub(object.size as u64, Ordering::AcqRel);
            }
            Entry::Spilled(spilled) => self.spill.remove(&spilled.path, spilled.size as u64),
            Entry::Pending(_) | Entry::Failed(_) => {}
        }
    }

    /// Takes `size` bytes of the memory budget, spilling unused objects to make room if needed.
    fn admit(&self, size: u64) -> Result<()> {
        let fits = |used: u64| used.checked_add(size).filter(|total| *total <= self.limit);
        if self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, fits)
            .is_ok()
        {
            return Ok(());
        }
        let _admission = self.admission.lock();
        loop {
            if self
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, fits)
                .is_ok()
            {
                return Ok(());
            }
            match self.spill_one() {
                Ok(true) => continue,
                Ok(false) => {
                    let reason = "every object in memory is in use (being read or lent out)";
                    return Err(self.full(size, reason));
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
        let mut victim: Option<(u64, u64)> = None;
        for shard in self.shards.iter() {
            for (seq, slot) in shard.lock().iter() {
                let Entry::Ready(object) = &slot.entry else {
                    continue;
                };
                let idle = Arc::strong_count(&object.value) == 1 && !slot.unspillable;
                if idle && victim.is_none_or(|(used, _)| slot.last_used < used) {
                    victim = Some((slot.last_used, *seq));
                }
            }
        }
        let Some((_, seq)) = victim else {
            return Ok(false);
        };
        let id = ObjectId::new(self.owner, seq);
        let object = match self.shard(id).lock().get(&seq).map(|s| &s.entry) {
            Some(Entry::Ready(object)) => object.clone(),
            _ => return Ok(true), // freed or changed meanwhile: look again
        };
        let (encoded, nested) = keeping_handles(|| object.to_bytes());
        let Ok(bytes) = encoded else {
            if let Some(slot) = self.shard(id).lock().get_mut(&seq) {
                slot.unspillable = true;
            }
            return Ok(true);
        };
        let path = self.spill.write(seq, &bytes)?;
        let spilled = {
            let mut shard = self.shard(id).lock();
            match shard.get_mut(&seq) {
                // Still the same value, held by the store and `object` only.
                Some(slot)
                    if matches!(&slot.entry, Entry::Ready(o)
                        if Arc::ptr_eq(&o.value, &object.value)
                            && Arc::strong_count(&o.value) == 2) =>
                {
                    slot.entry = Entry::Spilled(Spilled {
                        path: path.clone(),
                        size: bytes.len(),
                        type_id: (*object.value).type_id(),
                        type_name: object.type_name,
                        _nested: nested,
                    });
                    true
                }
                _ => false,
            }
        };
        if spilled {
            self.used.fetch_sub(object.size as u64, Ordering::AcqRel);
        } else {
            self.spill.remove(&path, bytes.len() as u64);
        }
        Ok(true)
    }

    /// A ready object's entry: in memory if the budget (after spilling others) allows, else on
    /// disk; [`Error::ObjectStoreFull`] if neither can take it.
    fn admit_or_spill(&self, id: ObjectId, object: Object) -> Result<Entry> {
        let size = object.size as u64;
        let memory = if size <= self.limit {
            match self.admit(size) {
                Ok(()) => return Ok(Entry::Ready(object)),
                Err(Error::ObjectStoreFull { reason, .. }) => reason,
                Err(other) => return Err(other),
            }
        } else {
            "it is larger than the whole memory budget".to_owned()
        };
        let (encoded, nested) = keeping_handles(|| object.to_bytes());
        let bytes = encoded?;
        let path = self
            .spill
            .write(id.seq(), &bytes)
            .map_err(|disk| self.full(size, &format!("in memory, {memory}; on disk, {disk}")))?;
        Ok(Entry::Spilled(Spilled {
            path,
            size: bytes.len(),
            type_id: (*object.value).type_id(),
            type_name: object.type_name,
            _nested: nested,
        }))
    }

    /// Reads a spilled object back, re-admitting it to memory if room can be made.
    pub(crate) fn read_spilled<T: Value>(&self, id: ObjectId) -> Result<Arc<T>> {
        let path = match self.shard(id).lock().get(&id.seq()).map(|s| &s.entry) {
            Some(Entry::Spilled(s)) if s.type_id == TypeId::of::<T>() => s.path.clone(),
            Some(Entry::Spilled(s)) => {
                return Err(Error::TypeMismatch {
                    expected: std::any::type_name::<T>(),
                    found: s.type_name,
                })
            }
            Some(Entry::Ready(object)) => return object.downcast::<T>(), // read back meanwhile
            Some(Entry::Failed(error)) => return Err(error.clone()),
            Some(Entry::Pending(_)) | None => return Err(crate::object_ref::missing(id)),
        };
        let bytes = self.spill.read(&path).map_err(|e| {
            let at = path.display();
            Error::Serialization(format!("reading spilled object {id} from {at}: {e}"))
        })?;
        let value: Arc<T> = decode::<T>(&bytes)
            .map_err(|e| Error::Serialization(format!("decoding spilled object {id}: {e}")))?;
        let object = Object::from_arc(Arc::clone(&value));
        let size = object.size as u64;
        if self.admit(size).is_ok() {
            let replaced = {
                let mut shard = self.shard(id).lock();
                match shard.get_mut(&id.seq()) {
                    Some(slot) if matches!(&slot.entry, Entry::Spilled(s) if s.path == path) => {
                        slot.last_used = self.tick();
                        Some(std::mem::replace(&mut slot.entry, Entry::Ready(object)))
                    }
                    _ => None,
                }
            };
            match replaced {
                Some(spilled) => self.forget(spilled),
                None => {
                    self.used.fetch_sub(size, Ordering::AcqRel);
                }
            }
        }
        Ok(value)
    }

    /// A new object that a task or actor call will produce later; `control` cancels the task.
    pub(crate) fn insert_pending(&self, control: Option<Arc<TaskControl>>) -> ObjectId {
        self.insert(Entry::Pending(Vec::new()), control)
    }

    /// A new object that is ready now, in memory or (over the budget) on disk; fails with
    /// [`Error::ObjectStoreFull`] when neither can take it.
    pub(crate) fn insert_ready(&self, object: Object) -> Result<ObjectId> {
        let id = self.new_id();
        let entry = self.admit_or_spill(id, object)?;
        self.insert_as(id, entry, None);
        Ok(id)
    }

    /// A new object that failed already (for example, an infeasible task's result).
    pub(crate) fn insert_failed(&self, error: Error) -> ObjectId {
        self.insert(Entry::Failed(error), None)
    }

    /// Cancels the task producing a pending object: the object fails with
    /// [`Error::Cancelled`] now (so its dependents fail too), and the task is told to stop.
    /// Returns false if the object was no longer pending.
    pub(crate) fn cancel(&self, id: ObjectId) -> bool {
        let control = {
            let mut shard = self.shard(id).lock();
            match shard.get_mut(&id.seq()) {
                Some(slot) if matches!(slot.entry, Entry::Pending(_)) => slot.control.take(),
                _ => return false,
            }
        };
        let function = control
            .as_ref()
            .map_or_else(|| "an actor method".to_owned(), |c| c.function().to_owned());
        self.cancellations.fetch_add(1, Ordering::AcqRel);
        let cancelled = self.complete(id, Err(Error::Cancelled { function }));
        if let Some(control) = control {
            if control.phase() != crate::task::PHASE_RUNNING {
                // It never runs, so it leaves no run in the timeline: record the cancellation.
                crate::timeline::record_skipped(
                    control.function_name(),
                    id,
                    crate::timeline::Skipped::Cancelled,
                );
            }
            control.cancel();
        }
        cancelled
    }

    /// Resolves a pending object and runs its waiters. An object that already resolved keeps its
    /// first outcome; the call returns whether this one took effect.
    pub(crate) fn complete(&self, id: ObjectId, outcome: Result<Object>) -> bool {
        let entry = match outcome {
            Ok(object) => self
                .admit_or_spill(id, object)
                .unwrap_or_else(Entry::Failed),
            Err(error) => Entry::Failed(error),
        };
        let resolved = {
            let mut shard = self.shard(id).lock();
            match shard.get_mut(&id.seq()) {
                Some(Slot {
                    entry: current @ Entry::Pending(_),
                    control,
                    ..
                }) => {
                    *control = None;
                    let state = State::of(Some(&entry));
                    match std::mem::replace(current, entry) {
                        Entry::Pending(waiters) => Ok((waiters, state)),
                        _ => unreachable!("matched as pending above"),
                    }
                }
                _ => Err(entry),
            }
        };
        match resolved {
            Ok((waiters, state)) => {
                run_waiters(waiters, state);
                true
            }
            Err(unused) => {
                // Already resolved (cancelled, say) or freed: give back what was taken for it.
                self.forget(unused);
                false
            }
        }
    }

    /// The object's current state. Reading a ready object marks it recently used.
    pub(crate) fn state(&self, id: ObjectId) -> State {
        if id.owner() != self.owner {
            return State::Missing;
        }
        let mut shard = self.shard(id).lock();
        match shard.get_mut(&id.seq()) {
            Some(slot) => {
                if matches!(slot.entry, Entry::Ready(_)) {
                    slot.last_used = self.tick();
                }
                State::of(Some(&slot.entry))
            }
            None => State::Missing,
        }
    }

    /// Whether the object exists and already resolved: a task or call whose result is
    /// resolved before it runs was cancelled. (A result nobody refers to any more is gone, not
    /// resolved: its task still runs, for its effects.)
    pub(crate) fn is_resolved(&self, id: ObjectId) -> bool {
        if self.cancellations.load(Ordering::Acquire) == 0 {
            return false; // only a cancellation resolves a result before its call runs
        }
        matches!(
            self.shard(id).lock().get(&id.seq()).map(|s| &s.entry),
            Some(Entry::Ready(_) | Entry::Failed(_) | Entry::Spilled(_))
        )
    }

    /// Registers `waiter` to run when the object resolves and returns `None`; if the object is
    /// not pending, returns its state instead and drops `waiter` without running it.
    pub(crate) fn subscribe(&self, id: ObjectId, waiter: Waiter) -> Option<State> {
        if id.owner() != self.owner {
            return Some(State::Missing);
        }
        let mut shard = self.shard(id).lock();
        match shard.get_mut(&id.seq()).map(|slot| &mut slot.entry) {
            Some(Entry::Pending(waiters)) => {
                waiters.push(waiter);
                None
            }
            other => Some(State::of(other.map(|e| &*e))),
        }
    }

    /// Fails every pending object with `error` (at shutdown), waking all waiters.
    pub(crate) fn fail_all_pending(&self, error: &Error) {
        for shard in self.shards.iter() {
            let mut waiters = Vec::new();
            for slot in shard.lock().values_mut() {
                let entry = &mut slot.entry;
                if let Entry::Pending(w) = entry {
                    waiters.append(w);
                    *entry = Entry::Failed(error.clone());
                }
            }
            run_waiters(waiters, State::Failed(error.clone()));
        }
    }

    /// A snapshot of every object (for `rustyray::state`), and of the tasks still pending.
    pub(crate) fn snapshot(
        &self,
    ) -> (
        Vec<crate::state::ObjectInfo>,
        Vec<(ObjectId, Arc<TaskControl>)>,
    ) {
        use crate::state::{ObjectInfo, ObjectState};
        let mut objects = Vec::new();
        let mut tasks = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (&seq, slot) in shard.iter() {
                let id = ObjectId::new(self.owner, seq);
                let (state, size, pinned) = match &slot.entry {
                    Entry::Pending(_) => (ObjectState::Pending, None, false),
                    Entry::Ready(o) => (
                        ObjectState::Ready,
                        Some(o.size as u64),
                        Arc::strong_count(&o.value) > 1,
                    ),
                    Entry::Spilled(s) => (ObjectState::Spilled, Some(s.size as u64), false),
                    Entry::Failed(_) => (ObjectState::Failed, None, false),
                };
                if let (Entry::Pending(_), Some(control)) = (&slot.entry, &slot.control) {
                    tasks.push((id, Arc::clone(control)));
                }
                objects.push(ObjectInfo {
                    id,
                    state,
                    size,
                    refs: slot.refs,
                    pinned,
                });
            }
        }
        objects.sort_by_key(|o| o.id);
        (objects, tasks)
    }

    /// Number of objects held (any state).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Bytes of ready objects in memory; bytes and objects on disk.
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

thread_local! {
    /// Waiters queued by callbacks that ran inside `run_waiters` on this thread, with the state
    /// to run them with.
    static QUEUED: RefCell<Option<Vec<WaiterBatch>>> = const { RefCell::new(None) };
}

/// Runs waiters; waiters that resolve further objects enqueue theirs here instead of recursing.
fn run_waiters(waiters: Vec<Waiter>, state: State) {
    if waiters.is_empty() {
        return;
    }
    let mut first = Some((waiters, state));
    let nested = QUEUED.with(|q| {
        let mut q = q.borrow_mut();
        match q.as_mut() {
            Some(queue) => {
                queue.extend(first.take());
                true
            }
            None => {
                *q = Some(Vec::new());
                false
            }
        }
    });
    if nested {
        return;
    }
    // Outermost call on this thread: drain until no callback queued more.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            QUEUED.with(|q| *q.borrow_mut() = None);
        }
    }
    let _reset = Reset;
    let mut batch: Vec<WaiterBatch> = first.into_iter().collect();
    while !batch.is_empty() {
        for (waiters, state) in batch.drain(..) {
            for waiter in waiters {
                waiter(&state);
            }
        }
        batch = QUEUED.with(|q| std::mem::take(q.borrow_mut().as_mut().expect("set above")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn test_store(owner: u32) -> ObjectStore {
        let limits = StoreLimits {
            memory: 1 << 30,
            spill_dir: std::env::temp_dir(),
            spill_limit: None,
        };
        ObjectStore::new(owner, limits)
    }

    #[test]
    fn ready_objects_round_trip_typed_and_serialized() {
        let store = test_store(7);
        let id = store.insert_ready(Object::new(vec![1u32, 2, 3])).unwrap();
        let State::Ready(object) = store.state(id) else {
            panic!("not ready")
        };
        assert_eq!(*object.downcast::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        assert!(matches!(
            object.downcast::<String>(),
            Err(Error::TypeMismatch { .. })
        ));
        let bytes = object.to_bytes().unwrap();
        assert_eq!(bytes.len(), object.size);
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 100_000] {
            let bytes = Object::new(vec![7u8; len]);
            let fast = bytes.to_bytes().unwrap();
            assert_eq!(
                fast,
                postcard::to_stdvec(&vec![7u8; len]).unwrap(),
                "as postcard"
            );
            assert_eq!(*decode::<Vec<u8>>(&fast).unwrap(), vec![7u8; len]);
            let text = "é".repeat(len);
            let encoded = postcard::to_stdvec(&text).unwrap();
            assert_eq!(Object::new(text.clone()).to_bytes().unwrap(), encoded);
            assert_eq!(*decode::<String>(&encoded).unwrap(), text);
            assert_eq!(
                bytes.to_bytes().unwrap().len(),
                bytes.size,
                "Vec<u8> of {len}"
            );
            let floats = Object::new(vec![0.5f64; len]);
            assert_eq!(
                floats.to_bytes().unwrap().len(),
                floats.size,
                "Vec<f64> of {len}"
            );
            let text = Object::new("é".repeat(len));
            assert_eq!(text.to_bytes().unwrap().len(), text.size, "String of {len}");
        }
        assert_eq!(
            postcard::from_bytes::<Vec<u32>>(&bytes).unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn waiters_run_once_on_completion_and_not_for_resolved_objects() {
        let store = test_store(1);
        let id = store.insert_pending(None);
        let hits = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let hits = hits.clone();
            assert!(store
                .subscribe(
                    id,
                    Box::new(move |state| {
                        assert!(matches!(state, State::Ready(_)));
                        hits.fetch_add(1, Ordering::SeqCst);
                    })
                )
                .is_none());
        }
        assert!(store.complete(id, Ok(Object::new(5u8))));
        assert!(
            !store.complete(id, Ok(Object::new(6u8))),
            "first outcome wins"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert!(matches!(
            store.subscribe(id, Box::new(|_| unreachable!())),
            Some(State::Ready(_))
        ));
    }

    #[test]
    fn a_long_chain_of_waiters_resolving_objects_uses_constant_stack() {
        // Each object's waiter fails the next one; 200k levels would overflow any stack if run
        // recursively.
        let store = Arc::new(test_store(1));
        let ids: Vec<ObjectId> = (0..200_000).map(|_| store.insert_pending(None)).collect();
        for pair in ids.windows(2) {
            let (this, next) = (pair[0], pair[1]);
            let s = store.clone();
            store.subscribe(
                this,
                Box::new(move |_| {
                    s.complete(next, Err(Error::RuntimeShutdown));
                }),
            );
        }
        store.complete(ids[0], Err(Error::RuntimeShutdown));
        assert!(matches!(
            store.state(*ids.last().unwrap()),
            State::Failed(Error::RuntimeShutdown)
        ));
    }

    #[test]
    fn objects_are_freed_when_their_last_handle_is_released() {
        let store = test_store(1);
        let id = store.insert_ready(Object::new(vec![0u8; 64])).unwrap();
        assert!(store.retain(id));
        store.release(id);
        assert!(
            matches!(store.state(id), State::Ready(_)),
            "one handle left"
        );
        store.release(id);
        assert!(matches!(store.state(id), State::Missing));
        assert!(!store.retain(id), "a freed object cannot be revived");
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn objects_of_another_owner_are_missing() {
        let store = test_store(1);
        let id = store.insert_ready(Object::new(1u8)).unwrap();
        let foreign = ObjectId::new(2, id.seq());
        assert!(matches!(store.state(foreign), State::Missing));
    }
}
