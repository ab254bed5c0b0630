//! The one place that decides where an operation runs: in this process (the embedded object
//! store, scheduler, CPU pool and actor hosts) or on a Ray cluster (the `ray` module).
//!
//! Every operation that differs between the two is a method of [`Backend`], and this file is
//! the only one that matches on it, the way tokio's `scheduler::Handle` dispatches its runtime
//! flavors. Call sites ask the backend; they never test which one they run on. Without the
//! `ray` feature the enum has one variant and every match compiles to the embedded arm alone.
//! A later capability (several returns, streams, placement groups) is one more method here.

use std::sync::Arc;
use std::time::Instant;

use super::blocking::{self, Reader};
use super::RuntimeCore;
use crate::actor::{Actor, ActorBuilder, ActorHandle, ActorId, CallBuilder, Ctor, Method};
use crate::completion::{Arrivals, Order};
use crate::config::Config;
use crate::embedded::Embedded;
use crate::error::{Error, Result};
use crate::object_ref::{ObjectRef, Waiting};
use crate::object_store::{Cell, Object, Value};
use crate::placement_group::{PlacementGroup, PlacementGroupBuilder, Reservation};
use crate::stream::Streaming;
use crate::task::{Body, TaskBuilder};

/// Where a runtime's operations run.
#[derive(Debug)]
pub(crate) enum Backend {
    /// In this process.
    Embedded(Embedded),
    /// On a Ray cluster, through Ray's C++ worker API.
    #[cfg(feature = "ray")]
    Ray(crate::ray::Backend),
}

/// Which refs a [`Backend::wait`] found resolved.
pub(crate) enum Resolved {
    /// Whatever the embedded store says now, for the runtime with this id.
    InStore(u32),
    /// One flag per ref, in order.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    Listed(Vec<bool>),
}

impl Resolved {
    /// Whether the `i`th ref, `r`, is resolved.
    #[inline]
    pub(crate) fn is_resolved<T>(&self, i: usize, r: &ObjectRef<T>) -> bool {
        match self {
            Resolved::InStore(runtime) => r.is_resolved_in(*runtime),
            Resolved::Listed(flags) => flags[i],
        }
    }
}

impl Backend {
    /// The backend `config` asks for, for runtime `id` (`runtime`, not yet built); a Ray
    /// cluster that cannot be reached (or Ray asked of a build without the `ray` feature) is
    /// the error the runtime then reports for every call.
    pub(crate) fn start(
        config: &Config,
        id: u32,
        runtime: std::sync::Weak<RuntimeCore>,
    ) -> (Backend, Option<Error>) {
        let embedded = || Backend::Embedded(Embedded::new(config, id, runtime));
        match config.ray_target() {
            None => (embedded(), None),
            #[cfg(feature = "ray")]
            Some(target) => match crate::ray::Backend::connect(target) {
                Ok(ray) => (Backend::Ray(ray), None),
                Err(error) => (embedded(), Some(error)),
            },
            #[cfg(not(feature = "ray"))]
            Some(_) => {
                let error = config.validate().err().unwrap_or_else(|| {
                    Error::InvalidArgument(
                        "rustyray was built without its `ray` feature".to_owned(),
                    )
                });
                (embedded(), Some(error))
            }
        }
    }

    /// Stores `value`; returns its new cell.
    #[inline]
    pub(crate) fn put<T: Value>(&self, shared: &RuntimeCore, value: T) -> Result<Arc<Cell>> {
        match self {
            Backend::Embedded(_) => shared.store.insert_ready(Object::new(value)),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.put(shared, &value),
        }
    }

    /// Stores a shared value: embedded, the same `Arc`; on Ray, its encoding.
    pub(crate) fn put_arc<T: Value>(
        &self,
        shared: &RuntimeCore,
        value: Arc<T>,
    ) -> Result<Arc<Cell>> {
        match self {
            Backend::Embedded(_) => shared.store.insert_ready(Object::from_arc(value)),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.put(shared, &*value),
        }
    }

    /// Stores a copy of `items` as a `Vec<T>`: embedded, in memory kept from earlier copies;
    /// on Ray, its encoding (Ray copies it into its own shared memory).
    pub(crate) fn put_slice<T: Value + Copy>(
        &self,
        shared: &RuntimeCore,
        items: &[T],
    ) -> Result<Arc<Cell>> {
        match self {
            Backend::Embedded(_) => shared.store.insert_slice(items),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.put(shared, &items.to_vec()),
        }
    }

    /// The value of `r` as `read` gives it, waiting until `deadline` at most.
    #[inline]
    pub(crate) fn get<T: Value, R: From<T>>(
        &self,
        shared: &RuntimeCore,
        r: &ObjectRef<T>,
        deadline: Option<Instant>,
        read: Reader<R>,
    ) -> Result<R> {
        match self {
            Backend::Embedded(_) => {
                blocking::read_when_resolved(r.cell_or_missing(shared.id)?, deadline, read)
            }
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => {
                let _ = read;
                ray.get(shared, r, deadline).map(R::from)
            }
        }
    }

    /// Every value of `refs`, in order; the first error met.
    #[inline]
    pub(crate) fn get_all<T: Value, R: From<T>>(
        &self,
        shared: &RuntimeCore,
        refs: &[ObjectRef<T>],
        read: Reader<R>,
    ) -> Result<Vec<R>> {
        match self {
            Backend::Embedded(_) => blocking::get_all(shared.id, refs, read),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => {
                let _ = read;
                refs.iter()
                    .map(|r| ray.get(shared, r, None).map(R::from))
                    .collect()
            }
        }
    }

    /// Waits until `need` of `refs` are resolved or `deadline` passes; says which are.
    pub(crate) fn wait<T>(
        &self,
        shared: &RuntimeCore,
        refs: &[ObjectRef<T>],
        need: usize,
        deadline: Option<Instant>,
    ) -> Resolved {
        match self {
            Backend::Embedded(_) => {
                // Look first without subscribing: when enough are resolved already (the usual
                // case in a progress loop over `wait(&pending, 1, ..)`), no waiter is left
                // behind on the others.
                let resolved = |r: &ObjectRef<T>| r.is_resolved_in(shared.id);
                let enough_now = refs.iter().filter(|r| resolved(r)).take(need).count() >= need;
                if !enough_now && shared.check().is_ok() {
                    let cells = refs.iter().map(|r| r.cell_in(shared.id));
                    blocking::block_until(cells, need, deadline);
                }
                Resolved::InStore(shared.id)
            }
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => Resolved::Listed(ray.wait(refs, need, deadline)),
        }
    }

    /// The `n` objects of a `num_returns` call whose own result is `whole`, if this backend
    /// makes them at once (Ray: parts of the one Ray object); `None` on the embedded runtime,
    /// which splits the tuple when it resolves.
    #[cfg_attr(not(feature = "ray"), allow(unused_variables))]
    pub(crate) fn split_returns(
        &self,
        shared: &RuntimeCore,
        whole: &Arc<Cell>,
        n: usize,
    ) -> Option<Vec<Arc<Cell>>> {
        match self {
            Backend::Embedded(_) => None,
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => Some(ray.split(shared, whole, n)),
        }
    }

    /// The parts of `whole`, however many its bytes hold, waiting for it (a stream actor's
    /// answer to a `take` of several items, on Ray), and whether they are the stream's last.
    /// The embedded runtime stores no such objects.
    #[cfg_attr(not(feature = "ray"), allow(unused_variables))]
    pub(crate) fn split_counted(
        &self,
        shared: &RuntimeCore,
        whole: &Arc<Cell>,
    ) -> Result<(Vec<Arc<Cell>>, bool)> {
        match self {
            Backend::Embedded(_) => Err(Error::Backend {
                message: "a stream actor's items were read on the embedded runtime".to_owned(),
            }),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.split_counted(shared, whole),
        }
    }

    /// Whether calls run in other processes (Ray's workers), which know only registered code.
    pub(crate) fn is_ray(&self) -> bool {
        match self {
            Backend::Embedded(_) => false,
            #[cfg(feature = "ray")]
            Backend::Ray(_) => true,
        }
    }

    /// Creates the placement group `builder` describes.
    pub(crate) fn create_group(
        &self,
        shared: &RuntimeCore,
        builder: PlacementGroupBuilder,
    ) -> Result<PlacementGroup> {
        match self {
            Backend::Embedded(here) => here.create_group(shared, builder),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.create_group_from(shared, builder),
        }
    }

    /// Removes a placement group (again: nothing).
    pub(crate) fn remove_group(&self, group: &Reservation) -> Result<()> {
        match self {
            Backend::Embedded(here) => {
                here.remove_group(group.here()?);
                Ok(())
            }
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.remove_group(group.on_ray()?),
        }
    }

    /// The live placement group named `name`, if there is one.
    #[cfg_attr(not(feature = "ray"), allow(unused_variables))]
    pub(crate) fn find_group(
        &self,
        shared: &RuntimeCore,
        name: &str,
    ) -> Result<Option<PlacementGroup>> {
        match self {
            Backend::Embedded(here) => Ok(here.find_group(name)),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.find_group(shared, name),
        }
    }

    /// How streams run: through a channel when the producer runs in this process; through an
    /// actor the consumer makes when it may run in another (a Ray worker).
    pub(crate) fn streams(&self) -> Streaming {
        match self {
            Backend::Embedded(_) => Streaming::Channel,
            #[cfg(feature = "ray")]
            Backend::Ray(_) => Streaming::Actor,
        }
    }

    /// How `as_completed` finds the next resolved ref of `refs`.
    pub(crate) fn completion_order<T>(&self, shared: &RuntimeCore, refs: &[ObjectRef<T>]) -> Order {
        match self {
            Backend::Embedded(_) => Order::Notified(Arrivals::subscribe(shared.id, refs)),
            #[cfg(feature = "ray")]
            Backend::Ray(_) => Order::ByWait,
        }
    }

    /// Waits for all of `refs`, calling `progress` with how many are resolved as that grows.
    pub(crate) fn wait_reporting<T>(
        &self,
        shared: &RuntimeCore,
        refs: &[ObjectRef<T>],
        mut progress: impl FnMut(usize),
    ) {
        let stepped = match self {
            Backend::Embedded(_) => shared.check().is_err(),
            #[cfg(feature = "ray")]
            Backend::Ray(_) => true,
        };
        if stepped {
            // On Ray (or a stopped runtime), in steps of about 1% through `wait`.
            let step = (refs.len() / 100).max(1);
            let mut pending = refs.to_vec();
            while !pending.is_empty() {
                let (_, rest) = crate::api::wait(&pending, step, None);
                pending = rest;
                progress(refs.len() - pending.len());
            }
            return;
        }
        let cells = refs.iter().map(|r| r.cell_in(shared.id));
        blocking::block_until_reporting(cells, refs.len(), None, progress);
    }

    /// Cancels what produces `r`; whether it was still pending.
    pub(crate) fn cancel<T>(&self, shared: &RuntimeCore, r: &ObjectRef<T>) -> bool {
        match self {
            Backend::Embedded(_) => r
                .cell_in(shared.id)
                .is_some_and(|cell| cell.cancel_naming(|| shared.actors().call_name(cell))),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.cancel(r),
        }
    }

    /// Whether the task running on this thread was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        match self {
            Backend::Embedded(_) => {
                crate::actor::current::running_is_cancelled().unwrap_or_else(|| {
                    crate::scheduler::current_task().is_some_and(|task| task.is_cancelled())
                })
            }
            #[cfg(feature = "ray")]
            Backend::Ray(_) => crate::ray::cancel::running_is_cancelled(),
        }
    }

    /// What `r.await` waits on.
    pub(crate) fn future<T: Value + Clone>(
        &self,
        shared: &Arc<RuntimeCore>,
        r: &ObjectRef<T>,
    ) -> Waiting<T> {
        match self {
            Backend::Embedded(_) => Waiting::in_store(shared.id, r),
            #[cfg(feature = "ray")]
            Backend::Ray(_) => match shared.handle() {
                Some(tokio) => {
                    let shared = Arc::clone(shared);
                    let r = r.clone();
                    Waiting::Ray(tokio.spawn_blocking(move || match &shared.backend {
                        Backend::Ray(ray) => ray.get::<T>(&shared, &r, None),
                        Backend::Embedded(_) => unreachable!("a runtime keeps its backend"),
                    }))
                }
                None => Waiting::Failed(Some(Error::RuntimeShutdown)),
            },
        }
    }

    /// Submits a task built by `task`, whose body is `body`; returns its result's cell.
    #[inline]
    pub(crate) fn submit<B: Body>(
        &self,
        shared: &Arc<RuntimeCore>,
        task: TaskBuilder,
        body: B,
    ) -> Arc<Cell> {
        match self {
            Backend::Embedded(here) => here.submit_task(shared, task, body),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => {
                drop(body);
                ray.submit_task(shared, task)
            }
        }
    }

    /// Starts the actor `builder` describes, built by `ctor`.
    pub(crate) fn create_actor<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        builder: ActorBuilder<A>,
        ctor: Ctor<A>,
    ) -> ActorHandle<A> {
        match self {
            Backend::Embedded(here) => here.start_actor(shared, builder, ctor),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => {
                drop(ctor);
                ray.start_actor(shared, builder)
            }
        }
    }

    /// Sends the call `call` describes, run by `body`; returns its result's cell.
    #[inline]
    pub(crate) fn call<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        call: CallBuilder<A>,
        body: Method<A>,
    ) -> Arc<Cell> {
        match self {
            Backend::Embedded(here) => here.send_call(shared, call, body),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => {
                drop(body);
                ray.send_call(shared, call)
            }
        }
    }

    /// The live actor named `name`.
    pub(crate) fn get_actor<A: Actor>(
        &self,
        shared: &Arc<RuntimeCore>,
        name: &str,
    ) -> Result<ActorHandle<A>> {
        match self {
            Backend::Embedded(_) => crate::embedded::find_actor(shared, name),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.find_actor(shared, name),
        }
    }

    /// Enters the cluster actor whose serialized handle is `handle` (an actor handle decoded
    /// from an argument or a value) in the actor table; its id, counted once.
    #[cfg_attr(not(feature = "ray"), allow(unused_variables))]
    pub(crate) fn enter_actor(
        &self,
        shared: &RuntimeCore,
        handle: &[u8],
        class: String,
    ) -> Result<ActorId> {
        match self {
            Backend::Embedded(_) => Err(Error::NotFound {
                what: format!(
                    "actor {class} of a Ray cluster (its handle reached an embedded runtime, \
                     which cannot call it: read it in a runtime connected to that cluster)"
                ),
            }),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.enter_actor(shared, handle, class),
        }
    }

    /// Kills the actor `handle` names, with no restart.
    pub(crate) fn kill<A: Actor>(
        &self,
        shared: &RuntimeCore,
        handle: &ActorHandle<A>,
    ) -> Result<()> {
        match self {
            Backend::Embedded(_) => crate::embedded::kill_actor(shared, handle),
            #[cfg(feature = "ray")]
            Backend::Ray(ray) => ray.kill_actor(shared, handle.id()),
        }
    }

    /// How many tasks wait for resources in this process.
    pub(crate) fn queued_tasks(&self) -> usize {
        match self {
            Backend::Embedded(here) => here.queued_tasks(),
            #[cfg(feature = "ray")]
            Backend::Ray(_) => 0,
        }
    }

    /// The placement groups, for the state API (on Ray: none listed yet).
    pub(crate) fn groups(&self) -> Vec<crate::PlacementGroupInfo> {
        match self {
            Backend::Embedded(here) => here.groups(),
            #[cfg(feature = "ray")]
            Backend::Ray(_) => Vec::new(),
        }
    }

    /// At the runtime's shutdown: drops what waits to run and stops the threads that run it.
    pub(crate) fn shut_down(&self) {
        match self {
            Backend::Embedded(here) => here.shut_down(),
            #[cfg(feature = "ray")]
            Backend::Ray(_) => {}
        }
    }

    /// Ends the link to the backend, at the global runtime's shutdown.
    pub(crate) fn disconnect(&self) {
        match self {
            Backend::Embedded(_) => {}
            #[cfg(feature = "ray")]
            Backend::Ray(_) => crate::ray::disconnect(),
        }
    }
}
