//! Building actors and calls: options, the constructor and methods as the host runs them,
//! and sending each to the backend.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::FutureExt;

use crate::call_args::{ArgSlot, CallArgs, IntoArg};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::{Object, Value};
use crate::runtime::{self};
use crate::stream::{ObjectRefStream, Producer, StreamSink};
use crate::task::BoxFuture;

use super::host::ConcurrentRunner;
use super::{Actor, ActorHandle, ActorId};

/// Options of an actor: its name, restarts, retries, concurrency, and the resources it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ActorOptions {
    pub(crate) name: Option<String>,
    pub(crate) max_restarts: u32,
    pub(crate) max_task_retries: u32,
    pub(crate) max_concurrency: usize,
    pub(crate) num_cpus: f64,
    pub(crate) num_gpus: f64,
    pub(crate) resources: Vec<(String, f64)>,
    pub(crate) placement: Option<crate::placement_group::Placement>,
}

impl Default for ActorOptions {
    /// Unnamed, no restarts, no retries, one call at a time, no resources held.
    fn default() -> Self {
        ActorOptions {
            name: None,
            max_restarts: 0,
            max_task_retries: 0,
            max_concurrency: 1,
            num_cpus: 0.0,
            num_gpus: 0.0,
            resources: Vec::new(),
            placement: None,
        }
    }
}

impl ActorOptions {
    crate::actor_option_methods!(define);

    /// Whether the actor holds resources (so it takes a lease from the scheduler).
    pub(crate) fn holds_resources(&self) -> bool {
        self.num_cpus > 0.0
            || self.num_gpus > 0.0
            || !self.resources.is_empty()
            || self.placement.is_some()
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

type SharedSyncMethod<A> = Arc<dyn Fn(&A) -> anyhow::Result<Object> + Send + Sync>;

pub(crate) enum Method<A> {
    Sync(SyncMethod<A>),
    Async(AsyncMethod<A>),
    /// An async `&self` method of a concurrent actor: may interleave with others of its kind.
    Shared(SharedMethod<A>),
    /// A sync `&self` method of a concurrent actor: on a threaded one, runs on the CPU pool
    /// beside the other shared calls (Ray's threaded actors); elsewhere, as `Sync`.
    SharedSync(SharedSyncMethod<A>),
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
    pub(crate) class: Cow<'static, str>,
    pub(crate) options: ActorOptions,
    pub(crate) concurrent: Option<ConcurrentRunner<A>>,
    /// Its sync shared calls run on the CPU pool beside the others ([`ActorBuilder::threaded`]).
    pub(crate) threaded: bool,
    pub(crate) concurrency_groups: Vec<(Cow<'static, str>, usize)>,
    pub(crate) args: CallArgs,
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
            threaded: false,
            concurrency_groups: Vec::new(),
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

    /// Declares that the actor's sync shared calls ([`CallBuilder::spawn_shared_sync`]) run on
    /// the CPU pool beside its other shared calls, up to `max_concurrency` at once (Ray's
    /// threaded actors); implies [`concurrent`](Self::concurrent). `#[rustyray::actor(concurrent)]`
    /// sets it when the impl has a sync `&self` method. (Without it, the state of a concurrent
    /// actor is lent to its async calls in place; with it, it is moved into an `Arc` for each
    /// run of shared calls, which the calls on the pool hold.)
    pub fn threaded(mut self) -> Self
    where
        A: Sync,
    {
        self.threaded = true;
        self.concurrent()
    }

    /// Declares the actor's concurrency groups, each with its own limit of shared calls running
    /// at once and its own queue (what `#[rustyray::actor(concurrency_groups(io = 4))]` passes;
    /// calls name a group by its 1-based index). Needs [`concurrent`](Self::concurrent).
    #[doc(hidden)]
    pub fn concurrency_groups(mut self, groups: &[(&'static str, usize)]) -> Self
    where
        A: Sync,
    {
        self.concurrency_groups = groups.iter().map(|&(n, l)| (n.into(), l)).collect();
        self.concurrent()
    }

    pub(crate) fn check_concurrency(&self) -> Result<()> {
        if let Some((name, _)) = self
            .concurrency_groups
            .iter()
            .find(|(_, limit)| *limit == 0)
        {
            return Err(Error::InvalidArgument(format!(
                "concurrency group `{name}` of `{}` has a limit of 0 and would never run a call; \
                 use 1 or more",
                self.class
            )));
        }
        let n = self.options.max_concurrency;
        if n == 0 {
            return Err(Error::InvalidArgument(
                "max_concurrency(0) would never run a call; use 1 or more".to_owned(),
            ));
        }
        if n > 1 && self.concurrent.is_none() {
            return Err(Error::InvalidArgument(format!(
                "max_concurrency({n}) needs methods that may run side by side: put \
                 #[rustyray::actor(concurrent)] on `impl {}` so its `&self` methods can (async \
                 ones interleave; sync ones run on the CPU pool, as Ray's threaded actors)",
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

    /// Adds an argument the body only borrows or shares (see
    /// [`TaskBuilder::arg_shared`](crate::task::TaskBuilder::arg_shared)).
    pub fn arg_shared<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg_shared(arg)
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
        shared.backend().create_actor(&shared, self, ctor)
    }
}

impl<A: Actor> ActorBuilder<A> {}

/// One method call being built: its arguments, then its body.
#[must_use = "the call is sent only once `spawn` or `spawn_async` is called"]
pub struct CallBuilder<A> {
    pub(crate) actor: ActorId,
    pub(crate) method: Cow<'static, str>,
    pub(crate) args: CallArgs,
    backpressure: Option<usize>,
    pub(crate) group: u8,
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
            backpressure: None,
            group: 0,
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
    #[inline]
    pub fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg(arg)
    }

    /// Adds an argument the body only borrows or shares (see
    /// [`TaskBuilder::arg_shared`](crate::task::TaskBuilder::arg_shared)).
    pub fn arg_shared<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.args.arg_shared(arg)
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

    /// Sends the call with a synchronous body that only reads the actor. On an actor started
    /// with [`ActorBuilder::threaded`] (`#[rustyray::actor(concurrent)]` on an impl with sync
    /// `&self` methods), it runs on the CPU pool beside the actor's other shared calls, up to
    /// `max_concurrency` at once (Ray's threaded actors): it does not wait for the async calls
    /// in flight. On any other actor it runs as [`spawn`](Self::spawn) does.
    ///
    /// ```
    /// # use rustyray::{actor::ActorBuilder, Config, Runtime};
    /// # let rt = Runtime::new(Config::default()).unwrap();
    /// # let _guard = rt.enter();
    /// #[rustyray::actor]
    /// struct Hits(std::sync::atomic::AtomicU64);
    /// let hits = ActorBuilder::new("Hits").threaded().spawn(|| Ok(Hits(Default::default())));
    /// let r = hits.call("bump").spawn_shared_sync(|h: &Hits| {
    ///     Ok(h.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
    /// });
    /// assert_eq!(rustyray::get(&r).unwrap(), 1);
    /// ```
    pub fn spawn_shared_sync<R, F>(self, body: F) -> ObjectRef<R>
    where
        A: Sync,
        R: Value,
        F: Fn(&A) -> anyhow::Result<R> + Send + Sync + 'static,
    {
        self.send(Method::SharedSync(Arc::new(move |a| {
            body(a).map(Object::new)
        })))
    }

    #[inline]
    /// Runs the call in the actor's concurrency group number `index` (1-based, in the order
    /// `#[rustyray::actor(concurrency_groups(..))]` declares them; 0 is the default group).
    #[doc(hidden)]
    pub fn concurrency_group(mut self, index: u8) -> Self {
        self.group = index;
        self
    }

    /// For [`spawn_stream`](Self::spawn_stream): the producer waits while `n` items are
    /// unconsumed (default: no limit; `0` counts as 1).
    pub fn backpressure(mut self, n: usize) -> Self {
        self.backpressure = Some(n.max(1));
        self
    }

    /// Sends a streaming call: `body` hands its items to the [`StreamSink`] it is given, and
    /// each becomes an object of its own at once (see
    /// [`TaskBuilder::spawn_stream`](crate::task::TaskBuilder::spawn_stream)). The actor is busy
    /// until the body returns, as with any call.
    pub fn spawn_stream<T, F>(self, body: F) -> ObjectRefStream<T>
    where
        T: Value,
        F: Fn(&mut A, StreamSink<T>) -> anyhow::Result<()> + Send + Sync + 'static,
    {
        self.submit_stream(|stream, call| {
            call.spawn(move |actor| body(actor, StreamSink::new(Arc::clone(&stream))))
        })
    }

    /// [`spawn_stream`](Self::spawn_stream) with an asynchronous body.
    pub fn spawn_stream_async<T, F>(self, body: F) -> ObjectRefStream<T>
    where
        T: Value,
        F: for<'a> Fn(&'a mut A, StreamSink<T>) -> BoxFuture<'a, anyhow::Result<()>>
            + Send
            + Sync
            + 'static,
    {
        self.submit_stream(|stream, call| {
            call.spawn_async(move |actor| body(actor, StreamSink::new(Arc::clone(&stream))))
        })
    }

    /// Makes the stream and sends the producing call: with `spawn` when the actor runs in this
    /// process; else by its registered id, with the stream's feed as its last argument.
    fn submit_stream<T: Value>(
        mut self,
        spawn: impl FnOnce(Arc<crate::stream::Stream<T>>, Self) -> ObjectRef<()>,
    ) -> ObjectRefStream<T> {
        // `Class.method`, as the state API names actor calls.
        let class = std::any::type_name::<A>();
        let class = class.split('<').next().unwrap_or(class);
        let class = class.rsplit("::").next().unwrap_or(class);
        let function = format!("{class}.{}", self.method).into();
        let backpressure = self.backpressure;
        crate::stream::submit(function, backpressure, |producer| match producer {
            Producer::Here(stream) => spawn(stream, self),
            Producer::Elsewhere(feed) => {
                let _feed = self.arg(feed);
                self.spawn(|_| crate::stream::runs_elsewhere())
            }
        })
    }

    fn send<R>(self, body: Method<A>) -> ObjectRef<R> {
        let shared = runtime::current();
        ObjectRef::from_new_cell(shared.backend().call(&shared, self, body))
    }
}
