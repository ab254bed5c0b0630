//! The arguments of a call, shared by tasks, actor constructors and actor calls: each
//! argument as a slot (a value, or a ref resolved before the call runs), the objects the call
//! waits for, and, when the `ray` backend may run it, the arguments as they travel to Ray with
//! the registered id to run them by.

use std::sync::Arc;

#[cfg(feature = "ray")]
use crate::error::Error;
use crate::error::Result;
use crate::object_ref::{missing, ObjectId, ObjectRef};
use crate::object_store::{Cell, Value};
use crate::ray::RayArgs;

/// A value, or a ref to one, passed where a task or actor method expects a `T` (declared `T`,
/// `&T` or `Arc<T>`).
///
/// Implemented for `T` itself, `Arc<T>`, `ObjectRef<T>` and `&ObjectRef<T>`; a ref is resolved
/// through the object store before the task runs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed where a `{T}` is expected",
    label = "expected `{T}`, `Arc<{T}>`, `ObjectRef<{T}>` or `&ObjectRef<{T}>`",
    note = "a remote function's parameter of type `T`, `&T` or `Arc<T>` accepts a `T` value, \
            an `Arc<T>` or a ref to one"
)]
pub trait IntoArg<T> {
    /// Wraps the argument for a task.
    fn into_arg(self) -> ArgSlot<T>;
}

impl<T: Value + Clone> IntoArg<T> for T {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot::Value(self)
    }
}

impl<T> IntoArg<T> for Arc<T> {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot::Shared(self)
    }
}

impl<T> IntoArg<T> for ObjectRef<T> {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot::Ref(self)
    }
}

impl<T> IntoArg<T> for &ObjectRef<T> {
    fn into_arg(self) -> ArgSlot<T> {
        ArgSlot::Ref(self.clone())
    }
}

/// One argument of a submitted task: the value itself, or a ref to the object that holds it.
///
/// Inside the task body, [`ArgSlot::get`] returns the value; a ref argument's object is ready by
/// then, so `get` never waits. The slot's ref keeps the object alive until the task is done.
#[derive(Clone, Debug)]
pub enum ArgSlot<T> {
    /// Passed by value.
    Value(T),
    /// Passed as a shared value (an `Arc<T>`, or a value given to a `&T` or `Arc<T>`
    /// parameter, moved into an `Arc` once).
    Shared(Arc<T>),
    /// Passed by ref; resolved before the body runs.
    Ref(ObjectRef<T>),
}

impl<T: Value + Clone> ArgSlot<T> {
    /// The argument's value (a clone of the one passed or stored).
    pub fn get(&self) -> Result<T> {
        match self {
            ArgSlot::Value(v) => Ok(v.clone()),
            ArgSlot::Shared(v) => Ok((**v).clone()),
            ArgSlot::Ref(r) => read_resolved(r, Cell::read_value),
        }
    }
}

impl<T: Value> ArgSlot<T> {
    /// The argument's value shared, not copied: the stored value itself for a ref. (A slot
    /// holding a plain value clones it into an `Arc`; [`TaskBuilder::arg_shared`] makes
    /// slots that never do.)
    ///
    /// [`TaskBuilder::arg_shared`]: crate::task::TaskBuilder::arg_shared
    pub fn shared(&self) -> Result<Arc<T>>
    where
        T: Clone,
    {
        match self {
            ArgSlot::Value(v) => Ok(Arc::new(v.clone())),
            ArgSlot::Shared(v) => Ok(Arc::clone(v)),
            ArgSlot::Ref(r) => read_resolved(r, Cell::read),
        }
    }

    /// The slot a `&T` or `Arc<T>` parameter reads from: a value is moved into an `Arc` now,
    /// so reading it never copies.
    pub(crate) fn into_shared(self) -> ArgSlot<T> {
        match self {
            ArgSlot::Value(v) => ArgSlot::Shared(Arc::new(v)),
            other => other,
        }
    }
}

/// Reads a ref argument's object, resolved before the body runs (unless the slot was made by
/// hand, when this waits for it).
fn read_resolved<T: Value, R>(
    r: &ObjectRef<T>,
    read: crate::runtime::blocking::Reader<R>,
) -> Result<R> {
    // Its runtime was checked when the task was submitted.
    let cell = r.cell().ok_or_else(|| missing(r.id()))?;
    match read(cell) {
        Some(read) => read,
        None => {
            crate::runtime::blocking::block_until([Some(cell)], 1, None);
            read(cell).expect("a resolved object never becomes pending again")
        }
    }
}

impl<T: Value> ArgSlot<T> {
    /// Wraps an argument, recording in `deps` the object it waits for, if it is a ref, and
    /// in `wire` how it travels to Ray, if the `ray` backend may run the call.
    pub(crate) fn collect(
        arg: impl IntoArg<T>,
        deps: &mut Deps,
        wire: &mut Option<RayArgs>,
    ) -> ArgSlot<T> {
        let slot = arg.into_arg();
        if let ArgSlot::Ref(r) = &slot {
            match r.cell() {
                Some(cell) => deps.cells.push(Arc::clone(cell)),
                None => {
                    deps.missing.get_or_insert(r.id());
                }
            }
        }
        if let Some(wire) = wire {
            wire.push(&slot);
        }
        slot
    }
}

/// The objects a task or actor call waits for before it runs.
#[derive(Default, Clone)]
pub(crate) struct Deps {
    /// The cells of its ref arguments.
    pub(crate) cells: Vec<Arc<Cell>>,
    /// The first ref argument whose object does not exist: the call fails with "not found".
    pub(crate) missing: Option<ObjectId>,
}

impl Deps {
    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.missing.is_none()
    }

    /// Counts the refs another runtime made as missing: a ref is valid only in its own.
    #[inline]
    pub(crate) fn keep_owned_by(&mut self, runtime: u32) {
        if let Some(foreign) = self.cells.iter().find(|c| c.id().owner() != runtime) {
            self.missing.get_or_insert(foreign.id());
            self.cells.retain(|c| c.id().owner() == runtime);
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<ObjectId> = self.cells.iter().map(|c| c.id()).collect();
        f.debug_struct("Deps")
            .field("cells", &ids)
            .field("missing", &self.missing)
            .finish()
    }
}

/// Everything a builder gathers about a call's arguments.
pub(crate) struct CallArgs {
    /// The callee's id in the registry, which the `ray` backend runs it by.
    pub(crate) registered: Option<&'static str>,
    /// The objects the call waits for.
    pub(crate) deps: Deps,
    /// The arguments as they travel to Ray, while any runtime of the process uses Ray.
    wire: Option<RayArgs>,
}

impl CallArgs {
    /// No arguments yet; recording for Ray if any runtime of the process uses it.
    #[inline]
    pub(crate) fn new() -> CallArgs {
        CallArgs {
            registered: None,
            deps: Deps::default(),
            wire: RayArgs::start(),
        }
    }

    /// Adds an argument; returns the slot the body reads it from.
    #[inline]
    pub(crate) fn arg<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        ArgSlot::collect(arg, &mut self.deps, &mut self.wire)
    }

    /// Adds an argument the body borrows or shares (a `&T` or `Arc<T>` parameter).
    #[inline]
    pub(crate) fn arg_shared<T: Value + Clone>(&mut self, arg: impl IntoArg<T>) -> ArgSlot<T> {
        self.arg(arg).into_shared()
    }

    /// The registered id and the recorded arguments, which the `ray` backend needs to run the
    /// call; `what` (`task`, `actor`, `method`) and `name` say what was not registered.
    #[cfg(feature = "ray")]
    pub(crate) fn for_ray(self, what: &str, name: &str) -> Result<(&'static str, RayArgs)> {
        match (self.registered, self.wire) {
            (Some(id), Some(wire)) => Ok((id, wire)),
            _ => Err(not_registered(what, name)),
        }
    }
}

/// The error for a call the `ray` backend cannot run: it was built by hand, not by the macros.
#[cfg(feature = "ray")]
fn not_registered(what: &str, name: &str) -> Error {
    Error::InvalidArgument(format!(
        "{what} `{name}` has no registered id, so a Ray worker could not find it; on the Ray \
         backend, run #[rustyray::remote] functions and #[rustyray::actor] methods only"
    ))
}
