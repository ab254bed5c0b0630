//! An actor, as its builder described it, turned into this process's machinery: an entry in
//! the actor table, a host that builds and serves the state (started once the actor's lease is
//! granted, if it holds resources), and calls sent to its mailbox.

use std::sync::Arc;

use super::Embedded;
use crate::actor::{
    Actor, ActorBuilder, ActorCell, ActorHandle, ActorHost, Call, CallBuilder, Ctor, Method,
    Recovery,
};
use crate::error::{Error, Result};
use crate::object_ref::missing;
use crate::object_store::Cell;
use crate::runtime::RuntimeCore;

impl Embedded {
    /// Starts the actor `builder` describes, built by `ctor`: its host starts on tokio once
    /// its lease (if it holds resources) is granted. Returns its handle at once.
    pub(crate) fn start_actor<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        builder: ActorBuilder<A>,
        ctor: Ctor<A>,
    ) -> ActorHandle<A> {
        let mut builder = builder;
        builder.args.deps.keep_owned_by(shared.id());
        let concurrency = builder.check_concurrency();
        let class = match &builder.options.name {
            Some(name) => format!("{} `{name}`", builder.class).into(),
            None => std::mem::take(&mut builder.class),
        };
        let cell = Arc::new(ActorCell::new(class));
        let id = shared.actors().insert(Arc::clone(&cell));
        let handle = ActorHandle::from_new_entry(shared, id);
        let demand = || -> Result<Option<crate::scheduler::Demand>> {
            let o = &builder.options;
            if !o.holds_resources() {
                return Ok(None);
            }
            let what = format!("actor {}", cell.class);
            let scheduler = &self.scheduler;
            match &o.placement {
                None => scheduler.demand(&what, o.num_cpus, o.num_gpus, &o.resources),
                Some(placement) => placement.here().and_then(|at| {
                    scheduler.demand_in(&what, o.num_cpus, o.num_gpus, &o.resources, at)
                }),
            }
            .map(Some)
        };
        let checked = shared
            .check()
            .and(concurrency)
            .and_then(|()| demand())
            .and_then(|demand| match &builder.options.name {
                Some(name) => shared.actors().claim_name(name, id).map(|()| demand),
                None => Ok(demand),
            });
        match (checked, shared.handle()) {
            (Ok(demand), Some(tokio)) => {
                let host = ActorHost {
                    shared: Arc::clone(shared),
                    cell: Arc::clone(&cell),
                    deps: builder.args.deps,
                    ctor,
                    recovery: Recovery::new(
                        builder.options.max_restarts,
                        builder.options.max_task_retries,
                    ),
                    max_concurrency: builder.options.max_concurrency,
                    concurrency_groups: builder.concurrency_groups,
                    concurrent: builder.concurrent,
                    threaded: builder.threaded,
                    backlog: Default::default(),
                    lease: None,
                };
                match demand {
                    None => {
                        let task = tokio.spawn(host.run());
                        cell.set_task(task.abort_handle());
                    }
                    // Started once its resources are granted; it holds them while it lives.
                    Some(demand) => {
                        let tokio = tokio.clone();
                        let holds = self.scheduler.describe_demand(&demand);
                        self.queue(
                            shared,
                            crate::scheduler::Queued {
                                demand,
                                start: Box::new(move |lease| host.start_with(lease, holds, &tokio)),
                            },
                        );
                    }
                }
            }
            (Err(error), _) => {
                cell.mark_dead(error.to_string());
                cell.close();
            }
            (Ok(_), None) => {
                cell.mark_dead(Error::RuntimeShutdown.to_string());
                cell.close();
            }
        }
        handle
    }

    /// Sends the call `call` describes, run by `body`, to its actor's mailbox; returns its
    /// result's cell.
    #[inline]
    pub(crate) fn send_call<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        call: CallBuilder<A>,
        body: Method<A>,
    ) -> Arc<Cell> {
        let mut builder = call;
        let cell = match shared
            .check()
            .and_then(|()| shared.actors().get_live::<A>(builder.actor))
        {
            Ok(cell) => cell,
            Err(error) => return shared.store().insert_failed(error),
        };
        if !cell.is_alive() {
            return shared.store().insert_failed(cell.died_error());
        }
        builder.args.deps.keep_owned_by(shared.id());
        if let Some(id) = builder.args.deps.missing {
            return shared.store().insert_failed(missing(id));
        }
        let out = shared.store().insert_pending(None);
        tracing::trace!(
            target: "rustyray::actor",
            actor = %cell.class,
            method = %builder.method,
            object = %out.id(),
            "submitted"
        );
        crate::timeline::record_submitted(&builder.method, Some(&cell.class), shared.id());
        let call = Call {
            method: builder.method,
            deps: builder.args.deps.cells,
            out: Arc::clone(&out),
            body,
            attempts: 0,
            group: builder.group,
        };
        if cell.send(call, &self.pool).is_err() {
            // The actor died or was freed after the check above.
            let error = match shared.actors().get::<A>(builder.actor) {
                Ok(cell) => cell.died_error(),
                Err(not_found) => not_found,
            };
            out.complete(Err(error));
        }
        out
    }
}

/// The live actor named `name` in this process's actor table.
pub(crate) fn find_actor<A: Actor>(
    shared: &Arc<RuntimeCore>,
    name: &str,
) -> Result<ActorHandle<A>> {
    let not_found = || Error::NotFound {
        what: format!("actor named `{name}`"),
    };
    let id = shared.actors().named(name).ok_or_else(not_found)?;
    shared.actors().get::<A>(id)?;
    if !shared.actors().retain(id) {
        return Err(not_found());
    }
    Ok(ActorHandle::from_new_entry(shared, id))
}

/// Kills an actor of this process.
pub(crate) fn kill_actor<A: Actor>(shared: &RuntimeCore, handle: &ActorHandle<A>) -> Result<()> {
    shared.actors().kill(handle.id())
}
