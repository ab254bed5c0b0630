//! The producer's end of a stream: what a streaming body hands its items to.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::Result;
use crate::object_store::{ObjectStore, Value};

use super::Stream;

/// Where a streaming task or actor call puts its items, each becoming an object of the
/// [`ObjectRefStream`](crate::ObjectRefStream) at once. `#[rustyray::remote(streaming)]` makes
/// one for you; [`TaskBuilder::spawn_stream`](crate::task::TaskBuilder::spawn_stream) hands one
/// to a body written by hand.
///
/// One sink serves one try of the producer. On a retry, the first items, those an earlier try
/// already delivered, are skipped (Ray does the same): a producer should make the same items
/// each time.
pub struct StreamSink<T> {
    stream: Arc<Stream>,
    store: Arc<ObjectStore>,
    /// The index of the next item of this try.
    index: u64,
    /// How many items earlier tries delivered.
    skip: u64,
    _type: PhantomData<fn(T)>,
}

impl<T: Value> StreamSink<T> {
    pub(crate) fn new(stream: Arc<Stream>, store: Arc<ObjectStore>) -> StreamSink<T> {
        let skip = stream.channel.delivered();
        StreamSink {
            stream,
            store,
            index: 0,
            skip,
            _type: PhantomData,
        }
    }

    /// Whether the next item is one an earlier try delivered.
    fn skipping(&self) -> bool {
        self.index < self.skip
    }

    /// Whether the producer should stop: the consumer is gone, or the task was cancelled.
    fn stopped(&self) -> bool {
        crate::api::is_cancelled() || self.stream.channel.try_room() == Some(false)
    }

    /// Hands `item` over as the next object, after waiting while `backpressure` items are
    /// unconsumed (lending the task's CPU meanwhile). `Ok(false)` means nobody takes items any
    /// more (the stream was dropped, or the task cancelled): stop making them. Fails only when
    /// the object store cannot take the item.
    pub fn send(&mut self, item: T) -> Result<bool> {
        if self.skipping() {
            self.index += 1;
            return Ok(!self.stopped());
        }
        if crate::api::is_cancelled() || !self.stream.wait_room() {
            return Ok(false);
        }
        self.deliver(item)
    }

    /// [`send`](Self::send) for async producers: waits for room without blocking a thread.
    pub async fn send_async(&mut self, item: T) -> Result<bool> {
        if self.skipping() {
            self.index += 1;
            return Ok(!self.stopped());
        }
        if crate::api::is_cancelled() || !self.room().await {
            return Ok(false);
        }
        self.deliver(item)
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
            if !self.skipping() && (crate::api::is_cancelled() || !self.stream.wait_room()) {
                break;
            }
            let Some(item) = items.next() else { break };
            if !self.pass(item?)? {
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
            if !self.skipping() && (crate::api::is_cancelled() || !self.room().await) {
                break;
            }
            let Some(item) = items.next().await else {
                break;
            };
            if !self.pass(item?)? {
                break;
            }
        }
        Ok(())
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

    async fn room(&self) -> bool {
        std::future::poll_fn(|cx| self.stream.channel.poll_room(cx)).await
    }

    fn deliver(&mut self, item: T) -> Result<bool> {
        let index = self.index;
        self.index += 1;
        self.stream.deliver(&self.store, index, item)
    }
}

impl<T> std::fmt::Debug for StreamSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSink")
            .field("function", &self.stream.function)
            .field("index", &self.index)
            .field("skip", &self.skip)
            .finish()
    }
}
