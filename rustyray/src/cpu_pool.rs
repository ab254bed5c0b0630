//! The CPU pool: the threads that run sync task bodies and sync actor methods.
//!
//! # Design
//!
//! How many bodies run at once is the scheduler's business (CPU slots); the pool only supplies
//! threads. It keeps a queue of jobs under one lock and a condition variable, and grows by one
//! thread whenever a job arrives and no thread is idle: a task blocked in `get` keeps its thread
//! while lending its CPU slot, so the pool must be able to run more jobs than there are CPUs.
//! Threads beyond the configured CPU count that stay idle for [`IDLE_TIMEOUT`] leave.
//!
//! Continuations run where they are made. While a pool thread is *finishing* a job (storing
//! its result and waking what waited for it), a job that this makes ready goes into the
//! thread's own one-job slot instead of the queue, and the thread runs it next. A chain of
//! dependent tasks then runs on one thread with no hand-off. The slot is used only while
//! finishing, never by a running body that submits tasks, since a body that then blocks on its
//! own children would wait for a job parked behind itself.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A job for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How long a thread beyond the CPU count may stay idle before it leaves.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shut_down: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    available: Condvar,
    /// Threads kept even when idle.
    core: usize,
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

thread_local! {
    /// The pool this thread belongs to, if it is a pool thread.
    static MEMBER: RefCell<Option<std::sync::Weak<Inner>>> = const { RefCell::new(None) };
    /// Set while the thread finishes a job: then new jobs go to `NEXT`.
    static FINISHING: Cell<bool> = const { Cell::new(false) };
    /// The job this thread runs next.
    static NEXT: RefCell<Option<Job>> = const { RefCell::new(None) };
}

impl CpuPool {
    pub(crate) fn new(
        core: usize,
        name: String,
        on_start: impl Fn() -> Option<tokio::runtime::Handle> + Send + Sync + 'static,
    ) -> CpuPool {
        CpuPool {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shut_down: false,
                }),
                available: Condvar::new(),
                core: core.max(1),
                name,
                on_start: Box::new(on_start),
            }),
        }
    }

    /// Runs `job` on a pool thread.
    pub(crate) fn spawn(&self, job: Job) {
        let job = match self.keep_local(job) {
            None => return,
            Some(job) => job,
        };
        let mut queue = self.inner.queue.lock();
        if queue.shut_down {
            return;
        }
        queue.jobs.push_back(job);
        if queue.idle > 0 {
            queue.idle -= 1; // counted out here so two pushes never wake the same thread
            drop(queue);
            self.inner.available.notify_one();
        } else {
            queue.threads += 1;
            drop(queue);
            self.start_thread();
        }
    }

    /// Keeps `job` as this thread's next one if the thread is finishing a job of this pool and
    /// has no next job yet; gives it back otherwise.
    fn keep_local(&self, job: Job) -> Option<Job> {
        if !FINISHING.with(Cell::get) {
            return Some(job);
        }
        let ours = MEMBER.with(|m| {
            m.borrow()
                .as_ref()
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.inner)))
        });
        if !ours {
            return Some(job);
        }
        NEXT.with(|next| {
            let mut next = next.borrow_mut();
            if next.is_none() {
                *next = Some(job);
                None
            } else {
                Some(job)
            }
        })
    }

    fn start_thread(&self) {
        let inner = Arc::clone(&self.inner);
        let started = std::thread::Builder::new()
            .name(self.inner.name.clone())
            .spawn(move || worker(inner));
        if started.is_err() {
            // No thread could be made: the job waits for a thread that becomes idle.
            self.inner.queue.lock().threads -= 1;
        }
    }

    /// Stops taking jobs; idle threads leave, busy ones after their job. Queued jobs are
    /// dropped (their results were already failed by the runtime's shutdown).
    pub(crate) fn shutdown(&self) {
        let jobs = {
            let mut queue = self.inner.queue.lock();
            queue.shut_down = true;
            std::mem::take(&mut queue.jobs)
        };
        self.inner.available.notify_all();
        drop(jobs);
    }
}

/// Runs `finish` (storing a result, waking its waiters) with continuations kept on this
/// thread; see the module documentation.
pub(crate) fn finishing<R>(finish: impl FnOnce() -> R) -> R {
    let was = FINISHING.with(|f| f.replace(true));
    let out = finish();
    FINISHING.with(|f| f.set(was));
    out
}

fn worker(inner: Arc<Inner>) {
    MEMBER.with(|m| *m.borrow_mut() = Some(Arc::downgrade(&inner)));
    let tokio = (inner.on_start)();
    let _entered = tokio.as_ref().map(tokio::runtime::Handle::enter);
    let mut queue = inner.queue.lock();
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            drop(queue);
            run(job);
            queue = inner.queue.lock();
            continue;
        }
        if queue.shut_down {
            break;
        }
        queue.idle += 1;
        let timed_out = inner
            .available
            .wait_for(&mut queue, IDLE_TIMEOUT)
            .timed_out();
        if timed_out && queue.jobs.is_empty() && queue.threads > inner.core {
            queue.idle -= 1;
            break;
        }
        if timed_out {
            // Not notified, so still counted idle: count it out ourselves.
            queue.idle = queue.idle.saturating_sub(1);
        }
    }
    queue.threads -= 1;
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
