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
/// thread. Only on the embedded runtime for now.
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
        shared.backend().embedded_only("rustyray::util::Queue")?;
        let actor = ActorBuilder::<QueueActor<T>>::new("Queue")
            .concurrent()
            .options(ActorOptions::default().max_concurrency(WAITING_CALLS))
            .spawn(move || {
                Ok(QueueActor {
                    items: Mutex::new(VecDeque::new()),
                    capacity,
                    changed: tokio::sync::Notify::new(),
                })
            });
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
        taken(crate::api::get(&self.get_call(None)))
    }

    /// Takes the first item, waiting at most `timeout`; [`Error::QueueEmpty`] after that.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        taken(crate::api::get(&self.get_call(Some(timeout))))
    }

    /// Takes the first item if there is one now; [`Error::QueueEmpty`] if not.
    pub fn get_nowait(&self) -> Result<T> {
        taken(crate::api::get(&self.get_call(Some(Duration::ZERO))))
    }

    /// [`get`](Self::get) without blocking a thread.
    pub fn get_async(&self) -> impl Future<Output = Result<T>> + Send + 'static {
        let call = self.get_call(None);
        async move { taken(call.await) }
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
        let call = self
            .actor
            .call("len")
            .spawn_shared(|q: &QueueActor<T>| -> BoxFuture<'_, _> {
                Box::pin(async move { Ok(q.items.lock().len()) })
            });
        crate::api::get(&call)
    }

    /// Whether it holds no item now.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    fn put_call(&self, item: T, timeout: Option<Duration>) -> ObjectRef<bool> {
        self.actor
            .call("put")
            .spawn_shared(move |q: &QueueActor<T>| -> BoxFuture<'_, _> {
                let item = item.clone();
                Box::pin(async move {
                    let deadline = timeout.and_then(crate::deadline::after);
                    let mut item = Some(item);
                    let stored = q
                        .until(deadline, || match q.try_put(item.take()?) {
                            Ok(()) => Some(()),
                            Err(back) => {
                                item = Some(back);
                                None
                            }
                        })
                        .await;
                    Ok(stored.is_some())
                })
            })
    }

    fn get_call(&self, timeout: Option<Duration>) -> ObjectRef<Option<T>> {
        self.actor
            .call("get")
            .spawn_shared(move |q: &QueueActor<T>| -> BoxFuture<'_, _> {
                Box::pin(async move {
                    let deadline = timeout.and_then(crate::deadline::after);
                    Ok(q.until(deadline, || q.try_get()).await)
                })
            })
    }
}

/// A get's outcome: an item, or empty until its deadline.
fn taken<T>(outcome: Result<Option<T>>) -> Result<T> {
    outcome?.ok_or(Error::QueueEmpty)
}
