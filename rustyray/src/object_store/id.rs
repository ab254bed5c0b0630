//! Object ids.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The identity of an object: the runtime that owns it and a sequence number unique within that
/// runtime.
///
/// The owner field is what lets a ref find its store; ids made by the same runtime compare in
/// creation order. (Room is left for a creating-task id when objects can be rebuilt from
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
