//! Support for the code the macros generate. Not public API: names here may change at any time.

use std::fmt::Display;

pub use anyhow;
pub use inventory;

use crate::error::{Error, Result};
pub use crate::object_store::codec::raw::{LittleEndian, NumberVec};
use crate::object_store::Value;
pub use crate::registry::Registration;
pub use crate::stream::StreamFeed;
pub use crate::task::returns::Frames;
pub use crate::task::returns::{split2, split3, split4, split5, split6, split7, split8, split_vec};

/// What a remote function's or method's argument must be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a remote function or actor method",
    label = "arguments must be `Serialize + Deserialize + Clone + Send + Sync + 'static`",
    note = "derive `serde::Serialize`, `serde::Deserialize` and `Clone` for it, or pass data \
            that already is (a `String`, a `Vec`, a struct of such fields)"
)]
pub trait Arg: Value + Clone {}
impl<T: Value + Clone> Arg for T {}

/// What a remote function's or method's result must be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of a remote function or actor method",
    label = "results are stored as objects: they must be `Serialize + Deserialize + Send + Sync + 'static`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it"
)]
pub trait Stored: Value {}
impl<T: Value> Stored for T {}

/// Fails to compile, at the argument type's span, if `T` cannot be an argument.
pub fn assert_arg<T: Arg>() {}

/// Fails to compile, at the parameter's span, if a `&[T]` parameter's `Vec<T>` is not one of
/// plain numbers.
pub fn assert_number_vec<V: NumberVec>() {}

/// A streaming function's `Stream` of items, each made an `anyhow::Result<T>` by `convert`.
pub fn map_stream<S, T>(
    items: S,
    convert: impl FnMut(S::Item) -> anyhow::Result<T>,
) -> impl futures_util::Stream<Item = anyhow::Result<T>>
where
    S: futures_util::Stream,
{
    futures_util::StreamExt::map(items, convert)
}

/// An async streaming function's iterator of items, as a `Stream`.
pub fn iter_stream<I: IntoIterator>(items: I) -> futures_util::stream::Iter<I::IntoIter> {
    futures_util::stream::iter(items)
}

/// Fails to compile, at the result type's span, if `T` cannot be a result.
pub fn assert_result<T: Stored>() {}

/// Holds an error for conversion into `anyhow::Error`, keeping its source chain where it has
/// one (autoref specialization: `(&&ErrWrap::new(e)).into_task_error()` picks `ViaAnyhow` when
/// `E: Into<anyhow::Error>` and `ViaDisplay` otherwise).
pub struct ErrWrap<E>(std::cell::Cell<Option<E>>);

impl<E> ErrWrap<E> {
    /// Wraps `error`.
    pub fn new(error: E) -> Self {
        ErrWrap(std::cell::Cell::new(Some(error)))
    }

    fn take(&self) -> E {
        self.0.take().expect("converted once")
    }
}

/// Errors that convert into `anyhow::Error` (every `std::error::Error`, and `anyhow::Error`).
pub trait ViaAnyhow {
    /// The error as `anyhow::Error`, with its chain.
    fn into_task_error(self) -> anyhow::Error;
}

impl<E: Into<anyhow::Error>> ViaAnyhow for &&ErrWrap<E> {
    fn into_task_error(self) -> anyhow::Error {
        self.take().into()
    }
}

/// Errors that only display (`String`, `&str`, ...).
pub trait ViaDisplay {
    /// The error's message as `anyhow::Error`.
    fn into_task_error(self) -> anyhow::Error;
}

impl<E: Display> ViaDisplay for &ErrWrap<E> {
    fn into_task_error(self) -> anyhow::Error {
        anyhow::Error::msg(self.take().to_string())
    }
}

/// A remote function's arguments, read one parameter at a time (see `codec/entry.rs`).
pub struct Arguments<'a>(crate::object_store::codec::entry::Reader<'a>);

impl<'a> Arguments<'a> {
    /// The arguments in `bytes`, for parameters of the types `names`.
    pub fn new(bytes: &'a [u8], names: &'a [&'static str]) -> Result<Arguments<'a>> {
        crate::object_store::codec::entry::Reader::new(bytes, names).map(Arguments)
    }

    /// The next argument, as the next parameter's type.
    #[allow(clippy::should_implement_trait)]
    pub fn next<T: serde::de::DeserializeOwned + 'static>(&mut self) -> Result<T> {
        self.0.next()
    }

    /// Checks that no argument is left over.
    pub fn end(self) -> Result<()> {
        self.0.end()
    }

    /// The next argument, for a `&[T]` parameter (`V` is `Vec<T>`): read where the call's
    /// bytes hold it when they can be (on a Ray worker), else a copy.
    pub fn next_slice<V: NumberVec>(&mut self) -> Result<std::borrow::Cow<'a, [V::Element]>> {
        self.0.next_slice::<V>()
    }

    /// Takes back a `&[T]` parameter's copy after the call (see [`recycle`](Self::recycle)).
    pub fn recycle_slice<T: Clone + 'static>(value: std::borrow::Cow<'_, [T]>) {
        if let std::borrow::Cow::Owned(vec) = value {
            Self::recycle(vec);
        }
    }

    /// Takes back a `&T` parameter's value after the call, so that a Ray worker decodes the
    /// next call's large `Vec` of numbers into its memory.
    pub fn recycle<T: 'static>(value: T) {
        crate::object_store::codec::entry::recycle(value)
    }
}

/// Encodes a remote function's outcome.
pub fn encode<T: Value>(function: &str, outcome: anyhow::Result<T>) -> Result<Vec<u8>> {
    let value = outcome.map_err(|e| Error::task_failed(function, &e))?;
    crate::object_store::codec::entry::encode(&value)
}

/// Encodes the outcome of a remote function or method declared with `num_returns`: on Ray, as
/// its fields' frames, so that each part is read (or passed on) by itself.
pub fn encode_parts<T: Value + Frames>(
    function: &str,
    outcome: anyhow::Result<T>,
) -> Result<Vec<u8>> {
    let value = outcome.map_err(|e| Error::task_failed(function, &e))?;
    crate::object_store::codec::entry::encode_parts(&value, Frames::frames)
}

/// Encodes the outcome of a remote function returning a `Vec`: on Ray, when the call asked
/// for `num_returns(n)`, as its elements' frames (after checking there are `n`), so that each
/// is an object of its own; else as one value.
pub fn encode_vec<T: Value>(function: &str, outcome: anyhow::Result<Vec<T>>) -> Result<Vec<u8>> {
    let value = outcome.map_err(|e| Error::task_failed(function, &e))?;
    match crate::task::returns::dynamic_returns() {
        None => crate::object_store::codec::entry::encode(&value),
        Some(n) if n != value.len() => {
            Err(crate::task::returns::wrong_count(function, value.len(), n))
        }
        Some(_) => crate::object_store::codec::entry::encode_parts(&value, |elements| {
            elements
                .iter()
                .map(crate::object_store::codec::frame::encode)
                .collect()
        }),
    }
}

/// The sink of a streaming function or method run by bytes (by a Ray worker): its items go to
/// the stream's actor that `feed` names.
pub fn stream_sink<T: Value>(feed: crate::stream::StreamFeed) -> crate::stream::StreamSink<T> {
    crate::stream::StreamSink::to_actor(feed)
}

/// Ends a streaming call run by bytes: waits until every item it sent is stored, then encodes
/// its outcome (`()`, or its error, which ends the stream).
pub async fn finish_stream<T: Value>(
    function: &str,
    mut sink: crate::stream::StreamSink<T>,
    outcome: anyhow::Result<()>,
) -> Result<Vec<u8>> {
    let stored = sink.flush(outcome.is_ok()).await;
    outcome.map_err(|e| Error::task_failed(function, &e))?;
    stored?;
    crate::object_store::codec::entry::encode(&())
}

/// Boxes a constructed actor for the registry, or fails with the constructor's error.
pub fn boxed_actor<A: crate::actor::Actor>(
    constructor: &str,
    outcome: anyhow::Result<A>,
) -> Result<Box<dyn std::any::Any + Send>> {
    let actor = outcome.map_err(|e| Error::task_failed(constructor, &e))?;
    Ok(Box::new(actor))
}

/// Boxes a constructed concurrent actor (its calls share it) for the registry.
pub fn boxed_shared_actor<A: crate::actor::Actor + Sync>(
    constructor: &str,
    outcome: anyhow::Result<A>,
) -> Result<Box<dyn std::any::Any + Send + Sync>> {
    let actor = outcome.map_err(|e| Error::task_failed(constructor, &e))?;
    Ok(Box::new(actor))
}

/// The registry's shared actor state as the actor type a shared method expects.
pub fn downcast_shared_actor<A: 'static>(actor: &(dyn std::any::Any + Send + Sync)) -> Result<&A> {
    actor.downcast_ref::<A>().ok_or(Error::TypeMismatch {
        expected: std::any::type_name::<A>(),
        found: "another actor type",
    })
}

/// The registry's boxed actor state as the actor type a method expects.
pub fn downcast_actor<A: 'static>(actor: &mut (dyn std::any::Any + Send)) -> Result<&mut A> {
    actor.downcast_mut::<A>().ok_or(Error::TypeMismatch {
        expected: std::any::type_name::<A>(),
        found: "another actor type",
    })
}

/// Runs a sync `#[rustyray::main]` body, then shuts the global runtime down.
pub fn run_main<R>(config: Option<crate::Config>, body: impl FnOnce() -> R) -> R {
    let _shutdown = start_main(config);
    body()
}

/// Runs an async `#[rustyray::main]` body on the global runtime, then shuts it down.
pub fn run_async_main<R, F: std::future::Future<Output = R>>(
    config: Option<crate::Config>,
    body: F,
) -> R {
    let _shutdown = start_main(config);
    let shared = crate::runtime::current();
    match shared.handle() {
        Some(handle) => handle.clone().block_on(body),
        None => panic!(
            "the RustyRay runtime could not start: {}",
            shared.check().err().unwrap_or(Error::RuntimeShutdown)
        ),
    }
}

struct ShutdownOnDrop;

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        crate::shutdown();
    }
}

fn start_main(config: Option<crate::Config>) -> ShutdownOnDrop {
    // Without arguments, the configuration comes from the RUSTYRAY_* variables.
    let started = match config {
        Some(config) => crate::init(config),
        None => crate::Config::from_env().and_then(crate::runtime::init_if_absent),
    };
    if let Err(error) = started {
        panic!("#[rustyray::main] could not start the runtime: {error}");
    }
    ShutdownOnDrop
}

/// Every per-call option of a task, written once: its doc, its setter's parameters, and what it
/// sets in [`TaskOptions`](crate::task::TaskOptions). Expanded in three places, so an option
/// added here exists on each with the same name, parameters and doc:
///
/// - `define`: the setters of `TaskOptions` itself, with the bodies below;
/// - `builder`: [`TaskBuilder`](crate::task::TaskBuilder)'s, which set its options;
/// - `newtype`: those of the `Options` that `#[rustyray::remote]` generates in the user's crate
///   (a newtype of `TaskOptions`).
///
/// The Ray backend reads `TaskOptions` through one exhaustive destructuring (`ray/mod.rs`), so
/// a new field fails to compile there until Ray honours it or refuses it.
#[macro_export]
#[doc(hidden)]
macro_rules! task_option_methods {
    ($mode:ident) => {
        $crate::__task_option! { $mode
            /// CPUs held while the task runs (default 1; fractions allowed).
            num_cpus(n: f64) |o| o.num_cpus = n
        }
        $crate::__task_option! { $mode
            /// GPUs held while the task runs (default 0).
            num_gpus(n: f64) |o| o.num_gpus = n
        }
        $crate::__task_option! { $mode
            /// An amount of a custom resource held while the task runs (added to any set
            /// before).
            resource(name: impl ::core::convert::Into<::std::string::String>, amount: f64)
                |o| o.rare_mut().resources.push((name.into(), amount))
        }
        $crate::__task_option! { $mode
            /// How many times to re-run the task after a panic (default 0).
            max_retries(n: u32) |o| o.max_retries = n
        }
        $crate::__task_option! { $mode
            /// Whether an `Err` result is retried too, not only a panic (default false).
            retry_exceptions(yes: bool) |o| o.retry_exceptions = yes
        }
        $crate::__task_option! { $mode
            /// A name for the call, shown instead of the function's in errors.
            name(name: impl ::core::convert::Into<::std::string::String>)
                |o| o.rare_mut().name = Some(name.into())
        }
        $crate::__task_option! { $mode
            /// Runs the task inside bundle `bundle` of placement group `pg`: its resources come
            /// from that bundle's reservation only (Ray's `PlacementGroupSchedulingStrategy`). A
            /// bundle index out of range, a request larger than the bundle, or a removed group
            /// fails the task with `Error::PlacementGroup`.
            placement_group(pg: &$crate::PlacementGroup, bundle: usize)
                |o| o.rare_mut().placement = Some(pg.placement(bundle))
        }
    };
}

/// One option of [`task_option_methods`] or [`actor_option_methods`], expanded for `$mode`.
#[macro_export]
#[doc(hidden)]
macro_rules! __task_option {
    (define $(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) |$o:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),*) -> Self {
            let $o = &mut self;
            $body;
            self
        }
    };
    (builder $(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) |$o:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),*) -> Self {
            self.options = self.options.$name($($arg),*);
            self
        }
    };
    (newtype $(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) |$o:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(self, $($arg: $ty),*) -> Self {
            Self(self.0.$name($($arg),*))
        }
    };
}

/// Every option of an actor, written once, as [`task_option_methods`] writes a task's: `define`
/// makes the setters of [`ActorOptions`](crate::actor::ActorOptions), `newtype` those of the
/// `Options` that `#[rustyray::actor]` generates. The Ray backend reads `ActorOptions` through
/// one exhaustive destructuring (`ray/mod.rs`).
#[macro_export]
#[doc(hidden)]
macro_rules! actor_option_methods {
    ($mode:ident) => {
        $crate::__task_option! { $mode
            /// Registers the actor under `name`, so `rustyray::get_actor` finds it; it then
            /// lives until `rustyray::kill`ed, even with no handle left.
            name(name: impl ::core::convert::Into<::std::string::String>)
                |o| o.name = Some(name.into())
        }
        $crate::__task_option! { $mode
            /// How many times a panicked actor is rebuilt from its constructor arguments
            /// (default 0).
            max_restarts(n: u32) |o| o.max_restarts = n
        }
        $crate::__task_option! { $mode
            /// How many times a call interrupted by a crash is sent again to the restarted
            /// actor (default 0: it fails with the crash's error).
            max_task_retries(n: u32) |o| o.max_task_retries = n
        }
        $crate::__task_option! { $mode
            /// How many async calls may interleave (default 1: one call at a time; 1000 for
            /// an actor with `#[rustyray::actor(concurrent)]`, as Ray's async actors).
            max_concurrency(n: usize) |o| o.max_concurrency = n
        }
        $crate::__task_option! { $mode
            /// CPUs the actor holds for its whole life (default 0, as Ray's actors once
            /// created). The actor starts once they are free.
            num_cpus(n: f64) |o| o.num_cpus = n
        }
        $crate::__task_option! { $mode
            /// GPUs the actor holds for its whole life (default 0); its methods see them in
            /// `rustyray::gpu_ids`.
            num_gpus(n: f64) |o| o.num_gpus = n
        }
        $crate::__task_option! { $mode
            /// An amount of a custom resource the actor holds for its whole life (replacing
            /// the amount of that resource set before, a class default say).
            resource(name: impl ::core::convert::Into<::std::string::String>, amount: f64)
                |o| {
                    let name = name.into();
                    o.resources.retain(|(held, _)| *held != name);
                    o.resources.push((name, amount))
                }
        }
        $crate::__task_option! { $mode
            /// Holds the actor's resources inside bundle `bundle` of placement group `pg`
            /// (Ray's `PlacementGroupSchedulingStrategy`); the actor dies if the group is
            /// removed first.
            placement_group(pg: &$crate::PlacementGroup, bundle: usize)
                |o| o.placement = Some(pg.placement(bundle))
        }
    };
}

pub use crate::{__task_option, actor_option_methods, task_option_methods};
