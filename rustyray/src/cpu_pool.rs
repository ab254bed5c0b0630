//! The CPU pool: the threads that run sync task bodies and sync actor methods.
//!
//! # Design
//!
//! How many bodies run at once is the scheduler's business (CPU slots); the pool only supplies
//! threads. A task blocked in `get` keeps its thread while lending its CPU slot, so the pool
//! must be able to run more jobs than there are CPUs, up to `Config::max_threads`.
//!
//! ## Making a thread only when none can take the job
//!
//! A task stores its result, and so makes the next one ready, *before* its thread is back at
//! the queue. Growing whenever no thread was idle at that moment made a thread at each such
//! race: a process submitting no-op tasks from one thread grew from 12 to 26 threads over 50M
//! tasks, each new thread with its own allocator arena. So the pool keeps `spare`: the threads
//! on their way to the queue (a thread counts itself when it starts finishing a job, or when a
//! job without a finishing step ends; a woken or new thread is counted by whoever woke or made
//! it) minus the queued jobs that count on them. A job queued while `spare` is positive takes
//! one of those threads and wakes or makes none; otherwise it wakes the most recently idle
//! thread, or makes one below the limit. At the limit it waits for a thread to come back, and
//! the pool warns once.
//!
//! Idle threads wait on a stack, each on its own condition variable, and a job wakes the top
//! one: under a steady load the same few threads cycle, and the ones at the bottom time out
//! after [`IDLE_TIMEOUT`] and leave (down to the CPU count). A thread whose wait times out just
//! as it is woken takes the job it was woken for (the waker took it off the stack under the
//! lock and marked it).
//!
//! ## Continuations run where they are made
//!
//! While a pool thread is *finishing* a job (storing its result and waking what waited for it),
//! a job that this makes ready goes into the thread's own one-job slot instead of the queue,
//! and the thread runs it next. A chain of dependent tasks then runs on one thread with no
//! hand-off. The slot is used only while finishing, never by a running body that submits tasks,
//! since a body that then blocks on its own children would wait for a job parked behind itself.
//! Nor is it used when a queued job already counts on this thread coming back (`spare` would go
//! below zero): that job would wait behind the continuation, which may itself wait for it.
//!
//! Both rules are model-checked (`loom_tests` below, `--cfg rustyray_loom`); each model fails
//! when its guard is removed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use crate::sync::{Condvar, Mutex};

/// A job for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How long a thread beyond the CPU count may stay idle before it leaves.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most threads a pool makes unless configured otherwise.
pub(crate) const DEFAULT_MAX_THREADS: usize = 1024;

struct Queue {
    jobs: VecDeque<Job>,
    /// Idle threads, the most recently idle on top. A job wakes the top one, so under a
    /// steady load the same few threads cycle and the ones at the bottom time out and leave.
    idle: Vec<Arc<Sleeper>>,
    threads: usize,
    /// Whether the limit was reported (once per pool).
    warned: bool,
    shut_down: bool,
    /// In the loom models, where waits never time out: set to make idle threads act as if
    /// theirs had (see `expire_idle`).
    #[cfg(rustyray_loom)]
    expired: bool,
}

/// One idle thread's place in [`Queue::idle`].
struct Sleeper {
    wake: Condvar,
    /// Set (under the queue's lock) by whoever took this thread off the idle stack.
    woken: AtomicBool,
}

struct Inner {
    queue: Mutex<Queue>,
    /// Threads on their way to the queue (returning from a job or woken) minus the queued jobs
    /// that count on them. Negative only at the thread limit. See the module documentation.
    spare: AtomicIsize,
    /// Whether the queue holds a job: written under the queue's lock, read without it by a
    /// thread lingering before it leaves `spare` (see [`linger`]).
    has_jobs: AtomicBool,
    /// Threads kept even when idle.
    core: usize,
    /// Threads never exceeded.
    max: usize,
    name: String,
    /// Runs on each new thread before it takes jobs: sets the thread's current runtime and
    /// returns the tokio handle to enter, so bodies can use tokio.
    on_start: Box<dyn Fn() -> Option<tokio::runtime::Handle> + Send + Sync>,
}

/// A growable pool of threads for blocking work.
#[derive(Clone)]
pub(crate) struct CpuPool {
    inner: Arc<Inner>,
}

crate::sync::thread_locals! {
    /// The pool this thread belongs to, if it is a pool thread.
    static MEMBER: RefCell<Option<Arc<Inner>>> = RefCell::new(None);
    /// Set while the thread finishes a job: then new jobs may go to `NEXT`.
    static FINISHING: Cell<bool> = Cell::new(false);
    /// Set once this thread counted itself in `spare`, on its way back to the queue.
    static RETURNING: Cell<bool> = Cell::new(false);
    /// The job this thread runs next.
    static NEXT: RefCell<Option<Job>> = RefCell::new(None);
}

impl CpuPool {
    /// A pool keeping `core` threads once made, and never more than `max`.
    pub(crate) fn new(
        core: usize,
        max: usize,
        name: String,
        on_start: impl Fn() -> Option<tokio::runtime::Handle> + Send + Sync + 'static,
    ) -> CpuPool {
        let core = core.max(1);
        CpuPool {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    idle: Vec::new(),
                    threads: 0,
                    warned: false,
                    shut_down: false,
                    #[cfg(rustyray_loom)]
                    expired: false,
                }),
                spare: AtomicIsize::new(0),
                has_jobs: AtomicBool::new(false),
                core,
                max: max.max(core),
                name,
                on_start: Box::new(on_start),
            }),
        }
    }

    /// Runs `job` on a pool thread.
    pub(crate) fn spawn(&self, job: Job) {
        if let Some(job) = self.keep_local(job) {
            self.queue(job);
        }
    }

    /// Queues `job`, making sure a thread comes for it: one already on its way, the most
    /// recently idle one, or a new one (below the limit).
    fn queue(&self, job: Job) {
        let inner = &self.inner;
        let mut queue = inner.queue.lock();
        if queue.shut_down {
            return;
        }
        queue.jobs.push_back(job);
        inner.has_jobs.store(true, Ordering::Release);
        if inner.spare.fetch_sub(1, Ordering::AcqRel) > 0 {
            return; // a thread on its way to the queue takes it
        }
        if let Some(sleeper) = queue.idle.pop() {
            sleeper.woken.store(true, Ordering::Relaxed);
            inner.spare.fetch_add(1, Ordering::AcqRel);
            drop(queue);
            sleeper.wake.notify_one();
        } else if queue.threads < inner.max {
            queue.threads += 1;
            inner.spare.fetch_add(1, Ordering::AcqRel);
            drop(queue);
            self.start_thread();
        } else if !queue.warned {
            queue.warned = true;
            drop(queue);
            tracing::warn!(
                target: "rustyray::pool",
                limit = inner.max,
                "all {} threads of the CPU pool are busy (running bodies, or blocked in `get` \
                 inside tasks); new work waits for one of them to finish. If every thread waits \
                 for work still queued, this is a deadlock: raise `Config::max_threads` \
                 (RUSTYRAY_MAX_THREADS) or block less inside tasks",
                inner.max
            );
        }
    }

    /// Keeps `job` as this thread's next one if the thread is finishing a job of this pool,
    /// has no next job yet, and no queued job counts on it coming back; gives it back otherwise.
    fn keep_local(&self, job: Job) -> Option<Job> {
        if !FINISHING.with(Cell::get) {
            return Some(job);
        }
        let ours = MEMBER.with(|m| {
            m.borrow()
                .as_ref()
                .is_some_and(|member| Arc::ptr_eq(member, &self.inner))
        });
        if !ours || NEXT.with(|next| next.borrow().is_some()) {
            return Some(job);
        }
        if RETURNING.with(Cell::get) {
            // This thread counted itself as on its way back: take that back, unless a queued
            // job already counts on it.
            let spare = &self.inner.spare;
            let mut now = spare.load(Ordering::Acquire);
            loop {
                if now <= 0 {
                    return Some(job);
                }
                match spare.compare_exchange_weak(now, now - 1, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => break,
                    Err(actual) => now = actual,
                }
            }
            RETURNING.with(|r| r.set(false));
        }
        NEXT.with(|next| *next.borrow_mut() = Some(job));
        None
    }

    fn start_thread(&self) {
        let inner = Arc::clone(&self.inner);
        let started = crate::sync::thread::Builder::new()
            .name(self.inner.name.clone())
            .spawn(move || worker(inner));
        if started.is_err() {
            // No thread could be made: the job waits for a thread that comes back.
            self.inner.queue.lock().threads -= 1;
            self.inner.spare.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// How many threads the pool has now.
    #[cfg(all(test, not(rustyray_loom)))]
    pub(crate) fn threads(&self) -> usize {
        self.inner.queue.lock().threads
    }

    /// Wakes the idle threads as if their waits had timed out (loom does not time waits out).
    #[cfg(all(test, rustyray_loom))]
    fn expire_idle(&self) {
        let mut queue = self.inner.queue.lock();
        queue.expired = true;
        for sleeper in &queue.idle {
            sleeper.wake.notify_one();
        }
    }

    /// Stops taking jobs; idle threads leave, busy ones after their job. Queued jobs are
    /// dropped (their results were already failed by the runtime's shutdown).
    pub(crate) fn shutdown(&self) {
        let (jobs, sleepers) = {
            let mut queue = self.inner.queue.lock();
            queue.shut_down = true;
            for sleeper in &queue.idle {
                sleeper.woken.store(true, Ordering::Relaxed);
            }
            (
                std::mem::take(&mut queue.jobs),
                std::mem::take(&mut queue.idle),
            )
        };
        for sleeper in sleepers {
            sleeper.wake.notify_one();
        }
        drop(jobs);
    }
}

/// Runs `finish` (storing a result, waking its waiters) with continuations kept on this
/// thread; see the module documentation. On a pool thread, the thread counts as on its way
/// back to the queue from here on, so a job made ready meanwhile waits for it instead of
/// making a new thread.
pub(crate) fn finishing<R>(finish: impl FnOnce() -> R) -> R {
    returning();
    let was = FINISHING.with(|f| f.replace(true));
    let out = finish();
    FINISHING.with(|f| f.set(was));
    out
}

/// Counts this pool thread (if it is one) as on its way back to the queue, once.
fn returning() {
    if RETURNING.with(Cell::get) || NEXT.with(|next| next.borrow().is_some()) {
        return;
    }
    MEMBER.with(|m| {
        if let Some(inner) = &*m.borrow() {
            inner.spare.fetch_add(1, Ordering::AcqRel);
            RETURNING.with(|r| r.set(true));
        }
    });
}

fn worker(inner: Arc<Inner>) {
    // A new thread was counted on its way to the queue by whoever made it.
    MEMBER.with(|m| *m.borrow_mut() = Some(Arc::clone(&inner)));
    let tokio = (inner.on_start)();
    let _entered = tokio.as_ref().map(tokio::runtime::Handle::enter);
    let sleeper = Arc::new(Sleeper {
        wake: Condvar::new(),
        woken: AtomicBool::new(false),
    });
    let mut queue = inner.queue.lock();
    // Whether the thread lingered since it last found the queue empty.
    let mut lingered = false;
    loop {
        // Arrived: no longer on the way. Taking a job keeps `spare` as it is (one thread and
        // one job fewer); finding none takes this thread out of it.
        RETURNING.with(|r| r.set(false));
        if let Some(job) = take_job(&inner, &mut queue) {
            drop(queue);
            run(job);
            returning();
            queue = inner.queue.lock();
            lingered = false;
            continue;
        }
        // Still counted on its way: a job queued in the next microseconds is this thread's,
        // with no wake-up (see `linger`).
        if !std::mem::replace(&mut lingered, true) && !queue.shut_down && LINGERS {
            queue = linger(&inner, queue);
            continue;
        }
        lingered = false;
        inner.spare.fetch_sub(1, Ordering::AcqRel);
        if queue.shut_down {
            break;
        }
        queue.idle.push(Arc::clone(&sleeper));
        loop {
            let timed_out = sleeper.wake.wait_for(&mut queue, IDLE_TIMEOUT).timed_out();
            #[cfg(rustyray_loom)]
            let timed_out = timed_out || queue.expired;
            if sleeper.woken.swap(false, Ordering::Relaxed) {
                break; // taken off the stack and counted on its way by the waker
            }
            if timed_out && queue.threads > inner.core {
                queue.idle.retain(|s| !Arc::ptr_eq(s, &sleeper));
                queue.threads -= 1;
                return;
            }
        }
    }
    queue.threads -= 1;
}

/// The next queued job, if any (under the queue's lock).
fn take_job(inner: &Inner, queue: &mut Queue) -> Option<Job> {
    let job = queue.jobs.pop_front()?;
    if queue.jobs.is_empty() {
        inner.has_jobs.store(false, Ordering::Release);
    }
    Some(job)
}

/// Whether idle threads linger before they wait: not in the loom models, where lingering
/// only delays the thread's arrival at the queue, which the models already let happen at any
/// point (and a model cannot spin on the clock).
const LINGERS: bool = cfg!(not(rustyray_loom));

/// Waits a few microseconds, without the queue's lock, for a job to be queued, then takes the
/// lock back (see `linger.rs`). The thread stays counted in `spare` meanwhile, so a job queued
/// now counts on it and wakes no one.
fn linger<'a>(
    inner: &'a Inner,
    queue: crate::sync::MutexGuard<'a, Queue>,
) -> crate::sync::MutexGuard<'a, Queue> {
    drop(queue);
    crate::linger::until(|| inner.has_jobs.load(Ordering::Acquire));
    inner.queue.lock()
}

/// Runs a job, then the continuations it leaves in this thread's slot.
fn run(job: Job) {
    let mut job = Some(job);
    while let Some(current) = job.take() {
        // A panic inside a job is caught by the job itself; this guards the thread anyway.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(current));
        job = NEXT.with(|next| next.borrow_mut().take());
    }
}

#[cfg(all(test, not(rustyray_loom)))]
mod tests {
    use super::*;
    use std::sync::{mpsc, Barrier};

    fn pool(core: usize, max: usize) -> CpuPool {
        CpuPool::new(core, max, "test-pool".to_owned(), || None)
    }

    #[test]
    fn a_stream_of_jobs_reuses_the_threads_coming_back() {
        let pool = pool(2, 64);
        let (done, finished) = mpsc::channel();
        for i in 0..5_000 {
            let done = done.clone();
            // As a task does: the result is stored (and the submitter woken) while finishing.
            pool.spawn(Box::new(move || finishing(|| done.send(i).unwrap())));
            assert_eq!(finished.recv().unwrap(), i);
        }
        // Each job was queued while the previous one's thread was on its way back: one thread
        // was ever needed.
        assert_eq!(pool.threads(), 1);
        pool.shutdown();
    }

    #[test]
    fn jobs_that_block_together_get_a_thread_each_up_to_the_limit() {
        let pool = pool(1, 3);
        let barrier = Arc::new(Barrier::new(3));
        let (done, finished) = mpsc::channel();
        for i in 0..4 {
            let (barrier, done) = (Arc::clone(&barrier), done.clone());
            pool.spawn(Box::new(move || {
                if i < 3 {
                    barrier.wait(); // the three first ones need three threads at once
                }
                done.send(i).unwrap();
            }));
        }
        let mut got: Vec<i32> = (0..4).map(|_| finished.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3], "the fourth ran once a thread was free");
        assert_eq!(pool.threads(), 3, "never more than the limit");
        pool.shutdown();
    }
}

/// Models of the pool's accounting: every job runs (a job counting on a thread on its way back
/// is never stranded) and the pool never makes more threads than its limit, whatever the
/// interleaving of submissions, continuations, idle timeouts and wake-ups.
/// Run with `.ci/loom`.
#[cfg(all(test, rustyray_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{Condvar, Mutex};

    /// Counts finished jobs; lets the model wait for a number of them.
    #[derive(Default)]
    struct Latch {
        count: Mutex<usize>,
        changed: Condvar,
    }

    impl Latch {
        fn add(&self) {
            *self.count.lock() += 1;
            self.changed.notify_all();
        }

        fn wait_for(&self, n: usize) {
            let mut count = self.count.lock();
            while *count < n {
                self.changed.wait(&mut count);
            }
        }
    }

    #[test]
    fn a_thread_woken_as_its_idle_wait_times_out_takes_the_job() {
        crate::sync::model(2, || {
            let pool = CpuPool::new(1, 2, "model".to_owned(), || None);
            let done = Arc::new(Latch::default());
            // Two jobs at once: the first waits for the second, so two threads are needed.
            let second_started = Arc::new(Latch::default());
            {
                let (done, second_started) = (Arc::clone(&done), Arc::clone(&second_started));
                pool.spawn(Box::new(move || {
                    second_started.wait_for(1);
                    done.add();
                }));
            }
            {
                let (done, second_started) = (Arc::clone(&done), Arc::clone(&second_started));
                pool.spawn(Box::new(move || {
                    second_started.add();
                    done.add();
                }));
            }
            done.wait_for(2);
            // Both threads go idle; one of them times out while a new job arrives.
            let clock = {
                let pool = pool.clone();
                loom::thread::spawn(move || pool.expire_idle())
            };
            let job_done = Arc::clone(&done);
            pool.spawn(Box::new(move || job_done.add()));
            done.wait_for(3);
            clock.join().unwrap();
            assert!(pool.inner.queue.lock().threads <= 2);
            pool.shutdown();
        });
    }

    #[test]
    fn a_job_counting_on_a_finishing_thread_never_waits_behind_its_continuation() {
        crate::sync::model(2, || {
            let pool = CpuPool::new(1, 2, "model".to_owned(), || None);
            let done = Arc::new(Latch::default());
            let outside_ran = Arc::new(Latch::default());
            {
                let (inner_pool, done) = (pool.clone(), Arc::clone(&done));
                let outside_ran = Arc::clone(&outside_ran);
                pool.spawn(Box::new(move || {
                    // As a task storing its result: it makes a continuation ready, which
                    // here waits for the job from outside. If that job was queued counting on
                    // this thread, the continuation must not be kept to run here first.
                    let next_done = Arc::clone(&done);
                    finishing(|| {
                        inner_pool.spawn(Box::new(move || {
                            outside_ran.wait_for(1);
                            next_done.add();
                        }))
                    });
                    done.add();
                }));
            }
            {
                let (done, outside_ran) = (Arc::clone(&done), Arc::clone(&outside_ran));
                pool.spawn(Box::new(move || {
                    outside_ran.add();
                    done.add();
                }));
            }
            done.wait_for(3);
            assert!(pool.inner.queue.lock().threads <= 2);
            pool.shutdown();
        });
    }
}
