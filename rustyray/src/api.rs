//! The global functions: `put`, `get`, `wait` and their variants.
//!
//! Each works anywhere: on the main thread, inside tasks, inside actor methods, in async code.
//! They use the current runtime (see [`Runtime::enter`](crate::Runtime::enter)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::{Cell, Countdown, Object, State, Value, Waiter};
use crate::runtime;
use crate::scheduler::BlockedGuard;

/// Stores `value` in the object store and returns a ref to it.
///
/// The value is moved in, not copied or serialized.
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// let r = rustyray::put(vec![1u8, 2, 3])?;
/// assert_eq!(rustyray::get(&r)?, vec![1, 2, 3]);
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn put<T: Value>(value: T) -> Result<ObjectRef<T>> {
    let shared = runtime::current();
    shared.check()?;
    let cell = match shared.ray() {
        Some(ray) => ray.put(&shared, &value)?,
        None => shared.store.insert_ready(Object::new(value))?,
    };
    Ok(ObjectRef::adopt(cell))
}

/// Waits for the object and returns a copy of its value (a clone of the stored one), or the
/// error that failed it. Never gives up on its own: use [`get_timeout`] for a bounded wait.
///
/// Inside a task, the wait lends the task's CPU back to the scheduler. If `r` is the result of
/// the call this thread just sent to an idle sync actor, the call may run on this thread
/// instead of waking a pool thread (the same call, in the same order, without the two thread
/// wake-ups of the round trip). [`get_timeout`] never does that.
pub fn get<T: Value + Clone>(r: &ObjectRef<T>) -> Result<T> {
    get_until(r, None, Cell::read_value)
}

/// Like [`get`], but shares the stored value instead of cloning it: O(1) whatever its size.
pub fn get_arc<T: Value>(r: &ObjectRef<T>) -> Result<Arc<T>> {
    get_until(r, None, Cell::read)
}

/// Like [`get`], but fails with [`Error::Timeout`] if the object is not resolved within
/// `timeout`. The task producing it keeps running.
pub fn get_timeout<T: Value + Clone>(r: &ObjectRef<T>, timeout: Duration) -> Result<T> {
    get_until(r, Some(Instant::now() + timeout), Cell::read_value)
}

/// How a value is read out of its cell: shared ([`Cell::read`]) or copied
/// ([`Cell::read_value`]); `None` while it is pending.
type Reader<R> = fn(&Arc<Cell>) -> Option<Result<R>>;

/// The object's value once resolved, as `read` gives it, or [`Error::Timeout`] when the
/// deadline passes first.
fn get_until<T: Value, R: From<T>>(
    r: &ObjectRef<T>,
    deadline: Option<Instant>,
    read: Reader<R>,
) -> Result<R> {
    let shared = runtime::current();
    shared.check()?;
    if let Some(ray) = shared.ray() {
        return ray.get(r, deadline).map(R::from);
    }
    read_when_resolved(r.cell_or_missing(shared.id)?, deadline, read)
}

/// Gets every object, in order; fails with the first error met.
///
/// The calling thread blocks at most once while all goes well: at the first object still
/// pending, it waits for all the remaining ones together (woken early if one fails).
pub fn get_all<T: Value + Clone>(refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    let shared = runtime::current();
    shared.check()?;
    if shared.ray().is_some() {
        return refs.iter().map(get).collect();
    }
    let mut values = Vec::with_capacity(refs.len());
    let mut waited = false;
    for (i, r) in refs.iter().enumerate() {
        let cell = r.cell_or_missing(shared.id)?;
        let read = match cell.read_value() {
            Some(read) => read,
            None if !waited => {
                waited = true;
                // Straight from the refs: a list of the cells would be one large allocation
                // per call, which makes the allocator sort every small block freed before it.
                let rest = refs[i..].iter().map(|r| r.cell_in(shared.id));
                let until = Until {
                    need: refs.len() - i,
                    deadline: None,
                    stop_on_failure: true,
                };
                block(rest, until, None);
                read_when_resolved(cell, None, Cell::read_value)
            }
            // After a failure ended the wait early: one at a time, so the first error in
            // order is the one reported.
            None => read_when_resolved(cell, None, Cell::read_value),
        };
        values.push(read?);
    }
    Ok(values)
}

/// The value of `cell` once resolved, as `read` gives it, or [`Error::Timeout`] when the
/// deadline passes first.
fn read_when_resolved<R>(
    cell: &Arc<Cell>,
    deadline: Option<Instant>,
    read: Reader<R>,
) -> Result<R> {
    if let Some(value) = read(cell) {
        return value;
    }
    // Without a deadline, a call waiting for an idle actor may be run here (it runs to its
    // end, so not when the wait is bounded).
    if deadline.is_none() && crate::actor::help(cell) {
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

/// Waits until `num_returns` of `refs` are resolved (ready or failed) or `timeout` passes, and
/// returns `(ready, pending)`, each in input order.
///
/// As in Ray, `ready` holds at most `num_returns` refs (the first resolved ones in input order);
/// the rest, resolved or not, are in `pending`. `num_returns` larger than `refs.len()` waits for
/// all of them. With `timeout: None` it waits as long as it takes.
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// use std::time::Duration;
/// let refs = vec![rustyray::put(1)?, rustyray::put(2)?];
/// let (ready, pending) = rustyray::wait(&refs, 1, Some(Duration::from_secs(1)));
/// assert_eq!((ready.len(), pending.len()), (1, 1));
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn wait<T>(
    refs: &[ObjectRef<T>],
    num_returns: usize,
    timeout: Option<Duration>,
) -> (Vec<ObjectRef<T>>, Vec<ObjectRef<T>>) {
    let shared = runtime::current();
    let need = num_returns.min(refs.len());
    if let Some(ray) = shared.ray() {
        let deadline = timeout.map(|t| Instant::now() + t);
        let resolved = ray.wait(refs, need, deadline);
        return split(refs, need, |i, _| resolved[i]);
    }
    // Look first without subscribing: when enough are resolved already (the usual case in a
    // progress loop over `wait(&pending, 1, ..)`), no waiter is left behind on the others.
    let resolved = |r: &ObjectRef<T>| r.is_resolved_in(shared.id);
    let enough_now = refs.iter().filter(|r| resolved(r)).take(need).count() >= need;
    if !enough_now && shared.check().is_ok() {
        let cells = refs.iter().map(|r| r.cell_in(shared.id));
        block_until(cells, need, timeout.map(|t| Instant::now() + t));
    }
    split(refs, need, |_, r| resolved(r))
}

/// Splits `refs` into (at most `need` resolved ones, the rest), each in input order.
fn split<T>(
    refs: &[ObjectRef<T>],
    need: usize,
    resolved: impl Fn(usize, &ObjectRef<T>) -> bool,
) -> (Vec<ObjectRef<T>>, Vec<ObjectRef<T>>) {
    let mut ready = Vec::with_capacity(need);
    let mut pending = Vec::with_capacity(refs.len() - need);
    for (i, r) in refs.iter().enumerate() {
        if ready.len() < need && resolved(i, r) {
            ready.push(r.clone());
        } else {
            pending.push(r.clone());
        }
    }
    (ready, pending)
}

/// Cancels the task (or actor call) that produces `r`, if it has not finished.
///
/// The ref fails with [`Error::Cancelled`] at once, and so does every task waiting for it. A
/// task still waiting for its arguments or for resources never runs. A running async task is
/// aborted at its next `.await`. A running sync task cannot be interrupted in-process: it runs
/// to its end on its thread and its result is discarded. An actor call not yet started is
/// skipped; one already running finishes and its result is discarded.
///
/// Returns whether the ref was still pending (false for a finished task, or a `put` object).
///
/// On the Ray backend, cancelling is not available (Ray's C++ API has none): it returns false
/// and the task runs on.
pub fn cancel<T>(r: &ObjectRef<T>) -> bool {
    let shared = runtime::current();
    if shared.ray().is_some() {
        return false;
    }
    r.cell_in(shared.id).is_some_and(|cell| cell.cancel())
}

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
                if let Some(state) = cell.subscribe(Waiter::Countdown(Arc::clone(&countdown))) {
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
    if countdown.done() {
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
