//! The global functions: `put`, `get`, `wait` and their variants.
//!
//! Each works anywhere: on the main thread, inside tasks, inside actor methods, in async code.
//! They use the current runtime (see [`Runtime::enter`](crate::Runtime::enter)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::object_ref::{AsObjectRef, ObjectRef};
use crate::object_store::{Cell, Value};
use crate::runtime::{self, Reader};

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
    Ok(ObjectRef::from_new_cell(
        shared.backend().put(&shared, value)?,
    ))
}

/// Stores a value that is already shared, without copying it: O(1) whatever its size. The
/// store keeps the same `Arc`, so [`get_arc`] and the `&T` and `Arc<T>` parameters of tasks
/// see this very value (on the Ray backend it is serialized, as by [`put`]). An object whose
/// value is still shared outside the store is never spilled to disk.
///
/// ```
/// use std::sync::Arc;
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// let weights = Arc::new(vec![0.5f32; 1 << 20]);
/// let r = rustyray::put_arc(Arc::clone(&weights))?;
/// assert!(Arc::ptr_eq(&rustyray::get_arc(&r)?, &weights));
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn put_arc<T: Value>(value: Arc<T>) -> Result<ObjectRef<T>> {
    let shared = runtime::current();
    shared.check()?;
    Ok(ObjectRef::from_new_cell(
        shared.backend().put_arc(&shared, value)?,
    ))
}

/// Stores a copy of `items` as a `Vec<T>`, as Ray's `ray.put(array)` copies a NumPy array, and
/// keeps `items` yours.
///
/// Use it to put large arrays again and again. A copy of a megabyte or more goes into memory
/// the store kept from an earlier `put_slice` value that was freed, so it costs a `memcpy`,
/// where `put(items.to_vec())` would also pay a page fault for every 4 KiB of fresh memory (a
/// third of the speed). The store keeps a few such blocks, within its memory budget, and frees
/// them before it spills anything.
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// let samples = vec![0.25f32; 1 << 20];
/// for _ in 0..4 {
///     let r = rustyray::put_slice(&samples)?; // a Vec<f32>, copied
///     assert_eq!(rustyray::get_arc(&r)?.len(), samples.len());
/// }
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn put_slice<T: Value + Copy>(items: &[T]) -> Result<ObjectRef<Vec<T>>> {
    let shared = runtime::current();
    shared.check()?;
    Ok(ObjectRef::from_new_cell(
        shared.backend().put_slice(&shared, items)?,
    ))
}

/// Waits for the object and returns a copy of its value (a clone of the stored one), or the
/// error that failed it. Never gives up on its own: use [`get_timeout`] for a bounded wait.
///
/// Inside a task, the wait lends the task's CPU back to the scheduler. If `r` is the result of
/// the call this thread just sent to an idle sync actor, the call may run on this thread
/// instead of waking a pool thread (the same call, in the same order, without the two thread
/// wake-ups of the round trip). [`get_timeout`] never does that.
///
/// It takes the ref or a reference to it (`get(&r)` keeps `r`). For several refs, [`get_all`]
/// reads them all (waiting once); passing a `Vec` of refs here, or a plain value, is a compile
/// error that says so.
pub fn get<R>(r: R) -> Result<R::Value>
where
    R: AsObjectRef,
    R::Value: Value + Clone,
{
    get_until(r.as_object_ref(), None, Cell::read_value)
}

/// Like [`get`], but shares the stored value instead of cloning it: O(1) whatever its size.
pub fn get_arc<R>(r: R) -> Result<Arc<R::Value>>
where
    R: AsObjectRef,
    R::Value: Value,
{
    get_until(r.as_object_ref(), None, Cell::read)
}

/// Like [`get`], but fails with [`Error::Timeout`](crate::Error::Timeout) if the object is not
/// resolved within `timeout`. The task producing it keeps running.
pub fn get_timeout<T: Value + Clone>(r: &ObjectRef<T>, timeout: Duration) -> Result<T> {
    get_until(r, crate::deadline::after(timeout), Cell::read_value)
}

/// The object's value once resolved, as `read` gives it, or
/// [`Error::Timeout`](crate::Error::Timeout) when the deadline passes first.
fn get_until<T: Value, R: From<T>>(
    r: &ObjectRef<T>,
    deadline: Option<Instant>,
    read: Reader<R>,
) -> Result<R> {
    let shared = runtime::current();
    shared.check()?;
    shared.backend().get(&shared, r, deadline, read)
}

/// Gets every object, in order; fails with the first error met.
///
/// The calling thread blocks at most once while all goes well: at the first object still
/// pending, it waits for all the remaining ones together (woken early if one fails).
pub fn get_all<T: Value + Clone>(refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    let shared = runtime::current();
    shared.check()?;
    shared.backend().get_all(&shared, refs, Cell::read_value)
}

/// Like [`get_all`], but shares each stored value instead of cloning it (as [`get_arc`] does for
/// one): O(1) per object whatever its size, and no `Clone` needed.
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// let refs = vec![rustyray::put(vec![0u8; 1 << 20])?, rustyray::put(vec![1u8; 1 << 20])?];
/// let values = rustyray::get_all_arc(&refs)?; // two `Arc<Vec<u8>>`, nothing copied
/// assert_eq!(values[1][0], 1);
/// assert!(std::sync::Arc::ptr_eq(&values[0], &rustyray::get_arc(&refs[0])?));
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn get_all_arc<T: Value>(refs: &[ObjectRef<T>]) -> Result<Vec<Arc<T>>> {
    let shared = runtime::current();
    shared.check()?;
    shared.backend().get_all(&shared, refs, Cell::read)
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
    let deadline = timeout.and_then(crate::deadline::after);
    let resolved = shared.backend().wait(&shared, refs, need, deadline);
    split(refs, need, |i, r| resolved.is_resolved(i, r))
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
/// The ref fails with [`Error::Cancelled`](crate::Error::Cancelled) at once, and so does every
/// task waiting for it. A task still waiting for its arguments or for resources never runs. A
/// running async task is aborted at its next `.await`. A running sync task cannot be
/// interrupted in-process: it runs to its end on its thread and its result is discarded (its
/// body may stop early by checking [`is_cancelled`]). An actor call not yet started is skipped;
/// one already running finishes and its result is discarded.
///
/// Cancelling a task also cancels the tasks its body submitted that are still pending, and
/// theirs in turn (Ray's `recursive=True`, its default).
///
/// Returns whether the ref was still pending (false for a finished task, or a `put` object).
///
/// On the Ray backend, cancelling is cooperative as it is for a sync task here: a cancelled task
/// that has not started fails `Cancelled` when it would start, a running one sees
/// [`is_cancelled`] (within a tenth of a second) and its result is discarded, and so for the
/// tasks it submitted. An actor call on Ray is not cancelled (this returns false).
pub fn cancel<T>(r: &ObjectRef<T>) -> bool {
    let shared = runtime::current();
    shared.backend().cancel(&shared, r)
}

/// Inside a task's body (sync or async): whether the task was cancelled, by
/// [`cancel`] on its ref or on the ref of the task that submitted it. A sync body cannot be
/// interrupted, so one that runs long checks this between steps and returns early; an async
/// body is also dropped at its next `.await`. Outside a task's body, `false`. On the Ray backend
/// the worker learns of a cancel within a tenth of a second, with no round trip per check.
///
/// ```
/// #[rustyray::remote]
/// fn crunch(steps: u64) -> u64 {
///     let mut done = 0;
///     while done < steps && !rustyray::is_cancelled() {
///         done += 1; // one step of real work
///     }
///     done
/// }
///
/// fn main() -> rustyray::Result<()> {
/// #   let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(1))?;
/// #   let _guard = rt.enter();
///     assert!(!rustyray::is_cancelled()); // not in a task
///     assert_eq!(rustyray::get(&crunch::remote(1000))?, 1000);
///     Ok(())
/// }
/// ```
pub fn is_cancelled() -> bool {
    runtime::current().backend().is_cancelled()
}

/// Inside a task's body: the ids of the GPUs its lease holds (Ray's `get_gpu_ids`). Whole-GPU
/// requests get GPUs of their own, distinct from every other task's; a fraction shares one GPU
/// with other fractions. Empty outside a task, for a task that asked for no GPU, and on the Ray
/// backend. Ids count from 0 among the runtime's GPUs (`Config::num_gpus`, by default those
/// `CUDA_VISIBLE_DEVICES` lists or the NVIDIA driver reports).
///
/// ```
/// #[rustyray::remote(num_gpus = 1)]
/// fn on_one_gpu() -> Vec<usize> {
///     // Hand the GPU to a child process: `CUDA_VISIBLE_DEVICES` takes the same ids.
///     rustyray::gpu_ids()
/// }
///
/// fn main() -> rustyray::Result<()> {
/// #   let rt = rustyray::Runtime::new(rustyray::Config::default().num_gpus(2))?;
/// #   let _guard = rt.enter();
///     let (a, b) = (on_one_gpu::remote(), on_one_gpu::remote());
///     let (a, b) = (rustyray::get(&a)?, rustyray::get(&b)?);
///     assert_eq!((a.len(), b.len()), (1, 1));
///     assert!(rustyray::gpu_ids().is_empty()); // not in a task
///     Ok(())
/// }
/// ```
pub fn gpu_ids() -> Vec<usize> {
    crate::scheduler::gpu_ids()
}

/// Writes the current runtime's recent tasks and actor calls to `path` as a Chrome trace
/// (open it in <https://ui.perfetto.dev> or `chrome://tracing`), and returns how many it wrote.
///
/// Each thread keeps its last [`EVENTS_PER_THREAD`](crate::EVENTS_PER_THREAD) events. Sync tasks and calls are shown
/// on the row of the thread that ran them; async ones as slices of their own.
///
/// ```
/// # let rt = rustyray::Runtime::new(rustyray::Config::default()).unwrap();
/// # let _guard = rt.enter();
/// let mut task = rustyray::task::TaskBuilder::new("answer");
/// let r = task.spawn(|| Ok(42));
/// rustyray::get(&r)?;
/// let path = std::env::temp_dir().join(format!("doc-timeline-{}.json", std::process::id()));
/// assert!(rustyray::timeline(&path)? >= 1);
/// # std::fs::remove_file(path).ok();
/// # Ok::<(), rustyray::Error>(())
/// ```
pub fn timeline(path: impl AsRef<std::path::Path>) -> Result<usize> {
    crate::timeline::write_trace(runtime::current().id(), path.as_ref())
}
