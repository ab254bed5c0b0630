//! Object ids and typed references to objects.
//!
//! An [`ObjectRef<T>`] is a promise of a `T` in the object store: `put` returns one for a value
//! it stored, and `remote` calls return one for a result that will be stored when the task ends.
//! It holds the object's [`ObjectId`] and its cell in the store, so using it goes straight to
//! the object; cloning it is one atomic increment. It serializes as its id.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub(crate) use crate::object_store::missing;
pub use crate::object_store::ObjectId;
use crate::object_store::WireId;
use crate::object_store::{Cell, State, Value, Waiter};
use crate::runtime;
use crate::scheduler::BlockedGuard;

/// A typed reference to an object in the store.
///
/// Pass it where a task expects a `T` and the task receives the value; `get` it (or `.await` it
/// in async code) to read the value yourself.
///
/// Refs are counted: the object is freed when the last `ObjectRef` to it is dropped and no
/// pending task or actor call needs it (those hold refs of their own, as does any stored object
/// that contains the ref). Cloning never touches the store.
///
/// ```
/// use rustyray::{Config, ObjectRef, Runtime};
///
/// let rt = Runtime::new(Config::default()).unwrap();
/// let _guard = rt.enter();
/// let r: ObjectRef<String> = rustyray::put("hello".to_string()).unwrap();
/// let copy = r.clone(); // cheap: one atomic increment
/// assert_eq!(rustyray::get(&copy).unwrap(), "hello");
/// ```
pub struct ObjectRef<T> {
    /// Its object's cell, whose id is the ref's. A ref read back from bytes after its object
    /// was freed (or in another runtime) holds a detached cell of that id instead
    /// ([`Cell::detached`]), and using the ref reports the object as not found. Such refs are
    /// rare, so a ref is one word: a program holding a million refs holds 8 MB of them.
    cell: Arc<Cell>,
    _type: PhantomData<fn() -> T>,
}

#[cfg(not(rustyray_loom))]
const _: () = assert!(std::mem::size_of::<ObjectRef<()>>() == 8);

impl<T> ObjectRef<T> {
    /// A ref to a new object (the cell the store just made).
    pub(crate) fn from_new_cell(cell: Arc<Cell>) -> ObjectRef<T> {
        ObjectRef {
            cell,
            _type: PhantomData,
        }
    }

    /// A ref to the object `cell` holds, or to the gone object `id`.
    fn at(cell: Option<Arc<Cell>>, id: ObjectId) -> ObjectRef<T> {
        ObjectRef {
            cell: cell.unwrap_or_else(|| Arc::new(Cell::detached(id))),
            _type: PhantomData,
        }
    }

    /// A ref to an existing object of the current runtime, found by id (for one read back
    /// from bytes); one without a cell if the object is gone or not this runtime's, which
    /// `get` then reports as not found.
    fn find(id: ObjectId) -> ObjectRef<T> {
        let cell = runtime::current_if_any().and_then(|shared| shared.store().lookup(id));
        ObjectRef::at(cell, id)
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.cell.id()
    }

    /// The same ref with its type forgotten (a gathered argument keeps its refs this way).
    pub(crate) fn erased(self) -> ObjectRef<()> {
        ObjectRef {
            cell: self.cell,
            _type: PhantomData,
        }
    }

    /// The object's cell, or the id of an object that is gone (the id is read only then).
    pub(crate) fn cell_or_id(&self) -> std::result::Result<&Arc<Cell>, ObjectId> {
        match self.cell() {
            Some(cell) => Ok(cell),
            None => Err(self.cell.id()),
        }
    }

    /// The object's cell, if it exists (in any runtime).
    pub(crate) fn cell(&self) -> Option<&Arc<Cell>> {
        Some(&self.cell).filter(|cell| !cell.is_detached())
    }

    /// The object's cell if it belongs to `runtime`: a ref is valid only in the runtime that
    /// made it (after a restart of the global runtime, old refs are not found).
    pub(crate) fn cell_in(&self, runtime: u32) -> Option<&Arc<Cell>> {
        self.cell().filter(|cell| cell.owner() == runtime)
    }

    /// The object's cell in `runtime`, or the error for an object that is not there.
    pub(crate) fn cell_or_missing(&self, runtime: u32) -> Result<&Arc<Cell>> {
        self.cell_in(runtime).ok_or_else(|| missing(self.id()))
    }

    /// Whether the object is resolved in `runtime` (ready, failed, or not there).
    pub(crate) fn is_resolved_in(&self, runtime: u32) -> bool {
        self.cell_in(runtime).is_none_or(|cell| !cell.is_pending())
    }
}

impl<T> Clone for ObjectRef<T> {
    fn clone(&self) -> Self {
        ObjectRef {
            cell: Arc::clone(&self.cell),
            _type: PhantomData,
        }
    }
}

impl<T> PartialEq for ObjectRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<T> Eq for ObjectRef<T> {}

impl<T> std::hash::Hash for ObjectRef<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl<T> fmt::Debug for ObjectRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ObjectRef<{}>({})",
            std::any::type_name::<T>(),
            self.id()
        )
    }
}

impl<T> Serialize for ObjectRef<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(cell) = self.cell() {
            // Findable by id from now on, so the bytes can be read back into a ref.
            cell.enter_index();
            crate::object_store::note_serialized(|| Arc::clone(cell) as _);
        }
        let id = self.id();
        WireId::local(id.owner(), id.seq()).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for ObjectRef<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireId::deserialize(deserializer)?;
        let (owner, seq, local) = wire.read();
        let id = ObjectId::new(owner, seq);
        if local {
            return Ok(ObjectRef::find(id));
        }
        // Another process's object: the copy sent beside the value, if one was.
        Ok(ObjectRef::at(crate::object_store::foreign::find(&wire), id))
    }
}

/// What [`get`](crate::get) and [`get_arc`](crate::get_arc) read: an [`ObjectRef`] (or a
/// reference to one). Its only purpose is a clear error when something else is passed, such as
/// a `Vec` of refs (which [`get_all`](crate::get_all) reads) or a plain value.
#[diagnostic::on_unimplemented(
    message = "`rustyray::get` reads one `ObjectRef`, not `{Self}`",
    label = "expected `&ObjectRef<T>`",
    note = "for several refs (a `Vec<ObjectRef<T>>` or a slice), use `rustyray::get_all(&refs)` \
            for the values in order, or `rustyray::get_all_arc(&refs)` to share them without \
            copies; a plain value needs no `get`"
)]
pub trait AsObjectRef {
    /// The type of the object's value.
    type Value;

    /// The ref itself.
    fn as_object_ref(&self) -> &ObjectRef<Self::Value>;
}

impl<T> AsObjectRef for ObjectRef<T> {
    type Value = T;

    fn as_object_ref(&self) -> &ObjectRef<T> {
        self
    }
}

/// Never implemented: the bound that refuses several refs where [`get`](crate::get) reads one,
/// with the message naming [`get_all`](crate::get_all). (Several refs are an [`AsObjectRef`]
/// under this bound so that their value type is known, and the error is this one alone.)
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`rustyray::get` reads one `ObjectRef`, not several: use `rustyray::get_all`",
    label = "several refs",
    note = "for several refs (a `Vec<ObjectRef<T>>` or a slice), use `rustyray::get_all(&refs)` \
            for the values in order, or `rustyray::get_all_arc(&refs)` to share them without \
            copies"
)]
pub trait OneRefOnly {}

impl<T> AsObjectRef for [ObjectRef<T>]
where
    [ObjectRef<T>]: OneRefOnly,
{
    type Value = Vec<T>;

    fn as_object_ref(&self) -> &ObjectRef<Vec<T>> {
        unreachable!("never implemented: `OneRefOnly` has no impl")
    }
}

impl<T> AsObjectRef for Vec<ObjectRef<T>>
where
    Vec<ObjectRef<T>>: OneRefOnly,
{
    type Value = Vec<T>;

    fn as_object_ref(&self) -> &ObjectRef<Vec<T>> {
        unreachable!("never implemented: `OneRefOnly` has no impl")
    }
}

impl<R: AsObjectRef + ?Sized> AsObjectRef for &R {
    type Value = R::Value;

    fn as_object_ref(&self) -> &ObjectRef<R::Value> {
        (**self).as_object_ref()
    }
}

/// A future that completes when an object resolves, with its final state.
///
/// It registers one waker slot with the object the first time it finds it pending and
/// refreshes that slot on later polls, so polling it often costs nothing extra. While it waits
/// inside a task, the task's CPU slot is lent back to the scheduler.
pub(crate) struct Resolve {
    cell: Arc<Cell>,
    waker: Option<Arc<AtomicWaker>>,
    blocked: Option<BlockedGuard>,
}

impl Resolve {
    pub(crate) fn new(cell: Arc<Cell>) -> Resolve {
        Resolve {
            cell,
            waker: None,
            blocked: None,
        }
    }
}

impl Future for Resolve {
    type Output = State;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<State> {
        let this = &mut *self;
        if let Some(slot) = &this.waker {
            // Register before looking, so a completion between the two cannot be missed.
            slot.register(cx.waker());
            return match this.cell.state() {
                State::Pending => Poll::Pending,
                state => {
                    this.blocked = None;
                    Poll::Ready(state)
                }
            };
        }
        let slot = Arc::new(AtomicWaker::new());
        slot.register(cx.waker());
        match this.cell.subscribe(Waiter::new(Arc::clone(&slot) as _)) {
            Some(state) => Poll::Ready(state),
            None => {
                this.waker = Some(slot);
                this.blocked = BlockedGuard::enter();
                Poll::Pending
            }
        }
    }
}

/// The future of `ref.await`: the object's value, or the error that failed it.
pub struct ObjectFuture<T> {
    /// What it waits on; holding the object's cell (or a clone of the ref) keeps the object
    /// alive until it resolves.
    inner: Waiting<T>,
}

/// A fetch of a `T` from the Ray cluster, on a blocking thread.
#[cfg(feature = "ray")]
pub(crate) type RayFetch<T> = tokio::task::JoinHandle<Result<T>>;
/// Without the `ray` feature there is no fetch from Ray.
#[cfg(not(feature = "ray"))]
pub(crate) type RayFetch<T> = (std::convert::Infallible, std::marker::PhantomData<T>);

/// What an [`ObjectFuture`] waits on (chosen by the runtime's backend).
pub(crate) enum Waiting<T> {
    /// For the object in this runtime's store.
    Local(Resolve),
    /// A fetch from the Ray cluster, on a blocking thread.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    Ray(RayFetch<T>),
    /// Failed before waiting (the runtime is shut down); taken once.
    Failed(Option<Error>),
}

impl<T> Waiting<T> {
    /// For `r` in the embedded store of the runtime with this id.
    pub(crate) fn in_store(runtime: u32, r: &ObjectRef<T>) -> Waiting<T> {
        match r.cell_in(runtime) {
            Some(cell) => Waiting::Local(Resolve::new(Arc::clone(cell))),
            None => Waiting::Failed(Some(missing(r.id()))),
        }
    }
}

impl<T: Value + Clone> ObjectFuture<T> {
    fn new(r: &ObjectRef<T>) -> ObjectFuture<T> {
        let shared = runtime::current();
        let inner = match shared.check() {
            Err(error) => Waiting::Failed(Some(error)),
            Ok(()) => shared.backend().future(&shared, r),
        };
        ObjectFuture { inner }
    }
}

impl<T> Unpin for ObjectFuture<T> {}

impl<T: Value + Clone> Future for ObjectFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.inner {
            Waiting::Local(resolve) => {
                let cell = Arc::clone(&resolve.cell);
                Pin::new(resolve)
                    .poll(cx)
                    .map(|_| cell.read_value_resolved::<T>())
            }
            #[cfg(feature = "ray")]
            Waiting::Ray(fetch) => Pin::new(fetch).poll(cx).map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(Error::Backend {
                        message: format!("the fetch from Ray stopped: {e}"),
                    })
                })
            }),
            #[cfg(not(feature = "ray"))]
            Waiting::Ray((never, _)) => match *never {},
            Waiting::Failed(error) => {
                Poll::Ready(Err(error.take().unwrap_or(Error::RuntimeShutdown)))
            }
        }
    }
}

impl<T> fmt::Debug for ObjectFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectFuture").finish_non_exhaustive()
    }
}

impl<T: Value + Clone> IntoFuture for ObjectRef<T> {
    type Output = Result<T>;
    type IntoFuture = ObjectFuture<T>;

    fn into_future(self) -> ObjectFuture<T> {
        ObjectFuture::new(&self)
    }
}

impl<T: Value + Clone> IntoFuture for &ObjectRef<T> {
    type Output = Result<T>;
    type IntoFuture = ObjectFuture<T>;

    fn into_future(self) -> ObjectFuture<T> {
        ObjectFuture::new(self)
    }
}
