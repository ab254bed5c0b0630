//! One thread's log: a ring of its last [`EVENTS_PER_THREAD`] events, which that thread writes
//! without a lock and the exporter reads at any time.
//!
//! # Design
//!
//! An event is five words in a slot of atomics, behind a version that is odd while the owner
//! writes the slot (a seqlock): writing one is six plain stores, where a locked ring cost two
//! atomic read-modify-writes per event, and a reader that finds the version changed under it
//! skips the slot, since the event it wanted was overwritten by a newer one. Slots are
//! allocated a chunk at a time, so a thread that runs few tasks holds few.
//!
//! Names (the function's, the actor's) are interned per thread: an event stores their numbers,
//! and the thread's name table, behind a lock that only a name not seen before takes, gives
//! them back. The table is bounded; past [`MAX_NAMES`] distinct names on one thread, later new
//! names are shown as [`UNKEPT`].

use crate::sync::atomic::{fence, AtomicU64, Ordering};
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::clock::{Scale, Stamp};
use super::{Ended, Finished, Kind, Skipped, EVENTS_PER_THREAD};
use crate::object_ref::ObjectId;

/// Slots allocated at once.
#[cfg(not(rustyray_loom))]
const CHUNK: usize = 1024;
#[cfg(rustyray_loom)]
const CHUNK: usize = EVENTS_PER_THREAD;
const CHUNKS: usize = EVENTS_PER_THREAD.div_ceil(CHUNK);

/// How many distinct names one thread's table keeps.
pub(super) const MAX_NAMES: usize = 1 << 16;

/// What an event shows for a name its thread's full table could not keep.
pub(super) const UNKEPT: &str = "(name not kept: over 65,536 distinct names on this thread)";

/// The number of a name that was not kept.
const UNKEPT_NUMBER: u32 = u32::MAX;

/// One event, as words.
#[derive(Default)]
struct Slot {
    /// Odd while the owner writes the slot; bumped twice per event.
    version: AtomicU64,
    started: AtomicU64,
    ended: AtomicU64,
    seq: AtomicU64,
    /// The name's number (high half) and the actor's number plus one (low half, 0: none).
    names: AtomicU64,
    /// The runtime (high half) and the flags (low half, see [`Flags`]).
    meta: AtomicU64,
}

/// The low half of [`Slot::meta`].
struct Flags;

impl Flags {
    const ACTOR_CALL: u64 = 1;
    const ASYNCHRONOUS: u64 = 1 << 1;
    const FAILED: u64 = 1 << 2;
    const CANCELLED: u64 = 1 << 3;
    const DEPENDENCY_FAILED: u64 = 1 << 4;
    const STREAM_ITEM: u64 = 1 << 5;

    fn of(event: &Finished<'_>) -> u64 {
        let set = |yes: bool, flag: u64| if yes { flag } else { 0 };
        set(event.kind == Kind::ActorCall, Flags::ACTOR_CALL)
            | set(event.kind == Kind::StreamItem, Flags::STREAM_ITEM)
            | set(event.asynchronous, Flags::ASYNCHRONOUS)
            | set(event.failed, Flags::FAILED)
            | match event.skipped {
                None => 0,
                Some(Skipped::Cancelled) => Flags::CANCELLED,
                Some(Skipped::DependencyFailed) => Flags::DEPENDENCY_FAILED,
            }
    }
}

/// One thread's ring and name table.
pub(super) struct ThreadLog {
    pub(super) tid: u64,
    pub(super) name: String,
    /// How many events were ever written: the next one goes to slot `written % EVENTS_PER_THREAD`.
    written: AtomicU64,
    chunks: [OnceLock<Box<[Slot]>>; CHUNKS],
    names: Mutex<Vec<Cow<'static, str>>>,
    /// Exact counts for the dashboard's metrics (see `tally.rs`).
    #[cfg(feature = "dashboard")]
    pub(super) tallies: super::tally::Tallies,
}

/// What the owner keeps to number names without the table's lock: the names of its last event
/// with their numbers as stored (a run of one actor's calls, or of one function's tasks,
/// repeats them), and every name's number.
#[derive(Default)]
pub(super) struct Numbering {
    last: Option<(Cow<'static, str>, Option<Cow<'static, str>>, u64)>,
    numbers: FxHashMap<Cow<'static, str>, u32>,
    #[cfg(feature = "dashboard")]
    tallies: super::tally::TallyIndex,
}

/// Whether two names are the same: the same bytes, which the same address and length are (a
/// kept name owns its bytes, so only the same static string shares its address).
fn same(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// The writing side of a thread's log, in that thread's thread-local.
pub(super) struct Writer {
    log: std::sync::Arc<ThreadLog>,
    numbering: RefCell<Numbering>,
}

impl Writer {
    pub(super) fn new(log: std::sync::Arc<ThreadLog>) -> Writer {
        Writer {
            log,
            numbering: RefCell::default(),
        }
    }

    /// Counts a submission like `event` (feature `dashboard`).
    #[cfg(feature = "dashboard")]
    #[inline]
    pub(super) fn submitted(&self, event: &Finished<'_>) {
        if let Ok(mut numbering) = self.numbering.try_borrow_mut() {
            let names = self.log.names_of(event, &mut numbering);
            let log = &self.log;
            log.tallies
                .count_submitted(&mut numbering.tallies, names, event);
        }
    }

    #[inline]
    pub(super) fn push(&self, event: &Finished<'_>) {
        // Recording never re-enters itself; were it to, the inner event is dropped, not a panic.
        if let Ok(mut numbering) = self.numbering.try_borrow_mut() {
            self.log.push(event, &mut numbering);
        }
    }
}

impl ThreadLog {
    pub(super) fn new(tid: u64, name: String) -> ThreadLog {
        ThreadLog {
            tid,
            name,
            written: AtomicU64::new(0),
            chunks: std::array::from_fn(|_| OnceLock::new()),
            names: Mutex::new(Vec::new()),
            #[cfg(feature = "dashboard")]
            tallies: super::tally::Tallies::new(),
        }
    }

    #[inline]
    fn slot(&self, n: u64) -> &Slot {
        let at = (n % EVENTS_PER_THREAD as u64) as usize;
        let chunk =
            self.chunks[at / CHUNK].get_or_init(|| (0..CHUNK).map(|_| Slot::default()).collect());
        &chunk[at % CHUNK]
    }

    /// Writes an event, overwriting the oldest once the ring is full. Only the thread that owns
    /// the log calls it (through its thread-local), with that thread's `numbering`.
    #[inline]
    pub(super) fn push(&self, event: &Finished<'_>, numbering: &mut Numbering) {
        let names = self.names_of(event, numbering);
        #[cfg(feature = "dashboard")]
        self.tallies.count(&mut numbering.tallies, names, event);
        let n = self.written.load(Ordering::Relaxed);
        let slot = self.slot(n);
        let version = slot.version.load(Ordering::Relaxed);
        slot.version.store(version + 1, Ordering::Relaxed);
        fence(Ordering::Release); // the odd version is seen before any new word
        slot.started.store(event.started.raw(), Ordering::Relaxed);
        slot.ended.store(event.ended.raw(), Ordering::Relaxed);
        slot.seq.store(event.object.seq(), Ordering::Relaxed);
        slot.names.store(names, Ordering::Relaxed);
        let meta = u64::from(event.object.owner()) << 32 | Flags::of(event);
        slot.meta.store(meta, Ordering::Relaxed);
        slot.version.store(version + 2, Ordering::Release);
        self.written.store(n + 1, Ordering::Release);
    }

    /// The names of `event` as stored: the name's number (high half) and the actor's number
    /// plus one (low half, 0 for none).
    #[inline]
    fn names_of(&self, event: &Finished<'_>, numbering: &mut Numbering) -> u64 {
        if let Some((name, actor, names)) = &numbering.last {
            let same_actor = match (actor, event.actor) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            };
            if same_actor && same(name, event.name) {
                return *names;
            }
        }
        self.names_of_new(event, numbering)
    }

    #[cold]
    fn names_of_new(&self, event: &Finished<'_>, numbering: &mut Numbering) -> u64 {
        let name = self.number(event.name, numbering);
        let actor = event
            .actor
            .map_or(0, |actor| u64::from(self.number(actor, numbering)) + 1);
        let names = u64::from(name) << 32 | actor;
        numbering.last = Some((event.name.clone(), event.actor.cloned(), names));
        names
    }

    /// The number of `name` in this thread's table, entering it if it is new.
    // A `&Cow`, not a `&str`: keeping a borrowed name copies it rather than allocating.
    #[allow(clippy::ptr_arg)]
    fn number(&self, name: &Cow<'static, str>, numbering: &mut Numbering) -> u32 {
        match numbering.numbers.get(name.as_ref()) {
            Some(&number) => number,
            None => {
                let mut names = self.names.lock();
                if names.len() >= MAX_NAMES {
                    return UNKEPT_NUMBER;
                }
                let number = names.len() as u32;
                names.push(name.clone());
                drop(names);
                numbering.numbers.insert(name.clone(), number);
                number
            }
        }
    }

    /// The events of `runtime` still in the ring, oldest first, with their times scaled by
    /// `scale` (one being overwritten as it is read is left out: it is gone).
    pub(super) fn ended(&self, runtime: u32, scale: &Scale) -> Vec<Ended> {
        let written = self.written.load(Ordering::Acquire);
        let names = self.names.lock();
        let name = |number: u32| match names.get(number as usize) {
            Some(name) => name.to_string(),
            None => UNKEPT.to_owned(),
        };
        let first = written.saturating_sub(EVENTS_PER_THREAD as u64);
        let mut out = Vec::new();
        for n in first..written {
            let slot = self.slot(n);
            let version = slot.version.load(Ordering::Acquire);
            let words = [
                &slot.started,
                &slot.ended,
                &slot.seq,
                &slot.names,
                &slot.meta,
            ]
            .map(|word| word.load(Ordering::Relaxed));
            fence(Ordering::Acquire); // the words are read before the version is again
            if version % 2 == 1 || slot.version.load(Ordering::Relaxed) != version {
                continue;
            }
            let [started, ended, seq, names, meta] = words;
            if (meta >> 32) as u32 != runtime {
                continue;
            }
            let (started, ended) = (Stamp::from_raw(started), Stamp::from_raw(ended));
            let flag = |flag: u64| meta & flag != 0;
            let actor = (names & 0xffff_ffff) as u32;
            out.push(Ended {
                kind: if flag(Flags::ACTOR_CALL) {
                    Kind::ActorCall
                } else if flag(Flags::STREAM_ITEM) {
                    Kind::StreamItem
                } else {
                    Kind::Task
                },
                name: name((names >> 32) as u32),
                actor: actor.checked_sub(1).map(name),
                asynchronous: flag(Flags::ASYNCHRONOUS),
                tid: self.tid,
                started: scale.since_start(started),
                duration: scale.between(started, ended),
                failed: flag(Flags::FAILED),
                skipped: if flag(Flags::CANCELLED) {
                    Some(Skipped::Cancelled)
                } else if flag(Flags::DEPENDENCY_FAILED) {
                    Some(Skipped::DependencyFailed)
                } else {
                    None
                },
                object: ObjectId::new(runtime, seq),
            });
        }
        out
    }
}

#[cfg(all(test, not(rustyray_loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every event of the tests' runtime, at one nanosecond per tick.
    fn events(log: &ThreadLog) -> Vec<Ended> {
        log.ended(7, &Scale::identity())
    }

    #[allow(clippy::ptr_arg)]
    fn finished<'a>(
        name: &'a Cow<'static, str>,
        actor: Option<&'a Cow<'static, str>>,
        seq: u64,
    ) -> Finished<'a> {
        Finished {
            kind: if actor.is_some() {
                Kind::ActorCall
            } else {
                Kind::Task
            },
            name,
            actor,
            asynchronous: seq % 2 == 0,
            started: Stamp::from_raw(seq),
            ended: Stamp::from_raw(seq + 1),
            failed: seq % 3 == 0,
            skipped: (seq % 5 == 0).then_some(Skipped::DependencyFailed),
            object: ObjectId::new(7, seq),
        }
    }

    #[test]
    fn a_full_ring_overwrites_its_oldest_event_and_lists_oldest_first() {
        let log = ThreadLog::new(1, "t".into());
        let mut numbering = Numbering::default();
        let (f, class) = (Cow::Borrowed("f"), Cow::Owned("Counter `c`".to_owned()));
        let total = EVENTS_PER_THREAD as u64 + 3;
        for seq in 0..total {
            let actor = (seq % 4 == 0).then_some(&class);
            log.push(&finished(&f, actor, seq), &mut numbering);
        }
        let events = events(&log);
        let seqs: Vec<u64> = events.iter().map(|e| e.object.seq()).collect();
        assert_eq!(seqs, (3..total).collect::<Vec<_>>());
        for e in &events {
            let seq = e.object.seq();
            assert_eq!(
                (e.started, e.started + e.duration, e.object.owner()),
                (Duration::from_nanos(seq), Duration::from_nanos(seq + 1), 7)
            );
            assert_eq!(e.name, "f");
            assert_eq!(e.actor.as_deref(), (seq % 4 == 0).then_some("Counter `c`"));
            assert_eq!(e.kind == Kind::ActorCall, seq % 4 == 0);
            assert_eq!((e.asynchronous, e.failed), (seq % 2 == 0, seq % 3 == 0));
            assert_eq!(
                e.skipped,
                (seq % 5 == 0).then_some(Skipped::DependencyFailed)
            );
        }
        assert_eq!(log.names.lock().len(), 2, "each name is kept once");
    }

    #[test]
    fn names_past_the_tables_bound_show_as_not_kept() {
        let log = ThreadLog::new(1, "t".into());
        let mut numbering = Numbering::default();
        let names: Vec<Cow<'static, str>> =
            (0..=MAX_NAMES).map(|i| format!("job-{i}").into()).collect();
        for (seq, name) in names.iter().enumerate() {
            log.push(&finished(name, None, seq as u64), &mut numbering);
        }
        let events = events(&log);
        let last = events.last().expect("events");
        assert_eq!(last.name, UNKEPT);
        let kept = &events[events.len() - 2];
        assert_eq!(kept.name, format!("job-{}", MAX_NAMES - 1));
    }

    #[test]
    fn a_reader_never_sees_a_torn_event() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let (log, stop) = (
            Arc::new(ThreadLog::new(1, "t".into())),
            Arc::new(AtomicBool::new(false)),
        );
        let writer = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut numbering = Numbering::default();
                let f = Cow::Borrowed("f");
                let mut seq = 0;
                // At least two laps of the ring, then on until the reader is done.
                while seq < 2 * EVENTS_PER_THREAD as u64 || !stop.load(Ordering::Relaxed) {
                    log.push(&finished(&f, None, seq), &mut numbering);
                    seq += 1;
                }
            })
        };
        // Read while the writer overwrites: from its second lap on.
        while log.written.load(Ordering::Relaxed) < EVENTS_PER_THREAD as u64 {
            std::thread::yield_now();
        }
        for _ in 0..200 {
            for e in events(&log) {
                let ended = e.started + e.duration;
                let seq = e.object.seq();
                assert_eq!(
                    ended,
                    Duration::from_nanos(seq + 1),
                    "words of two events mixed"
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    }
}

/// The seqlock, model-checked: a reader racing the writer over a ring of two slots, lapped twice,
/// never returns an event whose words come from two events (loom explores the interleavings and
/// the weak orderings of the loads). Run with `.ci/loom`.
#[cfg(all(test, rustyray_loom))]
mod loom_tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_reader_racing_the_writer_never_sees_a_torn_event() {
        crate::sync::model(2, || {
            let log = Arc::new(ThreadLog::new(1, "t".into()));
            let f = Cow::Borrowed("f");
            let event = |seq: u64| Finished {
                kind: Kind::Task,
                name: &f,
                actor: None,
                asynchronous: false,
                started: Stamp::from_raw(10 * seq),
                ended: Stamp::from_raw(10 * seq + seq),
                failed: false,
                skipped: None,
                object: ObjectId::new(7, seq),
            };
            // The name is numbered, and the slots made, before the reader starts.
            let mut numbering = Numbering::default();
            log.push(&event(1), &mut numbering);
            let reader = {
                let log = Arc::clone(&log);
                loom::thread::spawn(move || {
                    for e in log.ended(7, &Scale::identity()) {
                        let seq = e.object.seq();
                        assert_eq!(e.started.as_nanos(), 10 * seq as u128, "torn event");
                        assert_eq!(e.duration.as_nanos(), seq as u128, "torn event");
                    }
                })
            };
            for seq in 2..=3 {
                log.push(&event(seq), &mut numbering);
            }
            reader.join().unwrap();
        });
    }
}
