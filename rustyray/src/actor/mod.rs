//! Actors: stateful workers that run their methods one at a time, in the order calls arrive.
//!
//! `#[rustyray::actor]` expands to an [`ActorBuilder`] for the constructor and a
//! [`CallBuilder`] per method; both are usable by hand:
//!
//! ```
//! use rustyray::actor::{ActorBuilder, ActorHandle};
//! use rustyray::{Config, Runtime};
//!
//! #[rustyray::actor]
//! struct Counter {
//!     n: i64,
//! }
//!
//! let rt = Runtime::new(Config::default()).unwrap();
//! let _guard = rt.enter();
//!
//! let counter: ActorHandle<Counter> = ActorBuilder::new("Counter").spawn(|| Ok(Counter { n: 0 }));
//! let incr = |by: i64| {
//!     let mut call = counter.call("incr");
//!     let by = call.arg(by);
//!     call.spawn(move |c: &mut Counter| {
//!         c.n += by.get()?;
//!         Ok(c.n)
//!     })
//! };
//! let first = incr(5);
//! let second = incr(2);
//! assert_eq!(rustyray::get(&second).unwrap(), 7);
//! assert_eq!(rustyray::get(&first).unwrap(), 5);
//! ```
//!
//! # Design
//!
//! Each actor has one host (`host.rs`) that owns the actor's state and takes the calls from
//! its mailbox (`mailbox.rs`), running async methods on tokio and sync ones on the CPU pool.
//! The protocol between callers, the mailbox and the host (parking, starting, a blocked
//! caller running the call itself) is written down in `README.md` in this folder, beside the
//! code. The table (`table.rs`) counts the handles to each actor: an unnamed actor is freed
//! when its last handle drops (after running the calls already sent); a named one lives until
//! [`kill`]ed. Handles and ids are in `handle.rs`, the builders in `builder.rs`.
//!
//! A method returning `Err` fails that call only. A panic is a crash: the actor is rebuilt from
//! its constructor while `max_restarts` allows (re-sending the calls in flight while
//! `max_task_retries` allows), else it dies and every call it holds or receives fails with
//! [`Error::ActorDied`] at once.

mod builder;
mod concurrent;
pub(crate) mod current;
mod handle;
mod host;
mod mailbox;
pub(crate) mod recovery;
mod steps;
mod table;

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::runtime::{self, RuntimeCore};

pub use builder::{ActorBuilder, ActorOptions, CallBuilder};
pub(crate) use builder::{Ctor, Method};
pub use handle::{Actor, ActorHandle, ActorId, NoMethods};
pub(crate) use host::ActorHost;
pub(crate) use mailbox::{ActorCell, Call};
pub(crate) use recovery::Recovery;
#[cfg_attr(not(feature = "ray"), allow(unused_imports))]
pub(crate) use table::CellOps;
pub(crate) use table::{run_in_caller, ActorTable};

/// The handle of the actor registered under `name` in the current runtime.
///
/// Fails with [`Error::NotFound`] if no live actor has that name, and with
/// [`Error::TypeMismatch`] if it is not an `A`.
pub fn get_actor<A: Actor>(name: &str) -> Result<ActorHandle<A>> {
    let shared = runtime::current();
    shared.check()?;
    shared.backend().get_actor(&shared, name)
}

/// Kills the actor at once: the call running now is abandoned (an async one is dropped at its
/// next `.await`; a sync one finishes on its thread and its result is discarded), and every
/// call it holds or receives fails with [`Error::ActorDied`]. A named actor's name is freed.
/// (A sync call that the thread blocked on its result is running itself, as `get` does for an
/// idle actor, fails at once too, but that thread's `get` returns when the body ends.)
/// No restart follows.
pub fn kill<A: Actor>(handle: &ActorHandle<A>) -> Result<()> {
    let shared = runtime::current();
    shared.check()?;
    shared.backend().kill(&shared, handle)
}

/// Enters an actor that could not be created (on another backend): a handle to it exists, and
/// its calls all fail with `reason`, as an embedded actor's whose constructor failed do.
#[cfg_attr(not(feature = "ray"), allow(dead_code))]
pub(crate) fn enter_dead<A: Send + 'static>(
    shared: &RuntimeCore,
    class: Cow<'static, str>,
    reason: String,
) -> ActorId {
    let cell = Arc::new(mailbox::ActorCell::<A>::new(class));
    cell.mark_dead(reason);
    cell.close();
    shared.actors().insert(cell)
}

/// Why the actor `id` of this process died, if it is an embedded actor that did.
#[cfg_attr(not(feature = "ray"), allow(dead_code))]
pub(crate) fn died_error<A: Send + 'static>(shared: &RuntimeCore, id: ActorId) -> Option<Error> {
    shared
        .actors()
        .get::<A>(id)
        .ok()
        .map(|cell| cell.died_error())
}
