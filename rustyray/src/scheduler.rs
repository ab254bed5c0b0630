//! The scheduler: resource accounting and the queue of tasks whose dependencies are ready.
//!
//! # Design
//!
//! Resources are counted in thousandths (so `num_cpus(0.5)` is exact): index 0 is CPU, 1 is GPU,
//! then the custom resources in the order the [`Config`] declared them. A task's [`Demand`] is
//! the list of non-zero amounts it needs.
//!
//! A task enters the scheduler only once all its dependencies are resolved. If nothing of its
//! shape is queued before it and its demand fits, it starts at once; otherwise it waits in the
//! FIFO queue of its shape (one queue per distinct demand, so a large request never blocks small
//! ones behind it). Whenever resources come back, every queue's head is started while it fits.
//! All of that happens under one short lock, and starting a task only hands it to an executor
//! (the CPU pool or tokio), never runs it inline.
//!
//! A running task holds a [`Lease`]. A task that blocks waiting for an object (`get`, `wait`,
//! or `.await` on a ref inside a task) lends its CPUs back for the duration through a
//! [`BlockedGuard`]; when it resumes it takes them again even if that briefly oversubscribes the
//! CPUs, exactly as Ray does. That is what keeps nested tasks from deadlocking the pool.
//!
//! When the scheduler becomes idle after a burst of tasks, it gives the freed heap memory back
//! to the system (see [`crate::heap`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::heap;
use crate::object_store::Producer;

const MILLI: f64 = 1000.0;
const CPU: usize = 0;
const GPU: usize = 1;
/// Queues of distinct demands kept while empty.
const KEPT_QUEUES: usize = 8;

/// What one task needs: `(resource index, thousandths)` pairs, sorted, amounts non-zero. CPU
/// and GPU fit inline, so the common demand allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Demand(SmallVec<[(usize, i64); 2]>);

impl Demand {
    fn cpu(&self) -> i64 {
        self.0
            .iter()
            .find(|(i, _)| *i == CPU)
            .map_or(0, |(_, amount)| *amount)
    }
}

/// What starts a task once its resources are granted.
pub(crate) type Start = Box<dyn FnOnce(Lease) + Send>;

/// A task ready to be scheduled: what it needs, and how to start it.
pub(crate) struct Queued {
    pub(crate) demand: Demand,
    pub(crate) start: Start,
}

struct State {
    available: Vec<i64>,
    /// One FIFO queue per shape of demand. Entries are only the start closures (16 bytes):
    /// a burst of a million queued tasks costs 16 MB of queue, not the 56 MB it took with
    /// each entry's demand beside it.
    queues: Vec<(Demand, VecDeque<Start>)>,
    /// Leases given back since the heap's free memory was last released.
    finished_since_release: u64,
}

impl State {
    fn fits(&self, demand: &Demand) -> bool {
        demand
            .0
            .iter()
            .all(|&(i, amount)| self.available[i] >= amount)
    }

    fn take(&mut self, demand: &Demand) {
        for &(i, amount) in demand.0.iter() {
            self.available[i] -= amount;
        }
    }

    fn give(&mut self, demand: &Demand) {
        for &(i, amount) in demand.0.iter() {
            self.available[i] += amount;
        }
    }

    /// Pops every queue head that fits now, taking its resources. (Usually one or two, which
    /// need no allocation.)
    fn runnable(&mut self) -> SmallVec<[Queued; 2]> {
        let mut out = SmallVec::new();
        let mut emptied = false;
        for q in 0..self.queues.len() {
            while !self.queues[q].1.is_empty() && self.fits(&self.queues[q].0) {
                let (demand, queue) = &mut self.queues[q];
                if let Some(start) = queue.pop_front() {
                    let demand = demand.clone();
                    self.take(&demand);
                    out.push(Queued { demand, start });
                }
            }
            emptied |= self.queues[q].1.is_empty();
        }
        // An empty queue is kept with its memory (a burst of tasks fills the same one again,
        // where regrowing it would scatter large blocks over the heap), unless there are many
        // shapes of demand.
        if emptied && self.queues.len() > KEPT_QUEUES {
            self.queues.retain(|(_, queue)| !queue.is_empty());
        }
        out
    }
}

/// Resource accounting and the ready queue of one runtime.
pub(crate) struct Scheduler {
    names: Vec<String>,
    total: Vec<i64>,
    /// The demand of the default request (one CPU), if this runtime has a CPU to give.
    one_cpu: Option<Demand>,
    state: Mutex<State>,
    /// How many tasks must finish before becoming idle releases free memory (`None`: never).
    release_after: Option<u64>,
    /// What releases it ([`heap::release_free_memory`], or a counter in tests).
    release_memory: fn(),
}

impl Scheduler {
    pub(crate) fn new(config: &Config) -> Arc<Scheduler> {
        let mut names = vec!["CPU".to_owned(), "GPU".to_owned()];
        let mut total = vec![
            to_milli(config.get_num_cpus() as f64),
            to_milli(config.get_num_gpus() as f64),
        ];
        for (name, amount) in config.get_resources() {
            names.push(name.clone());
            total.push(to_milli(*amount));
        }
        let one_cpu = (total[CPU] >= to_milli(1.0))
            .then(|| Demand(smallvec::smallvec![(CPU, to_milli(1.0))]));
        Arc::new(Scheduler {
            one_cpu,
            names,
            state: Mutex::new(State {
                available: total.clone(),
                queues: Vec::new(),
                finished_since_release: 0,
            }),
            total,
            release_after: config
                .get_release_memory_when_idle()
                .then_some(heap::RELEASE_AFTER_TASKS),
            release_memory: heap::release_free_memory,
        })
    }

    /// Turns a resource request into a [`Demand`], failing with [`Error::Infeasible`] if this
    /// runtime could never satisfy it.
    pub(crate) fn demand(
        &self,
        function: &str,
        cpus: f64,
        gpus: f64,
        custom: &[(String, f64)],
    ) -> Result<Demand> {
        // The default request (one CPU, nothing else), checked once when the runtime starts.
        if cpus == 1.0 && gpus == 0.0 && custom.is_empty() {
            if let Some(one_cpu) = &self.one_cpu {
                return Ok(one_cpu.clone());
            }
        }
        let mut amounts: SmallVec<[(usize, i64); 2]> = SmallVec::new();
        let mut add = |index: usize, name: &str, requested: f64| -> Result<()> {
            if !requested.is_finite() || requested < 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "task `{function}` requests {requested} {name}; amounts must be finite and >= 0"
                )));
            }
            let milli = to_milli(requested);
            let total = if index == usize::MAX {
                0
            } else {
                self.total[index]
            };
            if milli > total {
                return Err(Error::Infeasible {
                    function: function.to_owned(),
                    resource: name.to_owned(),
                    requested,
                    available: total as f64 / MILLI,
                });
            }
            if milli > 0 {
                match amounts.iter_mut().find(|(i, _)| *i == index) {
                    Some(slot) => slot.1 += milli,
                    None => amounts.push((index, milli)),
                }
            }
            Ok(())
        };
        add(CPU, "CPU", cpus)?;
        add(GPU, "GPU", gpus)?;
        for (name, amount) in custom {
            let index = self
                .names
                .iter()
                .skip(2)
                .position(|n| n == name)
                .map_or(usize::MAX, |i| i + 2);
            add(index, name, *amount)?;
        }
        amounts.sort_unstable();
        Ok(Demand(amounts))
    }

    /// Starts `task` now if it may, or queues it.
    pub(crate) fn submit(self: &Arc<Self>, task: Queued) {
        let mut state = self.state.lock();
        let queue_empty = !state
            .queues
            .iter()
            .any(|(d, q)| *d == task.demand && !q.is_empty());
        if queue_empty && state.fits(&task.demand) {
            state.take(&task.demand);
            drop(state);
            let lease = Lease::new(self, task.demand);
            (task.start)(lease);
            return;
        }
        match state.queues.iter_mut().find(|(d, _)| *d == task.demand) {
            Some((_, queue)) => queue.push_back(task.start),
            None => state
                .queues
                .push((task.demand, VecDeque::from([task.start]))),
        }
    }

    /// Returns resources and starts whatever fits now.
    fn release(self: &Arc<Self>, demand: &Demand) {
        let (runnable, idle) = {
            let mut state = self.state.lock();
            state.give(demand);
            state.finished_since_release += 1;
            let runnable = state.runnable();
            let idle = runnable.is_empty()
                && self
                    .release_after
                    .is_some_and(|after| state.finished_since_release >= after)
                && state.available == self.total
                && state.queues.iter().all(|(_, queue)| queue.is_empty());
            if idle {
                state.finished_since_release = 0;
            }
            (runnable, idle)
        };
        if idle {
            (self.release_memory)();
            tracing::debug!(target: "rustyray::scheduler", "idle after a burst: released free heap memory");
        }
        for task in runnable {
            let lease = Lease::new(self, task.demand);
            (task.start)(lease);
        }
    }

    /// Takes resources back after a blocked task resumes, even past what is available.
    fn reacquire(&self, demand: &Demand) {
        self.state.lock().take(demand);
    }

    /// Number of tasks queued for resources.
    pub(crate) fn queued(&self) -> usize {
        self.state.lock().queues.iter().map(|(_, q)| q.len()).sum()
    }

    /// Drops every queued task (at shutdown); their results are failed by the caller.
    pub(crate) fn clear(&self) {
        let queues = std::mem::take(&mut self.state.lock().queues);
        drop(queues);
    }
}

fn to_milli(amount: f64) -> i64 {
    (amount * MILLI).round() as i64
}

/// The resources a running task holds; given back when dropped.
pub(crate) struct Lease {
    scheduler: Arc<Scheduler>,
    demand: Demand,
    /// How many waits are in progress; CPUs are lent back while this is above zero.
    blocked: Mutex<usize>,
    /// The task holding it: what `is_cancelled` asks, and what notes the tasks it submits.
    task: Option<Arc<dyn Producer>>,
}

impl Lease {
    fn new(scheduler: &Arc<Scheduler>, demand: Demand) -> Lease {
        Lease {
            scheduler: Arc::clone(scheduler),
            demand,
            blocked: Mutex::new(0),
            task: None,
        }
    }

    /// Notes the task that holds the lease.
    pub(crate) fn held_by(&mut self, task: Arc<dyn Producer>) {
        self.task = Some(task);
    }

    fn cpu_demand(&self) -> Option<Demand> {
        let cpu = self.demand.cpu();
        (cpu > 0).then(|| Demand(smallvec::smallvec![(CPU, cpu)]))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.scheduler.release(&self.demand);
    }
}

thread_local! {
    /// The lease of the sync task running on this thread.
    static SYNC_LEASE: RefCell<Option<Arc<Lease>>> = const { RefCell::new(None) };
}

tokio::task_local! {
    /// The lease of the async task being polled.
    static ASYNC_LEASE: Arc<Lease>;
}

/// Runs a sync task body with its lease as the thread's current lease. The caller keeps the
/// lease and decides when it is given back.
pub(crate) fn with_sync_lease<R>(lease: &Arc<Lease>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Lease>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SYNC_LEASE.with(|l| *l.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SYNC_LEASE.with(|l| l.borrow_mut().replace(Arc::clone(lease))));
    f()
}

/// Wraps an async task body so waits inside it lend its CPUs back.
pub(crate) fn with_async_lease<F: std::future::Future>(
    lease: Arc<Lease>,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    ASYNC_LEASE.scope(lease, future)
}

/// The task whose body runs here (sync, on this thread; async, in the task being polled).
pub(crate) fn current_task() -> Option<Arc<dyn Producer>> {
    let task = |lease: &Arc<Lease>| lease.task.clone();
    match ASYNC_LEASE.try_with(task) {
        Ok(task) => task,
        Err(_) => SYNC_LEASE.with(|l| l.borrow().as_ref().and_then(task)),
    }
}

/// While alive, the current task's CPUs are lent back to the scheduler.
pub(crate) struct BlockedGuard {
    lease: Arc<Lease>,
    cpu: Demand,
}

impl BlockedGuard {
    /// Lends the current task's CPUs back, if code runs inside a task that holds some.
    pub(crate) fn enter() -> Option<BlockedGuard> {
        let lease = ASYNC_LEASE
            .try_with(Arc::clone)
            .ok()
            .or_else(|| SYNC_LEASE.with(|l| l.borrow().clone()))?;
        let cpu = lease.cpu_demand()?;
        let mut blocked = lease.blocked.lock();
        *blocked += 1;
        if *blocked == 1 {
            lease.scheduler.release(&cpu);
        }
        drop(blocked);
        Some(BlockedGuard { lease, cpu })
    }
}

impl Drop for BlockedGuard {
    fn drop(&mut self) {
        let mut blocked = self.lease.blocked.lock();
        *blocked -= 1;
        if *blocked == 0 {
            self.lease.scheduler.reacquire(&self.cpu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(
        demand: &Demand,
        started: &Arc<AtomicUsize>,
        keep: &Arc<Mutex<Vec<Lease>>>,
    ) -> Queued {
        let (started, keep) = (started.clone(), keep.clone());
        Queued {
            demand: demand.clone(),
            start: Box::new(move |lease| {
                started.fetch_add(1, Ordering::SeqCst);
                keep.lock().push(lease);
            }),
        }
    }

    #[test]
    fn tasks_queue_by_resources_and_start_when_they_come_back() {
        let s = Scheduler::new(&Config::default().num_cpus(2).resource("disk", 1.0));
        let one_cpu = s.demand("f", 1.0, 0.0, &[]).unwrap();
        let disk = s.demand("g", 0.5, 0.0, &[("disk".into(), 1.0)]).unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let leases = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..3 {
            s.submit(counting(&one_cpu, &started, &leases));
        }
        s.submit(counting(&disk, &started, &leases));
        assert_eq!(started.load(Ordering::SeqCst), 2, "two CPUs, two tasks");
        assert_eq!(s.queued(), 2);
        let first = leases.lock().remove(0);
        drop(first);
        // One CPU came back: the queued 1-CPU task starts; the disk task needs 0.5 CPU and waits.
        assert_eq!(started.load(Ordering::SeqCst), 3);
        let second = leases.lock().remove(0);
        drop(second);
        assert_eq!(started.load(Ordering::SeqCst), 4, "the disk task fits now");
        assert_eq!(s.queued(), 0);
    }

    static RELEASES: AtomicUsize = AtomicUsize::new(0);

    fn count_release() {
        RELEASES.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn free_memory_is_released_once_idle_after_a_burst() {
        let mut s = Scheduler::new(&Config::default().num_cpus(1).num_gpus(1));
        let inner = Arc::get_mut(&mut s).unwrap();
        inner.release_after = Some(3);
        inner.release_memory = count_release;
        let one_cpu = s.demand("f", 1.0, 0.0, &[]).unwrap();
        let gpu = s.demand("g", 0.0, 1.0, &[]).unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let leases = Arc::new(Mutex::new(Vec::new()));
        // Leases are kept in start order; `finish(i)` ends the task holding the i-th one.
        let finish = |i: usize| {
            let lease = leases.lock().remove(i);
            drop(lease);
        };
        for _ in 0..3 {
            s.submit(counting(&one_cpu, &started, &leases));
        }
        s.submit(counting(&gpu, &started, &leases)); // leases: [cpu 1, gpu]
        finish(0); // cpu 1; cpu 2 starts: [gpu, cpu 2]
        finish(1); // cpu 2; cpu 3 starts: [gpu, cpu 3]
        finish(1); // cpu 3: three finished and nothing queued, but the GPU task runs
        assert_eq!(RELEASES.load(Ordering::SeqCst), 0, "a task still runs");
        finish(0); // the GPU task: idle after 4 finished
        assert_eq!(RELEASES.load(Ordering::SeqCst), 1);
        // Below the threshold since then: no release.
        s.submit(counting(&one_cpu, &started, &leases));
        finish(0);
        assert_eq!(RELEASES.load(Ordering::SeqCst), 1);
        assert_eq!(started.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn the_default_request_is_the_same_demand_as_any_other_one_cpu_request() {
        let s = Scheduler::new(&Config::default().num_cpus(2));
        let shortcut = s.demand("f", 1.0, 0.0, &[]).unwrap();
        // A zero custom amount leaves the demand unchanged but takes the general path.
        let general = s.demand("f", 1.0, 0.0, &[("unused".into(), 0.0)]).unwrap();
        assert_eq!(shortcut, general);
        assert_eq!(shortcut, Demand(smallvec::smallvec![(CPU, 1000)]));
    }

    #[test]
    fn infeasible_requests_name_the_resource() {
        let s = Scheduler::new(&Config::default().num_cpus(2));
        match s.demand("big", 3.0, 0.0, &[]) {
            Err(Error::Infeasible {
                resource,
                requested,
                available,
                ..
            }) => {
                assert_eq!((resource.as_str(), requested, available), ("CPU", 3.0, 2.0));
            }
            other => panic!("{other:?}"),
        }
        let err = s.demand("f", 1.0, 0.0, &[("tpu".into(), 1.0)]).unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
        assert!(err.to_string().contains("resource(\"tpu\""), "{err}");
    }
}
