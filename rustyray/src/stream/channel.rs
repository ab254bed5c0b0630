//! The hand-off between a stream's producer and its consumer.
//!
//! One lock guards the queue of items handed over and the flags of both ends; whoever changes
//! what the other side waits for wakes it after letting the lock go: by its `Waker` when it
//! waits in async code, and through the condition variable when it blocks a thread. Each side
//! checks what it waits for under the lock before it waits, so no wake-up is lost.
//!
//! - The producer waits for room (fewer than `bound` items unconsumed) before it makes the next
//!   item, so it never runs more than `bound` items ahead of the consumer.
//! - The consumer waits for an item or the end.
//! - `close` (the consumer is gone) drops the queued items and wakes a producer waiting for
//!   room; `end` (the producer is done) wakes a waiting consumer. After either, `send` refuses.
//!
//! The model at the bottom (`RUSTFLAGS="--cfg rustyray_loom"`) runs both ends on two threads.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use crate::sync::{Condvar, Mutex};

/// The queue between one producer and one consumer.
pub(crate) struct Channel<I> {
    inner: Mutex<Inner<I>>,
    changed: Condvar,
    /// How many items may wait unconsumed before the producer waits (`usize::MAX`: no limit).
    bound: usize,
}

struct Inner<I> {
    items: VecDeque<I>,
    /// Items handed over in all, over every try of the producer (a retry skips that many).
    delivered: u64,
    /// The producer is done: no item follows those queued.
    ended: bool,
    /// The consumer is gone.
    closed: bool,
    consumer: Option<Waker>,
    producer: Option<Waker>,
}

impl<I> Channel<I> {
    /// A channel holding at most `bound` unconsumed items (at least 1).
    pub(crate) fn new(bound: usize) -> Channel<I> {
        Channel {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                delivered: 0,
                ended: false,
                closed: false,
                consumer: None,
                producer: None,
            }),
            changed: Condvar::new(),
            bound: bound.max(1),
        }
    }

    /// How many items were handed over so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.inner.lock().delivered
    }

    /// How many items wait unconsumed, and whether the producer is done.
    pub(crate) fn status(&self) -> (usize, bool) {
        let inner = self.inner.lock();
        (inner.items.len(), inner.ended)
    }

    /// Producer: whether the next item may be made (`Ready(true)`), or the stream is over for
    /// it (`Ready(false)`: the consumer is gone or the stream was ended).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut inner = self.inner.lock();
        if inner.closed || inner.ended {
            return Poll::Ready(false);
        }
        if inner.items.len() < self.bound {
            return Poll::Ready(true);
        }
        inner.producer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Producer: whether the next item may be made (`Some(true)`), the stream is over for it
    /// (`Some(false)`), or it must wait (`None`).
    pub(crate) fn try_room(&self) -> Option<bool> {
        let inner = self.inner.lock();
        if inner.closed || inner.ended {
            return Some(false);
        }
        (inner.items.len() < self.bound).then_some(true)
    }

    /// Producer: blocks until the next item may be made (`true`) or the stream is over for it.
    pub(crate) fn wait_room(&self) -> bool {
        let mut inner = self.inner.lock();
        loop {
            if inner.closed || inner.ended {
                return false;
            }
            if inner.items.len() < self.bound {
                return true;
            }
            self.changed.wait(&mut inner);
        }
    }

    /// Producer: hands `item` over. `None` (the item dropped) if the stream is over for it;
    /// otherwise whether there is room for the next one already (so the producer need not ask).
    pub(crate) fn send(&self, item: I) -> Option<bool> {
        let mut inner = self.inner.lock();
        if inner.closed || inner.ended {
            return None;
        }
        inner.items.push_back(item);
        inner.delivered += 1;
        let room = inner.items.len() < self.bound;
        let consumer = inner.consumer.take();
        drop(inner);
        self.wake(consumer);
        Some(room)
    }

    /// The producer is done; `last` (its failure, as an item) follows what is queued. Only the
    /// first call counts.
    pub(crate) fn end(&self, last: Option<I>) {
        let mut inner = self.inner.lock();
        if inner.ended {
            return;
        }
        inner.ended = true;
        if let Some(last) = last.filter(|_| !inner.closed) {
            inner.items.push_back(last);
        }
        let consumer = inner.consumer.take();
        drop(inner);
        self.wake(consumer);
    }

    /// Consumer: the next item, `Ready(None)` at the end, or `Pending` (woken when either comes).
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<I>> {
        let mut inner = self.inner.lock();
        match self.take(&mut inner) {
            Some(taken) => Poll::Ready(taken),
            None => {
                inner.consumer = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Consumer: the next item without waiting: `Some(None)` at the end, `None` if none is there
    /// yet. Without a bound, the items queued behind it are moved to `rest` too (which must be
    /// empty), so the consumer takes the lock once per batch rather than once per item.
    pub(crate) fn try_next(&self, rest: &mut VecDeque<I>) -> Option<Option<I>> {
        let mut inner = self.inner.lock();
        let taken = self.take(&mut inner);
        if self.bound == usize::MAX && !inner.items.is_empty() {
            std::mem::swap(&mut inner.items, rest);
        }
        taken
    }

    /// Consumer: the next item if it comes within a few microseconds, checked with a bounded
    /// backoff (spinning, then yielding the thread) before the caller blocks. A producer
    /// that makes items about as fast as they are read would otherwise pay a futex wake-up
    /// for every item (std's and crossbeam's channels do the same).
    pub(crate) fn next_soon(&self, rest: &mut VecDeque<I>) -> Option<Option<I>> {
        let backoff = crossbeam_utils::Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            if let Some(taken) = self.try_next(rest) {
                return Some(taken);
            }
        }
        None
    }

    /// Consumer: blocks until the next item, or `None` at the end.
    pub(crate) fn next_blocking(&self) -> Option<I> {
        let mut inner = self.inner.lock();
        loop {
            if let Some(taken) = self.take(&mut inner) {
                return taken;
            }
            self.changed.wait(&mut inner);
        }
    }

    /// Pops the next item (waking a producer waiting for room), or tells the end; `None` when
    /// the consumer must wait.
    fn take(&self, inner: &mut crate::sync::MutexGuard<'_, Inner<I>>) -> Option<Option<I>> {
        if let Some(item) = inner.items.pop_front() {
            if inner.items.len() + 1 == self.bound {
                let producer = inner.producer.take();
                // Woken under the lock here (rarely: only when the producer was held back);
                // it rechecks under the same lock, so the order does not matter.
                self.wake(producer);
            }
            return Some(Some(item));
        }
        inner.ended.then_some(None)
    }

    /// Consumer: it is gone. Drops what is queued and releases a producer waiting for room.
    pub(crate) fn close(&self) {
        let mut inner = self.inner.lock();
        inner.closed = true;
        let items = std::mem::take(&mut inner.items);
        let producer = inner.producer.take();
        drop(inner);
        drop(items);
        self.wake(producer);
    }

    /// Wakes the other side: its task if it waits in async code, its thread otherwise.
    fn wake(&self, waker: Option<Waker>) {
        if let Some(waker) = waker {
            waker.wake();
        }
        self.changed.notify_all();
    }
}

#[cfg(all(test, rustyray_loom))]
mod loom {
    use std::sync::Arc;

    use super::Channel;
    use crate::sync::{model, thread};

    /// Three items through a channel of one: the producer waits for room each time; the
    /// consumer gets all three in order, then the end. Without the wake-up in `take`, the
    /// producer waits for ever and loom reports the deadlock.
    #[test]
    fn loom_items_pass_in_order_under_backpressure() {
        model(3, || {
            let channel = Arc::new(Channel::new(1));
            let producer = {
                let channel = Arc::clone(&channel);
                thread::spawn(move || {
                    for i in 0..3 {
                        assert!(channel.wait_room());
                        assert!(channel.send(i).is_some());
                    }
                    channel.end(None);
                })
            };
            let got: Vec<u32> = std::iter::from_fn(|| channel.next_blocking()).collect();
            assert_eq!(got, [0, 1, 2]);
            producer.join().unwrap();
        });
    }

    /// A consumer that goes away while the producer waits for room releases it, and nothing
    /// is sent after. Without the wake-up in `close`, loom reports the deadlock.
    #[test]
    fn loom_closing_releases_a_waiting_producer() {
        model(3, || {
            let channel = Arc::new(Channel::new(1));
            let producer = {
                let channel = Arc::clone(&channel);
                thread::spawn(move || {
                    let mut sent = 0;
                    while channel.wait_room() && channel.send(sent).is_some() {
                        sent += 1;
                    }
                    sent
                })
            };
            channel.close();
            let sent = producer.join().unwrap();
            assert!(
                sent <= 1,
                "at most one item fits before the close is seen: {sent}"
            );
            assert_eq!(
                channel.try_next(&mut std::collections::VecDeque::new()),
                None,
                "nothing stays queued after a close"
            );
        });
    }
}
