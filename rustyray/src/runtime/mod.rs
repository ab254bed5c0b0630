//! Runtimes: the global one and those built explicitly with [`Runtime::new`].
//!
//! # Design
//!
//! A runtime is an object store, a scheduler, an actor table, a CPU pool for sync bodies and a
//! tokio runtime whose worker threads run async bodies. Those parts
//! live in `RuntimeCore`, which every thread of the runtime knows as its *current* runtime (set when
//! the thread starts). Any other thread finds the current runtime in a thread-local set by
//! [`Runtime::enter`], or else uses the global runtime, started with defaults on first use.
//!
//! `RuntimeCore` does not own the tokio runtime, only a handle to it, so worker threads holding
//! `RuntimeCore` form no cycle: the [`Runtime`] handle owns the threads and shuts them down when its
//! last clone is dropped or [`Runtime::shutdown`] is called.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

mod backend;
pub(crate) mod blocking;

pub(crate) use backend::Backend;
pub(crate) use blocking::Reader;

use crate::actor::ActorTable;
use crate::config::Config;
use crate::context;
use crate::embedded::Embedded;
use crate::error::{Error, Result};
use crate::object_store::{ObjectStore, StoreLimits};

/// The parts of a runtime that its threads, refs and handles reach.
///
/// Aligned to a cache line pair, so that in its `Arc` the counts (which every task and call
/// moves between cores: a job holds the core) share no cache line with the fields every
/// operation reads.
#[repr(align(128))]
pub(crate) struct RuntimeCore {
    id: u32,
    store: Arc<ObjectStore>,
    actors: ActorTable,
    /// The live streams, for the state API.
    streams: crate::stream::Streams,
    /// Where its operations run: here, or on a Ray cluster (see `backend`).
    backend: Backend,
    /// Whether panics caught in bodies are printed by the panic hook too (see `panics`).
    print_panics: bool,
    handle: OnceLock<tokio::runtime::Handle>,
    /// Where the dashboard listens, if it does.
    dashboard: OnceLock<std::net::SocketAddr>,
    shut_down: AtomicBool,
    /// Why the runtime could not start, if it could not.
    start_error: OnceLock<Error>,
}

impl RuntimeCore {
    /// The runtime's id, which is also the owner id of its objects and actors.
    #[inline]
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The object store (on Ray, the directory of Ray objects the refs name).
    #[inline]
    pub(crate) fn store(&self) -> &Arc<ObjectStore> {
        &self.store
    }

    /// The actor table (on Ray, the directory of Ray actors the handles name).
    #[inline]
    pub(crate) fn actors(&self) -> &ActorTable {
        &self.actors
    }

    /// The live streams.
    #[inline]
    pub(crate) fn streams(&self) -> &crate::stream::Streams {
        &self.streams
    }

    /// Where its operations run.
    #[inline]
    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Whether panics caught in bodies are printed too.
    #[inline]
    pub(crate) fn print_panics(&self) -> bool {
        self.print_panics
    }

    /// Fails with the reason this runtime cannot take work, if it cannot.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        if self.start_error.get().is_none() && !self.shut_down.load(Ordering::Acquire) {
            return Ok(());
        }
        self.refusal()
    }

    /// Why [`check`](Self::check) refuses a call.
    #[cold]
    fn refusal(&self) -> Result<()> {
        if let Some(error) = self.start_error.get() {
            return Err(error.clone());
        }
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::RuntimeShutdown);
        }
        Ok(())
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The tokio handle; only called after `check` succeeded, when it is always set.
    pub(crate) fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.handle.get()
    }

    /// The embedded backend's state (scheduler, CPU pool), for code that runs only in an
    /// embedded runtime: a task's job, its gate, an actor's host. Only the embedded backend
    /// makes those, so they never call this on another; as tokio's
    /// `scheduler::Handle::as_current_thread` does, that mistake panics.
    #[inline]
    pub(crate) fn here(&self) -> &Embedded {
        match &self.backend {
            Backend::Embedded(here) => here,
            #[cfg(feature = "ray")]
            Backend::Ray(_) => panic!("embedded machinery used by a runtime on Ray"),
        }
    }
}

static GLOBAL: RwLock<Option<Runtime>> = RwLock::new(None);
/// Bumped after every change of [`GLOBAL`], so a thread's copy of it (`Context::global_seen`)
/// is used only while
/// it is still the global runtime: a call then costs no shared lock and no count of the
/// runtime handle, only the weak upgrade.
static GLOBAL_GENERATION: AtomicU64 = AtomicU64::new(1);
static NEXT_RUNTIME_ID: AtomicU32 = AtomicU32::new(1);

/// The runtime calls on this thread use: the entered one, else the global one (started with
/// defaults if there is none yet).
#[inline]
pub(crate) fn current() -> Current {
    if let Some(current) = context::with(|cx| cx.runtime.borrow().clone()) {
        return current;
    }
    // Read before the global itself: a change after this read makes the cached copy stale
    // at the next call, never the other way round.
    let generation = GLOBAL_GENERATION.load(Ordering::Acquire);
    let seen = context::with(|cx| {
        let seen = cx.global_seen.borrow();
        (seen.0 == generation).then(|| seen.1.clone()).flatten()
    });
    if let Some(current) = seen {
        return current;
    }
    let rt = global_or_start(|| match Config::from_env() {
        Ok(config) => Runtime::build(config),
        Err(error) => Runtime::failed(error),
    });
    let current = Current::new(Arc::clone(&rt.owner.shared));
    context::with(|cx| *cx.global_seen.borrow_mut() = (generation, Some(current.clone())));
    current
}

/// The current runtime as a thread holds it: a per-thread counted handle to the shared core,
/// so that taking it (every `put`, `get` and `remote`) writes no count that other threads
/// write too, where cloning the `Arc` would. It stays on its thread (`Rc`); [`to_arc`]
/// gives a handle that can move.
///
/// A thread keeps the global runtime it last used until its next call sees that the global
/// changed: a runtime shut down is then freed a call later, which holds nothing but memory
/// (its threads are stopped and its kept blocks given back at shutdown).
///
/// [`to_arc`]: Current::to_arc
#[derive(Clone)]
#[allow(clippy::redundant_allocation)] // the point: a count of this thread's own over the `Arc`
pub(crate) struct Current(std::rc::Rc<Arc<RuntimeCore>>);

impl Current {
    pub(crate) fn new(core: Arc<RuntimeCore>) -> Current {
        Current(std::rc::Rc::new(core))
    }

    /// A handle that can move to other threads.
    pub(crate) fn to_arc(&self) -> Arc<RuntimeCore> {
        Arc::clone(&self.0)
    }
}

impl std::ops::Deref for Current {
    type Target = Arc<RuntimeCore>;

    #[inline]
    fn deref(&self) -> &Arc<RuntimeCore> {
        &self.0
    }
}

/// Replaces the global runtime (under its write lock) and makes every thread's cached copy
/// stale; returns the one it held.
fn set_global(global: &mut Option<Runtime>, rt: Option<Runtime>) -> Option<Runtime> {
    let previous = std::mem::replace(global, rt);
    GLOBAL_GENERATION.fetch_add(1, Ordering::AcqRel);
    previous
}

/// The global runtime, started with `start()` if there is none yet.
pub(crate) fn global_or_start(start: impl FnOnce() -> Runtime) -> Runtime {
    if let Some(rt) = GLOBAL.read().as_ref() {
        return rt.clone();
    }
    let mut global = GLOBAL.write();
    if let Some(rt) = global.as_ref() {
        return rt.clone();
    }
    let rt = start();
    set_global(&mut global, Some(rt.clone()));
    rt
}

/// The current runtime if there is one, without starting the global runtime.
pub(crate) fn current_if_any() -> Option<Arc<RuntimeCore>> {
    context::with(|cx| cx.runtime.borrow().as_ref().map(Current::to_arc)).or_else(|| {
        GLOBAL
            .read()
            .as_ref()
            .map(|rt| Arc::clone(&rt.owner.shared))
    })
}

struct Owner {
    shared: Arc<RuntimeCore>,
    tokio: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        shut_down(&self.shared, &self.tokio);
    }
}

/// A RustyRay runtime: an object store, a scheduler and the threads that run tasks and actors.
///
/// Most programs use the global runtime (through [`init`](crate::init) or implicitly). Build
/// one explicitly to give a part of a program, or a test, a runtime of its own; calls made on a
/// thread inside [`Runtime::enter`] use it, and so do the tasks and actors it runs.
///
/// Cloning gives another handle to the same runtime; it shuts down when the last handle drops.
///
/// ```
/// use rustyray::{Config, Runtime};
///
/// let rt = Runtime::new(Config::default().num_cpus(2))?;
/// let _guard = rt.enter();
/// let r = rustyray::put(21)?;
/// assert_eq!(rustyray::get(&r)? * 2, 42);
/// # Ok::<(), rustyray::Error>(())
/// ```
#[derive(Clone)]
pub struct Runtime {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.owner.shared.id)
            .field("shut_down", &self.owner.shared.is_shut_down())
            .finish()
    }
}

impl Runtime {
    /// Starts a runtime with `config`.
    ///
    /// Fails with [`Error::InvalidArgument`] naming the bad field if the configuration is
    /// invalid, or if the operating system refuses to start its threads.
    pub fn new(config: Config) -> Result<Runtime> {
        config.validate()?;
        let rt = Runtime::build(config);
        rt.owner.shared.check()?;
        Ok(rt)
    }

    /// Builds a runtime from a valid configuration; a failure to start threads is recorded in
    /// the runtime, whose every call then reports it.
    pub(crate) fn build(config: Config) -> Runtime {
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        crate::panics::install_hook();
        let mut backend_error = None;
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<RuntimeCore>| {
            let (backend, error) = Backend::start(&config, id, weak.clone());
            backend_error = error;
            RuntimeCore {
                id,
                print_panics: config.get_print_task_panics(),
                store: ObjectStore::new(
                    id,
                    StoreLimits {
                        memory: config.memory_budget(),
                        spill_dir: config
                            .get_spill_dir()
                            .cloned()
                            .unwrap_or_else(std::env::temp_dir),
                        spill_limit: config.get_spill_limit(),
                    },
                ),
                actors: ActorTable::new(id),
                streams: Default::default(),
                backend,
                handle: OnceLock::new(),
                dashboard: OnceLock::new(),
                shut_down: AtomicBool::new(false),
                start_error: OnceLock::new(),
            }
        });
        if let Some(error) = backend_error {
            let _ = shared.start_error.set(error);
        }
        let for_threads = Arc::clone(&shared);
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        // The dashboard's server needs the IO driver; nothing else does.
        #[cfg(feature = "dashboard")]
        if config.get_dashboard().is_some() {
            builder.enable_io();
        }
        let built = builder
            .worker_threads(config.get_num_cpus().max(1))
            .thread_name(format!("rustyray-{id}"))
            .on_thread_start(move || {
                let current = Current::new(Arc::clone(&for_threads));
                context::with(|cx| *cx.runtime.borrow_mut() = Some(current));
            })
            .on_thread_stop(|| {
                context::with(|cx| cx.runtime.borrow_mut().take());
            })
            .enable_time()
            .build();
        let tokio = match built {
            Ok(tokio) => {
                let _ = shared.handle.set(tokio.handle().clone());
                Some(tokio)
            }
            Err(e) => {
                let _ = shared.start_error.set(Error::InvalidArgument(format!(
                    "could not start the runtime's threads: {e}"
                )));
                None
            }
        };
        if let Some(addr) = config.get_dashboard() {
            match serve_dashboard(&shared, addr, config.get_dashboard_interval()) {
                Ok(bound) => {
                    let _ = shared.dashboard.set(bound);
                }
                Err(error) => {
                    let _ = shared.start_error.set(error);
                }
            }
        }
        Runtime {
            owner: Arc::new(Owner {
                shared,
                tokio: Mutex::new(tokio),
            }),
        }
    }

    /// Where this runtime's dashboard listens (see [`Config::dashboard`]), if it does.
    pub fn dashboard_address(&self) -> Option<std::net::SocketAddr> {
        self.owner.shared.dashboard.get().copied()
    }

    /// A runtime that never started: every call reports `error`.
    fn failed(error: Error) -> Runtime {
        let rt = Runtime::build(Config::default().num_cpus(1));
        let _ = rt.owner.shared.start_error.set(error);
        rt
    }

    /// Makes this runtime the one that RustyRay calls on the current thread use, until the
    /// guard is dropped (guards nest).
    pub fn enter(&self) -> EnterGuard<'_> {
        enter_core(&self.owner.shared)
    }

    /// Stops the runtime: queued and running tasks are dropped, every object still pending fails
    /// with [`Error::RuntimeShutdown`] (so no `get` hangs), and later calls fail with it too.
    /// Sync bodies already running finish on their own threads; their results are discarded.
    pub fn shutdown(&self) {
        shut_down(&self.owner.shared, &self.owner.tokio);
    }

    /// Counts of what the runtime holds now.
    pub fn stats(&self) -> RuntimeStats {
        let shared = &self.owner.shared;
        let (memory_bytes, spilled_bytes, spilled_objects) = shared.store.usage();
        RuntimeStats {
            objects: shared.store.len(),
            memory_bytes,
            spilled_objects,
            spilled_bytes,
            actors: shared.actors.len(),
            queued_tasks: shared.backend.queued_tasks(),
        }
    }

    /// The folder this runtime spills objects to, once it has spilled one.
    pub fn spill_path(&self) -> Option<std::path::PathBuf> {
        self.owner.shared.store.spill_path().map(Into::into)
    }

    /// Its object store.
    #[cfg(feature = "ray")]
    pub(crate) fn store(&self) -> &Arc<ObjectStore> {
        self.owner.shared.store()
    }

    /// The tokio handle of the runtime's threads, if they started.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    pub(crate) fn tokio_handle(&self) -> Option<tokio::runtime::Handle> {
        self.owner.shared.handle().cloned()
    }

    /// This runtime's id, which is also the owner id of its objects and actors.
    pub fn id(&self) -> u32 {
        self.owner.shared.id
    }
}

/// Starts the dashboard at `addr` (feature `dashboard`).
#[cfg(feature = "dashboard")]
fn serve_dashboard(
    shared: &RuntimeCore,
    addr: std::net::SocketAddr,
    interval: std::time::Duration,
) -> Result<std::net::SocketAddr> {
    if shared.start_error.get().is_some() {
        return Err(Error::InvalidArgument("the runtime did not start".into()));
    }
    crate::dashboard::start(shared, addr, interval)
}

/// Without the `dashboard` feature, asking for the dashboard is an error that says so.
#[cfg(not(feature = "dashboard"))]
fn serve_dashboard(
    _: &RuntimeCore,
    addr: std::net::SocketAddr,
    _: std::time::Duration,
) -> Result<std::net::SocketAddr> {
    Err(Error::InvalidArgument(format!(
        "a dashboard was asked for at {addr}, but rustyray was built without its `dashboard` \
         feature: add `features = [\"dashboard\"]` to rustyray in Cargo.toml, or remove \
         `Config::dashboard`"
    )))
}

fn shut_down(shared: &RuntimeCore, tokio: &Mutex<Option<tokio::runtime::Runtime>>) {
    if shared.shut_down.swap(true, Ordering::AcqRel) {
        return;
    }
    shared.backend.shut_down();
    shared.actors.clear();
    shared.store.fail_all_pending(&Error::RuntimeShutdown);
    if let Some(tokio) = tokio.lock().take() {
        // Never blocks, so shutting down from inside a task or an async context is safe.
        tokio.shutdown_background();
    }
    shared.store.clear_spill();
    shared.store.give_back_blocks();
}

/// What a runtime holds at one moment; see [`Runtime::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Objects in the store, in any state (pending, ready, spilled, failed).
    pub objects: usize,
    /// Bytes of ready objects in memory (their encoded size).
    pub memory_bytes: u64,
    /// Objects on disk.
    pub spilled_objects: u64,
    /// Bytes on disk.
    pub spilled_bytes: u64,
    /// Actors alive, or dead but still referred to by a handle.
    pub actors: usize,
    /// Tasks whose dependencies are ready, waiting for resources.
    pub queued_tasks: usize,
}

/// Makes `core` the current runtime on this thread until the guard drops (for a thread that
/// works for a runtime it holds, as [`Runtime::enter`] does for one it borrows).
pub(crate) fn enter_core<'a>(core: &Arc<RuntimeCore>) -> EnterGuard<'a> {
    let current = Current::new(Arc::clone(core));
    let previous = context::with(|cx| cx.runtime.borrow_mut().replace(current));
    EnterGuard {
        previous,
        _runtime: PhantomData,
    }
}

/// Keeps a [`Runtime`] current on this thread; see [`Runtime::enter`].
#[must_use = "the runtime is current only while the guard lives"]
pub struct EnterGuard<'a> {
    previous: Option<Current>,
    _runtime: PhantomData<(&'a Runtime, *const ())>,
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        context::with(|cx| *cx.runtime.borrow_mut() = previous);
    }
}

impl std::fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// Starts the global runtime with `config`.
///
/// Optional: the first RustyRay call starts it with [`Config::default`] if `init` was not
/// called. Fails if the configuration is invalid or the global runtime is already running (call
/// [`shutdown`] first to restart it with another configuration).
pub fn init(config: Config) -> Result<()> {
    start_global(config, true)
}

/// Starts the global runtime with `config` unless one is running already.
pub(crate) fn init_if_absent(config: Config) -> Result<()> {
    start_global(config, false)
}

/// Starts the global runtime with `config`. If one is running already, that is an error when
/// `exclusive`, and otherwise the running one is kept.
fn start_global(config: Config, exclusive: bool) -> Result<()> {
    config.validate()?;
    let mut global = GLOBAL.write();
    if global.is_some() {
        if !exclusive {
            return Ok(());
        }
        return Err(Error::InvalidArgument(
            "the global runtime is already running (started by `init` or by a first call); call \
             `rustyray::shutdown()` before `init` to restart it with a new configuration"
                .to_owned(),
        ));
    }
    let rt = Runtime::build(config);
    rt.owner.shared.check()?;
    set_global(&mut global, Some(rt));
    Ok(())
}

/// Shuts the global runtime down (see [`Runtime::shutdown`]). The next call starts a new one.
pub fn shutdown() {
    let rt = set_global(&mut GLOBAL.write(), None);
    // This thread's copy goes now; others' go at their next call (see `Current`).
    context::try_with(|cx| cx.global_seen.borrow_mut().1 = None);
    if let Some(rt) = rt {
        rt.shutdown();
        rt.owner.shared.backend.disconnect();
    }
}
