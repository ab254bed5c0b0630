//! A task, as its builder described it, turned into this process's machinery: its result's
//! entry, its control (cancel, phase, children), a job holding its body, and a gate that hands
//! it to the scheduler once its ref arguments are ready.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::Arc;

use futures_util::task::AtomicWaker;

use super::Embedded;
use crate::error::Error;
use crate::object_store::Cell;
use crate::runtime::RuntimeCore;
use crate::scheduler::Queued;
use crate::task::{Body, Gate, Job, Phase, TaskBuilder, TaskControl};

impl Embedded {
    /// Submits the task `task` describes, whose body is `body`, to this process's scheduler;
    /// returns its result's cell.
    #[inline]
    pub(crate) fn submit_task<B: Body>(
        &self,
        shared: &Arc<RuntimeCore>,
        task: TaskBuilder,
        body: B,
    ) -> Arc<Cell> {
        let TaskBuilder {
            function,
            options,
            args,
        } = task;
        let function: Cow<'static, str> = match options.rare().name.clone() {
            Some(name) => name.into(),
            None => function,
        };
        let demand = shared.check().and_then(|()| {
            let (o, rare) = (&options, options.rare());
            match &rare.placement {
                None => self
                    .scheduler
                    .demand(&function, o.num_cpus, o.num_gpus, &rare.resources),
                Some(placement) => placement.here().and_then(|at| {
                    let (cpus, gpus) = (o.num_cpus, o.num_gpus);
                    let scheduler = &self.scheduler;
                    scheduler.demand_in(&function, cpus, gpus, &rare.resources, at)
                }),
            }
        });
        let demand = match demand {
            Ok(demand) => demand,
            Err(error) => return shared.store().insert_failed(error),
        };
        let control = Arc::new(TaskControl {
            function,
            cancelled: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            phase: AtomicU8::new(Phase::Waiting as u8),
            demand: (options.num_cpus, options.num_gpus),
            children: Default::default(),
        });
        let out = shared
            .store()
            .insert_pending(Some(Arc::clone(&control) as _));
        crate::timeline::record_submitted(&control.function, None, shared.id());
        // Submitted by a running task: cancelled with it.
        if let Some(parent) = crate::scheduler::current_task() {
            parent.adopt(&out);
        }
        let mut deps = args.deps;
        deps.keep_owned_by(shared.id());
        tracing::trace!(
            target: "rustyray::task",
            function = %control.function,
            object = %out.id(),
            dependencies = deps.cells.len(),
            "submitted"
        );
        // With arguments to wait for, the gate marks the task queued when they are ready.
        let gate_control = if deps.is_empty() {
            control.set_phase(Phase::Queued);
            None
        } else {
            Some(Arc::clone(&control))
        };
        let job = Job {
            shared: Arc::clone(shared),
            control,
            out: Arc::clone(&out),
            max_retries: options.max_retries,
            retry_exceptions: options.retry_exceptions,
            body,
        };
        let queued = Queued {
            demand,
            start: B::starter(job),
        };
        Gate::open_when_ready(shared, deps, &out, queued, gate_control);
        if shared.is_shut_down() {
            // Shutdown raced with this submission: make sure the result does not stay pending.
            out.complete(Err(Error::RuntimeShutdown));
        }
        out
    }
}
