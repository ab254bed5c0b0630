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

/// Builds an actor from its constructor's postcard-encoded argument tuple.
pub type Construct = fn(Vec<u8>) -> BoxFuture<'static, Result<Box<dyn Any + Send>>>;

/// Calls an actor method on a state built by a [`Construct`], from postcard-encoded arguments.
pub type CallMethod =
    for<'a> fn(&'a mut (dyn Any + Send), Vec<u8>) -> BoxFuture<'a, Result<Vec<u8>>>;

#[derive(Debug, Clone, Copy)]
enum EntryPoint {
    Function(Invoke),
    Constructor(Construct),
    Method(CallMethod),
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
            EntryPoint::Constructor(_) => Kind::ActorConstructor,
            EntryPoint::Method(_) => Kind::ActorMethod,
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
pub async fn invoke(id: &str, args: Vec<u8>) -> Result<Vec<u8>> {
    match entry(id, Kind::Function)? {
        EntryPoint::Function(invoke) => invoke(args).await,
        _ => unreachable!("kind checked"),
    }
}

/// Builds an actor with the constructor registered as `id` (for example
/// `my_crate::Counter::new`) from postcard-encoded arguments. The state is returned boxed, to be
/// passed to [`call_method`].
pub async fn construct(id: &str, args: Vec<u8>) -> Result<Box<dyn Any + Send>> {
    match entry(id, Kind::ActorConstructor)? {
        EntryPoint::Constructor(construct) => construct(args).await,
        _ => unreachable!("kind checked"),
    }
}

/// Calls the method registered as `id` (for example `my_crate::Counter::incr`) on an actor
/// state built by [`construct`], with postcard-encoded arguments; returns the encoded result.
/// Fails with [`Error::TypeMismatch`] if the state is another actor's.
pub async fn call_method(id: &str, actor: &mut (dyn Any + Send), args: Vec<u8>) -> Result<Vec<u8>> {
    match entry(id, Kind::ActorMethod)? {
        EntryPoint::Method(call) => call(actor, args).await,
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
    let bytes = encoding::with_json(json.as_bytes().to_vec(), invoke).await?;
    String::from_utf8(bytes).map_err(|e| Error::Serialization(e.to_string()))
}

/// The encoding of entry points' arguments and results: plain postcard (a tuple of the
/// parameters, as [`invoke`] documents), JSON while [`invoke_json`] runs one, or one
/// [frame](crate::frame) per argument and for the result while a Ray worker runs one.
pub(crate) mod encoding {
    use std::cell::Cell;

    use crate::error::Error;
    use crate::frame;

    /// How the entry point running on this thread reads and writes its bytes.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Encoding {
        Postcard,
        Json,
        #[cfg_attr(not(feature = "ray"), allow(dead_code))]
        Framed,
    }

    thread_local! {
        static ENCODING: Cell<Encoding> = const { Cell::new(Encoding::Postcard) };
    }

    /// Runs `future` (an entry point's, which decodes its arguments when first polled and
    /// encodes its result when done) with `encoding` on this thread while it is polled.
    pub(crate) async fn with_encoding<F: std::future::Future>(
        encoding: Encoding,
        future: F,
    ) -> F::Output {
        struct Reset(Encoding);
        impl Drop for Reset {
            fn drop(&mut self) {
                ENCODING.with(|e| e.set(self.0));
            }
        }
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(move |cx| {
            let _reset = Reset(ENCODING.with(|e| e.replace(encoding)));
            future.as_mut().poll(cx)
        })
        .await
    }

    pub(crate) async fn with_json(args: Vec<u8>, invoke: super::Invoke) -> crate::Result<Vec<u8>> {
        with_encoding(Encoding::Json, invoke(args)).await
    }

    fn encoding() -> Encoding {
        ENCODING.with(Cell::get)
    }

    /// Decodes an argument tuple whose elements have the types `names` (in order).
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
        names: &[&'static str],
    ) -> crate::Result<T> {
        let shape = |e: String| {
            Error::Serialization(format!(
                "the arguments do not match the function's parameters: {e}"
            ))
        };
        match encoding() {
            Encoding::Postcard => postcard::from_bytes(bytes).map_err(|e| shape(e.to_string())),
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| shape(e.to_string())),
            Encoding::Framed => {
                // Each argument's frame must name its parameter's type; their payloads,
                // one after the other, are the tuple's postcard encoding.
                let mut payloads = Vec::with_capacity(bytes.len());
                let mut rest = bytes;
                for (i, &expected) in names.iter().enumerate() {
                    let what = format!("argument {} of {}", i + 1, names.len());
                    let (frame, after) = frame::split(rest).map_err(|not| {
                        not.error(&what, rest, |_| shape(format!("{what} is not a value")))
                    })?;
                    if frame.type_name != expected {
                        return Err(Error::TypeMismatch {
                            expected,
                            found: frame::intern(frame.type_name),
                        });
                    }
                    payloads.extend_from_slice(frame.payload);
                    rest = after;
                }
                if !rest.is_empty() {
                    return Err(shape(format!("more than {} arguments", names.len())));
                }
                postcard::from_bytes(&payloads).map_err(|e| shape(e.to_string()))
            }
        }
    }

    /// Encodes an entry point's result.
    pub(crate) fn encode<T: serde::Serialize>(value: &T) -> crate::Result<Vec<u8>> {
        let failed = |e: String| Error::Serialization(e);
        match encoding() {
            Encoding::Postcard => postcard::to_stdvec(value).map_err(|e| failed(e.to_string())),
            Encoding::Json => serde_json::to_vec(value).map_err(|e| failed(e.to_string())),
            Encoding::Framed => frame::encode(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::encoding::{decode, with_encoding, Encoding};
    use crate::error::Error;
    use crate::frame;

    /// Decodes `bytes` as a Ray worker does: one frame per argument.
    fn framed<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
        names: &[&'static str],
    ) -> crate::Result<T> {
        with_encoding(Encoding::Framed, async { decode::<T>(bytes, names) })
            .now_or_never()
            .expect("decoding does not wait")
    }

    #[test]
    fn framed_arguments_are_checked_against_the_parameters_types() {
        let names = [
            std::any::type_name::<u32>(),
            std::any::type_name::<String>(),
        ];
        let mut bytes = frame::encode(&7u32).unwrap();
        bytes.extend(frame::encode(&"x".to_owned()).unwrap());
        assert_eq!(
            framed::<(u32, String)>(&bytes, &names).unwrap(),
            (7, "x".to_owned())
        );

        let mut swapped = frame::encode(&"x".to_owned()).unwrap();
        swapped.extend(frame::encode(&7u32).unwrap());
        match framed::<(u32, String)>(&swapped, &names) {
            Err(Error::TypeMismatch { expected, found }) => {
                assert_eq!((expected, found), ("u32", "alloc::string::String"));
            }
            other => panic!("{other:?}"),
        }

        // Missing, extra and foreign arguments are errors, never values.
        let one = frame::encode(&7u32).unwrap();
        assert!(framed::<(u32, String)>(&one, &names).is_err());
        let mut extra = bytes.clone();
        extra.extend(frame::encode(&1u8).unwrap());
        assert!(framed::<(u32, String)>(&extra, &names).is_err());
        assert!(framed::<(u32,)>(&[0x2A], &names[..1]).is_err());
    }
}
