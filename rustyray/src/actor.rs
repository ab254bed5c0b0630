//! Actors: stateful workers that run their methods one at a time, in the order calls arrive.
//!
//! `#[rustyray::actor]` expands to an [`ActorBuilder`] for the constructor and a
//! [`CallBuilder`] per method; both are usable by hand:
//!
//! ```
//! use rustyray::actor::{ActorBuilder, ActorHandle};
//! use rustyray::{Config, Runtime};
//!
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
use std::fmt;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
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

/// A handle to an actor of type `A`: cheap to clone, `Send`, serializable, usable from any
/// thread, task or other actor of the runtime that made it.
pub struct ActorHandle<A> {
    id: ActorId,
    _actor: PhantomData<fn() -> A>,
}

impl<A> ActorHandle<A> {
    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }
}

impl<A: Send + 'static> ActorHandle<A> {
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

impl<A> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            id: self.id,
            _actor: PhantomData,
        }
    }
}

impl<A> PartialEq for ActorHandle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<A> Eq for ActorHandle<A> {}

impl<A> fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ActorHandle<{}>({})",
            std::any::type_name::<A>(),
            self.id
        )
    }
}

impl<A> Serialize for ActorHandle<A> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.id.serialize(serializer)
    }
}

impl<'de, A> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ActorId::deserialize(deserializer).map(|id| ActorHandle {
            id,
            _actor: PhantomData,
        })
    }
}

type SyncMethod<A> = Box<dyn Fn(&mut A) -> anyhow::Result<Object> + Send + Sync>;
type AsyncMethod<A> =
    Box<dyn for<'a> Fn(&'a mut A) -> BoxFuture<'a, anyhow::Result<Object>> + Send + Sync>;

enum Method<A> {
    Sync(SyncMethod<A>),
    Async(AsyncMethod<A>),
}

struct Call<A> {
    method: Cow<'static, str>,
    deps: Vec<ObjectId>,
    out: ObjectId,
    body: Method<A>,
}

type SyncCtor<A> = Box<dyn Fn() -> anyhow::Result<A> + Send + Sync>;
type AsyncCtor<A> = Box<dyn Fn() -> BoxFuture<'static, anyhow::Result<A>> + Send + Sync>;

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

/// The actors of one runtime.
pub(crate) struct ActorTable {
    owner: u32,
    next: AtomicU64,
    cells: Mutex<FxHashMap<u64, Arc<dyn Any + Send + Sync>>>,
}

impl ActorTable {
    pub(crate) fn new(owner: u32) -> ActorTable {
        ActorTable {
            owner,
            next: AtomicU64::new(1),
            cells: Mutex::default(),
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
        drop(cells);
    }
}

/// Builds and starts one actor: its constructor's arguments, then the constructor.
#[must_use = "the actor starts only once `spawn` or `spawn_async` is called"]
pub struct ActorBuilder<A> {
    class: Cow<'static, str>,
    deps: Vec<ObjectId>,
    _actor: PhantomData<fn() -> A>,
}

impl<A> fmt::Debug for ActorBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorBuilder")
            .field("class", &self.class)
            .field("deps", &self.deps)
            .finish()
    }
}

impl<A: Send + 'static> ActorBuilder<A> {
    /// An actor of class `class` (its name in errors).
    pub fn new(class: impl Into<Cow<'static, str>>) -> ActorBuilder<A> {
        ActorBuilder {
            class: class.into(),
            deps: Vec::new(),
            _actor: PhantomData,
        }
    }

    /// Adds a constructor argument (a value or a ref) and returns the slot to read it from.
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        let slot = arg.into_arg();
        if let ArgSlot::Ref(id) = &slot {
            self.deps.push(*id);
        }
        slot
    }

    /// Starts the actor with a synchronous constructor, run once on the CPU pool after its ref
    /// arguments are ready. Returns its handle at once; calls made before the constructor ends
    /// wait for it.
    pub fn spawn<F>(self, ctor: F) -> ActorHandle<A>
    where
        F: Fn() -> anyhow::Result<A> + Send + Sync + 'static,
    {
        self.start(Ctor::Sync(Box::new(ctor)))
    }

    /// Starts the actor with an asynchronous constructor, run once on tokio.
    pub fn spawn_async<F, Fut>(self, ctor: F) -> ActorHandle<A>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<A>> + Send + 'static,
    {
        self.start(Ctor::Async(Box::new(move || Box::pin(ctor()))))
    }

    fn start(self, ctor: Ctor<A>) -> ActorHandle<A> {
        let shared = runtime::current();
        let (mailbox, inbox) = mpsc::unbounded_channel();
        let cell = Arc::new(ActorCell {
            class: self.class,
            mailbox,
            alive: AtomicBool::new(true),
            death: Mutex::new(None),
        });
        let id = shared.actors.insert(Arc::clone(&cell));
        let handle = ActorHandle {
            id,
            _actor: PhantomData,
        };
        match (shared.check(), shared.handle()) {
            (Ok(()), Some(tokio)) => {
                let host = ActorHost {
                    shared: Arc::clone(&shared),
                    cell,
                    inbox,
                };
                tokio.spawn(host.run(self.deps, ctor));
            }
            (Err(error), _) => cell.mark_dead(error.to_string()),
            (Ok(()), None) => cell.mark_dead(Error::RuntimeShutdown.to_string()),
        }
        handle
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

impl<A> fmt::Debug for CallBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallBuilder")
            .field("actor", &self.actor)
            .field("method", &self.method)
            .finish()
    }
}

impl<A: Send + 'static> CallBuilder<A> {
    /// Adds an argument (a value or a ref) and returns the slot to read it from in the body.
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        let slot = arg.into_arg();
        if let ArgSlot::Ref(id) = &slot {
            self.deps.push(*id);
        }
        slot
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

/// The running side of an actor: its mailbox and, once constructed, its state.
struct ActorHost<A> {
    shared: Arc<Shared>,
    cell: Arc<ActorCell<A>>,
    inbox: mpsc::UnboundedReceiver<Call<A>>,
}

impl<A: Send + 'static> ActorHost<A> {
    async fn run(mut self, deps: Vec<ObjectId>, ctor: Ctor<A>) {
        let state = match self.construct(&deps, ctor).await {
            Ok(state) => state,
            Err(reason) => return self.die(None, reason),
        };
        let mut state = Box::new(state);
        let mut next: Option<Call<A>> = None;
        loop {
            let call = match next.take() {
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
                Method::Sync(_) => {
                    let mut batch = vec![call];
                    while batch.len() < MAX_BATCH {
                        match self.inbox.try_recv() {
                            Ok(call)
                                if matches!(call.body, Method::Sync(_))
                                    && all_resolved(&self.shared, &call.deps) =>
                            {
                                batch.push(call)
                            }
                            Ok(call) => {
                                next = Some(call);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let Some(tokio) = self.shared.handle().cloned() else {
                        return;
                    };
                    let (shared, cell) = (Arc::clone(&self.shared), Arc::clone(&self.cell));
                    match tokio
                        .spawn_blocking(move || {
                            let died = run_batch(&shared, &cell, &mut state, batch);
                            (state, died)
                        })
                        .await
                    {
                        Ok((back, died)) => {
                            state = back;
                            died
                        }
                        Err(_) => return, // the runtime is shutting down
                    }
                }
            };
            if let Some(reason) = died {
                return self.die(next, reason);
            }
        }
    }

    async fn construct(&self, deps: &[ObjectId], ctor: Ctor<A>) -> Result<A, String> {
        if let Some(error) = wait_for(&self.shared, deps).await {
            return Err(format!("a constructor argument failed: {error}"));
        }
        let function = format!("{}::new", self.cell.class);
        let outcome = match ctor {
            Ctor::Sync(ctor) => {
                let tokio = self.shared.handle().cloned().ok_or("runtime shut down")?;
                tokio
                    .spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(ctor)))
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
    fn die(mut self, next: Option<Call<A>>, reason: String) {
        self.cell.mark_dead(reason);
        self.inbox.close();
        let error = self.cell.died_error();
        for call in next.into_iter() {
            self.shared.store.complete(call.out, Err(error.clone()));
        }
        while let Ok(call) = self.inbox.try_recv() {
            self.shared.store.complete(call.out, Err(error.clone()));
        }
    }
}

/// Runs ready sync calls in order; returns the reason the actor died, if one panicked.
fn run_batch<A>(
    shared: &Shared,
    cell: &ActorCell<A>,
    state: &mut A,
    batch: Vec<Call<A>>,
) -> Option<String> {
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
            cell.mark_dead(reason.clone());
            let died = cell.died_error();
            for rest in calls {
                shared.store.complete(rest.out, Err(died.clone()));
            }
            return Some(reason);
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
