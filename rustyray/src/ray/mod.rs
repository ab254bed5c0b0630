//! The `ray` backend: the same remote functions, actors and objects, run by a Ray cluster
//! through Ray's C++ worker API.
//!
//! # Design
//!
//! A runtime started with [`Config::ray`](crate::Config::ray) keeps its object store and actor
//! table, but only as a *directory*: each `ObjectRef` names a local entry whose value is a
//! [`RayObject`] (a Ray object id holding one Ray reference), and each actor handle names a
//! local entry holding the Ray actor's id. So refs and handles keep their counting unchanged:
//! when the last clone of a ref drops, the entry goes, and with it the Ray reference.
//!
//! Tasks, actor constructors and method calls are sent to Ray by their *registered id* (see
//! [`registry`](crate::registry)), through generic entry points of the C++ shim
//! (`rustyray/ray/shim.cc`) that a Ray worker finds in the user's `cdylib`. Arguments travel as
//! postcard bytes, one Ray argument each; a ref argument travels as the Ray object's id, so Ray
//! resolves it before the task runs (a chain of refs never passes through the driver). Results
//! and `put` values are Ray objects holding the postcard bytes of the value. The objects that
//! refs inside a value name travel beside it (`objects.rs`); actor handles inside a value
//! travel as Ray's serialized handles.
//!
//! What Ray does, Ray does: scheduling across nodes, the object store and spilling, worker
//! restarts, actor restarts (`max_restarts`). Where Ray would wait for good (a cluster that is
//! gone, work that only dead nodes could run), a driver's wait ends with an error
//! (`waiting.rs`, `watch.rs`, `nodes.rs`). What Ray's C++ API cannot express is documented in
//! docs/ray.md.

mod args;
mod calls;
pub(crate) mod cancel;
mod errors;
mod ffi;
mod groups;
mod kept_memory;
mod nodes;
mod objects;
mod waiting;
mod watch;
mod worker;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::actor::{ActorId, ActorOptions};
use crate::call_args::WireArgs;
use crate::config::{Cluster, RayTarget};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::codec::frame;
use crate::object_store::{Cell, Object, Value};
use crate::runtime::RuntimeCore;
use crate::task::{RareOptions, TaskOptions};
use args::RayArgs;
use objects::{lookup, RayObject};
use waiting::{fetch, in_slices};

use errors::from_ray as error;
use groups::place;
pub(crate) use groups::GROUP_READY;

/// The address the process connected to (Ray's API is one connection per process).
static CONNECTED: OnceLock<String> = OnceLock::new();

/// A runtime's link to Ray.
#[derive(Debug)]
pub(crate) struct Backend {
    _connected: (),
}

/// How a Ray worker treats a task's failures, sent ahead of its arguments. Ray's C++ API
/// takes no retry settings, so the worker runs the retries of `Err`s and panics itself.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskPolicy {
    pub(crate) max_retries: u32,
    pub(crate) retry_exceptions: bool,
    /// Where the task's cancellation is looked up (see `cancel.rs`).
    pub(crate) cancel: cancel::Scope,
    /// `num_returns(n)` set per call: the `Vec` result is stored as its `n` elements' parts.
    pub(crate) num_returns: Option<u32>,
}

/// How a Ray worker treats an actor's panics, sent ahead of its constructor's arguments: a
/// panic ends the actor, or rebuilds it from its constructor while restarts remain (the call
/// that panicked is re-run on the rebuilt actor while it has retries left).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActorPolicy {
    pub(crate) max_restarts: u32,
    pub(crate) max_task_retries: u32,
    /// With concurrency groups: each group's limit of shared calls at once, the default
    /// group's first (none: Ray's `max_concurrency` is the only limit).
    pub(crate) group_limits: Vec<u32>,
}

/// Sent ahead of a method call's arguments: its concurrency group (0 for the default one,
/// else 1-based, as the actor declares them), and where its cancel is looked up (none for the
/// calls of rustyray's own actors, the cancel boards among them).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallPolicy {
    pub(crate) group: u8,
    pub(crate) cancel: Option<cancel::Scope>,
}

/// A demand by Ray's resource names, zero amounts left out.
fn demands(cpus: f64, gpus: f64, custom: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    if cpus > 0.0 {
        out.push(("CPU".to_owned(), cpus));
    }
    if gpus > 0.0 {
        out.push(("GPU".to_owned(), gpus));
    }
    out.extend(custom.iter().filter(|(_, amount)| *amount > 0.0).cloned());
    out
}

/// A task's options as Ray takes them.
struct RayTask<'a> {
    resources: Vec<(String, f64)>,
    name: Option<&'a str>,
    place: ffi::Place<'a>,
    policy: TaskPolicy,
}

/// Maps every task option to Ray. Each field is named, so an option added to `TaskOptions`
/// does not compile here until it is mapped, or refused with an error saying Ray cannot do it.
fn task_on_ray(options: &TaskOptions) -> Result<RayTask<'_>> {
    let TaskOptions {
        num_cpus,
        num_gpus,
        max_retries,
        retry_exceptions,
        rare: _,
    } = options;
    let RareOptions {
        resources: custom,
        name,
        // Read by streams only, which the Ray backend runs as their own calls.
        backpressure: _,
        placement,
        num_returns,
    } = options.rare();
    Ok(RayTask {
        resources: demands(*num_cpus, *num_gpus, custom),
        name: name.as_deref(),
        place: place(placement.as_ref())?,
        // Ray's C++ API has no retry settings: the worker retries (`worker.rs`).
        policy: TaskPolicy {
            max_retries: *max_retries,
            retry_exceptions: *retry_exceptions,
            cancel: cancel::Scope::for_new_task(),
            num_returns: *num_returns,
        },
    })
}

impl Backend {
    /// Connects the process to Ray (once), or joins the connection a worker already has.
    pub(crate) fn connect(target: &RayTarget) -> Result<Backend> {
        match target {
            RayTarget::Worker => {}
            RayTarget::Cluster(Cluster {
                address,
                code_search_path,
                namespace,
                auth_token,
            }) => {
                if let Some(connected) = CONNECTED.get() {
                    if connected != address {
                        return Err(Error::InvalidArgument(format!(
                            "this process is connected to the Ray cluster at `{connected}`; Ray \
                             allows one cluster per process, so `{address}` cannot be used too"
                        )));
                    }
                } else {
                    let paths: Vec<String> = code_search_path
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    let node_ip = node_ip_for(address);
                    let namespace = namespace.as_deref().unwrap_or("");
                    let token = auth_token.as_ref().map_or("", |t| t.0.as_str());
                    check_auth_mode(token, std::env::var("RAY_AUTH_MODE").ok().as_deref())?;
                    ffi::init(address, &paths, namespace, &node_ip, token).map_err(
                        |(_, message)| Error::Backend {
                            message: format!(
                                "could not connect to the Ray cluster at `{address}`: {message} \
                                 (is a head running? `ray start --head --node-ip-address=127.0.0.1`)"
                            ),
                        },
                    )?;
                    let _ = CONNECTED.set(address.clone());
                    watch::start(address);
                    warn_if_attached_by_chance(&node_ip);
                }
            }
        }
        crate::call_args::record_for_the_wire();
        Ok(Backend { _connected: () })
    }

    fn enter(&self, shared: &RuntimeCore, id: Vec<u8>, origin: Cow<'static, str>) -> Arc<Cell> {
        self.enter_object(shared, RayObject::taking_reference(id, origin))
    }

    /// Enters the object a call made, whose task needs `demand` on a node and the objects of
    /// `args`.
    fn enter_made(
        &self,
        shared: &RuntimeCore,
        (id, origin): (Vec<u8>, Cow<'static, str>),
        demand: Vec<(String, f64)>,
        args: &RayArgs,
        cancel: Option<cancel::Cancellable>,
    ) -> Arc<Cell> {
        let needs = objects::Needs {
            demand,
            upstream: args.objects().map(Arc::downgrade).collect(),
            warned: Default::default(),
            cancel,
        };
        self.enter_object(
            shared,
            RayObject::taking_reference(id, origin).needing(needs),
        )
    }

    fn enter_object(&self, shared: &RuntimeCore, object: RayObject) -> Arc<Cell> {
        let object = Object::new(object);
        shared
            .store()
            .insert_ready(object)
            .unwrap_or_else(|error| shared.store().insert_failed(error))
    }

    fn failed(&self, shared: &RuntimeCore, error: Error) -> Arc<Cell> {
        shared.store().insert_failed(error)
    }

    /// Stores a value in Ray's object store.
    pub(crate) fn put<T: Value>(&self, shared: &RuntimeCore, value: &T) -> Result<Arc<Cell>> {
        let (bytes, kept) = crate::object_store::keeping_handles(|| frame::encode(value));
        let mut bytes = bytes?;
        // The objects its refs name go with it, for whichever process reads it.
        objects::inline(&mut bytes, &crate::object_store::cells_of(kept))?;
        let started = Instant::now();
        let id = ffi::put(&bytes).map_err(|e| error("put", e, started))?;
        Ok(self.enter(shared, id, "put".into()))
    }

    /// Fetches and decodes an object, waiting until `deadline` at most; the objects its refs
    /// name, sent with it, are entered in `shared`'s store.
    pub(crate) fn get<T: Value>(
        &self,
        shared: &RuntimeCore,
        r: &ObjectRef<T>,
        deadline: Option<Instant>,
    ) -> Result<T> {
        let object = lookup(r)?;
        let bytes = fetch(&object, deadline)?;
        objects::decode_value(shared.store(), &bytes, &object.origin)
    }

    /// Which of `refs` are resolved once `need` of them are, or the deadline passed. An entry
    /// that failed locally (a call that could not be sent) counts as resolved.
    pub(crate) fn wait<T>(
        &self,
        refs: &[ObjectRef<T>],
        need: usize,
        deadline: Option<Instant>,
    ) -> Vec<bool> {
        // Objects this process holds the bytes of are ready; so is an entry that failed here,
        // or whose task this process cancelled.
        let objects: Vec<Option<Arc<RayObject>>> = refs
            .iter()
            .map(|r| {
                lookup(r)
                    .ok()
                    .filter(|o| o.bytes_here().is_none() && !o.cancelled())
            })
            .collect();
        let local = objects.iter().filter(|o| o.is_none()).count();
        // Ray's wait takes each object once: wait on the distinct ones, then map back.
        let mut remote: Vec<(&[u8], &RayObject)> = objects
            .iter()
            .flatten()
            .filter_map(|o| Some((o.id()?, &**o)))
            .collect();
        remote.sort_unstable_by_key(|(id, _)| *id);
        remote.dedup_by_key(|(id, _)| *id);
        let ids: Vec<&[u8]> = remote.iter().map(|(id, _)| *id).collect();
        let need_remote = need.saturating_sub(local).min(remote.len());
        let mut ready = vec![false; remote.len()];
        if !remote.is_empty() {
            // With enough resolved locally, only look at which remote ones are ready now.
            let (num, deadline) = match need_remote {
                0 => (remote.len(), Some(Instant::now())),
                n => (n, deadline),
            };
            let enough = |ready: &[bool]| ready.iter().filter(|r| **r).count() >= num;
            // A lost cluster ends the wait with what was ready; their gets say why.
            let _ = crate::runtime::blocking::outside_async_worker(|| {
                in_slices(
                    deadline,
                    |ms, again| {
                        ready = ffi::wait(&ids, num, ms).unwrap_or_else(|_| vec![false; ids.len()]);
                        if again && !enough(&ready) {
                            // An object that can never come counts as resolved: its get says
                            // why.
                            for (ready, (_, object)) in ready.iter_mut().zip(&remote) {
                                *ready = *ready || nodes::stuck(object).is_some();
                            }
                        }
                        enough(&ready).then_some(())
                    },
                    || None,
                )
            });
        }
        objects
            .iter()
            .map(|o| match o {
                None => true,
                Some(o) => ids
                    .binary_search(&o.id().unwrap_or_default())
                    .is_ok_and(|i| ready.get(i).copied().unwrap_or(false)),
            })
            .collect()
    }

    /// Cancels the task or actor call that makes `r` (see `cancel.rs`): whether it had not
    /// finished.
    pub(crate) fn cancel<T>(&self, r: &ObjectRef<T>) -> bool {
        let Ok(object) = lookup(r) else {
            return false;
        };
        let Some(cancel) = object.needs().and_then(|needs| needs.cancel.as_ref()) else {
            return false;
        };
        if cancel.is_cancelled() {
            return false;
        }
        let finished = object
            .id()
            .is_some_and(|id| ffi::wait(&[id], 1, 0).is_ok_and(|ready| ready[0]));
        if finished {
            return false;
        }
        match cancel.cancel() {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(target: "rustyray::cancel", %error, task = %object.origin, "not cancelled");
                false
            }
        }
    }

    /// Sends a remote function's call to Ray.
    pub(crate) fn submit(
        &self,
        shared: &RuntimeCore,
        wire: WireArgs,
        function: &'static str,
        name: &str,
        options: &TaskOptions,
    ) -> Arc<Cell> {
        let wire = match RayArgs::from_wire(wire) {
            Ok(wire) => wire,
            Err(error) => return self.failed(shared, error),
        };
        let started = Instant::now();
        let task = match task_on_ray(options) {
            Ok(task) => task,
            Err(error) => return self.failed(shared, error),
        };
        let resources: Vec<ffi::Resource> = task
            .resources
            .iter()
            .map(|(name, amount)| ffi::Resource::new(name, *amount))
            .collect();
        let task_name = task.name.unwrap_or(name);
        let submitted = frame::encode(&task.policy)
            .map_err(|e| (ffi::Failure::Other, e.to_string()))
            .and_then(|policy| {
                let args = wire.ffi_args(Some(&policy));
                ffi::submit(function, &args, &resources, task_name, task.place)
            });
        // A task placed in a group runs on the group's reservation, not on a node's free share.
        let demand = match task.place.group {
            [] => task.resources.clone(),
            _ => Vec::new(),
        };
        nodes::warn_if_never_met(task_name, &demand);
        match submitted {
            Ok(id) => {
                let origin = Cow::Owned(task_name.to_owned());
                let cancel = cancel::Cancellable::new(&task.policy.cancel);
                self.enter_made(shared, (id, origin), demand, &wire, Some(cancel))
            }
            Err(e) => self.failed(shared, error(task_name, e, started)),
        }
    }

    /// Creates an actor on Ray; the new table entry is counted once, for the caller's handle.
    pub(crate) fn create_actor(
        &self,
        shared: &RuntimeCore,
        wire: WireArgs,
        constructor: &'static str,
        class: &str,
        options: &ActorOptions,
        groups: &[usize],
    ) -> Result<ActorId> {
        let wire = RayArgs::from_wire(wire)?;
        let started = Instant::now();
        // Every option named, so one added to `ActorOptions` does not compile here until it is
        // mapped to Ray or refused.
        let ActorOptions {
            name,
            max_restarts,
            max_task_retries,
            max_concurrency,
            num_cpus,
            num_gpus,
            resources: custom,
            placement,
        } = options;
        // Ray's C++ API restarts the worker, not the actor's state: the worker does (`worker.rs`).
        // Concurrency groups: Ray runs up to all the groups' limits at once, and the worker
        // holds each group to its own (the default group's is `max_concurrency`).
        let limits: Vec<u32> = match groups {
            [] => Vec::new(),
            _ => std::iter::once(*max_concurrency)
                .chain(groups.iter().copied())
                .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX))
                .collect(),
        };
        let threads = match groups {
            [] => *max_concurrency,
            _ => limits.iter().map(|&l| l as usize).sum(),
        };
        let policy = frame::encode(&ActorPolicy {
            max_restarts: *max_restarts,
            max_task_retries: *max_task_retries,
            group_limits: limits,
        })?;
        let demands = demands(*num_cpus, *num_gpus, custom);
        let resources: Vec<ffi::Resource> = demands
            .iter()
            .map(|(name, amount)| ffi::Resource::new(name, *amount))
            .collect();
        let spec = ffi::ActorSpec {
            constructor,
            args: &wire.ffi_args(Some(&policy)),
            resources: &resources,
            name: name.as_deref().unwrap_or(""),
            max_restarts: i32::try_from(*max_restarts).unwrap_or(i32::MAX),
            max_concurrency: i32::try_from(threads).unwrap_or(i32::MAX),
            place: place(placement.as_ref())?,
        };
        let ray_id = ffi::create_actor(&spec).map_err(|e| error(class, e, started))?;
        let mut actor = RemoteActor::new(ray_id, class.to_owned());
        if placement.is_none() {
            nodes::warn_if_never_met(class, &demands);
            actor.demand = demands;
        }
        Ok(shared.actors().insert_entry(Arc::new(actor)))
    }

    /// Sends a method call to a Ray actor.
    pub(crate) fn call(
        &self,
        shared: &RuntimeCore,
        actor: &RemoteActor,
        wire: WireArgs,
        method: &'static str,
        name: &str,
        group: u8,
    ) -> Arc<Cell> {
        let wire = match RayArgs::from_wire(wire) {
            Ok(wire) => wire,
            Err(error) => return self.failed(shared, error),
        };
        // Its group and cancel scope, ahead of its arguments. rustyray's own actors (a cancel
        // board, a stream's) are not cancelled: a board's calls must never read a board.
        let scope = (!method.starts_with("rustyray::")).then(cancel::Scope::for_new_task);
        let policy = match frame::encode(&CallPolicy {
            group,
            cancel: scope.clone(),
        }) {
            Ok(frame) => frame,
            Err(error) => return self.failed(shared, error),
        };
        if actor.is_killed() {
            let died = Error::ActorDied {
                actor: actor.class.clone(),
                reason: "killed by rustyray::kill".to_owned(),
            };
            return self.failed(shared, died);
        }
        let started = Instant::now();
        let origin = format!("{}::{name}", actor.class);
        match ffi::call_actor(&actor.id, method, &wire.ffi_args(Some(&policy))) {
            Ok(id) => {
                let demand = actor.demand.clone();
                let cancel = scope.as_ref().map(cancel::Cancellable::new);
                self.enter_made(shared, (id, origin.into()), demand, &wire, cancel)
            }
            Err(e) => self.failed(shared, error(&actor.class, e, started)),
        }
    }

    /// The actor Ray knows under `name`, entered in the table (counted once).
    pub(crate) fn get_actor(
        &self,
        shared: &RuntimeCore,
        name: &str,
        class: &str,
    ) -> Result<ActorId> {
        let started = Instant::now();
        let found = ffi::get_actor(name).map_err(|e| error(name, e, started))?;
        let not_found = || Error::NotFound {
            what: format!("actor named `{name}` on the Ray cluster"),
        };
        // Ray frees the name of a killed actor a moment after `kill` returns; this process
        // knows at once.
        let id = found
            .filter(|id| !KILLED.lock().contains(id))
            .ok_or_else(not_found)?;
        Ok(shared
            .actors()
            .insert_entry(Arc::new(RemoteActor::new(id, format!("{class} `{name}`")))))
    }

    /// The `n` parts of a `num_returns` call's object `whole` (a task's or method's result,
    /// which holds its fields' frames), each an entry of its own.
    pub(crate) fn split(
        &self,
        shared: &RuntimeCore,
        whole: &Arc<Cell>,
        n: usize,
    ) -> Vec<Arc<Cell>> {
        match objects::read(whole) {
            Ok(object) => RayObject::parts(&object, n)
                .into_iter()
                .map(|part| self.enter_object(shared, part))
                .collect(),
            Err(error) => (0..n).map(|_| self.failed(shared, error.clone())).collect(),
        }
    }

    /// The parts of `whole`, a value stored as parts whose count only its bytes say (a stream
    /// actor's answer to a `take` of several items): waits for it, then makes an entry for
    /// each part, which shares the bytes fetched here. `true` with a stream's last items.
    pub(crate) fn split_counted(
        &self,
        shared: &RuntimeCore,
        whole: &Arc<Cell>,
    ) -> Result<(Vec<Arc<Cell>>, bool)> {
        let object = objects::read(whole)?;
        let bytes = waiting::fetch(&object, None)?.into_owned();
        let (parts, last) = RayObject::fetched_parts(&object, bytes)?;
        let parts = parts
            .into_iter()
            .map(|part| self.enter_object(shared, part))
            .collect();
        Ok((parts, last))
    }

    /// Enters the actor whose Ray handle `handle` a value carried in (see
    /// `RemoteActor::portable`): registered with this process's Ray worker, so it can call it,
    /// and entered in the table (counted once).
    pub(crate) fn enter_actor(
        &self,
        shared: &RuntimeCore,
        handle: &[u8],
        class: String,
    ) -> Result<ActorId> {
        let started = Instant::now();
        let id = ffi::register_actor(handle).map_err(|e| error(&class, e, started))?;
        Ok(shared
            .actors()
            .insert_entry(Arc::new(RemoteActor::new(id, class))))
    }
}

/// A Ray actor as the actor table keeps it.
#[derive(Debug)]
pub(crate) struct RemoteActor {
    id: Vec<u8>,
    class: String,
    /// The resources it needs on a node, when this process made it (outside a group).
    demand: Vec<(String, f64)>,
}

/// The Ray actors this process killed. Ray kills asynchronously, but a call made after `kill`
/// returns fails at once, and the name is free at once, as on the embedded runtime, through
/// every handle of this process (a handle found by name is an entry of its own).
static KILLED: std::sync::LazyLock<parking_lot::Mutex<std::collections::HashSet<Vec<u8>>>> =
    std::sync::LazyLock::new(Default::default);

impl RemoteActor {
    fn new(id: Vec<u8>, class: String) -> RemoteActor {
        RemoteActor {
            id,
            class,
            demand: Vec::new(),
        }
    }

    /// Its class, for `rustyray::state`.
    pub(crate) fn describe_class(&self) -> String {
        self.class.clone()
    }

    /// Ray's serialized handle to it and its class: what a value carries so that another
    /// process (a worker that decodes the value) can call it.
    pub(crate) fn portable(&self) -> Result<(Vec<u8>, String)> {
        let started = Instant::now();
        let handle = ffi::serialize_actor(&self.id).map_err(|e| error(&self.class, e, started))?;
        Ok((handle, self.class.clone()))
    }

    /// Kills the actor on Ray, with no restart.
    pub(crate) fn kill(&self) -> Result<()> {
        let started = Instant::now();
        ffi::kill_actor(&self.id).map_err(|e| error(&self.class, e, started))?;
        KILLED.lock().insert(self.id.clone());
        Ok(())
    }

    /// Whether this process killed the actor.
    fn is_killed(&self) -> bool {
        KILLED.lock().contains(&self.id)
    }
}

/// The address this node has in the cluster, as Ray's own Python driver works it out:
/// `RUSTYRAY_NODE_IP_ADDRESS` if set; for a cluster on a loopback address, the address this
/// machine reaches the outside from (Ray registers a node started with
/// `--node-ip-address=127.0.0.1` under that address, unless
/// `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`); otherwise Ray's C++ guess.
fn node_ip_for(address: &str) -> String {
    if let Ok(ip) = std::env::var("RUSTYRAY_NODE_IP_ADDRESS") {
        return ip;
    }
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return String::new();
    }
    let single_node = std::env::var("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER").is_ok_and(|v| v == "0");
    let outward = || {
        // No packet is sent: connecting a UDP socket only picks the route.
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.connect("8.8.8.8:80").ok()?;
        Some(socket.local_addr().ok()?.ip().to_string())
    };
    if single_node { None } else { outward() }.unwrap_or_else(|| "127.0.0.1".to_owned())
}

/// Refuses a token given in `Config` while Ray's authentication is off: Ray reads
/// `RAY_AUTH_MODE` once, when its library loads, so setting it now would come too late, and
/// the driver would be refused by the cluster with an abort, not an error.
fn check_auth_mode(token: &str, mode: Option<&str>) -> Result<()> {
    if token.is_empty() || mode.is_some_and(|m| m.eq_ignore_ascii_case("token")) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "a Ray authentication token was given (`Config::ray_auth_token`), but RAY_AUTH_MODE is \
         {}; Ray reads it once, when the driver starts, so start the driver with \
         RAY_AUTH_MODE=token in its environment (the token may stay in Config)",
        mode.map_or("not set".to_owned(), |m| format!("`{m}`"))
    )))
}

/// Warns when several live nodes have the address this driver attached by: Ray's C++ driver
/// then attaches to whichever the cluster lists first (its Python driver prefers the head), so
/// which node it uses, and whether losing a node ends it, is up to chance.
fn warn_if_attached_by_chance(node_ip: &str) {
    let Some(nodes) = nodes::current() else {
        return;
    };
    let same = nodes
        .iter()
        .filter(|n| n.alive && !node_ip.is_empty() && n.address == node_ip)
        .count();
    if same > 1 {
        tracing::warn!(
            target: "rustyray::ray",
            "{same} live Ray nodes have this driver's address {node_ip}: Ray's C++ driver attaches \
             to any one of them, not necessarily the head. Give each node on one machine an \
             address of its own (`ray start --node-ip-address=127.0.0.2`), see docs/ray.md"
        );
    }
}

/// Disconnects the process from Ray (at the global runtime's shutdown).
pub(crate) fn disconnect() {
    if CONNECTED.get().is_some() {
        ffi::shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_without_token_mode_is_refused_with_what_to_do() {
        assert!(check_auth_mode("", None).is_ok());
        assert!(check_auth_mode("t0k3n", Some("token")).is_ok());
        assert!(check_auth_mode("t0k3n", Some("TOKEN")).is_ok());
        for mode in [None, Some("disabled")] {
            let err = check_auth_mode("t0k3n", mode).unwrap_err().to_string();
            assert!(err.contains("RAY_AUTH_MODE=token"), "{err}");
            assert!(!err.contains("t0k3n"), "the token is never shown: {err}");
        }
    }

    #[test]
    fn a_local_cluster_is_reached_from_the_address_ray_gives_this_node() {
        assert_eq!(node_ip_for("10.1.2.3:6379"), "");
        assert!(!node_ip_for("127.0.0.1:6379").is_empty());
        assert!(!node_ip_for("localhost:6379").is_empty());
    }
}
