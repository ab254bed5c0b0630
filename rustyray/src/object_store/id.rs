//! Object ids.

use std::fmt;

use serde::{Deserialize, Serialize};

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::ObjectStore;
use crate::error::Error;

/// The identity of an object: the runtime that owns it and a sequence number unique within that
/// runtime.
///
/// The owner field is what lets a ref find its store. Ids that one thread makes in one runtime
/// compare in creation order (a thread takes ids a block at a time, so ids made on different
/// threads interleave). (Room is left for a creating-task id when objects can be rebuilt from
/// lineage.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId {
    owner: u32,
    seq: u64,
}

impl ObjectId {
    pub(crate) fn new(owner: u32, seq: u64) -> ObjectId {
        ObjectId { owner, seq }
    }

    /// The id of the runtime that owns the object.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The object's sequence number within its runtime.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.owner, self.seq)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// This process's random nonce, written beside every id that leaves it in bytes (a serialized
/// `ObjectRef`): runtimes are numbered from 1 and sequence numbers from 1 in every process, so
/// without it a ref's bytes from another process would name an object of this one.
pub(crate) fn process_nonce() -> u64 {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NONCE.get_or_init(super::spill::random_u64)
}

/// An object's or actor's id as it crosses in bytes: the nonce of the process that made it,
/// the runtime's number, the sequence number.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct WireId(u64, u32, u64);

impl WireId {
    /// Runtime `owner`'s id `seq`, of this process.
    pub(crate) fn local(owner: u32, seq: u64) -> WireId {
        WireId(process_nonce(), owner, seq)
    }

    /// The id of this process's object `id`.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))] // used by the `ray` backend
    pub(crate) fn of(id: ObjectId) -> WireId {
        WireId::local(id.owner(), id.seq())
    }

    /// Runtime `owner`'s id `seq` in another process, the `other`th (tests standing in for
    /// other processes).
    #[cfg(all(test, feature = "ray"))]
    pub(crate) fn of_another_process(other: u64, owner: u32, seq: u64) -> WireId {
        WireId(process_nonce().wrapping_add(other.max(1)), owner, seq)
    }

    /// The runtime and sequence number, and whether this process made them.
    pub(crate) fn read(self) -> (u32, u64, bool) {
        (self.1, self.2, self.0 == process_nonce())
    }
}

/// The error for an object the store does not hold.
pub(crate) fn missing(id: ObjectId) -> Error {
    Error::NotFound {
        what: format!(
            "object {id} (freed once no ObjectRef to it remained, or made by another runtime or process)"
        ),
    }
}

/// Ids reserved with [`ObjectStore::reserve_ids`], handed out in order.
#[derive(Debug, Default)]
pub(crate) struct IdBlock {
    owner: u32,
    seqs: std::ops::Range<u64>,
}

impl Iterator for IdBlock {
    type Item = ObjectId;

    fn next(&mut self) -> Option<ObjectId> {
        self.seqs.next().map(|seq| ObjectId::new(self.owner, seq))
    }
}

/// How many ids a thread takes of the process's counter at once (see [`ObjectStore::new_id`]).
pub(super) const ID_BLOCK: u64 = 64;

/// The next sequence number not taken yet, shared by every store of the process: a sequence
/// number names one object in the whole process, so a thread's block of ids serves whichever
/// store it makes objects in. On a cache line of its own, so that the threads reading it as the
/// LRU clock do not miss on it for other reasons.
static NEXT_SEQ: CachePadded<AtomicU64> = CachePadded::new(AtomicU64::new(1));

crate::sync::thread_locals! {
    /// The ids this thread took and has not handed out yet: the next one and the end of the
    /// block.
    static IDS: std::cell::Cell<(u64, u64)> = std::cell::Cell::new((0, 0));
}

/// The LRU clock: the end of the newest block of ids taken, counted in blocks (ids are taken
/// a block at a time, so finer ticks would tell nothing more). Reading it writes nothing
/// shared, so marking an object used costs no cache-line traffic between threads. 32 bits last
/// 2^38 ids; past that, an object read before the clock wrapped may look recent.
pub(super) fn tick() -> u32 {
    (NEXT_SEQ.load(Ordering::Relaxed) / ID_BLOCK) as u32
}

impl ObjectStore {
    /// A new id. Each thread takes [`ID_BLOCK`] ids of the shared counter at a time and hands
    /// them out itself, so making an object writes no counter that every thread writes.
    pub(super) fn new_id(&self) -> ObjectId {
        let seq = IDS.with(|ids| {
            let (next, end) = ids.get();
            if next < end {
                ids.set((next + 1, end));
                return next;
            }
            let first = NEXT_SEQ.fetch_add(ID_BLOCK, Ordering::Relaxed);
            ids.set((first + 1, first + ID_BLOCK));
            first
        });
        ObjectId::new(self.owner, seq)
    }

    /// `n` ids for objects made later by [`insert_ready_as`](Self::insert_ready_as), possibly
    /// on another thread (a stream's items, named when they are made and stored when they are
    /// taken). Taken `n` at a time so that the producer does not write the shared counter,
    /// which every thread reads as the LRU clock, at every item.
    pub(crate) fn reserve_ids(&self, n: u64) -> IdBlock {
        let first = NEXT_SEQ.fetch_add(n, Ordering::Relaxed);
        IdBlock {
            owner: self.owner,
            seqs: first..first + n,
        }
    }
}
