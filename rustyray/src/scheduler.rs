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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::config::Config;
use crate::error::{Error, Result};
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

/// A task waiting for resources: how to start it once they are granted.
pub(crate) struct Queued {
    pub(crate) demand: Demand,
    pub(crate) start: Box<dyn FnOnce(Lease) + Send>,
}

struct State {
    available: Vec<i64>,
    queues: Vec<(Demand, VecDeque<Queued>)>,
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
            while let Some(head) = self.queues[q].1.front() {
                if !self.fits(&head.demand) {
                    break;
                }
                if let Some(task) = self.queues[q].1.pop_front() {
                    self.take(&task.demand);
                    out.push(task);
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
            }),
            total,
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
            Some((_, queue)) => queue.push_back(task),
            None => {
                let demand = task.demand.clone();
                state.queues.push((demand, VecDeque::from([task])));
            }
        }
    }

    /// Returns resources and starts whatever fits now.
    fn release(self: &Arc<Self>, demand: &Demand) {
        let runnable = {
            let mut state = self.state.lock();
            state.give(demand);
            state.runnable()
        };
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
