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
//! Each actor has one host (`actor/host.rs`) that owns the actor's state and takes the calls
//! from its mailbox, an unbounded queue. The host runs async methods on a tokio task and sync
//! methods on a CPU pool thread, moving between the two as the calls require, and parks in the
//! actor's cell when it is idle after sync calls, to be started by the next call sent (on the
//! pool, or on the thread that blocks on that call's result first: see `ActorCell::help` in
//! `actor/table.rs`). A call is sent with its result's pending ref, which the caller gets back
//! at once; calls are taken
//! in the order they arrived, so each caller's calls run in the order it sent them. The
//! `table` counts the handles to each actor: an unnamed actor is freed when its last handle
//! drops (after running the calls already sent); a named one lives until [`kill`]ed.
//!
//! A method returning `Err` fails that call only. A panic is a crash: the actor is rebuilt from
//! its constructor while `max_restarts` allows (re-sending the calls in flight while
//! `max_task_retries` allows), else it dies and every call it holds or receives fails with
//! [`Error::ActorDied`] at once.

mod host;
mod table;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use crate::call_args::{ArgSlot, CallArgs, IntoArg};
use crate::counted::{self, Counted, Handle};
use crate::error::{Error, Result};
use crate::object_ref::{missing, ObjectRef};
use crate::object_store::{Cell, Object, Value};
use crate::runtime::{self, Shared};
use crate::task::BoxFuture;

use host::{ActorHost, ConcurrentRunner};
use table::ActorCell;
pub(crate) use table::{help, ActorTable};

/// The identity of an actor: its runtime and a sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorId {
    pub(crate) owner: u32,
    pub(crate) seq: u64,
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor {}:{}", self.owner, self.seq)
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A type that runs as an actor.
///
/// `#[rustyray::actor]` on a struct implements it; by hand, it is one line:
///
/// ```
/// struct Logger;
/// impl rustyray::actor::Actor for Logger {
///     type Methods = rustyray::actor::NoMethods;
/// }
/// ```
pub trait Actor: Send + Sized + 'static {
    /// What [`ActorHandle<Self>`] dereferences to: the actor's methods as remote calls.
    /// `#[rustyray::actor]` generates it (`CounterMethods` for `struct Counter`).
    type Methods: From<ActorId> + Send + Sync + 'static;
}

/// The [`Actor::Methods`] of an actor whose calls are all made with [`ActorHandle::call`].
#[derive(Debug)]
pub struct NoMethods(#[allow(dead_code)] ActorId);

impl From<ActorId> for NoMethods {
    fn from(id: ActorId) -> Self {
        NoMethods(id)
    }
}

/// A handle to an actor of type `A`: cheap to clone, `Send`, serializable, usable from any
/// thread, task or other actor of the runtime that made it.
///
/// It dereferences to `A`'s generated methods, so `handle.incr(5)` works with no trait to
/// import. Handles are counted: an unnamed actor is freed once no handle to it remains.
pub struct ActorHandle<A: Actor> {
    id: ActorId,
    methods: A::Methods,
    holder: Handle<ActorId>,
}

impl Counted for ActorId {
    fn retain(self, shared: &Shared) -> bool {
        shared.actors.retain(self)
    }

    fn release(self, shared: &Shared) {
        shared.actors.release(self)
    }
}

impl<A: Actor> std::ops::Deref for ActorHandle<A> {
    type Target = A::Methods;

    fn deref(&self) -> &A::Methods {
        &self.methods
    }
}

impl<A: Actor> ActorHandle<A> {
    /// Takes over the count the table gave a new (or newly retained) actor.
    fn adopt(shared: &Arc<Shared>, id: ActorId) -> ActorHandle<A> {
        ActorHandle {
            id,
            methods: A::Methods::from(id),
            holder: counted::adopt(shared, id),
        }
    }

    /// A new counted handle for an id read back from bytes; uncounted if the actor is gone.
    fn retained(id: ActorId) -> ActorHandle<A> {
        ActorHandle {
            id,
            methods: A::Methods::from(id),
            holder: counted::retained(id),
        }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Starts a call of `method` (its name in errors); add arguments, then `spawn` it.
    pub fn call(&self, method: impl Into<Cow<'static, str>>) -> CallBuilder<A> {
        CallBuilder::new(self.id, method)
    }
}

impl<A: Actor> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            id: self.id,
            methods: A::Methods::from(self.id),
            holder: self.holder.clone(),
        }
    }
}

impl<A: Actor> PartialEq for ActorHandle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<A: Actor> Eq for ActorHandle<A> {}

impl<A: Actor> fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ActorHandle<{}>({})",
            std::any::type_name::<A>(),
            self.id
        )
    }
}

impl<A: Actor> Serialize for ActorHandle<A> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(holder) = &self.holder {
            crate::object_store::note_serialized(|| Arc::clone(holder) as _);
        }
        self.id.serialize(serializer)
    }
}

impl<'de, A: Actor> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ActorId::deserialize(deserializer).map(ActorHandle::retained)
    }
}

/// The handle of the actor registered under `name` in the current runtime.
///
/// Fails with [`Error::NotFound`] if no live actor has that name, and with
/// [`Error::TypeMismatch`] if it is not an `A`.
pub fn get_actor<A: Actor>(name: &str) -> Result<ActorHandle<A>> {
    let shared = runtime::current();
    shared.check()?;
    shared.backend.get_actor(&shared, name)
}

/// The live actor named `name` in this process's actor table (see `runtime::Backend`).
pub(crate) fn get_actor_here<A: Actor>(shared: &Arc<Shared>, name: &str) -> Result<ActorHandle<A>> {
    let not_found = || Error::NotFound {
        what: format!("actor named `{name}`"),
    };
    let id = shared.actors.named(name).ok_or_else(not_found)?;
    shared.actors.get::<A>(id)?;
    if !shared.actors.retain(id) {
        return Err(not_found());
    }
    Ok(ActorHandle::adopt(shared, id))
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
    shared.backend.kill(&shared, handle)
}

/// The actor Ray knows under `name` (see `runtime::Backend::get_actor`).
#[cfg(feature = "ray")]
pub(crate) fn get_actor_on_ray<A: Actor>(
    shared: &Arc<Shared>,
    ray: &crate::ray::Backend,
    name: &str,
) -> Result<ActorHandle<A>> {
    let class = std::any::type_name::<A>()
        .rsplit("::")
        .next()
        .unwrap_or("actor");
    let id = ray.get_actor(shared, name, class)?;
    Ok(ActorHandle::adopt(shared, id))
}

/// Kills an actor of this process (see `runtime::Backend::kill`).
pub(crate) fn kill_here<A: Actor>(shared: &Shared, handle: &ActorHandle<A>) -> Result<()> {
    shared.actors.kill(handle.id)
}

/// Kills an actor on Ray (see `runtime::Backend::kill`).
#[cfg(feature = "ray")]
pub(crate) fn kill_on_ray<A: Actor>(shared: &Shared, handle: &ActorHandle<A>) -> Result<()> {
    shared.actors.remote(handle.id)?.kill()
}

/// Options of an actor: its name, restarts, retries and concurrency.
#[derive(Clone, Debug, PartialEq)]
pub struct ActorOptions {
    pub(crate) name: Option<String>,
    pub(crate) max_restarts: u32,
    pub(crate) max_task_retries: u32,
    pub(crate) max_concurrency: usize,
}

impl Default for ActorOptions {
    /// Unnamed, no restarts, no retries, one call at a time.
    fn default() -> Self {
        ActorOptions {
            name: None,
            max_restarts: 0,
            max_task_retries: 0,
            max_concurrency: 1,
        }
    }
}

impl ActorOptions {
    /// Registers the actor under `name`, so [`get_actor`] finds it; it then lives until
    /// [`kill`]ed, even with no handle left.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many times a panicked actor is rebuilt from its constructor arguments (default 0).
    pub fn max_restarts(mut self, n: u32) -> Self {
        self.max_restarts = n;
        self
    }

    /// How many times a call interrupted by a crash is sent again to the restarted actor
    /// (default 0: it fails with the crash's error).
    pub fn max_task_retries(mut self, n: u32) -> Self {
        self.max_task_retries = n;
        self
    }

    /// How many async calls may interleave (default 1: one call at a time).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }
}

// Boxed: a body that captures nothing (a method without arguments) allocates nothing. A call
// interrupted by a crash is moved back into the backlog, never copied; only shared calls are
// copied (a concurrent run keeps each one it started, to report it if another one crashes).
type SyncMethod<A> = Box<dyn Fn(&mut A) -> anyhow::Result<Object> + Send + Sync>;
type AsyncMethod<A> =
    Box<dyn for<'a> Fn(&'a mut A) -> BoxFuture<'a, anyhow::Result<Object>> + Send + Sync>;
type SharedMethod<A> =
    Arc<dyn for<'a> Fn(&'a A) -> BoxFuture<'a, anyhow::Result<Object>> + Send + Sync>;

pub(crate) enum Method<A> {
    Sync(SyncMethod<A>),
    Async(AsyncMethod<A>),
    /// An async `&self` method of a concurrent actor: may interleave with others of its kind.
    Shared(SharedMethod<A>),
}

/// One call in a mailbox.
struct Call<A> {
    method: Cow<'static, str>,
    deps: Vec<Arc<Cell>>,
    out: Arc<Cell>,
    body: Method<A>,
    /// How many times the call was re-sent after a crash.
    attempts: u32,
}

impl<A> Call<A> {
    /// Stores the call's outcome, letting go of the call (its body and argument refs) first,
    /// and of its handle to the result before the result's waiters run.
    fn finish(self, outcome: Result<Object>) {
        let out = Arc::clone(&self.out);
        drop(self);
        out.finish(outcome);
    }

    /// A copy of a shared call (sharing its body); `None` for other kinds.
    fn copy_shared(&self) -> Option<Call<A>> {
        let Method::Shared(body) = &self.body else {
            return None;
        };
        Some(Call {
            method: self.method.clone(),
            deps: self.deps.clone(),
            out: Arc::clone(&self.out),
            body: Method::Shared(Arc::clone(body)),
            attempts: self.attempts,
        })
    }
}

type SyncCtor<A> = Arc<dyn Fn() -> anyhow::Result<A> + Send + Sync>;
type AsyncCtor<A> = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<A>> + Send + Sync>;

/// How to build the actor's state; kept for restarts.
pub(crate) enum Ctor<A> {
    Sync(SyncCtor<A>),
    Async(AsyncCtor<A>),
}

/// Builds and starts one actor: its options, its constructor's arguments, then the
/// constructor.
#[must_use = "the actor starts only once `spawn` or `spawn_async` is called"]
pub struct ActorBuilder<A> {
    class: Cow<'static, str>,
    options: ActorOptions,
    concurrent: Option<ConcurrentRunner<A>>,
    args: CallArgs,
}

impl<A: Actor> fmt::Debug for ActorBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorBuilder")
            .field("class", &self.class)
            .field("options", &self.options)
            .field("deps", &self.args.deps)
            .finish()
    }
}

impl<A: Actor> ActorBuilder<A> {
    /// An actor of class `class` (its name in errors) with default options.
    pub fn new(class: impl Into<Cow<'static, str>>) -> ActorBuilder<A> {
        ActorBuilder {
            class: class.into(),
            options: ActorOptions::default(),
            concurrent: None,
            args: CallArgs::new(),
        }
    }

    /// The constructor's id in the [registry](crate::registry) (what `#[rustyray::actor]`
    /// passes). Only a registered constructor can build the actor on the `ray` backend.
    #[doc(hidden)]
    pub fn registered(mut self, id: &'static str) -> Self {
        self.args.registered = Some(id);
        self
    }

    /// Sets the actor's options.
    pub fn options(mut self, options: ActorOptions) -> Self {
        self.options = options;
        self
    }

    /// Declares that the actor's shared calls ([`CallBuilder::spawn_shared`]) may interleave,
    /// which `max_concurrency(n > 1)` requires. `#[rustyray::actor(concurrent)]` sets it.
    pub fn concurrent(mut self) -> Self
    where
        A: Sync,
    {
        self.concurrent = Some(|host, state, first| Box::pin(host.run_concurrently(state, first)));
        self
    }

    fn check_concurrency(&self) -> Result<()> {
        let n = self.options.max_concurrency;
        if n == 0 {
            return Err(Error::InvalidArgument(
                "max_concurrency(0) would never run a call; use 1 or more".to_owned(),
            ));
        }
        if n > 1 && self.concurrent.is_none() {
            return Err(Error::InvalidArgument(format!(
                "max_concurrency({n}) needs methods that may interleave: put \
                 #[rustyray::actor(concurrent)] on `impl {}` so its async `&self` methods can \
                 run side by side",
                self.class
            )));
        }
        Ok(())
    }

    /// Adds a constructor argument (a value or a ref) and returns the slot to read it from.
    /// The slot's ref keeps the object alive as long as the actor may need it (restarts
    /// included), since the constructor keeps its slots.
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg(arg)
    }

    /// Starts the actor with a synchronous constructor, run on the CPU pool after its ref
    /// arguments are ready (and again at each restart). Returns its handle at once; calls made
    /// before the constructor ends wait for it.
    pub fn spawn<F>(self, ctor: F) -> ActorHandle<A>
    where
        F: Fn() -> anyhow::Result<A> + Send + Sync + 'static,
    {
        self.start(Ctor::Sync(Arc::new(ctor)))
    }

    /// Starts the actor with an asynchronous constructor, run on tokio.
    pub fn spawn_async<F, Fut>(self, ctor: F) -> ActorHandle<A>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<A>> + Send + 'static,
    {
        self.start(Ctor::Async(Arc::new(move || Box::pin(ctor()))))
    }

    fn start(self, ctor: Ctor<A>) -> ActorHandle<A> {
        let shared = runtime::current();
        shared.backend.create_actor(&shared, self, ctor)
    }

    /// Starts the actor in this process (see `runtime::Backend::create_actor`).
    pub(crate) fn start_here(mut self, shared: &Arc<Shared>, ctor: Ctor<A>) -> ActorHandle<A> {
        self.args.deps.keep_owned_by(shared.id);
        let concurrency = self.check_concurrency();
        let class = match &self.options.name {
            Some(name) => format!("{} `{name}`", self.class).into(),
            None => self.class,
        };
        let cell = Arc::new(ActorCell::new(class));
        let id = shared.actors.insert(Arc::clone(&cell));
        let handle = ActorHandle::adopt(shared, id);
        let checked = shared
            .check()
            .and(concurrency)
            .and_then(|()| match &self.options.name {
                Some(name) => shared.actors.claim_name(name, id),
                None => Ok(()),
            });
        match (checked, shared.handle()) {
            (Ok(()), Some(tokio)) => {
                let host = ActorHost {
                    shared: Arc::clone(shared),
                    cell: Arc::clone(&cell),
                    deps: self.args.deps,
                    ctor,
                    restarts_left: self.options.max_restarts,
                    max_task_retries: self.options.max_task_retries,
                    max_concurrency: self.options.max_concurrency,
                    concurrent: self.concurrent,
                    backlog: Default::default(),
                    running: Vec::new(),
                };
                let task = tokio.spawn(host.run());
                cell.set_task(task.abort_handle());
            }
            (Err(error), _) => {
                cell.mark_dead(error.to_string());
                cell.close();
            }
            (Ok(()), None) => {
                cell.mark_dead(Error::RuntimeShutdown.to_string());
                cell.close();
            }
        }
        handle
    }
}

impl<A: Actor> ActorBuilder<A> {
    /// Creates the actor on Ray. A failure to create it gives a handle whose calls all fail
    /// with the reason, as an embedded actor whose constructor failed does.
    #[cfg(feature = "ray")]
    pub(crate) fn start_on_ray(
        self,
        shared: &Arc<Shared>,
        ray: &crate::ray::Backend,
    ) -> ActorHandle<A> {
        let created = self
            .args
            .for_ray("actor", &self.class)
            .and_then(|(id, wire)| ray.create_actor(shared, wire, id, &self.class, &self.options));
        let id = created.unwrap_or_else(|error| {
            let cell = Arc::new(ActorCell::<A>::new(self.class.clone()));
            cell.mark_dead(error.to_string());
            cell.close();
            shared.actors.insert(cell)
        });
        ActorHandle::adopt(shared, id)
    }
}

/// One method call being built: its arguments, then its body.
#[must_use = "the call is sent only once `spawn` or `spawn_async` is called"]
pub struct CallBuilder<A> {
    actor: ActorId,
    method: Cow<'static, str>,
    args: CallArgs,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> fmt::Debug for CallBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallBuilder")
            .field("actor", &self.actor)
            .field("method", &self.method)
            .finish()
    }
}

impl<A: Actor> CallBuilder<A> {
    /// A call of `method` on the actor `actor` (what [`ActorHandle::call`] and the generated
    /// methods use).
    pub fn new(actor: ActorId, method: impl Into<Cow<'static, str>>) -> CallBuilder<A> {
        CallBuilder {
            actor,
            method: method.into(),
            args: CallArgs::new(),
            _actor: PhantomData,
        }
    }

    /// The method's id in the [registry](crate::registry) (what `#[rustyray::actor]`
    /// passes). Only a registered method can be called on the `ray` backend.
    #[doc(hidden)]
    pub fn registered(mut self, id: &'static str) -> Self {
        self.args.registered = Some(id);
        self
    }

    /// Adds an argument (a value or a ref) and returns the slot to read it from in the body.
    /// A ref argument stays alive as long as the call needs it, through the slot.
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg(arg)
    }

    /// Sends the call with a synchronous body, run on the CPU pool with the actor's state.
    pub fn spawn<R, F>(self, body: F) -> ObjectRef<R>
    where
        R: Value,
        F: Fn(&mut A) -> anyhow::Result<R> + Send + Sync + 'static,
    {
        self.send(Method::Sync(Box::new(move |a| body(a).map(Object::new))))
    }

    /// Sends the call with an asynchronous body, run on the actor's tokio task.
    ///
    /// ```
    /// # use rustyray::{actor::ActorBuilder, Config, Runtime};
    /// # let rt = Runtime::new(Config::default()).unwrap();
    /// # let _guard = rt.enter();
    /// #[rustyray::actor]
    /// struct Greeter(String);
    /// let greeter = ActorBuilder::new("Greeter").spawn(|| Ok(Greeter("hi".into())));
    /// let mut call = greeter.call("greet");
    /// let name = call.arg("ann".to_string());
    /// let r = call.spawn_async(move |g: &mut Greeter| {
    ///     let name = name.get();
    ///     Box::pin(async move { Ok(format!("{} {}", g.0, name?)) })
    /// });
    /// assert_eq!(rustyray::get(&r).unwrap(), "hi ann");
    /// ```
    pub fn spawn_async<R, F>(self, body: F) -> ObjectRef<R>
    where
        R: Value,
        F: for<'a> Fn(&'a mut A) -> BoxFuture<'a, anyhow::Result<R>> + Send + Sync + 'static,
    {
        self.send(Method::Async(Box::new(move |a| {
            Box::pin(body(a).map(|r| r.map(Object::new)))
        })))
    }

    /// Sends the call with an asynchronous body that only reads the actor. On an actor started
    /// with `max_concurrency(n)` (n > 1, allowed by [`ActorBuilder::concurrent`]), up to `n`
    /// such calls interleave at their `.await`s; a call of any other kind waits for them to end.
    pub fn spawn_shared<R, F>(self, body: F) -> ObjectRef<R>
    where
        A: Sync,
        R: Value,
        F: for<'a> Fn(&'a A) -> BoxFuture<'a, anyhow::Result<R>> + Send + Sync + 'static,
    {
        self.send(Method::Shared(Arc::new(move |a| {
            Box::pin(body(a).map(|r| r.map(Object::new)))
        })))
    }

    fn send<R>(self, body: Method<A>) -> ObjectRef<R> {
        let shared = runtime::current();
        ObjectRef::adopt(shared.backend.call(&shared, self, body))
    }

    /// Sends the call to the actor's host in this process (see `runtime::Backend::call`).
    pub(crate) fn send_here(mut self, shared: &Arc<Shared>, body: Method<A>) -> Arc<Cell> {
        let cell = match shared
            .check()
            .and_then(|()| shared.actors.get_live::<A>(self.actor))
        {
            Ok(cell) => cell,
            Err(error) => return shared.store.insert_failed(error),
        };
        if !cell.is_alive() {
            return shared.store.insert_failed(cell.died_error());
        }
        self.args.deps.keep_owned_by(shared.id);
        if let Some(id) = self.args.deps.missing {
            return shared.store.insert_failed(missing(id));
        }
        let out = shared.store.insert_pending(None);
        tracing::trace!(
            target: "rustyray::actor",
            actor = %cell.class,
            method = %self.method,
            object = %out.id(),
            "submitted"
        );
        let call = Call {
            method: self.method,
            deps: self.args.deps.cells,
            out: Arc::clone(&out),
            body,
            attempts: 0,
        };
        if cell.send(call, &shared.pool).is_err() {
            // The actor died or was freed after the check above.
            let error = match shared.actors.get::<A>(self.actor) {
                Ok(cell) => cell.died_error(),
                Err(not_found) => not_found,
            };
            out.complete(Err(error));
        }
        out
    }

    #[cfg(feature = "ray")]
    pub(crate) fn send_to_ray(self, shared: &Shared, ray: &crate::ray::Backend) -> Arc<Cell> {
        let sent = self
            .args
            .for_ray("method", &self.method)
            .and_then(|(id, wire)| {
                let actor = shared.actors.remote(self.actor)?;
                Ok(ray.call(shared, &actor, wire, id, &self.method))
            });
        sent.unwrap_or_else(|error| match shared.actors.get::<A>(self.actor) {
            // An actor Ray could not create: its calls fail with the reason.
            Ok(cell) => shared.store.insert_failed(cell.died_error()),
            Err(_) => shared.store.insert_failed(error),
        })
    }
}
