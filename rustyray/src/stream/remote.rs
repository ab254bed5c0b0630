//! A stream whose producer runs in another process (a Ray worker): its items go through a
//! stream actor (`actor.rs`) that the consumer's process keeps.
//!
//! # Design
//!
//! Ray's C++ API has no streaming generators, and an object a worker `put`s belongs to that
//! worker: it is freed once the producer's task ends. So the items travel through a *stream
//! actor* (DESIGN.md §4):
//!
//! - **The producer** (a task or an actor call, anywhere on the cluster) gets a
//!   [`StreamFeed`] as its last argument: the actor's handle, the stream's number and the
//!   backpressure. Its sink puts items `i..` as `put(stream, i, frames)` (`feeder.rs`: without
//!   backpressure in batches, one call in flight; with backpressure `n` one by one, each answered
//!   once the next item may be made, fewer than `n` being unconsumed). The actor keeps items by
//!   index, so calls that Ray runs side by side, or a retry's items already delivered, change
//!   nothing. An answer that says the stream is over stops the producer at its next item.
//! - **The consumer** takes items `i..` with `take(stream, i, most)`, a call that waits for
//!   item `i` and answers with it and the items stored in a row after it, up to `most` (and
//!   1 MiB), as the *parts* of its result, as a `num_returns` call's result holds its fields
//!   (`frame::join_parts`). Each part becomes an object of its own, which the consumer owns,
//!   usable as soon as it exists, on any node (`Backend::split_counted`), and gone from the
//!   actor. Without backpressure, `most` is [`TAKE_MOST`] and the next take is sent as soon as
//!   one answers, so one round trip brings every item made meanwhile and items come as fast as
//!   they are made; with it, `most` is 1 and a take is sent only when the consumer asks, so
//!   room is made for the producer only as items are taken. `next` waits for either the take
//!   or the producer's own result. A producer that ends well tells the actor how many items
//!   it made, beside its last put rather than after it; once they are all stored, the take
//!   that answers with the last of them says so (`frame::join_last_parts`), as does one past
//!   them, with none: the stream ends there, without a round trip for the producer's result.
//!   Any other end is read from the producer's result, the truth for it whatever ended it (an
//!   error, a panic, its worker's death): once the producer ended, `finish` tells the actor so
//!   and answers how many items it stored, and the consumer takes those, then ends, with the
//!   producer's error as a last failed item if it failed. An item is given once its take
//!   answered.
//! - **Dropping the stream** closes it in the actor: the producer's next put is answered
//!   "over" and it stops. The actor then serves the process's next stream: starting an actor
//!   (a Ray worker process) takes a second; reusing one costs nothing if it answered within
//!   [`FRESH`], else a round trip that checks it is alive (see [`reused`]). Items the consumer
//!   took stay: they are results of its own calls.
//!
//! The actor holds a thread per call that waits (Ray's C++ actors are threaded): the take, a
//! put waiting for room, so it asks for [`THREADS`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::actor::{StreamActor, CLOSE, CONSTRUCTOR, FINISH, OPEN, TAKE};
use crate::actor::{ActorBuilder, ActorHandle, ActorOptions};
use crate::error::Error;
use crate::object_ref::ObjectRef;
use crate::object_store::Value;
use crate::task::BoxFuture;

/// The most items a consumer without backpressure takes in one call.
const TAKE_MOST: u64 = 1024;

/// The stream actor's threads: the waiting `take`, a put (waiting for room, with
/// backpressure), `finish`, `close` and `open`, and room for a dropped stream's calls that
/// have not ended yet.
const THREADS: usize = 8;

/// How many idle stream actors a process keeps for its next streams.
const IDLE: usize = 8;

/// How long after its last answer an idle stream actor is taken for alive without asking.
const FRESH: Duration = Duration::from_secs(1);

/// The stream actors of this process that serve no stream now, each with when it last
/// answered a call of its stream.
static IDLE_ACTORS: Mutex<Vec<(ActorHandle<StreamActor>, Option<Instant>)>> =
    Mutex::new(Vec::new());

/// The number of this process's last stream.
static STREAMS: AtomicU64 = AtomicU64::new(0);

/// What a producer in another process is given, as its call's last argument: where its items
/// go.
#[doc(hidden)]
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StreamFeed {
    pub(super) actor: ActorHandle<StreamActor>,
    pub(super) stream: u64,
    pub(super) backpressure: Option<u64>,
}

/// Opens a stream in an actor of this process (an idle one, or a new one): the feed its
/// producer is sent, and the consumer's end.
pub(super) fn open<T: Value>(backpressure: Option<usize>) -> (StreamFeed, Consumer<T>) {
    let stream = STREAMS.fetch_add(1, Ordering::Relaxed) + 1;
    let actor = reused(stream).unwrap_or_else(|| {
        ActorBuilder::<StreamActor>::new("StreamActor")
            .registered(CONSTRUCTOR)
            .concurrent()
            .options(ActorOptions::default().max_concurrency(THREADS))
            .spawn(|| Ok(StreamActor::new()))
    });
    let feed = StreamFeed {
        actor: actor.clone(),
        stream,
        backpressure: backpressure.map(|n| n as u64),
    };
    let consumer = Consumer {
        actor: Some(actor),
        stream,
        given: 0,
        ready: VecDeque::new(),
        taking: None,
        total: None,
        ended: false,
        broken: false,
        backpressure: backpressure.is_some(),
        answered: None,
        ended_well: false,
    };
    (feed, consumer)
}

/// An idle actor of this runtime, now serving `stream`; none if there is none that answers.
///
/// One that answered its last stream within [`FRESH`] is taken as it is: the new stream's
/// first calls make it serve that stream. An older one is asked first (`open`, a round trip),
/// so that a stream does not start on an actor that died idle (its node was lost). Either way
/// an actor that dies while it serves a stream fails that stream's next item with the actor's
/// death.
fn reused(stream: u64) -> Option<ActorHandle<StreamActor>> {
    let runtime = crate::runtime::current().id();
    loop {
        let (actor, answered) = {
            let mut idle = IDLE_ACTORS.lock();
            idle.retain(|(actor, _)| actor.id().owner == runtime);
            idle.pop()?
        };
        if answered.is_some_and(|at| at.elapsed() < FRESH) {
            return Some(actor);
        }
        let mut call = actor.call("open").registered(OPEN);
        let _stream = call.arg(stream);
        // An actor that died idle (its node was lost) is left.
        if crate::api::get(&call.spawn_shared(runs_there)) == Ok(true) {
            return Some(actor);
        }
    }
}

/// The local body of a call that runs in the stream actor's process: never run here.
pub(super) fn runs_there<R>(_: &StreamActor) -> BoxFuture<'_, anyhow::Result<R>> {
    Box::pin(async { anyhow::bail!("a call to a stream's actor ran in the consumer's process") })
}

/// The consumer's end: takes the items from the actor, in order.
pub(super) struct Consumer<T> {
    /// The actor (given back to the idle ones when the stream drops).
    actor: Option<ActorHandle<StreamActor>>,
    stream: u64,
    /// How many items the consumer was given.
    given: u64,
    /// Items taken from the actor and not given yet, the next one first.
    ready: VecDeque<ObjectRef<T>>,
    /// The `take` in flight: its answer holds items `given + ready.len()..` as its parts.
    taking: Option<ObjectRef<()>>,
    /// How many items there are, once the producer ended.
    total: Option<u64>,
    /// Whether the stream ended for the consumer.
    ended: bool,
    /// The actor failed: it serves no other stream.
    broken: bool,
    /// Whether the producer waits for the consumer (`backpressure`).
    backpressure: bool,
    /// When the actor last answered a take.
    answered: Option<Instant>,
    /// The actor said the producer ended well after `total` items.
    ended_well: bool,
}

impl<T: Value> Consumer<T> {
    fn actor(&self) -> &ActorHandle<StreamActor> {
        self.actor
            .as_ref()
            .expect("the actor is given back only on drop")
    }

    /// The next item, waiting for it or for the producer (whose result is `producer`) to end.
    /// The last item of a failed producer fails with its error.
    pub(super) fn next(&mut self, producer: &ObjectRef<()>) -> Option<ObjectRef<T>> {
        loop {
            // Ended also by a failed item (`end`), with items of its take left.
            if self.ended {
                return None;
            }
            if let Some(item) = self.ready.pop_front() {
                self.given += 1;
                // Without backpressure, the next items are asked for while this one is used.
                if !self.backpressure {
                    self.keep_taking();
                }
                return Some(item);
            }
            if self.total.is_some_and(|total| self.given >= total) {
                // A take sent past the last item fails: drop it.
                self.taking = None;
                self.ended = true;
                if self.ended_well {
                    return None;
                }
                return crate::api::get(producer).err().map(failed);
            }
            self.keep_taking();
            let mut taking = self.taking.take().expect("a take is in flight");
            if self.total.is_none() {
                let both = [taking, producer.clone()];
                let (ready, _) = crate::api::wait(&both, 1, None);
                [taking, _] = both;
                if !ready.iter().any(|r| r.id() == taking.id()) {
                    // The producer ended: all it stored is in the actor.
                    self.taking = Some(taking);
                    if let Err(error) = self.finish() {
                        return Some(self.break_off(error));
                    }
                    continue;
                }
            }
            // The take answers (the item it waits for is stored, or the stream is over).
            let shared = crate::runtime::current();
            let whole = taking.cell_or_missing(shared.id()).cloned();
            match whole.and_then(|whole| shared.backend().split_counted(&shared, &whole)) {
                Ok((parts, last)) => {
                    self.answered = Some(Instant::now());
                    // The last items of a producer that ended well (or none past them): the
                    // stream ends after them, without waiting for the producer's result to
                    // reach this process.
                    if last {
                        let from = self.given + self.ready.len() as u64;
                        self.total = Some(from + parts.len() as u64);
                        self.ended_well = true;
                    }
                    self.ready
                        .extend(parts.into_iter().map(ObjectRef::from_new_cell));
                }
                Err(error) => return Some(self.break_off(error)),
            }
        }
    }

    /// Sends a `take` of the items after those in hand, unless one is in flight or all were
    /// taken. Without backpressure it takes as many as the actor holds (up to its limits), so
    /// a consumer that fell behind catches up in one round trip; with it, one, so that room is
    /// made for the producer only as the consumer takes each item.
    fn keep_taking(&mut self) {
        let from = self.given + self.ready.len() as u64;
        if self.taking.is_some() || self.total.is_some_and(|total| from >= total) {
            return;
        }
        let most: u64 = if self.backpressure { 1 } else { TAKE_MOST };
        let mut call = self.actor().call("take").registered(TAKE);
        let _stream = call.arg(self.stream);
        let _from = call.arg(from);
        let _most = call.arg(most);
        self.taking = Some(call.spawn_shared(runs_there));
    }

    /// Tells the actor that no item comes any more, and learns how many were stored.
    fn finish(&mut self) -> crate::Result<()> {
        let mut finish = self.actor().call("finish").registered(FINISH);
        let _stream = finish.arg(self.stream);
        let finish: ObjectRef<u64> = finish.spawn_shared(runs_there);
        self.total = Some(crate::api::get(&finish)?);
        Ok(())
    }

    /// The actor failed: the stream ends with `error` as its last item.
    fn break_off(&mut self, error: Error) -> ObjectRef<T> {
        self.ended = true;
        self.broken = true;
        self.taking = None;
        failed(error)
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
        let Some(actor) = self.actor.take() else {
            return;
        };
        if self.broken {
            let _ = crate::actor::kill(&actor);
            return;
        }
        if !self.ended {
            // The producer stops at its next put.
            let mut close = actor.call("close").registered(CLOSE);
            let _stream = close.arg(self.stream);
            let _closing: ObjectRef<u64> = close.spawn_shared(runs_there);
        }
        let mut idle = IDLE_ACTORS.lock();
        if idle.len() < IDLE {
            idle.push((actor, self.answered));
        } else {
            drop(idle);
            let _ = crate::actor::kill(&actor);
        }
    }
}

fn failed<T>(error: Error) -> ObjectRef<T> {
    ObjectRef::from_new_cell(crate::runtime::current().store().insert_failed(error))
}
