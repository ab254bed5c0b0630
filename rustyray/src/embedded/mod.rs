//! The embedded backend: tasks, actors and placement groups run in this process.
//!
//! Its own state is what the Ray backend does not need: the [`Scheduler`] that grants CPUs,
//! GPUs, custom resources and bundles, and the [`CpuPool`] whose threads run sync bodies
//! (async bodies run on the runtime's tokio threads). The object store and the actor table are
//! the runtime's, shared with the Ray backend, which keeps its objects and actors there as a
//! directory.
//!
//! `runtime/backend.rs` hands each operation here as its builder described it, and the code
//! here turns it into this process's machinery: a task into a [`Job`](crate::task) behind a gate
//! on its arguments, an actor into a host started once its lease is granted, a call into its
//! mailbox, a group into the scheduler's reservation. Code that only ever runs here (a task's
//! job, an actor's host, a gate) reaches this state with [`RuntimeCore::here`].

mod actors;
mod groups;
mod starved;
mod tasks;

pub(crate) use actors::{find_actor, kill_actor};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use crate::config::Config;
use crate::cpu_pool::CpuPool;
use crate::runtime::RuntimeCore;
use crate::scheduler::{Queued, Scheduler};

/// The embedded backend's state.
pub(crate) struct Embedded {
    scheduler: Arc<Scheduler>,
    /// Threads for sync bodies.
    pool: CpuPool,
    /// Whether the watcher of starved work (`starved.rs`) runs.
    watching: AtomicBool,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").finish_non_exhaustive()
    }
}

impl Embedded {
    /// The scheduler and CPU pool of runtime `id`, as `config` sizes them; each pool thread
    /// enters `runtime` when it starts.
    pub(crate) fn new(config: &Config, id: u32, runtime: Weak<RuntimeCore>) -> Embedded {
        Embedded {
            scheduler: Scheduler::new(config),
            pool: CpuPool::new(
                config.get_num_cpus(),
                config.get_max_threads(),
                format!("rustyray-{id}-cpu"),
                move || {
                    let shared = runtime.upgrade()?;
                    let tokio = shared.handle().cloned();
                    let current = crate::runtime::Current::new(shared);
                    crate::context::with(|cx| *cx.runtime.borrow_mut() = Some(current));
                    tokio
                },
            ),
            watching: AtomicBool::new(false),
        }
    }

    /// Hands `task` to the scheduler: started now if it fits, else queued, and then watched,
    /// so work that waits long for resources others hold is reported.
    pub(crate) fn queue(&self, shared: &Arc<RuntimeCore>, task: Queued) {
        if !self.scheduler.submit(task) || self.watching.load(Ordering::Relaxed) {
            return;
        }
        if let Some(tokio) = shared.handle() {
            if !self.watching.swap(true, Ordering::AcqRel) {
                let scheduler = Arc::clone(&self.scheduler);
                tokio.spawn(starved::watch(Arc::downgrade(shared), scheduler));
            }
        }
    }

    /// The CPU pool.
    #[inline]
    pub(crate) fn pool(&self) -> &CpuPool {
        &self.pool
    }

    /// How many tasks wait for resources.
    pub(crate) fn queued_tasks(&self) -> usize {
        self.scheduler.queued_len()
    }

    /// At shutdown: drops every queued task and stops the pool.
    pub(crate) fn shut_down(&self) {
        self.scheduler.clear();
        self.pool.shutdown();
    }
}
