//! The item queue of a stream: one producer, one consumer, no bound, and no lock or
//! read-modify-write per item.
//!
//! It is a chain of fixed rings (`rtrb`'s single-producer single-consumer ring buffer). Each end
//! owns its half of the ring it is at ([`Tx`], [`Rx`]), so handing over an item is a plain
//! store on one side and a plain load on the other (each side caches the other's position).
//! A queue shared by several threads (std's mpsc channel, crossbeam's `SegQueue`) pays a
//! read-modify-write on each end and an allocation every few dozen items, freed by the other
//! thread, which also made the two ends fight over the allocator's lock (docs/performance.md,
//! "Streams").
//!
//! When the producer's ring is full, it makes the next one (four times larger, up to
//! [`LARGEST`] slots), queues the new ring's consumer half in [`Rings::next`] and counts it in
//! [`Rings::added`] (release). Everything it pushed into the old ring comes before that. The
//! consumer, finding its ring empty, reads the count (acquire): if a ring was added since it
//! last moved on, it looks at its old ring once more (what the producer pushed there is now
//! visible to it) and only then moves to the next, so items come out in order.
//!
//! In the loom models (`--cfg rustyray_loom`), a ring is a locked `VecDeque` loom
//! can see; the chaining around it is the code above.

use std::collections::VecDeque;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Mutex;

/// The first ring's slots: a stream of a few items allocates little.
const FIRST: usize = 32;
/// The most slots a ring has; later rings are this size.
const LARGEST: usize = 4096;

/// What both ends share: the rings the producer moved on to.
pub(super) struct Rings<I> {
    /// The consumer halves of the rings made after the consumer's current one, oldest first.
    next: Mutex<VecDeque<ring::Consumer<I>>>,
    /// How many rings were ever added to `next`: the consumer compares it with how many it
    /// moved on to, so it takes the lock only to move on.
    added: AtomicUsize,
}

/// The producer's end: the ring it pushes into.
pub(super) struct Tx<I> {
    ring: ring::Producer<I>,
    slots: usize,
}

/// The consumer's end: the ring it pops from.
pub(super) struct Rx<I> {
    ring: ring::Consumer<I>,
    /// How many rings it moved on to.
    moved: usize,
}

/// A new queue: what both ends share, and each end.
pub(super) fn queue<I>() -> (Rings<I>, Tx<I>, Rx<I>) {
    let (producer, consumer) = ring::new(FIRST);
    let rings = Rings {
        next: Mutex::new(VecDeque::new()),
        added: AtomicUsize::new(0),
    };
    let tx = Tx {
        ring: producer,
        slots: FIRST,
    };
    (
        rings,
        tx,
        Rx {
            ring: consumer,
            moved: 0,
        },
    )
}

impl<I> Tx<I> {
    /// Queues `item` after every item pushed before.
    pub(super) fn push(&mut self, rings: &Rings<I>, item: I) {
        let Err(item) = self.ring.push(item) else {
            return;
        };
        self.slots = (self.slots * 4).min(LARGEST);
        let (producer, consumer) = ring::new(self.slots);
        rings.next.lock().push_back(consumer);
        rings.added.fetch_add(1, Ordering::Release);
        self.ring = producer;
        if self.ring.push(item).is_err() {
            unreachable!("a new ring has room");
        }
    }
}

impl<I> Rx<I> {
    /// The oldest item not taken yet, if there is one.
    pub(super) fn pop(&mut self, rings: &Rings<I>) -> Option<I> {
        loop {
            if let Some(item) = self.ring.pop() {
                return Some(item);
            }
            if rings.added.load(Ordering::Acquire) == self.moved {
                return None;
            }
            // The producer moved on: what it pushed here before is visible now.
            if let Some(item) = self.ring.pop() {
                return Some(item);
            }
            let next = rings.next.lock().pop_front();
            self.ring = next.expect("a ring is queued for each one counted");
            self.moved += 1;
        }
    }

    /// Whether no item can be taken now (without taking one).
    pub(super) fn is_empty(&self, rings: &Rings<I>) -> bool {
        self.ring.is_empty() && rings.added.load(Ordering::Acquire) == self.moved
    }
}

/// One ring: `rtrb`'s, or in the loom models a locked `VecDeque` of the same capacity.
#[cfg(not(rustyray_loom))]
mod ring {
    pub(super) struct Producer<I>(rtrb::Producer<I>);
    pub(super) struct Consumer<I>(rtrb::Consumer<I>);

    pub(super) fn new<I>(slots: usize) -> (Producer<I>, Consumer<I>) {
        let (producer, consumer) = rtrb::RingBuffer::new(slots);
        (Producer(producer), Consumer(consumer))
    }

    impl<I> Producer<I> {
        /// Pushes `item`, or gives it back if the ring is full.
        #[inline]
        pub(super) fn push(&mut self, item: I) -> Result<(), I> {
            self.0
                .push(item)
                .map_err(|rtrb::PushError::Full(item)| item)
        }
    }

    impl<I> Consumer<I> {
        #[inline]
        pub(super) fn pop(&mut self) -> Option<I> {
            self.0.pop().ok()
        }

        pub(super) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(rustyray_loom)]
mod ring {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use crate::sync::Mutex;

    type Shared<I> = Arc<(Mutex<VecDeque<I>>, usize)>;
    pub(super) struct Producer<I>(Shared<I>);
    pub(super) struct Consumer<I>(Shared<I>);

    pub(super) fn new<I>(slots: usize) -> (Producer<I>, Consumer<I>) {
        // The first ring holds one item and the next ones two, so the models move on to new
        // rings within a few items.
        let capacity = if slots <= super::FIRST { 1 } else { 2 };
        let shared = Arc::new((Mutex::new(VecDeque::new()), capacity));
        (Producer(Arc::clone(&shared)), Consumer(shared))
    }

    impl<I> Producer<I> {
        pub(super) fn push(&mut self, item: I) -> Result<(), I> {
            let mut queue = (self.0).0.lock();
            if queue.len() >= (self.0).1 {
                return Err(item);
            }
            queue.push_back(item);
            Ok(())
        }
    }

    impl<I> Consumer<I> {
        pub(super) fn pop(&mut self) -> Option<I> {
            (self.0).0.lock().pop_front()
        }

        pub(super) fn is_empty(&self) -> bool {
            (self.0).0.lock().is_empty()
        }
    }
}
