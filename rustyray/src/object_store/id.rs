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

/// The error for an object the store does not hold.
pub(crate) fn missing(id: ObjectId) -> Error {
    Error::NotFound {
        what: format!(
            "object {id} (freed once no ObjectRef to it remained, or made by another runtime)"
        ),
    }
}
