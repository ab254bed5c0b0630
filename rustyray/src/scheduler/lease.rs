//! The resources a running task holds, and the task-local state that reaches them: which task
//! runs here (`current_task`), its GPUs (`gpu_ids`), and lending its CPUs while it waits.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::object_store::Producer;

use super::pool::GpuShare;
use super::{Demand, Scheduler, CPU};

/// The resources a running task holds; given back when dropped.
pub(crate) struct Lease {
    scheduler: Arc<Scheduler>,
    demand: Demand,
    /// The GPUs it holds, and how much of each.
    gpus: GpuShare,
    /// How many waits are in progress; CPUs are lent back while this is above zero.
    blocked: Mutex<usize>,
    /// The task holding it: what `is_cancelled` asks, and what notes the tasks it submits.
    task: Option<Arc<dyn Producer>>,
}

impl Lease {
    pub(super) fn new(scheduler: &Arc<Scheduler>, demand: Demand, gpus: GpuShare) -> Lease {
        Lease {
            scheduler: Arc::clone(scheduler),
            demand,
            gpus,
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
        (cpu > 0).then(|| Demand::new(smallvec::smallvec![(CPU, cpu)], self.demand.pool))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.scheduler.finished(&self.demand, &self.gpus);
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

/// The lease of the task whose body runs here, if any.
fn current_lease() -> Option<Arc<Lease>> {
    ASYNC_LEASE
        .try_with(Arc::clone)
        .ok()
        .or_else(|| SYNC_LEASE.with(|l| l.borrow().clone()))
}

/// The ids of the GPUs the task running here holds (empty outside a task, or for a task that
/// asked for none).
pub(crate) fn gpu_ids() -> Vec<usize> {
    current_lease().map_or_else(Vec::new, |lease| {
        lease.gpus.iter().map(|(id, _)| *id).collect()
    })
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
        let lease = current_lease()?;
        let cpu = lease.cpu_demand()?;
        let mut blocked = lease.blocked.lock();
        *blocked += 1;
        if *blocked == 1 {
            lease.scheduler.give_back(&cpu, &[], false);
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
