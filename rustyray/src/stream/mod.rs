//! Streams: a task or actor call whose items become objects one by one, read while it still
//! runs (Ray's streaming generators and `ObjectRefGenerator`).
//!
//! # Design
//!
//! The producer is an ordinary task (or actor call) whose result is `()`: its body gets a
//! [`StreamSink`], which hands each item to a [`Channel`] (see `channel.rs` for the hand-off
//! and `queue.rs` for the rings under it). The consumer, [`ObjectRefStream`], takes the items
//! out as refs, or as values with [`values`](ObjectRefStream::values). A stream is generic over
//! its item type, so an item crosses the channel as itself. Everything a task has comes with
//! it: arguments resolved first, resources, retries, cancellation, the state API and the
//! timeline. What is particular to streams:
//!
//! - **Backpressure**: before making each item, the producer waits while `backpressure` items are
//!   unconsumed (default: no limit). A sync producer lends its CPU while it waits, as in `get`.
//! - **The end**: a waiter on the producer's own result ends the channel when the task ends. If
//!   the task failed (an `Err` item, a panic, a cancel, a failed argument), its error becomes
//!   one more item, a failed ref, then the stream ends. So every failure reaches the consumer in
//!   order, and through one path.
//! - **Retries** re-run the whole body, as Ray does: the channel counts the items delivered over
//!   all tries and a new try skips that many before it stores again (the producer should make
//!   the same items each time, as Ray also asks). Each try's sink holds the channel's producer
//!   end while it runs and gives it back when it drops.
//! - **Dropping the stream** closes the channel: the queued items are freed, and the producer
//!   stops before its next item (or wakes up from waiting for room and stops).
//! - **Small items travel as values.** An item too small to count against the memory budget
//!   (see `ObjectStore::admits_uncounted_size`) crosses the channel as the value itself with
//!   the id its object will have (taken when it is made, so the timeline and the ref agree);
//!   the consumer stores it when it takes it as a ref, and `values()` never stores it. So an
//!   item's cell is made, read and freed on one thread: making it on the producer's thread and
//!   freeing it on the consumer's bounced its counts and its memory between the two cores at
//!   every item, which cost more than the work (docs/performance.md, "Streams"). A large item
//!   is stored by the producer, which charges it to the budget (and may spill) before it is
//!   handed over.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use parking_lot::Mutex;

use crate::as_stream::AsStream;
use crate::error::Result;
use crate::object_ref::ObjectRef;
use crate::object_store::{
    Arrival, Cell, IdBlock, Object, ObjectId, ObjectStore, State, Value, Waiter,
};
use crate::runtime::blocking::outside_async_worker;
use crate::scheduler::BlockedGuard;

mod actor;
mod channel;
mod feeder;
mod queue;
mod remote;
mod sink;

use channel::{Channel, Receiver};
use queue::Tx;
#[doc(hidden)]
pub use remote::StreamFeed;
pub use sink::StreamSink;

/// How many ids a producer reserves at a time for its small items.
const ID_BLOCK: u64 = 64;

/// An item handed over: a small one as the value itself (with the id its object will have),
/// stored by whoever takes it, or a stored one.
pub(crate) enum Item<T> {
    Value(ObjectId, T),
    Stored(Arc<Cell>),
}

/// One stream of `T` items: its channel, and what the state API shows of it.
pub(crate) struct Stream<T> {
    function: Cow<'static, str>,
    channel: Channel<Item<T>>,
    /// Where taken items are stored.
    store: Arc<ObjectStore>,
    /// The producer's result, once known (the state API names the stream by it).
    producer: Mutex<Option<ObjectId>>,
}

impl<T: Value> Stream<T> {
    /// A stream of `function` whose producer runs at most `backpressure` items ahead, and its
    /// consumer's end.
    fn new(
        function: Cow<'static, str>,
        backpressure: Option<usize>,
        store: Arc<ObjectStore>,
    ) -> (Arc<Stream<T>>, Receiver<Item<T>>) {
        let (channel, rx) = Channel::new(backpressure.unwrap_or(usize::MAX));
        let stream = Arc::new(Stream {
            function,
            channel,
            store,
            producer: Mutex::new(None),
        });
        (stream, rx)
    }

    /// Waits (lending the task's CPU) until the next item may be made; `false` if the stream
    /// is over for the producer.
    fn wait_room(&self) -> bool {
        if let Some(room) = self.channel.try_room() {
            return room;
        }
        let _lent = BlockedGuard::enter();
        outside_async_worker(|| self.channel.wait_room())
    }

    /// Stores one item and hands it over: `Ok(None)` if nobody takes it any more, else whether
    /// there is room for the next one already.
    fn deliver(
        &self,
        tx: &mut Tx<Item<T>>,
        index: u64,
        item: T,
        ids: &mut IdBlock,
    ) -> Result<Option<bool>> {
        let size = Object::size_of(&item);
        // An item that may count against the budget (and spill, or not fit) is stored here, so
        // the producer learns at once if it cannot be; any other can be stored by the taker.
        let item = if self.store.admits_uncounted_size(size) {
            let id = match ids.next() {
                Some(id) => id,
                None => {
                    *ids = self.store.reserve_ids(ID_BLOCK);
                    ids.next().expect("a block of ids")
                }
            };
            Item::Value(id, item)
        } else {
            Item::Stored(self.store.insert_ready(Object::sized(item, size))?)
        };
        let id = match &item {
            Item::Value(id, _) => *id,
            Item::Stored(cell) => cell.id(),
        };
        crate::timeline::record_item(&self.function, id);
        tracing::trace!(
            target: "rustyray::stream",
            function = %self.function,
            index,
            object = %id,
            "item"
        );
        Ok(self.channel.send(tx, item))
    }

    /// The value of a taken item: the value itself when it came as one (no object is made),
    /// else read from its object.
    fn value(item: Item<T>) -> Result<T>
    where
        T: Clone,
    {
        match item {
            Item::Value(_, value) => Ok(value),
            Item::Stored(cell) => match cell.take_last_value() {
                Some(value) => Ok(value),
                None => cell.read_value_resolved(),
            },
        }
    }

    /// The ref of a taken item (storing it if it came as a value).
    fn take(&self, item: Item<T>) -> ObjectRef<T> {
        let cell = match item {
            Item::Stored(cell) => cell,
            // Cannot fail: the producer sent it as a value only because it is uncounted.
            Item::Value(id, value) => self
                .store
                .insert_ready_as(id, Object::new(value))
                .unwrap_or_else(|error| self.store.insert_failed(error)),
        };
        ObjectRef::from_new_cell(cell)
    }
}

/// Where a stream's producer sends its items.
pub(crate) enum Producer<T> {
    /// To the stream's channel: the producer runs in this process.
    Here(Arc<Stream<T>>),
    /// To the stream's actor, given to the producer as its last argument: the producer runs
    /// in another process (see `remote.rs`).
    Elsewhere(StreamFeed),
}

/// Makes a stream of `function` and submits its producer with `spawn` (given where its items
/// go).
pub(crate) fn submit<T: Value>(
    function: Cow<'static, str>,
    backpressure: Option<usize>,
    spawn: impl FnOnce(Producer<T>) -> ObjectRef<()>,
) -> ObjectRefStream<T> {
    let shared = crate::runtime::current();
    match shared.backend().streams() {
        Streaming::Channel => {
            let (stream, rx) = Stream::new(function, backpressure, Arc::clone(shared.store()));
            let producer = spawn(Producer::Here(Arc::clone(&stream)));
            ObjectRefStream::start(stream, rx, producer, shared.store(), shared.streams())
        }
        Streaming::Actor => {
            let (feed, consumer) = remote::open(backpressure);
            let producer = spawn(Producer::Elsewhere(feed));
            ObjectRefStream {
                source: Source::Actor(consumer),
                function,
                producer,
            }
        }
    }
}

/// How a backend runs streams.
pub(crate) enum Streaming {
    /// Through a channel: the producer runs in the consumer's process.
    Channel,
    /// Through an actor: the producer may run in another process.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    Actor,
}

/// The body of a producer that runs in another process (on Ray, the registered function
/// runs; this body never does).
pub(crate) fn runs_elsewhere() -> anyhow::Result<()> {
    anyhow::bail!("a stream's producer for another process ran in the consumer's")
}

/// The waiter on the producer's result: ends the channel, with the producer's error as a last
/// failed item if it failed.
struct End<T> {
    stream: Arc<Stream<T>>,
    store: Arc<ObjectStore>,
}

impl<T: Value> Arrival for End<T> {
    fn arrive(&self, state: &State) {
        let last = state.failure().map(|error| self.store.insert_failed(error));
        self.stream.channel.end(last.map(Item::Stored));
    }

    fn is_leaf(&self) -> bool {
        true // the failed item is new: nothing waits for it yet
    }
}

/// The items of a streaming task or actor call, each an [`ObjectRef`] usable as soon as it is
/// made, while the producer still runs (Ray's `ObjectRefGenerator`).
///
/// It is an [`Iterator`] (`next` blocks until the next item exists or the producer ended) and a
/// [`Stream`](crate::Stream) of the same refs for async code. An item the producer failed to make
/// (an `Err` item, a panic, a cancel) comes as a ref that fails with the error, and then the
/// stream ends. Dropping the stream stops the producer before its next item and frees the items
/// not taken yet.
///
/// A stream has one reader: it is `Send` (move it to the thread or task that reads it) but not
/// `Sync`, like std's `mpsc::Receiver`.
///
/// ```
/// #[rustyray::remote(streaming)]
/// fn count_to(n: u64) -> impl Iterator<Item = u64> {
///     1..=n
/// }
///
/// #[rustyray::remote]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() -> rustyray::Result<()> {
/// #   let rt = rustyray::Runtime::new(rustyray::Config::default())?;
/// #   let _guard = rt.enter();
///     // Each square starts as soon as its number exists.
///     let squares: Vec<_> = count_to::remote(4).map(square::remote).collect();
///     assert_eq!(rustyray::get_all(&squares)?, [1, 4, 9, 16]);
///     Ok(())
/// }
/// ```
#[must_use = "a stream's producer stops when the stream is dropped"]
pub struct ObjectRefStream<T> {
    source: Source<T>,
    /// The producing function (or `Class.method`).
    function: Cow<'static, str>,
    /// The producer's own result: `()` once it ended (see [`completed`](Self::completed)).
    producer: ObjectRef<()>,
}

/// Where a stream's consumer takes its items from.
enum Source<T> {
    /// The channel a producer in this process hands them to.
    Channel {
        stream: Arc<Stream<T>>,
        rx: Receiver<Item<T>>,
    },
    /// The stream's actor (the producer may run in another process).
    Actor(remote::Consumer<T>),
}

/// An item as the consumer takes it.
enum Taken<T> {
    /// From the channel: stored when taken as a ref.
    Handed(Item<T>),
    /// From the stream's actor: an object already.
    Object(ObjectRef<T>),
}

impl<T: Value> ObjectRefStream<T> {
    /// The stream of the producer whose result is `producer`: ends when it does.
    fn start(
        stream: Arc<Stream<T>>,
        rx: Receiver<Item<T>>,
        producer: ObjectRef<()>,
        store: &Arc<ObjectStore>,
        streams: &Streams,
    ) -> ObjectRefStream<T> {
        *stream.producer.lock() = Some(producer.id());
        match producer.cell() {
            Some(cell) => {
                let end = Arc::new(End {
                    stream: Arc::clone(&stream),
                    store: Arc::clone(store),
                });
                if let Some(state) = cell.subscribe(Waiter::new(Arc::clone(&end) as _)) {
                    end.arrive(&state);
                }
            }
            None => stream.channel.end(Some(Item::Stored(
                store.insert_failed(crate::object_ref::missing(producer.id())),
            ))),
        }
        streams.register(&stream);
        ObjectRefStream {
            function: stream.function.clone(),
            source: Source::Channel { stream, rx },
            producer,
        }
    }

    /// The producer's result: `()` once it ended, after its last item, or its error (the same
    /// as the stream's last item then). Like Ray's `ObjectRefGenerator.completed()`.
    pub fn completed(&self) -> ObjectRef<()> {
        self.producer.clone()
    }

    /// Cancels the producer (see [`cancel`](crate::cancel)): it stops before its next item, and
    /// the stream ends with a ref that fails with [`Error::Cancelled`](crate::Error::Cancelled). Returns whether it was
    /// still running or waiting.
    pub fn cancel(&self) -> bool {
        crate::api::cancel(&self.producer)
    }
}

impl<T: Value> Iterator for ObjectRefStream<T> {
    type Item = ObjectRef<T>;

    /// The next item: blocks until the producer made it, or returns `None` once it ended.
    /// Inside a task, the task's CPU is lent back while it waits.
    fn next(&mut self) -> Option<ObjectRef<T>> {
        let item = self.next_item()?;
        Some(self.as_ref(item))
    }
}

impl<T: Value> ObjectRefStream<T> {
    /// The next item as taken: blocks until the producer made it, `None` at the end.
    fn next_item(&mut self) -> Option<Taken<T>> {
        match &mut self.source {
            Source::Channel { stream, rx } => {
                let channel = &stream.channel;
                let item = match channel.next_soon(rx) {
                    Some(item) => item,
                    None => {
                        let _lent = BlockedGuard::enter();
                        outside_async_worker(|| channel.next_blocking(rx))
                    }
                };
                item.map(Taken::Handed)
            }
            Source::Actor(consumer) => {
                let _lent = BlockedGuard::enter();
                consumer.next(&self.producer).map(Taken::Object)
            }
        }
    }

    /// [`next_item`](Self::next_item) for async code.
    fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Taken<T>>> {
        match &mut self.source {
            Source::Channel { stream, rx } => stream
                .channel
                .poll_next(rx, cx)
                .map(|item| item.map(Taken::Handed)),
            // As `as_completed` on Ray: Ray's waits block, so the polling thread waits (moved
            // off a tokio worker first).
            Source::Actor(_) => Poll::Ready(outside_async_worker(|| self.next_item())),
        }
    }

    /// The ref of a taken item.
    fn as_ref(&self, item: Taken<T>) -> ObjectRef<T> {
        match (item, &self.source) {
            (Taken::Handed(item), Source::Channel { stream, .. }) => stream.take(item),
            (Taken::Object(item), _) => item,
            (Taken::Handed(_), Source::Actor(_)) => unreachable!("an actor's items are objects"),
        }
    }

    /// The value of a taken item: the value itself when it came as one (no object is made),
    /// else read from its object. A failed item ends the stream.
    fn value_of(&mut self, item: Taken<T>) -> Result<T>
    where
        T: Clone,
    {
        match item {
            Taken::Handed(item) => Stream::value(item),
            Taken::Object(item) => {
                let value = crate::api::get(&item);
                if let (Err(_), Source::Actor(consumer)) = (&value, &mut self.source) {
                    consumer.end();
                }
                value
            }
        }
    }

    /// The items' values rather than refs, for a consumer that only reads them: each item
    /// still comes as soon as it is made, in order, and a failed item is its error (then the
    /// stream ends). No object is made for an item small enough to travel as a value, so this
    /// is the fastest way through a stream of small items; use the refs to pass items to other
    /// tasks. An [`Iterator`]; [`into_stream`](StreamValues::into_stream) makes it a
    /// [`Stream`](crate::Stream) for async code.
    ///
    /// ```
    /// #[rustyray::remote(streaming)]
    /// fn squares(n: u64) -> impl Iterator<Item = u64> {
    ///     (1..=n).map(|i| i * i)
    /// }
    ///
    /// # fn main() -> rustyray::Result<()> {
    /// # let rt = rustyray::Runtime::new(rustyray::Config::default())?;
    /// # let _guard = rt.enter();
    /// let total: u64 = squares::remote(4).values().sum::<rustyray::Result<u64>>()?;
    /// assert_eq!(total, 1 + 4 + 9 + 16);
    /// # Ok(())
    /// # }
    /// ```
    pub fn values(self) -> StreamValues<T> {
        StreamValues { stream: self }
    }
}

/// The values of a stream's items; see [`ObjectRefStream::values`].
#[must_use = "a stream's producer stops when the stream is dropped"]
#[derive(Debug)]
pub struct StreamValues<T> {
    stream: ObjectRefStream<T>,
}

impl<T: Value> StreamValues<T> {
    /// The producer's result (see [`ObjectRefStream::completed`]).
    pub fn completed(&self) -> ObjectRef<()> {
        self.stream.completed()
    }
}

impl<T: Value + Clone> Iterator for StreamValues<T> {
    type Item = Result<T>;

    /// The next item's value: blocks until the producer made it, `None` once it ended.
    fn next(&mut self) -> Option<Result<T>> {
        let item = self.stream.next_item()?;
        Some(self.stream.value_of(item))
    }
}

impl<T: Value + Clone> StreamValues<T> {
    /// The values as a [`Stream`](crate::Stream) for async code (see [`AsStream`]).
    pub fn into_stream(self) -> AsStream<StreamValues<T>> {
        AsStream::new(self)
    }

    /// The next value, for [`AsStream`].
    pub(crate) fn poll_next_value(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = &mut self.stream;
        this.poll_next_item(cx)
            .map(|item| item.map(|item| this.value_of(item)))
    }
}

impl<T: Value> ObjectRefStream<T> {
    /// The items' refs as a [`Stream`](crate::Stream) for async code (see [`AsStream`]):
    /// `stream.into_stream().next().await` with `futures::StreamExt` in scope.
    pub fn into_stream(self) -> AsStream<ObjectRefStream<T>> {
        AsStream::new(self)
    }

    /// The next item's ref, for [`AsStream`].
    pub(crate) fn poll_next_ref(&mut self, cx: &mut Context<'_>) -> Poll<Option<ObjectRef<T>>> {
        self.poll_next_item(cx)
            .map(|item| item.map(|item| self.as_ref(item)))
    }
}

impl<T> Drop for ObjectRefStream<T> {
    fn drop(&mut self) {
        // An actor's consumer ends the actor as it drops.
        if let Source::Channel { stream, rx } = &mut self.source {
            stream.channel.close(rx);
        }
    }
}

impl<T> fmt::Debug for ObjectRefStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ObjectRefStream");
        out.field("function", &self.function)
            .field("producer", &self.producer.id());
        match &self.source {
            Source::Channel { stream, .. } => {
                let (unconsumed, ended) = stream.channel.status();
                out.field("delivered", &stream.channel.delivered())
                    .field("unconsumed", &unconsumed)
                    .field("ended", &ended);
            }
            Source::Actor(consumer) => {
                out.field("taken", &consumer.given())
                    .field("ended", &consumer.ended());
            }
        }
        out.finish()
    }
}

/// What the state API reads of a stream, whatever its items' type.
trait Listed: Send + Sync {
    /// The stream as [`state::streams`](crate::state::streams) lists it, once its producer is
    /// known.
    fn info(&self) -> Option<StreamInfo>;
}

impl<T: Value> Listed for Stream<T> {
    fn info(&self) -> Option<StreamInfo> {
        let (unconsumed, ended) = self.channel.status();
        Some(StreamInfo {
            producer: (*self.producer.lock())?,
            function: self.function.to_string(),
            delivered: self.channel.delivered(),
            unconsumed,
            ended,
        })
    }
}

/// The streams of one runtime, for the state API (weak: a stream lives while its consumer or
/// its producer does).
#[derive(Default)]
pub(crate) struct Streams(Mutex<Vec<Weak<dyn Listed>>>);

impl Streams {
    fn register<T: Value>(&self, stream: &Arc<Stream<T>>) {
        let mut list = self.0.lock();
        // Sweep the dead ones as the list grows, so it stays within twice the live streams.
        if list.len() >= 16 && list.len().is_power_of_two() {
            list.retain(|s| s.strong_count() > 0);
        }
        let stream: Weak<dyn Listed> = Arc::downgrade(stream) as _;
        list.push(stream);
    }

    /// What the state API shows of each live stream, oldest first.
    pub(crate) fn infos(&self) -> Vec<StreamInfo> {
        let list: Vec<Arc<dyn Listed>> = self.0.lock().iter().filter_map(Weak::upgrade).collect();
        list.iter().filter_map(|stream| stream.info()).collect()
    }
}

/// One stream, as [`state::streams`](crate::state::streams) lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamInfo {
    /// The producer's result (its task or call in [`state::tasks`](crate::state::tasks)).
    pub producer: ObjectId,
    /// The producing function (or `Class.method`).
    pub function: String,
    /// Items made so far.
    pub delivered: u64,
    /// Items made and not yet taken by the consumer.
    pub unconsumed: usize,
    /// Whether the producer is done.
    pub ended: bool,
}
