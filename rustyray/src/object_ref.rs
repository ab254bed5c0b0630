//! Object ids and typed references to objects.
//!
//! An [`ObjectRef<T>`] is a promise of a `T` in the object store: `put` returns one for a value
//! it stored, and `remote` calls return one for a result that will be stored when the task ends.
//! It holds only the object's [`ObjectId`] and finds the store of the current runtime when used,
//! so it is as cheap to clone, send and serialize as an integer pair.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use serde::{Deserialize, Serialize};

use crate::counted::{self, Counted, Handle};
use crate::error::{Error, Result};
use crate::object_store::{ObjectStore, State, Value};
use crate::runtime::{self, Shared};
use crate::scheduler::BlockedGuard;

/// The identity of an object: the runtime that owns it and a sequence number unique within that
/// runtime.
///
/// The owner field is what lets a ref find its store; ids made by the same runtime compare in
/// creation order. (Room is left for a creating-task id when objects can be rebuilt from
/// lineage.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId {
    owner: u32,
    seq: u64,
}

impl ObjectId {
    pub(crate) fn new(owner: u32, seq: u64) -> ObjectId {
        ObjectId { owner, seq }
    }

    /// The id of the runtime that owns the object.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The object's sequence number within its runtime.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.owner, self.seq)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A typed reference to an object in the store.
///
/// Pass it where a task expects a `T` and the task receives the value; `get` it (or `.await` it
/// in async code) to read the value yourself.
///
/// Refs are counted: the object is freed when the last `ObjectRef` to it is dropped and no
/// pending task or actor call needs it (those hold refs of their own, as does any stored object
/// that contains the ref). Clones share one count, so cloning never touches the store.
///
/// ```
/// use rustyray::{Config, ObjectRef, Runtime};
///
/// let rt = Runtime::new(Config::default()).unwrap();
/// let _guard = rt.enter();
/// let r: ObjectRef<String> = rustyray::put("hello".to_string()).unwrap();
/// let copy = r.clone(); // cheap: copies the id only
/// assert_eq!(rustyray::get(&copy).unwrap(), "hello");
/// ```
pub struct ObjectRef<T> {
    id: ObjectId,
    holder: Handle<ObjectId>,
    _type: PhantomData<fn() -> T>,
}

impl Counted for ObjectId {
    fn retain(self, shared: &Shared) -> bool {
        shared.store.retain(self)
    }

    fn release(self, shared: &Shared) {
        shared.store.release(self)
    }
}

impl<T> ObjectRef<T> {
    /// Takes over the count that the store gave a new object when inserting it.
    pub(crate) fn adopt(shared: &Arc<Shared>, id: ObjectId) -> ObjectRef<T> {
        ObjectRef {
            id,
            holder: counted::adopt(shared, id),
            _type: PhantomData,
        }
    }

    /// A new counted handle to an existing object of the current runtime (for example one read
    /// back from bytes); an uncounted one if the object is gone or not this runtime's, which
    /// `get` then reports as not found.
    fn retained(id: ObjectId) -> ObjectRef<T> {
        ObjectRef {
            id,
            holder: counted::retained(id),
            _type: PhantomData,
        }
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }
}

impl<T> Clone for ObjectRef<T> {
    fn clone(&self) -> Self {
        ObjectRef {
            id: self.id,
            holder: self.holder.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> PartialEq for ObjectRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for ObjectRef<T> {}

impl<T> std::hash::Hash for ObjectRef<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl<T> fmt::Debug for ObjectRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef<{}>({})", std::any::type_name::<T>(), self.id)
    }
}

impl<T> Serialize for ObjectRef<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        counted::note_serialized(&self.holder);
        self.id.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for ObjectRef<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ObjectId::deserialize(deserializer).map(ObjectRef::retained)
    }
}

/// Turns a resolved state into the typed value, reading it back from disk if it was spilled.
pub(crate) fn typed<T: Value>(store: &ObjectStore, id: ObjectId, state: State) -> Result<Arc<T>> {
    match state {
        State::Ready(object) => object.downcast::<T>(),
        State::Spilled => store.read_spilled::<T>(id),
        State::Failed(error) => Err(error),
        State::Missing => Err(missing(id)),
        State::Pending => unreachable!("resolved states only"),
    }
}

/// The error for an object the store does not hold.
pub(crate) fn missing(id: ObjectId) -> Error {
    Error::NotFound {
        what: format!(
            "object {id} (freed once no ObjectRef to it remained, or made by another runtime)"
        ),
    }
}

/// A future that completes when an object resolves, with its final state.
///
/// It registers one waker slot with the store the first time it finds the object pending and
/// refreshes that slot on later polls, so polling it often costs nothing extra. While it waits
/// inside a task, the task's CPU slot is lent back to the scheduler.
pub(crate) struct Resolve {
    shared: Arc<Shared>,
    id: ObjectId,
    waker: Option<Arc<AtomicWaker>>,
    blocked: Option<BlockedGuard>,
}

impl Resolve {
    pub(crate) fn new(shared: Arc<Shared>, id: ObjectId) -> Resolve {
        Resolve {
            shared,
            id,
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
            return match this.shared.store.state(this.id) {
                State::Pending => Poll::Pending,
                state => {
                    this.blocked = None;
                    Poll::Ready(state)
                }
            };
        }
        let slot = Arc::new(AtomicWaker::new());
        slot.register(cx.waker());
        let notify = Arc::clone(&slot);
        match this
            .shared
            .store
            .subscribe(this.id, Box::new(move |_| notify.wake()))
        {
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
    inner: Waiting<T>,
    /// The awaited ref, when awaited by value: it keeps the object alive until it resolves.
    _keep: Option<ObjectRef<T>>,
}

enum Waiting<T> {
    /// For the object in this runtime's store.
    Local(Resolve),
    /// A fetch from the Ray cluster, on a blocking thread.
    Ray(tokio::task::JoinHandle<Result<T>>),
    /// Failed before waiting (the runtime is shut down); taken once.
    Failed(Option<Error>),
}

impl<T: Value + Clone> ObjectFuture<T> {
    fn new(id: ObjectId, keep: Option<ObjectRef<T>>) -> ObjectFuture<T> {
        let shared = runtime::current();
        let inner = match (shared.check(), shared.handle()) {
            (Err(error), _) => Waiting::Failed(Some(error)),
            (Ok(()), Some(tokio)) if shared.ray().is_some() => {
                let shared = Arc::clone(&shared);
                Waiting::Ray(tokio.spawn_blocking(move || {
                    let ray = shared.ray().expect("checked above");
                    ray.get::<T>(&shared, id, None).map(|v| T::clone(&v))
                }))
            }
            (Ok(()), _) => Waiting::Local(Resolve::new(shared, id)),
        };
        ObjectFuture { inner, _keep: keep }
    }
}

impl<T> Unpin for ObjectFuture<T> {}

impl<T: Value + Clone> Future for ObjectFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.inner {
            Waiting::Local(resolve) => {
                let id = resolve.id;
                let shared = Arc::clone(&resolve.shared);
                Pin::new(resolve)
                    .poll(cx)
                    .map(|state| typed::<T>(&shared.store, id, state).map(|v| T::clone(&v)))
            }
            Waiting::Ray(fetch) => Pin::new(fetch).poll(cx).map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(Error::Backend {
                        message: format!("the fetch from Ray stopped: {e}"),
                    })
                })
            }),
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
        ObjectFuture::new(self.id, Some(self))
    }
}

impl<T: Value + Clone> IntoFuture for &ObjectRef<T> {
    type Output = Result<T>;
    type IntoFuture = ObjectFuture<T>;

    fn into_future(self) -> ObjectFuture<T> {
        ObjectFuture::new(self.id, None)
    }
}
