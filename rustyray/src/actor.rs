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
//! Each actor is one tokio task that owns the actor's state and the receiving end of its
//! mailbox, an unbounded channel. A call is sent with its result's pending ref, which the caller
//! gets back at once; calls are taken in the order they arrived, so each caller's calls run in
//! the order it sent them. Before running a call the actor waits for the call's ref arguments.
//!
//! Async methods run on the actor's tokio task. Sync methods run on the CPU pool: the actor
//! moves its state to a pool thread together with every following call that is also sync and
//! whose arguments are ready (up to a batch limit), runs them in order and takes the state back.
//! Batching keeps pipelined calls from paying a thread hand-off each.
//!
//! A method returning `Err` fails that call only. A panic fails that call and kills the actor,
//! since its state may be half-updated: queued and later calls fail with [`Error::ActorDied`] at
//! once. A failing constructor kills the actor the same way.

use std::any::Any;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::object_ref::{ObjectId, ObjectRef, Resolve};
use crate::object_store::{Object, State, Value};
use crate::runtime::{self, Shared};
use crate::task::{ArgSlot, BoxFuture, IntoArg};

/// How many ready sync calls one trip to the CPU pool runs at most.
const MAX_BATCH: usize = 256;

/// The identity of an actor: its runtime and a sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorId {
    owner: u32,
    seq: u64,
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
#[derive(Debug, Clone, Copy)]
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
/// import.
pub struct ActorHandle<A: Actor> {
    id: ActorId,
    methods: A::Methods,
}

impl<A: Actor> std::ops::Deref for ActorHandle<A> {
    type Target = A::Methods;

    fn deref(&self) -> &A::Methods {
        &self.methods
    }
}

impl<A: Actor> ActorHandle<A> {
    /// The handle of the actor with this id (in the runtime the id belongs to).
    pub fn from_id(id: ActorId) -> ActorHandle<A> {
        ActorHandle {
            id,
            methods: A::Methods::from(id),
        }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Starts a call of `method` (its name in errors); add arguments, then `spawn` it.
    pub fn call(&self, method: impl Into<Cow<'static, str>>) -> CallBuilder<A> {
        CallBuilder {
            actor: self.id,
            method: method.into(),
            deps: Vec::new(),
            _actor: PhantomData,
        }
    }
}

impl<A: Actor> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle::from_id(self.id)
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
        self.id.serialize(serializer)
    }
}

impl<'de, A: Actor> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ActorId::deserialize(deserializer).map(ActorHandle::from_id)
    }
}

/// Options of an actor: its name, restarts and concurrency.
#[derive(Clone, Debug, PartialEq)]
pub struct ActorOptions {
    pub(crate) name: Option<String>,
    pub(crate) max_restarts: u32,
    pub(crate) max_concurrency: usize,
}

impl Default for ActorOptions {
    /// Unnamed, no restarts, one call at a time.
    fn default() -> Self {
        ActorOptions {
            name: None,
            max_restarts: 0,
            max_concurrency: 1,
        }
    }
}

impl ActorOptions {
    /// Registers the actor under `name`, so [`get_actor`](crate::get_actor) finds it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many times a panicked actor is rebuilt from its constructor arguments (default 0).
    pub fn max_restarts(mut self, n: u32) -> Self {
        self.max_restarts = n;
        self
    }

    /// How many async calls may interleave (default 1: one call at a time).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }
}

type SyncMethod<A> = Box<dyn Fn(&mut A) -> anyhow::Result<Object> + Send + Sync>;
type AsyncMethod<A> =
    Box<dyn for<'a> Fn(&'a mut A) -> BoxFuture<'a, anyhow::Result<Object>> + Send + Sync>;

type SharedMethod<A> =
    Box<dyn for<'a> Fn(&'a A) -> BoxFuture<'a, anyhow::Result<Object>> + Send + Sync>;

enum Method<A> {
    Sync(SyncMethod<A>),
    Async(AsyncMethod<A>),
    /// An async `&self` method of a concurrent actor: may interleave with others of its kind.
    Shared(SharedMethod<A>),
}

struct Call<A> {
    method: Cow<'static, str>,
    deps: Vec<ObjectId>,
    out: ObjectId,
    body: Method<A>,
}

type SyncCtor<A> = Arc<dyn Fn() -> anyhow::Result<A> + Send + Sync>;
type AsyncCtor<A> = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<A>> + Send + Sync>;

/// How to build the actor's state; kept for restarts.
enum Ctor<A> {
    Sync(SyncCtor<A>),
    Async(AsyncCtor<A>),
}

/// What callers share with a running actor: its mailbox and whether it is alive.
struct ActorCell<A> {
    class: Cow<'static, str>,
    mailbox: mpsc::UnboundedSender<Call<A>>,
    alive: AtomicBool,
    death: Mutex<Option<String>>,
}

impl<A> ActorCell<A> {
    fn died_error(&self) -> Error {
        Error::ActorDied {
            actor: self.class.to_string(),
            reason: self
                .death
                .lock()
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
        }
    }

    fn mark_dead(&self, reason: String) {
        self.death.lock().get_or_insert(reason);
        self.alive.store(false, Ordering::Release);
    }
}

/// The actors of one runtime, and the names of named ones.
pub(crate) struct ActorTable {
    owner: u32,
    next: AtomicU64,
    cells: Mutex<FxHashMap<u64, Arc<dyn Any + Send + Sync>>>,
    names: Mutex<FxHashMap<String, ActorId>>,
}

impl ActorTable {
    pub(crate) fn new(owner: u32) -> ActorTable {
        ActorTable {
            owner,
            next: AtomicU64::new(1),
            cells: Mutex::default(),
            names: Mutex::default(),
        }
    }

    fn insert<A: Send + 'static>(&self, cell: Arc<ActorCell<A>>) -> ActorId {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.cells.lock().insert(seq, cell);
        ActorId {
            owner: self.owner,
            seq,
        }
    }

    /// Claims `name` for `id`; fails if another live actor holds it.
    fn claim_name(&self, name: &str, id: ActorId) -> Result<()> {
        let mut names = self.names.lock();
        if let Some(holder) = names.get(name) {
            return Err(Error::InvalidArgument(format!(
                "an actor named `{name}` already exists ({holder}); pick another name, or get \
                 the existing one with `rustyray::get_actor`"
            )));
        }
        names.insert(name.to_owned(), id);
        Ok(())
    }

    fn named(&self, name: &str) -> Option<ActorId> {
        self.names.lock().get(name).copied()
    }

    fn get<A: Send + 'static>(&self, id: ActorId) -> Result<Arc<ActorCell<A>>> {
        let not_found = || Error::NotFound {
            what: id.to_string(),
        };
        if id.owner != self.owner {
            return Err(not_found());
        }
        let cell = self
            .cells
            .lock()
            .get(&id.seq)
            .cloned()
            .ok_or_else(not_found)?;
        cell.downcast::<ActorCell<A>>()
            .map_err(|_| Error::TypeMismatch {
                expected: std::any::type_name::<A>(),
                found: "another actor type",
            })
    }

    /// Forgets every actor (at shutdown); their loops stop with the runtime's threads.
    pub(crate) fn clear(&self) {
        let cells = std::mem::take(&mut *self.cells.lock());
        self.names.lock().clear();
        drop(cells);
    }
}

/// The handle of the actor registered under `name` in the current runtime.
///
/// Fails with [`Error::NotFound`] if no actor has that name, and with [`Error::TypeMismatch`]
/// if it is not an `A`.
pub fn get_actor<A: Actor>(name: &str) -> Result<ActorHandle<A>> {
    let shared = runtime::current();
    shared.check()?;
    let id = shared.actors.named(name).ok_or_else(|| Error::NotFound {
        what: format!("actor named `{name}`"),
    })?;
    shared.actors.get::<A>(id)?;
    Ok(ActorHandle::from_id(id))
}

/// Builds and starts one actor: its options, its constructor's arguments, then the
/// constructor.
#[must_use = "the actor starts only once `spawn` or `spawn_async` is called"]
pub struct ActorBuilder<A> {
    class: Cow<'static, str>,
    options: ActorOptions,
    concurrent: Option<ConcurrentRunner<A>>,
    deps: Vec<ObjectId>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> fmt::Debug for ActorBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorBuilder")
            .field("class", &self.class)
            .field("options", &self.options)
            .field("deps", &self.deps)
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
            deps: Vec::new(),
            _actor: PhantomData,
        }
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
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        ArgSlot::collect(arg, &mut self.deps)
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
        let (mailbox, inbox) = mpsc::unbounded_channel();
        let concurrency = self.check_concurrency();
        let class = match &self.options.name {
            Some(name) => format!("{} `{name}`", self.class).into(),
            None => self.class,
        };
        let cell = Arc::new(ActorCell {
            class,
            mailbox,
            alive: AtomicBool::new(true),
            death: Mutex::new(None),
        });
        let id = shared.actors.insert(Arc::clone(&cell));
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
                    shared: Arc::clone(&shared),
                    cell,
                    inbox,
                    backlog: VecDeque::new(),
                    restarts_left: self.options.max_restarts,
                    max_concurrency: self.options.max_concurrency,
                    concurrent: self.concurrent,
                };
                tokio.spawn(host.run(self.deps, ctor));
            }
            (Err(error), _) => cell.mark_dead(error.to_string()),
            (Ok(()), None) => cell.mark_dead(Error::RuntimeShutdown.to_string()),
        }
        ActorHandle::from_id(id)
    }
}

/// One method call being built: its arguments, then its body.
#[must_use = "the call is sent only once `spawn` or `spawn_async` is called"]
pub struct CallBuilder<A> {
    actor: ActorId,
    method: Cow<'static, str>,
    deps: Vec<ObjectId>,
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
    /// Adds an argument (a value or a ref) and returns the slot to read it from in the body.
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        ArgSlot::collect(arg, &mut self.deps)
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
        self.send(Method::Shared(Box::new(move |a| {
            Box::pin(body(a).map(|r| r.map(Object::new)))
        })))
    }

    fn send<R>(self, body: Method<A>) -> ObjectRef<R> {
        let shared = runtime::current();
        let cell = match shared
            .check()
            .and_then(|()| shared.actors.get::<A>(self.actor))
        {
            Ok(cell) => cell,
            Err(error) => return ObjectRef::from_id(shared.store.insert_failed(error)),
        };
        if !cell.alive.load(Ordering::Acquire) {
            return ObjectRef::from_id(shared.store.insert_failed(cell.died_error()));
        }
        let out = shared.store.insert_pending();
        let call = Call {
            method: self.method,
            deps: self.deps,
            out,
            body,
        };
        if cell.mailbox.send(call).is_err() {
            // The actor died after the check above and closed its mailbox.
            shared.store.complete(out, Err(cell.died_error()));
        }
        ObjectRef::from_id(out)
    }
}

/// The running side of an actor: its mailbox, calls taken from it but not run yet, and its
/// restart budget.
struct ActorHost<A> {
    shared: Arc<Shared>,
    cell: Arc<ActorCell<A>>,
    inbox: mpsc::UnboundedReceiver<Call<A>>,
    backlog: VecDeque<Call<A>>,
    restarts_left: u32,
    max_concurrency: usize,
    /// Runs shared calls side by side; set only for `Sync` actors (see
    /// [`ActorBuilder::concurrent`]), since the calls hold `&A` across their awaits.
    concurrent: Option<ConcurrentRunner<A>>,
}

type ConcurrentRunner<A> =
    for<'a> fn(&'a mut ActorHost<A>, &'a A, Call<A>) -> BoxFuture<'a, Option<String>>;

impl<A: Actor> ActorHost<A> {
    async fn run(mut self, deps: Vec<ObjectId>, ctor: Ctor<A>) {
        let mut state = match self.construct(&deps, &ctor).await {
            Ok(state) => Box::new(state),
            Err(reason) => return self.die(reason),
        };
        loop {
            let call = match self.backlog.pop_front() {
                Some(call) => call,
                None => match self.inbox.recv().await {
                    Some(call) => call,
                    None => return,
                },
            };
            if let Some(error) = wait_for(&self.shared, &call.deps).await {
                self.shared.store.complete(call.out, Err(error));
                continue;
            }
            let died = match &call.body {
                Method::Async(method) => {
                    let outcome = AssertUnwindSafe(method(&mut state)).catch_unwind().await;
                    finish(&self.shared, &self.cell, &call, outcome)
                }
                Method::Shared(method) => match self.concurrent {
                    Some(runner) if self.max_concurrency > 1 => {
                        runner(&mut self, &state, call).await
                    }
                    _ => {
                        let outcome = AssertUnwindSafe(method(&state)).catch_unwind().await;
                        finish(&self.shared, &self.cell, &call, outcome)
                    }
                },
                Method::Sync(_) => {
                    let batch = self.take_batch(call);
                    let Some(tokio) = self.shared.handle().cloned() else {
                        return;
                    };
                    let (shared, cell) = (Arc::clone(&self.shared), Arc::clone(&self.cell));
                    let ran = tokio
                        .spawn_blocking(move || {
                            let outcome = run_batch(&shared, &cell, &mut state, batch);
                            (state, outcome)
                        })
                        .await;
                    let Ok((back, outcome)) = ran else {
                        return; // the runtime is shutting down
                    };
                    state = back;
                    outcome.map(|(reason, unrun)| {
                        for call in unrun.into_iter().rev() {
                            self.backlog.push_front(call);
                        }
                        reason
                    })
                }
            };
            let Some(reason) = died else { continue };
            if self.restarts_left == 0 {
                return self.die(reason);
            }
            self.restarts_left -= 1;
            match self.construct(&deps, &ctor).await {
                Ok(rebuilt) => *state = rebuilt,
                Err(reason) => return self.die(reason),
            }
        }
    }

    /// Runs `first` and the shared calls that follow it, up to `max_concurrency` at a time,
    /// until a call of another kind arrives (it waits in the backlog) and the running ones end.
    /// Returns the death reason if one panicked; the others still running then fail with
    /// [`Error::ActorDied`].
    async fn run_concurrently(&mut self, state: &A, first: Call<A>) -> Option<String>
    where
        A: Sync,
    {
        let (shared, cell, limit) = (&self.shared, &self.cell, self.max_concurrency);
        let start = |call: Call<A>| async move {
            if let Some(error) = wait_for(shared, &call.deps).await {
                shared.store.complete(call.out, Err(error));
                return None;
            }
            let Method::Shared(method) = &call.body else {
                unreachable!("only shared calls start here")
            };
            let outcome = AssertUnwindSafe(method(state)).catch_unwind().await;
            finish(shared, cell, &call, outcome)
        };
        let mut started = vec![first.out];
        let mut running = FuturesUnordered::new();
        running.push(start(first));
        let mut accepting = true;
        let died = loop {
            if accepting && running.len() < limit {
                tokio::select! {
                    biased;
                    Some(outcome) = running.next() => {
                        if let Some(reason) = outcome {
                            break Some(reason);
                        }
                    }
                    next = next_call(&mut self.backlog, &mut self.inbox) => match next {
                        Some(call) if matches!(call.body, Method::Shared(_)) => {
                            started.push(call.out);
                            running.push(start(call));
                        }
                        Some(call) => {
                            self.backlog.push_front(call);
                            accepting = false;
                        }
                        None => accepting = false,
                    },
                }
            } else {
                match running.next().await {
                    Some(Some(reason)) => break Some(reason),
                    Some(None) => {}
                    None => break None,
                }
            }
            if !accepting && running.is_empty() {
                break None;
            }
        };
        drop(running);
        if let Some(reason) = &died {
            let error = Error::ActorDied {
                actor: self.cell.class.to_string(),
                reason: reason.clone(),
            };
            for out in started {
                self.shared.store.complete(out, Err(error.clone()));
            }
        }
        died
    }

    /// `first` and the sync calls after it whose arguments are all resolved, in order.
    fn take_batch(&mut self, first: Call<A>) -> Vec<Call<A>> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let next = match self.backlog.pop_front() {
                Some(call) => call,
                None => match self.inbox.try_recv() {
                    Ok(call) => call,
                    Err(_) => break,
                },
            };
            if matches!(next.body, Method::Sync(_)) && all_resolved(&self.shared, &next.deps) {
                batch.push(next);
            } else {
                self.backlog.push_front(next);
                break;
            }
        }
        batch
    }

    async fn construct(&self, deps: &[ObjectId], ctor: &Ctor<A>) -> Result<A, String> {
        if let Some(error) = wait_for(&self.shared, deps).await {
            return Err(format!("a constructor argument failed: {error}"));
        }
        let function = format!("{}::new", self.cell.class);
        let outcome = match ctor {
            Ctor::Sync(ctor) => {
                let tokio = self.shared.handle().cloned().ok_or("runtime shut down")?;
                let ctor = Arc::clone(ctor);
                tokio
                    .spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(&*ctor)))
                    .await
                    .map_err(|_| Error::RuntimeShutdown.to_string())?
            }
            Ctor::Async(ctor) => AssertUnwindSafe(ctor()).catch_unwind().await,
        };
        match outcome {
            Ok(Ok(state)) => Ok(state),
            Ok(Err(error)) => Err(format!(
                "constructor failed: {}",
                Error::task_failed(&function, &error)
            )),
            Err(payload) => Err(format!(
                "constructor failed: {}",
                Error::panicked(&function, &*payload)
            )),
        }
    }

    /// Marks the actor dead and fails every call it still holds or receives.
    fn die(mut self, reason: String) {
        self.cell.mark_dead(reason);
        self.inbox.close();
        let error = self.cell.died_error();
        for call in self.backlog.drain(..) {
            self.shared.store.complete(call.out, Err(error.clone()));
        }
        while let Ok(call) = self.inbox.try_recv() {
            self.shared.store.complete(call.out, Err(error.clone()));
        }
    }
}

/// Runs ready sync calls in order. If one panics, returns why, with the calls not run yet.
fn run_batch<A>(
    shared: &Shared,
    cell: &ActorCell<A>,
    state: &mut A,
    batch: Vec<Call<A>>,
) -> Option<(String, Vec<Call<A>>)> {
    let mut calls = batch.into_iter();
    while let Some(call) = calls.next() {
        if let Some(error) = first_failure(shared, &call.deps) {
            shared.store.complete(call.out, Err(error));
            continue;
        }
        let Method::Sync(method) = &call.body else {
            unreachable!("batches hold sync calls only")
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| method(state)));
        if let Some(reason) = finish(shared, cell, &call, outcome) {
            return Some((reason, calls.collect()));
        }
    }
    None
}

/// Stores a call's outcome; returns the death reason if it panicked.
fn finish<A>(
    shared: &Shared,
    cell: &ActorCell<A>,
    call: &Call<A>,
    outcome: std::thread::Result<anyhow::Result<Object>>,
) -> Option<String> {
    let function = || format!("{}::{}", cell.class, call.method);
    match outcome {
        Ok(Ok(object)) => {
            shared.store.complete(call.out, Ok(object));
            None
        }
        Ok(Err(error)) => {
            let error = Error::task_failed(&function(), &error);
            shared.store.complete(call.out, Err(error));
            None
        }
        Err(payload) => {
            let error = Error::panicked(&function(), &*payload);
            let reason = error.to_string();
            shared.store.complete(call.out, Err(error));
            Some(reason)
        }
    }
}

/// The next call: from the backlog first, else from the mailbox (`None` once it is closed).
async fn next_call<A>(
    backlog: &mut VecDeque<Call<A>>,
    inbox: &mut mpsc::UnboundedReceiver<Call<A>>,
) -> Option<Call<A>> {
    match backlog.pop_front() {
        Some(call) => Some(call),
        None => inbox.recv().await,
    }
}

/// Waits until every object in `deps` resolves; returns the first failure, if any.
async fn wait_for(shared: &Arc<Shared>, deps: &[ObjectId]) -> Option<Error> {
    for &dep in deps {
        match Resolve::new(Arc::clone(shared), dep).await {
            State::Failed(error) => return Some(error),
            State::Missing => return Some(missing(dep)),
            State::Ready(_) | State::Pending => {}
        }
    }
    None
}

fn all_resolved(shared: &Shared, deps: &[ObjectId]) -> bool {
    deps.iter()
        .all(|&dep| !matches!(shared.store.state(dep), State::Pending))
}

fn first_failure(shared: &Shared, deps: &[ObjectId]) -> Option<Error> {
    deps.iter().find_map(|&dep| match shared.store.state(dep) {
        State::Failed(error) => Some(error),
        State::Missing => Some(missing(dep)),
        _ => None,
    })
}

fn missing(dep: ObjectId) -> Error {
    Error::NotFound {
        what: format!("object {dep} (an actor call argument)"),
    }
}
