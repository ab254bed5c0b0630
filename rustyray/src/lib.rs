//! # RustyRay
//!
//! Ray's programming model, native to Rust: remote tasks and actors whose calls return
//! [`ObjectRef`]s at once, an object store that resolves refs passed as arguments and keeps
//! every result, and [`put`], [`get`] and [`wait`] that work everywhere, inside tasks and actors
//! too. It runs embedded: one process, all cores, no server.
//!
//! ```
//! use rustyray::task::TaskBuilder;
//! use rustyray::{Config, ObjectRef, Runtime};
//!
//! // A remote function, as `#[rustyray::remote] fn square(x: u64) -> u64` will generate it.
//! fn square(x: impl rustyray::task::IntoArg<u64>) -> ObjectRef<u64> {
//!     let mut task = TaskBuilder::new("square");
//!     let x = task.arg(x);
//!     task.spawn(move || Ok(x.get()?.pow(2)))
//! }
//!
//! let rt = Runtime::new(Config::default())?;
//! let _guard = rt.enter();
//! let squares: Vec<ObjectRef<u64>> = (0..10).map(square).collect();
//! let again = square(&squares[3]); // a ref where a value is expected: resolved first
//! assert_eq!(rustyray::get(&again)?, 81);
//! assert_eq!(rustyray::get_all(&squares)?.iter().sum::<u64>(), 285);
//! # Ok::<(), rustyray::Error>(())
//! ```
//!
//! See `docs/architecture.md` for how the pieces fit and `docs/semantics.md` for the guarantees.

#![warn(missing_docs)]
#![deny(unsafe_code)] // allowed only in `ray::ffi` and `os`
#![warn(unreachable_pub)]

pub mod actor;
mod api;
mod as_stream;
mod call_args;
mod completion;
mod config;
mod context;
mod counted;
mod cpu_pool;
#[cfg(feature = "dashboard")]
mod dashboard;
mod deadline;
mod embedded;
mod error;
#[cfg(test)]
mod fuzz;
mod heap;
mod linger;
mod object_ref;
mod object_store;
mod os;
mod panics;
mod placement_group;
mod progress;
#[cfg(feature = "ray")]
mod ray;
pub mod registry;
mod runtime;
mod scheduler;
pub mod state;
mod stream;
mod sync;
pub mod task;
mod timeline;
pub mod util;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use actor::{get_actor, kill, ActorHandle};
pub use api::{
    cancel, get, get_all, get_all_arc, get_arc, get_timeout, gpu_ids, is_cancelled, put, put_arc,
    put_slice, timeline, wait,
};
pub use as_stream::AsStream;
pub use completion::{as_completed, AsCompleted};
pub use config::Config;
pub use error::{Error, Result};
/// The async sequence trait (`futures`' `Stream`), which [`AsStream`] implements.
pub use futures_util::stream::Stream;
pub use object_ref::{AsObjectRef, ObjectFuture, ObjectId, ObjectRef};
pub use object_store::Value;
pub use placement_group::{
    get_placement_group, remove_placement_group, Bundle, PlacementGroup, PlacementGroupBuilder,
    PlacementGroupInfo, PlacementGroupState, Strategy,
};
pub use progress::{get_all_with_progress, wait_with_progress};
pub use runtime::{init, shutdown, EnterGuard, Runtime, RuntimeStats};
pub use stream::{ObjectRefStream, StreamValues};
pub use timeline::EVENTS_PER_THREAD;

pub use rustyray_macros::{actor, main, remote};

/// The names most programs need: `use rustyray::prelude::*;`.
pub mod prelude {
    pub use crate::actor::ActorHandle;
    pub use crate::config::Config;
    pub use crate::error::{Error, Result};
    pub use crate::object_ref::ObjectRef;
    pub use crate::runtime::Runtime;
    pub use rustyray_macros::{actor, remote};
}

#[cfg(test)]
mod auto_traits {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    /// Refs and handles cross threads whatever they point to; a runtime handle too.
    #[test]
    fn refs_handles_and_runtimes_are_send_and_sync() {
        struct NotSync(#[allow(dead_code)] std::cell::Cell<u8>); // actor state need not be Sync
        impl actor::Actor for NotSync {
            type Methods = actor::NoMethods;
        }
        send_sync::<ObjectRef<std::rc::Rc<u8>>>();
        send_sync::<ActorHandle<NotSync>>();
        send_sync::<Runtime>();
        send_sync::<Error>();
        send_sync::<task::ArgSlot<u64>>();
    }
}
