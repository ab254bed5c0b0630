//! How a thread waits for objects of the embedded object store: parked until enough cells
//! resolve (one shared countdown, one wake-up), lending its task's CPUs back meanwhile, and
//! stepping off a tokio worker first.

use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::{Cell, Countdown, State, Value, Waiter};
use crate::scheduler::BlockedGuard;

/// How a value is read out of its cell: shared ([`Cell::read`]) or copied
/// ([`Cell::read_value`]); `None` while it is pending.
pub(crate) type Reader<R> = fn(&Arc<Cell>) -> Option<Result<R>>;

/// Gets every object, in order, from the embedded store; fails with the first error met.
///
/// The calling thread blocks at most once while all goes well: at the first object still
/// pending, it waits for all the remaining ones together (woken early if one fails).
pub(crate) fn get_all<T: Value, R>(
    runtime: u32,
    refs: &[ObjectRef<T>],
    read: Reader<R>,
) -> Result<Vec<R>> {
    let mut values = Vec::with_capacity(refs.len());
    let mut waited = false;
    for (i, r) in refs.iter().enumerate() {
        let cell = r.cell_or_missing(runtime)?;
        let value = match read(cell) {
            Some(value) => value,
            None if !waited => {
                waited = true;
                // Straight from the refs: a list of the cells would be one large allocation
                // per call, which makes the allocator sort every small block freed before it.
                let rest = refs[i..].iter().map(|r| r.cell_in(runtime));
                let until = Until {
                    need: refs.len() - i,
                    deadline: None,
                    stop_on_failure: true,
                };
                block(rest, until, None);
                read_when_resolved(cell, None, read)
            }
            // After a failure ended the wait early: one at a time, so the first error in
            // order is the one reported.
            None => read_when_resolved(cell, None, read),
        };
        values.push(value?);
    }
    Ok(values)
}

/// The value of `cell` once resolved, as `read` gives it, or [`Error::Timeout`] when the
/// deadline passes first.
pub(crate) fn read_when_resolved<R>(
    cell: &Arc<Cell>,
    deadline: Option<Instant>,
    read: Reader<R>,
) -> Result<R> {
    if let Some(value) = read(cell) {
        return value;
    }
    // Without a deadline, a call waiting for an idle actor may be run here (it runs to its
    // end, so not when the wait is bounded).
    if deadline.is_none() && crate::actor::run_in_caller(cell) {
        if let Some(value) = read(cell) {
            return value;
        }
    }
    let started = Instant::now();
    if !block_until([Some(cell)], 1, deadline) {
        return Err(Error::Timeout(started.elapsed()));
    }
    read(cell).expect("a resolved object never becomes pending again")
}

/// Whether a wait until `deadline` may linger first: not when it is bounded by less than a
/// millisecond, which the few microseconds of lingering would cut into.
fn lingers(deadline: Option<Instant>) -> bool {
    deadline
        .is_none_or(|deadline| deadline.saturating_duration_since(Instant::now()) > LINGER_BOUND)
}

const LINGER_BOUND: std::time::Duration = std::time::Duration::from_millis(1);

/// How a blocked thread waits: for how many objects, until when, and what else ends the wait.
#[derive(Clone, Copy)]
struct Until {
    /// How many must resolve (a missing object counts as resolved).
    need: usize,
    deadline: Option<Instant>,
    /// Wake at the first failure, however many resolved.
    stop_on_failure: bool,
}

impl Until {
    /// Until `need` resolve, or the deadline passes.
    fn resolved(need: usize, deadline: Option<Instant>) -> Until {
        Until {
            need,
            deadline,
            stop_on_failure: false,
        }
    }
}

/// Parks the calling thread until `need` of `cells` are resolved (a missing object counts as
/// resolved) or the deadline passes; returns whether enough resolved. Inside a task, the
/// task's CPUs are lent back while it waits. On a tokio worker thread, the worker hands its
/// other tasks to another thread first.
pub(crate) fn block_until<'a>(
    cells: impl IntoIterator<Item = Option<&'a Arc<Cell>>>,
    need: usize,
    deadline: Option<Instant>,
) -> bool {
    block(cells, Until::resolved(need, deadline), None)
}

/// [`block_until`], calling `progress` with the number resolved so far after each wake-up
/// (and once at the start).
pub(crate) fn block_until_reporting<'a>(
    cells: impl IntoIterator<Item = Option<&'a Arc<Cell>>>,
    need: usize,
    deadline: Option<Instant>,
    mut progress: impl FnMut(usize),
) -> bool {
    block(cells, Until::resolved(need, deadline), Some(&mut progress))
}

/// Parks the calling thread until `until` is met; returns whether it was (false when the
/// deadline passed first). The thread is woken once, when the wait is over, not at every
/// resolution (unless it reports progress): the cells count down one shared [`Countdown`].
fn block<'a>(
    cells: impl IntoIterator<Item = Option<&'a Arc<Cell>>>,
    until: Until,
    mut progress: Option<&mut dyn FnMut(usize)>,
) -> bool {
    let need = until.need;
    let countdown = Arc::new(Countdown::new(
        need,
        until.stop_on_failure,
        progress.is_some(),
    ));
    for cell in cells {
        if countdown.done() {
            break;
        }
        match cell {
            None => {
                countdown.count(&State::Ready); // missing: nothing to wait for
            }
            Some(cell) => {
                if let Some(state) = cell.subscribe(Waiter::new(Arc::clone(&countdown) as _)) {
                    countdown.count(&state);
                }
            }
        }
    }
    let report = |progress: &mut Option<&mut dyn FnMut(usize)>| {
        if let Some(progress) = progress {
            progress(countdown.resolved(need));
        }
    };
    report(&mut progress);
    // Watch the countdown a few microseconds before lending the CPUs and parking (see
    // `linger.rs`): an answer that comes back that soon costs no futex wake-up of this thread,
    // and the pool thread, which lingers the same way, takes the next task without one. The
    // countdown is this wait's own word, written once by the resolving thread, so watching it
    // takes nothing the resolver needs (the cells' locks).
    if countdown.done() || (lingers(until.deadline) && crate::linger::until(|| countdown.done())) {
        return true;
    }
    let _lent = BlockedGuard::enter();
    outside_async_worker(|| loop {
        report(&mut progress);
        if countdown.done() {
            return true;
        }
        match until.deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    })
}

/// Runs a blocking wait so that it does not stall a tokio worker: on a multi-threaded runtime's
/// worker, through `block_in_place`; anywhere else, directly.
pub(crate) fn outside_async_worker<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
