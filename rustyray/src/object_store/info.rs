//! What the store tells about its objects (for `rustyray::state`, which re-exports these).

use super::ObjectId;

/// Where an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectState {
    /// Its task has not finished.
    Pending,
    /// In memory.
    Ready,
    /// On disk.
    Spilled,
    /// Holds an error.
    Failed,
}

/// One object in the store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// Its id.
    pub id: ObjectId,
    /// Where it is.
    pub state: ObjectState,
    /// Its encoded size in bytes, once ready.
    pub size: Option<u64>,
    /// How many `ObjectRef` handles (and pending tasks, mailboxes and stored values holding
    /// them) refer to it.
    pub refs: usize,
    /// Whether its value is lent out (a `get_arc` result is alive), so it cannot be spilled.
    pub pinned: bool,
}
