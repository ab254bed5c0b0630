//! The registry of remote functions and actors, filled at link time.
//!
//! Every `#[rustyray::remote]` function, `#[rustyray::actor]` constructor and actor method is
//! registered under a stable id made of its module path and name (`my_crate::jobs::resize`,
//! `my_crate::Counter::incr`), so two functions with the same name in different modules never
//! collide. Remote functions also register an entry point that runs them from postcard-encoded
//! arguments, which is how another process (a Ray worker) runs one by id.
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

use crate::error::{Error, Result};
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
/// postcard-encoded result.
pub type Invoke = fn(Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>>>;

/// One registered remote function, actor constructor or method.
#[derive(Debug)]
pub struct Registration {
    id: &'static str,
    kind: Kind,
    invoke: Option<Invoke>,
}

impl Registration {
    #[doc(hidden)]
    pub const fn function(id: &'static str, invoke: Invoke) -> Registration {
        Registration {
            id,
            kind: Kind::Function,
            invoke: Some(invoke),
        }
    }

    #[doc(hidden)]
    pub const fn actor_constructor(id: &'static str) -> Registration {
        Registration {
            id,
            kind: Kind::ActorConstructor,
            invoke: None,
        }
    }

    #[doc(hidden)]
    pub const fn actor_method(id: &'static str) -> Registration {
        Registration {
            id,
            kind: Kind::ActorMethod,
            invoke: None,
        }
    }

    /// The stable id: module path and name.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// What the id names.
    pub fn kind(&self) -> Kind {
        self.kind
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

/// Runs the remote function registered as `id` with postcard-encoded arguments (a tuple of its
/// parameters) in the calling context, and returns its postcard-encoded result.
///
/// Fails with [`Error::NotFound`] for an unknown id or one that is not a function,
/// [`Error::Serialization`] for arguments of the wrong shape, and [`Error::TaskFailed`] if the
/// function fails.
pub async fn invoke(id: &str, args: Vec<u8>) -> Result<Vec<u8>> {
    let entry = find(id).ok_or_else(|| Error::NotFound {
        what: format!("remote function `{id}` (is the crate that defines it linked in?)"),
    })?;
    let invoke = entry.invoke.ok_or_else(|| Error::NotFound {
        what: format!("an entry point for `{id}`, which is an actor constructor or method"),
    })?;
    invoke(args).await
}
