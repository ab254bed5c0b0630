//! `Queue`: a bounded FIFO queue shared by tasks, actors and the driver (Ray's
//! `ray.util.queue.Queue`), kept by an actor.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, ActorBuilder, ActorHandle, ActorOptions, NoMethods};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::Value;
use crate::task::BoxFuture;

/// How many `put`s and `get`s may wait in the queue's actor at once.
const WAITING_CALLS: usize = 1024;

/// The same on Ray, where each waiting call holds a thread of the actor's worker.
const WAITING_CALLS_ON_RAY: usize = 64;

/// The actor behind a [`Queue`]: the items, and a notification for those waiting on them.
#[doc(hidden)]
pub struct QueueActor<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    changed: tokio::sync::Notify,
}

impl<T: Send + 'static> Actor for QueueActor<T> {
    type Methods = NoMethods;
}

impl<T> QueueActor<T> {
    fn new(capacity: usize) -> QueueActor<T> {
        QueueActor {
            items: Mutex::new(VecDeque::new()),
            capacity,
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Adds `item`, waiting for room until `timeout` passes; whether it was stored.
    async fn put(&self, item: T, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(crate::deadline::after);
        let mut item = Some(item);
        let stored = self
            .until(deadline, || match self.try_put(item.take()?) {
                Ok(()) => Some(()),
                Err(back) => {
                    item = Some(back);
                    None
                }
            })
            .await;
        stored.is_some()
    }

    /// Takes the first item, waiting for one until `timeout` passes.
    async fn get(&self, timeout: Option<Duration>) -> Option<T> {
        let deadline = timeout.and_then(crate::deadline::after);
        self.until(deadline, || self.try_get()).await
    }

    /// Adds `item` if there is room; gives it back if not.
    fn try_put(&self, item: T) -> std::result::Result<(), T> {
        let mut items = self.items.lock();
        if self.capacity != 0 && items.len() >= self.capacity {
            return Err(item);
        }
        items.push_back(item);
        drop(items);
        self.changed.notify_waiters();
        Ok(())
    }

    fn try_get(&self) -> Option<T> {
        let item = self.items.lock().pop_front();
        if item.is_some() {
            self.changed.notify_waiters();
        }
        item
    }

    /// Runs `attempt` until it succeeds, waking at each change, until `deadline`.
    async fn until<R>(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable(); // registered before looking: no change is missed
            if let Some(done) = attempt() {
                return Some(done);
            }
            match deadline {
                None => changed.await,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, changed).await.is_err() {
                        return attempt();
                    }
                }
            }
        }
    }
}

/// A FIFO queue of `T`s, bounded or not, that tasks, actors and the driver share (Ray's
/// `ray.util.queue.Queue`). An actor keeps the items; the handle is cheap to clone and
/// serializable, so it can be passed to tasks and actors like a ref.
///
/// `put` waits while the queue is full and `get` while it is empty (each for ever, or up to a
/// timeout); `put_nowait` and `get_nowait` fail at once with [`Error::QueueFull`] and
/// [`Error::QueueEmpty`] instead. Each has an async variant that waits without blocking a
/// thread. On Ray, the actor is one that rustyray registers itself, holding each item's
/// encoding, so any item type works and the handle passes to tasks on every node.
///
/// ```
/// use rustyray::util::Queue;
///
/// #[rustyray::remote]
/// fn produce(queue: Queue<u64>, n: u64) -> rustyray::Result<()> {
///     for i in 0..n {
///         queue.put(i)?; // waits while the queue is full
///     }
///     Ok(())
/// }
///
/// # fn main() -> rustyray::Result<()> {
/// # let rt = rustyray::Runtime::new(rustyray::Config::default())?;
/// # let _guard = rt.enter();
/// let queue = Queue::new(2)?;
/// let done = produce::remote(queue.clone(), 5);
/// let got: Vec<u64> = (0..5).map(|_| queue.get()).collect::<rustyray::Result<_>>()?;
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// rustyray::get(&done)?;
/// assert!(matches!(queue.get_nowait(), Err(rustyray::Error::QueueEmpty)));
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Queue<T: Value + Clone> {
    actor: ActorHandle<QueueActor<T>>,
    capacity: usize,
    #[serde(skip)]
    _items: PhantomData<fn() -> T>,
}

impl<T: Value + Clone> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            actor: self.actor.clone(),
            capacity: self.capacity,
            _items: PhantomData,
        }
    }
}

impl<T: Value + Clone> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("actor", &self.actor)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<T: Value + Clone> Queue<T> {
    /// A queue holding at most `capacity` items (`0`: no limit).
    pub fn new(capacity: usize) -> Result<Queue<T>> {
        let shared = crate::runtime::current();
        shared.check()?;
        let waiting = if shared.backend().is_ray() {
            WAITING_CALLS_ON_RAY
        } else {
            WAITING_CALLS
        };
        let mut builder = ActorBuilder::<QueueActor<T>>::new("Queue")
            .registered(on_ray::CONSTRUCTOR)
            .concurrent()
            .options(ActorOptions::default().max_concurrency(waiting));
        let capacity_arg = builder.arg(capacity);
        let actor = builder.spawn(move || Ok(QueueActor::new(capacity_arg.get()?)));
        Ok(Queue {
            actor,
            capacity,
            _items: PhantomData,
        })
    }

    /// The most items it holds (`0`: no limit).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds `item` at the end, waiting while the queue is full.
    pub fn put(&self, item: T) -> Result<()> {
        self.stored(crate::api::get(&self.put_call(item, None)))
    }

    /// Adds `item`, waiting at most `timeout` for room; [`Error::QueueFull`] after that.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        self.stored(crate::api::get(&self.put_call(item, Some(timeout))))
    }

    /// Adds `item` if there is room now; [`Error::QueueFull`] if not.
    pub fn put_nowait(&self, item: T) -> Result<()> {
        self.stored(crate::api::get(&self.put_call(item, Some(Duration::ZERO))))
    }

    /// [`put`](Self::put) without blocking a thread.
    pub fn put_async(&self, item: T) -> impl Future<Output = Result<()>> + Send + 'static {
        let (call, queue) = (self.put_call(item, None), self.clone());
        async move { queue.stored(call.await) }
    }

    /// Takes the first item, waiting while the queue is empty.
    pub fn get(&self) -> Result<T> {
        self.get_call(None).outcome()
    }

    /// Takes the first item, waiting at most `timeout`; [`Error::QueueEmpty`] after that.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_call(Some(timeout)).outcome()
    }

    /// Takes the first item if there is one now; [`Error::QueueEmpty`] if not.
    pub fn get_nowait(&self) -> Result<T> {
        self.get_call(Some(Duration::ZERO)).outcome()
    }

    /// [`get`](Self::get) without blocking a thread.
    pub fn get_async(&self) -> impl Future<Output = Result<T>> + Send + 'static {
        let call = self.get_call(None);
        async move {
            match call {
                Taking::Here(call) => call.await?.ok_or(Error::QueueEmpty),
                Taking::OnRay(call) => decoded(call.await?),
            }
        }
    }

    /// A put's outcome: stored, or full until its deadline.
    fn stored(&self, outcome: Result<bool>) -> Result<()> {
        match outcome? {
            true => Ok(()),
            false => Err(Error::QueueFull {
                capacity: self.capacity,
            }),
        }
    }

    /// How many items it holds now.
    pub fn len(&self) -> Result<usize> {
        let call = self.actor.call("len").registered(on_ray::LEN);
        let call = if self.on_ray() {
            call.spawn_shared(on_ray::runs_there)
        } else {
            call.spawn_shared(|q: &QueueActor<T>| -> BoxFuture<'_, _> {
                Box::pin(async move { Ok(q.items.lock().len()) })
            })
        };
        crate::api::get(&call)
    }

    /// Whether it holds no item now.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Whether the queue's actor runs in another process (a Ray worker), which holds the
    /// items' encodings.
    fn on_ray(&self) -> bool {
        crate::runtime::current().backend().is_ray()
    }

    fn put_call(&self, item: T, timeout: Option<Duration>) -> ObjectRef<bool> {
        let mut call = self.actor.call("put").registered(on_ray::PUT);
        if self.on_ray() {
            let encoded = match crate::object_store::codec::frame::encode(&item) {
                Ok(encoded) => encoded,
                Err(error) => {
                    let cell = crate::runtime::current().store().insert_failed(error);
                    return ObjectRef::from_new_cell(cell);
                }
            };
            let _item = call.arg(encoded);
            let _timeout = call.arg(timeout);
            return call.spawn_shared(on_ray::runs_there);
        }
        call.spawn_shared(move |q: &QueueActor<T>| -> BoxFuture<'_, _> {
            let item = item.clone();
            Box::pin(async move { Ok(q.put(item, timeout).await) })
        })
    }

    fn get_call(&self, timeout: Option<Duration>) -> Taking<T> {
        let mut call = self.actor.call("get").registered(on_ray::GET);
        if self.on_ray() {
            let _timeout = call.arg(timeout);
            return Taking::OnRay(call.spawn_shared(on_ray::runs_there));
        }
        Taking::Here(
            call.spawn_shared(move |q: &QueueActor<T>| -> BoxFuture<'_, _> {
                Box::pin(async move { Ok(q.get(timeout).await) })
            }),
        )
    }
}

/// A get in flight: the item itself (embedded), or its encoding (from Ray's registered queue,
/// which holds encodings); none if the queue stayed empty until the get's deadline.
enum Taking<T> {
    Here(ObjectRef<Option<T>>),
    OnRay(ObjectRef<Option<Vec<u8>>>),
}

impl<T: Value + Clone> Taking<T> {
    fn outcome(self) -> Result<T> {
        match self {
            Taking::Here(call) => crate::api::get(&call)?.ok_or(Error::QueueEmpty),
            Taking::OnRay(call) => decoded(crate::api::get(&call)?),
        }
    }
}

/// An item from Ray's registered queue, from its encoding.
fn decoded<T: Value>(encoded: Option<Vec<u8>>) -> Result<T> {
    let encoded = encoded.ok_or(Error::QueueEmpty)?;
    crate::object_store::codec::frame::decode(&encoded, "a queue's item", |_| {
        Error::Serialization("a queue's item is not a RustyRay value".to_owned())
    })
}

/// The queue on Ray: a concrete actor registered by rustyray itself, so Ray's workers can
/// build it whatever the item type: it holds each item's framed encoding.
mod on_ray {
    use std::any::{type_name, Any};
    use std::time::Duration;

    use super::QueueActor;
    use crate::error::{Error, Result};
    use crate::registry::Registration;
    use crate::task::BoxFuture;

    pub(super) const CONSTRUCTOR: &str = "rustyray::util::Queue::new";
    pub(super) const PUT: &str = "rustyray::util::Queue::put";
    pub(super) const GET: &str = "rustyray::util::Queue::get";
    pub(super) const LEN: &str = "rustyray::util::Queue::len";

    type Encoded = QueueActor<Vec<u8>>;

    /// The local body of a call that runs on Ray (by its registered id): never run here.
    pub(super) fn runs_there<T, R>(_: &QueueActor<T>) -> BoxFuture<'_, anyhow::Result<R>> {
        Box::pin(async { anyhow::bail!("a call to a queue on Ray ran in this process") })
    }

    fn queue(this: &(dyn Any + Send + Sync)) -> Result<&Encoded> {
        this.downcast_ref::<Encoded>().ok_or(Error::TypeMismatch {
            expected: std::any::type_name::<Encoded>(),
            found: "another actor type",
        })
    }

    fn construct<'a>(args: &'a [u8]) -> BoxFuture<'a, Result<Box<dyn Any + Send + Sync>>> {
        Box::pin(async move {
            let (capacity,): (usize,) =
                crate::object_store::codec::entry::decode(args, &[type_name::<usize>()])?;
            Ok(Box::new(Encoded::new(capacity)) as Box<dyn Any + Send + Sync>)
        })
    }

    fn put<'a>(
        this: &'a (dyn Any + Send + Sync),
        args: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let names = [type_name::<Vec<u8>>(), type_name::<Option<Duration>>()];
            let (item, timeout): (Vec<u8>, Option<Duration>) =
                crate::object_store::codec::entry::decode(args, &names)?;
            let stored = queue(this)?.put(item, timeout).await;
            crate::object_store::codec::entry::encode(&stored)
        })
    }

    fn get<'a>(
        this: &'a (dyn Any + Send + Sync),
        args: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let (timeout,): (Option<Duration>,) = crate::object_store::codec::entry::decode(
                args,
                &[type_name::<Option<Duration>>()],
            )?;
            let taken: Option<Vec<u8>> = queue(this)?.get(timeout).await;
            crate::object_store::codec::entry::encode(&taken)
        })
    }

    fn len<'a>(
        this: &'a (dyn Any + Send + Sync),
        args: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let () = crate::object_store::codec::entry::decode(args, &[])?;
            crate::object_store::codec::entry::encode(&queue(this)?.items.lock().len())
        })
    }

    inventory::submit! { Registration::concurrent_actor_constructor(CONSTRUCTOR, construct) }
    inventory::submit! { Registration::shared_actor_method(PUT, put) }
    inventory::submit! { Registration::shared_actor_method(GET, get) }
    inventory::submit! { Registration::shared_actor_method(LEN, len) }
}
