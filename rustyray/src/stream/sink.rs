//! The producer's end of a stream: what a streaming body hands its items to.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::Result;
use crate::object_store::{IdBlock, Producer, Value};

use super::feeder::Feeder;
use super::remote::StreamFeed;
use super::{Item, Stream, Tx};

/// Where a streaming task or actor call puts its items, each becoming an object of the
/// [`ObjectRefStream`](crate::ObjectRefStream) at once. `#[rustyray::remote(streaming)]` makes
/// one for you; [`TaskBuilder::spawn_stream`](crate::task::TaskBuilder::spawn_stream) hands one
/// to a body written by hand.
///
/// A sink is `Send` but not `Sync`: one producer writes to it.
///
/// One sink serves one try of the producer. On a retry, the first items, those an earlier try
/// already delivered, are skipped (Ray does the same): a producer should make the same items
/// each time.
pub struct StreamSink<T> {
    to: To<T>,
}

/// Where a sink's items go.
enum To<T> {
    /// To the consumer's channel, in this process.
    Channel(ToChannel<T>),
    /// To the stream's actor (see `remote.rs`).
    Actor(Feeder<T>),
}

/// A sink's end of a stream's channel.
struct ToChannel<T> {
    stream: Arc<Stream<T>>,
    /// The producer's end of the channel, given back when the try is over (`None` only if
    /// another try held it, which the task's retries never let happen).
    tx: Option<Tx<Item<T>>>,
    /// The index of the next item of this try.
    index: u64,
    /// How many items earlier tries delivered.
    skip: u64,
    /// Whether the last item sent left room for the next (so no need to ask again).
    room: bool,
    /// Ids reserved for the next small items.
    ids: IdBlock,
    /// The running task, asked whether it was cancelled (`None` in an actor call).
    task: Option<Arc<dyn Producer>>,
    _type: PhantomData<fn(T)>,
}

impl<T: Value> StreamSink<T> {
    pub(crate) fn new(stream: Arc<Stream<T>>) -> StreamSink<T> {
        StreamSink {
            to: To::Channel(ToChannel::new(stream)),
        }
    }

    /// A sink whose items go to a stream's actor (the producer runs in another process than
    /// the consumer).
    pub(crate) fn to_actor(feed: StreamFeed) -> StreamSink<T> {
        StreamSink {
            to: To::Actor(Feeder::new(feed)),
        }
    }

    /// Hands `item` over as the next object, after waiting while `backpressure` items are
    /// unconsumed (lending the task's CPU meanwhile). `Ok(false)` means nobody takes items any
    /// more (the stream was dropped, or the task cancelled): stop making them. Fails only when
    /// the object store cannot take the item.
    pub fn send(&mut self, item: T) -> Result<bool> {
        match &mut self.to {
            To::Channel(to) => to.send(item),
            To::Actor(to) => to.send(&item),
        }
    }

    /// [`send`](Self::send) for async producers: waits for room without blocking a thread.
    pub async fn send_async(&mut self, item: T) -> Result<bool> {
        match &mut self.to {
            To::Channel(to) => to.send_async(item).await,
            To::Actor(to) => to.send_async(&item).await,
        }
    }

    /// Sends every item of `items`, waiting for room *before* taking each from the iterator, so
    /// the producer never computes more than `backpressure` items ahead. Stops early, with `Ok`,
    /// when nobody takes items any more; an `Err` item fails the producer's try.
    pub fn send_all(
        &mut self,
        items: impl IntoIterator<Item = anyhow::Result<T>>,
    ) -> anyhow::Result<()> {
        let mut items = items.into_iter();
        loop {
            let room = match &mut self.to {
                To::Channel(to) => to.skipping() || to.wait_room(),
                To::Actor(to) => !to.stopped(),
            };
            if !room {
                break;
            }
            let Some(item) = items.next() else { break };
            let going_on = match &mut self.to {
                To::Channel(to) => to.pass(item?)?,
                To::Actor(to) => to.send(&item?)?,
            };
            if !going_on {
                break;
            }
        }
        Ok(())
    }

    /// [`send_all`](Self::send_all) for a `Stream` of items.
    pub async fn send_all_async(
        &mut self,
        items: impl futures_util::Stream<Item = anyhow::Result<T>>,
    ) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        let mut items = std::pin::pin!(items);
        loop {
            let room = match &mut self.to {
                To::Channel(to) => to.skipping() || to.room().await,
                To::Actor(to) => !to.stopped(),
            };
            if !room {
                break;
            }
            let Some(item) = items.next().await else {
                break;
            };
            let going_on = match &mut self.to {
                To::Channel(to) => to.pass(item?)?,
                To::Actor(to) => to.send_async(&item?).await?,
            };
            if !going_on {
                break;
            }
        }
        Ok(())
    }

    /// Waits until every item sent is stored (a producer in another process than its
    /// consumer sends its items without waiting for each); `complete`: the producer ended
    /// well, which it tells the stream's actor beside its last put.
    pub(crate) async fn flush(&mut self, complete: bool) -> Result<()> {
        match &mut self.to {
            To::Channel(_) => Ok(()),
            To::Actor(to) => to.flush(complete).await,
        }
    }
}

impl<T: Value> ToChannel<T> {
    fn new(stream: Arc<Stream<T>>) -> ToChannel<T> {
        let skip = stream.channel.delivered();
        let tx = stream.channel.take_tx();
        if tx.is_none() && stream.channel.try_room() != Some(false) {
            tracing::warn!(
                target: "rustyray::stream",
                function = %stream.function,
                "a try of a stream's producer started while an earlier try still held its sink \
                 (was the sink moved out of the producer's body?); this try's items are dropped"
            );
        }
        ToChannel {
            tx,
            stream,
            index: 0,
            skip,
            room: false,
            ids: IdBlock::default(),
            task: crate::scheduler::current_task(),
            _type: PhantomData,
        }
    }

    /// Whether the next item is one an earlier try delivered.
    fn skipping(&self) -> bool {
        self.index < self.skip
    }

    /// Whether the task was cancelled.
    fn cancelled(&self) -> bool {
        self.task.as_ref().is_some_and(|task| task.is_cancelled())
    }

    /// Whether the producer should stop: the consumer is gone, or the task was cancelled.
    fn stopped(&self) -> bool {
        self.cancelled() || self.stream.channel.try_room() == Some(false)
    }

    /// Waits (lending the task's CPU) until the next item may be sent; `false`: stop.
    fn wait_room(&mut self) -> bool {
        if self.cancelled() {
            return false;
        }
        std::mem::take(&mut self.room) || self.stream.wait_room()
    }

    /// [`wait_room`](Self::wait_room) without blocking a thread.
    async fn room(&mut self) -> bool {
        if self.cancelled() {
            return false;
        }
        std::mem::take(&mut self.room)
            || std::future::poll_fn(|cx| self.stream.channel.poll_room(cx)).await
    }

    /// Hands `item` over as the next object, after waiting while `backpressure` items are
    /// unconsumed (lending the task's CPU meanwhile). `Ok(false)` means nobody takes items any
    /// more (the stream was dropped, or the task cancelled): stop making them. Fails only when
    /// the object store cannot take the item.
    fn send(&mut self, item: T) -> Result<bool> {
        if self.skipping() {
            self.index += 1;
            return Ok(!self.stopped());
        }
        if !self.wait_room() {
            return Ok(false);
        }
        self.deliver(item)
    }

    /// [`send`](Self::send) for async producers: waits for room without blocking a thread.
    async fn send_async(&mut self, item: T) -> Result<bool> {
        if self.skipping() {
            self.index += 1;
            return Ok(!self.stopped());
        }
        if !self.room().await {
            return Ok(false);
        }
        self.deliver(item)
    }

    /// An item taken once there was room: skipped if an earlier try delivered it, else
    /// delivered. `false`: stop.
    fn pass(&mut self, item: T) -> Result<bool> {
        if self.skipping() {
            self.index += 1;
            return Ok(!self.stopped());
        }
        self.deliver(item)
    }

    fn deliver(&mut self, item: T) -> Result<bool> {
        let index = self.index;
        self.index += 1;
        let Some(tx) = &mut self.tx else {
            return Ok(false);
        };
        let sent = self.stream.deliver(tx, index, item, &mut self.ids)?;
        self.room = sent == Some(true);
        Ok(sent.is_some())
    }
}

impl<T> Drop for ToChannel<T> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.stream.channel.give_back(tx);
        }
    }
}

impl<T> std::fmt::Debug for StreamSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.to {
            To::Channel(to) => to.fmt(f),
            To::Actor(to) => f.debug_tuple("StreamSink").field(to).finish(),
        }
    }
}

impl<T> std::fmt::Debug for ToChannel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSink")
            .field("function", &self.stream.function)
            .field("index", &self.index)
            .field("skip", &self.skip)
            .finish()
    }
}
