//! The registry of remote functions and actors, filled at link time.
//!
//! Every `#[rustyray::remote]` function, `#[rustyray::actor]` constructor and actor method is
//! registered under a stable id made of its module path and name (`my_crate::jobs::resize`,
//! `my_crate::Counter::incr`), so two functions with the same name in different modules never
//! collide. Each also registers an entry point that runs it from postcard-encoded arguments
//! ([`invoke`], [`construct`], [`call_method`]), which is how another process (a Ray worker)
//! runs one by id.
//!
//! ```
//! #[rustyray::remote]
//! fn double(x: u32) -> u32 {
//!     x * 2
//! }
//!
//! # fn main() {
//! let id = concat!(module_path!(), "::double");
//! let entry = rustyray::registry::find(id).expect("registered");
//! assert_eq!(entry.kind(), rustyray::registry::Kind::Function);
//! # }
//! ```

use std::any::Any;

use crate::error::{Error, Result};
use crate::object_store::codec::entry::{with_encoding, Encoding};
use crate::task::BoxFuture;

/// What a registered id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `#[remote]` function.
    Function,
    /// An actor's constructor.
    ActorConstructor,
    /// An actor's method.
    ActorMethod,
}

/// Runs a remote function from its postcard-encoded argument tuple; resolves to its
/// postcard-encoded result. The arguments are borrowed: a Ray worker's are read where Ray's
/// buffer holds them, with no copy.
pub type Invoke = for<'a> fn(&'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>>;

/// Builds an actor from its constructor's postcard-encoded argument tuple.
pub type Construct = for<'a> fn(&'a [u8]) -> BoxFuture<'a, Result<Box<dyn Any + Send>>>;

/// Builds a concurrent actor (`#[rustyray::actor(concurrent)]`), whose state is shared by the
/// calls that run side by side.
pub type ConstructShared =
    for<'a> fn(&'a [u8]) -> BoxFuture<'a, Result<Box<dyn Any + Send + Sync>>>;

/// Calls an actor method on a state built by a [`Construct`], from postcard-encoded arguments.
pub type CallMethod =
    for<'a> fn(&'a mut (dyn Any + Send), &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>>;

/// Calls a concurrent actor's `&self` async method, which may run beside others of its kind.
pub type CallShared =
    for<'a> fn(&'a (dyn Any + Send + Sync), &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>>;

#[derive(Debug, Clone, Copy)]
enum EntryPoint {
    Function(Invoke),
    Constructor(Construct),
    ConstructorShared(ConstructShared),
    Method(CallMethod),
    SharedMethod(CallShared),
}

/// A built actor's state, as a Ray worker keeps it.
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // read by Ray's workers
pub(crate) enum Built {
    /// Its calls run one at a time, each with `&mut` access.
    Exclusive(Box<dyn Any + Send>),
    /// A concurrent actor: its shared calls run side by side.
    Shared(Box<dyn Any + Send + Sync>),
}

/// How a method uses its actor's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // read by Ray's workers
pub(crate) enum Access {
    /// `&mut self`, or any method of an actor that is not concurrent: alone.
    Exclusive,
    /// A concurrent actor's `&self` async method: beside others of its kind.
    Shared,
}

/// One registered remote function, actor constructor or method.
#[derive(Debug)]
pub struct Registration {
    id: &'static str,
    entry: EntryPoint,
}

impl Registration {
    #[doc(hidden)]
    pub const fn function(id: &'static str, invoke: Invoke) -> Registration {
        Registration {
            id,
            entry: EntryPoint::Function(invoke),
        }
    }

    #[doc(hidden)]
    pub const fn actor_constructor(id: &'static str, construct: Construct) -> Registration {
        Registration {
            id,
            entry: EntryPoint::Constructor(construct),
        }
    }

    #[doc(hidden)]
    pub const fn concurrent_actor_constructor(
        id: &'static str,
        construct: ConstructShared,
    ) -> Registration {
        Registration {
            id,
            entry: EntryPoint::ConstructorShared(construct),
        }
    }

    #[doc(hidden)]
    pub const fn shared_actor_method(id: &'static str, call: CallShared) -> Registration {
        Registration {
            id,
            entry: EntryPoint::SharedMethod(call),
        }
    }

    #[doc(hidden)]
    pub const fn actor_method(id: &'static str, call: CallMethod) -> Registration {
        Registration {
            id,
            entry: EntryPoint::Method(call),
        }
    }

    /// The stable id: module path and name.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// What the id names.
    pub fn kind(&self) -> Kind {
        match self.entry {
            EntryPoint::Function(_) => Kind::Function,
            EntryPoint::Constructor(_) | EntryPoint::ConstructorShared(_) => Kind::ActorConstructor,
            EntryPoint::Method(_) | EntryPoint::SharedMethod(_) => Kind::ActorMethod,
        }
    }
}

inventory::collect!(Registration);

/// Every registration linked into this program.
pub fn entries() -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>.into_iter()
}

/// The registration with this id.
pub fn find(id: &str) -> Option<&'static Registration> {
    entries().find(|r| r.id == id)
}

fn entry(id: &str, expected: Kind) -> Result<EntryPoint> {
    let found = find(id).ok_or_else(|| Error::NotFound {
        what: format!("registered id `{id}` (is the crate that defines it linked in?)"),
    })?;
    if found.kind() != expected {
        return Err(Error::NotFound {
            what: format!("{expected:?} `{id}` (that id is a {:?})", found.kind()),
        });
    }
    Ok(found.entry)
}

/// Runs the remote function registered as `id` with postcard-encoded arguments (a tuple of its
/// parameters) in the calling context, and returns its postcard-encoded result.
///
/// Fails with [`Error::NotFound`] for an unknown id or one that is not a function,
/// [`Error::Serialization`] for arguments of the wrong shape, and [`Error::TaskFailed`] if the
/// function fails.
pub async fn invoke(id: &str, args: impl AsRef<[u8]>) -> Result<Vec<u8>> {
    match entry(id, Kind::Function)? {
        EntryPoint::Function(invoke) => invoke(args.as_ref()).await,
        _ => unreachable!("kind checked"),
    }
}

/// Builds an actor with the constructor registered as `id` (for example
/// `my_crate::Counter::new`) from postcard-encoded arguments. The state is returned boxed, to be
/// passed to [`call_method`].
pub async fn construct(id: &str, args: impl AsRef<[u8]>) -> Result<Box<dyn Any + Send>> {
    Ok(match build(id, args.as_ref()).await? {
        Built::Exclusive(state) => state,
        Built::Shared(state) => state,
    })
}

/// Builds an actor as [`construct`] does, keeping whether its calls may share its state.
pub(crate) async fn build(id: &str, args: &[u8]) -> Result<Built> {
    match entry(id, Kind::ActorConstructor)? {
        EntryPoint::Constructor(construct) => construct(args).await.map(Built::Exclusive),
        EntryPoint::ConstructorShared(construct) => construct(args).await.map(Built::Shared),
        _ => unreachable!("kind checked"),
    }
}

/// How the method registered as `id` uses its actor's state.
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // read by Ray's workers
pub(crate) fn access(id: &str) -> Result<Access> {
    Ok(match entry(id, Kind::ActorMethod)? {
        EntryPoint::SharedMethod(_) => Access::Shared,
        _ => Access::Exclusive,
    })
}

/// Calls a concurrent actor's shared method registered as `id` (see [`access`]).
#[cfg_attr(not(feature = "ray"), allow(dead_code))] // called by Ray's workers
pub(crate) async fn call_shared(
    id: &str,
    actor: &(dyn Any + Send + Sync),
    args: &[u8],
) -> Result<Vec<u8>> {
    match entry(id, Kind::ActorMethod)? {
        EntryPoint::SharedMethod(call) => call(actor, args).await,
        EntryPoint::Method(_) => Err(Error::InvalidArgument(format!(
            "method `{id}` takes its actor exclusively; it cannot share it"
        ))),
        _ => unreachable!("kind checked"),
    }
}

/// Calls the method registered as `id` (for example `my_crate::Counter::incr`) on an actor
/// state built by [`construct`], with postcard-encoded arguments; returns the encoded result.
/// Fails with [`Error::TypeMismatch`] if the state is another actor's.
pub async fn call_method(
    id: &str,
    actor: &mut (dyn Any + Send),
    args: impl AsRef<[u8]>,
) -> Result<Vec<u8>> {
    match entry(id, Kind::ActorMethod)? {
        EntryPoint::Method(call) => call(actor, args.as_ref()).await,
        EntryPoint::SharedMethod(_) => Err(Error::InvalidArgument(format!(
            "method `{id}` belongs to a concurrent actor: call it with its state shared"
        ))),
        _ => unreachable!("kind checked"),
    }
}

/// Runs the remote function registered as `id` with its arguments as a JSON array (one element
/// per parameter), and returns its result as JSON. This is how programs in other languages call
/// RustyRay functions on a Ray cluster (see docs/ray.md).
///
/// ```
/// #[rustyray::remote]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// # fn main() {
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let id = concat!(module_path!(), "::add");
/// let out = rt.block_on(rustyray::registry::invoke_json(id, "[2, 40]")).unwrap();
/// assert_eq!(out, "42");
/// # }
/// ```
pub async fn invoke_json(id: &str, json: &str) -> Result<String> {
    let entry = entry(id, Kind::Function)?;
    let EntryPoint::Function(invoke) = entry else {
        unreachable!("kind checked")
    };
    let bytes = with_encoding(Encoding::Json, invoke(json.as_bytes())).await?;
    String::from_utf8(bytes).map_err(|e| Error::Serialization(e.to_string()))
}
