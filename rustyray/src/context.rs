//! Everything a thread knows about where it runs, in one thread-local, as tokio's
//! `runtime/context.rs` keeps its own.
//!
//! - **The runtime** calls on this thread use: set on the runtime's own threads when they start,
//!   by [`Runtime::enter`](crate::Runtime::enter) elsewhere, and the global runtime as this
//!   thread last saw it (see `runtime::current`).
//! - **The body running here**: whether it runs its call's last try.
//! - **Hand-offs**: the async job a finishing job kept to run next in the same tokio task, and
//!   the actor this thread last sent a call to (which it may run itself when it blocks on it).
//!
//! The parts that belong to a lower layer stay with it, so that the layer imports nothing
//! above it: the object store's per-thread queues and shard, the CPU pool's membership
//! (modelled under loom), the scheduler's lease of the sync body running here, the timeline's
//! per-thread log, and the panic hook's flag and last location (`panics`, which `error` uses).
//! The fields are read and written by the modules that own their meaning; this module only
//! holds them, so one thread-local access reaches them all.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;

use crate::actor::{ActorId, CellOps};
use crate::runtime::Current;

/// The per-thread state; see the module's notes.
pub(crate) struct Context {
    /// The entered runtime (or the runtime whose thread this is).
    pub(crate) runtime: RefCell<Option<Current>>,
    /// The global runtime as this thread last saw it, and the global's generation then.
    pub(crate) global_seen: RefCell<(u64, Option<Current>)>,
    /// Whether the body starting on this thread runs its call's last try.
    pub(crate) last_try: Cell<bool>,
    /// Set (to `Some`) while an async job finishes here: the first async job this makes ready.
    pub(crate) next_async: RefCell<Option<Option<NextAsync>>>,
    /// The cell of the actor this thread last sent a call to.
    pub(crate) last_actor: RefCell<Option<(ActorId, Weak<dyn CellOps>)>>,
}

/// An async job's whole run (body, timeline entry, result), as the next one a tokio task runs.
/// It returns the next async job it made ready while finishing, if it kept one.
pub(crate) struct NextAsync(pub(crate) Pin<Box<dyn Future<Output = Option<NextAsync>> + Send>>);

impl Context {
    /// A thread's context before anything is set.
    const fn new() -> Context {
        Context {
            runtime: RefCell::new(None),
            global_seen: RefCell::new((0, None)),
            last_try: Cell::new(false),
            next_async: RefCell::new(None),
            last_actor: RefCell::new(None),
        }
    }
}

thread_local! {
    static CONTEXT: Context = const { Context::new() };
}

/// Runs `f` with this thread's context.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Context) -> R) -> R {
    CONTEXT.with(f)
}

/// Runs `f` with this thread's context, unless the thread is exiting and it is gone.
pub(crate) fn try_with<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
    CONTEXT.try_with(f).ok()
}
