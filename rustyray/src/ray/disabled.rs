//! What the rest of the crate names of the `ray` backend when the `ray` feature is off: the
//! argument recorder the builders start (never, here) and the table entry of a Ray actor (never
//! made). Both are uninhabited, so the code that uses them compiles away. The backend itself is
//! not here: `runtime::Backend` has no Ray variant without the feature.

use crate::call_args::ArgSlot;
use crate::object_store::Value;

/// Never recorded.
pub(crate) enum RayArgs {}

/// Never built.
#[derive(Debug)]
pub(crate) enum RemoteActor {}

impl RayArgs {
    #[inline(always)]
    pub(crate) fn start() -> Option<RayArgs> {
        None
    }

    pub(crate) fn push<T: Value>(&mut self, _slot: &ArgSlot<T>) {
        match *self {}
    }
}

impl RemoteActor {
    pub(crate) fn kill(&self) -> crate::Result<()> {
        match *self {}
    }

    pub(crate) fn describe_class(&self) -> String {
        match *self {}
    }
}
