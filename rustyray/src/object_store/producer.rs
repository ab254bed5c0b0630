//! What will produce a pending object.

use std::any::Any;
use std::sync::Arc;

use super::{Cell, ObjectId};

/// What will produce a pending object (a task): the store keeps it while the object is
/// pending, so that cancelling the object can stop it and the state API can list it. The store
/// defines it so that it needs nothing from the layers above it; a task's control implements it.
pub(crate) trait Producer: Send + Sync {
    /// Its name, for [`Error::Cancelled`](crate::Error::Cancelled).
    fn function(&self) -> &str;

    /// Told once `object` failed with `Cancelled`: stop, if it still can, and cancel what it
    /// submitted that is still pending.
    fn cancelled(&self, object: ObjectId);

    /// Whether it was cancelled.
    fn is_cancelled(&self) -> bool;

    /// Notes `child`, the result of a task it submitted while running, to cancel with it.
    fn adopt(&self, child: &Arc<Cell>);

    /// Itself, for the layer that made it to look at (the state API lists tasks this way).
    fn as_any(&self) -> &(dyn Any + Send + Sync);
}
