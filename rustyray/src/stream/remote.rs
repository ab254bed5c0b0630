//! A stream whose producer runs in another process (a Ray worker): its items go through an
//! actor that the consumer makes, one per stream.
//!
//! # Design
//!
//! Ray's C++ API has no streaming generators, and an object a worker `put`s belongs to that
//! worker: it is freed once the producer's task ends. So the items travel through a *stream
//! actor* (DESIGN.md §4), a concrete actor registered by rustyray itself that holds each item's
//! framed encoding:
//!
//! - **The producer** (a task or an actor call, anywhere on the cluster) gets a
//!   [`StreamFeed`] as its last argument: the actor's handle and the backpressure. Its sink
//!   sends item `i` as `put(i, frame)`. Without backpressure it does not wait for each answer
//!   (up to [`WINDOW`] in flight; an answer that shows the actor gone stops it at its next
//!   item); with backpressure `n`, `put(i)` answers once item `i + 1` may be made (fewer than
//!   `n` unconsumed), and the producer waits for that answer. The actor keeps items by index, so
//!   calls that Ray runs side by side, or a retry's items already delivered, change nothing.
//! - **The consumer** takes item `i` with `take(i)`, a call whose *result* is the item's frame:
//!   the item is an object the consumer owns, usable as soon as it exists, and gone from the
//!   actor. `next` waits for either that call or the producer's own result. If the producer
//!   ended first, `finish()` tells the actor so and answers how many items it stored: the
//!   consumer takes those, then ends, with the producer's error as a last failed item if it
//!   failed. The producer's result is the truth for the end, whatever ended it (its body, a
//!   panic, its worker's death).
//! - **Dropping the stream** kills the actor: the producer's next `put` fails and it stops.
//!   Items the consumer took stay: they are results of its own calls.
//!
//! The actor holds a thread per call that waits (Ray's C++ actors are threaded): a `take`, a
//! `put` waiting for room, and the puts in flight, so it asks for [`THREADS`].

use std::any::{type_name, Any};
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, ActorBuilder, ActorHandle, ActorOptions, NoMethods};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::codec::{entry, frame};
use crate::object_store::Value;
use crate::registry::Registration;
use crate::task::BoxFuture;

/// How many of its `put`s a producer without backpressure has in flight at most.
const WINDOW: usize = 32;

/// The stream actor's threads: the puts in flight, a waiting `take`, and `finish`.
const THREADS: usize = WINDOW + 4;

const CONSTRUCTOR: &str = "rustyray::stream::StreamActor::new";
const PUT: &str = "rustyray::stream::StreamActor::put";
const TAKE: &str = "rustyray::stream::StreamActor::take";
const FINISH: &str = "rustyray::stream::StreamActor::finish";

/// The actor that holds a stream's items between its producer and its consumer, when the
/// producer runs in another process.
pub(crate) struct StreamActor {
    buffer: Mutex<Buffer>,
    backpressure: Option<usize>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Buffer {
    /// The items stored and not taken, by index.
    items: BTreeMap<u64, Vec<u8>>,
    /// Items `0..stored` have all arrived.
    stored: u64,
    /// How many the consumer took.
    taken: u64,
    /// The consumer saw the producer end: no item arrives any more.
    finished: bool,
}

impl Actor for StreamActor {
    type Methods = NoMethods;
}

impl StreamActor {
    fn new(backpressure: Option<usize>) -> StreamActor {
        StreamActor {
            buffer: Mutex::new(Buffer::default()),
            backpressure,
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Stores item `index` (once: a repeat is a retry's), then waits until the next item may
    /// be made. `false` once the stream is finished: stop.
    async fn put(&self, index: u64, frame: Vec<u8>) -> bool {
        {
            let mut buffer = self.buffer.lock();
            if buffer.finished {
                return false;
            }
            if index >= buffer.stored && !buffer.items.contains_key(&index) {
                buffer.items.insert(index, frame);
                while buffer.items.contains_key(&buffer.stored) {
                    buffer.stored += 1;
                }
                drop(buffer);
                self.changed.notify_waiters();
            }
        }
        let Some(limit) = self.backpressure else {
            return true;
        };
        self.until(|buffer| {
            (buffer.finished || index + 1 < buffer.taken + limit as u64).then_some(!buffer.finished)
        })
        .await
    }

    /// Takes item `index`, waiting for it; fails once the stream finished without it.
    async fn take(&self, index: u64) -> Result<Vec<u8>> {
        let taken = self
            .until(|buffer| {
                if let Some(item) = buffer.items.remove(&index) {
                    buffer.taken += 1;
                    return Some(Ok(item));
                }
                (buffer.finished && index >= buffer.stored).then(|| {
                    Err(Error::InvalidArgument(format!(
                        "the stream has no item {index}: its producer made {}",
                        buffer.stored
                    )))
                })
            })
            .await;
        self.changed.notify_waiters(); // room for the producer
        taken
    }

    /// No item arrives any more: how many were stored.
    fn finish(&self) -> u64 {
        let mut buffer = self.buffer.lock();
        buffer.finished = true;
        let stored = buffer.stored;
        drop(buffer);
        self.changed.notify_waiters();
        stored
    }

    /// Runs `attempt` on the buffer until it gives an answer, waking at each change.
    async fn until<R>(&self, mut attempt: impl FnMut(&mut Buffer) -> Option<R>) -> R {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable(); // registered before looking: no change is missed
            if let Some(done) = attempt(&mut self.buffer.lock()) {
                return done;
            }
            changed.await;
        }
    }
}

/// What a producer in another process is given, as its call's last argument: where its items
/// go.
#[doc(hidden)]
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StreamFeed {
    actor: ActorHandle<StreamActor>,
    backpressure: Option<usize>,
}

/// Makes the actor of a new stream: the feed its producer is sent, and the consumer's end.
pub(super) fn open<T: Value>(backpressure: Option<usize>) -> (StreamFeed, Consumer<T>) {
    let mut builder = ActorBuilder::<StreamActor>::new("StreamActor")
        .registered(CONSTRUCTOR)
        .concurrent()
        .options(ActorOptions::default().max_concurrency(THREADS));
    let limit = builder.arg(backpressure);
    let actor = builder.spawn(move || Ok(StreamActor::new(limit.get()?)));
    let feed = StreamFeed {
        actor: actor.clone(),
        backpressure,
    };
    let consumer = Consumer {
        actor,
        given: 0,
        taking: VecDeque::new(),
        total: None,
        ended: false,
    };
    (feed, consumer)
}

/// The local body of a call that runs in the stream actor's process: never run here.
fn runs_there<R>(_: &StreamActor) -> BoxFuture<'_, anyhow::Result<R>> {
    Box::pin(async { anyhow::bail!("a call to a stream's actor ran in the consumer's process") })
}

/// The consumer's end: takes the items from the actor, in order.
pub(super) struct Consumer<T> {
    actor: ActorHandle<StreamActor>,
    /// How many items the consumer was given.
    given: u64,
    /// The `take`s sent and not given yet, the next item's first.
    taking: VecDeque<ObjectRef<T>>,
    /// How many items there are, once the producer ended.
    total: Option<u64>,
    /// Whether the stream ended for the consumer.
    ended: bool,
}

impl<T: Value> Consumer<T> {
    /// The next item, waiting for it or for the producer (whose result is `producer`) to end.
    /// The last item of a failed producer fails with its error. An item is given once its
    /// `take` answered, so that killing the actor (when the stream drops) loses none.
    pub(super) fn next(&mut self, producer: &ObjectRef<()>) -> Option<ObjectRef<T>> {
        loop {
            if self.ended {
                return None;
            }
            let sent = self.given + self.taking.len() as u64;
            if let Some(total) = self.total {
                // Every item is stored: take the rest at once.
                self.taking
                    .extend((sent..total).map(|index| take(&self.actor, index)));
                let Some(item) = self.taking.pop_front() else {
                    self.ended = true;
                    return crate::api::get(producer).err().map(failed);
                };
                let _ = crate::api::wait(std::slice::from_ref(&item), 1, None);
                self.given += 1;
                return Some(item);
            }
            if self.taking.is_empty() {
                self.taking.push_back(take(&self.actor, sent));
            }
            let both = [self.taking[0].clone().erased(), producer.clone()];
            let (ready, _) = crate::api::wait(&both, 1, None);
            if ready.iter().any(|r| r.id() == both[0].id()) {
                self.given += 1;
                return self.taking.pop_front();
            }
            // The producer ended: all it stored is in the actor.
            let finish: ObjectRef<u64> = self
                .actor
                .call("finish")
                .registered(FINISH)
                .spawn_shared(runs_there);
            match crate::api::get(&finish) {
                Ok(total) => {
                    // A take sent past the last item fails: drop it.
                    let left = usize::try_from(total.saturating_sub(self.given)).unwrap_or(0);
                    self.taking.truncate(left);
                    self.total = Some(total);
                }
                Err(error) => {
                    self.ended = true;
                    return Some(failed(error));
                }
            }
        }
    }

    /// Ends the stream for the consumer (an item failed).
    pub(super) fn end(&mut self) {
        self.ended = true;
    }
}

impl<T> Consumer<T> {
    /// Whether the stream ended for the consumer.
    pub(super) fn ended(&self) -> bool {
        self.ended
    }

    /// How many items the consumer was given.
    pub(super) fn given(&self) -> u64 {
        self.given
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // The producer stops at its next `put`; the items taken are the consumer's objects.
        let _ = crate::actor::kill(&self.actor);
    }
}

/// A `take` of item `index`: its result is the item.
fn take<T: Value>(actor: &ActorHandle<StreamActor>, index: u64) -> ObjectRef<T> {
    let mut call = actor.call("take").registered(TAKE);
    let _index = call.arg(index);
    call.spawn_shared(runs_there)
}

fn failed<T>(error: Error) -> ObjectRef<T> {
    ObjectRef::from_new_cell(crate::runtime::current().store().insert_failed(error))
}

/// The producer's end: sends the items to the actor.
pub(super) struct Feeder<T> {
    feed: StreamFeed,
    /// The index of the next item.
    index: u64,
    /// The answers of the puts in flight (without backpressure).
    sent: VecDeque<ObjectRef<bool>>,
    /// Nobody takes items any more.
    stopped: bool,
    _type: PhantomData<fn(T)>,
}

impl<T: Value> Feeder<T> {
    pub(super) fn new(feed: StreamFeed) -> Feeder<T> {
        Feeder {
            feed,
            index: 0,
            sent: VecDeque::new(),
            stopped: false,
            _type: PhantomData,
        }
    }

    /// Whether the producer should stop: the stream is gone.
    pub(super) fn stopped(&mut self) -> bool {
        if !self.stopped {
            self.look_at_answers();
        }
        self.stopped
    }

    /// Sends `item` as the next one; `Ok(false)`: nobody takes items any more.
    pub(super) fn send(&mut self, item: &T) -> Result<bool> {
        let Some(answer) = self.put(item)? else {
            return Ok(!self.stopped);
        };
        let answer = crate::api::get(&answer);
        self.answered(answer)
    }

    /// [`send`](Self::send) waiting without blocking a thread.
    pub(super) async fn send_async(&mut self, item: &T) -> Result<bool> {
        let Some(answer) = self.put(item)? else {
            return Ok(!self.stopped);
        };
        let answer = answer.await;
        self.answered(answer)
    }

    /// Sends the put of `item`: its answer, to wait for now (with backpressure), or none.
    fn put(&mut self, item: &T) -> Result<Option<ObjectRef<bool>>> {
        if self.stopped() {
            return Ok(None);
        }
        let encoded = frame::encode(item)?;
        let mut call = self.feed.actor.call("put").registered(PUT);
        let _index = call.arg(self.index);
        let _item = call.arg(encoded);
        self.index += 1;
        let answer = call.spawn_shared(runs_there);
        if self.feed.backpressure.is_some() {
            return Ok(Some(answer));
        }
        self.sent.push_back(answer);
        if self.sent.len() >= WINDOW {
            let oldest = self.sent.pop_front().expect("a full window");
            let answer = crate::api::get(&oldest);
            self.answered(answer)?;
        }
        Ok(None)
    }

    /// Reads the answers that came, without waiting.
    fn look_at_answers(&mut self) {
        while let Some(oldest) = self.sent.front() {
            let (ready, _) =
                crate::api::wait(std::slice::from_ref(oldest), 1, Some(Duration::ZERO));
            if ready.is_empty() {
                return;
            }
            let answer = crate::api::get(&ready[0]);
            self.sent.pop_front();
            if !matches!(self.answered(answer), Ok(true)) {
                // A failure other than the actor's end shows at `flush`.
                self.stopped = true;
                return;
            }
        }
    }

    /// What an answer means: go on, stop (the actor is gone or finished), or a failure.
    fn answered(&mut self, answer: Result<bool>) -> Result<bool> {
        match answer {
            Ok(true) => Ok(true),
            Ok(false) | Err(Error::ActorDied { .. }) => {
                self.stopped = true;
                Ok(false)
            }
            Err(error) => {
                self.stopped = true;
                Err(error)
            }
        }
    }

    /// Waits for the answers of the puts in flight: the producer ends only once its items
    /// are stored. Fails if one could not be, for another reason than the stream being gone.
    pub(super) async fn flush(&mut self) -> Result<()> {
        while let Some(oldest) = self.sent.pop_front() {
            let answer = oldest.await;
            self.answered(answer)?;
        }
        Ok(())
    }
}

impl<T> std::fmt::Debug for Feeder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeder")
            .field("actor", &self.feed.actor)
            .field("index", &self.index)
            .finish()
    }
}

// The stream actor as Ray's workers build and call it.

fn actor(this: &(dyn Any + Send + Sync)) -> Result<&StreamActor> {
    this.downcast_ref::<StreamActor>()
        .ok_or(Error::TypeMismatch {
            expected: type_name::<StreamActor>(),
            found: "another actor type",
        })
}

fn construct(args: Vec<u8>) -> BoxFuture<'static, Result<Box<dyn Any + Send + Sync>>> {
    Box::pin(async move {
        let (backpressure,): (Option<usize>,) =
            entry::decode(&args, &[type_name::<Option<usize>>()])?;
        Ok(Box::new(StreamActor::new(backpressure)) as Box<dyn Any + Send + Sync>)
    })
}

fn put(this: &(dyn Any + Send + Sync), args: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>>> {
    Box::pin(async move {
        let names = [type_name::<u64>(), type_name::<Vec<u8>>()];
        let (index, item): (u64, Vec<u8>) = entry::decode(&args, &names)?;
        entry::encode(&actor(this)?.put(index, item).await)
    })
}

fn take_entry(this: &(dyn Any + Send + Sync), args: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>>> {
    Box::pin(async move {
        let (index,): (u64,) = entry::decode(&args, &[type_name::<u64>()])?;
        // The item's own frame is the call's result: the consumer's object is the item.
        actor(this)?.take(index).await
    })
}

fn finish(this: &(dyn Any + Send + Sync), args: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>>> {
    Box::pin(async move {
        let () = entry::decode(&args, &[])?;
        entry::encode(&actor(this)?.finish())
    })
}

inventory::submit! { Registration::concurrent_actor_constructor(CONSTRUCTOR, construct) }
inventory::submit! { Registration::shared_actor_method(PUT, put) }
inventory::submit! { Registration::shared_actor_method(TAKE, take_entry) }
inventory::submit! { Registration::shared_actor_method(FINISH, finish) }

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn items_arriving_out_of_order_or_twice_are_stored_once_in_order() {
        let actor = StreamActor::new(None);
        block_on(async {
            assert!(actor.put(1, vec![1]).await);
            assert_eq!(actor.buffer.lock().stored, 0, "item 0 has not arrived");
            assert!(actor.put(0, vec![0]).await);
            assert!(actor.put(0, vec![9]).await, "a retry's repeat is answered");
            assert_eq!(actor.buffer.lock().stored, 2);
            assert_eq!(actor.take(0).await.unwrap(), [0]);
            assert_eq!(actor.take(1).await.unwrap(), [1]);
            assert!(actor.put(1, vec![9]).await, "a repeat of a taken item");
            assert_eq!(actor.finish(), 2);
            let error = actor.take(2).await.unwrap_err();
            assert!(error.to_string().contains("no item 2"), "{error}");
            assert!(
                !actor.put(2, vec![2]).await,
                "nothing is stored after the end"
            );
        });
    }

    #[test]
    fn a_put_answers_once_the_next_item_has_room() {
        block_on(async {
            let actor = std::sync::Arc::new(StreamActor::new(Some(2)));
            assert!(actor.put(0, vec![0]).await, "room for item 1");
            let second = tokio::spawn({
                let actor = std::sync::Arc::clone(&actor);
                async move { actor.put(1, vec![1]).await }
            });
            tokio::task::yield_now().await;
            assert!(!second.is_finished(), "two unconsumed: no room for item 2");
            assert_eq!(actor.take(0).await.unwrap(), [0]);
            assert!(second.await.unwrap());
            let third = tokio::spawn({
                let actor = std::sync::Arc::clone(&actor);
                async move { actor.put(2, vec![2]).await }
            });
            tokio::task::yield_now().await;
            actor.finish();
            assert!(!third.await.unwrap(), "the end stops a waiting producer");
        });
    }
}
