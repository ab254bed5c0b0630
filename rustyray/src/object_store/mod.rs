//! The object store: where every `put` value and every task result lives.
//!
//! # Design
//!
//! Each object is a [`Cell`]: its entry (`Pending` with the callbacks waiting for it, `Ready`
//! with the value, `Spilled` or `Failed`) behind the cell's own small lock. Refs, the task or
//! call producing the object, and the tasks waiting for it all hold the cell, so the hot paths
//! (store a result, read it, wait for it, drop the last ref) touch only that object's memory.
//! The `Arc`'s count is the ref count; the cell's `Drop` gives its memory back.
//!
//! The store keeps two weak directories beside the cells, off the hot path:
//! - a registry of every cell (one list per thread, swept as it grows: each new entry checks
//!   two old ones and removes them if dead), for the state API, `stats` and failing what is
//!   pending at shutdown;
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

mod cell;
mod spill;
mod waiter;

use std::any::{Any, TypeId};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::counted::keeping_handles;
use crate::error::{Error, Result};
use crate::object_ref::ObjectId;
use crate::task::TaskControl;
pub(crate) use cell::Cell;
use spill::Spill;
use waiter::run_waiters;
pub(crate) use waiter::{Countdown, Waiter, Waiters};

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

type SerializeFn = fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>>;

/// A ready object: the typed value (with its size) and what its type is (five words: a cell
/// must stay within the allocator's fast size classes, see `cell.rs`).
#[derive(Clone)]
pub(crate) struct Object {
    value: Held,
    of: &'static ValueType,
}

/// How an object holds its value.
///
/// `()` (the result of every task run for its effect) and the primitive numbers and flags are
/// held inline: they need no allocation, made by the thread that stores the result and freed by
/// the one that drops the last ref, and no count that both would write.
#[derive(Clone)]
enum Held {
    Inline(Scalar),
    /// Any other value, with its encoded size.
    Shared {
        value: Arc<dyn Any + Send + Sync>,
        size: usize,
    },
}

/// A primitive value held inline; each variant holds the value's own type, so reads downcast
/// it as they do a shared one.
#[derive(Clone, Copy)]
enum Scalar {
    Unit(()),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Usize(usize),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Isize(isize),
    F32(f32),
    F64(f64),
    Bool(bool),
    Char(char),
}

/// `match` over a [`Scalar`], binding the value to `$v` in every arm.
macro_rules! each_scalar {
    ($scalar:expr, $v:ident => $body:expr) => {
        match $scalar {
            Scalar::Unit($v) => $body,
            Scalar::U8($v) => $body,
            Scalar::U16($v) => $body,
            Scalar::U32($v) => $body,
            Scalar::U64($v) => $body,
            Scalar::Usize($v) => $body,
            Scalar::I8($v) => $body,
            Scalar::I16($v) => $body,
            Scalar::I32($v) => $body,
            Scalar::I64($v) => $body,
            Scalar::Isize($v) => $body,
            Scalar::F32($v) => $body,
            Scalar::F64($v) => $body,
            Scalar::Bool($v) => $body,
            Scalar::Char($v) => $body,
        }
    };
}

impl Scalar {
    /// `value` as a scalar, if its type is one (the type tests fold away for every `T`).
    #[inline]
    fn of<T: 'static>(value: &T) -> Option<Scalar> {
        let any = value as &dyn Any;
        macro_rules! try_as {
            ($($t:ty => $variant:ident),*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    return any.downcast_ref::<$t>().copied().map(Scalar::$variant);
                }
            )*};
        }
        try_as!(() => Unit, u8 => U8, u16 => U16, u32 => U32, u64 => U64, usize => Usize, i8 => I8,
            i16 => I16, i32 => I32, i64 => I64, isize => Isize, f32 => F32, f64 => F64,
            bool => Bool, char => Char);
        None
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        each_scalar!(self, v => v)
    }

    fn to_arc(self) -> Arc<dyn Any + Send + Sync> {
        each_scalar!(self, v => Arc::new(v))
    }

    /// The length of its postcard encoding.
    fn size(&self) -> usize {
        each_scalar!(self, v => encoded_size(v))
    }
}

/// The length of `value`'s postcard encoding, counted without allocating.
fn encoded_size<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// What an object's type is: its name (for errors) and how to serialize it. One per type.
struct ValueType {
    type_name: fn() -> &'static str,
    serialize: SerializeFn,
}

/// The [`ValueType`] of `T`, as a constant promoted to a static.
struct TypeOf<T>(std::marker::PhantomData<T>);

impl<T: Value> TypeOf<T> {
    const OF: &'static ValueType = &ValueType {
        type_name: std::any::type_name::<T>,
        serialize: serialize_as::<T>,
    };
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("type", &self.type_name())
            .field("size", &self.size())
            .finish()
    }
}

impl Object {
    /// Wraps a value. Its size is the length of its postcard encoding, counted without
    /// allocating.
    ///
    /// `()` and primitives are held inline (see [`Held`]).
    #[inline]
    pub(crate) fn new<T: Value>(value: T) -> Object {
        match Scalar::of(&value) {
            Some(scalar) => Object {
                value: Held::Inline(scalar),
                of: TypeOf::<T>::OF,
            },
            None => Object::from_arc(Arc::new(value)),
        }
    }

    pub(crate) fn from_arc<T: Value>(value: Arc<T>) -> Object {
        let size = bulk_size::<T>(&*value).unwrap_or_else(|| encoded_size(&*value));
        Object {
            value: Held::Shared { value, size },
            of: TypeOf::<T>::OF,
        }
    }

    /// The value.
    fn any(&self) -> &(dyn Any + Send + Sync) {
        match &self.value {
            Held::Inline(scalar) => scalar.as_any(),
            Held::Shared { value, .. } => &**value,
        }
    }

    /// The length of the value's postcard encoding.
    fn size(&self) -> usize {
        match &self.value {
            Held::Inline(scalar) => scalar.size(),
            Held::Shared { size, .. } => *size,
        }
    }

    /// Whether it may count against the memory budget (and be spilled): only a shared value
    /// can be large.
    #[inline]
    fn is_large(&self) -> bool {
        matches!(self.value, Held::Shared { size, .. } if size >= SPILLABLE)
    }

    /// How many hold the value: the object, and the `Arc`s lent out by reads (one for a value
    /// held inline, which is never lent).
    fn holders(&self) -> usize {
        match &self.value {
            Held::Shared { value, .. } => Arc::strong_count(value),
            Held::Inline(_) => 1,
        }
    }

    /// Whether `self` and `other` hold the same value (not merely equal ones).
    fn same_value(&self, other: &Object) -> bool {
        match (&self.value, &other.value) {
            (Held::Shared { value: a, .. }, Held::Shared { value: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The value as `Arc<T>`, or a [`Error::TypeMismatch`].
    pub(crate) fn downcast<T: Value>(&self) -> Result<Arc<T>> {
        let value = match &self.value {
            Held::Shared { value, .. } => Arc::clone(value),
            Held::Inline(scalar) => scalar.to_arc(),
        };
        value.downcast::<T>().map_err(|_| Error::TypeMismatch {
            expected: std::any::type_name::<T>(),
            found: self.type_name(),
        })
    }

    /// A clone of the value, or a [`Error::TypeMismatch`].
    pub(crate) fn cloned<T: Value + Clone>(&self) -> Result<T> {
        self.any()
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| Error::TypeMismatch {
                expected: std::any::type_name::<T>(),
                found: self.type_name(),
            })
    }

    /// The object in postcard form.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        (self.of.serialize)(self.any())
    }

    /// The name of the value's type.
    fn type_name(&self) -> &'static str {
        (self.of.type_name)()
    }
}

/// The encoded size of common bulk types, in O(1): a length prefix (a varint) plus the
/// elements. Other types are measured by a counting pass over their encoding.
/// The type tests are on `T` itself, so they fold away for every other type.
fn bulk_size<T: 'static>(value: &T) -> Option<usize> {
    fn is<T: 'static, U: 'static>() -> bool {
        TypeId::of::<T>() == TypeId::of::<U>()
    }
    let value = value as &dyn Any;
    fn prefixed(len: usize, bytes: usize) -> usize {
        let varint = (usize::BITS - len.max(1).leading_zeros()).div_ceil(7) as usize;
        varint + bytes
    }
    macro_rules! fixed {
        ($($t:ty),*) => {$(
            if is::<T, Vec<$t>>() {
                let v = value.downcast_ref::<Vec<$t>>()?;
                return Some(prefixed(v.len(), v.len() * std::mem::size_of::<$t>()));
            }
        )*};
    }
    if is::<T, Vec<u8>>() {
        let v = value.downcast_ref::<Vec<u8>>()?;
        return Some(prefixed(v.len(), v.len()));
    }
    if is::<T, String>() {
        let s = value.downcast_ref::<String>()?;
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

/// What a cell holds. The rare, large variants are boxed, so a cell stays small.
enum Entry {
    Pending(Waiters),
    Ready(Object),
    Failed(Box<Error>),
    Spilled(Box<Spilled>),
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

/// What a cell holds: its entry and (while it is a pending task result) how to cancel the task.
struct Slot {
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
            Entry::Pending(_) => State::Pending,
        }
    }
}

const SHARDS: usize = 64;

/// Objects of at least this size are entered in the index when they become ready, so that
/// spilling can find them. Smaller ones always stay in memory (Ray keeps small objects inline
/// with their owner too).
const SPILLABLE: usize = 1024;

type Registry = CachePadded<Mutex<Sweep>>;

/// One thread's registered cells, and where the sweep for dead ones stands.
#[derive(Default)]
struct Sweep {
    cells: Vec<Weak<Cell>>,
    cursor: usize,
}

impl Sweep {
    /// Adds a cell, after checking the next two entries and dropping them if their cell is
    /// gone: constant work per cell, and the list stays within about twice the live cells, so
    /// a dead cell's memory is given back within a lap.
    fn push(&mut self, cell: Weak<Cell>) {
        for _ in 0..2 {
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

type IndexShard = CachePadded<Mutex<FxHashMap<u64, Weak<Cell>>>>;

/// The object store of one runtime.
pub(crate) struct ObjectStore {
    owner: u32,
    /// The next id, bumped by every thread that makes an object: on a cache line of its own,
    /// so that threads reading the fields below (at every result stored) do not miss on it.
    next: CachePadded<AtomicU64>,
    /// Every cell made, for the state API, `stats` and shutdown: one list per thread (taken
    /// by that thread's index), swept as it grows (see [`Sweep::push`]).
    registry: Box<[Registry]>,
    /// Cells findable by id: those a ref was serialized to (so it can be read back) and those
    /// big enough to spill. The entries are weak, so the index never keeps an object alive.
    index: Box<[IndexShard]>,
    /// The memory budget, and the bytes of ready objects in memory.
    limit: u64,
    used: AtomicU64,
    /// Serializes the slow path of admission (spilling to make room).
    admission: Mutex<()>,
    /// How many cancellations happened, so callers can skip the "was it cancelled?" check
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

/// This thread's registry list: threads are spread over the lists in the order they first
/// make an object, so each usually has its own.
fn registry_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl ObjectStore {
    pub(crate) fn new(owner: u32, limits: StoreLimits) -> Arc<ObjectStore> {
        Arc::new(ObjectStore {
            owner,
            next: CachePadded::new(AtomicU64::new(1)),
            registry: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
            index: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
            limit: limits.memory,
            used: AtomicU64::new(0),
            admission: Mutex::new(()),
            cancellations: AtomicU64::new(0),
            spill: Spill::new(limits.spill_dir, owner, limits.spill_limit),
        })
    }

    /// The LRU clock: the newest id handed out. Reading it writes nothing shared, so marking
    /// an object used costs no cache-line traffic between threads.
    fn tick(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    fn new_id(&self) -> ObjectId {
        ObjectId::new(self.owner, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Makes a cell and registers it; indexes it too if it is big enough to spill.
    #[inline]
    fn make(
        self: &Arc<Self>,
        id: ObjectId,
        entry: Entry,
        control: Option<Arc<TaskControl>>,
    ) -> Arc<Cell> {
        let spillable = is_spillable(&entry);
        let cell = Arc::new(Cell::new(id, Arc::clone(self), entry, control, self.tick()));
        self.registry[registry_shard()]
            .lock()
            .push(Arc::downgrade(&cell));
        if spillable {
            self.enter_index(&cell);
        }
        cell
    }

    /// Enters a cell in the index (once).
    fn enter_index(&self, cell: &Arc<Cell>) {
        if !cell.indexed.swap(true, Ordering::AcqRel) {
            let id = cell.id();
            self.index[id.seq() as usize % SHARDS]
                .lock()
                .insert(id.seq(), Arc::downgrade(cell));
        }
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
        let mut out = Vec::new();
        for list in self.registry.iter() {
            out.extend(list.lock().cells.iter().filter_map(Weak::upgrade));
        }
        out
    }

    /// Gives back what an entry held: its memory, or its spill file.
    fn forget(&self, entry: Entry) {
        match entry {
            Entry::Ready(object) if object.is_large() => self.uncharge(object.size()),
            Entry::Spilled(spilled) => self.spill.remove(&spilled.path, spilled.size as u64),
            Entry::Ready(_) | Entry::Pending(_) | Entry::Failed(_) => {}
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
        let mut victim: Option<(u64, &Arc<Cell>)> = None;
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
            Some((_, cell)) => cell.spill().map(|()| true),
            None => Ok(false),
        }
    }

    /// A ready object's entry: in memory if the budget (after spilling others) allows, else on
    /// disk; [`Error::ObjectStoreFull`] if neither can take it.
    #[inline]
    fn admit_or_spill(&self, id: ObjectId, object: Object) -> Result<Entry> {
        // A small object fits any budget of at least `SPILLABLE` bytes without being measured.
        if !object.is_large()
            && (self.limit >= SPILLABLE as u64 || object.size() as u64 <= self.limit)
        {
            return Ok(Entry::Ready(object)); // not counted: see `charge`
        }
        self.admit_or_spill_counted(id, object)
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
        let path = self
            .spill
            .write(id.seq(), &bytes)
            .map_err(|disk| self.full(size, &format!("in memory, {memory}; on disk, {disk}")))?;
        Ok(Entry::Spilled(Box::new(Spilled {
            path,
            size: bytes.len(),
            type_id: (*object.any()).type_id(),
            type_name: object.type_name(),
            _nested: nested,
        })))
    }

    /// A new object that a task or actor call will produce later; `control` cancels the task.
    #[inline]
    pub(crate) fn insert_pending(self: &Arc<Self>, control: Option<Arc<TaskControl>>) -> Arc<Cell> {
        self.make(self.new_id(), Entry::Pending(Waiters::new()), control)
    }

    /// A new object that is ready now, in memory or (over the budget) on disk; fails with
    /// [`Error::ObjectStoreFull`] when neither can take it.
    pub(crate) fn insert_ready(self: &Arc<Self>, object: Object) -> Result<Arc<Cell>> {
        let id = self.new_id();
        let entry = self.admit_or_spill(id, object)?;
        Ok(self.make(id, entry, None))
    }

    /// A new object that failed already (for example, an infeasible task's result).
    pub(crate) fn insert_failed(self: &Arc<Self>, error: Error) -> Arc<Cell> {
        self.make(self.new_id(), Entry::Failed(Box::new(error)), None)
    }

    /// Fails every pending object with `error` (at shutdown), waking all waiters.
    pub(crate) fn fail_all_pending(&self, error: &Error) {
        for cell in self.live() {
            cell.complete(Err(error.clone()));
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
        let live = self.live();
        let mut objects = Vec::with_capacity(live.len());
        let mut tasks = Vec::new();
        for cell in &live {
            let slot = cell.slot.lock();
            let (state, size, pinned) = match &slot.entry {
                Entry::Pending(_) => (ObjectState::Pending, None, false),
                Entry::Ready(o) => (ObjectState::Ready, Some(o.size() as u64), o.holders() > 1),
                Entry::Spilled(s) => (ObjectState::Spilled, Some(s.size as u64), false),
                Entry::Failed(_) => (ObjectState::Failed, None, false),
            };
            if let (Entry::Pending(_), Some(control)) = (&slot.entry, &slot.control) {
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
        (objects, tasks)
    }

    /// Number of objects held (any state).
    pub(crate) fn len(&self) -> usize {
        self.registry
            .iter()
            .map(|list| {
                let list = list.lock();
                list.cells.iter().filter(|c| c.strong_count() > 0).count()
            })
            .sum()
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

/// Whether an entry is an object in memory big enough to be worth spilling.
fn is_spillable(entry: &Entry) -> bool {
    matches!(entry, Entry::Ready(object) if object.is_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_store(owner: u32) -> Arc<ObjectStore> {
        let limits = StoreLimits {
            memory: 1 << 30,
            spill_dir: std::env::temp_dir(),
            spill_limit: None,
        };
        ObjectStore::new(owner, limits)
    }

    #[test]
    fn unit_objects_hold_no_value_and_read_and_encode_like_others() {
        let (a, b) = (Object::new(()), Object::new(()));
        assert!(
            matches!(
                (&a.value, &b.value),
                (
                    Held::Inline(Scalar::Unit(())),
                    Held::Inline(Scalar::Unit(()))
                )
            ),
            "no allocation per unit object"
        );
        assert_eq!(a.size(), 0);
        assert!(a.to_bytes().unwrap().is_empty());
        let store = test_store(8);
        let cell = store.insert_ready(a).unwrap();
        cell.read::<()>().unwrap().unwrap();
        cell.read_value::<()>().unwrap().unwrap();
        for mismatch in [
            cell.read::<u8>().map(|r| r.map(drop)),
            cell.read_value::<u8>().map(|r| r.map(drop)),
        ] {
            assert!(
                matches!(
                    &mismatch,
                    Some(Err(Error::TypeMismatch { found: "()", .. }))
                ),
                "{mismatch:?}"
            );
        }
        // Sizes of bulk types are still counted in O(1), and exactly.
        for (object, encoded) in [
            (
                Object::new(vec![7u8; 300]),
                postcard::to_stdvec(&vec![7u8; 300]).unwrap(),
            ),
            (
                Object::new("hé".to_string()),
                postcard::to_stdvec("hé").unwrap(),
            ),
            (
                Object::new(vec![1.5f64; 3]),
                postcard::to_stdvec(&vec![1.5f64; 3]).unwrap(),
            ),
            (Object::new(300u64), postcard::to_stdvec(&300u64).unwrap()),
        ] {
            assert_eq!(object.size(), encoded.len(), "{object:?}");
        }
    }

    #[test]
    fn small_plain_values_are_copied_out_and_others_shared() {
        let store = test_store(9);
        // A small plain value that is not a primitive: shared, but copied out.
        let small = store.insert_ready(Object::new((7u32, 41u32))).unwrap();
        let stored = |cell: &Arc<Cell>| match &cell.slot.lock().entry {
            Entry::Ready(object) => object.holders(),
            _ => unreachable!("ready"),
        };
        assert_eq!(small.read_value::<(u32, u32)>().unwrap().unwrap(), (7, 41));
        assert_eq!(
            stored(&small),
            1,
            "copied under the lock: the count never moved"
        );
        assert!(matches!(
            small.read_value::<u32>(),
            Some(Err(Error::TypeMismatch { .. }))
        ));
        let text = store.insert_ready(Object::new("hi".to_string())).unwrap();
        assert_eq!(text.read_value::<String>().unwrap().unwrap(), "hi");
        assert!(matches!(
            text.read_value::<Vec<u8>>(),
            Some(Err(Error::TypeMismatch { .. }))
        ));
        let pending = store.insert_pending(None);
        assert!(pending.read_value::<u64>().is_none());
        pending.complete(Err(Error::Cancelled {
            function: "f".into(),
        }));
        assert!(matches!(
            pending.read_value::<u64>(),
            Some(Err(Error::Cancelled { .. }))
        ));
    }

    #[test]
    fn primitives_are_held_inline_and_read_encode_and_mismatch_like_others() {
        fn check<T: Value + Clone + PartialEq + fmt::Debug>(value: T) {
            let object = Object::new(value.clone());
            assert!(matches!(object.value, Held::Inline(_)), "{value:?} inline");
            let encoded = postcard::to_stdvec(&value).unwrap();
            assert_eq!(object.to_bytes().unwrap(), encoded, "{value:?}");
            assert_eq!(object.size(), encoded.len(), "{value:?}");
            let cell = test_store(11).insert_ready(object).unwrap();
            assert_eq!(cell.read_value::<T>().unwrap().unwrap(), value);
            assert_eq!(*cell.read::<T>().unwrap().unwrap(), value);
            let found = std::any::type_name::<T>();
            assert!(
                matches!(cell.read_value::<String>(), Some(Err(Error::TypeMismatch { found: f, .. })) if f == found),
                "{value:?}"
            );
            assert!(matches!(
                cell.read::<()>(),
                Some(Err(Error::TypeMismatch { .. }))
            ));
        }
        check(7u8);
        check(300u16);
        check(70_000u32);
        check(u64::MAX);
        check(12usize);
        check(-7i8);
        check(-300i16);
        check(i32::MIN);
        check(-1i64);
        check(isize::MAX);
        check(1.5f32);
        check(-2.25f64);
        check(true);
        check('é');
        // Not a primitive: shared.
        assert!(matches!(Object::new(7u128).value, Held::Shared { .. }));
    }

    #[test]
    fn ready_objects_round_trip_typed_and_serialized() {
        let store = test_store(7);
        let object = Object::new(vec![1u32, 2, 3]);
        let cell = store.insert_ready(object.clone()).unwrap();
        assert!(matches!(cell.state(), State::Ready));
        assert_eq!(*cell.read::<Vec<u32>>().unwrap().unwrap(), vec![1, 2, 3]);
        assert!(matches!(
            cell.read::<String>(),
            Some(Err(Error::TypeMismatch { .. }))
        ));
        assert_eq!(*object.downcast::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        assert!(matches!(
            object.downcast::<String>(),
            Err(Error::TypeMismatch { .. })
        ));
        let bytes = object.to_bytes().unwrap();
        assert_eq!(bytes.len(), object.size());
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
                bytes.size(),
                "Vec<u8> of {len}"
            );
            let floats = Object::new(vec![0.5f64; len]);
            assert_eq!(
                floats.to_bytes().unwrap().len(),
                floats.size(),
                "Vec<f64> of {len}"
            );
            let text = Object::new("é".repeat(len));
            assert_eq!(
                text.to_bytes().unwrap().len(),
                text.size(),
                "String of {len}"
            );
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
        let cell = store.insert_pending(None);
        let hits = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let hits = hits.clone();
            assert!(cell
                .subscribe(Waiter::Call(Box::new(move |state| {
                    assert!(matches!(state, State::Ready));
                    hits.fetch_add(1, Ordering::SeqCst);
                })))
                .is_none());
        }
        assert!(cell.complete(Ok(Object::new(5u8))));
        assert!(!cell.complete(Ok(Object::new(6u8))), "first outcome wins");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert!(matches!(
            cell.subscribe(Waiter::Call(Box::new(|_| unreachable!()))),
            Some(State::Ready)
        ));
    }

    #[test]
    fn a_long_chain_of_waiters_resolving_objects_uses_constant_stack() {
        // Each object's waiter fails the next one; 200k levels would overflow any stack if run
        // recursively.
        let store = test_store(1);
        let cells: Vec<Arc<Cell>> = (0..200_000).map(|_| store.insert_pending(None)).collect();
        for pair in cells.windows(2) {
            let next = Arc::clone(&pair[1]);
            pair[0].subscribe(Waiter::Call(Box::new(move |_| {
                next.complete(Err(Error::RuntimeShutdown));
            })));
        }
        cells[0].complete(Err(Error::RuntimeShutdown));
        assert!(matches!(
            cells.last().unwrap().state(),
            State::Failed(error) if matches!(*error, Error::RuntimeShutdown)
        ));
    }

    #[test]
    fn objects_are_freed_with_their_last_holder_and_then_cannot_be_found() {
        let store = test_store(1);
        let small = store.insert_ready(Object::new(vec![0u8; 64])).unwrap();
        assert_eq!(store.usage().0, 0, "small objects are outside the budget");
        let big = store.insert_ready(Object::new(vec![0u8; 4096])).unwrap();
        let (small_id, big_id) = (small.id(), big.id());
        assert_eq!(store.usage().0, 4098, "4096 bytes and their length prefix");
        assert!(
            store.lookup(small_id).is_none(),
            "small objects are not indexed"
        );
        assert!(store.lookup(big_id).is_some(), "spill candidates are");
        small.enter_index();
        let again = store.lookup(small_id).expect("indexed once serialized");
        assert!(Arc::ptr_eq(&again, &small));
        drop((small, again, big));
        assert_eq!(store.len(), 0);
        assert_eq!(store.usage().0, 0, "memory given back");
        assert!(store.lookup(small_id).is_none() && store.lookup(big_id).is_none());
        assert!(store.index.iter().all(|shard| shard.lock().is_empty()));
    }

    #[test]
    fn the_registry_forgets_dead_cells_as_it_grows() {
        let store = test_store(1);
        let keep: Vec<_> = (0..100).map(|_| store.insert_pending(None)).collect();
        for _ in 0..10_000 {
            drop(store.insert_failed(Error::RuntimeShutdown));
        }
        let listed: usize = store.registry.iter().map(|l| l.lock().cells.len()).sum();
        assert!(
            listed <= 2 * keep.len() + 2,
            "dead cells swept away, {listed} left"
        );
        assert_eq!(store.len(), 100);
        assert_eq!(store.snapshot().0.len(), 100);
        drop(keep);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn objects_of_another_owner_are_not_found_by_id() {
        let store = test_store(1);
        let cell = store.insert_ready(Object::new(vec![1u8; 4096])).unwrap();
        assert!(store.lookup(cell.id()).is_some());
        assert!(store.lookup(ObjectId::new(2, cell.id().seq())).is_none());
    }
}
