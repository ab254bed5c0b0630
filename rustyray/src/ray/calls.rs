//! What the seam hands the Ray backend: a task, an actor or a call as its builder described it,
//! sent by registered id; and actors found by name or killed. The builders in `task/` and
//! `actor/` know nothing of Ray: they describe a call once, and `runtime/backend.rs` gives the
//! description here or to this process's scheduler.

use std::sync::Arc;

use super::{Backend, RemoteActor};
use crate::actor::{self, Actor, ActorBuilder, ActorHandle, ActorId, CallBuilder, CellOps};
use crate::error::{Error, Result};
use crate::object_store::Cell;
use crate::runtime::RuntimeCore;
use crate::state::ActorState;
use crate::task::TaskBuilder;

impl CellOps for RemoteActor {
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }

    fn close(&self) {
        // Ray owns the actor: it ends with the job, or when killed.
    }

    fn run_in_caller(&self, _out: &Arc<Cell>) -> bool {
        false // its calls run in Ray's workers
    }

    fn kill(&self, _reason: String) {
        // At shutdown; a failure here (Ray already gone) leaves nothing to clean up.
        let _ = RemoteActor::kill(self);
    }

    fn describe(&self) -> (String, ActorState, usize) {
        (self.describe_class(), ActorState::Alive, 0)
    }

    fn portable(&self) -> Option<Result<(Vec<u8>, String)>> {
        Some(self.portable())
    }
}

/// The Ray actor behind `id`.
fn remote(shared: &RuntimeCore, id: ActorId) -> Result<Arc<RemoteActor>> {
    shared
        .actors()
        .entry_as::<RemoteActor>(id, || Error::TypeMismatch {
            expected: "an actor on the Ray cluster",
            found: "an actor of an embedded runtime",
        })
}

impl Backend {
    /// Sends the task `task` describes to Ray by its registered id.
    pub(crate) fn submit_task(&self, shared: &RuntimeCore, task: TaskBuilder) -> Arc<Cell> {
        let TaskBuilder {
            function,
            options,
            args,
        } = task;
        match args.into_wire("task", &function) {
            Ok((id, wire)) => self.submit(shared, wire, id, &function, &options),
            Err(error) => shared.store().insert_failed(error),
        }
    }

    /// Creates the actor `builder` describes on Ray. A failure to create it gives a handle
    /// whose calls all fail with the reason, as an embedded actor whose constructor failed does.
    pub(crate) fn start_actor<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        builder: ActorBuilder<A>,
    ) -> ActorHandle<A> {
        let (class, options) = (&builder.class, &builder.options);
        let limits: Vec<usize> = builder.concurrency_groups.iter().map(|(_, l)| *l).collect();
        let created = builder
            .args
            .into_wire("actor", class)
            .and_then(|(id, wire)| self.create_actor(shared, wire, id, class, options, &limits));
        let id = created.unwrap_or_else(|error| {
            actor::enter_dead::<A>(shared, builder.class.clone(), error.to_string())
        });
        ActorHandle::from_new_entry(shared, id)
    }

    /// Sends the method call `call` describes to its Ray actor.
    pub(crate) fn send_call<A: Actor>(
        &self,
        shared: &RuntimeCore,
        call: CallBuilder<A>,
    ) -> Arc<Cell> {
        let actor = call.actor;
        let sent = call
            .args
            .into_wire("method", &call.method)
            .and_then(|(id, wire)| {
                let remote = remote(shared, actor)?;
                Ok(self.call(shared, &remote, wire, id, &call.method, call.group))
            });
        sent.unwrap_or_else(|error| {
            // An actor Ray could not create: its calls fail with the reason.
            let error = actor::died_error::<A>(shared, actor).unwrap_or(error);
            shared.store().insert_failed(error)
        })
    }

    /// The actor Ray knows under `name`.
    pub(crate) fn find_actor<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        name: &str,
    ) -> Result<ActorHandle<A>> {
        let class = std::any::type_name::<A>()
            .rsplit("::")
            .next()
            .unwrap_or("actor");
        let id = self.get_actor(shared, name, class)?;
        Ok(ActorHandle::from_new_entry(shared, id))
    }

    /// Kills the Ray actor `id`, with no restart.
    pub(crate) fn kill_actor(&self, shared: &RuntimeCore, id: ActorId) -> Result<()> {
        remote(shared, id)?.kill()
    }
}
