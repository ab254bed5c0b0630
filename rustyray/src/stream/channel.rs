//! The hand-off between a stream's producer and its consumer.
//!
//! The items go through [`queue`](super::queue)'s rings, whose two ends are owned by the two
//! sides ([`Tx`] by the producer's sink, [`Rx`] by the stream), so handing over an item takes
//! no lock and writes nothing the other side reads but the ring's own position. Everything
//! else is one word, `signal`, of four flags: `ENDED`, `CLOSED`, and who waits
//! (`CONSUMER_WAITS`, `PRODUCER_WAITS`). It shares a cache line with `delivered`, both read or
//! written by the producer at every item; the consumer's count, `taken`, has a line of its own.
//!
//! Who waits is decided as in Dekker's algorithm, each side writing one thing and then reading
//! the other's: the producer pushes an item and then reads the flags; a consumer about to wait
//! sets `CONSUMER_WAITS` and then looks at the queue. One of the two must see the other's
//! write. That takes a full fence between the write and the read on *both* sides, and a fence
//! at every item was the producer's largest cost (the flag's read-modify-write took 92% of
//! `send`, waiting for the item's stores to leave the core). So the fence is asymmetric
//! (`sync::asymmetric`): the producer's is a compiler fence; the consumer, which waits rarely,
//! pays for both with a `membarrier` system call (about 0.3 µs) that makes every thread of the
//! process pass a full fence. Where the OS has no `membarrier`, both are plain fences.
//!
//! - The producer pushes an item, fences (light), reads the flags: if the consumer said it
//!   waits, the producer wakes it (taking the lock, so the wake comes after the consumer is
//!   really waiting).
//! - A consumer that finds the queue empty spins a little on the queue alone (it does not read
//!   `signal`, so the producer's line stays on its core). Then, under the lock, it sets
//!   `CONSUMER_WAITS`, fences (heavy) and looks at the queue once more: an item pushed before
//!   is seen now, or the producer sees the flag. It then waits on the condition variable (or
//!   returns `Pending` with its `Waker` left under the lock).
//! - With a bound (backpressure), the producer waits the same way for room (`PRODUCER_WAITS`,
//!   heavy fence), and the consumer, after each item it takes, fences (light) and reads the
//!   flags to wake it. Room is `delivered - taken`.
//! - `close` (the consumer is gone) sets `CLOSED`, drops what is queued and wakes a producer
//!   waiting for room; `end` (the producer is done, or was cancelled from another thread)
//!   keeps its last item aside, sets `ENDED` and wakes a waiting consumer, which takes what is
//!   queued and then the last item. Both are read-modify-writes of `signal`, as is the waiting
//!   side's flag, so each sees the other. After either, `send` refuses.
//!
//! The models at the bottom (`--cfg rustyray_loom`, `.ci/loom`) run both ends on two threads,
//! with rings of one or two slots so that the producer moves on to new rings, and the
//! asymmetric fences as the two `SeqCst` fences they stand for. Each fails if one of the four
//! fences is removed.

use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;

use super::queue::{queue, Rings, Rx, Tx};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{asymmetric, Condvar, Mutex};

const CONSUMER_WAITS: u64 = 1;
const PRODUCER_WAITS: u64 = 2;
const ENDED: u64 = 4;
const CLOSED: u64 = 8;

/// The queue between one producer and one consumer.
pub(crate) struct Channel<I> {
    /// What the producer writes at every item.
    hot: CachePadded<Hot>,
    /// Items taken by the consumer (written by it only).
    taken: CachePadded<AtomicU64>,
    rings: Rings<I>,
    /// The producer's end while no try of the producer holds it.
    tx: Mutex<Option<Tx<I>>>,
    /// Held while a side decides to wait, so a wake-up from the other side comes after it
    /// waits.
    slow: Mutex<Slow<I>>,
    changed: Condvar,
    /// How many items may wait unconsumed before the producer waits (`u64::MAX`: no limit).
    bound: u64,
}

/// The consumer's end of a channel.
pub(crate) struct Receiver<I> {
    rx: Rx<I>,
    /// Whether it saw the end: an item a cancelled producer pushes after is never taken.
    done: bool,
    /// Whether a poll left `CONSUMER_WAITS` up (taken down at the next poll that gets an item,
    /// so the producer stops taking the lock to wake nobody).
    flagged: bool,
}

/// The producer's words.
struct Hot {
    /// The flags (see the module's notes).
    signal: AtomicU64,
    /// Items handed over in all, over every try of the producer (a retry skips that many).
    delivered: AtomicU64,
}

/// What the slow paths share, under the lock.
struct Slow<I> {
    /// The wakers of a side waiting in async code.
    consumer: Option<Waker>,
    producer: Option<Waker>,
    /// The producer's last item (its failure), taken after everything queued.
    last: Option<I>,
}

impl<I> Channel<I> {
    /// A channel holding at most `bound` unconsumed items (at least 1), and its consumer's end.
    pub(crate) fn new(bound: usize) -> (Channel<I>, Receiver<I>) {
        let (rings, tx, rx) = queue();
        let channel = Channel {
            hot: CachePadded::new(Hot {
                signal: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
            }),
            taken: CachePadded::new(AtomicU64::new(0)),
            rings,
            tx: Mutex::new(Some(tx)),
            slow: Mutex::new(Slow {
                consumer: None,
                producer: None,
                last: None,
            }),
            changed: Condvar::new(),
            bound: u64::try_from(bound.max(1)).unwrap_or(u64::MAX),
        };
        let rx = Receiver {
            rx,
            done: false,
            flagged: false,
        };
        (channel, rx)
    }

    fn signal(&self) -> &AtomicU64 {
        &self.hot.signal
    }

    fn flags(&self) -> u64 {
        self.signal().load(Ordering::Acquire)
    }

    /// How many items were handed over so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.hot.delivered.load(Ordering::Acquire)
    }

    /// How many items wait unconsumed.
    fn unconsumed(&self) -> u64 {
        let taken = self.taken.load(Ordering::Acquire);
        self.delivered().saturating_sub(taken)
    }

    /// How many items wait unconsumed, and whether the producer is done.
    pub(crate) fn status(&self) -> (usize, bool) {
        let unconsumed = usize::try_from(self.unconsumed()).unwrap_or(usize::MAX);
        (unconsumed, self.flags() & ENDED != 0)
    }

    /// Whether the producer is done with the stream: ended, or the consumer is gone.
    fn over(flags: u64) -> bool {
        flags & (ENDED | CLOSED) != 0
    }

    /// Whether there is room for one more item.
    fn room(&self) -> bool {
        self.bound == u64::MAX || self.unconsumed() < self.bound
    }

    /// Producer: its end of the queue, for one try (given back with [`give_back`]).
    ///
    /// [`give_back`]: Self::give_back
    pub(crate) fn take_tx(&self) -> Option<Tx<I>> {
        self.tx.lock().take()
    }

    /// Producer: a try is over; the next one takes the end up where it left off. Dropped if
    /// the consumer is gone.
    pub(crate) fn give_back(&self, tx: Tx<I>) {
        let mut slot = self.tx.lock();
        if self.flags() & CLOSED == 0 {
            *slot = Some(tx);
        }
    }

    /// Producer: whether the next item may be made (`Ready(true)`), or the stream is over for
    /// it (`Ready(false)`: the consumer is gone or the stream was ended).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.flags() & PRODUCER_WAITS != 0 {
            // Left up by an earlier `Pending`: this poll decides afresh.
            self.signal().fetch_and(!PRODUCER_WAITS, Ordering::SeqCst);
        }
        if let Some(room) = self.try_room() {
            return Poll::Ready(room);
        }
        self.slow.lock().producer = Some(cx.waker().clone());
        let flags = self.signal().fetch_or(PRODUCER_WAITS, Ordering::SeqCst);
        asymmetric::heavy();
        if Self::over(flags) || self.room() {
            self.signal().fetch_and(!PRODUCER_WAITS, Ordering::SeqCst);
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
            let mut slow = self.slow.lock();
            let flags = self.signal().fetch_or(PRODUCER_WAITS, Ordering::SeqCst);
            asymmetric::heavy();
            if !Self::over(flags) && !self.room() {
                self.changed.wait(&mut slow);
            }
            self.signal().fetch_and(!PRODUCER_WAITS, Ordering::SeqCst);
        }
    }

    /// Producer: hands `item` over. `None` (the item dropped) if the stream is over for it;
    /// otherwise whether there is room for the next one already (so the producer need not ask).
    pub(crate) fn send(&self, tx: &mut Tx<I>, item: I) -> Option<bool> {
        if Self::over(self.flags()) {
            return None;
        }
        tx.push(&self.rings, item);
        let delivered = self.hot.delivered.load(Ordering::Relaxed);
        self.hot.delivered.store(delivered + 1, Ordering::Release);
        // Pairs with the heavy fence of a consumer about to wait (see the module's notes).
        asymmetric::light();
        let flags = self.flags();
        if flags & CONSUMER_WAITS != 0 {
            self.wake_consumer();
        }
        // Closed meanwhile: the item stays queued until both ends are gone, and the producer
        // stops now.
        (flags & CLOSED == 0).then(|| self.room())
    }

    /// The producer is done; `last` (its failure, as an item) follows what is queued. Only the
    /// first call counts. It may come from another thread than the producer's (a cancel).
    pub(crate) fn end(&self, last: Option<I>) {
        let mut slow = self.slow.lock();
        let flags = self.flags();
        if flags & ENDED != 0 {
            return;
        }
        if flags & CLOSED == 0 {
            slow.last = last;
        }
        let flags = self.signal().fetch_or(ENDED, Ordering::SeqCst);
        if flags & CONSUMER_WAITS != 0 {
            let consumer = slow.consumer.take();
            drop(slow);
            self.wake(consumer);
        }
    }

    /// Consumer: the next queued item, if there is one.
    fn take(&self, rx: &mut Receiver<I>) -> Option<I> {
        if rx.done {
            return None;
        }
        let item = rx.rx.pop(&self.rings)?;
        let taken = self.taken.load(Ordering::Relaxed);
        self.taken.store(taken + 1, Ordering::Release);
        if self.bound != u64::MAX {
            // Pairs with the heavy fence of a producer about to wait for room.
            asymmetric::light();
            if self.flags() & PRODUCER_WAITS != 0 {
                self.wake_producer();
            }
        }
        Some(item)
    }

    /// Consumer: the next item without waiting: `Some(None)` at the end, `None` if none is there
    /// yet.
    pub(crate) fn try_next(&self, rx: &mut Receiver<I>) -> Option<Option<I>> {
        if let Some(item) = self.take(rx) {
            return Some(Some(item));
        }
        if self.flags() & ENDED == 0 {
            return None;
        }
        // Ended: what was queued before is seen now, then the last item, then nothing.
        let item = self.take(rx);
        if item.is_some() {
            return Some(item);
        }
        rx.done = true;
        Some(self.slow.lock().last.take())
    }

    /// Consumer: [`try_next`](Self::try_next), but an item that comes within a few
    /// microseconds is waited for, with a bounded backoff (spinning, then yielding the thread)
    /// on the queue alone, before the caller blocks. A producer that makes items about as fast
    /// as they are read would otherwise pay a futex wake-up for every item (std's and
    /// crossbeam's channels do the same).
    pub(crate) fn next_soon(&self, rx: &mut Receiver<I>) -> Option<Option<I>> {
        if let Some(item) = self.take(rx) {
            return Some(Some(item));
        }
        let backoff = crossbeam_utils::Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            if let Some(item) = self.take(rx) {
                return Some(Some(item));
            }
        }
        self.try_next(rx)
    }

    /// Consumer: blocks until the next item, or `None` at the end.
    pub(crate) fn next_blocking(&self, rx: &mut Receiver<I>) -> Option<I> {
        loop {
            if let Some(taken) = self.try_next(rx) {
                return taken;
            }
            let mut slow = self.slow.lock();
            let flags = self.signal().fetch_or(CONSUMER_WAITS, Ordering::SeqCst);
            asymmetric::heavy();
            if flags & ENDED == 0 && rx.rx.is_empty(&self.rings) {
                self.changed.wait(&mut slow);
            }
            self.signal().fetch_and(!CONSUMER_WAITS, Ordering::SeqCst);
        }
    }

    /// Consumer: the next item, `Ready(None)` at the end, or `Pending` (woken when either comes).
    pub(crate) fn poll_next(&self, rx: &mut Receiver<I>, cx: &mut Context<'_>) -> Poll<Option<I>> {
        if std::mem::take(&mut rx.flagged) {
            // Left up by an earlier `Pending`: this poll decides afresh.
            self.signal().fetch_and(!CONSUMER_WAITS, Ordering::SeqCst);
        }
        if let Some(taken) = self.try_next(rx) {
            return Poll::Ready(taken);
        }
        self.slow.lock().consumer = Some(cx.waker().clone());
        self.signal().fetch_or(CONSUMER_WAITS, Ordering::SeqCst);
        asymmetric::heavy();
        match self.try_next(rx) {
            Some(taken) => {
                self.signal().fetch_and(!CONSUMER_WAITS, Ordering::SeqCst);
                Poll::Ready(taken)
            }
            None => {
                rx.flagged = true;
                Poll::Pending
            }
        }
    }

    /// Consumer: it is gone. Drops what is queued and releases a producer waiting for room.
    pub(crate) fn close(&self, rx: &mut Receiver<I>) {
        let flags = self.signal().fetch_or(CLOSED, Ordering::SeqCst);
        while rx.rx.pop(&self.rings).is_some() {}
        rx.done = true;
        let last = self.slow.lock().last.take();
        drop(last);
        // The producer's end, if no try holds it, is not needed any more.
        drop(self.tx.lock().take());
        if flags & PRODUCER_WAITS != 0 {
            self.wake_producer();
        }
    }

    fn wake_consumer(&self) {
        let consumer = self.slow.lock().consumer.take();
        self.wake(consumer);
    }

    fn wake_producer(&self) {
        let producer = self.slow.lock().producer.take();
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

    use super::{Channel, Receiver, Tx};
    use crate::sync::{model, thread};

    /// A channel holding `bound` items and its consumer's end, with `produce` running on a
    /// second thread, given the channel and the producer's end.
    fn with_producer<R: Send + 'static>(
        bound: usize,
        produce: impl FnOnce(&Channel<u32>, Tx<u32>) -> R + Send + 'static,
    ) -> (Arc<Channel<u32>>, Receiver<u32>, thread::JoinHandle<R>) {
        let (channel, rx) = Channel::new(bound);
        let channel = Arc::new(channel);
        let tx = channel.take_tx().unwrap();
        let producer = {
            let channel = Arc::clone(&channel);
            thread::spawn(move || produce(&channel, tx))
        };
        (channel, rx, producer)
    }

    /// Three items through a channel of one: the producer waits for room each time; the
    /// consumer gets all three in order, then the end. Without the wake-up after a take, the
    /// producer waits for ever and loom reports the deadlock.
    #[test]
    fn loom_items_pass_in_order_under_backpressure() {
        model(3, || {
            let (channel, mut rx, producer) = with_producer(1, |channel, mut tx| {
                for i in 0..3 {
                    assert!(channel.wait_room());
                    assert!(channel.send(&mut tx, i).is_some());
                }
                channel.end(None);
            });
            let got: Vec<u32> = std::iter::from_fn(|| channel.next_blocking(&mut rx)).collect();
            assert_eq!(got, [0, 1, 2]);
            producer.join().unwrap();
        });
    }

    /// Without a bound, a consumer that blocks is woken by each send: it gets the items in
    /// order, across the rings the producer moves on to, while the producer has not ended, then
    /// the last item and the end. Without the producer's check of `CONSUMER_WAITS`, loom finds
    /// the consumer waiting for ever; without the consumer's second look at its old ring
    /// after seeing a new one, an item is lost.
    #[test]
    fn loom_a_blocked_consumer_is_woken_by_each_item() {
        model(3, || {
            let (channel, mut rx, producer) = with_producer(usize::MAX, |channel, mut tx| {
                for i in 0..3 {
                    assert_eq!(channel.send(&mut tx, i), Some(true));
                }
            });
            for i in 0..3 {
                assert_eq!(channel.next_blocking(&mut rx), Some(i));
            }
            producer.join().unwrap();
            channel.end(Some(9));
            assert_eq!(channel.next_blocking(&mut rx), Some(9));
            assert_eq!(channel.next_blocking(&mut rx), None);
        });
    }

    /// The producer is ended from another thread (a cancel) while it still sends: the
    /// consumer gets what was queued before the end in order, then the last item, then the
    /// end, whichever comes first.
    #[test]
    fn loom_an_end_from_another_thread_comes_after_the_queued_items() {
        model(3, || {
            let (channel, mut rx, producer) = with_producer(usize::MAX, |channel, mut tx| {
                let mut sent = 0;
                while sent < 2 && channel.send(&mut tx, sent).is_some() {
                    sent += 1;
                }
            });
            channel.end(Some(9));
            let got: Vec<u32> = std::iter::from_fn(|| channel.next_blocking(&mut rx)).collect();
            assert_eq!(got.last(), Some(&9), "the last item comes last: {got:?}");
            let queued = got.len() as u32 - 1;
            assert!(got[..got.len() - 1].iter().copied().eq(0..queued));
            producer.join().unwrap();
        });
    }

    /// A consumer that goes away while the producer waits for room releases it, and it stops
    /// within one more item. Without the wake-up in `close`, loom reports the deadlock.
    #[test]
    fn loom_closing_releases_a_waiting_producer() {
        model(3, || {
            let (channel, mut rx, producer) = with_producer(1, |channel, mut tx| {
                let mut sent = 0;
                while channel.wait_room() && channel.send(&mut tx, sent).is_some() {
                    sent += 1;
                }
                sent
            });
            channel.close(&mut rx);
            let sent = producer.join().unwrap();
            assert!(
                sent <= 1,
                "at most one item fits before the close is seen: {sent}"
            );
        });
    }
}
