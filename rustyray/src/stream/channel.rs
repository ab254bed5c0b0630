//! The hand-off between a stream's producer and its consumer.
//!
//! The items go through a lock-free queue (crossbeam's `SegQueue`, the kind of list std's mpsc
//! channel uses), so neither side takes a lock to hand over or take an item. Everything else is
//! one word, `signal`: a count of changes (each `send`, the end, the close) and four flags
//! (`ENDED`, `CLOSED`, and who waits: `CONSUMER_WAITS`, `PRODUCER_WAITS`).
//!
//! - The producer pushes an item, then adds to the count. The add returns the flags: if the
//!   consumer said it waits, the producer wakes it. Only then does anyone take the lock.
//! - A consumer that finds the queue empty sets `CONSUMER_WAITS` (under the lock, with the
//!   condition variable's wait or its `Waker` next), then looks at the queue once more: an item
//!   pushed before its flag went up is seen now; one pushed after, the producer's add sees the
//!   flag and wakes it. Both are read-modify-writes of the same word, so one comes first, and
//!   neither wake-up can be lost (the lock makes the producer's wake wait until the consumer
//!   is really waiting).
//! - With a bound (backpressure), the producer waits the same way for room (`PRODUCER_WAITS`),
//!   and the consumer, after each item it takes, reads the flags with a read-modify-write
//!   (which orders it after the producer's flag) and wakes it.
//! - `close` (the consumer is gone) sets `CLOSED`, drops what is queued and wakes a producer
//!   waiting for room; `end` (the producer is done) queues its last item, sets `ENDED` and
//!   wakes a waiting consumer. After either, `send` refuses.
//!
//! The models at the bottom (`RUSTFLAGS="--cfg rustyray_loom"`) run both ends on two threads,
//! with a locked `VecDeque` standing in for the lock-free queue: what they check is the
//! protocol around it.

use std::task::{Context, Poll, Waker};

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Condvar, Mutex};

const CONSUMER_WAITS: u64 = 1;
const PRODUCER_WAITS: u64 = 2;
const ENDED: u64 = 4;
const CLOSED: u64 = 8;
/// One change of the count above the flags.
const CHANGE: u64 = 16;

/// The queue between one producer and one consumer.
pub(crate) struct Channel<I> {
    items: Queue<I>,
    /// The count of changes and the flags (see the module's notes).
    signal: AtomicU64,
    /// Items handed over in all, over every try of the producer (a retry skips that many).
    /// Written by the producer only.
    delivered: AtomicU64,
    /// The wakers of a side waiting in async code; held while a side decides to wait, so a
    /// wake-up from the other side comes after it waits.
    waiters: Mutex<Waiters>,
    changed: Condvar,
    /// How many items may wait unconsumed before the producer waits (`usize::MAX`: no limit).
    bound: usize,
}

#[derive(Default)]
struct Waiters {
    consumer: Option<Waker>,
    producer: Option<Waker>,
}

/// The item queue: lock-free, or, in the loom models, a locked `VecDeque` loom can see.
#[cfg(not(rustyray_loom))]
type Queue<I> = crossbeam_queue::SegQueue<I>;

#[cfg(rustyray_loom)]
struct Queue<I>(Mutex<std::collections::VecDeque<I>>);

#[cfg(rustyray_loom)]
impl<I> Queue<I> {
    fn new() -> Self {
        Queue(Mutex::new(std::collections::VecDeque::new()))
    }
    fn push(&self, item: I) {
        self.0.lock().push_back(item);
    }
    fn pop(&self) -> Option<I> {
        self.0.lock().pop_front()
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
    fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }
}

impl<I> Channel<I> {
    /// A channel holding at most `bound` unconsumed items (at least 1).
    pub(crate) fn new(bound: usize) -> Channel<I> {
        Channel {
            items: Queue::new(),
            signal: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            waiters: Mutex::new(Waiters::default()),
            changed: Condvar::new(),
            bound: bound.max(1),
        }
    }

    fn flags(&self) -> u64 {
        self.signal.load(Ordering::Acquire)
    }

    /// How many items were handed over so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// How many items wait unconsumed, and whether the producer is done.
    pub(crate) fn status(&self) -> (usize, bool) {
        (self.items.len(), self.flags() & ENDED != 0)
    }

    /// Whether the producer is done with the stream: ended, or the consumer is gone.
    fn over(flags: u64) -> bool {
        flags & (ENDED | CLOSED) != 0
    }

    /// Whether there is room for one more item.
    fn room(&self) -> bool {
        self.bound == usize::MAX || self.items.len() < self.bound
    }

    /// Producer: whether the next item may be made (`Ready(true)`), or the stream is over for
    /// it (`Ready(false)`: the consumer is gone or the stream was ended).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.flags() & PRODUCER_WAITS != 0 {
            // Left up by an earlier `Pending`: this poll decides afresh.
            self.signal.fetch_and(!PRODUCER_WAITS, Ordering::SeqCst);
        }
        if let Some(room) = self.try_room() {
            return Poll::Ready(room);
        }
        self.waiters.lock().producer = Some(cx.waker().clone());
        let flags = self.signal.fetch_or(PRODUCER_WAITS, Ordering::SeqCst);
        if Self::over(flags) || self.room() {
            self.signal.fetch_and(!PRODUCER_WAITS, Ordering::SeqCst);
            return Poll::Ready(!Self::over(flags));
        }
        Poll::Pending
    }

    /// Producer: whether the next item may be made (`Some(true)`), the stream is over for it
    /// (`Some(false)`), or it must wait (`None`).
    pub(crate) fn try_room(&self) -> Option<bool> {
        if Self::over(self.flags()) {
            return Some(false);
        }
        self.room().then_some(true)
    }

    /// Producer: blocks until the next item may be made (`true`) or the stream is over for it.
    pub(crate) fn wait_room(&self) -> bool {
        loop {
            if let Some(room) = self.try_room() {
                return room;
            }
            let mut waiters = self.waiters.lock();
            let flags = self.signal.fetch_or(PRODUCER_WAITS, Ordering::SeqCst);
            if !Self::over(flags) && !self.room() {
                self.changed.wait(&mut waiters);
            }
            self.signal.fetch_and(!PRODUCER_WAITS, Ordering::SeqCst);
        }
    }

    /// Producer: hands `item` over. `None` (the item dropped) if the stream is over for it;
    /// otherwise whether there is room for the next one already (so the producer need not ask).
    pub(crate) fn send(&self, item: I) -> Option<bool> {
        if Self::over(self.flags()) {
            return None;
        }
        self.items.push(item);
        let delivered = self.delivered.load(Ordering::Relaxed);
        self.delivered.store(delivered + 1, Ordering::Release);
        let flags = self.signal.fetch_add(CHANGE, Ordering::SeqCst);
        if flags & CONSUMER_WAITS != 0 {
            self.wake_consumer();
        }
        // Closed meanwhile: the item stays queued until the channel goes (its last handle is
        // the stream's), and the producer stops now.
        (flags & CLOSED == 0).then(|| self.room())
    }

    /// The producer is done; `last` (its failure, as an item) follows what is queued. Only the
    /// first call counts.
    pub(crate) fn end(&self, last: Option<I>) {
        let mut waiters = self.waiters.lock();
        if self.flags() & ENDED != 0 {
            return;
        }
        if let Some(last) = last.filter(|_| self.flags() & CLOSED == 0) {
            self.items.push(last);
        }
        let flags = self.signal.fetch_or(ENDED, Ordering::SeqCst);
        if flags & CONSUMER_WAITS != 0 {
            let consumer = waiters.consumer.take();
            drop(waiters);
            self.wake(consumer);
        }
    }

    /// Consumer: the next item, `Ready(None)` at the end, or `Pending` (woken when either comes).
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<I>> {
        if self.flags() & CONSUMER_WAITS != 0 {
            // Left up by an earlier `Pending`: this poll decides afresh.
            self.signal.fetch_and(!CONSUMER_WAITS, Ordering::SeqCst);
        }
        if let Some(taken) = self.try_next() {
            return Poll::Ready(taken);
        }
        self.waiters.lock().consumer = Some(cx.waker().clone());
        self.signal.fetch_or(CONSUMER_WAITS, Ordering::SeqCst);
        match self.try_next() {
            Some(taken) => {
                self.signal.fetch_and(!CONSUMER_WAITS, Ordering::SeqCst);
                Poll::Ready(taken)
            }
            None => Poll::Pending,
        }
    }

    /// Consumer: the next item without waiting: `Some(None)` at the end, `None` if none is there
    /// yet.
    pub(crate) fn try_next(&self) -> Option<Option<I>> {
        if let Some(item) = self.items.pop() {
            if self.bound != usize::MAX {
                // A read-modify-write, so it is ordered after a producer's flag going up.
                let flags = self.signal.fetch_or(0, Ordering::SeqCst);
                if flags & PRODUCER_WAITS != 0 {
                    self.wake_producer();
                }
            }
            return Some(Some(item));
        }
        if self.flags() & ENDED == 0 {
            return None;
        }
        // Ended: the last items were queued before the flag went up, so they are seen now.
        Some(self.items.pop())
    }

    /// Consumer: the next item if it comes within a few microseconds, checked with a bounded
    /// backoff (spinning, then yielding the thread) before the caller blocks. A producer
    /// that makes items about as fast as they are read would otherwise pay a futex wake-up
    /// for every item (std's and crossbeam's channels do the same).
    pub(crate) fn next_soon(&self) -> Option<Option<I>> {
        let backoff = crossbeam_utils::Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            if let Some(taken) = self.try_next() {
                return Some(taken);
            }
        }
        None
    }

    /// Consumer: blocks until the next item, or `None` at the end.
    pub(crate) fn next_blocking(&self) -> Option<I> {
        loop {
            if let Some(taken) = self.try_next() {
                return taken;
            }
            let mut waiters = self.waiters.lock();
            let flags = self.signal.fetch_or(CONSUMER_WAITS, Ordering::SeqCst);
            if flags & ENDED == 0 && self.items.is_empty() {
                self.changed.wait(&mut waiters);
            }
            self.signal.fetch_and(!CONSUMER_WAITS, Ordering::SeqCst);
        }
    }

    /// Consumer: it is gone. Drops what is queued and releases a producer waiting for room.
    pub(crate) fn close(&self) {
        let flags = self.signal.fetch_or(CLOSED, Ordering::SeqCst);
        while self.items.pop().is_some() {}
        if flags & PRODUCER_WAITS != 0 {
            self.wake_producer();
        }
    }

    fn wake_consumer(&self) {
        let consumer = self.waiters.lock().consumer.take();
        self.wake(consumer);
    }

    fn wake_producer(&self) {
        let producer = self.waiters.lock().producer.take();
        self.wake(producer);
    }

    /// Wakes the other side: its task if it waits in async code, its thread otherwise. Called
    /// after taking the lock, so a side about to wait on the condition variable waits already.
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
    /// consumer gets all three in order, then the end. Without the wake-up after a take, the
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

    /// Without a bound, a consumer that blocks is woken by each send: it gets both items in
    /// order while the producer has not ended, then the last item and the end. Without the
    /// producer's check of `CONSUMER_WAITS`, loom finds the consumer waiting for ever.
    #[test]
    fn loom_a_blocked_consumer_is_woken_by_each_item() {
        model(3, || {
            let channel = Arc::new(Channel::new(usize::MAX));
            let producer = {
                let channel = Arc::clone(&channel);
                thread::spawn(move || {
                    for i in 0..2 {
                        assert_eq!(channel.send(i), Some(true));
                    }
                })
            };
            assert_eq!(channel.next_blocking(), Some(0));
            assert_eq!(channel.next_blocking(), Some(1));
            producer.join().unwrap();
            channel.end(Some(9));
            assert_eq!(channel.next_blocking(), Some(9));
            assert_eq!(channel.next_blocking(), None);
        });
    }

    /// A consumer that goes away while the producer waits for room releases it, and it stops
    /// within one more item. Without the wake-up in `close`, loom reports the deadlock.
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
        });
    }
}
