//! The scheduler: resource accounting and the queue of tasks whose dependencies are ready.
//!
//! # Design
//!
//! Resources are counted in thousandths (so `num_cpus(0.5)` is exact): index 0 is CPU, 1 is GPU,
//! then the custom resources in the order the [`Config`] declared them. A task's [`Demand`] is
//! the list of non-zero amounts it needs, and the [`Pool`](pool::Pool) it draws them from: the
//! node's, or the bundle of a placement group it was placed in ([`groups`]).
//!
//! A task enters the scheduler only once all its dependencies are resolved. If nothing of its
//! shape is queued before it and its demand fits, it starts at once; otherwise it waits in the
//! FIFO queue of its shape (one queue per distinct demand and pool, so a large request never
//! blocks small ones behind it). Whenever resources come back, placement groups waiting for
//! their reservation are tried first, then every queue's head is started while it fits. All of
//! that happens under one short lock, and starting a task only hands it to an executor (the CPU
//! pool or tokio), never runs it inline.
//!
//! A running task holds a [`Lease`], which knows the GPUs it got (`rustyray::gpu_ids`). A task
//! that blocks waiting for an object (`get`, `wait`, or `.await` on a ref inside a task) lends
//! its CPUs back for the duration through a [`BlockedGuard`]; when it resumes it takes them
//! again even if that briefly oversubscribes the CPUs, exactly as Ray does. That is what keeps
//! nested tasks from deadlocking the pool.
//!
//! When the scheduler becomes idle after a burst of tasks, it gives the freed heap memory back
//! to the system (see [`crate::heap`]).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::heap;

pub(crate) mod groups;
mod lease;
mod pool;

pub(crate) use groups::{GroupId, GroupInfo};
pub(crate) use lease::{
    current_task, gpu_ids, with_async_lease, with_sync_lease, BlockedGuard, Lease,
};
use pool::{GpuShare, Pool};

const MILLI: f64 = 1000.0;
const CPU: usize = 0;
const GPU: usize = 1;
/// The node's pool (bundles' pools are numbered from 1).
const NODE: u64 = 0;
/// Queues of distinct demands kept while empty.
const KEPT_QUEUES: usize = 8;

/// What one task needs: `(resource index, thousandths)` pairs, sorted, amounts non-zero (CPU
/// and GPU fit inline, so the common demand allocates nothing), and the pool it draws from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Demand {
    amounts: SmallVec<[(usize, i64); 2]>,
    pool: u64,
}

impl Demand {
    fn new(amounts: SmallVec<[(usize, i64); 2]>, pool: u64) -> Demand {
        Demand { amounts, pool }
    }

    fn amount(&self, index: usize) -> i64 {
        self.amounts
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, amount)| *amount)
    }

    fn cpu(&self) -> i64 {
        self.amount(CPU)
    }

    fn gpus(&self) -> i64 {
        self.amount(GPU)
    }
}

/// Tasks whose resources were just taken, to start once the lock is released.
type Runnable = SmallVec<[(Queued, GpuShare); 2]>;

/// What starts a task once its resources are granted, or, given `None`, fails it with
/// [`group_removed`] (its placement group was removed while it waited). An `Option`, not a
/// `Result`: it is moved at every start, and stays the size of the lease.
pub(crate) type Start = Box<dyn FnOnce(Option<Lease>) + Send>;

/// The error of a task whose placement group was removed before it could run.
pub(crate) fn group_removed() -> Error {
    Error::PlacementGroup {
        group: "of this task".to_owned(),
        reason: "it was removed before the task could run, so the task never ran; place it in \
                 a group that exists"
            .to_owned(),
    }
}

/// A task ready to be scheduled: what it needs, and how to start it.
pub(crate) struct Queued {
    pub(crate) demand: Demand,
    pub(crate) start: Start,
}

struct State {
    node: Pool,
    /// The pools of placement-group bundles, by number.
    bundles: FxHashMap<u64, Pool>,
    /// One FIFO queue per shape of demand. Entries are only the start closures (16 bytes):
    /// a burst of a million queued tasks costs 16 MB of queue, not the 56 MB it took with
    /// each entry's demand beside it.
    queues: Vec<Queue>,
    groups: groups::Groups,
    /// Leases given back since the heap's free memory was last released.
    finished_since_release: u64,
}

/// The pool numbered `number`: the node's, or a bundle's if it still exists.
#[inline]
fn pool_of<'a>(
    node: &'a mut Pool,
    bundles: &'a mut FxHashMap<u64, Pool>,
    number: u64,
) -> Option<&'a mut Pool> {
    if number == NODE {
        Some(node)
    } else {
        bundles.get_mut(&number)
    }
}

impl State {
    /// The pool `demand` draws from, if it still exists.
    fn pool(&mut self, pool: u64) -> Option<&mut Pool> {
        pool_of(&mut self.node, &mut self.bundles, pool)
    }

    #[inline]
    fn fits(&mut self, demand: &Demand) -> bool {
        self.pool(demand.pool)
            .is_some_and(|pool| !pool.removed && pool.fits(demand))
    }

    #[inline]
    fn take(&mut self, demand: &Demand) -> GpuShare {
        self.pool(demand.pool)
            .map(|pool| pool.take(demand))
            .unwrap_or_default()
    }

    /// Gives back what a lease held: to its pool, or to the node if its group was removed.
    #[inline]
    fn give(&mut self, demand: &Demand, share: &[(usize, i64)]) {
        if demand.pool != NODE {
            if let Some(pool) = self.bundles.get_mut(&demand.pool).filter(|p| !p.removed) {
                pool.give(&demand.amounts, share);
                return;
            }
        }
        self.node.give(&demand.amounts, share);
    }

    /// Pops every queue head that fits now into `out`, taking its resources. (Usually one or
    /// two, which need no allocation; `out` is the caller's, so the tasks are not copied on
    /// the way back.)
    fn runnable(&mut self, out: &mut Runnable) {
        let mut emptied = false;
        let State {
            node,
            bundles,
            queues,
            ..
        } = self;
        for queue in queues.iter_mut() {
            let demand = &queue.demand;
            if let Some(pool) = pool_of(node, bundles, demand.pool) {
                while !queue.starts.is_empty() && !pool.removed && pool.fits(demand) {
                    if let Some(start) = queue.starts.pop_front() {
                        let share = pool.take(demand);
                        let demand = demand.clone();
                        out.push((Queued { demand, start }, share));
                        queue.started += 1;
                    }
                }
            }
            emptied |= queue.starts.is_empty();
        }
        // An empty queue is kept with its memory (a burst of tasks fills the same one again,
        // where regrowing it would scatter large blocks over the heap), unless there are many
        // shapes of demand.
        if emptied && self.queues.len() > KEPT_QUEUES {
            self.queues.retain(|queue| !queue.starts.is_empty());
        }
    }

    fn is_idle(&self) -> bool {
        self.node.available == self.node.total
            && self.queues.iter().all(|queue| queue.starts.is_empty())
    }
}

/// The tasks (and actors) of one shape of demand waiting for it, in arrival order.
struct Queue {
    demand: Demand,
    starts: VecDeque<Start>,
    /// How many were started from it (so a watcher can tell a queue that does not move).
    started: u64,
}

/// One queue as a watcher sees it ([`Scheduler::waiting`]).
pub(crate) struct Waiting {
    /// What each of them asks for, in words (`CPU 4, GPU 1`).
    pub(crate) demand: String,
    /// How many wait.
    pub(crate) queued: usize,
    /// How many were started from this queue so far.
    pub(crate) started: u64,
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
    /// Told when a queue that was empty gets a task: a watcher of starved queues wakes.
    queued_signal: tokio::sync::Notify,
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
            .then(|| Demand::new(smallvec::smallvec![(CPU, to_milli(1.0))], NODE));
        Arc::new(Scheduler {
            one_cpu,
            names,
            state: Mutex::new(State {
                node: Pool::node(total.clone()),
                bundles: FxHashMap::default(),
                queues: Vec::new(),
                groups: groups::Groups::default(),
                finished_since_release: 0,
            }),
            total,
            release_after: config
                .get_release_memory_when_idle()
                .then_some(heap::RELEASE_AFTER_TASKS),
            release_memory: heap::release_free_memory,
            queued_signal: tokio::sync::Notify::new(),
        })
    }

    /// Turns a resource request into amounts, checking each against `limit` (the node's total,
    /// or a bundle's): what exceeds it is reported by `exceeds(resource, requested, limit)`.
    fn amounts(
        &self,
        function: &str,
        cpus: f64,
        gpus: f64,
        custom: &[(String, f64)],
        limit: &[i64],
        exceeds: &dyn Fn(&str, f64, f64) -> Error,
    ) -> Result<SmallVec<[(usize, i64); 2]>> {
        let mut amounts: SmallVec<[(usize, i64); 2]> = SmallVec::new();
        let mut add = |index: usize, name: &str, requested: f64| -> Result<()> {
            if !requested.is_finite() || requested < 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "`{function}` requests {requested} {name}; amounts must be finite and >= 0"
                )));
            }
            let milli = to_milli(requested);
            if index == GPU && milli > to_milli(1.0) && milli % to_milli(1.0) != 0 {
                return Err(Error::InvalidArgument(format!(
                    "`{function}` requests {requested} GPU; above 1, GPUs are requested whole \
                     (a fraction shares one GPU)"
                )));
            }
            let total = if index == usize::MAX { 0 } else { limit[index] };
            // A resource named twice asks for the sum: checked, so huge amounts cannot wrap.
            let slot = amounts.iter().position(|(i, _)| *i == index);
            let before = slot.map_or(0, |at| amounts[at].1);
            let sum = before.checked_add(milli).filter(|sum| *sum <= total);
            let Some(sum) = sum else {
                let asked = before as f64 / MILLI + requested;
                return Err(exceeds(name, asked, total as f64 / MILLI));
            };
            match slot {
                Some(at) => amounts[at].1 = sum,
                None if sum > 0 => amounts.push((index, sum)),
                None => {}
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
        Ok(amounts)
    }

    /// Turns a resource request into a [`Demand`], failing with [`Error::Infeasible`] if this
    /// runtime (or the bundle it is placed in) could never satisfy it.
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
        let exceeds = |resource: &str, requested: f64, available: f64| Error::Infeasible {
            function: function.to_owned(),
            resource: resource.to_owned(),
            requested,
            available,
        };
        let amounts = self.amounts(function, cpus, gpus, custom, &self.total, &exceeds)?;
        Ok(Demand::new(amounts, NODE))
    }

    /// Starts `task` now if it may, or queues it: whether it was queued.
    pub(crate) fn submit(self: &Arc<Self>, task: Queued) -> bool {
        let mut state = self.state.lock();
        if task.demand.pool != NODE && state.pool(task.demand.pool).is_none_or(|p| p.removed) {
            drop(state);
            (task.start)(None);
            return false;
        }
        let queue_empty = !state
            .queues
            .iter()
            .any(|q| q.demand == task.demand && !q.starts.is_empty());
        if queue_empty && state.fits(&task.demand) {
            let share = state.take(&task.demand);
            drop(state);
            let lease = Lease::new(self, task.demand, share);
            (task.start)(Some(lease));
            return false;
        }
        match state.queues.iter_mut().find(|q| q.demand == task.demand) {
            Some(queue) => queue.starts.push_back(task.start),
            None => state.queues.push(Queue {
                demand: task.demand,
                starts: VecDeque::from([task.start]),
                started: 0,
            }),
        }
        drop(state);
        if queue_empty {
            self.queued_signal.notify_one();
        }
        true
    }

    /// The queues that have tasks waiting, as a watcher of starved work reads them.
    pub(crate) fn waiting(&self) -> Vec<Waiting> {
        let state = self.state.lock();
        state
            .queues
            .iter()
            .filter(|q| !q.starts.is_empty())
            .map(|q| Waiting {
                demand: self.describe_demand(&q.demand),
                queued: q.starts.len(),
                started: q.started,
            })
            .collect()
    }

    /// What the node has in all and free now, in words (`CPU 0 of 2 free`).
    pub(crate) fn capacity(&self) -> String {
        let state = self.state.lock();
        let parts: Vec<String> = self
            .total
            .iter()
            .enumerate()
            .filter(|(_, total)| **total > 0)
            .map(|(i, total)| {
                let free = state.node.available[i].max(0);
                format!(
                    "{} {} of {} free",
                    self.names[i],
                    free as f64 / MILLI,
                    *total as f64 / MILLI
                )
            })
            .collect();
        parts.join(", ")
    }

    /// `demand` in words (`CPU 4, GPU 1`), from its amounts by name ([`Self::describe`]), and
    /// the bundle it draws from if not the node.
    pub(crate) fn describe_demand(&self, demand: &Demand) -> String {
        let parts: Vec<String> = self
            .describe(demand)
            .into_iter()
            .map(|(name, amount)| format!("{name} {amount}"))
            .collect();
        let mut out = match parts.is_empty() {
            true => "nothing".to_owned(),
            false => parts.join(", "),
        };
        if demand.pool != NODE {
            out.push_str(" (in a placement group's bundle)");
        }
        out
    }

    /// Waits until a queue that was empty gets a task (at once if one did since the last wait).
    pub(crate) async fn queued(&self) {
        self.queued_signal.notified().await;
    }

    /// Returns what a finished task held and starts whatever fits now.
    fn finished(self: &Arc<Self>, demand: &Demand, share: &[(usize, i64)]) {
        self.give_back(demand, share, true);
    }

    /// Returns resources (a finished task's, or CPUs lent while one waits) and starts whatever
    /// fits now: placement groups waiting for their reservation first, then queued tasks.
    fn give_back(self: &Arc<Self>, demand: &Demand, share: &[(usize, i64)], finished: bool) {
        let mut runnable = Runnable::new();
        let (reserved, idle) = {
            let mut state = self.state.lock();
            state.give(demand, share);
            let reserved = state.reserve_groups();
            state.runnable(&mut runnable);
            let mut idle = false;
            if finished {
                state.finished_since_release += 1;
                idle = runnable.is_empty()
                    && self
                        .release_after
                        .is_some_and(|after| state.finished_since_release >= after)
                    && state.is_idle();
                if idle {
                    state.finished_since_release = 0;
                }
            }
            (reserved, idle)
        };
        if idle {
            (self.release_memory)();
            tracing::debug!(target: "rustyray::scheduler", "idle after a burst: released free heap memory");
        }
        for ready in reserved {
            ready.finish(Ok(crate::object_store::Object::new(())));
        }
        self.start(&mut runnable);
    }

    fn start(self: &Arc<Self>, runnable: &mut Runnable) {
        for (task, share) in runnable.drain(..) {
            let lease = Lease::new(self, task.demand, share);
            (task.start)(Some(lease));
        }
    }

    /// Takes resources back after a blocked task resumes, even past what is available.
    fn reacquire(&self, demand: &Demand) {
        self.state.lock().take(demand);
    }

    /// Number of tasks queued for resources.
    pub(crate) fn queued_len(&self) -> usize {
        self.state
            .lock()
            .queues
            .iter()
            .map(|q| q.starts.len())
            .sum()
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
                keep.lock().push(lease.expect("granted"));
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
        assert_eq!(s.queued_len(), 2);
        let first = leases.lock().remove(0);
        drop(first);
        // One CPU came back: the queued 1-CPU task starts; the disk task needs 0.5 CPU and waits.
        assert_eq!(started.load(Ordering::SeqCst), 3);
        let second = leases.lock().remove(0);
        drop(second);
        assert_eq!(started.load(Ordering::SeqCst), 4, "the disk task fits now");
        assert_eq!(s.queued_len(), 0);
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
        assert_eq!(
            shortcut,
            Demand::new(smallvec::smallvec![(CPU, 1000)], NODE)
        );
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

    #[test]
    fn a_resource_named_twice_is_summed_without_overflow() {
        let s = Scheduler::new(&Config::default().num_cpus(2).resource("disk", 4.0));
        let twice = [("disk".to_owned(), 2.0), ("disk".to_owned(), 1.5)];
        let demand = s.demand("f", 0.0, 0.0, &twice).unwrap();
        assert_eq!(demand.amounts.as_slice(), &[(2, 3500)]);
        let over = [("disk".to_owned(), 3.0), ("disk".to_owned(), 3.0)];
        assert!(matches!(
            s.demand("f", 0.0, 0.0, &over),
            Err(Error::Infeasible { .. })
        ));
        let huge = [("disk".to_owned(), 1e300), ("disk".to_owned(), 1e300)];
        assert!(s.demand("f", 0.0, 0.0, &huge).is_err());
        let big = [("disk".to_owned(), 9e15), ("disk".to_owned(), 9e15)];
        assert!(s.demand("f", 0.0, 0.0, &big).is_err());
    }
}
