//! The producer's end of a stream whose consumer is in another process: sends the items to the
//! stream's actor (see `remote.rs`).
//!
//! Without backpressure, the items go in batches: the producer queues each item's frame and a
//! sender thread puts whatever is queued in one call, waits for its answer, and goes again, so
//! an item waits at most one round trip and a fast producer sends many items per call (a call
//! per item held the producer to Ray's rate of actor calls, a third of Ray's own streams). An
//! answer that says the stream is over (its consumer dropped it) stops the producer at its
//! next item. With backpressure `n`, each item is put by itself and the producer waits for the
//! answer, which comes once the next item may be made.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::actor::PUT;
use super::remote::{runs_there, StreamFeed};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::codec::frame;
use crate::object_store::Value;
use crate::runtime::RuntimeCore;

/// The producer's end: sends the items to the actor.
pub(super) struct Feeder<T> {
    feed: StreamFeed,
    /// The index of the next item.
    index: u64,
    /// Nobody takes items any more.
    stopped: bool,
    /// The sender thread's queue (without backpressure).
    queue: Option<Arc<Queue>>,
    _type: std::marker::PhantomData<fn(T)>,
}

/// The items waiting for the sender thread.
#[derive(Default)]
struct Queue {
    state: Mutex<Queued>,
    changed: Condvar,
}

#[derive(Default)]
struct Queued {
    /// The frames of items `first..`, not sent yet.
    frames: Vec<Vec<u8>>,
    first: u64,
    /// The stream is over: the producer stops.
    over: bool,
    /// Why a put failed, other than the stream being over.
    failed: Option<Error>,
    /// The producer sends nothing more: send the rest, then stop.
    closing: bool,
    /// The sender thread is gone.
    done: bool,
}

impl<T: Value> Feeder<T> {
    pub(super) fn new(feed: StreamFeed) -> Feeder<T> {
        Feeder {
            feed,
            index: 0,
            stopped: false,
            queue: None,
            _type: std::marker::PhantomData,
        }
    }

    /// Whether the producer should stop: the stream is over, or the task was cancelled.
    pub(super) fn stopped(&mut self) -> bool {
        if !self.stopped {
            let over = self.queue.as_ref().is_some_and(|q| q.state.lock().over);
            self.stopped = over || crate::api::is_cancelled();
        }
        self.stopped
    }

    /// Sends `item` as the next one (with backpressure, waiting until the one after may be
    /// made); `Ok(false)`: nobody takes items any more.
    pub(super) fn send(&mut self, item: &T) -> Result<bool> {
        match self.put(item)? {
            Some(answer) => {
                let answer = crate::api::get(&answer);
                self.answered(answer)
            }
            None => Ok(!self.stopped),
        }
    }

    /// [`send`](Self::send) waiting without blocking a thread.
    pub(super) async fn send_async(&mut self, item: &T) -> Result<bool> {
        match self.put(item)? {
            Some(answer) => {
                let answer = answer.await;
                self.answered(answer)
            }
            None => Ok(!self.stopped),
        }
    }

    /// Sends `item`: with backpressure, its put, whose answer to wait for; else queued for the
    /// sender thread.
    fn put(&mut self, item: &T) -> Result<Option<ObjectRef<bool>>> {
        if self.stopped() {
            return Ok(None);
        }
        let encoded = frame::encode(item)?;
        let index = self.index;
        self.index += 1;
        if self.feed.backpressure.is_some() {
            return Ok(Some(put(&self.feed, index, vec![encoded], false)));
        }
        let queue = match &self.queue {
            Some(queue) => queue,
            None => self.queue.insert(start_sender(self.feed.clone())?),
        };
        let mut queued = queue.state.lock();
        if queued.over {
            self.stopped = true;
            return Ok(None);
        }
        if queued.frames.is_empty() {
            queued.first = index;
        }
        queued.frames.push(encoded);
        drop(queued);
        queue.changed.notify_all();
        Ok(None)
    }

    /// What an answer means: go on, stop (the stream is over, or its actor gone), or a failure.
    fn answered(&mut self, answer: Result<bool>) -> Result<bool> {
        let go_on = over_or_failed(answer)?;
        self.stopped |= !go_on;
        Ok(go_on)
    }

    /// Waits until every item queued is stored: the producer ends only then. With
    /// `complete` (the producer ended well), it also tells the actor how many items it made,
    /// beside the last put rather than after it, which ends the stream for the consumer once
    /// they are all stored, without waiting for the producer's result. Fails if an item could
    /// not be stored, for another reason than the stream being over.
    pub(super) async fn flush(&mut self, complete: bool) -> Result<()> {
        let end =
            (complete && !self.stopped()).then(|| put(&self.feed, self.index, Vec::new(), true));
        crate::runtime::blocking::outside_async_worker(|| {
            if let Some(queue) = &self.queue {
                let mut queued = queue.state.lock();
                queued.closing = true;
                queue.changed.notify_all();
                while !queued.done {
                    queue.changed.wait(&mut queued);
                }
                if let Some(failed) = queued.failed.take() {
                    return Err(failed);
                }
            }
            match end {
                Some(end) => over_or_failed(crate::api::get(&end)).map(|_| ()),
                None => Ok(()),
            }
        })
    }
}

impl<T> Drop for Feeder<T> {
    fn drop(&mut self) {
        // A producer that unwound: the sender sends what is queued, then stops.
        if let Some(queue) = &self.queue {
            queue.state.lock().closing = true;
            queue.changed.notify_all();
        }
    }
}

impl<T> std::fmt::Debug for Feeder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeder")
            .field("actor", &self.feed.actor)
            .field("stream", &self.feed.stream)
            .field("index", &self.index)
            .finish()
    }
}

/// The put of `frames` as items `first..`; with `end`, the producer's last.
fn put(feed: &StreamFeed, first: u64, frames: Vec<Vec<u8>>, end: bool) -> ObjectRef<bool> {
    let mut call = feed.actor.call("put").registered(PUT);
    let _stream = call.arg(feed.stream);
    let _first = call.arg(first);
    let _frames = call.arg(frames);
    let _limit = call.arg(feed.backpressure);
    let _end = call.arg(end);
    call.spawn_shared(runs_there)
}

/// Whether a put's answer says to go on: `false` when the stream is over or its actor gone.
fn over_or_failed(answer: Result<bool>) -> Result<bool> {
    match answer {
        Err(Error::ActorDied { .. }) => Ok(false),
        other => other,
    }
}

/// Starts the thread that sends the queued items, in the current runtime.
fn start_sender(feed: StreamFeed) -> Result<Arc<Queue>> {
    let queue = Arc::new(Queue::default());
    let runtime = crate::runtime::current().to_arc();
    let sender = Arc::clone(&queue);
    std::thread::Builder::new()
        .name("rustyray-stream-sender".to_owned())
        .spawn(move || send_queued(&runtime, &feed, &sender))
        .map_err(|e| Error::Backend {
            message: format!("could not start a stream's sender thread: {e}"),
        })?;
    Ok(queue)
}

/// The sender thread: puts what is queued, one call at a time, until the producer is done.
fn send_queued(runtime: &Arc<RuntimeCore>, feed: &StreamFeed, queue: &Queue) {
    let _entered = crate::runtime::enter_core(runtime);
    loop {
        let (first, frames) = {
            let mut queued = queue.state.lock();
            while queued.frames.is_empty() && !queued.closing {
                queue.changed.wait(&mut queued);
            }
            if queued.frames.is_empty() {
                queued.done = true;
                drop(queued);
                queue.changed.notify_all();
                return;
            }
            (queued.first, std::mem::take(&mut queued.frames))
        };
        let answer = over_or_failed(crate::api::get(&put(feed, first, frames, false)));
        if !matches!(answer, Ok(true)) {
            let mut queued = queue.state.lock();
            queued.over = true;
            queued.frames.clear();
            queued.failed = answer.err();
        }
    }
}
