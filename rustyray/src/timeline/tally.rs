//! Exact counts of what finished, for the dashboard's metrics (feature `dashboard` only).
//!
//! The ring keeps the recent events and overwrites old ones; a metric must count every task
//! for the life of the process. So each thread that records an event also adds it to a tally
//! of its own, one per (runtime, kind, function, actor): how many finished, how many of those
//! failed, how many never ran (cancelled, or a failed argument), and how long the ones that ran
//! took, as a histogram of clock readings in powers of two.
//!
//! - **Writing** is the owner thread's alone, so each count is a plain load and store of an
//!   atomic, no read-modify-write. A run of one function's tasks finds its tally through the
//!   last key (one comparison); a new key takes a hash lookup, then a lock on the thread's key
//!   list to enter it.
//! - **Reading** (a scrape) goes over every thread's tallies and adds them up. A count read
//!   while its event is being added may miss that event until the next scrape; counts never go
//!   backwards.
//! - A thread keeps at most [`MAX_TALLIES`] keys; the events of any beyond are not counted
//!   (a program with more distinct functions than that has a dashboard problem anyway).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::{Finished, Kind};

/// Histogram buckets: bucket `i` counts runs of fewer than `2^i` clock readings (and at least
/// `2^(i-1)`); the last one, every longer run too.
pub(crate) const BUCKETS: usize = 48;
const PER_CHUNK: usize = 64;
const CHUNKS: usize = 64;
/// The most keys one thread counts.
pub(crate) const MAX_TALLIES: usize = PER_CHUNK * CHUNKS;

/// What one key counted on one thread. How many finished is `skipped` plus the runs in the
/// buckets (one count less to write per task).
pub(crate) struct Tally {
    /// Submitted on this thread (counted at submission, so the total never goes back).
    pub(crate) submitted: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    /// The run times added up, in clock readings.
    pub(crate) ticks: AtomicU64,
    pub(crate) buckets: [AtomicU64; BUCKETS],
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            submitted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Adds `by` to a count only its owner writes.
#[inline]
fn bump(count: &AtomicU64, by: u64) {
    count.store(count.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

/// What a tally counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) runtime: u32,
    pub(crate) kind: Kind,
    pub(crate) name: Cow<'static, str>,
    pub(crate) actor: Option<Cow<'static, str>>,
}

/// One thread's tallies.
pub(super) struct Tallies {
    chunks: [OnceLock<Arc<[Tally]>>; CHUNKS],
    keys: Mutex<Vec<Key>>,
}

/// What the owner keeps to find a tally without the lock: the last one used (its key, its
/// chunk and its place there), and every key's index (by the event's stored names, runtime and
/// kind).
#[derive(Default)]
pub(super) struct TallyIndex {
    last: Option<(KeyBits, Arc<[Tally]>, usize)>,
    index: FxHashMap<KeyBits, usize>,
}

/// A key as the owner finds it: the event's stored names, its runtime and its kind.
type KeyBits = (u64, u32, Kind);

impl Tallies {
    pub(super) fn new() -> Tallies {
        Tallies {
            chunks: std::array::from_fn(|_| OnceLock::new()),
            keys: Mutex::new(Vec::new()),
        }
    }

    /// The chunk holding tally `index`, and its place there.
    fn chunk(&self, index: usize) -> (&Arc<[Tally]>, usize) {
        let chunk = self.chunks[index / PER_CHUNK]
            .get_or_init(|| (0..PER_CHUNK).map(|_| Tally::default()).collect());
        (chunk, index % PER_CHUNK)
    }

    /// The tally of `event`'s key, whose names are stored as `names` (see `ring.rs`).
    #[inline]
    fn of<'a>(
        &'a self,
        at: &'a mut TallyIndex,
        names: u64,
        event: &Finished<'_>,
    ) -> Option<&'a Tally> {
        let key = (names, event.object.owner(), event.kind);
        if !matches!(&at.last, Some((last, _, _)) if *last == key) {
            return self.find(at, key, event);
        }
        let (_, chunk, place) = at.last.as_ref()?;
        Some(&chunk[*place])
    }

    /// Counts the submission of a task or call like `event`.
    #[inline]
    pub(super) fn count_submitted(&self, at: &mut TallyIndex, names: u64, event: &Finished<'_>) {
        if let Some(tally) = self.of(at, names, event) {
            bump(&tally.submitted, 1);
        }
    }

    /// Counts `event`, whose names are stored as `names` (see `ring.rs`).
    #[inline]
    pub(super) fn count(&self, at: &mut TallyIndex, names: u64, event: &Finished<'_>) {
        if event.kind == Kind::StreamItem {
            return;
        }
        let Some(tally) = self.of(at, names, event) else {
            return;
        };
        if event.failed {
            bump(&tally.failed, 1);
        }
        if event.skipped.is_some() {
            bump(&tally.skipped, 1);
            return;
        }
        let ticks = event.ended.raw().saturating_sub(event.started.raw());
        bump(&tally.ticks, ticks);
        let bucket = (u64::BITS - ticks.leading_zeros()) as usize;
        bump(&tally.buckets[bucket.min(BUCKETS - 1)], 1);
    }

    /// The tally of a key not counted last: found by its index, or entered. `None` when the
    /// thread has [`MAX_TALLIES`] keys already.
    #[cold]
    fn find<'a>(
        &'a self,
        at: &'a mut TallyIndex,
        key: KeyBits,
        event: &Finished<'_>,
    ) -> Option<&'a Tally> {
        let index = match at.index.get(&key) {
            Some(&index) => index,
            None => {
                let mut keys = self.keys.lock();
                if keys.len() >= MAX_TALLIES {
                    return None;
                }
                keys.push(Key {
                    runtime: key.1,
                    kind: event.kind,
                    name: event.name.clone(),
                    actor: event.actor.cloned(),
                });
                at.index.insert(key, keys.len() - 1);
                keys.len() - 1
            }
        };
        let (chunk, place) = self.chunk(index);
        let (_, chunk, place) = at.last.insert((key, Arc::clone(chunk), place));
        Some(&chunk[*place])
    }

    /// Calls `each` with every key of this thread and its tally.
    pub(super) fn for_each(&self, mut each: impl FnMut(&Key, &Tally)) {
        let keys = self.keys.lock().clone();
        for (index, key) in keys.iter().enumerate() {
            let (chunk, place) = self.chunk(index);
            each(key, &chunk[place]);
        }
    }
}

/// A key's counts over every thread.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Totals {
    pub(crate) submitted: u64,
    pub(crate) finished: u64,
    pub(crate) failed: u64,
    pub(crate) skipped: u64,
    /// The run times added up.
    pub(crate) seconds: f64,
    /// Per bucket: the upper bound of run time in seconds, and how many runs fell in it (not
    /// counting those of the buckets before).
    pub(crate) buckets: Vec<(f64, u64)>,
}

impl Totals {
    /// Adds one thread's tally, its clock readings turned into seconds at `rate` (seconds per
    /// reading).
    pub(crate) fn add(&mut self, tally: &Tally, rate: f64) {
        let read = |count: &AtomicU64| count.load(Ordering::Relaxed);
        let ran: u64 = tally.buckets.iter().map(read).sum();
        self.submitted += read(&tally.submitted);
        self.finished += ran + read(&tally.skipped);
        self.failed += read(&tally.failed);
        self.skipped += read(&tally.skipped);
        self.seconds += read(&tally.ticks) as f64 * rate;
        if self.buckets.is_empty() {
            self.buckets = (0..BUCKETS)
                .map(|i| ((1u64 << i.min(63)) as f64 * rate, 0))
                .collect();
        }
        for (bucket, count) in self.buckets.iter_mut().zip(&tally.buckets) {
            bucket.1 += read(count);
        }
    }
}
