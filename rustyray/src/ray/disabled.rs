//! What the rest of the crate names of the `ray` backend when the `ray` feature is off: the
//! argument recorder the builders start (never, here). It is uninhabited, so the code that uses
//! it compiles away. The backend itself is not here: `runtime::Backend` has no Ray variant
//! without the feature.

use crate::call_args::ArgSlot;
use crate::object_store::Value;

/// Never recorded.
pub(crate) enum RayArgs {}

impl RayArgs {
    #[inline(always)]
    pub(crate) fn start() -> Option<RayArgs> {
        None
    }

    pub(crate) fn push<T: Value>(&mut self, _slot: &ArgSlot<T>) {
        match *self {}
    }
}
