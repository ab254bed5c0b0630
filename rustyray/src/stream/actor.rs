//! The stream actor: holds a stream's items between a producer and a consumer in different
//! processes (see `remote.rs` for the protocol). It is a concrete actor that rustyray registers
//! itself, holding each item's framed encoding, so Ray's workers build and call it whatever
//! the item type.
//!
//! One actor serves one stream at a time, and then the next: every call names its stream (a
//! number that grows with each stream its consumer process opens), a call of a newer stream
//! clears the buffer, and a call of an older one is answered as over. So a producer left
//! running by a dropped stream, or re-run by Ray after its worker died, stores nothing in the
//! next stream and stops.

use std::any::{type_name, Any};
use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::actor::{Actor, NoMethods};
use crate::error::{Error, Result};
use crate::object_store::codec::{entry, frame};
use crate::registry::Registration;
use crate::task::BoxFuture;

pub(super) const CONSTRUCTOR: &str = "rustyray::stream::StreamActor::new";
pub(super) const OPEN: &str = "rustyray::stream::StreamActor::open";
pub(super) const PUT: &str = "rustyray::stream::StreamActor::put";
pub(super) const TAKE: &str = "rustyray::stream::StreamActor::take";
pub(super) const FINISH: &str = "rustyray::stream::StreamActor::finish";
pub(super) const CLOSE: &str = "rustyray::stream::StreamActor::close";

/// The most bytes of items a `take` answers with, unless its first item alone is more: a
/// consumer that fell behind gets many small items in one answer, and large ones one by one.
const TAKE_BYTES: usize = 1 << 20;

/// The actor that holds a stream's items between its producer and its consumer, when the
/// producer runs in another process.
pub(crate) struct StreamActor {
    buffer: Mutex<Buffer>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Buffer {
    /// The stream served now.
    stream: u64,
    /// The items stored and not taken, by index.
    items: BTreeMap<u64, Vec<u8>>,
    /// Items `0..stored` have all arrived.
    stored: u64,
    /// How many the consumer took.
    taken: u64,
    /// No item arrives any more: the producer ended, or the consumer is gone.
    finished: bool,
    /// The producer said it ended well, having made this many items (some of which may still
    /// be on their way: its last put and its end travel side by side).
    end: Option<u64>,
}

impl Buffer {
    /// Whether the producer said it ended well, all its items are stored, and `index` is at or
    /// past its last (`past_end(stored)`: the stream is complete).
    fn past_end(&self, index: u64) -> bool {
        self.end
            .is_some_and(|end| self.stored >= end && index >= end)
    }

    /// Whether a call of `stream` is served: a newer stream clears the buffer first; an older
    /// one is over.
    fn serves(&mut self, stream: u64) -> bool {
        if stream > self.stream {
            *self = Buffer {
                stream,
                ..Buffer::default()
            };
        }
        stream == self.stream
    }
}

impl Actor for StreamActor {
    type Methods = NoMethods;
}

impl StreamActor {
    pub(super) fn new() -> StreamActor {
        StreamActor {
            buffer: Mutex::new(Buffer::default()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Serves `stream` from now on: whether it could (it is the newest).
    fn open(&self, stream: u64) -> bool {
        let served = self.buffer.lock().serves(stream);
        self.changed.notify_waiters(); // an older stream's waiters end
        served
    }

    /// Stores `frames` as items `first..` of `stream` (each once: a repeat is a retry's), then,
    /// with a `backpressure` limit, waits until the item after them may be made. `false` once
    /// the stream is over: stop. With `end`, the producer says it ended well, having made
    /// `first + frames.len()` items: once they are all stored, a take past them answers with
    /// none, and later puts (a retry's) are told to stop.
    async fn put(
        &self,
        stream: u64,
        first: u64,
        frames: Vec<Vec<u8>>,
        limit: Option<u64>,
        end: bool,
    ) -> bool {
        let last = first + frames.len().saturating_sub(1) as u64;
        let made = first + frames.len() as u64;
        {
            let mut buffer = self.buffer.lock();
            if !buffer.serves(stream) || buffer.finished || buffer.past_end(buffer.stored) {
                return false;
            }
            for (index, frame) in (first..).zip(frames) {
                if index >= buffer.stored {
                    buffer.items.entry(index).or_insert(frame);
                }
            }
            while buffer.items.contains_key(&buffer.stored) {
                buffer.stored += 1;
            }
            if end {
                buffer.end = Some(made);
            }
        }
        self.changed.notify_waiters();
        let Some(limit) = limit.filter(|_| !end) else {
            return true;
        };
        self.until(|buffer| {
            let over = buffer.stream != stream || buffer.finished;
            (over || last + 1 < buffer.taken + limit).then_some(!over)
        })
        .await
    }

    /// Takes items `from..` of `stream`: waits for item `from`, then takes it and the items
    /// stored after it, up to `most` items and [`TAKE_BYTES`] (always at least one), and says
    /// whether they are the last (the producer ended well, and none follows): none and `true`
    /// past the last. Fails once the stream is over without item `from`.
    async fn take(&self, stream: u64, from: u64, most: u64) -> Result<(Vec<Vec<u8>>, bool)> {
        let taken = self
            .until(|buffer| {
                if !buffer.serves(stream) {
                    return Some(Err(over(from, "a newer stream took its actor")));
                }
                if buffer.items.contains_key(&from) {
                    let mut items = Vec::new();
                    let mut bytes = 0;
                    let mut index = from;
                    while (items.len() as u64) < most.max(1) && bytes < TAKE_BYTES {
                        let Some(item) = buffer.items.remove(&index) else {
                            break;
                        };
                        bytes += item.len();
                        items.push(item);
                        index += 1;
                    }
                    buffer.taken += items.len() as u64;
                    let last = buffer.past_end(index);
                    return Some(Ok((items, last)));
                }
                if buffer.past_end(from) {
                    return Some(Ok((Vec::new(), true)));
                }
                (buffer.finished && from >= buffer.stored).then(|| {
                    let made = format!("its producer made {} items", buffer.stored);
                    Err(over(from, &made))
                })
            })
            .await;
        self.changed.notify_waiters(); // room for the producer
        taken
    }

    /// No item of `stream` arrives any more: how many were stored.
    fn finish(&self, stream: u64) -> u64 {
        let mut buffer = self.buffer.lock();
        if !buffer.serves(stream) {
            return 0;
        }
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

fn over(index: u64, why: &str) -> Error {
    Error::InvalidArgument(format!("the stream has no item {index}: {why}"))
}

// The stream actor as Ray's workers build and call it.

fn actor(this: &(dyn Any + Send + Sync)) -> Result<&StreamActor> {
    this.downcast_ref::<StreamActor>()
        .ok_or(Error::TypeMismatch {
            expected: type_name::<StreamActor>(),
            found: "another actor type",
        })
}

fn construct<'a>(args: &'a [u8]) -> BoxFuture<'a, Result<Box<dyn Any + Send + Sync>>> {
    Box::pin(async move {
        let () = entry::decode(args, &[])?;
        Ok(Box::new(StreamActor::new()) as Box<dyn Any + Send + Sync>)
    })
}

fn open<'a>(this: &'a (dyn Any + Send + Sync), args: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>> {
    Box::pin(async move {
        let (stream,): (u64,) = entry::decode(args, &[type_name::<u64>()])?;
        entry::encode(&actor(this)?.open(stream))
    })
}

fn put<'a>(this: &'a (dyn Any + Send + Sync), args: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>> {
    Box::pin(async move {
        let names = [
            type_name::<u64>(),
            type_name::<u64>(),
            type_name::<Vec<Vec<u8>>>(),
            type_name::<Option<u64>>(),
            type_name::<bool>(),
        ];
        let (stream, first, frames, limit, end): (u64, u64, Vec<Vec<u8>>, Option<u64>, bool) =
            entry::decode(args, &names)?;
        entry::encode(&actor(this)?.put(stream, first, frames, limit, end).await)
    })
}

fn take<'a>(this: &'a (dyn Any + Send + Sync), args: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>> {
    Box::pin(async move {
        let names = [type_name::<u64>(), type_name::<u64>(), type_name::<u64>()];
        let (stream, from, most): (u64, u64, u64) = entry::decode(args, &names)?;
        // The items' own frames, as the parts of the call's result: the consumer makes an
        // object of each (`remote.rs`).
        match actor(this)?.take(stream, from, most).await? {
            (items, true) => frame::join_last_parts(&items),
            (items, false) => frame::join_parts(&items),
        }
    })
}

fn finish<'a>(this: &'a (dyn Any + Send + Sync), args: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>> {
    Box::pin(async move {
        let (stream,): (u64,) = entry::decode(args, &[type_name::<u64>()])?;
        entry::encode(&actor(this)?.finish(stream))
    })
}

inventory::submit! { Registration::concurrent_actor_constructor(CONSTRUCTOR, construct) }
inventory::submit! { Registration::shared_actor_method(OPEN, open) }
inventory::submit! { Registration::shared_actor_method(PUT, put) }
inventory::submit! { Registration::shared_actor_method(TAKE, take) }
inventory::submit! { Registration::shared_actor_method(FINISH, finish) }
// Closing is finishing, for the consumer: the producer's next put is answered `false`.
inventory::submit! { Registration::shared_actor_method(CLOSE, finish) }

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
        let actor = StreamActor::new();
        block_on(async {
            assert!(actor.open(1));
            assert!(actor.put(1, 1, vec![vec![1]], None, false).await);
            assert_eq!(actor.buffer.lock().stored, 0, "item 0 has not arrived");
            assert!(actor.put(1, 0, vec![vec![0]], None, false).await);
            assert!(
                actor.put(1, 0, vec![vec![9]], None, false).await,
                "a retry's repeat"
            );
            assert_eq!(actor.buffer.lock().stored, 2);
            assert_eq!(actor.take(1, 0, 1).await.unwrap().0, [[0]]);
            assert_eq!(actor.take(1, 1, 1).await.unwrap().0, [[1]]);
            assert!(
                actor.put(1, 1, vec![vec![9]], None, false).await,
                "a repeat of a taken item"
            );
            assert_eq!(actor.finish(1), 2);
            let error = actor.take(1, 2, 8).await.unwrap_err();
            assert!(error.to_string().contains("no item 2"), "{error}");
            assert!(
                !actor.put(1, 2, vec![vec![2]], None, false).await,
                "nothing after the end"
            );
        });
    }

    #[test]
    fn a_batch_stores_its_items_in_order_past_those_already_there() {
        let actor = StreamActor::new();
        block_on(async {
            assert!(actor.put(3, 0, vec![vec![0], vec![1]], None, false).await);
            assert!(
                actor
                    .put(3, 1, vec![vec![8], vec![2], vec![3]], None, false)
                    .await
            );
            assert_eq!(actor.buffer.lock().stored, 4);
            for i in 0..4u8 {
                assert_eq!(actor.take(3, u64::from(i), 1).await.unwrap().0, [[i]]);
            }
        });
    }

    #[test]
    fn a_take_answers_the_items_stored_in_a_row_from_its_first_up_to_its_limits() {
        let actor = StreamActor::new();
        block_on(async {
            assert!(
                actor
                    .put(1, 0, vec![vec![0], vec![1], vec![2]], None, false)
                    .await
            );
            assert!(actor.put(1, 4, vec![vec![4]], None, false).await);
            assert_eq!(actor.take(1, 0, 2).await.unwrap().0, [[0], [1]]);
            // Item 3 has not arrived: the take stops before the gap.
            assert_eq!(actor.take(1, 2, 100).await.unwrap().0, [[2]]);
            assert!(actor.put(1, 3, vec![vec![3]], None, false).await);
            assert_eq!(actor.take(1, 3, 100).await.unwrap().0, [[3], [4]]);
            // Items of 600 KiB: the byte limit lets the second in and no third, and a limit of
            // none still takes one.
            let big = vec![vec![5; 600 << 10], vec![6; 600 << 10], vec![7; 600 << 10]];
            assert!(actor.put(1, 5, big, None, false).await);
            assert_eq!(actor.take(1, 5, 100).await.unwrap().0.len(), 2);
            assert_eq!(actor.take(1, 7, 0).await.unwrap().0[0][0], 7);
            assert_eq!(actor.buffer.lock().taken, 8);
        });
    }

    #[test]
    fn a_producers_end_ends_the_stream_once_its_items_are_stored() {
        block_on(async {
            let actor = Arc::new(StreamActor::new());
            assert!(actor.put(1, 0, vec![vec![0]], None, false).await);
            // The end (3 items) arrives before item 1 and 2, which travel beside it.
            assert!(actor.put(1, 3, Vec::new(), None, true).await);
            let past = {
                let actor = Arc::clone(&actor);
                tokio::spawn(async move { actor.take(1, 3, 8).await })
            };
            tokio::task::yield_now().await;
            assert!(!past.is_finished(), "items 1 and 2 are still on their way");
            assert!(actor.put(1, 1, vec![vec![1], vec![2]], None, false).await);
            assert_eq!(past.await.unwrap().unwrap(), (Vec::<Vec<u8>>::new(), true));
            assert_eq!(
                actor.take(1, 0, 8).await.unwrap(),
                (vec![vec![0], vec![1], vec![2]], true),
                "the last items, and it says so"
            );
            assert!(
                !actor.put(1, 0, vec![vec![9]], None, false).await,
                "a retry's put after the end is told to stop"
            );
            // Its last items in the end put itself, with backpressure: answered at once.
            assert!(actor.open(2));
            assert!(actor.put(2, 0, vec![vec![5], vec![6]], Some(1), true).await);
            assert_eq!(actor.take(2, 0, 1).await.unwrap(), (vec![vec![5]], false));
            assert_eq!(actor.take(2, 1, 1).await.unwrap(), (vec![vec![6]], true));
            assert!(actor.take(2, 2, 8).await.unwrap().0.is_empty());
            // A stream whose end came but whose items did not all arrive, finished by its
            // consumer: a take past what was stored fails (the producer's result says why).
            assert!(actor.open(3));
            assert!(actor.put(3, 0, vec![vec![7]], None, false).await);
            assert!(actor.put(3, 2, Vec::new(), None, true).await);
            assert_eq!(actor.finish(3), 1);
            assert_eq!(actor.take(3, 0, 8).await.unwrap().0, [[7]]);
            assert!(actor.take(3, 1, 8).await.is_err());
        });
    }

    #[test]
    fn a_put_answers_once_the_next_item_has_room() {
        block_on(async {
            let actor = Arc::new(StreamActor::new());
            let put = |index: u64| {
                let actor = Arc::clone(&actor);
                tokio::spawn(async move {
                    actor
                        .put(1, index, vec![vec![index as u8]], Some(2), false)
                        .await
                })
            };
            assert!(put(0).await.unwrap(), "room for item 1");
            let second = put(1);
            tokio::task::yield_now().await;
            assert!(!second.is_finished(), "two unconsumed: no room for item 2");
            assert_eq!(actor.take(1, 0, 1).await.unwrap().0, [[0]]);
            assert!(second.await.unwrap());
            let third = put(2);
            tokio::task::yield_now().await;
            actor.finish(1);
            assert!(!third.await.unwrap(), "the end stops a waiting producer");
        });
    }

    #[test]
    fn a_newer_stream_ends_the_older_ones_calls() {
        block_on(async {
            let actor = Arc::new(StreamActor::new());
            assert!(actor.put(1, 0, vec![vec![0]], None, false).await);
            let waiting = {
                let actor = Arc::clone(&actor);
                tokio::spawn(async move { actor.put(1, 1, vec![vec![1]], Some(1), false).await })
            };
            let taking = {
                let actor = Arc::clone(&actor);
                tokio::spawn(async move { actor.take(1, 5, 1).await })
            };
            tokio::task::yield_now().await;
            assert!(actor.open(2));
            assert!(!waiting.await.unwrap(), "the old producer stops");
            assert!(taking.await.unwrap().is_err(), "the old take ends");
            assert!(
                !actor.put(1, 2, vec![vec![2]], None, false).await,
                "a late put of the old stream"
            );
            assert!(!actor.open(1), "an older stream is not served again");
            assert!(actor.put(2, 0, vec![vec![7]], None, false).await);
            assert_eq!(
                actor.take(2, 0, 1).await.unwrap().0,
                [[7]],
                "the new stream's own item"
            );
        });
    }
}
